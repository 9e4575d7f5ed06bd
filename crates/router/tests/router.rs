//! The router over loopback HTTP in front of the mock provider: what reaches the upstream
//! (model, `x-gateway-model-name`), what the client is told (`x-infergate-route`), and what an
//! embedding failure does.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::sync::Arc;

use async_trait::async_trait;
use infergate_client::UpstreamClient;
use infergate_core::FailureMode;
use infergate_embed::{EmbedError, Embedder, HashEmbedder};
use infergate_mock::MockProvider;
use infergate_router::{Router, RouterConfig, RouterLayer, SemanticRoute, Target};
use infergate_testkit::{post_json, send, serve};
use serde_json::{Value, json};
use tower::Layer;

fn config() -> RouterConfig {
    RouterConfig::new()
        .alias("fast", Target::new("cheap").model("gpt-4o-mini"))
        .model_glob("claude-*", Target::new("anthropic"))
        .header(
            "x-tier",
            Some("premium"),
            Target::new("big").model("gpt-4o"),
        )
        .keywords(
            "code",
            ["rust", "stack trace"],
            Target::new("big").model("o3"),
        )
        .semantic(
            SemanticRoute::new(
                "billing",
                [
                    "how much do i owe this month",
                    "pay my invoice",
                    "update the credit card on my account",
                    "why was i charged twice",
                ],
                Target::new("cheap").model("billing-model"),
            )
            .threshold(0.25),
        )
        .semantic(
            SemanticRoute::new(
                "travel",
                [
                    "book a flight to paris",
                    "find me a hotel in rome",
                    "what gate does my flight leave from",
                ],
                Target::new("cheap").model("travel-model"),
            )
            .threshold(0.25),
        )
        .default_route(Target::new("default").model("gpt-4o-mini"))
        .explain(true)
}

async fn router(cfg: RouterConfig) -> Router {
    let utterances = cfg.utterances();
    Router::build(cfg, Arc::new(HashEmbedder::builder().fit(utterances)))
        .await
        .unwrap()
}

fn chat(model: &str, text: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are helpful."},
        {"role": "user", "content": text}]})
}

#[tokio::test]
async fn each_kind_of_rule_routes_and_explains_itself() {
    let mock = MockProvider::start().await.unwrap();
    let layer = RouterLayer::new(router(config()).await);
    let addr = serve(layer.layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy())).await;
    let cases = [
        (chat("fast", "hello"), "alias:fast", "gpt-4o-mini"),
        (
            chat("claude-3-5-haiku", "hello"),
            "glob:claude-*",
            "claude-3-5-haiku",
        ),
        (
            chat("gpt-4o-mini", "my rust build fails"),
            "keywords:code",
            "o3",
        ),
        (
            chat("gpt-4o-mini", "I want to pay the invoice I got"),
            "semantic:billing",
            "billing-model",
        ),
        (
            chat("gpt-4o-mini", "book me a flight to berlin"),
            "semantic:travel",
            "travel-model",
        ),
        (
            chat("gpt-4o-mini", "tell me a joke about cats"),
            "default",
            "gpt-4o-mini",
        ),
    ];
    for (i, (body, rule, model)) in cases.iter().enumerate() {
        let r = post_json(addr, "/v1/chat/completions", body).await;
        assert_eq!(r.status, 200);
        let explained = r.headers["x-infergate-route"].to_str().unwrap();
        assert!(explained.starts_with(rule), "{explained} for {body}");
        let seen = &mock.requests()[i];
        assert_eq!(seen.json().unwrap()["model"], *model, "{rule}");
        assert_eq!(seen.headers["x-gateway-model-name"], *model, "{rule}");
        if rule.starts_with("semantic") {
            assert!(explained.contains("score=0."), "{explained}");
        }
    }
    // A header rule.
    let req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-tier", "premium")
        .body(http_body_util::Full::new(bytes::Bytes::from(
            chat("gpt-4o-mini", "hello").to_string(),
        )))
        .unwrap();
    let r = send(req).await;
    assert_eq!(r.headers["x-infergate-route"], "header:x-tier");
    assert_eq!(
        mock.requests().last().unwrap().json().unwrap()["model"],
        "gpt-4o"
    );
}

#[tokio::test]
async fn without_rewriting_the_body_is_forwarded_unchanged() {
    let mock = MockProvider::start().await.unwrap();
    let layer = RouterLayer::new(router(config().rewrite_model(false)).await);
    let addr = serve(layer.layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy())).await;
    let body = chat("fast", "hello");
    let r = post_json(addr, "/v1/chat/completions", &body).await;
    assert_eq!(r.status, 200);
    let seen = &mock.requests()[0];
    assert_eq!(seen.body, body.to_string().as_bytes(), "byte for byte");
    assert_eq!(seen.headers["x-gateway-model-name"], "gpt-4o-mini");
}

#[tokio::test]
async fn the_query_text_can_be_the_system_prompt() {
    let cfg = RouterConfig::new()
        .keywords("support", ["helpful"], Target::new("support"))
        .query(infergate_router::QueryText::System)
        .explain(true);
    let mock = MockProvider::start().await.unwrap();
    let layer = RouterLayer::new(router(cfg).await);
    let addr = serve(layer.layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy())).await;
    let r = post_json(addr, "/v1/chat/completions", &chat("m", "nothing here")).await;
    assert_eq!(r.headers["x-infergate-route"], "keywords:support");
}

#[derive(Debug)]
struct Broken;

#[async_trait]
impl Embedder for Broken {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        if texts.len() > 1 {
            // Building the router works; routing a request does not.
            return Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect());
        }
        Err(EmbedError::Upstream("embedding service down".into()))
    }
    fn dim(&self) -> usize {
        2
    }
    fn name(&self) -> &str {
        "broken"
    }
}

#[tokio::test]
async fn an_embedding_failure_follows_the_failure_mode() {
    let mock = MockProvider::start().await.unwrap();
    let cfg = |mode| {
        RouterConfig::new()
            .semantic(SemanticRoute::new(
                "r",
                ["a", "b"],
                Target::new("x").model("routed"),
            ))
            .failure_mode(mode)
    };
    for (mode, status) in [(FailureMode::FailOpen, 200), (FailureMode::FailClosed, 502)] {
        let router = Router::build(cfg(mode), Arc::new(Broken)).await.unwrap();
        let addr = serve(
            RouterLayer::new(router).layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy()),
        )
        .await;
        let r = post_json(addr, "/v1/chat/completions", &chat("asked", "hello")).await;
        assert_eq!(r.status, status, "{mode:?}: {}", r.text());
    }
    // Fail-open: the request went on unrouted, with its own model.
    assert_eq!(mock.requests().len(), 1);
    assert_eq!(mock.requests()[0].json().unwrap()["model"], "asked");
}

#[tokio::test]
async fn with_a_principal_only_the_models_it_may_use_are_candidates() {
    use infergate_core::Principal;
    use infergate_router::RouterError;
    let r = router(config()).await;
    let mini = Principal::new("k1", "acme").with_allowed_models(["gpt-4o-mini", "claude-*"]);
    let headers = http::HeaderMap::new();
    let decide = |model: &'static str, text: &'static str, headers: http::HeaderMap| {
        let r = r.clone();
        let p = mini.clone();
        async move { r.decide_for(Some(model), &headers, text, Some(&p)).await }
    };
    // An alias to an allowed model routes as before.
    let d = decide("fast", "hi", headers.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.model.as_deref(), Some("gpt-4o-mini"));
    // A glob keeping the requested (allowed) model routes.
    let d = decide("claude-3", "hi", headers.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.rule.as_deref(), Some("glob:claude-*"));
    // A header rule to gpt-4o is no candidate: the next rule (here the default) decides.
    let mut premium = http::HeaderMap::new();
    premium.insert("x-tier", "premium".parse().unwrap());
    let d = decide("gpt-4o-mini", "hi", premium.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.rule.as_deref(), Some("default"));
    assert_eq!(d.model.as_deref(), Some("gpt-4o-mini"));
    // Without a principal the header rule wins, as before.
    let d = r
        .decide_text(Some("gpt-4o-mini"), &premium, "hi")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.rule.as_deref(), Some("header:x-tier"));
    // Keywords to o3, semantic routes to models it may not use: skipped as well.
    let d = decide("gpt-4o-mini", "a rust stack trace", headers.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.rule.as_deref(), Some("default"));
    let d = decide("gpt-4o-mini", "pay my invoice", headers.clone())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(d.rule.as_deref(), Some("default"));
    // A principal that may not use the alias's model: 403, not a detour.
    let only_o3 = Principal::new("k2", "acme").with_allowed_models(["o3"]);
    let e = r
        .decide_for(Some("fast"), &headers, "hi", Some(&only_o3))
        .await
        .unwrap_err();
    assert!(matches!(e, RouterError::ModelNotAllowed));
    // No allowed candidate and a requested model it may not use: 403.
    let e = r
        .decide_for(Some("gpt-4o"), &headers, "hello", Some(&only_o3))
        .await
        .unwrap_err();
    assert!(matches!(e, RouterError::ModelNotAllowed));
}

/// Routes without a threshold of their own use one calibrated from their utterances when the
/// router is built; the explain header says which threshold held and where it came from, and a
/// route's own threshold overrides the calibrated one.
#[tokio::test]
async fn thresholds_calibrate_themselves_from_the_routes_utterances() {
    let billing = [
        "how much do i owe this month",
        "pay my invoice",
        "update the credit card on my account",
        "why was i charged twice",
        "cancel my subscription",
        "send me a copy of my last bill",
        "my payment did not go through",
        "change my billing address",
    ];
    let travel = [
        "book a flight to paris",
        "find me a hotel in rome",
        "what gate does my flight leave from",
        "rent a car at the airport",
        "is my train on time",
        "change my seat on the flight to tokyo",
        "how much luggage can i take on the plane",
        "find a cheap hotel near the airport",
    ];
    let cfg = RouterConfig::new()
        .semantic(SemanticRoute::new(
            "billing",
            billing,
            Target::new("cheap").model("billing-model"),
        ))
        .semantic(SemanticRoute::new(
            "travel",
            travel,
            Target::new("cheap").model("travel-model"),
        ))
        .default_route(Target::new("default").model("gpt-4o-mini"))
        .explain(true);
    let built = router(cfg).await;
    let cal = built.calibration().expect("two routes calibrate");
    assert!(cal.threshold > 0.0 && cal.threshold < 1.0, "{cal:?}");
    assert_eq!(cal.queries, 16);
    assert_eq!(built.threshold_of(0), Some(cal.threshold));
    let mock = MockProvider::start().await.unwrap();
    let addr = serve(
        RouterLayer::new(built).layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy()),
    )
    .await;
    let r = post_json(
        addr,
        "/v1/chat/completions",
        &chat("m", "book a hotel in paris"),
    )
    .await;
    let explained = r.headers["x-infergate-route"].to_str().unwrap();
    assert!(explained.starts_with("semantic:travel"), "{explained}");
    assert!(
        explained.contains(&format!("threshold={:.3} (calibrated)", cal.threshold)),
        "{explained}"
    );
    // (With the built-in hashed embedder and eight utterances a route, in-route paraphrases
    // share few n-grams, so the calibrated threshold is low: docs/routing.md.)

    // A route's own threshold overrides the calibrated one.
    let cfg = RouterConfig::new()
        .semantic(SemanticRoute::new("billing", billing, Target::new("cheap")).threshold(0.05))
        .semantic(SemanticRoute::new("travel", travel, Target::new("cheap")));
    let own = router(cfg).await;
    assert_eq!(own.threshold_of(0), Some(0.05));
    assert_eq!(own.threshold_of(1), own.calibration().map(|c| c.threshold));
}
