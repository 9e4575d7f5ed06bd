//! The cost of a budget on the hot path: reserve and reconcile in memory (goal ≤ 3 µs).
#![allow(missing_docs)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::SystemTime;

use criterion::{Criterion, criterion_group, criterion_main};
use infergate_budget::store::{BudgetStore, Hold, MemoryStore};
use infergate_budget::{PriceTable, Window};
use infergate_core::usage::Usage;
use jiff::tz::TimeZone;

fn budget(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    let store = Arc::new(MemoryStore::new());
    let price = *PriceTable::builtin().lookup("gpt-4o-mini").expect("priced");
    let mut g = c.benchmark_group("budget");
    g.bench_function("reserve_and_reconcile_in_memory_two_budgets", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let now = SystemTime::now();
            let day = Window::Day.span(now, &TimeZone::UTC);
            let month = Window::Month.span(now, &TimeZone::UTC);
            let worst = price.worst_case(1_000, 500).nanos();
            let holds = [
                Hold {
                    key: format!("ig:budget:{{p{}}}:daily:d", i % 1000),
                    limit: u64::MAX,
                    amount: worst,
                    span: day,
                },
                Hold {
                    key: "ig:budget:{t}:monthly:m".to_owned(),
                    limit: u64::MAX,
                    amount: worst,
                    span: month,
                },
            ];
            rt.block_on(async {
                let v = store.reserve(&holds).await.expect("reserves");
                let actual = price.cost(&Usage::new(1_000, 120)).nanos();
                let delta = i64::try_from(actual).unwrap_or(0) - i64::try_from(worst).unwrap_or(0);
                let adj: Vec<(Hold, i64)> = holds.iter().map(|h| (h.clone(), delta)).collect();
                store.adjust(&adj).await.expect("adjusts");
                black_box(v)
            })
        });
    });
    // The same over a real redis-server on loopback, when one is installed.
    if std::process::Command::new("redis-server")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let server = rt.block_on(infergate_testkit::RedisServer::start());
        let store = infergate_budget::store::RedisStore::new(
            infergate_budget::store::RedisConfig::new(server.url()),
        )
        .expect("a store");
        g.bench_function("reserve_and_reconcile_redis_server_two_budgets", |b| {
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                let now = SystemTime::now();
                let worst = price.worst_case(1_000, 500).nanos();
                let holds = [
                    Hold {
                        key: format!("ig:budget:{{p{}}}:daily:d", i % 1000),
                        limit: u64::MAX / 4,
                        amount: worst,
                        span: Window::Day.span(now, &TimeZone::UTC),
                    },
                    Hold {
                        key: "ig:budget:{t}:monthly:m".to_owned(),
                        limit: u64::MAX / 4,
                        amount: worst,
                        span: Window::Month.span(now, &TimeZone::UTC),
                    },
                ];
                rt.block_on(async {
                    let v = store.reserve(&holds).await.expect("reserves");
                    let adj: Vec<(Hold, i64)> = holds.iter().map(|h| (h.clone(), -1)).collect();
                    store.adjust(&adj).await.expect("adjusts");
                    black_box(v)
                })
            });
        });
        drop(server);
    }
    g.finish();
}

criterion_group!(benches, budget);
criterion_main!(benches);
