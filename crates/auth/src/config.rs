//! A backend's provider credentials as plain data ([`ProviderSpec`]), as a configuration file
//! writes them, and their conversion into a [`Provider`] and a [`ProviderAuthLayer`].
//!
//! Keys are written `env:NAME`, `file:PATH` (re-read when it changes) or `inline:VALUE`
//! ([`KeySource`]); several are used in turn. With the `serde` feature (default) the types
//! deserialize; unknown fields and values are errors, and no error repeats a key's value.
//! Secrets stay [`Secret`]s: their `Debug` prints `[redacted]`.

use std::path::PathBuf;

use crate::{
    ANTHROPIC_VERSION, AwsCredentialSource, AwsCredentials, CachedToken, EntraClientCredentials,
    KeySource, Keys, MetadataServer, Provider, ProviderAuthLayer, Secret, ServiceAccount,
    SigV4Options,
};

/// Which provider's credentials a [`ProviderSpec`] describes.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(rename_all = "snake_case")
)]
pub enum ProviderKind {
    /// OpenAI (and compatible): `Authorization: Bearer` from `keys`.
    Openai,
    /// Azure OpenAI with an API key (`api-key` from `keys`; `api_version`).
    Azure,
    /// Azure OpenAI with Entra ID client credentials (`tenant`, `client_id`,
    /// `client_secret`, `authority`; `api_version`).
    AzureEntra,
    /// Anthropic: `x-api-key` from `keys`, `anthropic_version`.
    Anthropic,
    /// AWS Bedrock: SigV4 (`region`, `service`, `aws_credentials`).
    Bedrock,
    /// Google Vertex AI with a service-account JSON key file (`service_account_file`).
    Vertex,
    /// Google Vertex AI with the metadata server's tokens (`metadata_url`).
    VertexMetadata,
}

/// Where Bedrock's AWS credentials come from, as written: `env` (default), `static` (with
/// `access_key_id` and `secret_access_key`) or `file:PATH` (with `profile`).
#[non_exhaustive]
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "String")
)]
pub enum AwsCredentialsKind {
    /// `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`.
    #[default]
    Env,
    /// `access_key_id` and `secret_access_key` of the [`ProviderSpec`].
    Static,
    /// A shared credentials file.
    File(PathBuf),
}

impl TryFrom<String> for AwsCredentialsKind {
    type Error = SpecError;

    fn try_from(s: String) -> Result<Self, SpecError> {
        match s.as_str() {
            "env" => Ok(Self::Env),
            "static" => Ok(Self::Static),
            _ => s
                .strip_prefix("file:")
                .map(|p| Self::File(p.into()))
                .ok_or(SpecError::AwsCredentials),
        }
    }
}

/// A backend's provider credentials as plain data. Fields that do not concern the
/// [`provider`](Self::provider) are ignored.
#[derive(Debug, Clone)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(deny_unknown_fields)
)]
pub struct ProviderSpec {
    /// The provider.
    pub provider: ProviderKind,
    /// For `openai`, `azure`, `anthropic`: the keys, used in turn.
    #[cfg_attr(feature = "serde", serde(default))]
    pub keys: Vec<KeySource>,
    /// Keep a client's own key when it sends one (bring your own key).
    #[cfg_attr(feature = "serde", serde(default))]
    pub passthrough: bool,
    /// For `azure`, `azure_entra`: `api-version` added to the query.
    #[cfg_attr(feature = "serde", serde(default))]
    pub api_version: Option<String>,
    /// For `anthropic`: the default `anthropic-version` (default [`ANTHROPIC_VERSION`]).
    #[cfg_attr(feature = "serde", serde(default))]
    pub anthropic_version: Option<String>,
    /// For `bedrock`: the region.
    #[cfg_attr(feature = "serde", serde(default))]
    pub region: Option<String>,
    /// For `bedrock`: the signing name (default `bedrock`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub service: Option<String>,
    /// For `bedrock`: where the credentials come from (default `env`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub aws_credentials: AwsCredentialsKind,
    /// For `bedrock` with a credentials file: the profile (default `default`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub profile: Option<String>,
    /// For `bedrock` `static`: the access key id.
    #[cfg_attr(feature = "serde", serde(default))]
    pub access_key_id: Option<String>,
    /// For `bedrock` `static`: the secret access key.
    #[cfg_attr(feature = "serde", serde(default))]
    pub secret_access_key: Option<KeySource>,
    /// For `vertex`: the service-account JSON key file.
    #[cfg_attr(feature = "serde", serde(default))]
    pub service_account_file: Option<PathBuf>,
    /// For `vertex_metadata`: the metadata server (default `http://metadata.google.internal`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub metadata_url: Option<String>,
    /// For `azure_entra`: the authority (default `https://login.microsoftonline.com`).
    #[cfg_attr(feature = "serde", serde(default))]
    pub authority: Option<String>,
    /// For `azure_entra`: the tenant.
    #[cfg_attr(feature = "serde", serde(default))]
    pub tenant: Option<String>,
    /// For `azure_entra`: the client id.
    #[cfg_attr(feature = "serde", serde(default))]
    pub client_id: Option<String>,
    /// For `azure_entra`: the client secret.
    #[cfg_attr(feature = "serde", serde(default))]
    pub client_secret: Option<KeySource>,
}

/// Why provider credentials cannot be set up (naming the setting, never a value).
#[non_exhaustive]
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// A key is not written `env:NAME`, `file:PATH` or `inline:VALUE`.
    #[error("a key must be written env:NAME, file:PATH or inline:VALUE")]
    KeySource,
    /// `aws_credentials` is not `env`, `static` or `file:PATH`.
    #[error("aws_credentials: expected env, static or file:PATH")]
    AwsCredentials,
    /// The provider needs keys and has none.
    #[error("no keys")]
    NoKeys,
    /// A setting the provider needs is missing.
    #[error("{0} is required")]
    Missing(&'static str),
    /// The backend's URL is not a URI (Bedrock signs for it).
    #[error("the backend URL is not a URI")]
    Endpoint,
    /// A file could not be read.
    #[error("{path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// A credential could not be read or set up.
    #[error(transparent)]
    Auth(#[from] crate::AuthError),
}

impl TryFrom<Secret> for KeySource {
    type Error = SpecError;

    /// `env:NAME`, `file:PATH` or `inline:VALUE`.
    fn try_from(spec: Secret) -> Result<Self, SpecError> {
        match spec.expose().split_once(':') {
            Some(("env", n)) => Ok(Self::Env(n.to_owned())),
            Some(("file", p)) => Ok(Self::File(p.into())),
            Some(("inline", v)) => Ok(Self::Inline(Secret::new(v))),
            // Never echo the value: it may be a key written without a prefix.
            _ => Err(SpecError::KeySource),
        }
    }
}

impl std::str::FromStr for KeySource {
    type Err = SpecError;

    /// `env:NAME`, `file:PATH` or `inline:VALUE`.
    fn from_str(s: &str) -> Result<Self, SpecError> {
        Self::try_from(Secret::new(s))
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for Secret {
    /// A string, held zeroised-on-drop from the moment it is read.
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Self::new)
    }
}

#[cfg(feature = "serde")]
impl<'de> serde::Deserialize<'de> for KeySource {
    /// `env:NAME`, `file:PATH` or `inline:VALUE` (an error never repeats the value).
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Self::try_from(Secret::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

impl ProviderSpec {
    /// The provider, for a backend at `endpoint` (its base URL; Bedrock signs for it).
    /// Files (a service-account key) are read here.
    pub fn provider(&self, endpoint: &str) -> Result<Provider, SpecError> {
        let keys = || -> Result<Keys, SpecError> {
            if self.keys.is_empty() {
                return Err(SpecError::NoKeys);
            }
            Ok(Keys::new(self.keys.iter().cloned()))
        };
        let need =
            |v: &Option<String>, what: &'static str| v.clone().ok_or(SpecError::Missing(what));
        let read = |k: &Option<KeySource>, what: &'static str| -> Result<Secret, SpecError> {
            let source = k.clone().ok_or(SpecError::Missing(what))?;
            Ok(Keys::new([source]).next()?)
        };
        Ok(match self.provider {
            ProviderKind::Openai => Provider::OpenAi(keys()?),
            ProviderKind::Azure => Provider::AzureApiKey {
                keys: keys()?,
                api_version: self.api_version.clone(),
            },
            ProviderKind::Anthropic => Provider::Anthropic {
                keys: keys()?,
                version: self
                    .anthropic_version
                    .clone()
                    .unwrap_or_else(|| ANTHROPIC_VERSION.into()),
            },
            ProviderKind::Bedrock => {
                let credentials = match &self.aws_credentials {
                    AwsCredentialsKind::Env => AwsCredentialSource::Environment,
                    AwsCredentialsKind::Static => AwsCredentialSource::Static(AwsCredentials {
                        access_key_id: need(&self.access_key_id, "access_key_id")?,
                        secret_access_key: read(&self.secret_access_key, "secret_access_key")?,
                        session_token: None,
                    }),
                    AwsCredentialsKind::File(path) => AwsCredentialSource::File {
                        path: path.clone(),
                        profile: self.profile.clone().unwrap_or_default(),
                    },
                };
                Provider::Bedrock {
                    credentials,
                    region: need(&self.region, "region")?,
                    service: self.service.clone().unwrap_or_else(|| "bedrock".into()),
                    endpoint: endpoint.parse().map_err(|_| SpecError::Endpoint)?,
                    options: SigV4Options::default(),
                }
            }
            ProviderKind::Vertex => {
                let path = self
                    .service_account_file
                    .clone()
                    .ok_or(SpecError::Missing("service_account_file"))?;
                let json = std::fs::read_to_string(&path)
                    .map_err(|source| SpecError::Read { path, source })?;
                Provider::GcpVertex(CachedToken::new(ServiceAccount::from_json(&json)?))
            }
            ProviderKind::VertexMetadata => {
                Provider::GcpVertex(CachedToken::new(MetadataServer::new(
                    self.metadata_url
                        .as_deref()
                        .unwrap_or("http://metadata.google.internal"),
                )?))
            }
            ProviderKind::AzureEntra => Provider::AzureEntra {
                token: CachedToken::new(EntraClientCredentials::new(
                    self.authority
                        .as_deref()
                        .unwrap_or("https://login.microsoftonline.com"),
                    &need(&self.tenant, "tenant")?,
                    need(&self.client_id, "client_id")?,
                    read(&self.client_secret, "client_secret")?,
                )?),
                api_version: self.api_version.clone(),
            },
        })
    }

    /// The credential layer for a backend at `endpoint`, keeping clients' own keys when
    /// [`passthrough`](Self::passthrough) is set.
    pub fn layer(&self, endpoint: &str) -> Result<ProviderAuthLayer, SpecError> {
        Ok(ProviderAuthLayer::new(self.provider(endpoint)?).passthrough(self.passthrough))
    }
}

#[cfg(all(test, feature = "serde"))]
mod tests {
    use super::*;

    const SECRET: &str = "sk-live-0123456789abcdefSECRET";

    #[test]
    fn keys_deserialize_and_stay_redacted() {
        let s: ProviderSpec = serde_json::from_str(&format!(
            r#"{{"provider":"openai","keys":["inline:{SECRET}","env:OPENAI_API_KEY","file:/run/k"]}}"#
        ))
        .unwrap();
        assert!(!format!("{s:?}").contains(SECRET));
        assert!(matches!(&s.keys[0], KeySource::Inline(k) if k.expose() == SECRET));
        assert!(matches!(&s.keys[1], KeySource::Env(n) if n == "OPENAI_API_KEY"));
        s.layer("https://api.openai.com/v1").unwrap();
    }

    #[test]
    fn bad_values_are_errors_without_the_value() {
        let e = serde_json::from_str::<ProviderSpec>(&format!(
            r#"{{"provider":"openai","keys":["{SECRET}"]}}"#
        ))
        .unwrap_err()
        .to_string();
        assert!(!e.contains(SECRET) && e.contains("env:NAME"), "{e}");
        let e = serde_json::from_str::<ProviderSpec>(r#"{"provider":"openia"}"#)
            .unwrap_err()
            .to_string();
        assert!(e.contains("vertex_metadata"), "{e}");
        assert!(
            serde_json::from_str::<ProviderSpec>(r#"{"provider":"openai","kyes":[]}"#).is_err()
        );
        let s: ProviderSpec =
            serde_json::from_str(r#"{"provider":"bedrock","aws_credentials":"static"}"#).unwrap();
        assert!(matches!(
            s.provider("https://x"),
            Err(SpecError::Missing("access_key_id"))
        ));
        let s: ProviderSpec =
            serde_json::from_str(r#"{"provider":"bedrock","aws_credentials":"file:/x"}"#).unwrap();
        assert!(matches!(
            s.provider("https://x"),
            Err(SpecError::Missing("region"))
        ));
        let s: ProviderSpec = serde_json::from_str(r#"{"provider":"anthropic"}"#).unwrap();
        assert!(matches!(s.provider("https://x"), Err(SpecError::NoKeys)));
    }
}
