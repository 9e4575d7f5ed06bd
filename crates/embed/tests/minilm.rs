//! all-MiniLM-L6-v2 under candle against an independent reference: a plain numpy forward pass
//! of the same weights (scripts/minilm_reference.py; fixture in tests/fixtures).
//!
//! The weights come from `bash scripts/fetch_minilm.sh` (target/minilm) or the directory in
//! `INFERGATE_MINILM_DIR`; without them the test says so and passes — except under CI, which
//! fetches them.

#![cfg(feature = "candle")]
#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use infergate_embed::{Embedder, MiniLm, cosine};

fn model_dir() -> Option<std::path::PathBuf> {
    let dir = std::env::var_os("INFERGATE_MINILM_DIR").map_or_else(
        || std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/minilm"),
        Into::into,
    );
    if dir.join("model.safetensors").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("CI").is_none(),
        "CI must provide the MiniLM weights in {} (scripts/fetch_minilm.sh)",
        dir.display()
    );
    eprintln!(
        "skipping: no MiniLM weights in {} (run scripts/fetch_minilm.sh)",
        dir.display()
    );
    None
}

#[tokio::test]
async fn candle_matches_a_numpy_forward_pass_of_the_same_weights() {
    let Some(dir) = model_dir() else { return };
    let fixture: serde_json::Value =
        serde_json::from_str(include_str!("fixtures/minilm_reference.json")).unwrap();
    let sentences: Vec<String> = fixture["sentences"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_owned())
        .collect();
    let model = MiniLm::load(&dir).unwrap();
    assert_eq!(model.dim(), 384);
    // One batch: sentences of different lengths, padded together.
    let got = model.embed(&sentences).await.unwrap();
    for (i, want) in fixture["vectors"].as_array().unwrap().iter().enumerate() {
        let want: Vec<f32> = want
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        let c = cosine(&got[i], &want);
        assert!(c > 0.999, "sentence {i}: cosine {c}");
    }
    // And one at a time gives the same vectors as the batch.
    let alone = model.embed(&sentences[..1]).await.unwrap();
    assert!(cosine(&alone[0], &got[0]) > 0.9999);
}
