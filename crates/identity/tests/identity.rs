//! The identity processor over loopback HTTP, checked at the mock provider's request record:
//! keys (inline, file), refusals in both error shapes, permissions, anonymous access.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{call, code, gateway, store};
use infergate_core::{Body, Principal};
use infergate_identity::{
    AnonymousConfig, FileKeyStore, Identity, IdentityConfig, IdentityLayer, InlineKey, KeyAdmin,
    KeyHasher, KeyRecord, KeyStoreConfig, ManualClock, PrincipalSpec, Secret,
};
use infergate_mock::MockProvider;
use tower::{Layer, ServiceExt};

const KEY: &str = "igk_alpha_Q8bZ2kLmN4pR6sT8vX0yA2cE4gI6kM8o";
const KEY_RO: &str = "igk_mini_7hJ9kL1mN3pQ5rS7tU9vW1xY3zA5bC7d";

fn spec(tenant: &str) -> PrincipalSpec {
    PrincipalSpec::tenant(tenant)
}

#[tokio::test]
async fn a_valid_key_reaches_the_upstream_without_the_clients_credentials() {
    let mock = MockProvider::start().await.unwrap();
    let id = Identity::builder()
        .keys(store(&[(KEY, spec("acme"))]))
        .build();
    let addr = gateway(&mock, id).await;
    let ok = call(
        addr,
        "/v1/chat/completions",
        "gpt-4o",
        &[("authorization", &format!("Bearer {KEY}"))],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let ok = call(
        addr,
        "/v1/messages",
        "claude-3-5-haiku",
        &[("x-api-key", KEY), ("anthropic-version", "2023-06-01")],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.text());
    let seen = mock.requests();
    assert_eq!(seen.len(), 2);
    for r in &seen {
        assert!(
            r.headers.get("authorization").is_none(),
            "the client's key reached the upstream"
        );
        assert!(r.headers.get("x-api-key").is_none());
        assert!(!format!("{:?}", r.headers).contains(KEY));
    }
}

#[tokio::test]
async fn pass_through_keeps_the_credential() {
    let mock = MockProvider::start().await.unwrap();
    let id = Identity::builder()
        .keys(store(&[(KEY, spec("acme"))]))
        .pass_through(true)
        .build();
    let addr = gateway(&mock, id).await;
    assert_eq!(
        call(
            addr,
            "/v1/chat/completions",
            "m",
            &[("authorization", &format!("Bearer {KEY}"))]
        )
        .await
        .status,
        200
    );
    assert_eq!(
        mock.requests()[0].headers["authorization"],
        format!("Bearer {KEY}")
    );
}

#[tokio::test]
async fn the_principal_is_in_the_extensions() {
    let mut s = spec("acme");
    s.team = Some("search".into());
    s.user = Some("alice".into());
    s.limits.insert("tokens_per_minute".into(), "1000".into());
    s.labels.insert("region".into(), "eu".into());
    let id = Identity::builder().keys(store(&[(KEY, s)])).build();
    let upstream = tower::service_fn(|req: http::Request<Body>| async move {
        let p = Principal::from_extensions(req.extensions())
            .cloned()
            .unwrap();
        Ok::<_, std::convert::Infallible>(http::Response::new(Body::from(format!(
            "{}|{}|{:?}|{:?}|{:?}|{:?}|{}",
            p.id(),
            p.tenant(),
            p.team(),
            p.user(),
            p.limit("tokens_per_minute"),
            p.label("region"),
            p.is_anonymous()
        ))))
    });
    let svc = IdentityLayer::new(id).layer(upstream);
    let req = http::Request::post("/v1/chat/completions")
        .header("authorization", format!("bearer  {KEY}"))
        .header("content-type", "application/json")
        .body(Body::from(r#"{"model":"m","messages":[]}"#))
        .unwrap();
    let resp = svc.oneshot(req).await.unwrap();
    let body = http_body_util::BodyExt::collect(resp.into_body())
        .await
        .unwrap()
        .to_bytes();
    assert_eq!(
        body,
        r#"alpha|acme|Some("search")|Some("alice")|Some("1000")|Some("eu")|false"#
    );
}

#[tokio::test]
async fn wrong_revoked_expired_malformed_and_missing_keys_get_401_in_both_shapes() {
    let mock = MockProvider::start().await.unwrap();
    let h = KeyHasher::sha256();
    let revoked_key = "igk_old_0000000000000000000000000000";
    let expired_key = "igk_late_0000000000000000000000000000";
    let mut revoked = KeyRecord::from_key(revoked_key, spec("acme"), &h).unwrap();
    revoked.revoked = true;
    let mut expired = KeyRecord::from_key(expired_key, spec("acme"), &h).unwrap();
    expired.expires_at = Some(1_000_000);
    let store = infergate_identity::MemoryKeyStore::new(
        [
            KeyRecord::from_key(KEY, spec("acme"), &h).unwrap(),
            revoked,
            expired,
        ],
        h,
    )
    .unwrap();
    let addr = gateway(&mock, Identity::builder().keys(Arc::new(store)).build()).await;
    let wrong_secret = "igk_alpha_Q8bZ2kLmN4pR6sT8vX0yA2cE4gI6kM8X";
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[(
                "authorization",
                "Bearer igk_nobody_0000000000000000000000000000",
            )],
            "invalid_api_key",
        ),
        (
            &[("authorization", &format!("Bearer {wrong_secret}"))],
            "invalid_api_key",
        ),
        (
            &[("authorization", &format!("Bearer {revoked_key}"))],
            "invalid_api_key",
        ),
        (
            &[("authorization", &format!("Bearer {expired_key}"))],
            "expired_api_key",
        ),
        (
            &[("authorization", "Bearer sk-not-ours")],
            "invalid_api_key",
        ),
        (
            &[("authorization", "Basic Zm9vOmJhcg==")],
            "invalid_api_key",
        ),
        (
            &[
                ("authorization", &format!("Bearer {KEY}")),
                ("x-api-key", revoked_key),
            ],
            "invalid_api_key",
        ),
        (&[], "missing_api_key"),
    ];
    for (headers, want) in cases {
        let r = call(addr, "/v1/chat/completions", "gpt-4o", headers).await;
        assert_eq!(r.status, 401, "{headers:?}: {}", r.text());
        assert_eq!(code(&r), *want, "{headers:?}");
        assert_eq!(r.json()["error"]["type"], "authentication_error");
        assert_eq!(r.headers["www-authenticate"], "Bearer");
        for (_, v) in *headers {
            assert!(
                !r.text().contains(v.trim_start_matches("Bearer ")),
                "the credential is echoed"
            );
        }
        // Anthropic's shape on /v1/messages.
        let anthropic: Vec<(&str, &str)> = headers
            .iter()
            .map(|(k, v)| {
                (
                    if *k == "authorization" {
                        "x-api-key"
                    } else {
                        *k
                    },
                    v.trim_start_matches("Bearer "),
                )
            })
            .collect();
        if anthropic.iter().any(|(k, _)| *k == "x-api-key") && anthropic.len() > 1 {
            continue;
        }
        let r = call(addr, "/v1/messages", "claude", &anthropic).await;
        assert_eq!(r.status, 401, "{anthropic:?}: {}", r.text());
        let j = r.json();
        assert_eq!(j["type"], "error", "{j}");
        assert_eq!(j["error"]["type"], "authentication_error");
    }
    // The holder of a revoked key is told so; a guesser is not.
    let revoked_told = call(
        addr,
        "/v1/chat/completions",
        "m",
        &[("authorization", &format!("Bearer {revoked_key}"))],
    )
    .await;
    assert!(
        revoked_told.text().contains("revoked"),
        "{}",
        revoked_told.text()
    );
    assert!(
        mock.requests().is_empty(),
        "a refused request reached the upstream"
    );
}

#[tokio::test]
async fn models_and_endpoints_outside_the_principal_get_403() {
    let mock = MockProvider::start().await.unwrap();
    let mut mini = spec("acme");
    mini.allowed_models = vec!["gpt-4o-mini".into(), "claude-?-haiku*".into()];
    mini.allowed_endpoints = vec!["chat_completions".into(), "messages".into()];
    let addr = gateway(
        &mock,
        Identity::builder().keys(store(&[(KEY_RO, mini)])).build(),
    )
    .await;
    let auth = format!("Bearer {KEY_RO}");
    let h: &[(&str, &str)] = &[("authorization", &auth)];
    assert_eq!(
        call(addr, "/v1/chat/completions", "gpt-4o-mini", h)
            .await
            .status,
        200
    );
    assert_eq!(
        call(
            addr,
            "/v1/messages",
            "claude-3-haiku-20240307",
            &[("x-api-key", KEY_RO)]
        )
        .await
        .status,
        200
    );
    let r = call(addr, "/v1/chat/completions", "gpt-4o", h).await;
    assert_eq!(r.status, 403);
    assert_eq!(code(&r), "model_not_allowed");
    let r = call(
        addr,
        "/v1/messages",
        "claude-3-opus",
        &[("x-api-key", KEY_RO)],
    )
    .await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["type"], "error");
    let r = call(addr, "/v1/files", "gpt-4o-mini", h).await;
    assert_eq!(r.status, 403);
    assert_eq!(code(&r), "endpoint_not_allowed");
    assert_eq!(mock.requests().len(), 2);
}

#[tokio::test]
async fn anonymous_access_only_when_configured_as_its_own_principal() {
    let mock = MockProvider::start().await.unwrap();
    let closed = Identity::from_config(&IdentityConfig {
        keys: Some(KeyStoreConfig::Inline {
            keys: vec![InlineKey {
                key: Some(Secret::new(KEY)),
                principal: spec("acme"),
                ..InlineKey::default()
            }],
        }),
        ..IdentityConfig::default()
    })
    .await
    .unwrap();
    let addr = gateway(&mock, closed).await;
    assert_eq!(
        call(addr, "/v1/chat/completions", "m", &[]).await.status,
        401
    );
    assert_eq!(
        call(
            addr,
            "/v1/chat/completions",
            "m",
            &[("authorization", &format!("Bearer {KEY}"))]
        )
        .await
        .status,
        200
    );

    let mut anon = spec("public");
    anon.allowed_models = vec!["gpt-4o-mini".into()];
    let open = Identity::from_config(&IdentityConfig {
        keys: Some(KeyStoreConfig::Inline {
            keys: vec![InlineKey {
                key: Some(Secret::new(KEY)),
                principal: spec("acme"),
                ..InlineKey::default()
            }],
        }),
        anonymous: Some(AnonymousConfig {
            id: Some("guest".into()),
            principal: anon,
        }),
        ..IdentityConfig::default()
    })
    .await
    .unwrap();
    let addr = gateway(&mock, open.clone()).await;
    assert_eq!(
        call(addr, "/v1/chat/completions", "gpt-4o-mini", &[])
            .await
            .status,
        200
    );
    assert_eq!(
        code(&call(addr, "/v1/chat/completions", "gpt-4o", &[]).await),
        "model_not_allowed"
    );
    // A wrong key is refused even though anonymous access is open.
    assert_eq!(
        call(
            addr,
            "/v1/chat/completions",
            "gpt-4o-mini",
            &[("authorization", "Bearer igk_x_0000000000000000")]
        )
        .await
        .status,
        401
    );
    let p = open.authenticate(&http::HeaderMap::new()).await.unwrap();
    assert!(p.is_anonymous());
    assert_eq!((p.id(), p.tenant()), ("guest", "public"));
}

#[tokio::test]
async fn the_file_store_is_re_read_when_it_changes() {
    let dir = std::env::temp_dir().join(format!("infergate-identity-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("keys.jsonl");
    let _ = std::fs::remove_file(&path);
    let clock = ManualClock::new();
    let served =
        Arc::new(FileKeyStore::open_with_clock(&path, KeyHasher::sha256(), clock.clone()).unwrap());
    // The key tool: another handle on the same file.
    let tool = FileKeyStore::open(&path, KeyHasher::sha256()).unwrap();
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, Identity::builder().keys(served.clone()).build()).await;

    let (key, record) = tool.create(spec("acme"), None).await.unwrap();
    let auth = format!("Bearer {}", key.expose());
    let h: &[(&str, &str)] = &[("authorization", &auth)];
    assert!(!format!("{record:?}").contains(key.expose()));
    assert!(
        !std::fs::read_to_string(&path)
            .unwrap()
            .contains(key.expose()),
        "only the hash is stored"
    );
    // Not checked again before the interval...
    assert_eq!(call(addr, "/v1/chat/completions", "m", h).await.status, 401);
    clock.advance(Duration::from_secs(1));
    assert_eq!(call(addr, "/v1/chat/completions", "m", h).await.status, 200);

    tool.revoke(&record.key_id).await.unwrap();
    assert_eq!(
        call(addr, "/v1/chat/completions", "m", h).await.status,
        200,
        "within the check interval"
    );
    clock.advance(Duration::from_secs(1));
    let r = call(addr, "/v1/chat/completions", "m", h).await;
    assert_eq!(r.status, 401);
    assert!(r.text().contains("revoked"));
    let listed = tool.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked);

    // A hand-edited line (expired) and a broken line: the broken one is skipped, the rest read.
    let (key2, mut rec2) = tool.create(spec("beta"), None).await.unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    rec2.expires_at = Some(1);
    let line = serde_json::to_string(&rec2).unwrap();
    let edited: String = text
        .lines()
        .map(|l| {
            if l.contains(&rec2.key_id) {
                line.clone()
            } else {
                l.to_owned()
            }
        })
        .chain(["{not json".to_owned()])
        .collect::<Vec<_>>()
        .join("\n");
    std::fs::write(&path, edited).unwrap();
    served.reload().unwrap();
    let r = call(
        addr,
        "/v1/chat/completions",
        "m",
        &[("authorization", &format!("Bearer {}", key2.expose()))],
    )
    .await;
    assert_eq!(code(&r), "expired_api_key");
    let _ = std::fs::remove_dir_all(&dir);
}

#[cfg(feature = "serde")]
#[tokio::test]
async fn configuration_parses_from_toml_like_json() {
    let cfg: IdentityConfig = serde_json::from_value(serde_json::json!({
        "keys": {"store": "inline", "keys": [{"key": KEY, "tenant": "acme", "allowed_models": ["gpt-4o*"]}]},
        "anonymous": {"id": "guest", "tenant": "public"},
        "pepper": "p3pper"
    }))
    .unwrap();
    assert!(!format!("{cfg:?}").contains("p3pper"));
    assert!(!format!("{cfg:?}").contains(KEY));
    let id = Identity::from_config(&cfg).await.unwrap();
    assert!(!format!("{id:?}").contains(KEY));
    let mut h = http::HeaderMap::new();
    h.insert("x-api-key", KEY.parse().unwrap());
    let p = id.authenticate(&h).await.unwrap();
    assert_eq!(p.tenant(), "acme");
    assert!(p.allows_model("gpt-4o-mini") && !p.allows_model("o3"));
    assert!(!p.is_expired(std::time::SystemTime::now()));
    for bad in [
        serde_json::json!({"keys": {"store": "ldap"}}),
        serde_json::json!({"keyz": {}}),
        serde_json::json!({"keys": {"store": "inline", "keys": [{"key": KEY, "tennant": "acme"}]}}),
        serde_json::json!({"anonymous": {"tenant": "public", "alowed_models": []}}),
        serde_json::json!({"keys": {"store": "file", "path": "k", "interval": 5}}),
        serde_json::json!({"jwt": {"jwks": {"url": "x"}, "algorithms": ["HS256"]}}),
        serde_json::json!({"jwt": {"jwks": {"url": "x"}, "algorithms": ["none"]}}),
    ] {
        assert!(
            serde_json::from_value::<IdentityConfig>(bad.clone()).is_err(),
            "{bad}"
        );
    }
    assert!(
        Identity::from_config(&IdentityConfig::default())
            .await
            .is_err(),
        "nothing accepted"
    );
}
