//! Cache keys: a canonical hash of what changes the answer, scoped by tenant.

use http::HeaderMap;
use infergate_core::{ApiKind, Payload, Principal};
use serde_json::Value;
use sha2::{Digest, Sha256};
use xxhash_rust::xxh3::Xxh3;

use crate::canon::hash_canonical;

/// Top-level request fields that do not change the answer and are left out of the key.
pub(crate) const IGNORED_FIELDS: &[&str] = &[
    "stream",
    "stream_options",
    "user",
    "metadata",
    "store",
    "service_tier",
    "prompt_cache_key",
    "safety_identifier",
];

/// Who a cache entry belongs to when the request carries no [`Principal`].
///
/// With a principal in the request extensions (an identity block ran first) the tenant is
/// **always the principal's tenant**, whatever the scope says: a spoofed header or bearer value
/// changes nothing. Without one, the scope below decides, and the tenant is whatever the
/// client sends (client-asserted: anyone who sends the same value shares the entries).
///
/// With the `serde` feature (default) it deserializes from `"api_key"`, `"shared"` or
/// `"header:NAME"` (see [`TenantScope::from_str`](std::str::FromStr::from_str)).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "String")
)]
#[non_exhaustive]
pub enum TenantScope {
    /// The hash of the client's API key (`Authorization: Bearer`, `x-api-key`, `api-key`);
    /// requests without one share the anonymous tenant. The default.
    #[default]
    ApiKey,
    /// The value of this header.
    Header(http::HeaderName),
    /// Everyone shares entries (only for single-tenant deployments).
    Shared,
}

/// A tenant scope that is not `api_key`, `shared` or `header:NAME` (the value is not
/// repeated: it may be a key written in the wrong place).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("expected api_key, shared or header:NAME")]
pub struct TenantScopeError;

impl std::str::FromStr for TenantScope {
    type Err = TenantScopeError;

    /// `api_key`, `shared` or `header:NAME` (a valid header name).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api_key" => Ok(Self::ApiKey),
            "shared" => Ok(Self::Shared),
            _ => s
                .strip_prefix("header:")
                .and_then(|h| http::HeaderName::from_bytes(h.as_bytes()).ok())
                .map(Self::Header)
                .ok_or(TenantScopeError),
        }
    }
}

impl TryFrom<String> for TenantScope {
    type Error = TenantScopeError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl TenantScope {
    /// The tenant of a request: a SHA-256 of the principal's tenant when there is a principal,
    /// else of the credential or header value; never the value itself. The two are
    /// domain-separated, so a header value can never name a principal's tenant.
    pub(crate) fn tenant(&self, headers: &HeaderMap, principal: Option<&Principal>) -> [u8; 32] {
        if let Some(p) = principal {
            let mut h = Sha256::new();
            h.update(b"infergate-cache-principal-tenant\0");
            h.update(p.tenant().as_bytes());
            return h.finalize().into();
        }
        let raw: Option<&[u8]> = match self {
            Self::ApiKey => headers
                .get(http::header::AUTHORIZATION)
                .or_else(|| headers.get("x-api-key"))
                .or_else(|| headers.get("api-key"))
                .map(http::HeaderValue::as_bytes),
            Self::Header(h) => headers.get(h).map(http::HeaderValue::as_bytes),
            Self::Shared => None,
        };
        let mut h = Sha256::new();
        h.update(b"infergate-cache-tenant\0");
        h.update(raw.unwrap_or(b""));
        h.finalize().into()
    }
}

/// A tenant narrowed to the request's end user: the principal's user; else the body's `user`
/// (or Anthropic's `metadata.user_id`), which only separates users *within* the tenant it is
/// scoped under. The two are domain-separated, so a body's `user` never names a principal's
/// user: a key without a user that writes `"user": "alice"` never reaches the entries of the
/// principal whose user is alice. No user at all: the tenant as is.
pub(crate) fn user_scope(
    tenant: &[u8; 32],
    principal: Option<&Principal>,
    p: &Payload,
) -> [u8; 32] {
    let (tag, user): (&[u8], &str) = match principal.and_then(Principal::user) {
        Some(u) => (b"principal\0", u),
        None => match p.user() {
            Some(u) => (b"body\0", u),
            None => return *tenant,
        },
    };
    let mut h = Sha256::new();
    h.update(b"infergate-cache-user\0");
    h.update(tenant);
    h.update(tag);
    h.update(user.as_bytes());
    h.finalize().into()
}

/// Feeds a JSON value into `h` in a canonical form: object keys sorted, so that field order
/// never matters; every value tagged by its type.
pub(crate) fn hash_value(v: &Value, h: &mut Xxh3) {
    match v {
        Value::Null => h.update(b"n"),
        Value::Bool(b) => h.update(if *b { b"t" } else { b"f" }),
        Value::Number(n) => {
            h.update(b"#");
            h.update(n.to_string().as_bytes());
            h.update(b";");
        }
        Value::String(s) => {
            h.update(b"s");
            h.update(&(s.len() as u64).to_le_bytes());
            h.update(s.as_bytes());
        }
        Value::Array(a) => {
            h.update(b"[");
            h.update(&(a.len() as u64).to_le_bytes());
            for x in a {
                hash_value(x, h);
            }
        }
        Value::Object(o) => {
            let mut keys: Vec<&String> = o.keys().collect();
            keys.sort_unstable();
            h.update(b"{");
            h.update(&(keys.len() as u64).to_le_bytes());
            for k in keys {
                h.update(&(k.len() as u64).to_le_bytes());
                h.update(k.as_bytes());
                hash_value(&o[k], h);
            }
        }
    }
}

/// The exact key of a request: tenant, API, and the canonical request minus
/// [`IGNORED_FIELDS`]. `None` when the payload cannot be represented as JSON.
pub(crate) fn exact_key(
    secret: &[u8],
    tenant: &[u8; 32],
    api: ApiKind,
    p: &Payload,
) -> Option<u128> {
    let mut h = Xxh3::new();
    h.update(secret);
    h.update(b"\0exact\0");
    h.update(tenant);
    h.update(api_tag(api));
    // Hashed from the typed request itself (no JSON value tree in between).
    let hashed = match p {
        Payload::Chat(r) => hash_canonical(r, IGNORED_FIELDS, &mut h),
        Payload::Embeddings(r) => hash_canonical(r, IGNORED_FIELDS, &mut h),
        Payload::Responses(r) => hash_canonical(r, IGNORED_FIELDS, &mut h),
        Payload::Messages(r) => hash_canonical(r, IGNORED_FIELDS, &mut h),
        Payload::Other(v) => hash_canonical(v, IGNORED_FIELDS, &mut h),
        _ => return None,
    };
    hashed.ok()?;
    Some(h.digest128())
}

/// A fixed tag per API (keys of different APIs never meet).
fn api_tag(api: ApiKind) -> &'static [u8] {
    match api {
        ApiKind::ChatCompletions => b"chat",
        ApiKind::Embeddings => b"embeddings",
        ApiKind::Responses => b"responses",
        ApiKind::AnthropicMessages => b"messages",
        ApiKind::Other => b"other",
        _ => b"unknown",
    }
}

/// The semantic scope of a chat request: tenant, model, the system prompt, the conversation
/// before the last user message, and every other answer-changing field except the messages —
/// two requests can only share a semantic entry when all of that is equal.
pub(crate) fn semantic_scope(
    secret: &[u8],
    tenant: &[u8; 32],
    p: &Payload,
) -> Option<(u128, String)> {
    let Payload::Chat(r) = p else {
        return None;
    };
    let last_user = r.messages.iter().rposition(|m| m.role == "user")?;
    let query = r.messages[last_user]
        .content
        .as_ref()?
        .joined_text()
        .into_owned();
    let Ok(Value::Object(mut o)) = p.to_value() else {
        return None;
    };
    for f in IGNORED_FIELDS {
        o.remove(*f);
    }
    // Everything but the last user message: system prompt, earlier turns, later ones (tool
    // results after it), and the parameters.
    if let Some(Value::Array(msgs)) = o.get_mut("messages")
        && last_user < msgs.len()
    {
        msgs[last_user] = Value::Null;
    }
    let mut h = Xxh3::new();
    h.update(secret);
    h.update(b"\0semantic\0");
    h.update(tenant);
    hash_value(&Value::Object(o), &mut h);
    Some((h.digest128(), query))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn payload(s: &str) -> Payload {
        Payload::parse(ApiKind::ChatCompletions, s.as_bytes()).unwrap()
    }

    #[test]
    #[allow(clippy::many_single_char_names)]
    fn field_order_stream_and_user_do_not_matter() {
        let t = [0u8; 32];
        let a =
            payload(r#"{"model":"m","temperature":0,"messages":[{"role":"user","content":"hi"}]}"#);
        let b = payload(
            r#"{"messages":[{"content":"hi","role":"user"}],"stream":true,"user":"u1","temperature":0,"model":"m"}"#,
        );
        let c = payload(
            r#"{"model":"m","temperature":0.5,"messages":[{"role":"user","content":"hi"}]}"#,
        );
        let k = |p: &Payload| exact_key(b"s", &t, ApiKind::ChatCompletions, p).unwrap();
        assert_eq!(k(&a), k(&b));
        assert_ne!(k(&a), k(&c));
        assert_ne!(
            k(&a),
            exact_key(b"s", &[1u8; 32], ApiKind::ChatCompletions, &a).unwrap()
        );
    }

    #[test]
    fn with_a_principal_its_tenant_decides_and_users_are_scoped_under_it() {
        let mut spoofed = HeaderMap::new();
        spoofed.insert("x-tenant-id", "globex".parse().unwrap());
        spoofed.insert("authorization", "Bearer other".parse().unwrap());
        let acme = Principal::new("k1", "acme");
        let header = TenantScope::Header(http::HeaderName::from_static("x-tenant-id"));
        let t = TenantScope::ApiKey.tenant(&HeaderMap::new(), Some(&acme));
        // Whatever the scope and the headers say, the principal's tenant.
        for scope in [TenantScope::ApiKey, header.clone(), TenantScope::Shared] {
            assert_eq!(scope.tenant(&spoofed, Some(&acme)), t);
        }
        // A header naming the tenant never reaches the principal's entries.
        let mut claims = HeaderMap::new();
        claims.insert("x-tenant-id", "acme".parse().unwrap());
        assert_ne!(header.tenant(&claims, None), t);
        assert_ne!(
            TenantScope::ApiKey.tenant(&HeaderMap::new(), Some(&Principal::new("k2", "globex"))),
            t
        );
        // The end user: the principal's wins over the body's; users separate scopes; a body's
        // user never names a principal's.
        let bob = payload(r#"{"model":"m","user":"bob","messages":[]}"#);
        let claims_alice = payload(r#"{"model":"m","user":"alice","messages":[]}"#);
        let nobody = payload(r#"{"model":"m","messages":[]}"#);
        let alice = Principal::new("k1", "acme").with_user("alice");
        let s = |p: Option<&Principal>, body: &Payload| user_scope(&t, p, body);
        assert_eq!(s(Some(&alice), &bob), s(Some(&alice), &nobody));
        assert_ne!(s(Some(&alice), &nobody), t);
        assert_ne!(s(Some(&acme), &claims_alice), s(Some(&alice), &nobody));
        assert_ne!(s(Some(&acme), &bob), s(Some(&acme), &claims_alice));
        assert_eq!(s(Some(&acme), &bob), s(None, &bob));
        assert_eq!(s(Some(&acme), &nobody), t);
    }

    #[test]
    fn the_semantic_scope_covers_the_earlier_conversation() {
        let t = [0u8; 32];
        let one = payload(
            r#"{"model":"m","messages":[{"role":"user","content":"about cats"},{"role":"assistant","content":"ok"},{"role":"user","content":"tell me more"}]}"#,
        );
        let two = payload(
            r#"{"model":"m","messages":[{"role":"user","content":"about dogs"},{"role":"assistant","content":"ok"},{"role":"user","content":"tell me more"}]}"#,
        );
        let (s1, q1) = semantic_scope(b"s", &t, &one).unwrap();
        let (s2, q2) = semantic_scope(b"s", &t, &two).unwrap();
        assert_eq!(q1, q2);
        assert_ne!(s1, s2);
    }
}
