//! JWT bearer tokens: RS256, ES256 and EdDSA signatures checked against a JWKS (file, URL or
//! inline), issuer, audience, `exp` and `nbf` checked with leeway, claims mapped to a
//! [`Principal`].
//!
//! `alg: none`, HS* (and every algorithm not configured) are refused before any key is
//! touched; symmetric (`oct`) keys in a JWKS are ignored. An unknown `kid` re-reads the JWKS,
//! at most once per `min_refresh_interval_ms` (so a flood of made-up `kid`s cannot hammer the
//! identity provider); the JWKS is also re-read after `jwks_ttl_ms`.
//!
//! A verified token's principal is remembered (by the SHA-256 of the token, at most 10 000
//! tokens) until the token expires but at most [`VERIFIED_TTL`], so a client that sends the
//! same token on every request pays for the signature check about once a minute.

use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use infergate_core::Principal;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, JwkSet};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::config::{JwksSource, JwtAlgorithm, JwtConfig};
use crate::error::{AuthError, AuthFailure, IdentityError};

const JWKS_MAX_BYTES: usize = 1 << 20;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
const VERIFIED_CAPACITY: usize = 10_000;

/// How long a verified token is trusted without checking its signature again (also bounds how
/// long a token signed by a key removed from the JWKS keeps working).
pub const VERIFIED_TTL: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    Rsa,
    P256,
    Ed25519,
}

impl Kind {
    fn of(alg: Algorithm) -> Option<(Self, JwtAlgorithm)> {
        match alg {
            Algorithm::RS256 => Some((Self::Rsa, JwtAlgorithm::RS256)),
            Algorithm::ES256 => Some((Self::P256, JwtAlgorithm::ES256)),
            Algorithm::EdDSA => Some((Self::Ed25519, JwtAlgorithm::EdDSA)),
            _ => None,
        }
    }
}

struct VerifyKey {
    kid: Option<String>,
    kind: Kind,
    key: DecodingKey,
}

struct Keys {
    keys: Arc<Vec<VerifyKey>>,
    fetched: Instant,
}

type HttpClient = hyper_util::client::legacy::Client<
    hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
    Empty<Bytes>,
>;

/// Verified tokens: SHA-256 of the token → (trusted until, principal).
type Verified = HashMap<[u8; 32], (Instant, Arc<Principal>)>;

/// Verifies JWT bearer tokens and maps their claims to principals. Cheap to clone.
#[derive(Clone)]
pub struct JwtVerifier {
    inner: Arc<Inner>,
}

struct Inner {
    config: JwtConfig,
    keys: RwLock<Keys>,
    refresh: tokio::sync::Mutex<Option<Instant>>,
    fetches: AtomicU64,
    client: Option<HttpClient>,
    verified: Mutex<Verified>,
}

impl fmt::Debug for JwtVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.keys.read().map_or(0, |k| k.keys.len());
        f.debug_struct("JwtVerifier")
            .field("jwks", &self.inner.config.jwks)
            .field("issuers", &self.inner.config.issuers)
            .field("audiences", &self.inner.config.audiences)
            .field("keys", &n)
            .finish_non_exhaustive()
    }
}

impl JwtVerifier {
    /// A verifier for `config`; the JWKS is read now (an error if it cannot be).
    pub async fn new(config: JwtConfig) -> Result<Self, IdentityError> {
        if config.algorithms.is_empty() {
            return Err(IdentityError::Config("jwt.algorithms: at least one".into()));
        }
        let client = match &config.jwks {
            JwksSource::Url(_) => {
                let tls = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| IdentityError::Jwks(format!("TLS: {e}")))?
                    .https_or_http()
                    .enable_http1()
                    .build();
                Some(
                    hyper_util::client::legacy::Client::builder(
                        hyper_util::rt::TokioExecutor::new(),
                    )
                    .build(tls),
                )
            }
            _ => None,
        };
        let inner = Inner {
            config,
            keys: RwLock::new(Keys {
                keys: Arc::new(Vec::new()),
                fetched: Instant::now(),
            }),
            refresh: tokio::sync::Mutex::new(None),
            fetches: AtomicU64::new(0),
            client,
            verified: Mutex::new(HashMap::new()),
        };
        let keys = inner.load().await.map_err(IdentityError::Jwks)?;
        *inner.keys.write().unwrap_or_else(PoisonError::into_inner) = Keys {
            keys: Arc::new(keys),
            fetched: Instant::now(),
        };
        Ok(Self {
            inner: Arc::new(inner),
        })
    }

    /// How many times the JWKS was read (the first read included).
    pub fn jwks_fetches(&self) -> u64 {
        self.inner.fetches.load(Ordering::Relaxed)
    }

    /// Verifies `token` and maps its claims to a principal.
    pub async fn verify(&self, token: &str) -> Result<Arc<Principal>, AuthError> {
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let now = Instant::now();
        if let Some(p) = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&digest)
            .filter(|(until, _)| now < *until)
            .map(|(_, p)| p.clone())
        {
            return Ok(p);
        }
        let p = Arc::new(self.verify_uncached(token).await?);
        let lifetime = p.expires_at().map_or(VERIFIED_TTL, |exp| {
            exp.duration_since(SystemTime::now())
                .unwrap_or(Duration::ZERO)
                .min(VERIFIED_TTL)
        });
        let mut cache = self
            .inner
            .verified
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if cache.len() >= VERIFIED_CAPACITY {
            cache.retain(|_, (until, _)| now < *until);
            if cache.len() >= VERIFIED_CAPACITY {
                cache.clear();
            }
        }
        cache.insert(digest, (now + lifetime, p.clone()));
        Ok(p)
    }

    async fn verify_uncached(&self, token: &str) -> Result<Principal, AuthError> {
        let inner = &self.inner;
        let header = jsonwebtoken::decode_header(token).map_err(|_| AuthFailure::InvalidToken)?;
        let (kind, alg) = Kind::of(header.alg).ok_or(AuthFailure::InvalidToken)?;
        if !inner.config.algorithms.contains(&alg) {
            return Err(AuthFailure::InvalidToken.into());
        }
        let mut keys = inner.current().await;
        if header
            .kid
            .as_deref()
            .is_some_and(|kid| !keys.iter().any(|k| k.kid.as_deref() == Some(kid)))
        {
            keys = inner.refresh_for_unknown_kid(header.kid.as_deref()).await;
        }
        let candidates: Vec<&VerifyKey> = keys
            .iter()
            .filter(|k| k.kind == kind)
            .filter(|k| match (&header.kid, &k.kid) {
                (Some(want), Some(have)) => want == have,
                (Some(_), None) => false,
                (None, _) => true,
            })
            .collect();
        if candidates.is_empty() {
            return Err(AuthFailure::InvalidToken.into());
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = inner.config.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp"]);
        if inner.config.audiences.is_empty() {
            validation.validate_aud = false;
        } else {
            validation.set_audience(&inner.config.audiences);
        }
        if !inner.config.issuers.is_empty() {
            validation.set_issuer(&inner.config.issuers);
        }
        let mut last = AuthFailure::InvalidToken;
        for k in candidates {
            match jsonwebtoken::decode::<Value>(token, &k.key, &validation) {
                Ok(data) => return inner.principal(&data.claims).map_err(Into::into),
                Err(e) => {
                    use jsonwebtoken::errors::ErrorKind as E;
                    match e.kind() {
                        E::ExpiredSignature => return Err(AuthFailure::TokenExpired.into()),
                        E::InvalidSignature => last = AuthFailure::InvalidToken,
                        _ => return Err(AuthFailure::InvalidToken.into()),
                    }
                }
            }
        }
        Err(last.into())
    }
}

impl Inner {
    async fn current(&self) -> Arc<Vec<VerifyKey>> {
        let (keys, stale) = {
            let k = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            (
                k.keys.clone(),
                k.fetched.elapsed() >= Duration::from_millis(self.config.jwks_ttl_ms),
            )
        };
        if !stale {
            return keys;
        }
        let _guard = self.refresh.lock().await;
        {
            let k = self.keys.read().unwrap_or_else(PoisonError::into_inner);
            if k.fetched.elapsed() < Duration::from_millis(self.config.jwks_ttl_ms) {
                return k.keys.clone();
            }
        }
        self.swap_in(keys).await
    }

    /// Loads the JWKS again (or keeps the keys on failure) and stores it.
    async fn swap_in(&self, old: Arc<Vec<VerifyKey>>) -> Arc<Vec<VerifyKey>> {
        match self.load().await {
            Ok(keys) => {
                let keys = Arc::new(keys);
                *self.keys.write().unwrap_or_else(PoisonError::into_inner) = Keys {
                    keys: keys.clone(),
                    fetched: Instant::now(),
                };
                keys
            }
            Err(e) => {
                tracing::warn!(error = %e, "identity: JWKS refresh failed; keeping the keys read before");
                let mut k = self.keys.write().unwrap_or_else(PoisonError::into_inner);
                k.fetched = Instant::now();
                old
            }
        }
    }

    async fn refresh_for_unknown_kid(&self, kid: Option<&str>) -> Arc<Vec<VerifyKey>> {
        let mut last = self.refresh.lock().await;
        let keys = self
            .keys
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .keys
            .clone();
        if keys.iter().any(|k| k.kid.as_deref() == kid) {
            return keys; // refreshed by another request meanwhile
        }
        let min = Duration::from_millis(self.config.min_refresh_interval_ms);
        if last.is_some_and(|t| t.elapsed() < min) {
            return keys;
        }
        *last = Some(Instant::now());
        self.swap_in(keys).await
    }

    async fn load(&self) -> Result<Vec<VerifyKey>, String> {
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let text: Bytes = match &self.config.jwks {
            JwksSource::Inline(s) => Bytes::from(s.clone()),
            JwksSource::File(p) => tokio::fs::read(p)
                .await
                .map(Bytes::from)
                .map_err(|e| format!("{}: {e}", p.display()))?,
            JwksSource::Url(u) => self.fetch(u).await?,
        };
        let set: JwkSet = serde_json::from_slice(&text)
            .map_err(|e| format!("not a JWKS: {}", crate::keys::json_error(&e)))?;
        let mut out = Vec::new();
        for jwk in &set.keys {
            let kind = match &jwk.algorithm {
                AlgorithmParameters::RSA(_) => Kind::Rsa,
                AlgorithmParameters::EllipticCurve(p) if p.curve == EllipticCurve::P256 => {
                    Kind::P256
                }
                AlgorithmParameters::OctetKeyPair(p) if p.curve == EllipticCurve::Ed25519 => {
                    Kind::Ed25519
                }
                // Symmetric keys (HS*) and other curves are never used.
                _ => continue,
            };
            match DecodingKey::from_jwk(jwk) {
                Ok(key) => out.push(VerifyKey {
                    kid: jwk.common.key_id.clone(),
                    kind,
                    key,
                }),
                Err(e) => {
                    tracing::warn!(kid = ?jwk.common.key_id, error = %e, "identity: JWKS key skipped");
                }
            }
        }
        Ok(out)
    }

    async fn fetch(&self, url: &str) -> Result<Bytes, String> {
        let client = self.client.as_ref().ok_or("no HTTP client")?;
        let uri: http::Uri = url.parse().map_err(|e| format!("JWKS URL: {e}"))?;
        let req = http::Request::get(uri)
            .header(http::header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|e| format!("JWKS request: {e}"))?;
        let work = async {
            let resp = client
                .request(req)
                .await
                .map_err(|e| format!("JWKS fetch: {e}"))?;
            if !resp.status().is_success() {
                return Err(format!("JWKS fetch: status {}", resp.status()));
            }
            Limited::new(resp.into_body(), JWKS_MAX_BYTES)
                .collect()
                .await
                .map(http_body_util::Collected::to_bytes)
                .map_err(|e| format!("JWKS body: {e}"))
        };
        tokio::time::timeout(FETCH_TIMEOUT, work)
            .await
            .map_err(|_| "JWKS fetch timed out".to_owned())?
    }

    fn principal(&self, claims: &Value) -> Result<Principal, AuthFailure> {
        let m = &self.config.claims;
        let id = claim_string(claims, &m.id).ok_or(AuthFailure::MissingClaim)?;
        let tenant = claim_string(claims, &m.tenant)
            .or_else(|| self.config.default_tenant.clone())
            .ok_or(AuthFailure::MissingClaim)?;
        let mut spec = self.config.principal.clone();
        spec.tenant = Some(tenant);
        if let Some(t) = m.team.as_deref().and_then(|p| claim_string(claims, p)) {
            spec.team = Some(t);
        }
        if let Some(u) = m.user.as_deref().and_then(|p| claim_string(claims, p)) {
            spec.user = Some(u);
        }
        for (label, path) in &m.labels {
            if let Some(v) = claim_string(claims, path) {
                spec.labels.insert(label.clone(), v);
            }
        }
        if let Some(list) = m
            .allowed_models
            .as_deref()
            .and_then(|p| claim_path(claims, p))
            .and_then(string_list)
        {
            spec.allowed_models = list;
        }
        for (key, path) in &m.allowed_labels {
            if let Some(list) = claim_path(claims, path).and_then(string_list) {
                spec.allowed_labels.insert(key.clone(), list);
            }
        }
        let exp = claims.get("exp").and_then(Value::as_u64);
        let mut p = spec.to_principal(&id, None);
        if let Some(exp) = exp {
            p = p.with_expires_at(UNIX_EPOCH + Duration::from_secs(exp));
        }
        Ok(p)
    }
}

/// The value at `path` in `claims`: names separated by `.`, each optionally followed by
/// `[index]` (`groups[0]`, `realm.roles[1]`). A claim whose name contains a dot is also found
/// whole (`https://example.com/tenant`).
pub fn claim_path<'a>(claims: &'a Value, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut cur = claims;
    for part in path.split('.') {
        let (name, indexes) = match part.find('[') {
            Some(i) => (&part[..i], &part[i..]),
            None => (part, ""),
        };
        if !name.is_empty() {
            cur = cur.get(name)?;
        }
        let mut rest = indexes;
        while let Some(r) = rest.strip_prefix('[') {
            let end = r.find(']')?;
            let idx: usize = r[..end].parse().ok()?;
            cur = cur.get(idx)?;
            rest = &r[end + 1..];
        }
        if !rest.is_empty() {
            return None;
        }
    }
    Some(cur)
}

fn claim_string(claims: &Value, path: &str) -> Option<String> {
    match claim_path(claims, path)? {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// A claim holding a list of strings: an array, or a space- or comma-separated string.
fn string_list(v: &Value) -> Option<Vec<String>> {
    match v {
        Value::Array(a) => Some(
            a.iter()
                .filter_map(|v| v.as_str().map(str::to_owned))
                .collect(),
        ),
        Value::String(s) => Some(
            s.split([' ', ','])
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let v = serde_json::json!({"sub":"u1","org":{"id":42,"teams":["a","b"]},"groups":["g0"],"https://x/t":"T"});
        assert_eq!(claim_string(&v, "sub").as_deref(), Some("u1"));
        assert_eq!(claim_string(&v, "org.id").as_deref(), Some("42"));
        assert_eq!(claim_string(&v, "org.teams[1]").as_deref(), Some("b"));
        assert_eq!(claim_string(&v, "groups[0]").as_deref(), Some("g0"));
        assert_eq!(claim_string(&v, "https://x/t").as_deref(), Some("T"));
        assert_eq!(claim_string(&v, "groups[5]"), None);
        assert_eq!(claim_string(&v, "org"), None);
        assert_eq!(claim_string(&v, "groups[x]"), None);
    }
}
