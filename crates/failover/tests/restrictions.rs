//! Regional and backend restrictions over loopback HTTP between mock providers: a principal
//! (or the deployment) allowed only some label values never reaches another backend, even when
//! the allowed ones fail or rest.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use bytes::Bytes;
use http_body_util::Full;
use infergate_client::UpstreamClient;
use infergate_core::{Body, Pipeline, PipelineLayer, Principal};
use infergate_failover::{Backend, FailoverLayer, FailoverPolicy, Restricted, WhenAllResting};
use infergate_mock::{Failure, MockProvider};
use infergate_testkit::{Reply, send, serve};
use serde_json::json;
use tower::Layer;
use tower::ServiceExt;

fn chat() -> serde_json::Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}

fn backend(name: &str, url: &str, tier: u32, region: &str) -> Backend {
    Backend::new(name, UpstreamClient::new(url).unwrap().into_proxy())
        .tier(tier)
        .label("region", region)
}

/// The principal a test request names in `x-test-principal` (`eu`: allowed only `eu-*`
/// regions; `any`: unrestricted), put into the extensions as an identity block would.
fn principal_for(name: &str) -> Option<Principal> {
    match name {
        "eu" => Some(Principal::new("k-eu", "acme").with_allowed_labels("region", ["eu-*"])),
        "any" => Some(Principal::new("k-any", "globex")),
        _ => None,
    }
}

async fn gateway<S>(svc: S) -> std::net::SocketAddr
where
    S: tower::Service<
            http::Request<Body>,
            Response = http::Response<Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + Sync
        + 'static,
    S::Future: Send + 'static,
{
    let with_principal = tower::service_fn(move |mut req: http::Request<Body>| {
        let svc = svc.clone();
        async move {
            let name = req
                .headers()
                .get("x-test-principal")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            if let Some(p) = principal_for(&name) {
                p.insert_into(req.extensions_mut());
            }
            svc.oneshot(req).await
        }
    });
    serve(PipelineLayer::new(Pipeline::default()).layer(with_principal)).await
}

async fn ask(addr: std::net::SocketAddr, principal: Option<&str>) -> Reply {
    let mut req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json");
    if let Some(p) = principal {
        req = req.header("x-test-principal", p);
    }
    send(
        req.body(Full::new(Bytes::from(chat().to_string())))
            .unwrap(),
    )
    .await
}

/// `eu` in tier 0 would be the first choice anyway; `us` in tier 0 too, so that without a
/// restriction half the requests go there.
async fn eu_and_us(policy: FailoverPolicy) -> (MockProvider, MockProvider, std::net::SocketAddr) {
    let eu = MockProvider::start().await.unwrap();
    let us = MockProvider::start().await.unwrap();
    let svc = FailoverLayer::new(policy).service_over(vec![
        backend("eu", &eu.url(), 0, "eu-west-1"),
        backend("us", &us.url(), 0, "us-east-1"),
    ]);
    let addr = gateway(svc).await;
    (eu, us, addr)
}

#[tokio::test]
async fn a_principal_allowed_only_eu_never_reaches_us() {
    let (eu, us, addr) = eu_and_us(FailoverPolicy::default()).await;
    for _ in 0..6 {
        let r = ask(addr, Some("eu")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-infergate-backend"], "eu");
    }
    assert_eq!(us.request_count(), 0);
    assert_eq!(eu.request_count(), 6);
    // An unrestricted principal shares the load over both.
    for _ in 0..4 {
        assert_eq!(ask(addr, Some("any")).await.status, 200);
    }
    assert!(
        us.request_count() > 0,
        "the unrestricted principal uses us too"
    );
}

#[tokio::test]
async fn when_the_eu_backend_fails_the_answer_is_its_failure_not_a_detour() {
    let (eu, us, addr) = eu_and_us(FailoverPolicy::default()).await;
    eu.set_always_fail(Some(Failure::status(500)));
    let r = ask(addr, Some("eu")).await;
    // Retried on the allowed backend only; its last failure is the answer.
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.headers["x-infergate-backend"], "eu");
    assert_eq!(eu.request_count(), 3);
    assert_eq!(us.request_count(), 0);
}

#[tokio::test]
async fn when_the_eu_backend_rests_the_answer_is_503_naming_the_restriction() {
    for when_resting in [WhenAllResting::FailFast, WhenAllResting::TrySoonest] {
        let (eu, us, addr) =
            eu_and_us(FailoverPolicy::default().when_all_resting(when_resting)).await;
        eu.push_failure(Failure::status(429).retry_after("120"));
        let r = ask(addr, Some("eu")).await;
        assert_eq!(r.status, 429);
        assert_eq!(us.request_count(), 0);
        let r = ask(addr, Some("eu")).await;
        if when_resting == WhenAllResting::FailFast {
            assert_eq!(r.status, 503, "{}", r.text());
            let body = r.json();
            assert_eq!(body["error"]["code"], "no_backend_available");
            let msg = body["error"]["message"].as_str().unwrap();
            assert!(msg.contains("region in [eu-*]"), "{msg}");
            assert!(msg.contains("credential"), "{msg}");
            assert!(!msg.contains("k-eu"), "the principal is not named: {msg}");
            assert!(r.headers.contains_key("retry-after"));
        } else {
            // Tried anyway, but only the allowed backend.
            assert_eq!(r.headers["x-infergate-backend"], "eu");
        }
        assert_eq!(us.request_count(), 0, "{when_resting:?}");
        // Others still reach us while eu rests.
        let r = ask(addr, Some("any")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.headers["x-infergate-backend"], "us");
    }
}

#[tokio::test]
async fn no_allowed_member_at_all_is_403() {
    let us = MockProvider::start().await.unwrap();
    let svc = FailoverLayer::new(FailoverPolicy::default()).service_over(vec![backend(
        "us",
        &us.url(),
        0,
        "us-east-1",
    )]);
    let addr = gateway(svc).await;
    let r = ask(addr, Some("eu")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "backend_not_allowed");
    assert_eq!(us.request_count(), 0);
}

#[tokio::test]
async fn a_deployment_restriction_applies_to_every_request_with_a_principal_or_without() {
    let (eu, us, addr) =
        eu_and_us(FailoverPolicy::default().restrict("region", ["eu-west-1", "eu-central-1"]))
            .await;
    for who in [None, Some("any"), Some("eu")] {
        for _ in 0..3 {
            let r = ask(addr, who).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.headers["x-infergate-backend"], "eu", "{who:?}");
        }
    }
    assert_eq!(us.request_count(), 0);
    // eu rests: 503 for everyone (without a principal too), naming the deployment's rule.
    eu.push_failure(Failure::status(429).retry_after("120"));
    assert_eq!(ask(addr, None).await.status, 429);
    for who in [None, Some("any")] {
        let r = ask(addr, who).await;
        assert_eq!(r.status, 503, "{who:?}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(
            msg.contains("deployment: region in [eu-west-1, eu-central-1]"),
            "{msg}"
        );
    }
    assert_eq!(us.request_count(), 0);
}

#[tokio::test]
async fn a_single_restricted_backend_answers_403_to_a_disallowed_request() {
    let us = MockProvider::start().await.unwrap();
    let upstream =
        infergate_core::egress::Upstream::new(UpstreamClient::new(&us.url()).unwrap().into_proxy());
    let svc = Restricted::new(upstream).label("region", "us-east-1");
    let addr = gateway(svc.clone()).await;
    assert_eq!(ask(addr, Some("any")).await.status, 200);
    assert_eq!(ask(addr, None).await.status, 200);
    let r = ask(addr, Some("eu")).await;
    assert_eq!(r.status, 403);
    assert_eq!(r.json()["error"]["code"], "backend_not_allowed");
    assert_eq!(us.request_count(), 2);
    // Under a deployment restriction, requests without a principal are refused too.
    let addr = gateway(svc.restrict("region", ["eu-*"])).await;
    let r = ask(addr, None).await;
    assert_eq!(r.status, 403);
    assert!(
        r.json()["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deployment: region in [eu-*]")
    );
    assert_eq!(us.request_count(), 2);
}

#[tokio::test]
async fn attempts_for_a_driver_follow_the_restrictions() {
    let f = FailoverLayer::new(FailoverPolicy::default()).service_over(vec![
        Backend::external("us").label("region", "us-east-1"),
        Backend::external("eu").label("region", "eu-west-1"),
    ]);
    let eu = principal_for("eu").unwrap();
    for _ in 0..4 {
        let mut a = f.attempts_for(Some(&eu)).unwrap();
        let first = a.next().unwrap();
        assert_eq!(first.name(), "eu");
        drop(first);
    }
    let only_us = Principal::new("k", "t").with_allowed_labels("region", ["us-*"]);
    assert!(f.attempts_for(Some(&only_us)).is_ok());
    let nowhere = Principal::new("k", "t").with_allowed_labels("region", ["ap-*"]);
    let rej = f.attempts_for(Some(&nowhere)).unwrap_err();
    assert_eq!(rej.status(), http::StatusCode::FORBIDDEN);
}

/// Found by the chaos test under load: a healthy backend whose probe another request had just
/// taken was skipped, and a request that failed everywhere else got the last failure although
/// `TrySoonest` promises every resting backend is tried once the others have failed.
#[tokio::test]
async fn a_backend_whose_probe_another_request_took_is_still_tried_under_try_soonest() {
    use infergate_failover::{AttemptFailure, HealthPolicy};
    let health = HealthPolicy {
        consecutive_failures: 1,
        error_rate: None,
        base_ejection: std::time::Duration::ZERO,
        ..HealthPolicy::default()
    };
    let policy = FailoverPolicy::default()
        .health(health)
        .retry_budget(None)
        .when_all_resting(WhenAllResting::TrySoonest);
    let f = FailoverLayer::new(policy)
        .service_over(vec![Backend::external("a"), Backend::external("b")]);
    let ok = http::StatusCode::OK;
    // b fails once: ejected for no time at all, so its next request is its probe.
    loop {
        let at = f.attempts().unwrap().next().unwrap();
        if at.name() == "b" {
            at.failed(AttemptFailure::Status(http::StatusCode::BAD_GATEWAY, None));
            break;
        }
        at.answered(ok);
    }
    // Request 1 plans with a ready and b due its probe; request 2 takes the probe.
    let mut one = f.attempts().unwrap();
    let mut two = f.attempts().unwrap();
    let probe = loop {
        let at = two.next().unwrap();
        if at.name() == "b" {
            break at;
        }
        at.answered(ok);
    };
    // Request 1: a fails and rests (a minute's Retry-After); b must still be tried.
    let mut names = Vec::new();
    while let Some(at) = one.next() {
        names.push(at.name().to_owned());
        if at.name() == "b" {
            break;
        }
        at.failed(AttemptFailure::Status(
            http::StatusCode::TOO_MANY_REQUESTS,
            Some(std::time::Duration::from_secs(60)),
        ));
    }
    assert!(names.contains(&"b".to_owned()), "tried {names:?}");
    drop(probe);
}
