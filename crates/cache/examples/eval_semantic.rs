//! The semantic cache's threshold on public paraphrase pairs (the STS Benchmark, fetched by
//! `bash scripts/fetch_stsb.sh`): chosen on the **train** split for a false-hit rate, then
//! measured on the **test** split (hit rate on same-question pairs, false-hit rate on the
//! others), beside the fixed 0.95 the docs used to suggest. Leave-one-genre-out too: chosen on
//! two genres of train, measured on the third genre of test.
//!
//! ```text
//! bash scripts/fetch_stsb.sh
//! cargo run --release -p infergate-cache --example eval_semantic -- builtin
//! bash scripts/distill_static.sh
//! cargo run --release -p infergate-cache --example eval_semantic -- static [DIR]
//! cargo run --release -p infergate-cache --features candle --example eval_semantic -- minilm [DIR]
//! ```
//! (`STSB=dir` points at the benchmark; default target/stsb.)

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::sync::Arc;

use infergate_cache::calibrate::{ParaphrasePair, rates_at, read_sts_benchmark, similarities};
use infergate_embed::{Embedder, HashEmbedder};

const GENRES: [&str; 3] = ["main-captions", "main-news", "main-forums"];

fn read(dir: &str, split: &str, genres: Option<&[&str]>) -> Vec<ParaphrasePair> {
    let path = format!("{dir}/sts-{split}.csv");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{path}: {e} (run `bash scripts/fetch_stsb.sh`)"));
    read_sts_benchmark(&text, genres)
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "builtin".into());
    let dir = std::env::var("STSB").unwrap_or_else(|_| "target/stsb".into());
    let embedder: Arc<dyn Embedder> = match which.as_str() {
        "builtin" => Arc::new(HashEmbedder::default()),
        "static" => Arc::new(
            infergate_embed::StaticEmbedder::load(
                std::env::args()
                    .nth(2)
                    .unwrap_or_else(|| "target/static-minilm".into()),
            )
            .unwrap(),
        ),
        #[cfg(feature = "candle")]
        "minilm" => Arc::new(
            infergate_embed::MiniLm::load(
                std::env::args()
                    .nth(2)
                    .unwrap_or_else(|| "target/minilm".into()),
            )
            .unwrap(),
        ),
        other => {
            panic!("unknown embedder {other} (builtin, static, minilm with --features candle)")
        }
    };
    let train = read(&dir, "train", None);
    let test = read(&dir, "test", None);
    let (tr_same, tr_other) = similarities(&*embedder, &train).await.unwrap();
    let (te_same, te_other) = similarities(&*embedder, &test).await.unwrap();
    println!(
        "embedder `{}`; train {} same / {} other pairs, test {} / {}\n",
        embedder.name(),
        tr_same.len(),
        tr_other.len(),
        te_same.len(),
        te_other.len()
    );
    println!(
        "| threshold from | threshold | train hit rate | train false hits | **test hit rate** | **test false hits** |"
    );
    println!("|---|---|---|---|---|---|");
    for max in [0.01, 0.05] {
        let c = infergate_cache::calibrate::threshold_for(&tr_same, &tr_other, max);
        let t = rates_at(&te_same, &te_other, c.threshold);
        println!(
            "| train, ≤ {:.0} % false hits | {:.3} | {:.3} | {:.3} | **{:.3}** | **{:.3}** |",
            max * 100.0,
            c.threshold,
            c.hit_rate,
            c.false_hit_rate,
            t.hit_rate,
            t.false_hit_rate
        );
    }
    let f = rates_at(&tr_same, &tr_other, 0.95);
    let t = rates_at(&te_same, &te_other, 0.95);
    println!(
        "| fixed | 0.950 | {:.3} | {:.3} | **{:.3}** | **{:.3}** |",
        f.hit_rate, f.false_hit_rate, t.hit_rate, t.false_hit_rate
    );

    println!(
        "\nLeave one genre out (threshold from train's other two genres, ≤ 1 % false hits):\n"
    );
    println!(
        "| held-out genre | threshold | test hit rate (that genre) | test false hits (that genre) |"
    );
    println!("|---|---|---|---|");
    for held in GENRES {
        let rest: Vec<&str> = GENRES.iter().copied().filter(|g| *g != held).collect();
        let (s, o) = similarities(&*embedder, &read(&dir, "train", Some(&rest)))
            .await
            .unwrap();
        let c = infergate_cache::calibrate::threshold_for(&s, &o, 0.01);
        let (ts, to) = similarities(&*embedder, &read(&dir, "test", Some(&[held])))
            .await
            .unwrap();
        let t = rates_at(&ts, &to, c.threshold);
        println!(
            "| {held} | {:.3} | {:.3} | {:.3} |",
            c.threshold, t.hit_rate, t.false_hit_rate
        );
    }
}
