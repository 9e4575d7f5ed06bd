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

impl KeyPart {
    /// The spellings [`KeyPart::from_str`](std::str::FromStr::from_str) accepts.
    pub const EXPECTED: &'static str = "api_key, user, model or header:NAME";
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

    /// `api_key`, `user`, `model` or `header:NAME` (exactly; anything else is an error, never
    /// a silent default).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "api_key" => Ok(Self::ApiKey),
            "user" => Ok(Self::User),
            "model" => Ok(Self::Model),
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
            Self::Header(h) => write!(f, "header:{h}"),
        }
    }
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
    fn key_parts_parse_exactly_and_errors_do_not_echo() {
        for p in ["api_key", "user", "model", "header:x-tenant-id"] {
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

    #[test]
    fn api_key_sources() {
        let mut h = http::HeaderMap::new();
        h.insert("x-api-key", "k1".parse().unwrap());
        assert_eq!(api_key(&h), Some("k1"));
        h.insert("authorization", "Bearer k2".parse().unwrap());
        assert_eq!(api_key(&h), Some("k2"));
    }
}
