//! API keys: the `igk_<key id>_<secret>` format, hashing, records and the stores.
//!
//! A key is `igk_`, a key id (1–64 of `A-Z a-z 0-9 -`), `_`, and a secret (16–128 of
//! `A-Z a-z 0-9`); generated keys have a 12-character id and a 43-character base62 secret
//! (256 random bits from the operating system). Only a hash of the whole key is stored
//! (`sha256:<hex>`, or `hmac-sha256:<hex>` under a per-deployment pepper), beside the key id:
//! a key is looked up by its id and its hash compared in constant time. A string that is not a
//! well-formed key never reaches a store.

use std::collections::HashMap;
use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime};

use async_trait::async_trait;
use hmac::{Hmac, Mac};
use infergate_core::Principal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::config::{InlineKey, PrincipalSpec, Secret, unix_secs};
use crate::error::StoreError;

#[cfg(feature = "redis")]
mod redis;
#[cfg(feature = "redis")]
pub use self::redis::RedisKeyStore;

/// The visible prefix of every key.
pub const KEY_PREFIX: &str = "igk_";

const ID_MAX: usize = 64;
const SECRET_MIN: usize = 16;
const SECRET_MAX: usize = 128;
const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// A well-formed key, split (borrowed from the request; never logged).
#[derive(Clone, Copy)]
pub struct ParsedKey<'a> {
    id: &'a str,
}

impl ParsedKey<'_> {
    /// The key id (not secret).
    pub fn id(&self) -> &str {
        self.id
    }
}

impl fmt::Debug for ParsedKey<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ParsedKey")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Splits `key` if it is a well-formed `igk_<id>_<secret>`.
pub fn parse_key(key: &str) -> Option<ParsedKey<'_>> {
    let rest = key.strip_prefix(KEY_PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    let id_ok = !id.is_empty()
        && id.len() <= ID_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
    let secret_ok = (SECRET_MIN..=SECRET_MAX).contains(&secret.len())
        && secret.bytes().all(|b| b.is_ascii_alphanumeric());
    (id_ok && secret_ok).then_some(ParsedKey { id })
}

/// Whether `id` is a valid key id.
pub fn valid_key_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= ID_MAX
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// A new random key: `(key id, whole key)`.
pub fn generate_key() -> Result<(String, Secret), StoreError> {
    let id = random_base62(12)?.to_ascii_lowercase();
    let secret = random_base62(43)?;
    let whole = format!("{KEY_PREFIX}{id}_{secret}");
    Ok((id, Secret::new(whole)))
}

fn random_base62(n: usize) -> Result<String, StoreError> {
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        getrandom::fill(&mut buf).map_err(|e| StoreError::Entropy(e.to_string()))?;
        for &b in &buf {
            // 248 = 4 × 62: rejection sampling keeps every character equally likely.
            if b < 248 && out.len() < n {
                out.push(char::from(BASE62[usize::from(b % 62)]));
            }
        }
    }
    Ok(out)
}

/// Hashes keys for storage and checks presented keys against stored hashes.
#[derive(Clone, Default)]
pub struct KeyHasher {
    pepper: Option<Arc<[u8]>>,
}

impl fmt::Debug for KeyHasher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.pepper.is_some() {
            "KeyHasher(hmac-sha256)"
        } else {
            "KeyHasher(sha256)"
        })
    }
}

impl KeyHasher {
    /// Plain SHA-256.
    pub fn sha256() -> Self {
        Self { pepper: None }
    }

    /// HMAC-SHA-256 under a per-deployment pepper (new hashes use it; `sha256:` hashes still
    /// verify).
    pub fn hmac(pepper: &[u8]) -> Self {
        Self {
            pepper: Some(pepper.into()),
        }
    }

    /// The stored form of `key`'s hash.
    pub fn hash(&self, key: &str) -> String {
        match &self.pepper {
            Some(p) => format!("hmac-sha256:{}", hex(&hmac_digest(p, key))),
            None => format!("sha256:{}", hex(&Sha256::digest(key.as_bytes()))),
        }
    }

    fn verify(&self, key: &str, stored: &StoredHash) -> bool {
        let computed: [u8; 32] = match stored {
            StoredHash::Sha256(_) => Sha256::digest(key.as_bytes()).into(),
            StoredHash::HmacSha256(_) => match &self.pepper {
                Some(p) => hmac_digest(p, key),
                None => return false,
            },
        };
        let expected = match stored {
            StoredHash::Sha256(d) | StoredHash::HmacSha256(d) => d,
        };
        computed.ct_eq(expected).into()
    }
}

fn hmac_digest(pepper: &[u8], key: &str) -> [u8; 32] {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(pepper) else {
        // HMAC takes keys of any length; this cannot happen.
        return [0; 32];
    };
    mac.update(key.as_bytes());
    mac.finalize().into_bytes().into()
}

/// What is wrong with a JSON record, without its content (serde_json's messages may quote
/// values, and a value in the wrong field could be a key).
pub(crate) fn json_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not JSON",
        serde_json::error::Category::Data => {
            "a field of the wrong type, or a required field missing"
        }
        serde_json::error::Category::Eof => "truncated JSON",
    };
    format!("{kind} (column {})", e.column())
}

fn hex(bytes: &[u8]) -> String {
    use fmt::Write as _;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

fn unhex32(s: &str) -> Option<[u8; 32]> {
    let b = s.as_bytes();
    if b.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in b.chunks_exact(2).enumerate() {
        let hi = char::from(pair[0]).to_digit(16)?;
        let lo = char::from(pair[1]).to_digit(16)?;
        out[i] = u8::try_from(hi * 16 + lo).ok()?;
    }
    Some(out)
}

#[derive(Clone, Copy)]
enum StoredHash {
    Sha256([u8; 32]),
    HmacSha256([u8; 32]),
}

impl StoredHash {
    fn parse(s: &str) -> Option<Self> {
        if let Some(h) = s.strip_prefix("sha256:") {
            unhex32(h).map(Self::Sha256)
        } else {
            s.strip_prefix("hmac-sha256:")
                .and_then(unhex32)
                .map(Self::HmacSha256)
        }
    }
}

/// A stored key: its id, its hash and what it stands for (one line of a key file, one value
/// in Redis). Its `Debug` leaves the hash out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyRecord {
    /// The key id.
    pub key_id: String,
    /// `sha256:<hex>` or `hmac-sha256:<hex>` of the whole key.
    pub hash: String,
    /// A revoked key is refused.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub revoked: bool,
    /// Expiry, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<u64>,
    /// Creation, in seconds since the Unix epoch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<u64>,
    /// What the key stands for.
    #[serde(flatten)]
    pub principal: PrincipalSpec,
}

impl fmt::Debug for KeyRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyRecord")
            .field("key_id", &self.key_id)
            .field("revoked", &self.revoked)
            .field("expires_at", &self.expires_at)
            .field("created_at", &self.created_at)
            .field("principal", &self.principal)
            .finish_non_exhaustive()
    }
}

impl KeyRecord {
    /// The record of a whole key (`igk_<id>_<secret>`), hashed with `hasher`.
    pub fn from_key(
        key: &str,
        principal: PrincipalSpec,
        hasher: &KeyHasher,
    ) -> Result<Self, StoreError> {
        let parsed = parse_key(key).ok_or_else(|| StoreError::Record {
            place: "key".into(),
            message: "not a well-formed igk_<id>_<secret> key".into(),
        })?;
        Ok(Self {
            key_id: parsed.id.to_owned(),
            hash: hasher.hash(key),
            revoked: false,
            expires_at: None,
            created_at: Some(unix_secs(SystemTime::now())),
            principal,
        })
    }

    /// A record from inline configuration (a plaintext key, or an id and a hash).
    pub fn from_inline(k: &InlineKey, hasher: &KeyHasher) -> Result<Self, StoreError> {
        let mut record = match (&k.key, &k.key_id, &k.hash) {
            (Some(key), None, None) => Self::from_key(key.expose(), k.principal.clone(), hasher)?,
            (None, Some(id), Some(hash)) => Self {
                key_id: id.clone(),
                hash: hash.clone(),
                revoked: false,
                expires_at: None,
                created_at: None,
                principal: k.principal.clone(),
            },
            _ => {
                return Err(StoreError::Record {
                    place: "inline key".into(),
                    message: "give either `key`, or `key_id` and `hash`".into(),
                });
            }
        };
        record.revoked = k.revoked;
        record.expires_at = k.expires_at;
        Ok(record)
    }
}

/// A record ready for checks: its parsed hash and its principal, built once.
pub struct KeyEntry {
    record: KeyRecord,
    hash: StoredHash,
    principal: Arc<Principal>,
}

impl fmt::Debug for KeyEntry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyEntry")
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl KeyEntry {
    /// Checks `record` (the key id and the hash) and builds its principal.
    pub fn new(record: KeyRecord) -> Result<Self, StoreError> {
        if !valid_key_id(&record.key_id) {
            return Err(StoreError::Record {
                place: "key_id".into(),
                message: "a key id is 1-64 of A-Z a-z 0-9 -".into(),
            });
        }
        let hash = StoredHash::parse(&record.hash).ok_or_else(|| StoreError::Record {
            place: record.key_id.clone(),
            message: "hash must be sha256:<64 hex> or hmac-sha256:<64 hex>".into(),
        })?;
        let principal = Arc::new(
            record
                .principal
                .to_principal(&record.key_id, record.expires_at),
        );
        Ok(Self {
            record,
            hash,
            principal,
        })
    }

    /// The record.
    pub fn record(&self) -> &KeyRecord {
        &self.record
    }

    /// The principal this key stands for.
    pub fn principal(&self) -> &Arc<Principal> {
        &self.principal
    }

    /// Whether `key` (the whole key) is this entry's key, in constant time.
    pub fn verify(&self, key: &str, hasher: &KeyHasher) -> bool {
        hasher.verify(key, &self.hash)
    }
}

/// What a store found for a key id.
#[non_exhaustive]
#[derive(Debug, Clone)]
pub enum Lookup {
    /// The key's entry (maybe revoked or expired: the caller checks).
    Found(Arc<KeyEntry>),
    /// No key with this id.
    NotFound,
    /// Not looked up: unknown key ids arrive faster than the store's lookup budget.
    Throttled,
}

/// Where keys are looked up by id.
#[async_trait]
pub trait KeyStore: Send + Sync + fmt::Debug + 'static {
    /// The entry of `key_id` (a valid key id: malformed keys never get here).
    async fn lookup(&self, key_id: &str) -> Result<Lookup, StoreError>;
}

/// Managing keys (the key tool): create, list, revoke.
#[async_trait]
pub trait KeyAdmin: Send + Sync {
    /// Creates a key for `principal`: the whole key (to show once; only its hash is stored)
    /// and its record.
    async fn create(
        &self,
        principal: PrincipalSpec,
        expires_at: Option<SystemTime>,
    ) -> Result<(Secret, KeyRecord), StoreError>;

    /// Every record (hashes included; no key).
    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError>;

    /// Revokes `key_id` (`StoreError::NotFound` if there is none).
    async fn revoke(&self, key_id: &str) -> Result<(), StoreError>;
}

/// The time source of the stores' caches and reload checks (injectable for tests).
pub trait Clock: Send + Sync + fmt::Debug + 'static {
    /// Now.
    fn now(&self) -> Instant;
}

/// The monotonic system clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Instant {
        Instant::now()
    }
}

/// A clock that moves only when told (tests).
#[derive(Debug)]
pub struct ManualClock {
    base: Instant,
    offset: Mutex<Duration>,
}

impl Default for ManualClock {
    fn default() -> Self {
        Self {
            base: Instant::now(),
            offset: Mutex::new(Duration::ZERO),
        }
    }
}

impl ManualClock {
    /// A clock standing at its creation time.
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Moves it forward.
    pub fn advance(&self, by: Duration) {
        *self.offset.lock().unwrap_or_else(PoisonError::into_inner) += by;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Instant {
        self.base + *self.offset.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn new_record(
    principal: PrincipalSpec,
    expires_at: Option<SystemTime>,
    hasher: &KeyHasher,
) -> Result<(Secret, KeyRecord), StoreError> {
    let (_, key) = generate_key()?;
    let mut record = KeyRecord::from_key(key.expose(), principal, hasher)?;
    record.expires_at = expires_at.map(unix_secs);
    Ok((key, record))
}

/// Keys held in memory (the inline configuration's store; also a [`KeyAdmin`]).
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    entries: RwLock<HashMap<String, Arc<KeyEntry>>>,
    hasher: KeyHasher,
}

impl MemoryKeyStore {
    /// A store of `records`, hashing new keys with `hasher`.
    pub fn new(
        records: impl IntoIterator<Item = KeyRecord>,
        hasher: KeyHasher,
    ) -> Result<Self, StoreError> {
        let mut entries = HashMap::new();
        for r in records {
            let e = KeyEntry::new(r)?;
            entries.insert(e.record.key_id.clone(), Arc::new(e));
        }
        Ok(Self {
            entries: RwLock::new(entries),
            hasher,
        })
    }

    /// Adds or replaces a record.
    pub fn insert(&self, record: KeyRecord) -> Result<(), StoreError> {
        let e = KeyEntry::new(record)?;
        self.entries
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(e.record.key_id.clone(), Arc::new(e));
        Ok(())
    }
}

#[async_trait]
impl KeyStore for MemoryKeyStore {
    async fn lookup(&self, key_id: &str) -> Result<Lookup, StoreError> {
        let map = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        Ok(map
            .get(key_id)
            .map_or(Lookup::NotFound, |e| Lookup::Found(e.clone())))
    }
}

#[async_trait]
impl KeyAdmin for MemoryKeyStore {
    async fn create(
        &self,
        principal: PrincipalSpec,
        expires_at: Option<SystemTime>,
    ) -> Result<(Secret, KeyRecord), StoreError> {
        let (key, record) = new_record(principal, expires_at, &self.hasher)?;
        self.insert(record.clone())?;
        Ok((key, record))
    }

    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        let map = self.entries.read().unwrap_or_else(PoisonError::into_inner);
        let mut v: Vec<_> = map.values().map(|e| e.record.clone()).collect();
        v.sort_by(|a, b| a.key_id.cmp(&b.key_id));
        Ok(v)
    }

    async fn revoke(&self, key_id: &str) -> Result<(), StoreError> {
        let mut record = {
            let map = self.entries.read().unwrap_or_else(PoisonError::into_inner);
            map.get(key_id).ok_or(StoreError::NotFound)?.record.clone()
        };
        record.revoked = true;
        self.insert(record)
    }
}

/// Keys in a file of JSON lines, one [`KeyRecord`] a line (blank lines and lines starting with
/// `#` ignored), re-read when its modification time or size changes — checked at most once per
/// check interval (default 1 s), on a lookup. A line that does not parse is skipped with a
/// warning naming its number (never its content). Revocation is therefore seen within the
/// check interval.
///
/// [`KeyAdmin`] writes append a line (create) or rewrite the file through a temporary file and
/// a rename (revoke); one writer at a time is assumed.
#[derive(Debug)]
pub struct FileKeyStore {
    path: PathBuf,
    hasher: KeyHasher,
    interval: Duration,
    clock: Arc<dyn Clock>,
    state: RwLock<FileState>,
}

#[derive(Debug)]
struct FileState {
    entries: HashMap<String, Arc<KeyEntry>>,
    stamp: Option<(SystemTime, u64)>,
    checked: Instant,
}

impl FileKeyStore {
    /// Opens (reads) `path`; a missing file is an empty store.
    pub fn open(path: impl Into<PathBuf>, hasher: KeyHasher) -> Result<Self, StoreError> {
        Self::open_with_clock(path, hasher, Arc::new(SystemClock))
    }

    /// Opens `path` with `clock` timing the modification checks.
    pub fn open_with_clock(
        path: impl Into<PathBuf>,
        hasher: KeyHasher,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let store = Self {
            path: path.into(),
            hasher,
            interval: Duration::from_secs(1),
            state: RwLock::new(FileState {
                entries: HashMap::new(),
                stamp: None,
                checked: clock.now(),
            }),
            clock,
        };
        store.reload()?;
        Ok(store)
    }

    /// Sets how often, at most, the file is checked for changes.
    #[must_use]
    pub fn with_check_interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }

    /// The file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Re-reads the file now.
    pub fn reload(&self) -> Result<(), StoreError> {
        let stamp = stamp(&self.path)?;
        let entries = read_records(&self.path)?
            .into_iter()
            .filter_map(|(line, r)| match KeyEntry::new(r) {
                Ok(e) => Some((e.record.key_id.clone(), Arc::new(e))),
                Err(e) => {
                    tracing::warn!(path = %self.path.display(), line, error = %e, "identity: key record skipped");
                    None
                }
            })
            .collect();
        let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
        st.entries = entries;
        st.stamp = stamp;
        st.checked = self.clock.now();
        Ok(())
    }

    fn maybe_reload(&self) {
        let now = self.clock.now();
        let due = {
            let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
            now.saturating_duration_since(st.checked) >= self.interval
        };
        if !due {
            return;
        }
        let changed = {
            let mut st = self.state.write().unwrap_or_else(PoisonError::into_inner);
            if now.saturating_duration_since(st.checked) < self.interval {
                return; // another caller checked meanwhile
            }
            st.checked = now;
            match stamp(&self.path) {
                Ok(s) => s != st.stamp,
                Err(e) => {
                    tracing::warn!(error = %e, "identity: key file check failed; keeping the keys read before");
                    false
                }
            }
        };
        if changed && let Err(e) = self.reload() {
            tracing::warn!(error = %e, "identity: key file reload failed; keeping the keys read before");
        }
    }

    fn io(&self, source: std::io::Error) -> StoreError {
        StoreError::Io {
            path: self.path.display().to_string(),
            source,
        }
    }
}

fn stamp(path: &Path) -> Result<Option<(SystemTime, u64)>, StoreError> {
    match std::fs::metadata(path) {
        Ok(m) => Ok(Some((
            m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            m.len(),
        ))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(source) => Err(StoreError::Io {
            path: path.display().to_string(),
            source,
        }),
    }
}

/// The records of a key file with their line numbers (1-based); bad lines are warned and
/// skipped.
fn read_records(path: &Path) -> Result<Vec<(usize, KeyRecord)>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(StoreError::Io {
                path: path.display().to_string(),
                source,
            });
        }
    };
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        match serde_json::from_str::<KeyRecord>(line) {
            Ok(r) => out.push((i + 1, r)),
            Err(e) => {
                let error = json_error(&e);
                tracing::warn!(path = %path.display(), line = i + 1, %error, "identity: key file line skipped");
            }
        }
    }
    Ok(out)
}

#[async_trait]
impl KeyStore for FileKeyStore {
    async fn lookup(&self, key_id: &str) -> Result<Lookup, StoreError> {
        self.maybe_reload();
        let st = self.state.read().unwrap_or_else(PoisonError::into_inner);
        Ok(st
            .entries
            .get(key_id)
            .map_or(Lookup::NotFound, |e| Lookup::Found(e.clone())))
    }
}

#[async_trait]
impl KeyAdmin for FileKeyStore {
    async fn create(
        &self,
        principal: PrincipalSpec,
        expires_at: Option<SystemTime>,
    ) -> Result<(Secret, KeyRecord), StoreError> {
        let (key, record) = new_record(principal, expires_at, &self.hasher)?;
        let line = serde_json::to_string(&record).map_err(|e| StoreError::Record {
            place: record.key_id.clone(),
            message: e.to_string(),
        })?;
        let mut f = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)
            .map_err(|e| self.io(e))?;
        writeln!(f, "{line}").map_err(|e| self.io(e))?;
        f.sync_all().map_err(|e| self.io(e))?;
        self.reload()?;
        Ok((key, record))
    }

    async fn list(&self) -> Result<Vec<KeyRecord>, StoreError> {
        Ok(read_records(&self.path)?
            .into_iter()
            .map(|(_, r)| r)
            .collect())
    }

    async fn revoke(&self, key_id: &str) -> Result<(), StoreError> {
        let text = match std::fs::read_to_string(&self.path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StoreError::NotFound),
            Err(e) => return Err(self.io(e)),
        };
        let mut found = false;
        let mut out = String::with_capacity(text.len() + 16);
        for line in text.lines() {
            let rec = serde_json::from_str::<KeyRecord>(line.trim()).ok();
            match rec {
                Some(mut r) if r.key_id == key_id => {
                    found = true;
                    r.revoked = true;
                    let l = serde_json::to_string(&r).map_err(|e| StoreError::Record {
                        place: key_id.to_owned(),
                        message: e.to_string(),
                    })?;
                    out.push_str(&l);
                }
                _ => out.push_str(line),
            }
            out.push('\n');
        }
        if !found {
            return Err(StoreError::NotFound);
        }
        let tmp = self.path.with_extension("tmp");
        std::fs::write(&tmp, out).map_err(|e| self.io(e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io(e))?;
        self.reload()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_and_hash() {
        let (id, key) = generate_key().unwrap();
        let p = parse_key(key.expose()).unwrap();
        assert_eq!(p.id(), id);
        assert_eq!(key.expose().len(), 4 + 12 + 1 + 43);
        for bad in [
            "",
            "igk_",
            "igk_a",
            "igk_a_short",
            "sk-abc",
            "igk__0000000000000000",
            "igk_a b_0000000000000000",
            "igk_a_000000000000000!",
        ] {
            assert!(parse_key(bad).is_none(), "{bad}");
        }
        assert!(parse_key("igk_demo_0000000000000000000000000000").is_some());
        for hasher in [KeyHasher::sha256(), KeyHasher::hmac(b"pepper")] {
            let rec = KeyRecord::from_key(key.expose(), PrincipalSpec::default(), &hasher).unwrap();
            let e = KeyEntry::new(rec).unwrap();
            assert!(e.verify(key.expose(), &hasher));
            assert!(!e.verify("igk_x_00000000000000000000", &hasher));
            assert!(!format!("{e:?}").contains(&e.record.hash));
        }
        let rec = KeyRecord::from_key(
            key.expose(),
            PrincipalSpec::default(),
            &KeyHasher::hmac(b"p"),
        )
        .unwrap();
        assert!(
            !KeyEntry::new(rec)
                .unwrap()
                .verify(key.expose(), &KeyHasher::sha256()),
            "HMAC hashes need the pepper"
        );
    }
}
