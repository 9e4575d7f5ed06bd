//! Regional restrictions through the example gateway: two mock backends labelled by region, a
//! failover group over both, and `[restrictions] region = ["eu-*"]`. No request reaches the
//! `us` backend — through the group, a router rule or a route to it alone — even when the `eu`
//! backend rests (503 naming the restriction instead).

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::Full;
use infergate::mock::Failure;
use infergate_examples::config::Config;
use infergate_examples::gateway;
use infergate_testkit::{Reply, send};
use serde_json::json;

const CONFIG: &str = r#"
[backends.eu]
url = "mock:eu"
labels = { region = "eu-west-1", data_residency = "eu" }

[backends.us]
url = "mock:us"
labels = { region = "us-east-1" }

[failover.chat]
members = [
  { backend = "eu", tier = 0 },
  { backend = "us", tier = 0 },
]

[restrictions]
region = ["eu-*"]

[router]
explain = true
[[router.headers]]
name = "x-tier"
value = "premium"
backend = "us"

[routes]
chat = "chat"
embeddings = "us"
"#;

async fn start(config: &Config) -> (SocketAddr, gateway::Gateway) {
    gateway::spawn_local(config).await.unwrap()
}

async fn post(addr: SocketAddr, path: &str, premium: bool) -> Reply {
    let body = if path.ends_with("embeddings") {
        json!({"model": "text-embedding-3-small", "input": "hi"})
    } else {
        json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
    };
    let mut req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    if premium {
        req = req.header("x-tier", "premium");
    }
    send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
}

#[tokio::test]
async fn a_deployment_restricted_to_eu_never_reaches_the_us_backend() {
    let cfg = Config::parse(CONFIG).unwrap();
    let (addr, gw) = start(&cfg).await;
    let eu = &gw.named_mocks["eu"];
    let us = &gw.named_mocks["us"];

    // The group over both (same tier): every request to eu.
    for _ in 0..6 {
        let r = post(addr, "/v1/chat/completions", false).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.headers["x-infergate-backend"], "eu");
    }
    // The router's rule to us is skipped, and explain says why.
    let r = post(addr, "/v1/chat/completions", true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-backend"], "eu");
    let route = r.headers["x-infergate-route"].to_str().unwrap();
    assert!(
        route.contains("restricted by deployment: region in [eu-*]"),
        "{route}"
    );
    assert!(route.contains("skipped header:x-tier->us"), "{route}");
    // A route to us alone: 403, not sent.
    let r = post(addr, "/v1/embeddings", false).await;
    assert_eq!(r.status, 403, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], "backend_not_allowed");
    assert_eq!(us.request_count(), 0);

    // eu rests after a 429 with Retry-After: the answer is its 429, then 503 naming the
    // restriction — never a detour to us.
    eu.push_failure(Failure::status(429).retry_after("120"));
    let r = post(addr, "/v1/chat/completions", false).await;
    assert_eq!(r.status, 429);
    assert_eq!(r.headers["x-infergate-backend"], "eu");
    let r = post(addr, "/v1/chat/completions", false).await;
    assert_eq!(r.status, 503, "{}", r.text());
    let body = r.json();
    assert_eq!(body["error"]["code"], "no_backend_available");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("deployment: region in [eu-*]"), "{msg}");
    assert!(r.headers.contains_key("retry-after"));
    assert_eq!(us.request_count(), 0);
    assert_eq!(gw.failover["chat"].status()[1].name, "us");
}

#[tokio::test]
async fn without_restrictions_the_group_uses_both_regions() {
    let unrestricted = CONFIG.replace("[restrictions]\nregion = [\"eu-*\"]\n", "");
    let cfg = Config::parse(&unrestricted).unwrap();
    let (addr, gw) = start(&cfg).await;
    for _ in 0..4 {
        assert_eq!(post(addr, "/v1/chat/completions", false).await.status, 200);
    }
    assert!(gw.named_mocks["us"].request_count() > 0);
    // The router's rule sends to us directly (not through the group).
    let before = gw.named_mocks["us"].request_count();
    let r = post(addr, "/v1/chat/completions", true).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["x-infergate-route"], "header:x-tier");
    assert_eq!(gw.named_mocks["us"].request_count(), before + 1);
    assert_eq!(post(addr, "/v1/embeddings", false).await.status, 200);
}

/// A principal's own restriction (from its key record): its traffic stays in `eu`, another
/// principal's does not.
#[tokio::test]
async fn a_principal_restricted_to_eu_never_reaches_the_us_backend() {
    let with_keys = CONFIG.replace("[restrictions]\nregion = [\"eu-*\"]\n", "")
        + r#"
[identity.keys]
store = "inline"
keys = [
  { key = "igk_eu_00000000000000000000000000000000", tenant = "eu-only", allowed_labels = { region = ["eu-*"] } },
  { key = "igk_any_0000000000000000000000000000000", tenant = "anywhere" },
]
"#;
    let cfg = Config::parse(&with_keys).unwrap();
    let (addr, gw) = start(&cfg).await;
    let call = |key: &'static str| async move {
        let body = json!({"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]});
        let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {key}"))
            .body(Full::new(Bytes::from(body.to_string())))
            .unwrap();
        send(req).await
    };
    for _ in 0..6 {
        let r = call("igk_eu_00000000000000000000000000000000").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.headers["x-infergate-backend"], "eu");
    }
    assert_eq!(gw.named_mocks["us"].request_count(), 0);
    for _ in 0..6 {
        assert_eq!(
            call("igk_any_0000000000000000000000000000000").await.status,
            200
        );
    }
    assert!(gw.named_mocks["us"].request_count() > 0);
}
