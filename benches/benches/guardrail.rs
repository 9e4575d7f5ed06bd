//! Guardrail scanning: throughput of the built-in PII detectors on ordinary prose, and the
//! per-request cost on a 2 KB prompt.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infergate_guardrail::detect::{
    DEFAULT_PII_KINDS, DenyList, EntityKind, PiiDetector, ascii_lowercase, injection_score,
    injection_score_lowered, scan_pii, scan_secrets,
};

const PROSE: &str = "The committee met on a grey morning to review the proposal. Several members \
    argued that the budget, although modest, would stretch the team too thin over the coming \
    months; others replied that the risks of waiting were greater still. After some debate they \
    agreed to fund a smaller pilot in 2025, with a review after three months and a report to the \
    board. Meanwhile the engineers kept working on the parser, the cache and the new dashboards, \
    and the support team answered questions about billing, accounts and the mobile app. ";

fn bench(c: &mut Criterion) {
    let big = PROSE.repeat(1024 * 1024 / PROSE.len());
    let mut g = c.benchmark_group("guardrail");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("pii_scan_prose_1mb", |b| b.iter(|| scan_pii(&big).len()));
    // Every kind, names and street addresses (keyword rules) included.
    let every = PiiDetector::new().entities(
        DEFAULT_PII_KINDS
            .into_iter()
            .chain([EntityKind::Person, EntityKind::StreetAddress]),
    );
    g.bench_function("pii_scan_every_kind_prose_1mb", |b| {
        b.iter(|| every.scan(&big).len());
    });
    g.finish();
    // Number-dense text: the look-alike set (versions, dates, prices, order numbers, logs).
    let lookalikes: String = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../crates/guardrail/tests/data/pii_lookalikes.jsonl"
    ))
    .unwrap_or_default()
    .lines()
    .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
    .map(|v| v["text"].as_str().unwrap_or_default().to_owned() + "\n")
    .collect();
    if !lookalikes.is_empty() {
        let mut g = c.benchmark_group("guardrail_pii_lookalikes");
        g.throughput(Throughput::Bytes(lookalikes.len() as u64));
        g.bench_function("pii_scan", |b| b.iter(|| scan_pii(&lookalikes).len()));
        g.finish();
    }
    let deny = DenyList::new(["project falcon", "internal only", "do not distribute"]).unwrap();
    // As a guardrail runs them: the lowercased copy is made once and shared.
    let all = |t: &str| {
        let lowered = ascii_lowercase(t);
        scan_pii(t).len()
            + scan_secrets(t).len()
            + deny.find_lowered(&lowered).len()
            + usize::from(injection_score_lowered(&lowered).0 > 2.0)
    };
    let all_every = |t: &str| {
        let lowered = ascii_lowercase(t);
        every.scan(t).len()
            + scan_secrets(t).len()
            + deny.find_lowered(&lowered).len()
            + usize::from(injection_score_lowered(&lowered).0 > 2.0)
    };
    let mut g = c.benchmark_group("guardrail_all_detectors");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("prose_1mb", |b| b.iter(|| all(&big)));
    g.bench_function("prose_1mb_with_names_and_addresses", |b| {
        b.iter(|| all_every(&big));
    });
    g.bench_function("secrets_only_prose_1mb", |b| {
        b.iter(|| scan_secrets(&big).len());
    });
    g.bench_function("deny_only_prose_1mb", |b| b.iter(|| deny.find(&big).len()));
    g.bench_function("injection_only_prose_1mb", |b| {
        b.iter(|| injection_score(&big).0);
    });
    g.finish();
    // Real prompts: the benign texts of the labelled jailbreak set (chat questions, XSTest),
    // when ../shared is there.
    if let Ok(data) = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../shared/data/jailbreak/combined_labeled.jsonl"
    )) {
        let mut benign = String::new();
        for line in data.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap_or_default();
            if v["label"].as_u64() == Some(0) {
                benign.push_str(v["text"].as_str().unwrap_or_default());
                benign.push('\n');
            }
        }
        let mut g2 = c.benchmark_group("guardrail_all_detectors_benign_prompts");
        g2.throughput(Throughput::Bytes(benign.len() as u64));
        g2.bench_function("all", |b| b.iter(|| all(&benign)));
        g2.finish();
    }
    let mut prompt = PROSE.repeat(2048 / PROSE.len() + 1);
    prompt.truncate(1900);
    prompt.push_str(" Reach me at jane.doe@example.com or +44 7700 900123.");
    c.bench_function("guardrail/pii_scan_2kb_prompt", |b| {
        b.iter(|| scan_pii(&prompt).len());
    });
    c.bench_function("guardrail/all_detectors_2kb_prompt", |b| {
        b.iter(|| all(&prompt));
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
