//! Routing cost per request: a model alias (no embedding), and a semantic decision over the
//! 150 CLINC150 intents (100 utterances each) with the built-in embedder — embedding the
//! query included. Skips the semantic part without ../shared/data/clinc150.
#![allow(missing_docs, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use infergate_embed::HashEmbedder;
use infergate_router::{Match, Router, RouterConfig, SemanticRoute, Target};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let headers = http::HeaderMap::new();
    let alias = rt.block_on(async {
        let cfg = RouterConfig::new().alias("fast", Target::new("b").model("m"));
        Router::build(cfg, Arc::new(HashEmbedder::default()))
            .await
            .unwrap()
    });
    c.bench_function("router/alias", |b| {
        b.iter(|| rt.block_on(alias.decide_text(Some("fast"), &headers, "hello")));
    });

    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/clinc150/data_full.json"
    );
    let Ok(data) = std::fs::read_to_string(path) else {
        eprintln!("skipping the semantic benchmarks: {path} is absent");
        return;
    };
    let v: serde_json::Value = serde_json::from_str(&data).unwrap();
    let mut by_intent: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in v["train"].as_array().unwrap() {
        by_intent
            .entry(r[1].as_str().unwrap().to_owned())
            .or_default()
            .push(r[0].as_str().unwrap().to_owned());
    }
    for (name, matching) in [
        ("centroid", Match::Centroid),
        ("nearest5", Match::Nearest { k: 5 }),
    ] {
        let router = rt.block_on(async {
            let mut cfg = RouterConfig::new().matching(matching);
            for (intent, utts) in &by_intent {
                cfg = cfg.semantic(SemanticRoute::new(
                    intent.clone(),
                    utts.clone(),
                    Target::new(intent.clone()),
                ));
            }
            let e = HashEmbedder::builder().fit(cfg.utterances());
            Router::build(cfg, Arc::new(e)).await.unwrap()
        });
        c.bench_function(&format!("router/semantic_150_routes_{name}"), |b| {
            b.iter(|| {
                rt.block_on(router.decide_text(
                    Some("gpt-4o"),
                    &headers,
                    "can you tell me how much money is in my checking account",
                ))
            });
        });
    }
    let e = HashEmbedder::builder().fit(by_intent.values().flatten());
    c.bench_function("embed/hash_embedder_one_query", |b| {
        b.iter(|| e.embed_one("can you tell me how much money is in my checking account"));
    });
    c.bench_function("embed/hash_embedder_one_query_sparse", |b| {
        b.iter(|| e.embed_sparse_one("can you tell me how much money is in my checking account"));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
