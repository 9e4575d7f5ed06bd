//! OAuth2 token sources against local token endpoints: a GCP service account's signed-JWT
//! grant (the endpoint verifies the JWT with the key's public half), the metadata server, and
//! Entra client credentials; one fetch for 100 concurrent requests.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use infergate_auth::{
    CachedToken, EntraClientCredentials, MetadataServer, Provider, ProviderAuthLayer, Secret,
    ServiceAccount,
};
use infergate_client::UpstreamClient;
use infergate_core::{Pipeline, PipelineLayer};
use infergate_mock::MockProvider;
use infergate_testkit::{post_json, serve};
use serde_json::{Value, json};
use tower::Layer;

const KEY: &str = include_str!("fixtures/test-service-account.json");

fn form(body: &[u8]) -> std::collections::HashMap<String, String> {
    String::from_utf8_lossy(body)
        .split('&')
        .filter_map(|p| p.split_once('='))
        .map(|(k, v)| {
            // The values here are URL-safe but for %2F / %3A / %2E in a few.
            let v = v
                .replace("%3A", ":")
                .replace("%2F", "/")
                .replace("%2E", ".");
            (k.to_owned(), v)
        })
        .collect()
}

/// A token endpoint that accepts only JWTs signed by the fixture key, answering with numbered
/// tokens; returns its address and fetch counter.
async fn google_token_endpoint() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let key: Value = serde_json::from_str(KEY).unwrap();
    let pem: String = key["private_key"]
        .as_str()
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .collect();
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&STANDARD.decode(pem).unwrap()).unwrap();
    let public = pair.public().as_ref().to_vec();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let public = public.clone();
        let c = c.clone();
        async move {
            let body = req.into_body().collect().await.unwrap().to_bytes();
            let f = form(&body);
            let jwt = f.get("assertion").cloned().unwrap_or_default();
            let parts: Vec<&str> = jwt.split('.').collect();
            let ok = parts.len() == 3
                && f.get("grant_type").map(String::as_str)
                    == Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
                && ring::signature::UnparsedPublicKey::new(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA256,
                    &public,
                )
                .verify(
                    format!("{}.{}", parts[0], parts[1]).as_bytes(),
                    &URL_SAFE_NO_PAD.decode(parts[2]).unwrap_or_default(),
                )
                .is_ok();
            let claims: Value = parts
                .get(1)
                .and_then(|c| URL_SAFE_NO_PAD.decode(c).ok())
                .and_then(|c| serde_json::from_slice(&c).ok())
                .unwrap_or_default();
            let good_claims = claims["iss"] == "gateway@infergate-test.iam.gserviceaccount.com"
                && claims["scope"] == "https://www.googleapis.com/auth/cloud-platform"
                && claims["exp"].as_u64() > claims["iat"].as_u64();
            let resp = if ok && good_claims {
                let n = c.fetch_add(1, Ordering::SeqCst) + 1;
                http::Response::new(Full::new(Bytes::from(
                    json!({"access_token": format!("ya29.fixture-{n}"), "expires_in": 3599, "token_type": "Bearer"}).to_string(),
                )))
            } else {
                let mut r = http::Response::new(Full::new(Bytes::from_static(
                    b"{\"error\":\"invalid_grant\"}",
                )));
                *r.status_mut() = http::StatusCode::BAD_REQUEST;
                r
            };
            Ok::<_, Infallible>(resp)
        }
    });
    (serve(svc).await, count)
}

async fn gateway(mock: &MockProvider, provider: Provider) -> std::net::SocketAddr {
    let upstream = ProviderAuthLayer::new(provider)
        .layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy());
    serve(PipelineLayer::new(Pipeline::default()).layer(upstream)).await
}

fn chat() -> Value {
    json!({"model": "gemini-2.0-flash", "messages": [{"role": "user", "content": "hi"}]})
}

#[tokio::test]
async fn a_service_account_token_is_fetched_once_for_a_hundred_concurrent_requests() {
    let (token_addr, fetches) = google_token_endpoint().await;
    let mut key: Value = serde_json::from_str(KEY).unwrap();
    key["token_uri"] = json!(format!("http://{token_addr}/token"));
    let sa = ServiceAccount::from_json(&key.to_string()).unwrap();
    assert!(
        !format!("{sa:?}").contains("PRIVATE"),
        "Debug hides the key"
    );
    let token = CachedToken::new(sa);
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, Provider::GcpVertex(token.clone())).await;
    let calls =
        (0..100).map(|_| async move { post_json(addr, "/v1/chat/completions", &chat()).await });
    let replies = futures_util::future::join_all(calls).await;
    assert!(replies.iter().all(|r| r.status == 200));
    assert_eq!(fetches.load(Ordering::SeqCst), 1, "one fetch, coalesced");
    assert_eq!(token.fetches(), 1);
    assert!(
        mock.requests()
            .iter()
            .all(|r| r.headers["authorization"] == "Bearer ya29.fixture-1")
    );
}

#[tokio::test]
async fn a_jwt_signed_with_another_key_is_refused_and_the_request_fails_cleanly() {
    let (token_addr, fetches) = google_token_endpoint().await;
    // Another key: the endpoint's signature check fails.
    let other = rsa_key_from_ring_test_vector();
    let mut key: Value = serde_json::from_str(KEY).unwrap();
    key["token_uri"] = json!(format!("http://{token_addr}/token"));
    key["private_key"] = json!(other);
    let token = CachedToken::new(ServiceAccount::from_json(&key.to_string()).unwrap());
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, Provider::GcpVertex(token)).await;
    let r = post_json(addr, "/v1/chat/completions", &chat()).await;
    assert_eq!(r.status, 502);
    assert_eq!(r.json()["error"]["code"], "upstream_auth_failed");
    assert_eq!(fetches.load(Ordering::SeqCst), 0);
    assert!(mock.requests().is_empty());
}

/// A second throwaway RSA key (test fixture), which the token endpoint does not trust.
fn rsa_key_from_ring_test_vector() -> String {
    include_str!("fixtures/other-key.pem").to_owned()
}

#[tokio::test]
async fn the_metadata_server_and_entra_client_credentials() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<(String, String, String)>::new()));
    let s = seen.clone();
    let svc = tower::service_fn(move |req: http::Request<hyper::body::Incoming>| {
        let s = s.clone();
        async move {
            let path = req.uri().path().to_owned();
            let flavor = req
                .headers()
                .get("metadata-flavor")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default();
            let body = req.into_body().collect().await.unwrap().to_bytes();
            s.lock().unwrap().push((
                path.clone(),
                flavor.clone(),
                String::from_utf8_lossy(&body).into_owned(),
            ));
            let token = if path.ends_with("/token")
                && path.starts_with("/computeMetadata")
                && flavor == "Google"
            {
                "metadata-token"
            } else if path == "/tenant-1/oauth2/v2.0/token"
                && form(&body).get("client_secret").map(String::as_str) == Some("entra-secret")
            {
                "entra-token"
            } else {
                "refused"
            };
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(
                json!({"access_token": token, "expires_in": 3600}).to_string(),
            ))))
        }
    });
    let idp = serve(svc).await;
    let mock = MockProvider::start().await.unwrap();
    let md = CachedToken::new(MetadataServer::new(&format!("http://{idp}")).unwrap());
    let addr = gateway(&mock, Provider::GcpVertex(md)).await;
    post_json(addr, "/v1/chat/completions", &chat()).await;
    let entra = CachedToken::new(
        EntraClientCredentials::new(
            &format!("http://{idp}"),
            "tenant-1",
            "app-1",
            Secret::new("entra-secret"),
        )
        .unwrap(),
    );
    assert!(!format!("{entra:?}").contains("entra-secret"));
    let addr = gateway(
        &mock,
        Provider::AzureEntra {
            token: entra,
            api_version: None,
        },
    )
    .await;
    post_json(addr, "/openai/deployments/d/chat/completions", &chat()).await;
    let r = mock.requests();
    assert_eq!(r[0].headers["authorization"], "Bearer metadata-token");
    assert_eq!(r[1].headers["authorization"], "Bearer entra-token");
    let seen = seen.lock().unwrap();
    assert!(seen[1].2.contains("grant_type=client_credentials"));
    assert!(seen[1].2.contains("scope=https"), "{}", seen[1].2);
}

/// A metadata server whose token answers carry `expires_in` as given (raw JSON text).
async fn metadata_answering(expires_in: &'static str) -> (Arc<CachedToken>, Arc<AtomicUsize>) {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let svc = tower::service_fn(move |_req: http::Request<hyper::body::Incoming>| {
        let n = c.fetch_add(1, Ordering::SeqCst) + 1;
        async move {
            Ok::<_, Infallible>(http::Response::new(Full::new(Bytes::from(format!(
                r#"{{"access_token": "t-{n}", "expires_in": {expires_in}}}"#
            )))))
        }
    });
    let idp = serve(svc).await;
    let token = CachedToken::new(MetadataServer::new(&format!("http://{idp}")).unwrap());
    (token, count)
}

#[tokio::test]
async fn a_huge_expires_in_is_clamped_and_garbage_is_a_clean_error() {
    for huge in ["18446744073709551615", "\"18446744073709551615\"", "1e308"] {
        let (token, fetched) = metadata_answering(huge).await;
        assert_eq!(token.get().await.unwrap().expose(), "t-1", "{huge}");
        // Still fresh: reused, and nothing overflowed.
        assert_eq!(token.get().await.unwrap().expose(), "t-1");
        assert_eq!(fetched.load(Ordering::SeqCst), 1);
    }
    for bad in ["-1", "-9223372036854775808", "\"soon\"", "true", "[1]"] {
        let (token, _) = metadata_answering(bad).await;
        let err = token.get().await.unwrap_err();
        assert!(
            matches!(err, infergate_auth::AuthError::TokenFetch(_)),
            "{bad}: {err}"
        );
        assert!(!err.to_string().contains("t-1"), "the token is not echoed");
    }
}
