//! Sites: what does not change from one request to the next, and what belongs to one site.
//!
//! A site is made once from its configuration (env, mounts, limits, cache, mode) and each
//! request only brings its own facts. Compiled modules stay shared by content and path
//! across sites, but long-lived WCGI instances belong to the site that started them: they
//! run with its env, mounts and memory cap, and no other site's requests reach them.
//!
//! Sites with the same configuration are one site: a `caddy reload` that changes nothing
//! for a site keeps its instances, while a changed configuration gets a new site, and the
//! old one's instances stop once the last request on them is done (when its last user
//! lets go of it).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

use crate::locks::lock;
use crate::request::RunSpec;
use crate::wcgi::WcgiPools;

pub struct Site {
    /// The site-level part of every request's spec.
    base: RunSpec,
    /// This site's long-lived instances.
    pub(crate) wcgi: WcgiPools,
}

impl Site {
    /// The site-level fields; a request's spec starts as a copy of it.
    pub fn base(&self) -> &RunSpec {
        &self.base
    }
}

impl Drop for Site {
    fn drop(&mut self) {
        self.wcgi.stop_all();
    }
}

/// The live sites of an engine, by configuration.
#[derive(Default)]
pub struct SiteRegistry {
    sites: Mutex<HashMap<Vec<u8>, Weak<Site>>>,
}

impl SiteRegistry {
    /// The site for `config` (its canonical encoding) made of `base`: the live one with
    /// that configuration, or a new one.
    pub fn get_or_make(&self, config: &[u8], base: impl FnOnce() -> RunSpec) -> Arc<Site> {
        let mut sites = lock(&self.sites);
        if let Some(site) = sites.get(config).and_then(Weak::upgrade) {
            return site;
        }
        sites.retain(|_, s| s.strong_count() > 0);
        let site = Arc::new(Site {
            base: base(),
            wcgi: WcgiPools::default(),
        });
        sites.insert(config.to_vec(), Arc::downgrade(&site));
        site
    }

    /// The sites alive now, for housekeeping.
    pub fn live(&self) -> Vec<Arc<Site>> {
        lock(&self.sites)
            .values()
            .filter_map(Weak::upgrade)
            .collect()
    }
}
