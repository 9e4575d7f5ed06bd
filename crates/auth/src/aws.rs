//! AWS credentials and SigV4 signing (the `aws-sigv4` crate: its signatures match botocore's).

use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;

use crate::{AuthError, Secret};

/// AWS credentials; the secret parts never print.
#[derive(Debug, Clone)]
pub struct AwsCredentials {
    /// The access key id (not a secret by itself, but logged nowhere either).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// A session token (temporary credentials).
    pub session_token: Option<Secret>,
}

/// Where AWS credentials come from.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum AwsCredentialSource {
    /// Given in the configuration.
    Static(AwsCredentials),
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`, read on every use.
    Environment,
    /// An AWS shared credentials file (`~/.aws/credentials` format) and a profile, re-read on
    /// every use (cheap; rotation takes effect at once).
    File {
        /// The file.
        path: std::path::PathBuf,
        /// The profile (`default` if empty).
        profile: String,
    },
}

impl AwsCredentialSource {
    /// The credentials now.
    pub fn resolve(&self) -> Result<AwsCredentials, AuthError> {
        match self {
            Self::Static(c) => Ok(c.clone()),
            Self::Environment => {
                let get = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
                Ok(AwsCredentials {
                    access_key_id: get("AWS_ACCESS_KEY_ID")
                        .ok_or_else(|| AuthError::MissingKey("AWS_ACCESS_KEY_ID".into()))?,
                    secret_access_key: Secret::new(
                        get("AWS_SECRET_ACCESS_KEY")
                            .ok_or_else(|| AuthError::MissingKey("AWS_SECRET_ACCESS_KEY".into()))?,
                    ),
                    session_token: get("AWS_SESSION_TOKEN").map(Secret::new),
                })
            }
            Self::File { path, profile } => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| AuthError::MissingKey(format!("{}: {e}", path.display())))?;
                let want = if profile.is_empty() {
                    "default"
                } else {
                    profile
                };
                let mut in_profile = false;
                let (mut id, mut secret, mut token) = (None, None, None);
                for line in text.lines().map(str::trim) {
                    if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                        in_profile = name.trim() == want;
                        continue;
                    }
                    if !in_profile {
                        continue;
                    }
                    if let Some((k, v)) = line.split_once('=') {
                        let v = v.trim().to_owned();
                        match k.trim() {
                            "aws_access_key_id" => id = Some(v),
                            "aws_secret_access_key" => secret = Some(Secret::new(v)),
                            "aws_session_token" => token = Some(Secret::new(v)),
                            _ => {}
                        }
                    }
                }
                Ok(AwsCredentials {
                    access_key_id: id.ok_or_else(|| {
                        AuthError::MissingKey(format!("aws_access_key_id in profile {want}"))
                    })?,
                    secret_access_key: secret.ok_or_else(|| {
                        AuthError::MissingKey(format!("aws_secret_access_key in profile {want}"))
                    })?,
                    session_token: token,
                })
            }
        }
    }
}

/// SigV4 settings beyond credentials, region and service.
#[derive(Debug, Clone, Copy)]
pub struct SigV4Options {
    /// Send and sign `x-amz-content-sha256` (Bedrock expects it; default true).
    pub content_sha256_header: bool,
    /// Normalise the URI path before signing (every service but S3; default true).
    pub normalize_path: bool,
    /// Include `X-Amz-Security-Token` in the signature (default true; a few services want it
    /// added after signing).
    pub sign_session_token: bool,
}

impl Default for SigV4Options {
    fn default() -> Self {
        Self {
            content_sha256_header: true,
            normalize_path: true,
            sign_session_token: true,
        }
    }
}

/// Signs a request in place with SigV4 (`Authorization`, `X-Amz-Date`, and, as configured,
/// `X-Amz-Content-SHA256` and `X-Amz-Security-Token`). `uri` is the URL the request goes to
/// (absolute, or a path with a `Host` header in `headers`); `body` the exact bytes sent.
#[allow(clippy::too_many_arguments)]
pub fn sign_sigv4(
    method: &http::Method,
    uri: &str,
    headers: &mut http::HeaderMap,
    body: &[u8],
    creds: &AwsCredentials,
    region: &str,
    service: &str,
    time: SystemTime,
    options: SigV4Options,
) -> Result<(), AuthError> {
    // aws-sigv4 rebuilds the URI and panics on some it cannot (a relative reference such as
    // `GET`; found by the sigv4 fuzzer): only an absolute URI or an origin-form path goes in,
    // and a panic inside the signer is a signing error, never a crashed request.
    match uri.parse::<http::Uri>() {
        Ok(u) if u.scheme().is_some() || uri.starts_with('/') => {}
        _ => {
            return Err(AuthError::Signing(
                "the request URI cannot be signed (neither absolute nor a path)".to_owned(),
            ));
        }
    }
    let identity = aws_credential_types::Credentials::new(
        creds.access_key_id.clone(),
        creds.secret_access_key.expose().to_owned(),
        creds.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "infergate",
    )
    .into();
    let mut settings = SigningSettings::default();
    if options.content_sha256_header {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    if !options.sign_session_token {
        settings.session_token_mode = aws_sigv4::http_request::SessionTokenMode::Exclude;
    }
    settings.uri_path_normalization_mode = if options.normalize_path {
        UriPathNormalizationMode::Enabled
    } else {
        UriPathNormalizationMode::Disabled
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| AuthError::Signing(e.to_string()))?
        .into();
    let pairs: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "x-amz-date" | "authorization" | "x-amz-security-token" | "x-amz-content-sha256"
            )
        })
        .map(|(k, v)| {
            (
                k.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let signable = SignableRequest::new(
        method.as_str(),
        uri,
        pairs.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body),
    )
    .map_err(|e| AuthError::Signing(e.to_string()))?;
    // aws-sigv4 traces the canonical request, session token included: it signs with no
    // subscriber, so that nothing it logs can reach ours (found by the log-capture test).
    let signed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        tracing::subscriber::with_default(tracing::subscriber::NoSubscriber::default(), || {
            sign(signable, &params)
        })
    }))
    .map_err(|_| AuthError::Signing("the signer refused the request".to_owned()))?;
    let (instructions, _) = signed
        .map_err(|e| AuthError::Signing(e.to_string()))?
        .into_parts();
    for (name, value) in instructions.headers() {
        let v =
            http::HeaderValue::from_str(value).map_err(|e| AuthError::Signing(e.to_string()))?;
        let n = http::HeaderName::from_bytes(name.as_bytes())
            .map_err(|e| AuthError::Signing(e.to_string()))?;
        headers.insert(n, v);
    }
    Ok(())
}
