//! TLS to upstreams, against a local TLS upstream (loopback only) with certificates made here:
//! custom CA trusted or not, mTLS required and presented, SNI override, minimum version, and
//! the errors for bad options.
#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use infergate_client::{ErrorKind, TlsVersion, UpstreamClient, UpstreamClientBuilder};
use infergate_core::Body;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tower::Service;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// A certificate authority made for the test.
struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// A leaf certificate and its key, as PEM.
struct Leaf {
    cert_pem: String,
    key_pem: String,
}

impl Ca {
    fn new(name: &str) -> Self {
        let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
        p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        p.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        p.distinguished_name.push(DnType::CommonName, name);
        Self {
            issuer: CertifiedIssuer::self_signed(p, KeyPair::generate().unwrap()).unwrap(),
        }
    }

    fn pem(&self) -> String {
        self.issuer.pem()
    }

    fn issue(&self, names: &[&str], usage: ExtendedKeyUsagePurpose) -> Leaf {
        let names: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
        let mut p = CertificateParams::new(names).unwrap();
        p.distinguished_name
            .push(DnType::CommonName, "infergate test");
        p.extended_key_usages = vec![usage];
        let key = KeyPair::generate().unwrap();
        let cert = p.signed_by(&key, &self.issuer).unwrap();
        Leaf {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        }
    }
}

/// What the upstream answers: the SNI it received, the ALPN protocol, and whether the client
/// presented a certificate.
#[derive(Clone, Default)]
struct Seen {
    sni: Option<String>,
    alpn: Option<String>,
    client_cert: bool,
}

struct Upstream {
    addr: SocketAddr,
}

/// Options of the local TLS upstream.
struct ServerOpts {
    leaf: Leaf,
    /// The CA whose client certificates are required (mTLS), if any.
    client_ca: Option<String>,
    tls13_only: bool,
    tls12_only: bool,
    /// Offer only HTTP/1.1 by ALPN (default: h2 and HTTP/1.1).
    http1_only: bool,
}

impl ServerOpts {
    fn new(leaf: Leaf) -> Self {
        Self {
            leaf,
            client_ca: None,
            tls13_only: false,
            tls12_only: false,
            http1_only: false,
        }
    }
}

async fn tls_upstream(opts: ServerOpts) -> Upstream {
    let chain = vec![CertificateDer::from_pem_slice(opts.leaf.cert_pem.as_bytes()).unwrap()];
    let key = PrivateKeyDer::from_pem_slice(opts.leaf.key_pem.as_bytes()).unwrap();
    let versions: &[&'static rustls::SupportedProtocolVersion] = if opts.tls13_only {
        &[&rustls::version::TLS13]
    } else if opts.tls12_only {
        &[&rustls::version::TLS12]
    } else {
        &[&rustls::version::TLS13, &rustls::version::TLS12]
    };
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(versions)
        .unwrap();
    let builder = match &opts.client_ca {
        Some(ca_pem) => {
            let mut roots = RootCertStore::empty();
            roots
                .add(CertificateDer::from_pem_slice(ca_pem.as_bytes()).unwrap())
                .unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider())
                .build()
                .unwrap();
            builder.with_client_cert_verifier(verifier)
        }
        None => builder.with_no_client_auth(),
    };
    let mut config = builder.with_single_cert(chain, key).unwrap();
    config.alpn_protocols = if opts.http1_only {
        vec![b"http/1.1".to_vec()]
    } else {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    };
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                return;
            };
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                // A refused handshake is what some tests expect: nothing to serve then. The
                // connection is drained before it closes, so that the alert is read by the
                // client rather than lost to a reset (unread data at close sends a RST).
                let tls = match acceptor.accept(tcp).into_fallible().await {
                    Ok(tls) => tls,
                    Err((_, mut tcp)) => {
                        let _ = tcp.shutdown().await;
                        let mut buf = [0u8; 4096];
                        while tcp.read(&mut buf).await.is_ok_and(|n| n > 0) {}
                        return;
                    }
                };
                let conn = tls.get_ref().1;
                let seen = Seen {
                    sni: conn.server_name().map(str::to_owned),
                    alpn: conn
                        .alpn_protocol()
                        .map(|p| String::from_utf8_lossy(p).into_owned()),
                    client_cert: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
                };
                let svc =
                    hyper::service::service_fn(move |_req: Request<hyper::body::Incoming>| {
                        let seen = seen.clone();
                        async move {
                            let body = serde_json::json!({
                                "object": "list",
                                "sni": seen.sni,
                                "alpn": seen.alpn,
                                "client_cert": seen.client_cert,
                            });
                            Ok::<_, Infallible>(
                                Response::builder()
                                    .header("content-type", "application/json")
                                    .body(Full::new(Bytes::from(body.to_string())))
                                    .unwrap(),
                            )
                        }
                    });
                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                    .serve_connection(TokioIo::new(tls), svc)
                    .await;
            });
        }
    });
    Upstream { addr }
}

impl Upstream {
    fn url(&self) -> String {
        format!("https://127.0.0.1:{}/v1", self.addr.port())
    }
}

/// Sends `GET /v1/models` through a client built from `builder`.
async fn get(
    builder: UpstreamClientBuilder,
    url: &str,
) -> Result<serde_json::Value, infergate_client::ClientError> {
    let mut client = builder.build(url)?;
    let req = Request::get("/v1/models").body(Body::empty()).unwrap();
    let resp = client.call(req).await?;
    assert_eq!(resp.status(), StatusCode::OK);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    Ok(serde_json::from_slice(&bytes).unwrap())
}

/// A file under the temp dir, unique to this test process, removed on drop.
struct TempFile(PathBuf);

impl TempFile {
    fn new(content: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "infergate-tls-test-{}-{}.pem",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::write(&path, content).unwrap();
        Self(path)
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[tokio::test]
async fn trusted_ca_file_answers_over_h2_beside_the_web_pki_roots() {
    let ca = Ca::new("test CA");
    let up = tls_upstream(ServerOpts::new(
        ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth),
    ))
    .await;
    let ca_file = TempFile::new(&ca.pem());
    let seen = get(UpstreamClient::builder().tls_ca_file(&ca_file.0), &up.url())
        .await
        .unwrap();
    // ALPN still offers h2 (and the upstream picks it).
    assert_eq!(seen["alpn"], "h2");
    assert_eq!(seen["client_cert"], false);
}

#[tokio::test]
async fn trusted_ca_pem_in_place_of_the_web_pki_roots() {
    let ca = Ca::new("test CA");
    let up = tls_upstream(ServerOpts::new(
        ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth),
    ))
    .await;
    let b = UpstreamClient::builder()
        .tls_web_pki_roots(false)
        .tls_ca_pem(ca.pem());
    get(b, &up.url()).await.unwrap();
}

#[tokio::test]
async fn unknown_ca_is_refused_with_a_clear_error() {
    let ca = Ca::new("test CA");
    let other = Ca::new("another CA");
    let up = tls_upstream(ServerOpts::new(
        ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth),
    ))
    .await;
    // Neither the web PKI roots nor another private CA trust it.
    for builder in [
        UpstreamClient::builder(),
        UpstreamClient::builder().tls_ca_pem(other.pem()),
    ] {
        let err = get(builder, &up.url()).await.unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        let msg = err.to_string();
        assert!(msg.contains("certificate was not trusted"), "{msg}");
    }
}

#[tokio::test]
async fn proxy_answers_502_in_the_openai_shape_without_paths() {
    let ca = Ca::new("test CA");
    let other = Ca::new("another CA");
    let up = tls_upstream(ServerOpts::new(
        ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth),
    ))
    .await;
    let other_file = TempFile::new(&other.pem());
    let mut proxy = UpstreamClient::builder()
        .tls_ca_file(&other_file.0)
        .build(&up.url())
        .unwrap()
        .into_proxy();
    let req = Request::post("/v1/chat/completions")
        .header("content-type", "application/json")
        .body(Body::from(r#"{"model":"m","messages":[]}"#))
        .unwrap();
    let resp = proxy.call(req).await.unwrap();
    assert_eq!(resp.status(), StatusCode::BAD_GATEWAY);
    let bytes = resp.into_body().collect().await.unwrap().to_bytes();
    let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(v["error"]["code"], "upstream_tls_error", "{v}");
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("certificate"), "{msg}");
    let text = String::from_utf8_lossy(&bytes);
    assert!(!text.contains(&*other_file.0.to_string_lossy()), "{text}");
    assert!(!text.contains("BEGIN"), "{text}");
    assert!(!text.contains("/tmp") && !text.contains(".pem"), "{text}");
}

#[tokio::test]
async fn certificate_for_another_name_does_not_match() {
    let ca = Ca::new("test CA");
    let up = tls_upstream(ServerOpts::new(
        ca.issue(&["api.example.test"], ExtendedKeyUsagePurpose::ServerAuth),
    ))
    .await;
    let err = get(UpstreamClient::builder().tls_ca_pem(ca.pem()), &up.url())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("did not match"), "{err}");
}

#[tokio::test]
async fn sni_override_connects_to_the_address_and_verifies_the_name() {
    let ca = Ca::new("test CA");
    let up = tls_upstream(ServerOpts::new(
        ca.issue(&["api.example.test"], ExtendedKeyUsagePurpose::ServerAuth),
    ))
    .await;
    let b = UpstreamClient::builder()
        .tls_ca_pem(ca.pem())
        .tls_server_name("api.example.test");
    let seen = get(b, &up.url()).await.unwrap();
    assert_eq!(seen["sni"], "api.example.test");
    // The override is the name verified: another name fails even though the host is the same.
    let b = UpstreamClient::builder()
        .tls_ca_pem(ca.pem())
        .tls_server_name("other.example.test");
    let err = get(b, &up.url()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("did not match"), "{err}");
}

#[tokio::test]
async fn mtls_fails_without_a_client_certificate_and_succeeds_with_one() {
    let ca = Ca::new("test CA");
    let client_ca = Ca::new("client CA");
    let mut opts = ServerOpts::new(ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth));
    opts.client_ca = Some(client_ca.pem());
    let up = tls_upstream(opts).await;

    // Over TLS 1.3 the refusal arrives after the handshake, as an alert on the first read:
    // over HTTP/2 and over HTTP/1.1 alike it is a TLS error that says why.
    let mut opts = ServerOpts::new(ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth));
    opts.client_ca = Some(client_ca.pem());
    opts.http1_only = true;
    let up_h1 = tls_upstream(opts).await;
    for url in [up.url(), up_h1.url()] {
        let err = get(UpstreamClient::builder().tls_ca_pem(ca.pem()), &url)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
        assert!(err.to_string().contains("client certificate"), "{err}");
    }

    // A certificate from a CA the upstream does not trust is refused too.
    let stranger = Ca::new("stranger").issue(&["gw"], ExtendedKeyUsagePurpose::ClientAuth);
    let b = UpstreamClient::builder()
        .tls_ca_pem(ca.pem())
        .tls_client_cert_pem(stranger.cert_pem, stranger.key_pem);
    let err = get(b, &up.url()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");

    let id = client_ca.issue(&["gw"], ExtendedKeyUsagePurpose::ClientAuth);
    let cert = TempFile::new(&id.cert_pem);
    let key = TempFile::new(&id.key_pem);
    let b = UpstreamClient::builder()
        .tls_ca_pem(ca.pem())
        .tls_client_cert_files(&cert.0, &key.0);
    let seen = get(b, &up.url()).await.unwrap();
    assert_eq!(seen["client_cert"], true);
    let b = UpstreamClient::builder()
        .tls_ca_pem(ca.pem())
        .tls_client_cert_pem(id.cert_pem, id.key_pem);
    let seen = get(b, &up.url()).await.unwrap();
    assert_eq!(seen["client_cert"], true);
}

#[tokio::test]
async fn minimum_version_is_enforced() {
    let ca = Ca::new("test CA");
    let mut opts = ServerOpts::new(ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth));
    opts.tls12_only = true;
    let tls12 = tls_upstream(opts).await;
    let mut opts = ServerOpts::new(ca.issue(&["127.0.0.1"], ExtendedKeyUsagePurpose::ServerAuth));
    opts.tls13_only = true;
    let tls13 = tls_upstream(opts).await;

    let b = || UpstreamClient::builder().tls_ca_pem(ca.pem());
    get(b(), &tls12.url()).await.unwrap();
    get(b().tls_min_version(TlsVersion::Tls13), &tls13.url())
        .await
        .unwrap();
    let err = get(b().tls_min_version(TlsVersion::Tls13), &tls12.url())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Tls, "{err}");
    assert!(err.to_string().contains("TLS version"), "{err}");
}

#[test]
fn bad_options_fail_at_build_naming_the_option_not_the_content() {
    let url = "https://127.0.0.1:1/v1";
    let missing = std::env::temp_dir().join("infergate-no-such-ca.pem");
    let err = UpstreamClient::builder()
        .tls_ca_file(&missing)
        .build(url)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("tls_ca"), "{err}");
    assert!(err.to_string().contains("no such file"), "{err}");

    let garbage = "-----BEGIN CERTIFICATE-----\nsk-SECRET!!not*base64\n-----END CERTIFICATE-----\n";
    let file = TempFile::new(garbage);
    let err = UpstreamClient::builder()
        .tls_ca_file(&file.0)
        .build(url)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("tls_ca"), "{err}");
    assert!(!err.to_string().contains("SECRET"), "{err}");

    let err = UpstreamClient::builder()
        .tls_ca_pem("no pem here")
        .build(url)
        .unwrap_err();
    assert!(err.to_string().contains("no PEM certificate"), "{err}");

    let ca = Ca::new("test CA");
    let id = ca.issue(&["gw"], ExtendedKeyUsagePurpose::ClientAuth);
    let bad_key =
        "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIKEY-SECRET\n-----END PRIVATE KEY-----\n";
    let err = UpstreamClient::builder()
        .tls_client_cert_pem(id.cert_pem.clone(), bad_key)
        .build(url)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("private key"), "{err}");
    assert!(!err.to_string().contains("KEY-SECRET"), "{err}");

    // A key that is not the certificate's.
    let other = ca.issue(&["gw"], ExtendedKeyUsagePurpose::ClientAuth);
    let err = UpstreamClient::builder()
        .tls_client_cert_pem(id.cert_pem.clone(), other.key_pem)
        .build(url)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidConfig);
    assert!(err.to_string().contains("tls_client_cert"), "{err}");

    let err = UpstreamClient::builder()
        .tls_web_pki_roots(false)
        .build(url)
        .unwrap_err();
    assert!(err.to_string().contains("tls_web_pki_roots"), "{err}");

    let err = UpstreamClient::builder()
        .tls_server_name("not a name!")
        .build(url)
        .unwrap_err();
    assert!(err.to_string().contains("tls_server_name"), "{err}");
}

#[test]
fn debug_never_shows_the_private_key() {
    let id = Ca::new("test CA").issue(&["gw"], ExtendedKeyUsagePurpose::ClientAuth);
    let key_body: String = id.key_pem.lines().nth(1).unwrap().to_owned();
    let b = UpstreamClient::builder().tls_client_cert_pem(id.cert_pem, id.key_pem);
    let dbg = format!("{b:?}");
    assert!(dbg.contains("redacted"), "{dbg}");
    assert!(!dbg.contains(&key_body), "{dbg}");
    assert!(!dbg.contains("PRIVATE"), "{dbg}");
}
