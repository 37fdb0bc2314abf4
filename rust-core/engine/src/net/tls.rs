//! TLS for `/tls` connection files: the host does the handshake (SNI and certificate name
//! = the host the guest wrote) with rustls, trusting the system's roots plus the site's
//! `ca_file`. One client configuration per CA file for the life of the process.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, RootCertStore};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::locks::lock;

type Configs = Mutex<HashMap<Option<PathBuf>, Arc<ClientConfig>>>;

/// The client configuration trusting the system's roots and those in `ca_file`.
fn config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    static CONFIGS: std::sync::OnceLock<Configs> = std::sync::OnceLock::new();
    let configs = CONFIGS.get_or_init(Configs::default);
    let key = ca_file.map(Path::to_path_buf);
    if let Some(config) = lock(configs).get(&key) {
        return Ok(config.clone());
    }
    let mut roots = RootCertStore::empty();
    // Unreadable system certificates are skipped: a site with its own CA still works.
    let system = rustls_native_certs::load_native_certs();
    roots.add_parsable_certificates(system.certs);
    if let Some(path) = ca_file {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|e| format!("cannot read ca_file {}: {e}", path.display()))?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| format!("bad certificate in {}: {e}", path.display()))?;
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let config = Arc::new(config);
    lock(configs).insert(key, config.clone());
    Ok(config)
}

/// Does the TLS handshake over `stream` for `host` (a name, or an IP address).
pub async fn handshake(
    stream: TcpStream,
    host: &str,
    ca_file: Option<&Path>,
) -> Result<TlsStream<TcpStream>, String> {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let name = ServerName::try_from(bare.to_string()).map_err(|e| e.to_string())?;
    let connector = TlsConnector::from(config(ca_file)?);
    connector
        .connect(name, stream)
        .await
        .map_err(|e| format!("TLS handshake: {e}"))
}
