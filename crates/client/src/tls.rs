//! TLS to upstreams: trusted roots (web PKI, a custom CA bundle, or both), a client
//! certificate for mTLS, a server-name override and a minimum protocol version, turned into a
//! `rustls::ClientConfig`; and the classification of rustls failures into clear messages.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, CertificateError, ClientConfig, RootCertStore};
use zeroize::Zeroizing;

use crate::{ClientError, ErrorKind};

/// The lowest TLS protocol version a client accepts from its upstream.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum TlsVersion {
    /// TLS 1.2 or 1.3 (the default).
    #[default]
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

/// Where a PEM document comes from. Bytes are kept in memory that is zeroed when dropped.
#[derive(Clone)]
pub(crate) enum PemSource {
    File(PathBuf),
    Bytes(Arc<Zeroizing<Vec<u8>>>),
}

impl PemSource {
    pub(crate) fn bytes(pem: Vec<u8>) -> Self {
        Self::Bytes(Arc::new(Zeroizing::new(pem)))
    }

    /// The PEM bytes. Errors name `option` and the file, never the content.
    fn load(&self, option: &str) -> Result<Zeroizing<Vec<u8>>, ClientError> {
        match self {
            Self::File(path) => std::fs::read(path).map(Zeroizing::new).map_err(|e| {
                config_error(format!(
                    "{option}: cannot read {}: {}",
                    path.display(),
                    io_reason(&e)
                ))
            }),
            Self::Bytes(b) => Ok(Zeroizing::new(b.to_vec())),
        }
    }

    /// Says where the PEM came from, for error messages (a path, or "the PEM given").
    fn origin(&self) -> String {
        match self {
            Self::File(path) => path.display().to_string(),
            Self::Bytes(_) => "the PEM given".to_owned(),
        }
    }
}

/// Shows the file path or the length of in-memory PEM; `secret` hides even the length.
struct ShowSource<'a>(&'a PemSource, bool);

impl fmt::Debug for ShowSource<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.0, self.1) {
            (PemSource::File(p), _) => f.debug_tuple("File").field(p).finish(),
            (PemSource::Bytes(_), true) => f.write_str("Pem([redacted])"),
            (PemSource::Bytes(b), false) => write!(f, "Pem({} bytes)", b.len()),
        }
    }
}

/// The TLS options of one upstream client.
#[derive(Clone)]
pub(crate) struct TlsOptions {
    pub(crate) web_pki_roots: bool,
    pub(crate) ca: Vec<PemSource>,
    /// Certificate chain and private key.
    pub(crate) identity: Option<(PemSource, PemSource)>,
    pub(crate) server_name: Option<String>,
    pub(crate) min_version: TlsVersion,
}

impl Default for TlsOptions {
    fn default() -> Self {
        Self {
            web_pki_roots: true,
            ca: Vec::new(),
            identity: None,
            server_name: None,
            min_version: TlsVersion::Tls12,
        }
    }
}

impl fmt::Debug for TlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Ca<'a>(&'a [PemSource]);
        impl fmt::Debug for Ca<'_> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_list()
                    .entries(self.0.iter().map(|s| ShowSource(s, false)))
                    .finish()
            }
        }
        let identity = self
            .identity
            .as_ref()
            .map(|(c, k)| (ShowSource(c, false), ShowSource(k, true)));
        f.debug_struct("TlsOptions")
            .field("web_pki_roots", &self.web_pki_roots)
            .field("ca", &Ca(&self.ca))
            .field("client_identity", &identity)
            .field("server_name", &self.server_name)
            .field("min_version", &self.min_version)
            .finish()
    }
}

fn config_error(message: String) -> ClientError {
    ClientError::new(ErrorKind::InvalidConfig, message)
}

/// An I/O error's reason without anything from the file.
fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".to_owned(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_owned(),
        kind => kind.to_string(),
    }
}

/// A PEM parse failure, described without echoing the input (a bad line of a key file is key
/// material).
fn pem_reason(e: &rustls::pki_types::pem::Error) -> &'static str {
    use rustls::pki_types::pem::Error as E;
    match e {
        E::MissingSectionEnd { .. } => "a PEM section has no END line",
        E::IllegalSectionStart { .. } => "a PEM BEGIN line is malformed",
        E::Base64Decode(_) => "a PEM section is not valid base64",
        E::NoItemsFound => "no PEM section of the expected type",
        _ => "not valid PEM",
    }
}

fn load_certs(src: &PemSource, option: &str) -> Result<Vec<CertificateDer<'static>>, ClientError> {
    let pem = src.load(option)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| {
            config_error(format!(
                "{option}: {} is not a PEM certificate list: {}",
                src.origin(),
                pem_reason(&e)
            ))
        })?;
    if certs.is_empty() {
        return Err(config_error(format!(
            "{option}: {} holds no PEM certificate (\"-----BEGIN CERTIFICATE-----\")",
            src.origin()
        )));
    }
    Ok(certs)
}

fn load_key(src: &PemSource, option: &str) -> Result<PrivateKeyDer<'static>, ClientError> {
    let pem = src.load(option)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| {
        config_error(format!(
            "{option}: {} holds no usable private key (PKCS#8, PKCS#1 or SEC1 PEM): {}",
            src.origin(),
            pem_reason(&e)
        ))
    })
}

/// The server name to verify and send as SNI, from an override such as `api.example.test`,
/// `10.0.0.7` or `[::1]`.
pub(crate) fn parse_server_name(name: &str) -> Result<ServerName<'static>, ClientError> {
    let bare = name
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(name);
    ServerName::try_from(bare.to_owned()).map_err(|_| {
        config_error(format!(
            "tls_server_name: {name:?} is not a DNS name or an IP address"
        ))
    })
}

impl TlsOptions {
    /// The rustls configuration (without ALPN: the connector sets it).
    pub(crate) fn client_config(&self) -> Result<ClientConfig, ClientError> {
        let mut roots = RootCertStore::empty();
        if self.web_pki_roots {
            roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        }
        for src in &self.ca {
            for cert in load_certs(src, "tls_ca")? {
                roots.add(cert).map_err(|e| {
                    config_error(format!(
                        "tls_ca: a certificate in {} cannot be a trust anchor: {e}",
                        src.origin()
                    ))
                })?;
            }
        }
        if roots.is_empty() {
            return Err(config_error(
                "tls_web_pki_roots: the web PKI roots are off and no CA bundle was given \
                 (tls_ca_file or tls_ca_pem): no server could be trusted"
                    .to_owned(),
            ));
        }
        let versions: &[&'static rustls::SupportedProtocolVersion] = match self.min_version {
            TlsVersion::Tls12 => &[&rustls::version::TLS13, &rustls::version::TLS12],
            TlsVersion::Tls13 => &[&rustls::version::TLS13],
        };
        let builder =
            ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_protocol_versions(versions)
                .map_err(|e| config_error(format!("tls_min_version: {e}")))?
                .with_root_certificates(roots);
        match &self.identity {
            None => Ok(builder.with_no_client_auth()),
            Some((cert, key)) => {
                let chain = load_certs(cert, "tls_client_cert (certificate)")?;
                let key = load_key(key, "tls_client_cert (private key)")?;
                builder.with_client_auth_cert(chain, key).map_err(|e| {
                    config_error(format!(
                        "tls_client_cert: the certificate and the private key cannot be used \
                         together: {e}"
                    ))
                })
            }
        }
    }
}

/// The rustls error somewhere in `err`'s source chain (also inside an `io::Error`, whose
/// `source` skips the error it wraps).
///
/// An alert received on an HTTP/2 connection after the handshake (a TLS 1.3 server refusing
/// the client's certificate) reaches us as text only: h2 keeps I/O errors as a kind and a
/// message. Those alerts are recognised by rustls' own wording.
pub(crate) fn find_rustls_error(err: &(dyn std::error::Error + 'static)) -> Option<rustls::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r.clone());
        }
        if let Some(inner) = e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            if let Some(r) = find_rustls_error(inner) {
                return Some(r);
            }
            if let Some(alert) = alert_from_text(&inner.to_string()) {
                return Some(rustls::Error::AlertReceived(alert));
            }
        }
        cur = e.source();
    }
    None
}

/// The alert in rustls' "received fatal alert: NAME" message, for the alerts a server sends
/// when it refuses a handshake.
fn alert_from_text(text: &str) -> Option<AlertDescription> {
    let name = text.strip_prefix("received fatal alert: ")?;
    [
        AlertDescription::CertificateRequired,
        AlertDescription::BadCertificate,
        AlertDescription::UnknownCA,
        AlertDescription::CertificateUnknown,
        AlertDescription::CertificateExpired,
        AlertDescription::CertificateRevoked,
        AlertDescription::UnsupportedCertificate,
        AlertDescription::AccessDenied,
        AlertDescription::HandshakeFailure,
        AlertDescription::ProtocolVersion,
        AlertDescription::DecryptError,
    ]
    .into_iter()
    .find(|a| format!("{a:?}") == name)
}

/// A clear message for a TLS failure with the upstream (no paths, no key material).
pub(crate) fn describe(e: &rustls::Error) -> String {
    match e {
        rustls::Error::InvalidCertificate(c) => match c {
            CertificateError::UnknownIssuer => {
                "the upstream's TLS certificate was not trusted: it is not issued by a trusted \
                 CA (check the backend's CA bundle)"
                    .to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "the upstream's TLS certificate did not match the server name (set a server \
                     name override if the URL's host differs from the certificate's): {e}"
                )
            }
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!("the upstream's TLS certificate was not trusted: it has expired: {e}")
            }
            _ => format!("the upstream's TLS certificate was not trusted: {e}"),
        },
        rustls::Error::AlertReceived(
            a @ (AlertDescription::CertificateRequired
            | AlertDescription::BadCertificate
            | AlertDescription::UnknownCA
            | AlertDescription::CertificateUnknown
            | AlertDescription::CertificateExpired
            | AlertDescription::CertificateRevoked
            | AlertDescription::UnsupportedCertificate
            | AlertDescription::DecryptError
            | AlertDescription::AccessDenied
            | AlertDescription::HandshakeFailure),
        ) => format!(
            "the upstream refused the TLS handshake ({a:?}): it may require a client certificate \
             (mTLS), or not trust the one presented"
        ),
        rustls::Error::AlertReceived(AlertDescription::ProtocolVersion)
        | rustls::Error::PeerIncompatible(_) => format!(
            "the upstream's TLS version or cipher suites are not accepted by this client (check \
             the minimum TLS version): {e}"
        ),
        _ => format!("TLS with the upstream failed: {e}"),
    }
}
