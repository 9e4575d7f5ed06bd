//! The isolation matrix (issue 16) through the example gateway with identity on: anonymous,
//! wrong, revoked and expired keys, two tenants, two users of one tenant, and spoofed
//! `x-tenant-id`, body `user` and header-tenant values, across the exact cache, single-flight,
//! the semantic cache and rate-limit buckets. No principal ever receives another's cached answer
//! (checked by `x-cache` and by the answer's id: the mock numbers every upstream answer) or
//! spends another's bucket; spoofed values change nothing once identity is on.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use infergate_examples::config::Config;
use infergate_examples::gateway;
use infergate_testkit::{Reply, send};
use serde_json::{Value, json};

/// Tenant acme, end user alice.
const ALICE: &str = "igk_acme-alice_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
/// Tenant acme, end user bob.
const BOB: &str = "igk_acme-bob_BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB";
/// Tenant acme, no end user (a service key: its clients' `user` values are its own word).
const SVC: &str = "igk_acme-svc_SSSSSSSSSSSSSSSSSSSSSSSSSSSSSSSS";
/// Tenant globex.
const GLOBEX: &str = "igk_globex_GGGGGGGGGGGGGGGGGGGGGGGGGGGGGGGG";
/// Tenant acme, revoked.
const REVOKED: &str = "igk_revoked_RRRRRRRRRRRRRRRRRRRRRRRRRRRRRRRR";
/// Tenant acme, expired (1970).
const EXPIRED: &str = "igk_expired_EEEEEEEEEEEEEEEEEEEEEEEEEEEEEEEE";
/// Tenant tiny, whose key carries its own limit: one request a minute.
const TINY: &str = "igk_tiny_TTTTTTTTTTTTTTTTTTTTTTTTTTTTTTTT";
/// alice's key id with another secret.
const WRONG: &str = "igk_acme-alice_XXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX";

fn identity(anonymous: bool) -> String {
    let mut s = format!(
        r#"
[backends.mock]
url = "mock"

[identity.keys]
store = "inline"
keys = [
  {{ key = "{ALICE}", tenant = "acme", user = "alice" }},
  {{ key = "{BOB}", tenant = "acme", user = "bob" }},
  {{ key = "{SVC}", tenant = "acme" }},
  {{ key = "{GLOBEX}", tenant = "globex" }},
  {{ key = "{TINY}", tenant = "tiny", limits = {{ requests_per_minute = "1" }} }},
  {{ key = "{REVOKED}", tenant = "acme", revoked = true }},
  {{ key = "{EXPIRED}", tenant = "acme", expires_at = 1 }},
]
"#
    );
    if anonymous {
        s.push_str("\n[identity.anonymous]\nid = \"guest\"\ntenant = \"public\"\n");
    }
    s
}

async fn start(text: &str) -> (SocketAddr, gateway::Gateway) {
    gateway::spawn_local(&Config::parse(text).unwrap())
        .await
        .unwrap()
}

/// A chat request by `key` (none: anonymous) that also claims, as a spoofer would, to be
/// tenant acme (`x-tenant-id`) and, in the body, `user` (when given).
async fn ask(addr: SocketAddr, key: Option<&str>, body: &Value) -> Reply {
    let mut req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-tenant-id", "acme");
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
}

fn chat(text: &str, user: Option<&str>) -> Value {
    let mut v = json!({"model": "gpt-4o-mini", "temperature": 0,
        "messages": [{"role": "user", "content": text}]});
    if let Some(u) = user {
        v["user"] = json!(u);
    }
    v
}

/// The answer's id (`chatcmpl-mock-N`: one N per upstream call) and `x-cache`.
fn answer(r: &Reply) -> (String, String) {
    assert_eq!(r.status, 200, "{}", r.text());
    (
        r.json()["id"].as_str().unwrap().to_owned(),
        r.headers
            .get("x-cache")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default(),
    )
}

/// A refusal: the status and code, no cached answer, nothing of an answer in the body.
fn refused(r: &Reply, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.text());
    assert_eq!(r.json()["error"]["code"], code, "{}", r.text());
    assert!(!r.headers.contains_key("x-cache"));
    assert!(!r.text().contains("chatcmpl"), "{}", r.text());
}

const CACHE: &str = r#"
[cache]
tenant = "header:x-tenant-id"    # client-asserted: with identity on it must change nothing
exact_per_user = true
single_flight = true
semantic_threshold = 0.8
"#;

#[tokio::test]
async fn bad_credentials_are_refused_and_never_see_a_cached_answer() {
    let (addr, _gw) = start(&(identity(true) + CACHE)).await;
    let q = chat("what is the capital of france", Some("alice"));
    let (first, x) = answer(&ask(addr, Some(ALICE), &q).await);
    assert_eq!(x, "MISS");
    assert_eq!(
        answer(&ask(addr, Some(ALICE), &q).await),
        (first, "HIT".into())
    );
    refused(&ask(addr, Some(WRONG), &q).await, 401, "invalid_api_key");
    refused(&ask(addr, Some(REVOKED), &q).await, 401, "invalid_api_key");
    refused(&ask(addr, Some(EXPIRED), &q).await, 401, "expired_api_key");
    refused(
        &ask(addr, Some("sk-made-up"), &q).await,
        401,
        "invalid_api_key",
    );
    // Without anonymous access, no credential is a 401 too.
    let (closed, _gw2) = start(&(identity(false) + CACHE)).await;
    refused(&ask(closed, None, &q).await, 401, "missing_api_key");
}

#[tokio::test]
async fn the_exact_cache_never_crosses_principals_whatever_they_claim() {
    let (addr, gw) = start(&(identity(true) + CACHE)).await;
    let mock = gw.mock.as_ref().unwrap();
    // Every request claims tenant acme (x-tenant-id) and end user alice (body).
    let q = chat("name three rivers", Some("alice"));
    let (alice, x) = answer(&ask(addr, Some(ALICE), &q).await);
    assert_eq!(x, "MISS");
    let mut seen = vec![alice.clone()];
    // Another user of the same tenant, another tenant, a key without a user, anonymous: each
    // a miss with an answer of its own.
    for key in [Some(BOB), Some(GLOBEX), Some(SVC), None] {
        let (id, x) = answer(&ask(addr, key, &q).await);
        assert_eq!(x, "MISS", "{key:?}");
        assert!(
            !seen.contains(&id),
            "{key:?} got another principal's answer"
        );
        seen.push(id);
    }
    // Each finds its own answer again, never another's.
    for (key, own) in [Some(ALICE), Some(BOB), Some(GLOBEX), Some(SVC), None]
        .into_iter()
        .zip(seen.clone())
    {
        assert_eq!(
            answer(&ask(addr, key, &q).await),
            (own, "HIT".into()),
            "{key:?}"
        );
    }
    // A body `user` changes nothing for a principal that has one; for a key without one, it
    // separates that key's own clients (within its tenant).
    let (id, x) = answer(&ask(addr, Some(ALICE), &chat("name three rivers", Some("bob"))).await);
    assert_eq!((id, x.as_str()), (seen[0].clone(), "HIT"));
    let (id, x) = answer(&ask(addr, Some(SVC), &chat("name three rivers", Some("carol"))).await);
    assert_eq!(x, "MISS");
    assert!(!seen.contains(&id));
    assert_eq!(mock.request_count(), 6);
}

#[tokio::test]
async fn the_semantic_cache_is_scoped_by_tenant_and_end_user() {
    let (addr, _gw) = start(&(identity(true) + CACHE)).await;
    let conv = |last: &str, user: Option<&str>| {
        let mut v = json!({"model": "gpt-4o-mini", "temperature": 0, "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": "Tell me about cats."},
            {"role": "assistant", "content": "Sure."},
            {"role": "user", "content": last}]});
        if let Some(u) = user {
            v["user"] = json!(u);
        }
        v
    };
    let asked = conv("Tell me more about their history", Some("alice"));
    let paraphrase = conv("tell me more about their history!", Some("alice"));
    let (alice, x) = answer(&ask(addr, Some(ALICE), &asked).await);
    assert_eq!(x, "MISS");
    // Its own paraphrase: a semantic hit with its own answer.
    let r = ask(addr, Some(ALICE), &paraphrase).await;
    assert_eq!(answer(&r), (alice.clone(), "HIT".into()));
    assert!(r.headers.contains_key("x-cache-similarity"));
    // Anyone else, claiming acme and alice: a miss, never alice's answer.
    for key in [Some(BOB), Some(GLOBEX), Some(SVC), None] {
        let (id, x) = answer(&ask(addr, key, &paraphrase).await);
        assert_eq!(x, "MISS", "{key:?}");
        assert_ne!(id, alice, "{key:?} got alice's answer");
    }
}

#[tokio::test]
async fn single_flight_never_hands_one_principals_answer_to_another() {
    let (addr, gw) = start(&(identity(true) + CACHE)).await;
    let mock = gw.mock.as_ref().unwrap();
    // Slow answers, so that identical requests overlap and followers wait for a leader (the
    // assertions hold whether or not they do: a late request is an exact hit of its own).
    mock.set_latency(Duration::from_millis(300));
    let q = chat("one slow question", Some("alice"));
    let keys = [Some(ALICE), Some(BOB), Some(GLOBEX), None];
    let calls = keys.iter().flat_map(|key| {
        let q = q.clone();
        (0..4).map(move |_| {
            let q = q.clone();
            async move { (*key, answer(&ask(addr, *key, &q).await).0) }
        })
    });
    let replies = futures_util::future::join_all(calls).await;
    let mut ids: Vec<String> = Vec::new();
    for key in keys {
        let own: Vec<&String> = replies
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, id)| id)
            .collect();
        assert_eq!(own.len(), 4);
        assert!(own.iter().all(|id| *id == own[0]), "{key:?}: {own:?}");
        assert!(
            !ids.contains(own[0]),
            "{key:?} got another principal's answer"
        );
        ids.push(own[0].clone());
    }
    // One upstream call per principal: each led its own flight.
    assert_eq!(mock.request_count(), 4);
}

const LIMITS: &str = r#"
[ratelimit]
key = ["header:x-tenant-id"]     # client-asserted: with identity on, the principal's tenant
[ratelimit.limits]
requests_per_minute = 2
tokens_per_minute = 1000000
"#;

/// A request that rotates what a client can rotate: the tenant header and the body's user.
async fn spend(addr: SocketAddr, key: Option<&str>, i: usize) -> Reply {
    let mut req = http::Request::post(format!("http://{addr}/v1/chat/completions"))
        .header("content-type", "application/json")
        .header("x-tenant-id", format!("tenant-{i}"));
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let body = chat("hi", Some(&format!("user-{i}")));
    send(req.body(Full::new(Bytes::from(body.to_string()))).unwrap()).await
}

#[tokio::test]
async fn one_tenant_exhausting_its_bucket_leaves_the_others_untouched() {
    let (addr, gw) = start(&(identity(false) + LIMITS)).await;
    let mock = gw.mock.as_ref().unwrap();
    // Bad credentials are refused before the limiter and spend nothing.
    refused(&spend(addr, None, 0).await, 401, "missing_api_key");
    refused(&spend(addr, Some(WRONG), 0).await, 401, "invalid_api_key");
    refused(&spend(addr, Some(REVOKED), 0).await, 401, "invalid_api_key");
    refused(&spend(addr, Some(EXPIRED), 0).await, 401, "expired_api_key");
    // acme spends its two requests; rotating the tenant header and the body's user buys no
    // fresh bucket.
    for i in 0..2 {
        assert_eq!(spend(addr, Some(ALICE), i).await.status, 200);
    }
    for i in 2..5 {
        let r = spend(addr, Some(ALICE), i).await;
        assert_eq!(r.status, 429, "{}", r.text());
    }
    // bob is in acme too: the same (spent) bucket.
    assert_eq!(spend(addr, Some(BOB), 9).await.status, 429);
    assert_eq!(spend(addr, Some(SVC), 9).await.status, 429);
    // globex, even claiming to be acme or anyone else, has its own.
    for i in 0..2 {
        let r = spend(addr, Some(GLOBEX), i).await;
        assert_eq!(r.status, 200, "{}", r.text());
    }
    assert_eq!(spend(addr, Some(GLOBEX), 2).await.status, 429);
    // A principal's own limits replace the configured ones.
    assert_eq!(spend(addr, Some(TINY), 0).await.status, 200);
    assert_eq!(spend(addr, Some(TINY), 1).await.status, 429);
    assert_eq!(mock.request_count(), 5);
}

#[tokio::test]
async fn the_sample_config_demo_keys() {
    let cfg = Config::parse(include_str!("../gateway/infergate.toml")).unwrap();
    assert!(cfg.identity.is_some());
    let (addr, _gw) = {
        let gw = gateway::build(&cfg).await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(gateway::serve(
            listener,
            gw.service.clone(),
            std::future::pending(),
        ));
        (addr, gw)
    };
    let demo = "igk_demo_0000000000000000000000000000";
    let mini = "igk_mini_1111111111111111111111111111";
    let model =
        |m: &str, text: &str| json!({"model": m, "messages": [{"role": "user", "content": text}]});
    // No key: 401.
    refused(
        &ask(addr, None, &model("gpt-4o-mini", "hi")).await,
        401,
        "missing_api_key",
    );
    // The demo key may use every model.
    let r = ask(addr, Some(demo), &model("gpt-4o", "hi")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    // The gpt-4o-mini principal: gpt-4o-mini yes, gpt-4o no.
    let r = ask(addr, Some(mini), &model("gpt-4o-mini", "hi")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    refused(
        &ask(addr, Some(mini), &model("gpt-4o", "hi")).await,
        403,
        "model_not_allowed",
    );
    // The router's keyword rule sends code questions to gpt-4o: for the demo key it does, for
    // the gpt-4o-mini principal that rule is no candidate and the request keeps its model.
    let code = model("gpt-4o-mini", "why does my rust code not compile");
    let r = ask(addr, Some(demo), &code).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "gpt-4o");
    let r = ask(addr, Some(mini), &code).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["model"], "gpt-4o-mini");
}

#[tokio::test]
async fn a_semantic_threshold_calibrated_at_startup_answers_a_paraphrase_not_another_question() {
    // Labelled pairs in the STS Benchmark's shape: the same question (score ≥ 4) and other
    // questions (score < 3). The threshold is chosen so that none of the others would hit.
    let dir = std::env::temp_dir().join(format!("infergate-semcal-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let pairs = dir.join("pairs.tsv");
    // The others are near misses, as real ones are: one word apart.
    let rows = [
        (
            "4.8",
            "what is the capital of france",
            "what is the capital city of france",
        ),
        (
            "4.6",
            "what is the capital of france",
            "what's the capital of france",
        ),
        (
            "4.4",
            "how do i reset my password",
            "how can i reset my password",
        ),
        (
            "1.0",
            "what is the capital of france",
            "what is the capital of spain",
        ),
        (
            "1.2",
            "what is the capital of spain",
            "what is the capital of germany",
        ),
        (
            "1.5",
            "how do i reset my password",
            "how do i change my password",
        ),
        (
            "0.8",
            "how do i reset my password",
            "how do i reset my email",
        ),
        (
            "2.0",
            "what is the capital of france",
            "what is the population of france",
        ),
    ];
    let text: String = rows
        .iter()
        .enumerate()
        .map(|(i, (s, a, b))| format!("main-forums\tq\t2015\t{i}\t{s}\t{a}\t{b}\n"))
        .collect();
    std::fs::write(&pairs, text).unwrap();
    let config = format!(
        "{}\n[cache]\nsemantic_max_false_hits = 0.0\nsemantic_calibration_pairs = {:?}\n",
        identity(true),
        pairs.to_str().unwrap()
    );
    let (addr, _gw) = start(&config).await;
    let (first, x) = answer(
        &ask(
            addr,
            Some(ALICE),
            &chat("what is the capital of france", None),
        )
        .await,
    );
    assert_eq!(x, "MISS");
    // A paraphrase: answered from the cache, with its similarity.
    let r = ask(
        addr,
        Some(ALICE),
        &chat("what is the capital city of france", None),
    )
    .await;
    let sim: f32 = r.headers["x-cache-similarity"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(sim < 1.0);
    assert_eq!(answer(&r), (first.clone(), "HIT".into()));
    // Another question: not answered with the first one's answer.
    let r = ask(
        addr,
        Some(ALICE),
        &chat("what is the capital of germany", None),
    )
    .await;
    let (other, x) = answer(&r);
    assert_eq!(x, "MISS");
    assert_ne!(other, first);
    std::fs::remove_dir_all(&dir).ok();
}
