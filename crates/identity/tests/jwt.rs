//! JWT bearer tokens against keys made in the test, with the JWKS served over loopback HTTP:
//! valid (ES256, EdDSA), wrong key, `alg: none`, HS256, expired, wrong audience or issuer,
//! not yet valid, unknown `kid` → one bounded JWKS refresh, claims mapped to the principal.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use bytes::Bytes;
use common::{call, code, gateway};
use infergate_core::Body;
use infergate_identity::{
    AuthError, AuthFailure, ClaimMapping, Identity, JwksSource, JwtConfig, JwtVerifier,
};
use infergate_mock::MockProvider;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use ring::rand::SystemRandom;
use ring::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, Ed25519KeyPair, KeyPair};
use serde_json::{Value, json};

const ISS: &str = "https://idp.example";
const AUD: &str = "infergate";

/// A signing key made now, and its public JWK.
struct TestKey {
    alg: Algorithm,
    kid: String,
    encoding: EncodingKey,
    jwk: Value,
}

fn ec_key(kid: &str) -> TestKey {
    let rng = SystemRandom::new();
    let pkcs8 = EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
    let pair =
        EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref(), &rng).unwrap();
    let public = pair.public_key().as_ref(); // 0x04 || x || y
    TestKey {
        alg: Algorithm::ES256,
        kid: kid.into(),
        encoding: EncodingKey::from_ec_der(pkcs8.as_ref()),
        jwk: json!({"kty":"EC","crv":"P-256","kid":kid,"use":"sig","alg":"ES256",
            "x": B64.encode(&public[1..33]), "y": B64.encode(&public[33..65])}),
    }
}

fn ed_key(kid: &str) -> TestKey {
    let pkcs8 = Ed25519KeyPair::generate_pkcs8(&SystemRandom::new()).unwrap();
    let pair = Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).unwrap();
    TestKey {
        alg: Algorithm::EdDSA,
        kid: kid.into(),
        encoding: EncodingKey::from_ed_der(pkcs8.as_ref()),
        jwk: json!({"kty":"OKP","crv":"Ed25519","kid":kid,"use":"sig","alg":"EdDSA",
            "x": B64.encode(pair.public_key().as_ref())}),
    }
}

/// A 2048-bit RSA key made now (RS256).
fn rsa_key(kid: &str) -> TestKey {
    use rsa::pkcs1::EncodeRsaPrivateKey;
    use rsa::traits::PublicKeyParts;
    let private = rsa::PrivateKey::new(&mut getrandom04::SysRng, 2048).unwrap();
    let public = private.to_public_key();
    let der = private.to_pkcs1_der().unwrap();
    TestKey {
        alg: Algorithm::RS256,
        kid: kid.into(),
        encoding: EncodingKey::from_rsa_der(der.as_bytes()),
        jwk: json!({"kty":"RSA","kid":kid,"use":"sig","alg":"RS256",
            "n": B64.encode(public.n().as_ref().to_be_bytes_trimmed_vartime()),
            "e": B64.encode(public.e().to_be_bytes_trimmed_vartime())}),
    }
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "user-1", "org_id": "acme", "groups": ["search", "ads"],
        "models": ["gpt-4o-mini"], "exp": now() + 3600, "iat": now()})
}

fn sign(key: &TestKey, claims: &Value) -> String {
    let mut h = Header::new(key.alg);
    h.kid = Some(key.kid.clone());
    jsonwebtoken::encode(&h, claims, &key.encoding).unwrap()
}

/// A JWKS endpoint on loopback serving whatever `jwks` holds.
async fn jwks_server(jwks: Arc<Mutex<Value>>) -> String {
    let svc = tower::service_fn(move |_req: http::Request<hyper::body::Incoming>| {
        let body = jwks.lock().unwrap().to_string();
        async move {
            let mut r = http::Response::new(http_body_util::Full::new(Bytes::from(body)));
            r.headers_mut()
                .insert("content-type", "application/json".parse().unwrap());
            Ok::<_, std::convert::Infallible>(r)
        }
    });
    let addr = infergate_testkit::serve(svc).await;
    format!("http://{addr}/.well-known/jwks.json")
}

fn config(url: String) -> JwtConfig {
    let mut c = JwtConfig::new(JwksSource::Url(url));
    c.issuers = vec![ISS.into()];
    c.audiences = vec![AUD.into()];
    c.min_refresh_interval_ms = 60_000;
    c.claims = ClaimMapping {
        tenant: "org_id".into(),
        team: Some("groups[0]".into()),
        allowed_models: Some("models".into()),
        ..ClaimMapping::default()
    };
    c
}

fn bearer(token: &str) -> http::HeaderMap {
    let mut h = http::HeaderMap::new();
    h.insert("authorization", format!("Bearer {token}").parse().unwrap());
    h
}

async fn refused(id: &Identity, token: &str) -> AuthFailure {
    match id.authenticate(&bearer(token)).await {
        Err(AuthError::Refused(f)) => f,
        other => panic!("not refused: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokens_are_checked_against_the_jwks() {
    let ec = ec_key("ec1");
    let ed = ed_key("ed1");
    let rs = rsa_key("rs1");
    let jwks = Arc::new(Mutex::new(json!({"keys": [ec.jwk, ed.jwk, rs.jwk]})));
    let url = jwks_server(jwks.clone()).await;
    let verifier = JwtVerifier::new(config(url)).await.unwrap();
    let id = Identity::builder().jwt(verifier.clone()).build();

    // Valid, every algorithm; claims mapped.
    for key in [&ec, &ed, &rs] {
        let p = id
            .authenticate(&bearer(&sign(key, &claims())))
            .await
            .unwrap();
        assert_eq!(
            (p.id(), p.tenant(), p.team(), p.user()),
            ("user-1", "acme", Some("search"), Some("user-1"))
        );
        assert!(p.allows_model("gpt-4o-mini") && !p.allows_model("gpt-4o"));
        assert!(p.expires_at().is_some());
    }

    // A token seen before is answered from the verified-token cache (the same principal).
    let t = sign(&ec, &claims());
    let first = id.authenticate(&bearer(&t)).await.unwrap();
    let again = id.authenticate(&bearer(&t)).await.unwrap();
    assert!(Arc::ptr_eq(&first, &again));

    // Signed by another key under a known kid.
    let impostor = ec_key("ec1");
    assert_eq!(
        refused(&id, &sign(&impostor, &claims())).await,
        AuthFailure::InvalidToken
    );

    // alg: none (and an unsigned token of every spelling).
    let payload = B64.encode(claims().to_string());
    for alg in ["none", "None", "NONE"] {
        let header = B64.encode(json!({"alg": alg, "typ": "JWT", "kid": "ec1"}).to_string());
        assert_eq!(
            refused(&id, &format!("{header}.{payload}.")).await,
            AuthFailure::InvalidToken
        );
    }

    // HS256 keyed with public material (the classic confusion attack).
    let mut h = Header::new(Algorithm::HS256);
    h.kid = Some("ec1".into());
    let x = ec.jwk["x"].as_str().unwrap();
    let hs = jsonwebtoken::encode(
        &h,
        &claims(),
        &EncodingKey::from_secret(x.as_bytes()).unwrap(),
    )
    .unwrap();
    assert_eq!(refused(&id, &hs).await, AuthFailure::InvalidToken);

    // Expired (beyond the 60 s leeway), not yet valid, wrong audience, wrong issuer.
    let mut c = claims();
    c["exp"] = json!(now() - 3600);
    assert_eq!(
        refused(&id, &sign(&ec, &c)).await,
        AuthFailure::TokenExpired
    );
    let mut c = claims();
    c["exp"] = json!(now() - 10);
    assert!(
        id.authenticate(&bearer(&sign(&ec, &c))).await.is_ok(),
        "within the leeway"
    );
    let mut c = claims();
    c["nbf"] = json!(now() + 3600);
    assert_eq!(
        refused(&id, &sign(&ec, &c)).await,
        AuthFailure::InvalidToken
    );
    let mut c = claims();
    c["aud"] = json!("someone-else");
    assert_eq!(
        refused(&id, &sign(&ec, &c)).await,
        AuthFailure::InvalidToken
    );
    let mut c = claims();
    c["iss"] = json!("https://evil.example");
    assert_eq!(
        refused(&id, &sign(&ec, &c)).await,
        AuthFailure::InvalidToken
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("exp");
    assert_eq!(
        refused(&id, &sign(&ec, &c)).await,
        AuthFailure::InvalidToken,
        "exp is required"
    );
    let mut c = claims();
    c.as_object_mut().unwrap().remove("org_id");
    assert_eq!(
        refused(&id, &sign(&ec, &c)).await,
        AuthFailure::MissingClaim
    );
    // Garbage.
    assert_eq!(refused(&id, "a.b.c").await, AuthFailure::InvalidToken);
    assert_eq!(verifier.jwks_fetches(), 1, "no refresh for any of these");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_kid_refreshes_the_jwks_once_within_the_bound() {
    let ec = ec_key("ec1");
    let jwks = Arc::new(Mutex::new(json!({"keys": [ec.jwk]})));
    let url = jwks_server(jwks.clone()).await;
    let verifier = JwtVerifier::new(config(url)).await.unwrap();
    let id = Identity::builder().jwt(verifier.clone()).build();
    assert_eq!(verifier.jwks_fetches(), 1);

    // The identity provider rotates in a new key; a token signed with it arrives.
    let rotated = ed_key("ed-2026");
    jwks.lock().unwrap()["keys"]
        .as_array_mut()
        .unwrap()
        .push(rotated.jwk.clone());
    let p = id
        .authenticate(&bearer(&sign(&rotated, &claims())))
        .await
        .unwrap();
    assert_eq!(p.tenant(), "acme");
    assert_eq!(
        verifier.jwks_fetches(),
        2,
        "one refresh for the unknown kid"
    );

    // A flood of made-up kids within the refresh interval: no more fetches.
    for i in 0..100 {
        let made_up = ec_key(&format!("bogus-{i}"));
        assert_eq!(
            refused(&id, &sign(&made_up, &claims())).await,
            AuthFailure::InvalidToken
        );
    }
    assert_eq!(
        verifier.jwks_fetches(),
        2,
        "refreshes are bounded by min_refresh_interval_ms"
    );
    // Known keys keep working.
    assert!(
        id.authenticate(&bearer(&sign(&ec, &claims())))
            .await
            .is_ok()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jwt_through_the_gateway_both_shapes_and_no_credential_upstream() {
    let ec = ec_key("ec1");
    let url = jwks_server(Arc::new(Mutex::new(json!({"keys": [ec.jwk]})))).await;
    let id = Identity::builder()
        .jwt(JwtVerifier::new(config(url)).await.unwrap())
        .build();
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, id).await;
    let token = sign(&ec, &claims());
    let auth = format!("Bearer {token}");
    let ok = call(
        addr,
        "/v1/chat/completions",
        "gpt-4o-mini",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert!(mock.requests()[0].headers.get("authorization").is_none());
    let denied = call(
        addr,
        "/v1/chat/completions",
        "gpt-4o",
        &[("authorization", &auth)],
    )
    .await;
    assert_eq!(code(&denied), "model_not_allowed");
    let mut c = claims();
    c["exp"] = json!(now() - 3600);
    let expired = sign(&ec, &c);
    let r = call(
        addr,
        "/v1/chat/completions",
        "gpt-4o-mini",
        &[("authorization", &format!("Bearer {expired}"))],
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), code(&r)),
        (401, "expired_token".to_owned())
    );
    assert!(!r.text().contains(&expired));
    let r = call(addr, "/v1/messages", "claude", &[("x-api-key", &expired)]).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.json()["type"], "error");
    assert_eq!(mock.requests().len(), 1);
    let _ = Body::empty();
}

#[tokio::test]
async fn jwks_from_a_file_and_inline() {
    let ed = ed_key("k");
    let doc = json!({"keys": [ed.jwk, {"kty":"oct","k":"c2VjcmV0","kid":"hs"}]}).to_string();
    let path = std::env::temp_dir().join(format!("infergate-jwks-{}.json", std::process::id()));
    std::fs::write(&path, &doc).unwrap();
    for source in [
        JwksSource::File(path.clone()),
        JwksSource::Inline(doc.clone()),
    ] {
        let mut c = JwtConfig::new(source);
        c.default_tenant = Some("idp-users".into());
        let id = Identity::builder()
            .jwt(JwtVerifier::new(c).await.unwrap())
            .build();
        let mut cl = claims();
        cl.as_object_mut().unwrap().remove("org_id");
        let p = id.authenticate(&bearer(&sign(&ed, &cl))).await.unwrap();
        assert_eq!(p.tenant(), "idp-users");
        // The symmetric key in the set is never used.
        let mut h = Header::new(Algorithm::HS256);
        h.kid = Some("hs".into());
        let hs = jsonwebtoken::encode(&h, &claims(), &EncodingKey::from_secret(b"secret").unwrap())
            .unwrap();
        assert_eq!(refused(&id, &hs).await, AuthFailure::InvalidToken);
    }
    let _ = std::fs::remove_file(&path);
}
