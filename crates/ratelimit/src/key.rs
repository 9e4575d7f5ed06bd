//! Which bucket a request falls into.

use http::HeaderName;
use infergate_core::RequestContext;
use sha2::{Digest, Sha256};

/// One component of a rate-limit key.
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyPart {
    /// The client's API key (`Authorization: Bearer`, `x-api-key`, `api-key`,
    /// `x-goog-api-key`).
    ApiKey,
    /// A header, such as `x-tenant-id`.
    Header(HeaderName),
    /// The body's end-user id (`user`, or Anthropic's `metadata.user_id`).
    User,
    /// The requested model.
    Model,
}

/// Derives the rate-limit key of a request from one or more parts. The key is a SHA-256 of the
/// parts: API keys and user ids are never stored or sent to Redis in clear. A missing part
/// counts as empty, so requests without, say, an API key share one anonymous bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
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

    /// By a header's value.
    pub fn header(name: HeaderName) -> Self {
        Self::new(vec![KeyPart::Header(name)])
    }

    /// The raw values of the parts for a request (not hashed; never log them).
    pub fn raw_parts(&self, cx: &RequestContext) -> Vec<String> {
        self.parts
            .iter()
            .map(|p| match p {
                KeyPart::ApiKey => api_key(cx.headers()).unwrap_or_default().to_owned(),
                KeyPart::Header(h) => cx
                    .headers()
                    .get(h)
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or_default()
                    .to_owned(),
                KeyPart::User => cx
                    .payload()
                    .and_then(|p| p.user())
                    .unwrap_or_default()
                    .to_owned(),
                KeyPart::Model => cx
                    .payload()
                    .and_then(|p| p.model())
                    .unwrap_or_default()
                    .to_owned(),
            })
            .collect()
    }

    /// The hashed key of a request.
    pub fn key(&self, cx: &RequestContext) -> String {
        hash_parts(&self.raw_parts(cx))
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
    fn api_key_sources() {
        let mut h = http::HeaderMap::new();
        h.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(api_key(&h), Some("k1"));
        h.insert("authorization", "Bearer k2".parse().unwrap());
        assert_eq!(api_key(&h), Some("k2"));
    }
}
