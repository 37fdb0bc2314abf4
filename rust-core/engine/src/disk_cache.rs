//! The on-disk cache of precompiled modules, trusted only as far as it can be checked.
//!
//! Loading precompiled code runs it as native code inside Caddy, so a cache file is never
//! trusted for its name or place:
//! - Each file ends with a MAC (BLAKE3 in keyed mode) over the wasm's digest, the engine's
//!   compatibility hash, the compile tier and the code. BLAKE3 checks a 16 MB file in a few
//!   milliseconds where HMAC-SHA256 took about 20, on the restart path of every module. The key is 32 random bytes kept beside the cache directory, not in
//!   it (`<cache_dir>.key`, mode 0600), so whoever can write cache files but not the key
//!   can neither forge code nor move one module's code under another module's name.
//! - A file is copied whole into a sealed memfd ([`crate::sealed`]) and checked there
//!   before wasmtime maps it: a file changed or truncated while in use cannot reach code
//!   that is running, and nothing can change the checked bytes.
//! - A file that fails the check is removed, and the module compiled again.
//! - Files unused for `max_age` are pruned (every use refreshes a file's mtime).

use std::collections::HashMap;
use std::fs;
use std::io::Write;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use crate::host::{EngineLog, LogLevel};

const KEY_LEN: usize = 32;
const MAC_LEN: usize = 32;
/// Ends every cache file, after the MAC: marks the format.
const TRAILER_MAGIC: &[u8; 8] = b"WAGIMAC2";
const TRAILER_LEN: usize = MAC_LEN + TRAILER_MAGIC.len();
/// Larger files are not ours: no module's code is near this.
const MAX_FILE: u64 = 1 << 30;
const EXTENSION: &str = "cwasm";
/// Temporary files of a writer that died are removed after this long.
const STALE_TMP: Duration = Duration::from_secs(3600);
/// How often each cache directory is pruned.
pub const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// What a cache entry is checked against: the wasm it was compiled from, the engine and
/// the compile tier (one wasm has one entry per tier; they never stand in for each other).
pub struct EntryKey {
    wasm_digest: [u8; 32],
    compat: String,
    tier: &'static str,
}

impl EntryKey {
    pub fn new(wasm: &[u8], engine: &wasmtime::Engine, tier: &'static str) -> Self {
        use std::hash::{DefaultHasher, Hash, Hasher};
        let mut hasher = DefaultHasher::new();
        engine.precompile_compatibility_hash().hash(&mut hasher);
        EntryKey {
            wasm_digest: blake3::hash(wasm).into(),
            compat: format!("{:016x}", hasher.finish()),
            tier,
        }
    }

    /// The file name: the wasm's digest, the engine's compatibility hash and the tier.
    fn file_name(&self) -> String {
        let mut name = String::with_capacity(100);
        for b in &self.wasm_digest[..16] {
            name.push_str(&format!("{b:02x}"));
        }
        format!("{name}-{}-{}.{EXTENSION}", self.compat, self.tier)
    }
}

/// Why a cache file was not used.
#[derive(Debug)]
pub enum Rejected {
    /// No file (the normal miss).
    Missing,
    /// A file that is not ours or was changed: removed.
    Invalid(&'static str),
    /// The file could not be read.
    Unreadable(std::io::Error),
}

/// One cache directory and its key.
pub struct CacheDir {
    dir: PathBuf,
    key: [u8; KEY_LEN],
}

impl CacheDir {
    /// Opens (creating when missing) `dir` and its key file beside it.
    pub fn open(dir: &Path) -> std::io::Result<CacheDir> {
        fs::create_dir_all(dir)?;
        let key = load_or_create_key(&key_path(dir))?;
        Ok(CacheDir {
            dir: dir.to_path_buf(),
            key,
        })
    }

    /// The MAC state before the code stored for `entry`. Every field before the code has a
    /// fixed length or a length prefix, so no two entries feed the same bytes.
    fn mac(&self, entry: &EntryKey) -> blake3::Hasher {
        let mut mac = blake3::Hasher::new_keyed(&self.key);
        mac.update(&entry.wasm_digest);
        for field in [entry.compat.as_bytes(), entry.tier.as_bytes()] {
            mac.update(&(field.len() as u64).to_le_bytes());
            mac.update(field);
        }
        mac
    }

    /// The verified code for `entry`, as a sealed in-memory file holding the code alone,
    /// or why there is none. An invalid file is removed.
    pub fn load(&self, entry: &EntryKey) -> Result<fs::File, Rejected> {
        let path = self.dir.join(entry.file_name());
        let file = match fs::File::open(&path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(Rejected::Missing),
            Err(e) => return Err(Rejected::Unreadable(e)),
        };
        match self.verified_copy(entry, &file) {
            Ok(code) => {
                touch(&path);
                Ok(code)
            }
            Err(Rejected::Invalid(why)) => {
                let _ = fs::remove_file(&path);
                Err(Rejected::Invalid(why))
            }
            Err(other) => Err(other),
        }
    }

    /// Checks the trailer of `file`, copies its code into a sealed memfd and checks the MAC
    /// there: what is returned is exactly what was checked.
    fn verified_copy(&self, entry: &EntryKey, file: &fs::File) -> Result<fs::File, Rejected> {
        let len = file.metadata().map_err(Rejected::Unreadable)?.len();
        if len > MAX_FILE {
            return Err(Rejected::Invalid("larger than any module's code"));
        }
        let Some(code_len) = len.checked_sub(TRAILER_LEN as u64) else {
            return Err(Rejected::Invalid("shorter than its trailer"));
        };
        let mut trailer = [0u8; TRAILER_LEN];
        file.read_exact_at(&mut trailer, code_len)
            .map_err(|_| Rejected::Invalid("shorter than its trailer"))?;
        let (stored, magic) = trailer.split_at(MAC_LEN);
        if magic != TRAILER_MAGIC {
            return Err(Rejected::Invalid("not a caddy-wagi cache file"));
        }
        let code = crate::sealed::copy_of(file, code_len).map_err(Rejected::Unreadable)?;
        let mut mac = self.mac(entry);
        crate::sealed::for_each_chunk(&code, 0, code_len, |chunk| {
            mac.update(chunk);
        })
        .map_err(|_| Rejected::Invalid("changed while it was read"))?;
        let stored: [u8; MAC_LEN] = stored.try_into().unwrap_or([0; MAC_LEN]);
        // blake3::Hash compares in constant time.
        if mac.finalize() != blake3::Hash::from_bytes(stored) {
            return Err(Rejected::Invalid(
                "its MAC does not match (changed, or not written for this module)",
            ));
        }
        Ok(code)
    }

    /// Stores `code` for `entry` atomically: readers see no file or the whole file.
    pub fn store(&self, entry: &EntryKey, code: &[u8]) -> std::io::Result<()> {
        let path = self.dir.join(entry.file_name());
        let tag = self.mac(entry).update(code).finalize();
        let tmp = self
            .dir
            .join(format!(".{}.{}.tmp", entry.file_name(), std::process::id()));
        let written = (|| {
            let mut f = fs::File::create(&tmp)?;
            f.write_all(code)?;
            f.write_all(tag.as_bytes())?;
            f.write_all(TRAILER_MAGIC)?;
            f.sync_all()?;
            fs::rename(&tmp, &path)
        })();
        if written.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        written
    }

    /// Removes cache files unused for `max_age`, and temporary files writers left behind.
    /// Returns how many files were removed.
    pub fn prune(&self, max_age: Duration) -> usize {
        let Ok(entries) = fs::read_dir(&self.dir) else {
            return 0;
        };
        let now = SystemTime::now();
        let mut removed = 0;
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            let limit = if name.ends_with(".tmp") {
                STALE_TMP
            } else if name.ends_with(EXTENSION) {
                max_age
            } else {
                continue;
            };
            // symlink_metadata: a planted link is judged (and removed) as itself.
            let age = entry
                .path()
                .symlink_metadata()
                .and_then(|m| m.modified())
                .map(|t| now.duration_since(t).unwrap_or_default());
            if matches!(age, Ok(age) if age > limit) && fs::remove_file(entry.path()).is_ok() {
                removed += 1;
            }
        }
        removed
    }
}

/// `<cache_dir>.key`: beside the directory, so write access to the cache is not enough to
/// replace it.
fn key_path(dir: &Path) -> PathBuf {
    let mut name = dir.file_name().unwrap_or_default().to_os_string();
    name.push(".key");
    dir.with_file_name(name)
}

/// Reads the key, or makes a new one. Creation is atomic (hard link of a complete file), so
/// two processes starting at once agree on one key.
fn load_or_create_key(path: &Path) -> std::io::Result<[u8; KEY_LEN]> {
    let invalid = || std::io::Error::other(format!("{} is not a cache key", path.display()));
    for _ in 0..2 {
        match fs::read(path) {
            Ok(bytes) => return bytes.try_into().map_err(|_| invalid()),
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => return Err(e),
            Err(_) => {}
        }
        let mut key = [0u8; KEY_LEN];
        getrandom::fill(&mut key).map_err(std::io::Error::other)?;
        let tmp = path.with_extension(format!("key.{}.tmp", std::process::id()));
        let mut f = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)?;
        let linked = f
            .write_all(&key)
            .and_then(|()| f.sync_all())
            .and_then(|()| fs::hard_link(&tmp, path));
        let _ = fs::remove_file(&tmp);
        match linked {
            Ok(()) => return Ok(key),
            // Another process made one first: read that.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(invalid())
}

/// Marks a cache file as used now, for pruning.
fn touch(path: &Path) {
    if let Ok(f) = fs::File::options().write(true).open(path) {
        let _ = f.set_modified(SystemTime::now());
    }
}

/// The cache directories in use and their pruning schedule; opened once per directory.
#[derive(Default)]
pub struct CacheDirs {
    dirs: Mutex<HashMap<PathBuf, Tracked>>,
}

struct Tracked {
    /// `None` when the directory or its key could not be set up (logged once).
    dir: Option<Arc<CacheDir>>,
    max_age: Duration,
    /// `None` until the first prune, which the next sweep does.
    last_pruned: Option<Instant>,
}

impl CacheDirs {
    fn lock(&self) -> MutexGuard<'_, HashMap<PathBuf, Tracked>> {
        crate::locks::lock(&self.dirs)
    }

    /// The cache at `dir`, opened on first use; `max_age` is the latest configured. `None`
    /// when it cannot be used: modules are then compiled in memory.
    pub fn get(
        &self,
        dir: &Path,
        max_age: Duration,
        log: Option<&EngineLog>,
    ) -> Option<Arc<CacheDir>> {
        let mut dirs = self.lock();
        if let Some(t) = dirs.get_mut(dir) {
            t.max_age = max_age;
            return t.dir.clone();
        }
        let opened = match CacheDir::open(dir) {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                if let Some(log) = log {
                    let msg = format!(
                        "module cache {} is unusable; compiling in memory: {e}",
                        dir.display()
                    );
                    log(LogLevel::Warn, &msg);
                }
                None
            }
        };
        dirs.insert(
            dir.to_path_buf(),
            Tracked {
                dir: opened.clone(),
                max_age,
                last_pruned: None,
            },
        );
        opened
    }

    /// Prunes the directories due for it; returns (directory, files removed) for each that
    /// lost files. Runs on the housekeeping thread, never on a request.
    pub fn prune_due(&self, now: Instant) -> Vec<(PathBuf, usize)> {
        let due: Vec<(PathBuf, Arc<CacheDir>, Duration)> = self
            .lock()
            .iter_mut()
            .filter(|(_, t)| {
                t.last_pruned
                    .is_none_or(|at| now.duration_since(at) >= PRUNE_EVERY)
            })
            .filter_map(|(p, t)| {
                t.last_pruned = Some(now);
                Some((p.clone(), t.dir.clone()?, t.max_age))
            })
            .collect();
        due.into_iter()
            .map(|(path, dir, max_age)| (path, dir.prune(max_age)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(wasm: &[u8]) -> EntryKey {
        EntryKey {
            wasm_digest: blake3::hash(wasm).into(),
            compat: "0123456789abcdef".into(),
            tier: "optimized",
        }
    }

    fn contents(file: &fs::File) -> Vec<u8> {
        let mut bytes = Vec::new();
        let len = file.metadata().unwrap().len();
        crate::sealed::for_each_chunk(file, 0, len, |c| bytes.extend_from_slice(c)).unwrap();
        bytes
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("wagi-disk-cache-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir.join("cache")
    }

    #[test]
    fn round_trip_and_key_kept_outside() {
        let dir = temp_dir("round");
        let cache = CacheDir::open(&dir).unwrap();
        let e = entry(b"wasm a");
        cache.store(&e, b"native code").unwrap();
        let code = cache.load(&e).unwrap();
        assert_eq!(contents(&code), b"native code");
        // The checked copy is sealed: not even this process can change it.
        assert!((&code).write_all(b"planted").is_err());
        assert!(code.set_len(1).is_err());
        let key = key_path(&dir);
        assert!(key.exists() && !key.starts_with(&dir));
        let again = CacheDir::open(&dir).unwrap();
        assert_eq!(
            contents(&again.load(&e).unwrap()),
            b"native code",
            "key survives a restart"
        );
    }

    #[test]
    fn changed_planted_or_truncated_files_are_rejected_and_removed() {
        let dir = temp_dir("reject");
        let cache = CacheDir::open(&dir).unwrap();
        let (a, b) = (entry(b"wasm a"), entry(b"wasm b"));
        cache.store(&a, b"code of a").unwrap();
        // b's name holding a's (validly MACed) file.
        fs::copy(dir.join(a.file_name()), dir.join(b.file_name())).unwrap();
        assert!(matches!(cache.load(&b), Err(Rejected::Invalid(_))));
        assert!(!dir.join(b.file_name()).exists());
        // One flipped byte of code.
        let path = dir.join(a.file_name());
        let mut bytes = fs::read(&path).unwrap();
        bytes[0] ^= 1;
        fs::write(&path, &bytes).unwrap();
        assert!(matches!(cache.load(&a), Err(Rejected::Invalid(_))));
        // Truncated, and raw code without a trailer.
        cache.store(&a, b"code of a").unwrap();
        let len = fs::metadata(&path).unwrap().len();
        fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_len(len - 1)
            .unwrap();
        assert!(matches!(cache.load(&a), Err(Rejected::Invalid(_))));
        fs::write(&path, b"x").unwrap();
        assert!(matches!(cache.load(&a), Err(Rejected::Invalid(_))));
        assert!(matches!(cache.load(&a), Err(Rejected::Missing)));
    }

    #[test]
    fn one_tiers_code_is_not_taken_for_the_others() {
        let dir = temp_dir("tiers");
        let cache = CacheDir::open(&dir).unwrap();
        let optimized = entry(b"wasm");
        let baseline = EntryKey {
            tier: "baseline",
            ..entry(b"wasm")
        };
        assert_ne!(optimized.file_name(), baseline.file_name());
        cache.store(&optimized, b"cranelift code").unwrap();
        assert!(matches!(cache.load(&baseline), Err(Rejected::Missing)));
        fs::copy(
            dir.join(optimized.file_name()),
            dir.join(baseline.file_name()),
        )
        .unwrap();
        assert!(matches!(cache.load(&baseline), Err(Rejected::Invalid(_))));
        assert_eq!(
            contents(&cache.load(&optimized).unwrap()),
            b"cranelift code"
        );
    }

    #[test]
    fn a_key_made_elsewhere_does_not_verify() {
        let dir = temp_dir("otherkey");
        let cache = CacheDir::open(&dir).unwrap();
        let e = entry(b"wasm");
        cache.store(&e, b"code").unwrap();
        fs::remove_file(key_path(&dir)).unwrap();
        let rekeyed = CacheDir::open(&dir).unwrap();
        assert!(matches!(rekeyed.load(&e), Err(Rejected::Invalid(_))));
    }

    #[test]
    fn prune_removes_only_old_files() {
        let dir = temp_dir("prune");
        let cache = CacheDir::open(&dir).unwrap();
        let (old, fresh) = (entry(b"old"), entry(b"fresh"));
        cache.store(&old, b"1").unwrap();
        cache.store(&fresh, b"2").unwrap();
        let long_ago = SystemTime::now() - Duration::from_secs(10 * 86400);
        fs::File::options()
            .write(true)
            .open(dir.join(old.file_name()))
            .unwrap()
            .set_modified(long_ago)
            .unwrap();
        fs::write(dir.join("unrelated.txt"), b"keep").unwrap();
        assert_eq!(cache.prune(Duration::from_secs(86400)), 1);
        assert!(matches!(cache.load(&old), Err(Rejected::Missing)));
        assert!(cache.load(&fresh).is_ok());
        assert!(dir.join("unrelated.txt").exists());
    }
}
