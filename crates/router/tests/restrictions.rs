//! Regional and backend restrictions in the router: a backend whose labels the principal's
//! `allowed_labels` (or the deployment's restrictions) do not allow is never chosen, and the
//! explain header says which restriction applied.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::Full;
use infergate_client::UpstreamClient;
use infergate_core::Principal;
use infergate_embed::HashEmbedder;
use infergate_mock::MockProvider;
use infergate_router::{Router, RouterConfig, RouterError, RouterLayer, SemanticRoute, Target};
use infergate_testkit::{send, serve};
use serde_json::json;
use tower::{Layer, ServiceExt};

/// `us` behind every rule but the default, which goes to `eu`.
fn config() -> RouterConfig {
    RouterConfig::new()
        .alias("fast", Target::new("us").model("gpt-4o-mini"))
        .header("x-tier", Some("premium"), Target::new("us").model("gpt-4o"))
        .keywords("code", ["rust"], Target::new("us").model("o3"))
        .semantic(
            SemanticRoute::new(
                "billing",
                ["pay my invoice", "why was i charged twice"],
                Target::new("us").model("billing-model"),
            )
            .threshold(0.25),
        )
        .default_route(Target::new("eu").model("gpt-4o-mini"))
        .backend_labels("us", [("region", "us-east-1")])
        .backend_labels("eu", [("region", "eu-west-1")])
        .explain(true)
}

async fn router(cfg: RouterConfig) -> Router {
    let utterances = cfg.utterances();
    Router::build(cfg, Arc::new(HashEmbedder::builder().fit(utterances)))
        .await
        .unwrap()
}

fn eu_only() -> Principal {
    Principal::new("k-eu", "acme").with_allowed_labels("region", ["eu-*"])
}

#[tokio::test]
async fn a_disallowed_backend_is_never_chosen() {
    let r = router(config()).await;
    let p = eu_only();
    let mut premium = http::HeaderMap::new();
    premium.insert("x-tier", "premium".parse().unwrap());
    let plain = http::HeaderMap::new();
    for (headers, text) in [
        (&premium, "hi"),
        (&plain, "a rust question"),
        (&plain, "pay my invoice"),
        (&plain, "hello"),
    ] {
        // Without a restriction, every rule but the last goes to us.
        let d = r
            .decide_for(Some("gpt-4o-mini"), headers, text, Some(&p))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(d.backend.as_deref(), Some("eu"), "{text}");
        assert_eq!(d.rule.as_deref(), Some("default"), "{text}");
    }
    // An unrestricted principal still gets the rules.
    let any = Principal::new("k", "t");
    let d = r
        .decide_for(Some("gpt-4o-mini"), &premium, "hi", Some(&any))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.backend.as_deref(), Some("us"));
    // The client named the alias to us: refused, not a detour.
    let e = r
        .decide_for(Some("fast"), &plain, "hi", Some(&p))
        .await
        .unwrap_err();
    match e {
        RouterError::BackendNotAllowed { restriction } => {
            assert_eq!(restriction, "credential: region in [eu-*]")
        }
        other => panic!("{other:?}"),
    }
    assert!(!r.allows_backend("us", Some(&p)));
    assert!(r.allows_backend("eu", Some(&p)));
}

#[tokio::test]
async fn a_deployment_restriction_applies_without_a_principal() {
    let r = router(config().restrict("region", ["eu-west-1", "eu-central-1"])).await;
    let mut premium = http::HeaderMap::new();
    premium.insert("x-tier", "premium".parse().unwrap());
    let d = r
        .decide_text(Some("gpt-4o-mini"), &premium, "a rust question")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.backend.as_deref(), Some("eu"));
    assert!(matches!(
        r.decide_text(Some("fast"), &premium, "hi").await,
        Err(RouterError::BackendNotAllowed { .. })
    ));
    assert_eq!(
        r.restrictions_for(Some(&eu_only())).as_deref(),
        Some("deployment: region in [eu-west-1, eu-central-1]; credential: region in [eu-*]")
    );
}

#[tokio::test]
async fn a_group_is_a_candidate_when_any_member_is_allowed() {
    let cfg = RouterConfig::new()
        .header("x-tier", Some("premium"), Target::new("group"))
        .backend_labels("group", [("region", "us-east-1")])
        .backend_labels("group", [("region", "eu-west-1")]);
    let r = router(cfg).await;
    let mut premium = http::HeaderMap::new();
    premium.insert("x-tier", "premium".parse().unwrap());
    let d = r
        .decide_for(Some("m"), &premium, "hi", Some(&eu_only()))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.backend.as_deref(), Some("group"));
    let ap = Principal::new("k", "t").with_allowed_labels("region", ["ap-*"]);
    assert!(!r.allows_backend("group", Some(&ap)));
}

#[tokio::test]
async fn explain_names_the_restriction_and_what_it_ruled_out() {
    let mock = MockProvider::start().await.unwrap();
    let layer = RouterLayer::new(router(config()).await);
    let inner = layer.layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy());
    // An identity block would put the principal in the extensions; here a header picks it.
    let svc = tower::service_fn(move |mut req: http::Request<hyper::body::Incoming>| {
        let inner = inner.clone();
        async move {
            if req.headers().contains_key("x-test-eu") {
                eu_only().insert_into(req.extensions_mut());
            }
            inner.oneshot(req).await
        }
    });
    let addr = serve(svc).await;
    let ask = |eu: bool, model: &str| {
        let mut req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
            .header("content-type", "application/json")
            .header("x-tier", "premium");
        if eu {
            req = req.header("x-test-eu", "1");
        }
        let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
        send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
    };
    let r = ask(true, "gpt-4o-mini").await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.headers["x-infergate-route"],
        "default; restricted by credential: region in [eu-*]; skipped header:x-tier->us"
    );
    let r = ask(false, "gpt-4o-mini").await;
    assert_eq!(r.headers["x-infergate-route"], "header:x-tier");
    let r = ask(true, "fast").await;
    assert_eq!(r.status, 403);
    let body = r.json();
    assert_eq!(body["error"]["code"], "backend_not_allowed");
    let msg = body["error"]["message"].as_str().unwrap();
    assert!(msg.contains("region in [eu-*]"), "{msg}");
    assert!(!msg.contains("k-eu"), "{msg}");
}
