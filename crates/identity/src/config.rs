//! Configuration: which credentials are accepted, where keys live, how tokens map to
//! principals. Every allowed value is an enum here (`store`, `algorithms`), so the accepted
//! spellings are written once.
//!
//! With the `serde` feature (default) the types deserialize from TOML or JSON; unknown fields
//! are errors.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use infergate_core::Principal;
use serde::{Deserialize, Serialize};

/// The identity block's configuration.
#[derive(Debug, Clone, Default)]
#[cfg_attr(
    feature = "serde",
    derive(Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct IdentityConfig {
    /// Where API keys (`igk_…`) are looked up; `None` accepts no API key.
    pub keys: Option<KeyStoreConfig>,
    /// JWT bearer tokens; `None` accepts none.
    pub jwt: Option<JwtConfig>,
    /// The principal of requests that carry no credential at all; `None` (default) answers
    /// them 401. A request with a *wrong* credential is refused either way.
    pub anonymous: Option<AnonymousConfig>,
    /// Keep the client's credential headers (`Authorization`, `x-api-key`) on the request
    /// for the upstream. Default `false`: they are removed once checked.
    pub pass_through: bool,
    /// A per-deployment secret: key hashes become HMAC-SHA-256 under it instead of plain
    /// SHA-256 (a stolen key file or Redis dump then cannot be checked offline).
    pub pepper: Option<Secret>,
}

/// The anonymous principal: its own id and tenant, with its own restrictions.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Deserialize), serde(from = "raw::Anonymous"))]
pub struct AnonymousConfig {
    /// Its id (default `anonymous`).
    pub id: Option<String>,
    /// Its tenant and restrictions (tenant default `anonymous`).
    pub principal: PrincipalSpec,
}

/// Where API keys live.
#[non_exhaustive]
#[derive(Debug, Clone)]
#[cfg_attr(
    feature = "serde",
    derive(Deserialize),
    serde(tag = "store", rename_all = "snake_case", deny_unknown_fields)
)]
pub enum KeyStoreConfig {
    /// Keys listed in the configuration.
    Inline {
        /// The keys.
        keys: Vec<InlineKey>,
    },
    /// A file of JSON lines (one [`KeyRecord`](crate::KeyRecord) a line), re-read when it
    /// changes.
    File {
        /// The file.
        path: PathBuf,
        /// How often the file's modification time is checked, at most (default 1000).
        #[cfg_attr(feature = "serde", serde(default = "default_check_ms"))]
        check_interval_ms: u64,
    },
    /// Redis, shared by replicas (feature `redis`).
    Redis(RedisStoreConfig),
}

#[cfg_attr(not(feature = "serde"), allow(dead_code))]
fn default_check_ms() -> u64 {
    1000
}

/// The Redis key store's settings. Its `Debug` hides a password in the URL.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct RedisStoreConfig {
    /// `redis://host:port/db`.
    pub url: String,
    /// The prefix of the store's Redis keys (default `igk`).
    pub prefix: String,
    /// How long a key read from Redis is trusted locally: the revocation bound (default 5000).
    pub cache_ttl_ms: u64,
    /// How long an unknown key id is remembered as unknown (default 5000).
    pub negative_ttl_ms: u64,
    /// How many unknown key ids are remembered (default 10 000).
    pub negative_capacity: usize,
    /// How many known keys are cached (default 100 000).
    pub cache_capacity: usize,
    /// Lookups of key ids not in either cache allowed per second, beyond the burst (default 50).
    pub misses_per_second: u32,
    /// The burst of such lookups (default 100).
    pub miss_burst: u32,
    /// The timeout of one Redis command (default 1000).
    pub timeout_ms: u64,
}

impl fmt::Debug for RedisStoreConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreConfig")
            .field("url", &redact_url(&self.url))
            .field("prefix", &self.prefix)
            .field("cache_ttl_ms", &self.cache_ttl_ms)
            .field("negative_ttl_ms", &self.negative_ttl_ms)
            .field("negative_capacity", &self.negative_capacity)
            .field("cache_capacity", &self.cache_capacity)
            .field("misses_per_second", &self.misses_per_second)
            .field("miss_burst", &self.miss_burst)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

/// `url` with its user information (`user:password@`) replaced by `***@`.
pub(crate) fn redact_url(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|auth| auth.rfind('@')) {
            Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

impl Default for RedisStoreConfig {
    fn default() -> Self {
        Self {
            url: "redis://127.0.0.1:6379".into(),
            prefix: "igk".into(),
            cache_ttl_ms: 5000,
            negative_ttl_ms: 5000,
            negative_capacity: 10_000,
            cache_capacity: 100_000,
            misses_per_second: 50,
            miss_burst: 100,
            timeout_ms: 1000,
        }
    }
}

/// A key in the configuration: its plaintext (hashed at load: for demos and tests) or, better,
/// its id and hash as the key tool printed them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(feature = "serde", derive(Deserialize), serde(from = "raw::InlineKey"))]
pub struct InlineKey {
    /// The whole key, `igk_<id>_<secret>` (alternative to `key_id` + `hash`).
    pub key: Option<Secret>,
    /// The key id.
    pub key_id: Option<String>,
    /// The key's hash (`sha256:<hex>` or `hmac-sha256:<hex>`).
    pub hash: Option<String>,
    /// Revoked keys are refused (kept for the record).
    pub revoked: bool,
    /// Expiry, in seconds since the Unix epoch.
    pub expires_at: Option<u64>,
    /// The principal this key stands for.
    pub principal: PrincipalSpec,
}

/// What a credential stands for, as stored with a key or configured (the serializable form of
/// a [`Principal`] without its id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PrincipalSpec {
    /// The tenant (default: the key id, so that keys without a tenant are isolated).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The team.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub team: Option<String>,
    /// The end user.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Free labels (`region = "eu"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Model globs (`*`, `?`); empty allows all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_models: Vec<String>,
    /// Path globs (`/v1/*`) or API names (`chat_completions`, `embeddings`, `responses`,
    /// `messages`); empty allows all.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub allowed_endpoints: Vec<String>,
    /// Named limits and budgets for other blocks (`tokens_per_minute = "10000"`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub limits: BTreeMap<String, String>,
    /// Backend label restrictions: label key → allowed value globs (`region = ["eu-*"]`); the
    /// router and failover send this principal's traffic only to backends they allow.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allowed_labels: BTreeMap<String, Vec<String>>,
}

impl PrincipalSpec {
    /// A spec for this tenant.
    pub fn tenant(tenant: impl Into<String>) -> Self {
        Self {
            tenant: Some(tenant.into()),
            ..Self::default()
        }
    }

    /// The principal `id` stands for (`expires_at` in seconds since the epoch).
    pub fn to_principal(&self, id: &str, expires_at: Option<u64>) -> Principal {
        let tenant = self.tenant.as_deref().unwrap_or(id);
        self.apply(Principal::new(id, tenant), expires_at)
    }

    /// The anonymous principal `id` with this spec (tenant default `anonymous`).
    pub fn to_anonymous(&self, id: &str) -> Principal {
        let tenant = self.tenant.as_deref().unwrap_or("anonymous");
        self.apply(Principal::anonymous(id, tenant), None)
    }

    fn apply(&self, base: Principal, expires_at: Option<u64>) -> Principal {
        let mut p = base
            .with_allowed_models(self.allowed_models.iter().cloned())
            .with_allowed_endpoints(self.allowed_endpoints.iter().cloned());
        if let Some(t) = &self.team {
            p = p.with_team(t.clone());
        }
        if let Some(u) = &self.user {
            p = p.with_user(u.clone());
        }
        for (k, v) in &self.labels {
            p = p.with_label(k.clone(), v.clone());
        }
        for (k, v) in &self.limits {
            p = p.with_limit(k.clone(), v.clone());
        }
        for (k, v) in &self.allowed_labels {
            p = p.with_allowed_labels(k.clone(), v.iter().cloned());
        }
        if let Some(at) = expires_at {
            p = p.with_expires_at(UNIX_EPOCH + Duration::from_secs(at));
        }
        p
    }
}

/// The JWT bearer token settings.
#[derive(Debug, Clone)]
#[cfg_attr(feature = "serde", derive(Deserialize), serde(deny_unknown_fields))]
pub struct JwtConfig {
    /// Where the verification keys come from.
    pub jwks: JwksSource,
    /// Accepted issuers (`iss`); empty accepts any.
    #[cfg_attr(feature = "serde", serde(default))]
    pub issuers: Vec<String>,
    /// Accepted audiences (`aud`); empty skips the audience check (not recommended).
    #[cfg_attr(feature = "serde", serde(default))]
    pub audiences: Vec<String>,
    /// Accepted algorithms (default: all three). `none` and HS* are never accepted.
    #[cfg_attr(feature = "serde", serde(default = "JwtAlgorithm::all"))]
    pub algorithms: Vec<JwtAlgorithm>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds (default 60).
    #[cfg_attr(feature = "serde", serde(default = "default_leeway"))]
    pub leeway_secs: u64,
    /// How claims become the principal's fields.
    #[cfg_attr(feature = "serde", serde(default))]
    pub claims: ClaimMapping,
    /// The tenant of tokens whose tenant claim is absent; `None` refuses them.
    #[cfg_attr(feature = "serde", serde(default))]
    pub default_tenant: Option<String>,
    /// Restrictions added to every token's principal (models, endpoints, limits, labels).
    #[cfg_attr(feature = "serde", serde(default))]
    pub principal: PrincipalSpec,
    /// The least time between two JWKS refreshes caused by unknown `kid`s (default 10 000).
    #[cfg_attr(feature = "serde", serde(default = "default_refresh_ms"))]
    pub min_refresh_interval_ms: u64,
    /// How long a fetched JWKS is used before it is fetched again (default 300 000).
    #[cfg_attr(feature = "serde", serde(default = "default_jwks_ttl_ms"))]
    pub jwks_ttl_ms: u64,
}

fn default_leeway() -> u64 {
    60
}
fn default_refresh_ms() -> u64 {
    10_000
}
fn default_jwks_ttl_ms() -> u64 {
    300_000
}

impl JwtConfig {
    /// Settings for `jwks` with the defaults.
    pub fn new(jwks: JwksSource) -> Self {
        Self {
            jwks,
            issuers: Vec::new(),
            audiences: Vec::new(),
            algorithms: JwtAlgorithm::all(),
            leeway_secs: default_leeway(),
            claims: ClaimMapping::default(),
            default_tenant: None,
            principal: PrincipalSpec::default(),
            min_refresh_interval_ms: default_refresh_ms(),
            jwks_ttl_ms: default_jwks_ttl_ms(),
        }
    }
}

/// Where a JWKS comes from.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Deserialize),
    serde(rename_all = "snake_case", deny_unknown_fields)
)]
pub enum JwksSource {
    /// A JWKS document on disk (re-read on an unknown `kid`).
    File(PathBuf),
    /// A JWKS URL (`https://issuer/.well-known/jwks.json`; `http://` for loopback tests).
    Url(String),
    /// A JWKS document given inline (JSON text).
    Inline(String),
}

/// The accepted signature algorithms: asymmetric only.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "serde", derive(Deserialize))]
pub enum JwtAlgorithm {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    RS256,
    /// ECDSA P-256 with SHA-256.
    ES256,
    /// Ed25519.
    EdDSA,
}

impl JwtAlgorithm {
    /// Every accepted algorithm.
    pub fn all() -> Vec<Self> {
        vec![Self::RS256, Self::ES256, Self::EdDSA]
    }
}

/// Which claim fills which field of the principal: a claim name, a dotted path
/// (`realm.tenant`) or a path with an index (`groups[0]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(Deserialize),
    serde(default, deny_unknown_fields)
)]
pub struct ClaimMapping {
    /// The principal's id (default `sub`).
    pub id: String,
    /// The tenant (default `tenant`).
    pub tenant: String,
    /// The team (default none).
    pub team: Option<String>,
    /// The end user (default `sub`).
    pub user: Option<String>,
    /// A claim holding a list of model globs, added to the configured ones (default none).
    pub allowed_models: Option<String>,
    /// Labels from claims: label name → claim path.
    pub labels: BTreeMap<String, String>,
    /// Backend label restrictions from claims: label key → the path of a claim holding the
    /// allowed value globs (a list, or a space- or comma-separated string).
    pub allowed_labels: BTreeMap<String, String>,
}

impl Default for ClaimMapping {
    fn default() -> Self {
        Self {
            id: "sub".into(),
            tenant: "tenant".into(),
            team: None,
            user: Some("sub".into()),
            allowed_models: None,
            labels: BTreeMap::new(),
            allowed_labels: BTreeMap::new(),
        }
    }
}

/// A secret string (a key, a pepper): its `Debug` and `Display` print `***`.
#[derive(Clone, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(Deserialize), serde(transparent))]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The value, for the code that uses it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// Seconds since the Unix epoch of `t` (0 before it).
pub(crate) fn unix_secs(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

/// The flat forms of the configuration (the principal's fields beside the key's), with
/// unknown fields refused (serde's `flatten` would ignore them).
#[cfg(feature = "serde")]
mod raw {
    use std::collections::BTreeMap;

    use serde::Deserialize;

    use super::{PrincipalSpec, Secret};

    #[derive(Deserialize)]
    #[serde(default, deny_unknown_fields)]
    #[derive(Default)]
    pub(super) struct InlineKey {
        key: Option<Secret>,
        key_id: Option<String>,
        hash: Option<String>,
        revoked: bool,
        expires_at: Option<u64>,
        tenant: Option<String>,
        team: Option<String>,
        user: Option<String>,
        labels: BTreeMap<String, String>,
        allowed_models: Vec<String>,
        allowed_endpoints: Vec<String>,
        limits: BTreeMap<String, String>,
        allowed_labels: BTreeMap<String, Vec<String>>,
    }

    impl From<InlineKey> for super::InlineKey {
        fn from(r: InlineKey) -> Self {
            Self {
                key: r.key,
                key_id: r.key_id,
                hash: r.hash,
                revoked: r.revoked,
                expires_at: r.expires_at,
                principal: PrincipalSpec {
                    tenant: r.tenant,
                    team: r.team,
                    user: r.user,
                    labels: r.labels,
                    allowed_models: r.allowed_models,
                    allowed_endpoints: r.allowed_endpoints,
                    limits: r.limits,
                    allowed_labels: r.allowed_labels,
                },
            }
        }
    }

    #[derive(Deserialize, Default)]
    #[serde(default, deny_unknown_fields)]
    pub(super) struct Anonymous {
        id: Option<String>,
        tenant: Option<String>,
        team: Option<String>,
        user: Option<String>,
        labels: BTreeMap<String, String>,
        allowed_models: Vec<String>,
        allowed_endpoints: Vec<String>,
        limits: BTreeMap<String, String>,
        allowed_labels: BTreeMap<String, Vec<String>>,
    }

    impl From<Anonymous> for super::AnonymousConfig {
        fn from(r: Anonymous) -> Self {
            Self {
                id: r.id,
                principal: PrincipalSpec {
                    tenant: r.tenant,
                    team: r.team,
                    user: r.user,
                    labels: r.labels,
                    allowed_models: r.allowed_models,
                    allowed_endpoints: r.allowed_endpoints,
                    limits: r.limits,
                    allowed_labels: r.allowed_labels,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redis_passwords_stay_out_of_debug() {
        assert_eq!(
            redact_url("redis://:hunter2@h:6379/0"),
            "redis://***@h:6379/0"
        );
        assert_eq!(redact_url("rediss://u:p@w@h/0"), "rediss://***@h/0");
        assert_eq!(redact_url("redis://h:6379"), "redis://h:6379");
        let c = RedisStoreConfig {
            url: "redis://:hunter2@h:6379".into(),
            ..RedisStoreConfig::default()
        };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
