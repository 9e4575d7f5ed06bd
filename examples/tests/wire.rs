//! The example gateway against an upstream that behaves like real providers: compressed
//! answers in every coding (streams too), chunked JSON, bodies that do not decode, codings the
//! gateway does not know, and requests whose method has no body but declares one.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use infergate::core::coding::{ContentCoding, decode_body};
use infergate::mock::{MockProvider, Wire};
use infergate_examples::config::Config;
use infergate_examples::gateway;
use serde_json::{Value, json};

const EMAIL: &str = "jane.doe@example.com";
const AWS_KEY: &str = "AKIAIOSFODNN7EXAMPLE";

async fn mock(wire: Wire) -> MockProvider {
    MockProvider::builder()
        .reply(format!(
            "Write to {EMAIL} and use the key {AWS_KEY} for the upload please"
        ))
        .wire(wire)
        .start()
        .await
        .unwrap()
}

/// A gateway whose guardrail redacts e-mail addresses and secrets in answers.
fn guarded_config(url: &str, extra: &str) -> Config {
    Config::parse(&format!(
        r#"
[backends.up]
url = "{url}"
[routes]
chat = "up"
embeddings = "up"
messages = "up"
[guardrail]
[[guardrail.checks]]
name = "secrets"
detector = "secrets"
action = "redact"
applies = "response"
[[guardrail.checks]]
name = "pii"
detector = "pii"
entities = ["email"]
action = "redact"
applies = "response"
{extra}
"#
    ))
    .unwrap()
}

async fn start(config: &Config) -> (SocketAddr, gateway::Gateway) {
    gateway::spawn_local(config).await.unwrap()
}

struct Reply {
    status: u16,
    headers: http::HeaderMap,
    /// The body as the client decodes it (per its `Content-Encoding`).
    body: Bytes,
}

async fn send(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &Value) -> Reply {
    let client = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client
        .request(req.body(Full::new(Bytes::from(body.to_string()))).unwrap())
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let raw = resp.into_body().collect().await.unwrap().to_bytes();
    let body = Bytes::from(decode_body(&headers, &raw, 64 << 20).unwrap().unwrap());
    Reply {
        status,
        headers,
        body,
    }
}

fn chat(stream: bool) -> Value {
    json!({"model": "gpt-4o-mini", "stream": stream,
           "messages": [{"role": "user", "content": "Where do I send it?"}]})
}

fn assert_clean(r: &Reply, what: &str) {
    let text = String::from_utf8_lossy(&r.body);
    assert!(!text.contains(EMAIL), "{what}: e-mail leaked: {text}");
    assert!(!text.contains(AWS_KEY), "{what}: key leaked: {text}");
}

#[tokio::test]
async fn every_coding_is_decoded_and_checked_streamed_and_not() {
    let up = mock(Wire::real()).await;
    let (addr, _gw) = start(&guarded_config(&up.url(), "")).await;
    for coding in [
        "gzip",
        "deflate",
        "br",
        "zstd",
        "gzip, deflate",
        "br;q=1, gzip;q=0.5",
    ] {
        for stream in [false, true] {
            let what = format!("accept-encoding {coding}, stream {stream}");
            let r = send(
                addr,
                "/v1/chat/completions",
                &[("accept-encoding", coding)],
                &chat(stream),
            )
            .await;
            assert_eq!(r.status, 200, "{what}");
            assert_clean(&r, &what);
            let text = String::from_utf8_lossy(&r.body);
            assert!(text.contains("[EMAIL]"), "{what}: {text}");
            if stream {
                assert!(text.ends_with("data: [DONE]\n\n"), "{what}: {text}");
            } else {
                let v: Value = serde_json::from_slice(&r.body).unwrap();
                assert_eq!(v["object"], "chat.completion", "{what}");
                // Framing: one length, no transfer-encoding beside it.
                assert!(
                    r.headers.get("transfer-encoding").is_none()
                        || r.headers.get("content-length").is_none(),
                    "{what}"
                );
            }
        }
    }
    // The upstream was offered only codings the gateway decodes.
    for req in up.requests() {
        let ae = req.headers["accept-encoding"].to_str().unwrap().to_owned();
        for token in ae.split(',') {
            assert!(
                ContentCoding::from_token(token).is_some(),
                "offered upstream: {ae}"
            );
        }
    }
}

#[tokio::test]
async fn an_upstream_that_codes_anyway_is_decoded_in_every_coding() {
    // The gateway asks for cheap codings only when it must decode (no br), but an upstream
    // may send any of them regardless: each is decoded and checked.
    let up = mock(Wire::default()).await;
    let (addr, _gw) = start(&guarded_config(&up.url(), "")).await;
    for coding in ["br", "zstd", "gzip", "deflate"] {
        for stream in [false, true] {
            let r = send(
                addr,
                "/v1/chat/completions",
                &[("x-mock-encoding", coding)],
                &chat(stream),
            )
            .await;
            assert_eq!(r.status, 200, "{coding}");
            assert_clean(&r, coding);
            assert!(
                String::from_utf8_lossy(&r.body).contains("[EMAIL]"),
                "{coding}"
            );
        }
    }
}

#[tokio::test]
async fn anthropic_answers_are_decoded_and_checked() {
    let up = mock(Wire::real()).await;
    let (addr, _gw) = start(&guarded_config(&up.url(), "")).await;
    for stream in [false, true] {
        let body = json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "stream": stream,
                          "messages": [{"role": "user", "content": "Hi"}]});
        let r = send(addr, "/v1/messages", &[("accept-encoding", "gzip")], &body).await;
        assert_eq!(r.status, 200);
        assert_clean(&r, &format!("messages, stream {stream}"));
    }
}

#[tokio::test]
async fn an_answer_that_does_not_decode_is_an_error_never_a_pass() {
    let up = mock(Wire::default()).await;
    let (addr, _gw) = start(&guarded_config(&up.url(), "")).await;
    // A whole body: 502 in the OpenAI shape.
    let r = send(
        addr,
        "/v1/chat/completions",
        &[("x-mock-encoding", "broken-gzip")],
        &chat(false),
    )
    .await;
    assert_eq!(r.status, 502);
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert!(v["error"]["message"].is_string());
    assert_clean(&r, "broken gzip");
    // A stream: the client gets an error event, not the raw bytes.
    let r = send(
        addr,
        "/v1/chat/completions",
        &[("x-mock-encoding", "broken-gzip")],
        &chat(true),
    )
    .await;
    assert_eq!(r.status, 200);
    let text = String::from_utf8_lossy(&r.body);
    assert!(text.contains("event: error"), "{text}");
    assert_clean(&r, "broken gzip stream");
    // A coding the gateway does not know: the guardrail fails closed (its default) -> 502.
    for stream in [false, true] {
        let r = send(
            addr,
            "/v1/chat/completions",
            &[("x-mock-encoding", "unknown")],
            &chat(stream),
        )
        .await;
        assert_eq!(r.status, 502, "unknown coding, stream {stream}");
        assert_clean(&r, "unknown coding");
    }
}

#[tokio::test]
async fn without_response_processors_compressed_answers_pass_through() {
    let up = mock(Wire::real()).await;
    let cfg = Config::parse(&format!(
        "[backends.up]\nurl = \"{}\"\n[routes]\nchat = \"up\"\n",
        up.url()
    ))
    .unwrap();
    let (addr, _gw) = start(&cfg).await;
    let r = send(
        addr,
        "/v1/chat/completions",
        &[("accept-encoding", "gzip")],
        &chat(false),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["content-encoding"], "gzip");
    let v: Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(v["object"], "chat.completion");
    // A client that accepts nothing gets identity: the upstream was asked for identity.
    let r = send(addr, "/v1/chat/completions", &[], &chat(false)).await;
    assert!(r.headers.get("content-encoding").is_none());
    assert_eq!(
        up.requests().last().unwrap().headers["accept-encoding"],
        "identity"
    );
}

#[tokio::test]
async fn bodyless_methods_are_forwarded_without_a_body_or_its_length() {
    let up = mock(Wire::default()).await;
    let (addr, _gw) = start(&guarded_config(&up.url(), "")).await;
    let client = Client::builder(TokioExecutor::new()).build_http();
    for _ in 0..3 {
        // A GET that declares (and sends) a body: the upstream must not wait for it.
        let req = http::Request::get(format!("http://{addr}/v1/models"))
            .header("content-length", "100")
            .body(Full::new(Bytes::from(vec![b'x'; 100])))
            .unwrap();
        let resp = client.request(req).await.unwrap();
        assert_eq!(resp.status(), 200);
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["object"], "list");
    }
    for req in up.requests() {
        assert_eq!(req.method, http::Method::GET);
        assert!(req.headers.get("content-length").is_none());
        assert!(req.body.is_empty());
    }
}

#[tokio::test]
async fn an_h2c_upstream_that_compresses_is_decoded_and_checked() {
    let up = mock(Wire::real()).await;
    // The backend spoken to over HTTP/2 with prior knowledge.
    let cfg = Config::parse(&format!(
        r#"
[backends.up]
url = "{}"
http2 = true
[routes]
chat = "up"
[guardrail]
[[guardrail.checks]]
name = "pii"
detector = "pii"
entities = ["email"]
action = "redact"
applies = "response"
"#,
        up.url()
    ))
    .unwrap();
    let (h2_addr, _gw2) = start(&cfg).await;
    for stream in [false, true] {
        let r = send(
            h2_addr,
            "/v1/chat/completions",
            &[("accept-encoding", "br")],
            &chat(stream),
        )
        .await;
        assert_eq!(r.status, 200);
        assert!(!String::from_utf8_lossy(&r.body).contains(EMAIL));
    }
    let last = up.requests().pop().unwrap();
    assert_eq!(last.version, http::Version::HTTP_2);
}
