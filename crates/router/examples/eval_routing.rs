//! Routing quality on CLINC150 (`../shared/data/clinc150/data_full.json`): 150 semantic
//! routes built from the train split (100 utterances each), the threshold chosen on val +
//! oos_val, in-scope accuracy reported on test and out-of-scope recall on oos_test. Never
//! tuned on the test splits.
//!
//! Besides the threshold chosen on val, the **calibrated** threshold: computed by the router
//! itself from the train utterances alone (leave-one-out, `Router::calibration`), as a
//! deployment gets it. And random draws of 10 intents with 15 train utterances each (a
//! typical gateway's route set), calibrated the same way: in-scope accuracy on those intents'
//! test queries, and refusal of oos_test and of the other 140 intents' test queries.
//!
//! ```text
//! cargo run --release -p infergate-router --example eval_routing -- hash
//! bash scripts/distill_static.sh
//! cargo run --release -p infergate-router --example eval_routing -- static [DIR]
//! cargo run --release -p infergate-router --features candle --example eval_routing -- minilm [DIR]
//! ```
//! (`DIR` defaults to target/static-minilm or target/minilm; `bash scripts/fetch_minilm.sh`
//! fills the latter.)

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use infergate_embed::{CachedEmbedder, Embedder, HashEmbedder};
use infergate_router::{Match, Router, RouterConfig, SemanticRoute, Target};

type Split = Vec<(String, String)>;

fn load(path: &str) -> BTreeMap<String, Split> {
    let v: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap())
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    v.as_object()
        .unwrap()
        .iter()
        .map(|(k, rows)| {
            let rows = rows
                .as_array()
                .unwrap()
                .iter()
                .map(|r| {
                    (
                        r[0].as_str().unwrap().to_owned(),
                        r[1].as_str().unwrap().to_owned(),
                    )
                })
                .collect();
            (k.clone(), rows)
        })
        .collect()
}

/// (predicted intent, score) for each query.
fn predict(router: &Router, vectors: &[Vec<f32>]) -> Vec<(String, f32)> {
    vectors
        .iter()
        .map(|q| {
            let (i, s) = router.best_route(q).unwrap();
            (router.semantic_routes()[i].name.clone(), s)
        })
        .collect()
}

/// In-scope accuracy and out-of-scope recall at threshold `t`.
fn rates(inscope: &[(String, f32)], labels: &Split, oos: &[(String, f32)], t: f32) -> (f64, f64) {
    let ok = inscope
        .iter()
        .zip(labels)
        .filter(|((p, s), (_, l))| p == l && *s >= t)
        .count();
    let rej = oos.iter().filter(|(_, s)| *s < t).count();
    (
        ok as f64 / inscope.len() as f64,
        rej as f64 / oos.len() as f64,
    )
}

#[tokio::main]
async fn main() {
    let which = std::env::args().nth(1).unwrap_or_else(|| "hash".into());
    let data_path = std::env::var("CLINC150")
        .unwrap_or_else(|_| "../shared/data/clinc150/data_full.json".into());
    let data = load(&data_path);
    let train = &data["train"];
    let mut by_intent: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (text, intent) in train {
        by_intent.entry(intent).or_default().push(text.clone());
    }
    let embedder: Arc<dyn Embedder> = match which.as_str() {
        "hash" => {
            // HASH_DIM and HASH_WEIGHTS="word,bigram,char" explore the embedder's settings
            // (compare them on the val columns only).
            let mut b = HashEmbedder::builder();
            if let Some(d) = std::env::var("HASH_DIM").ok().and_then(|d| d.parse().ok()) {
                b = b.dim(d);
            }
            if let Ok(w) = std::env::var("HASH_WEIGHTS") {
                let w: Vec<f32> = w.split(',').map(|x| x.parse().unwrap()).collect();
                b = b.weights(w[0], w[1], w[2]);
            }
            Arc::new(b.fit(train.iter().map(|r| &r.0)))
        }
        "static" => {
            let dir = std::env::args()
                .nth(2)
                .unwrap_or_else(|| "target/static-minilm".into());
            Arc::new(infergate_embed::StaticEmbedder::load(dir).unwrap())
        }
        #[cfg(feature = "candle")]
        "minilm" => {
            let dir = std::env::args()
                .nth(2)
                .unwrap_or_else(|| "target/minilm".into());
            Arc::new(infergate_embed::MiniLm::load(dir).unwrap())
        }
        other => panic!("unknown embedder {other} (hash, or minilm with --features candle)"),
    };
    // Embed every text once; the router builds below hit this cache.
    let cached: Arc<dyn Embedder> = Arc::new(CachedEmbedder::new(embedder.clone(), 40_000));
    let t0 = Instant::now();
    let embed = |rows: &Split| {
        let texts: Vec<String> = rows.iter().map(|r| r.0.clone()).collect();
        let e = cached.clone();
        async move {
            let mut out = Vec::new();
            for chunk in texts.chunks(64) {
                out.extend(e.embed(chunk).await.unwrap());
            }
            out
        }
    };
    // DUMP=DIR: write every split's vectors (little-endian f32, one row per text) and labels
    // there, for experiments outside Rust, and stop.
    if let Ok(dir) = std::env::var("DUMP") {
        std::fs::create_dir_all(&dir).unwrap();
        for split in ["train", "val", "oos_val", "test", "oos_test", "oos_train"] {
            let vs = embed(&data[split]).await;
            let mut bytes = Vec::new();
            for v in &vs {
                for x in v {
                    bytes.extend_from_slice(&x.to_le_bytes());
                }
            }
            std::fs::write(format!("{dir}/{split}.f32"), bytes).unwrap();
            let labels: Vec<&str> = data[split].iter().map(|r| r.1.as_str()).collect();
            std::fs::write(format!("{dir}/{split}.labels"), labels.join("\n")).unwrap();
            println!("{split}: {} vectors of {}", vs.len(), vs[0].len());
        }
        return;
    }
    let val = embed(&data["val"]).await;
    let oos_val = embed(&data["oos_val"]).await;
    let test = embed(&data["test"]).await;
    let oos_test = embed(&data["oos_test"]).await;
    let n_queries = val.len() + oos_val.len() + test.len() + oos_test.len();
    let per_query = t0.elapsed() / n_queries as u32;
    println!(
        "embedder `{}`: {} queries embedded, {:?} per query (batches of 64)\n",
        embedder.name(),
        n_queries,
        per_query
    );
    println!(
        "| matching | threshold (val) | val in-scope acc | val oos recall | **test in-scope acc** | **oos_test recall** | test acc, no threshold | route time/query | calibrated threshold (train only) | test in-scope acc | oos_test recall | calibration time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|---|");
    for (name, matching) in [
        ("centroid", Match::Centroid),
        ("nearest 1", Match::Nearest { k: 1 }),
        ("nearest 5", Match::Nearest { k: 5 }),
    ] {
        // MATCH=centroid runs one strategy only (the nearest ones are slow over 15,000 vectors).
        if std::env::var("MATCH").is_ok_and(|m| !name.starts_with(m.as_str())) {
            continue;
        }
        let mut cfg = RouterConfig::new().matching(matching);
        for (intent, utts) in &by_intent {
            cfg = cfg.semantic(SemanticRoute::new(
                *intent,
                utts.clone(),
                Target::new(*intent),
            ));
        }
        let t_build = Instant::now();
        let router = Router::build(cfg, cached.clone()).await.unwrap();
        let build_time = t_build.elapsed();
        let pv = predict(&router, &val);
        let po = predict(&router, &oos_val);
        // The threshold that maximises accuracy over val + oos_val.
        let mut candidates: Vec<f32> = pv.iter().chain(&po).map(|p| p.1).collect();
        candidates.sort_by(f32::total_cmp);
        let (mut best_t, mut best) = (0.0f32, -1.0f64);
        for &t in candidates.iter().step_by(5) {
            let (a, r) = rates(&pv, &data["val"], &po, t);
            let acc = (a * pv.len() as f64 + r * po.len() as f64) / (pv.len() + po.len()) as f64;
            if acc > best {
                best = acc;
                best_t = t;
            }
        }
        let (va, vr) = rates(&pv, &data["val"], &po, best_t);
        let t1 = Instant::now();
        let pt = predict(&router, &test);
        let route_time = t1.elapsed() / test.len() as u32;
        let pto = predict(&router, &oos_test);
        let (ta, tr) = rates(&pt, &data["test"], &pto, best_t);
        let (raw, _) = rates(&pt, &data["test"], &pto, f32::MIN);
        let cal = router.calibration().unwrap();
        let (ca, cr) = rates(&pt, &data["test"], &pto, cal.threshold);
        println!(
            "| {name} | {best_t:.3} | {va:.3} | {vr:.3} | **{ta:.3}** | **{tr:.3}** | {raw:.3} | {route_time:?} | {:.3} | **{ca:.3}** | **{cr:.3}** | {build_time:?} (build, vectors cached) |",
            cal.threshold
        );
    }
    if std::env::var("DRAWS").is_ok_and(|d| d == "0") {
        return;
    }
    // Random draws of 10 intents × 15 train utterances, calibrated on those alone.
    let intents: Vec<&str> = by_intent.keys().copied().collect();
    let mut test_by: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, (_, intent)) in data["test"].iter().enumerate() {
        test_by.entry(intent.as_str()).or_default().push(i);
    }
    let mut rng = 0x2026_u64;
    let mut next = || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let draws: usize = std::env::var("DRAWS")
        .ok()
        .and_then(|d| d.parse().ok())
        .unwrap_or(20);
    let (mut accs, mut oos, mut others, mut ts) = (vec![], vec![], vec![], vec![]);
    for _ in 0..draws {
        let mut pool = intents.clone();
        let mut chosen = Vec::new();
        for _ in 0..10 {
            let j = (next() % pool.len() as u64) as usize;
            chosen.push(pool.swap_remove(j));
        }
        let mut cfg = RouterConfig::new();
        for intent in &chosen {
            let mut utts = by_intent[intent].clone();
            let mut picked = Vec::new();
            for _ in 0..15 {
                let j = (next() % utts.len() as u64) as usize;
                picked.push(utts.swap_remove(j));
            }
            cfg = cfg.semantic(SemanticRoute::new(*intent, picked, Target::new(*intent)));
        }
        let router = Router::build(cfg, cached.clone()).await.unwrap();
        let t = router.calibration().unwrap().threshold;
        let (mut ok, mut n, mut rej_other, mut n_other) = (0usize, 0usize, 0usize, 0usize);
        for (i, (_, intent)) in data["test"].iter().enumerate() {
            let (r, s) = router.best_route(&test[i]).unwrap();
            if chosen.contains(&intent.as_str()) {
                n += 1;
                if router.semantic_routes()[r].name == *intent && s >= t {
                    ok += 1;
                }
            } else {
                n_other += 1;
                if s < t {
                    rej_other += 1;
                }
            }
        }
        let rej_oos = oos_test
            .iter()
            .filter(|q| router.best_route(q).unwrap().1 < t)
            .count();
        accs.push(ok as f64 / n as f64);
        oos.push(rej_oos as f64 / oos_test.len() as f64);
        others.push(rej_other as f64 / n_other as f64);
        ts.push(f64::from(t));
    }
    let stat = |v: &[f64]| {
        let m = v.iter().sum::<f64>() / v.len() as f64;
        let sd = (v.iter().map(|x| (x - m).powi(2)).sum::<f64>() / v.len() as f64).sqrt();
        let min = v.iter().copied().fold(f64::MAX, f64::min);
        format!("{m:.3} ± {sd:.3} (min {min:.3})")
    };
    println!(
        "\n{draws} draws of 10 intents × 15 utterances (centroid, calibrated threshold {}):\n",
        stat(&ts)
    );
    println!("| in-scope accuracy | oos_test refused | other intents' test queries refused |");
    println!("|---|---|---|");
    println!("| {} | {} | {} |", stat(&accs), stat(&oos), stat(&others));
}
