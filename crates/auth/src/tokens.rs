//! OAuth2 access tokens: GCP service accounts (signed-JWT grant), the GCP metadata server, and
//! Microsoft Entra client credentials; cached, refreshed before expiry, one refresh in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use bytes::Bytes;
use http_body_util::BodyExt;
use infergate_client::UpstreamClient;
use infergate_core::Body;
use tokio::time::Instant;
use tower::ServiceExt;

use crate::{AuthError, Secret};

/// An access token and when it expires.
#[derive(Debug, Clone)]
pub struct Token {
    /// The token.
    pub value: Secret,
    /// When it stops working.
    pub expires_at: Instant,
}

/// Where access tokens come from.
#[async_trait]
pub trait TokenSource: Send + Sync + std::fmt::Debug {
    /// A fresh token.
    async fn fetch(&self) -> Result<Token, AuthError>;
}

/// A token source with a cache: a token is reused until `refresh_before` its expiry (default
/// five minutes), then refreshed on the next use; concurrent users wait for the one refresh in
/// flight instead of each fetching.
#[derive(Debug)]
pub struct CachedToken {
    source: Box<dyn TokenSource>,
    state: tokio::sync::Mutex<Option<Token>>,
    refresh_before: Duration,
    fetches: AtomicU64,
}

impl CachedToken {
    /// Caches tokens of `source`.
    pub fn new(source: impl TokenSource + 'static) -> Arc<Self> {
        Self::with_margin(source, Duration::from_secs(300))
    }

    /// Caches tokens of `source`, refreshing them `refresh_before` their expiry.
    pub fn with_margin(source: impl TokenSource + 'static, refresh_before: Duration) -> Arc<Self> {
        Arc::new(Self {
            source: Box::new(source),
            state: tokio::sync::Mutex::new(None),
            refresh_before,
            fetches: AtomicU64::new(0),
        })
    }

    /// A valid token.
    pub async fn get(&self) -> Result<Secret, AuthError> {
        let mut state = self.state.lock().await;
        // A margin too long for the clock: no token is ever fresh enough to reuse.
        if let Some(t) = state.as_ref()
            && Instant::now()
                .checked_add(self.refresh_before)
                .is_some_and(|fresh_until| t.expires_at > fresh_until)
        {
            return Ok(t.value.clone());
        }
        self.fetches.fetch_add(1, Ordering::Relaxed);
        let t = self.source.fetch().await?;
        let v = t.value.clone();
        *state = Some(t);
        Ok(v)
    }

    /// How many tokens were fetched so far.
    pub fn fetches(&self) -> u64 {
        self.fetches.load(Ordering::Relaxed)
    }
}

#[derive(serde::Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<serde_json::Value>,
}

/// The longest lifetime believed of a token endpoint's `expires_in`: one day. A longer one (or
/// `18446744073709551615`) is taken as a day, so that a token is refreshed at least daily and
/// no expiry overflows the clock.
pub const MAX_TOKEN_LIFETIME: Duration = Duration::from_secs(24 * 3600);

/// The lifetime given by a token endpoint's `expires_in`: seconds as a JSON number or a
/// numeric string (Entra's v1 endpoint sends strings), at most [`MAX_TOKEN_LIFETIME`]; one
/// hour when absent. A negative or non-numeric value is a malformed answer.
fn lifetime(expires_in: Option<&serde_json::Value>) -> Result<Duration, AuthError> {
    use serde_json::Value;
    let bad = || AuthError::TokenFetch("token endpoint sent an invalid expires_in".into());
    let secs = match expires_in {
        None | Some(Value::Null) => return Ok(Duration::from_secs(3600)),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                u
            } else {
                let f = n.as_f64().ok_or_else(bad)?;
                // JSON numbers are never NaN.
                if f < 0.0 {
                    return Err(bad());
                }
                // Saturating float-to-int conversion: a huge value becomes u64::MAX.
                #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                let u = f as u64;
                u
            }
        }
        Some(Value::String(s)) => {
            let s = s.trim();
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
                return Err(bad());
            }
            s.parse::<u64>().unwrap_or(u64::MAX)
        }
        Some(_) => return Err(bad()),
    };
    Ok(Duration::from_secs(secs).min(MAX_TOKEN_LIFETIME))
}

/// `now + lifetime`, saturating (a lifetime is at most a day, but the clock is not ours).
fn expiry(now: Instant, lifetime: Duration) -> Instant {
    now.checked_add(lifetime).unwrap_or(now)
}

/// Sends a request for a token and reads `access_token` / `expires_in` from the JSON answer.
async fn token_request(
    client: &UpstreamClient,
    req: http::Request<Body>,
) -> Result<Token, AuthError> {
    let fail = |m: String| AuthError::TokenFetch(m);
    let resp = client
        .clone()
        .oneshot(req)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let status = resp.status();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| fail(e.to_string()))?
        .to_bytes();
    if !status.is_success() {
        // The body of a failed token request may echo what was sent: not logged.
        return Err(fail(format!("token endpoint answered {status}")));
    }
    let t: TokenResponse = serde_json::from_slice(&body)
        .map_err(|_| fail("token endpoint sent no access_token".into()))?;
    let lifetime = lifetime(t.expires_in.as_ref())?;
    Ok(Token {
        value: Secret::new(t.access_token),
        expires_at: expiry(Instant::now(), lifetime),
    })
}

/// POSTs a form to a token endpoint and reads the token from the answer.
async fn post_form(
    client: &UpstreamClient,
    url: &str,
    pairs: &[(&str, &str)],
) -> Result<Token, AuthError> {
    let req = http::Request::post(url)
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(Body::full(Bytes::from(form(pairs))))
        .map_err(|e| AuthError::TokenFetch(e.to_string()))?;
    token_request(client, req).await
}

fn form(pairs: &[(&str, &str)]) -> String {
    let enc = |s: &str| {
        s.bytes()
            .map(|b| match b {
                b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                    (b as char).to_string()
                }
                _ => format!("%{b:02X}"),
            })
            .collect::<String>()
    };
    pairs
        .iter()
        .map(|(k, v)| format!("{}={}", enc(k), enc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// A GCP service account's tokens by the signed-JWT grant (RFC 7523): an RS256 JWT signed with
/// the account's key, exchanged at its `token_uri`.
pub struct ServiceAccount {
    email: String,
    token_uri: String,
    scope: String,
    key: ring::signature::RsaKeyPair,
    client: UpstreamClient,
}

impl std::fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("email", &self.email)
            .field("token_uri", &self.token_uri)
            .field("key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl ServiceAccount {
    /// From a service-account JSON key (`client_email`, `private_key`, `token_uri`), for the
    /// `cloud-platform` scope.
    pub fn from_json(json: &str) -> Result<Self, AuthError> {
        #[derive(serde::Deserialize)]
        #[allow(clippy::struct_field_names)] // the JSON key file's own field names
        struct Key {
            client_email: String,
            private_key: String,
            token_uri: String,
        }
        let k: Key = serde_json::from_str(json).map_err(|_| {
            AuthError::MissingKey(
                "service-account JSON without client_email, private_key or token_uri".into(),
            )
        })?;
        let pem: String = k
            .private_key
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect();
        let der = base64::engine::general_purpose::STANDARD
            .decode(pem.trim())
            .map_err(|_| AuthError::MissingKey("service-account private_key is not PEM".into()))?;
        let key = ring::signature::RsaKeyPair::from_pkcs8(&der).map_err(|_| {
            AuthError::MissingKey("service-account private_key is not an RSA PKCS#8 key".into())
        })?;
        let client =
            UpstreamClient::new(&k.token_uri).map_err(|e| AuthError::TokenFetch(e.to_string()))?;
        Ok(Self {
            email: k.client_email,
            token_uri: k.token_uri,
            scope: "https://www.googleapis.com/auth/cloud-platform".into(),
            key,
            client,
        })
    }

    /// The signed assertion for `now` (seconds since the epoch).
    fn assertion(&self, now: u64) -> Result<String, AuthError> {
        let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"RS256","typ":"JWT"}"#);
        let claims = serde_json::json!({"iss": self.email, "scope": self.scope,
            "aud": self.token_uri, "iat": now, "exp": now + 3600});
        let claims = URL_SAFE_NO_PAD.encode(claims.to_string());
        let msg = format!("{header}.{claims}");
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(
                &ring::signature::RSA_PKCS1_SHA256,
                &ring::rand::SystemRandom::new(),
                msg.as_bytes(),
                &mut sig,
            )
            .map_err(|_| AuthError::Signing("RS256 signing failed".into()))?;
        Ok(format!("{msg}.{}", URL_SAFE_NO_PAD.encode(sig)))
    }
}

#[async_trait]
impl TokenSource for ServiceAccount {
    async fn fetch(&self) -> Result<Token, AuthError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let assertion = self.assertion(now)?;
        post_form(
            &self.client,
            &self.token_uri,
            &[
                ("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer"),
                ("assertion", &assertion),
            ],
        )
        .await
    }
}

/// Tokens of the instance's service account from the GCP metadata server
/// (`http://metadata.google.internal` by default).
#[derive(Debug)]
pub struct MetadataServer {
    client: UpstreamClient,
}

impl MetadataServer {
    /// The metadata server at `base` (`http://metadata.google.internal`).
    pub fn new(base: &str) -> Result<Self, AuthError> {
        Ok(Self {
            client: UpstreamClient::new(base).map_err(|e| AuthError::TokenFetch(e.to_string()))?,
        })
    }
}

#[async_trait]
impl TokenSource for MetadataServer {
    async fn fetch(&self) -> Result<Token, AuthError> {
        let req = http::Request::get("/computeMetadata/v1/instance/service-accounts/default/token")
            .header("metadata-flavor", "Google")
            .body(Body::empty())
            .map_err(|e| AuthError::TokenFetch(e.to_string()))?;
        token_request(&self.client, req).await
    }
}

/// Microsoft Entra client credentials (for Azure OpenAI with Entra ID): a client id and
/// secret exchanged at `{authority}/{tenant}/oauth2/v2.0/token` for the
/// `https://cognitiveservices.azure.com/.default` scope. Written on the shared HTTP client
/// rather than pulling in azure_identity (reqwest, aws-lc-rs and a second tower-http).
#[derive(Debug)]
pub struct EntraClientCredentials {
    client: UpstreamClient,
    path: String,
    client_id: String,
    client_secret: Secret,
    scope: String,
}

impl EntraClientCredentials {
    /// Credentials of an app registration in `tenant`, at `authority`
    /// (`https://login.microsoftonline.com`).
    pub fn new(
        authority: &str,
        tenant: &str,
        client_id: impl Into<String>,
        client_secret: Secret,
    ) -> Result<Self, AuthError> {
        Ok(Self {
            client: UpstreamClient::new(authority)
                .map_err(|e| AuthError::TokenFetch(e.to_string()))?,
            path: format!("/{tenant}/oauth2/v2.0/token"),
            client_id: client_id.into(),
            client_secret,
            scope: "https://cognitiveservices.azure.com/.default".into(),
        })
    }
}

#[async_trait]
impl TokenSource for EntraClientCredentials {
    async fn fetch(&self) -> Result<Token, AuthError> {
        post_form(
            &self.client,
            &self.path,
            &[
                ("grant_type", "client_credentials"),
                ("client_id", &self.client_id),
                ("client_secret", self.client_secret.expose()),
                ("scope", &self.scope),
            ],
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug)]
    struct Counting(std::sync::Arc<AtomicU64>);

    #[async_trait]
    impl TokenSource for Counting {
        async fn fetch(&self) -> Result<Token, AuthError> {
            let n = self.0.fetch_add(1, Ordering::Relaxed) + 1;
            Ok(Token {
                value: Secret::new(format!("token-{n}")),
                expires_at: Instant::now() + Duration::from_secs(3600),
            })
        }
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_are_reused_then_refreshed_before_they_expire() {
        let n = std::sync::Arc::new(AtomicU64::new(0));
        let c = CachedToken::new(Counting(n.clone()));
        assert_eq!(c.get().await.unwrap().expose(), "token-1");
        tokio::time::advance(Duration::from_secs(3000)).await;
        assert_eq!(
            c.get().await.unwrap().expose(),
            "token-1",
            "still 10 minutes to go"
        );
        // Within five minutes of expiry (but not expired): refreshed.
        tokio::time::advance(Duration::from_secs(301)).await;
        assert_eq!(c.get().await.unwrap().expose(), "token-2");
        assert_eq!(c.fetches(), 2);
    }

    #[test]
    fn expires_in_is_clamped_and_garbage_is_an_error() {
        use serde_json::json;
        let ok = |v: serde_json::Value| lifetime(Some(&v)).unwrap();
        assert_eq!(lifetime(None).unwrap(), Duration::from_secs(3600));
        assert_eq!(ok(json!(null)), Duration::from_secs(3600));
        assert_eq!(ok(json!(3599)), Duration::from_secs(3599));
        assert_eq!(ok(json!("3599")), Duration::from_secs(3599));
        assert_eq!(ok(json!(0)), Duration::ZERO);
        assert_eq!(ok(json!(12.9)), Duration::from_secs(12));
        assert_eq!(ok(json!(u64::MAX)), MAX_TOKEN_LIFETIME);
        assert_eq!(ok(json!("18446744073709551615")), MAX_TOKEN_LIFETIME);
        assert_eq!(ok(json!("99999999999999999999999999")), MAX_TOKEN_LIFETIME);
        assert_eq!(ok(json!(1e300)), MAX_TOKEN_LIFETIME);
        for bad in [
            json!(-1),
            json!(i64::MIN),
            json!(-0.5),
            json!("-1"),
            json!("soon"),
            json!(""),
            json!("1.5"),
            json!(true),
            json!([3600]),
            json!({"s": 1}),
        ] {
            assert!(
                matches!(lifetime(Some(&bad)), Err(AuthError::TokenFetch(_))),
                "{bad}"
            );
        }
    }

    #[tokio::test]
    async fn a_huge_expiry_or_margin_does_not_overflow_the_clock() {
        let now = Instant::now();
        assert_eq!(expiry(now, MAX_TOKEN_LIFETIME), now + MAX_TOKEN_LIFETIME);
        assert!(expiry(now, Duration::MAX) >= now);
        // A margin too long for the clock: every use refreshes, nothing panics.
        let n = std::sync::Arc::new(AtomicU64::new(0));
        let c = CachedToken::with_margin(Counting(n), Duration::MAX);
        assert_eq!(c.get().await.unwrap().expose(), "token-1");
        assert_eq!(c.get().await.unwrap().expose(), "token-2");
    }
}
