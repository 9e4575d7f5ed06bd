//! Shared helpers of the identity tests.
#![allow(
    dead_code,
    unreachable_pub,
    clippy::unwrap_used,
    clippy::pedantic,
    missing_docs
)]

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use infergate_client::UpstreamClient;
use infergate_core::{Pipeline, PipelineLayer};
use infergate_identity::{Identity, KeyHasher, KeyRecord, MemoryKeyStore, PrincipalSpec};
use infergate_mock::MockProvider;
use infergate_testkit::{Reply, send, serve};
use tower::Layer;

/// A gateway: the identity processor alone in a pipeline, in front of `mock`.
pub async fn gateway(mock: &MockProvider, identity: Identity) -> SocketAddr {
    let upstream = UpstreamClient::new(&mock.url()).unwrap().into_proxy();
    serve(PipelineLayer::new(Pipeline::builder().processor(identity).build()).layer(upstream)).await
}

/// POSTs a small request for `model` to `path` with these headers.
pub async fn call(addr: SocketAddr, path: &str, model: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    let body = format!(
        r#"{{"model":"{model}","max_tokens":5,"messages":[{{"role":"user","content":"hi"}}]}}"#
    );
    send(
        b.body(http_body_util::Full::new(Bytes::from(body)))
            .unwrap(),
    )
    .await
}

/// An inline store of these `(key, spec)` pairs (plain SHA-256).
pub fn store(keys: &[(&str, PrincipalSpec)]) -> Arc<MemoryKeyStore> {
    let h = KeyHasher::sha256();
    let records: Vec<KeyRecord> = keys
        .iter()
        .map(|(k, s)| KeyRecord::from_key(k, s.clone(), &h).unwrap())
        .collect();
    Arc::new(MemoryKeyStore::new(records, h).unwrap())
}

/// The error code of a refusal, in either shape (Anthropic's has none: its type instead).
pub fn code(r: &Reply) -> String {
    let j = r.json();
    j["error"]["code"].as_str().map_or_else(
        || j["error"]["type"].as_str().unwrap_or("").to_owned(),
        str::to_owned,
    )
}
