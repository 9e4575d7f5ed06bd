//! Guardrail scanning: throughput of the built-in PII detectors on ordinary prose, and the
//! per-request cost on a 2 KB prompt.
#![allow(missing_docs, clippy::unwrap_used)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use infergate_guardrail::detect::{DenyList, injection_score, scan_pii, scan_secrets};

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
    g.finish();
    let deny = DenyList::new(["project falcon", "internal only", "do not distribute"]).unwrap();
    let all = |t: &str| {
        scan_pii(t).len()
            + scan_secrets(t).len()
            + deny.find(t).len()
            + usize::from(injection_score(t).0 > 2.0)
    };
    let mut g = c.benchmark_group("guardrail_all_detectors");
    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("prose_1mb", |b| b.iter(|| all(&big)));
    g.bench_function("secrets_only_prose_1mb", |b| {
        b.iter(|| scan_secrets(&big).len());
    });
    g.bench_function("deny_only_prose_1mb", |b| b.iter(|| deny.find(&big).len()));
    g.bench_function("injection_only_prose_1mb", |b| {
        b.iter(|| injection_score(&big).0);
    });
    g.finish();
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
