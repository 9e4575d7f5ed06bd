//! Where keys come from: inline, the environment, or a file re-read when it changes; several
//! keys used in turn.

use std::path::PathBuf;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::SystemTime;

use crate::{AuthError, Secret};

/// One key's source.
///
/// With the `serde` feature (default) it deserializes from `env:NAME`, `file:PATH` or
/// `inline:VALUE` (see [`KeySource::from_str`](std::str::FromStr::from_str)).
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum KeySource {
    /// A value given in the configuration.
    Inline(Secret),
    /// An environment variable, read on every use.
    Env(String),
    /// A file (its trimmed content), re-read when its modification time or size changes: a
    /// rotated key takes effect on the next request, without a restart.
    File(PathBuf),
}

#[derive(Debug)]
struct Source {
    source: KeySource,
    /// For files: (mtime, len) and the value read then.
    cached: Mutex<Option<((SystemTime, u64), Secret)>>,
}

impl Source {
    fn get(&self) -> Result<Secret, AuthError> {
        match &self.source {
            KeySource::Inline(s) => Ok(s.clone()),
            KeySource::Env(name) => std::env::var(name)
                .map(Secret::new)
                .map_err(|_| AuthError::MissingKey(format!("environment variable {name}"))),
            KeySource::File(path) => {
                let meta = std::fs::metadata(path)
                    .map_err(|e| AuthError::MissingKey(format!("{}: {e}", path.display())))?;
                let stamp = (
                    meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                    meta.len(),
                );
                let mut cached = self
                    .cached
                    .lock()
                    .map_err(|_| AuthError::MissingKey("key cache lock poisoned".into()))?;
                if let Some((s, v)) = cached.as_ref()
                    && *s == stamp
                {
                    return Ok(v.clone());
                }
                let raw = std::fs::read_to_string(path)
                    .map_err(|e| AuthError::MissingKey(format!("{}: {e}", path.display())))?;
                let v = Secret::new(raw.trim());
                if v.expose().is_empty() {
                    return Err(AuthError::MissingKey(format!(
                        "{} is empty",
                        path.display()
                    )));
                }
                *cached = Some((stamp, v.clone()));
                Ok(v)
            }
        }
    }
}

/// A backend's keys, used in turn (round robin).
#[derive(Debug)]
pub struct Keys {
    sources: Vec<Source>,
    next: AtomicUsize,
}

impl Keys {
    /// Keys from `sources` (at least one).
    pub fn new(sources: impl IntoIterator<Item = KeySource>) -> Self {
        Self {
            sources: sources
                .into_iter()
                .map(|source| Source {
                    source,
                    cached: Mutex::new(None),
                })
                .collect(),
            next: AtomicUsize::new(0),
        }
    }

    /// One inline key.
    pub fn inline(key: impl Into<Secret>) -> Self {
        Self::new([KeySource::Inline(key.into())])
    }

    /// The key for the next request.
    pub fn next(&self) -> Result<Secret, AuthError> {
        if self.sources.is_empty() {
            return Err(AuthError::MissingKey("no key configured".into()));
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.sources.len();
        self.sources[i].get()
    }
}
