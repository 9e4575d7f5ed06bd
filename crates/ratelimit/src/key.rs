//! Which bucket a request falls into.
//!
//! With a [`Principal`] in the request extensions (put there by an identity block such as
//! `infergate-identity`, run first), every part resolves to what the gateway checked: the
//! principal's tenant, team, key id and user. Without one, the parts are what the client
//! writes (its bearer value, a header, the body's `user`): **client-asserted**, so a client
//! that changes them gets a fresh bucket.

use http::HeaderName;
use infergate_core::{Principal, RequestContext};
use sha2::{Digest, Sha256};

/// One component of a rate-limit key. Each says what it resolves to with a [`Principal`]
/// (checked by the gateway) and without one (client-asserted).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// With a principal: its key id (never the raw credential). Without: the client's API key
    /// (`Authorization: Bearer`, `x-api-key`, `api-key`, `x-goog-api-key`), client-asserted.
    ApiKey,
    /// With a principal: the principal's **tenant** (the header is the client's word, so its
    /// value is ignored: a spoofed `x-tenant-id` changes nothing). Without: the header's value,
    /// client-asserted.
    Header(HeaderName),
    /// With a principal: `tenant␟user`, the principal's end user under its tenant, or its key
    /// id when it has no user (the body's `user` is ignored: rotating it gains no bucket).
    /// Without: the body's end-user id (`user`, or Anthropic's `metadata.user_id`),
    /// client-asserted.
    User,
    /// The requested model.
    Model,
    /// With a principal: its tenant. Without: the client's API key (a key is its own tenant),
    /// client-asserted.
    Tenant,
    /// With a principal: `tenant␟team` (empty team when it has none). Without: empty (one
    /// shared bucket).
    Team,
    /// With a principal: its key id (or the token's subject). Without: the client's API key,
    /// client-asserted.
    KeyId,
}

impl KeyPart {
    /// The spellings [`KeyPart::from_str`](std::str::FromStr::from_str) accepts.
    pub const EXPECTED: &'static str = "api_key, user, model, tenant, team, key_id or header:NAME";

    /// The raw value of this part for a request (not hashed; never log it): from the
    /// principal when there is one, else from what the client sent.
    pub fn raw_value(&self, cx: &RequestContext) -> String {
        let principal = Principal::from_extensions(cx.extensions());
        match (self, principal) {
            (Self::Model, _) => cx
                .payload()
                .and_then(|p| p.model())
                .unwrap_or_default()
                .to_owned(),
            (Self::ApiKey | Self::KeyId, Some(p)) => p.id().to_owned(),
            (Self::Tenant | Self::Header(_), Some(p)) => p.tenant().to_owned(),
            (Self::Team, Some(p)) => scoped(p.tenant(), p.team().unwrap_or_default()),
            (Self::User, Some(p)) => scoped(p.tenant(), p.user().unwrap_or(p.id())),
            (Self::ApiKey | Self::KeyId | Self::Tenant, None) => {
                api_key(cx.headers()).unwrap_or_default().to_owned()
            }
            (Self::Team, None) => String::new(),
            (Self::Header(h), None) => cx
                .headers()
                .get(h)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned(),
            (Self::User, None) => cx
                .payload()
                .and_then(|p| p.user())
                .unwrap_or_default()
                .to_owned(),
        }
    }
}

/// The limits a principal carries (its named `limits`: `requests_per_minute`,
/// `tokens_per_minute`, `input_tokens_per_minute`, `output_tokens_per_minute`,
/// `tokens_per_day`), which replace the configured ones where set. Other names are for other
/// blocks; a value that is not a whole number is ignored with a warning (naming the limit, not
/// the principal's credential).
pub(crate) fn principal_limits(p: &Principal) -> crate::Limits {
    let get = |name: &str| {
        let v = p.limit(name)?;
        let n = v.trim().parse::<u64>().ok();
        if n.is_none() {
            tracing::warn!(
                limit = name,
                principal = p.id(),
                "principal limit is not a whole number; ignored"
            );
        }
        n
    };
    crate::Limits {
        requests_per_minute: get("requests_per_minute"),
        tokens_per_minute: get("tokens_per_minute"),
        input_tokens_per_minute: get("input_tokens_per_minute"),
        output_tokens_per_minute: get("output_tokens_per_minute"),
        tokens_per_day: get("tokens_per_day"),
    }
}

/// `tenant␟name`: a name that only means something within its tenant (a team, a user). The
/// separator is the one [`hash_parts`] joins parts with, so an override for such a part is
/// written `tenant|name`.
fn scoped(tenant: &str, name: &str) -> String {
    let mut s = String::with_capacity(tenant.len() + 1 + name.len());
    s.push_str(tenant);
    s.push('\u{1f}');
    s.push_str(name);
    s
}

/// Why a string is not a [`KeyPart`]. The message never repeats the value (a misplaced API
/// key or tenant id must not reach a log); `index` is the part's position when it came from
/// [`KeyExtractor::parse`].
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyPartError {
    /// Not one of the known parts.
    #[error("{}unknown rate-limit key part (expected {})", at(*.index), KeyPart::EXPECTED)]
    Unknown {
        /// The position of the part in its list, if it came from one.
        index: Option<usize>,
    },
    /// `header:` followed by something that is not a header name.
    #[error("{}rate-limit key part `header:` without a valid header name", at(*.index))]
    InvalidHeader {
        /// The position of the part in its list, if it came from one.
        index: Option<usize>,
    },
}

fn at(index: Option<usize>) -> String {
    index.map_or_else(String::new, |i| format!("key[{i}]: "))
}

impl KeyPartError {
    fn with_index(self, i: usize) -> Self {
        match self {
            Self::Unknown { .. } => Self::Unknown { index: Some(i) },
            Self::InvalidHeader { .. } => Self::InvalidHeader { index: Some(i) },
        }
    }

    /// The position of the offending part in its list, if it came from one.
    pub fn index(&self) -> Option<usize> {
        match self {
            Self::Unknown { index } | Self::InvalidHeader { index } => *index,
        }
    }
}

impl std::str::FromStr for KeyPart {
    type Err = KeyPartError;

    /// `api_key`, `user`, `model`, `tenant`, `team`, `key_id` or `header:NAME` (exactly;
    /// anything else is an error, never a silent default).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api_key" => Ok(Self::ApiKey),
            "user" => Ok(Self::User),
            "model" => Ok(Self::Model),
            "tenant" => Ok(Self::Tenant),
            "team" => Ok(Self::Team),
            "key_id" => Ok(Self::KeyId),
            _ => match s.strip_prefix("header:") {
                Some(name) => HeaderName::try_from(name)
                    .map(Self::Header)
                    .map_err(|_| KeyPartError::InvalidHeader { index: None }),
                None => Err(KeyPartError::Unknown { index: None }),
            },
        }
    }
}

impl std::fmt::Display for KeyPart {
    /// The spelling [`KeyPart::from_str`](std::str::FromStr::from_str) reads back.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::ApiKey => f.write_str("api_key"),
            Self::User => f.write_str("user"),
            Self::Model => f.write_str("model"),
            Self::Tenant => f.write_str("tenant"),
            Self::Team => f.write_str("team"),
            Self::KeyId => f.write_str("key_id"),
            Self::Header(h) => write!(f, "header:{h}"),
        }
    }
}

/// Derives the rate-limit key of a request from one or more parts. The key is a SHA-256 of the
/// parts: API keys and user ids are never stored or sent to Redis in clear. A missing part
/// counts as empty, so requests without, say, an API key share one anonymous bucket.
///
/// With a [`Principal`] in the request extensions the parts resolve to the principal (see
/// [`KeyPart`]); without one they are client-asserted.
///
/// With the `serde` feature (default) it deserializes from a list of parts spelt as
/// [`KeyExtractor::parse`] reads them (`["tenant", "model"]`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "Vec<String>")
)]
pub struct KeyExtractor {
    parts: Vec<KeyPart>,
}

impl Default for KeyExtractor {
    /// By API key.
    fn default() -> Self {
        Self::new(vec![KeyPart::ApiKey])
    }
}

impl KeyExtractor {
    /// A key made of `parts`, in order.
    pub fn new(parts: Vec<KeyPart>) -> Self {
        Self { parts }
    }

    /// A key made of parts spelt as in a config file (`["header:x-tenant-id", "model"]`);
    /// the first part that is not one of [`KeyPart::EXPECTED`] is an error carrying its index.
    pub fn parse<S: AsRef<str>>(parts: &[S]) -> Result<Self, KeyPartError> {
        parts
            .iter()
            .enumerate()
            .map(|(i, p)| {
                p.as_ref()
                    .parse()
                    .map_err(|e: KeyPartError| e.with_index(i))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Self::new)
    }

    /// By a header's value.
    pub fn header(name: HeaderName) -> Self {
        Self::new(vec![KeyPart::Header(name)])
    }

    /// The raw values of the parts for a request (not hashed; never log them).
    pub fn raw_parts(&self, cx: &RequestContext) -> Vec<String> {
        self.parts.iter().map(|p| p.raw_value(cx)).collect()
    }

    /// The hashed key of a request.
    pub fn key(&self, cx: &RequestContext) -> String {
        hash_parts(&self.raw_parts(cx))
    }
}

impl TryFrom<Vec<String>> for KeyExtractor {
    type Error = KeyPartError;

    /// [`KeyExtractor::parse`]: the first unknown part is an error carrying its index (the
    /// value itself is not repeated).
    fn try_from(parts: Vec<String>) -> Result<Self, Self::Error> {
        Self::parse(&parts)
    }
}

/// The hashed key of raw part values (how per-key overrides are matched: configure them with
/// the raw values, e.g. the tenant id).
pub fn hash_parts(parts: &[impl AsRef<str>]) -> String {
    let mut h = Sha256::new();
    for (i, p) in parts.iter().enumerate() {
        if i > 0 {
            h.update([0x1f]);
        }
        h.update(p.as_ref().as_bytes());
    }
    let d = h.finalize();
    let mut s = String::with_capacity(32);
    for b in &d[..16] {
        use std::fmt::Write;
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The client's API key from the usual headers.
pub(crate) fn api_key(h: &http::HeaderMap) -> Option<&str> {
    if let Some(v) = h
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
    {
        let v = v.trim();
        return Some(
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .unwrap_or(v),
        );
    }
    ["x-api-key", "api-key", "x-goog-api-key"]
        .iter()
        .find_map(|n| h.get(*n).and_then(|v| v.to_str().ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_hashed_and_stable() {
        let a = hash_parts(&["sk-secret"]);
        assert_eq!(a.len(), 32);
        assert!(!a.contains("secret"));
        assert_eq!(a, hash_parts(&["sk-secret"]));
        assert_ne!(hash_parts(&["a", "bc"]), hash_parts(&["ab", "c"]));
    }

    #[test]
    fn key_parts_parse_exactly_and_errors_do_not_echo() {
        for p in [
            "api_key",
            "user",
            "model",
            "tenant",
            "team",
            "key_id",
            "header:x-tenant-id",
        ] {
            let part: KeyPart = p.parse().unwrap();
            assert_eq!(part.to_string(), p);
        }
        for bad in [
            "apikey",
            "API_KEY",
            "api_key ",
            "",
            "usr",
            "sk-live-secret",
            "header",
        ] {
            let e = bad.parse::<KeyPart>().unwrap_err();
            assert_eq!(e, KeyPartError::Unknown { index: None }, "{bad:?}");
        }
        for bad in ["header:", "header:bad header", "header:sk\nlive"] {
            let e = bad.parse::<KeyPart>().unwrap_err();
            assert_eq!(e, KeyPartError::InvalidHeader { index: None }, "{bad:?}");
        }
        let e = KeyExtractor::parse(&["model", "sk-live-secret"]).unwrap_err();
        assert_eq!(e.index(), Some(1));
        let msg = e.to_string();
        assert!(
            msg.starts_with("key[1]: unknown rate-limit key part"),
            "{msg}"
        );
        assert!(!msg.contains("secret"), "{msg}");
        let e = KeyExtractor::parse(&["header:sk secret"]).unwrap_err();
        assert!(!e.to_string().contains("secret"));
        assert_eq!(
            KeyExtractor::parse(&["header:x-tenant-id", "model"]).unwrap(),
            KeyExtractor::new(vec![
                KeyPart::Header(HeaderName::from_static("x-tenant-id")),
                KeyPart::Model
            ])
        );
        assert_eq!(
            KeyExtractor::parse::<&str>(&[]).unwrap(),
            KeyExtractor::new(vec![])
        );
    }

    fn cx(headers: &[(&str, &str)], body: &str, principal: Option<Principal>) -> RequestContext {
        let mut req = http::Request::post("/v1/chat/completions");
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let (mut head, ()) = req.body(()).unwrap().into_parts();
        if let Some(p) = principal {
            p.insert_into(&mut head.extensions);
        }
        let payload = infergate_core::Payload::parse(
            infergate_core::ApiKind::ChatCompletions,
            body.as_bytes(),
        )
        .unwrap();
        RequestContext::new(head, bytes::Bytes::from(body.to_owned()), Some(payload))
    }

    #[test]
    fn with_a_principal_parts_resolve_to_it_and_spoofs_change_nothing() {
        let parts = KeyExtractor::parse(&[
            "api_key",
            "tenant",
            "team",
            "key_id",
            "user",
            "header:x-tenant-id",
            "model",
        ])
        .unwrap();
        let body = r#"{"model":"m","user":"mallory","messages":[]}"#;
        let alice = || Principal::new("k1", "acme").with_user("alice");
        let honest = cx(
            &[("authorization", "Bearer igk_k1_secret")],
            body,
            Some(alice()),
        );
        assert_eq!(
            parts.raw_parts(&honest),
            [
                "k1",
                "acme",
                "acme\u{1f}",
                "k1",
                "acme\u{1f}alice",
                "acme",
                "m"
            ]
        );
        // Spoofed tenant header, body user and bearer value: the same key.
        let spoofed = cx(
            &[("authorization", "Bearer other"), ("x-tenant-id", "globex")],
            r#"{"model":"m","user":"bob","messages":[]}"#,
            Some(alice()),
        );
        assert_eq!(parts.key(&honest), parts.key(&spoofed));
        // Another tenant's principal with the same user name: another key.
        let other = cx(
            &[],
            body,
            Some(Principal::new("k2", "globex").with_user("alice")),
        );
        assert_ne!(parts.key(&honest), parts.key(&other));
        // No user on the principal: its key id, under its tenant (never the body's user).
        let user = KeyExtractor::parse(&["user"]).unwrap();
        let keyed = cx(&[], body, Some(Principal::new("k3", "acme")));
        assert_eq!(user.raw_parts(&keyed), ["acme\u{1f}k3"]);
        // Without a principal: what the client wrote (client-asserted).
        let open = cx(
            &[("authorization", "Bearer sk-x"), ("x-tenant-id", "t")],
            body,
            None,
        );
        assert_eq!(
            parts.raw_parts(&open),
            ["sk-x", "sk-x", "", "sk-x", "mallory", "t", "m"]
        );
    }

    #[test]
    fn a_principals_limits_are_read_by_name() {
        let p = Principal::new("k1", "acme")
            .with_limit("requests_per_minute", "5")
            .with_limit("tokens_per_day", " 1000 ")
            .with_limit("tokens_per_minute", "lots")
            .with_limit("budget_usd", "10");
        let l = principal_limits(&p);
        assert_eq!(l.requests_per_minute, Some(5));
        assert_eq!(l.tokens_per_day, Some(1000));
        assert_eq!(l.tokens_per_minute, None);
        assert!(principal_limits(&Principal::new("k2", "acme")).is_empty());
    }

    #[test]
    fn api_key_sources() {
        let mut h = http::HeaderMap::new();
        h.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(api_key(&h), Some("k1"));
        h.insert("authorization", "Bearer k2".parse().unwrap());
        assert_eq!(api_key(&h), Some("k2"));
    }
}
