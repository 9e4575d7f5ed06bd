//! The request body is parsed once per request, whatever blocks are on: the router, the
//! guardrail, the cache, the rate limiter, a failover group that maps the model for its
//! backend, and an Azure credential injector that puts the (mapped) model in the URL all read
//! the pipeline's one parse. (Its own test binary: the parse counter is process-wide.)

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use infergate::core::payload::parse_count;
use infergate::mock::MockProvider;
use infergate_examples::config::Config;
use infergate_examples::gateway;
use serde_json::json;

#[tokio::test]
async fn one_parse_per_request_with_every_block_on() {
    let up = MockProvider::start().await.unwrap();
    let cfg = Config::parse(&format!(
        r#"
[backends.azure]
url = "{url}"
[backends.azure.auth]
provider = "azure"
keys = ["inline:test-azure-key"]
api_version = "2024-10-21"
[backends.plain]
url = "{url}"
[failover.chat]
members = [
  {{ backend = "azure", tier = 0, models = {{ "gpt-4o" = "gpt-4o-2024-08-06" }} }},
  {{ backend = "plain", tier = 1 }},
]
[routes]
chat = "chat"
[router]
[[router.aliases]]
name = "smart"
backend = "chat"
model = "gpt-4o"
[[router.semantic]]
name = "billing"
utterances = ["pay my invoice", "why was i charged twice"]
backend = "chat"
threshold = 0.3
[guardrail]
[[guardrail.checks]]
name = "pii"
detector = "pii"
action = "redact"
applies = "both"
[[guardrail.checks]]
name = "injection"
detector = "injection"
action = "block"
applies = "request"
[cache]
[ratelimit]
key = ["api_key"]
[ratelimit.limits]
requests_per_minute = 1000
tokens_per_minute = 1000000
"#,
        url = up.url()
    ))
    .unwrap();
    let gw = gateway::build(&cfg).await.unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(gateway::serve(listener, gw.service, std::future::pending()));
    let body = json!({"model": "smart", "messages": [{"role": "user", "content": "Hello jane.doe@example.com, what is 2+2?"}]});
    for round in 0..2 {
        let before = parse_count();
        let r = infergate_testkit::post_json(addr, "/v1/chat/completions", &body).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(
            parse_count() - before,
            1,
            "round {round}: parses per request"
        );
    }
    // The failover mapped the model and the injector put the mapped model in Azure's URL.
    let req = up.requests().into_iter().next().unwrap();
    assert!(
        req.path
            .starts_with("/openai/deployments/gpt-4o-2024-08-06/chat/completions"),
        "{}",
        req.path
    );
    assert_eq!(req.json().unwrap()["model"], "gpt-4o-2024-08-06");
}
