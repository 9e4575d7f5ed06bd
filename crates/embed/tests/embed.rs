//! Embedders over loopback HTTP against the mock provider, and the cache in front of them.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use infergate_client::UpstreamClient;
use infergate_embed::{CachedEmbedder, EmbedError, Embedder, OpenAiEmbedder, cosine};
use infergate_mock::{Failure, MockProvider};

fn texts(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("sentence number {i}")).collect()
}

#[tokio::test]
async fn openai_embeddings_in_batches_and_in_order() {
    let mock = MockProvider::start().await.unwrap();
    let e = OpenAiEmbedder::new(UpstreamClient::new(&mock.url()).unwrap(), "mock-embed", 16)
        .api_key("sk-test-embed-key")
        .batch_size(2);
    let v = e.embed(&texts(5)).await.unwrap();
    assert_eq!(v.len(), 5);
    assert!(v.iter().all(|x| x.len() == 16));
    // The same text gets the same vector, wherever it sits in a batch.
    let again = e.embed(&["sentence number 3".to_owned()]).await.unwrap();
    assert!(cosine(&v[3], &again[0]) > 0.9999);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 4, "5 texts in batches of 2, then 1");
    assert_eq!(reqs[0].headers["authorization"], "Bearer sk-test-embed-key");
    assert!(!format!("{e:?}").contains("sk-test"), "Debug hides the key");
}

#[tokio::test]
async fn upstream_errors_and_wrong_dimensions_are_errors() {
    let mock = MockProvider::start().await.unwrap();
    let e = OpenAiEmbedder::new(UpstreamClient::new(&mock.url()).unwrap(), "m", 16);
    mock.push_failure(Failure::status(503));
    let err = e.embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, EmbedError::Upstream(_)), "{err}");
    let wrong = OpenAiEmbedder::new(UpstreamClient::new(&mock.url()).unwrap(), "m", 384);
    let err = wrong.embed(&texts(1)).await.unwrap_err();
    assert!(matches!(err, EmbedError::InvalidResponse(_)), "{err}");
}

#[tokio::test]
async fn the_cache_sends_only_new_texts() {
    let mock = MockProvider::start().await.unwrap();
    let e = CachedEmbedder::new(
        OpenAiEmbedder::new(UpstreamClient::new(&mock.url()).unwrap(), "m", 16),
        1000,
    );
    let first = e.embed(&texts(3)).await.unwrap();
    let mut more = texts(5);
    more.reverse();
    let second = e.embed(&more).await.unwrap();
    assert_eq!(second[4], first[0]);
    assert_eq!(second[2], first[2]);
    let reqs = mock.requests();
    assert_eq!(reqs.len(), 2);
    let input = reqs[1].json().unwrap()["input"].clone();
    assert_eq!(
        input,
        serde_json::json!(["sentence number 4", "sentence number 3"]),
        "only the texts not cached yet"
    );
}
