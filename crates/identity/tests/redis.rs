//! The Redis key store against a real redis-server: revocation seen by three replicas within
//! the documented bound, and a flood of invalid keys costing Redis a bounded number of lookups.

#![cfg(feature = "redis")]
#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{call, code, gateway};
use infergate_identity::{
    Identity, KeyAdmin, KeyHasher, KeyStore, Lookup, ManualClock, PrincipalSpec, RedisKeyStore,
    RedisStoreConfig,
};
use infergate_mock::MockProvider;
use infergate_testkit::RedisServer;

fn config(url: String) -> RedisStoreConfig {
    RedisStoreConfig {
        url,
        prefix: "test-igk".into(),
        ..RedisStoreConfig::default()
    }
}

/// `INFO commandstats` calls of `cmd` (0 if never called).
async fn calls(url: &str, cmd: &str) -> u64 {
    let client = redis::Client::open(url).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{cmd}:calls=")))
        .and_then(|rest| rest.split(',').next())
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_is_seen_by_three_replicas_within_the_cache_ttl() {
    if !RedisServer::available() {
        return;
    }
    let redis = RedisServer::start().await;
    let mock = MockProvider::start().await.unwrap();
    let hasher = KeyHasher::hmac(b"deployment-pepper");
    let clock = ManualClock::new();
    let cfg = config(redis.url());
    let ttl = Duration::from_millis(cfg.cache_ttl_ms);
    // The key tool.
    let admin = RedisKeyStore::new(cfg.clone(), hasher.clone()).unwrap();
    let mut spec = PrincipalSpec::tenant("acme");
    spec.user = Some("alice".into());
    let (key, record) = admin.create(spec, None).await.unwrap();
    let auth = format!("Bearer {}", key.expose());
    let headers: &[(&str, &str)] = &[("authorization", &auth)];

    let mut replicas = Vec::new();
    for _ in 0..3 {
        let store = Arc::new(
            RedisKeyStore::with_clock(cfg.clone(), hasher.clone(), clock.clone()).unwrap(),
        );
        let id = Identity::builder()
            .keys(store.clone())
            .hasher(hasher.clone())
            .build();
        replicas.push((gateway(&mock, id).await, store));
    }
    for (addr, _) in &replicas {
        assert_eq!(
            call(*addr, "/v1/chat/completions", "m", headers)
                .await
                .status,
            200
        );
    }
    admin.revoke(&record.key_id).await.unwrap();
    // Within the bound a replica may still accept the key from its cache (no assertion on
    // that: it is allowed, not required); once the bound has passed, none does.
    clock.advance(ttl);
    for (addr, store) in &replicas {
        let r = call(*addr, "/v1/chat/completions", "m", headers).await;
        assert_eq!(r.status, 401, "{}", r.text());
        assert!(r.text().contains("revoked"));
        assert_eq!(
            store.redis_lookups(),
            2,
            "one lookup to learn the key, one after the TTL"
        );
    }
    let listed = admin.list().await.unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].revoked);
    assert!(listed[0].hash.starts_with("hmac-sha256:"));
    assert!(!format!("{listed:?}").contains(key.expose()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_ten_thousand_invalid_keys_costs_redis_a_bounded_number_of_lookups() {
    if !RedisServer::available() {
        return;
    }
    let redis = RedisServer::start().await;
    let hasher = KeyHasher::sha256();
    let clock = ManualClock::new();
    let cfg = config(redis.url());
    let admin = RedisKeyStore::new(cfg.clone(), hasher.clone()).unwrap();
    let (good, _) = admin
        .create(PrincipalSpec::tenant("acme"), None)
        .await
        .unwrap();
    let store =
        Arc::new(RedisKeyStore::with_clock(cfg.clone(), hasher.clone(), clock.clone()).unwrap());
    let id = Identity::builder()
        .keys(store.clone())
        .hasher(hasher.clone())
        .build();
    let mut ok = http::HeaderMap::new();
    ok.insert(
        "authorization",
        format!("Bearer {}", good.expose()).parse().unwrap(),
    );
    id.authenticate(&ok).await.unwrap();
    let gets_before = calls(&redis.url(), "get").await;
    let lookups_before = store.redis_lookups();

    let mut throttled = 0;
    for i in 0..10_000u32 {
        // Well-formed, distinct, unknown key ids.
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-api-key",
            format!("igk_flood{i}_000000000000000000000000{i:08}")
                .parse()
                .unwrap(),
        );
        let e = id.authenticate(&h).await.unwrap_err();
        if e == infergate_identity::AuthError::Refused(
            infergate_identity::AuthFailure::LookupBudget,
        ) {
            throttled += 1;
        }
        // Malformed ones never reach a store at all.
        let mut h = http::HeaderMap::new();
        h.insert("x-api-key", format!("igk_flood{i}_short").parse().unwrap());
        id.authenticate(&h).await.unwrap_err();
        // The real key keeps working throughout (from the cache).
        if i % 1000 == 0 {
            assert!(id.authenticate(&ok).await.is_ok());
        }
    }
    let burst = u64::from(cfg.miss_burst);
    let lookups = store.redis_lookups() - lookups_before;
    let gets = calls(&redis.url(), "get").await - gets_before;
    assert!(
        lookups <= burst,
        "{lookups} lookups for 10 000 invalid keys (bound {burst})"
    );
    assert_eq!(
        gets, lookups,
        "INFO commandstats agrees with the store's count"
    );
    assert_eq!(throttled, 10_000 - lookups);
    // The same ids again are answered by the negative cache.
    let mut h = http::HeaderMap::new();
    h.insert(
        "x-api-key",
        "igk_flood0_00000000000000000000000000000000"
            .parse()
            .unwrap(),
    );
    let _ = id.authenticate(&h).await;
    assert!(matches!(
        store.lookup("flood0").await.unwrap(),
        Lookup::NotFound
    ));
    assert_eq!(store.redis_lookups() - lookups_before, lookups);
    // One second later the budget allows `misses_per_second` more, not more.
    clock.advance(Duration::from_secs(1));
    for i in 10_000..20_000u32 {
        let mut h = http::HeaderMap::new();
        h.insert(
            "x-api-key",
            format!("igk_flood{i}_000000000000000000000000{i:08}")
                .parse()
                .unwrap(),
        );
        let _ = id.authenticate(&h).await;
    }
    let more = store.redis_lookups() - lookups_before - lookups;
    assert!(more <= u64::from(cfg.misses_per_second), "{more}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_outage_fails_closed() {
    if !RedisServer::available() {
        return;
    }
    let mut redis = RedisServer::start().await;
    let mock = MockProvider::start().await.unwrap();
    let mut cfg = config(redis.url());
    cfg.timeout_ms = 300;
    let store = Arc::new(RedisKeyStore::new(cfg, KeyHasher::sha256()).unwrap());
    let addr = gateway(&mock, Identity::builder().keys(store).build()).await;
    redis.kill().await;
    let r = call(
        addr,
        "/v1/chat/completions",
        "m",
        &[("authorization", "Bearer igk_someone_00000000000000000000")],
    )
    .await;
    assert_eq!(r.status, 502, "{}", r.text());
    assert_eq!(code(&r), "external_service_failed");
    assert!(!r.text().contains("igk_someone"));
    assert!(mock.requests().is_empty());
}
