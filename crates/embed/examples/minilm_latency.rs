//! MiniLM's time per prompt, one prompt at a time (no batching), over the long prompts of the
//! jailbreak set (`../shared/data/jailbreak/combined_labeled.jsonl`, texts of 1,500 characters
//! or more), at the default 256 tokens and at shorter reads.
//!
//! ```text
//! bash scripts/fetch_minilm.sh target/minilm
//! cargo run --release -p infergate-embed --features candle --example minilm_latency -- [DIR] [N]
//! ```
//! (`N` prompts, default 60.)

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::time::Instant;

use infergate_embed::{Embedder, MiniLm};

#[tokio::main]
async fn main() {
    let dir = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "target/minilm".into());
    let n: usize = std::env::args()
        .nth(2)
        .and_then(|n| n.parse().ok())
        .unwrap_or(60);
    let data = std::fs::read_to_string("../shared/data/jailbreak/combined_labeled.jsonl")
        .expect("../shared/data/jailbreak/combined_labeled.jsonl");
    let texts: Vec<String> = data
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["text"].as_str().map(str::to_owned))
        .filter(|t| t.len() >= 1500)
        .take(n)
        .collect();
    println!(
        "{} prompts of 1,500 characters or more, one at a time\n",
        texts.len()
    );
    println!("| MiniLM reads | median | mean | max |");
    println!("|---|---|---|---|");
    for max_tokens in [256, 128, 96, 64] {
        let m = MiniLm::load_with_max_tokens(&dir, max_tokens).unwrap();
        // Warm-up.
        m.embed(&texts[..1]).await.unwrap();
        let mut ms: Vec<f64> = Vec::new();
        for t in &texts {
            let started = Instant::now();
            m.embed(std::slice::from_ref(t)).await.unwrap();
            ms.push(started.elapsed().as_secs_f64() * 1e3);
        }
        ms.sort_by(f64::total_cmp);
        let mean = ms.iter().sum::<f64>() / ms.len() as f64;
        println!(
            "| {max_tokens} tokens | {:.1} ms | {mean:.1} ms | {:.1} ms |",
            ms[ms.len() / 2],
            ms[ms.len() - 1]
        );
    }
}
