//! The key tool: create, list and revoke API keys in a key file or in Redis. A new key is
//! printed once; only its hash is stored.
//!
//! ```sh
//! cargo run --example keys -- create --tenant acme --model 'gpt-4o*' --expires-days 90
//! cargo run --example keys -- list
//! cargo run --example keys -- revoke k3f9a2b7c1d0
//! cargo run --example keys -- --redis redis://127.0.0.1:6379 list
//! ```
//!
//! Store: `--file PATH` (default `keys.jsonl`) or `--redis URL` (`--prefix`, default `igk`).
//! With `INFERGATE_KEY_PEPPER` set, hashes are HMAC-SHA-256 under it (the gateway must be
//! given the same pepper).

#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use infergate_identity::{FileKeyStore, KeyAdmin, KeyHasher, PrincipalSpec};

const USAGE: &str = "usage: keys [--file PATH | --redis URL [--prefix P]] <command>
commands:
  create --tenant T [--team T] [--user U] [--model GLOB]... [--endpoint E]...
         [--label K=V]... [--limit K=V]... [--expires-days N]
  list
  revoke KEY_ID";

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    match run(std::env::args().skip(1).collect()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("keys: {e}\n\n{USAGE}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Vec<String>) -> Result<(), String> {
    let mut it = args.into_iter().peekable();
    let mut file = "keys.jsonl".to_owned();
    let mut redis: Option<String> = None;
    let mut prefix = "igk".to_owned();
    while let Some(a) = it.peek().cloned() {
        match a.as_str() {
            "--file" => {
                it.next();
                file = it.next().ok_or("--file needs a path")?;
            }
            "--redis" => {
                it.next();
                redis = Some(it.next().ok_or("--redis needs a URL")?);
            }
            "--prefix" => {
                it.next();
                prefix = it.next().ok_or("--prefix needs a value")?;
            }
            _ => break,
        }
    }
    let hasher = std::env::var("INFERGATE_KEY_PEPPER")
        .ok()
        .filter(|p| !p.is_empty())
        .map_or_else(KeyHasher::sha256, |p| KeyHasher::hmac(p.as_bytes()));
    let admin: Box<dyn KeyAdmin> = match redis {
        Some(url) => redis_store(url, prefix, hasher)?,
        None => Box::new(FileKeyStore::open(&file, hasher).map_err(|e| e.to_string())?),
    };
    let command = it.next().ok_or("no command")?;
    let rest: Vec<String> = it.collect();
    match command.as_str() {
        "create" => create(&*admin, &rest).await,
        "list" => list(&*admin).await,
        "revoke" => {
            let id = rest.first().ok_or("revoke needs a key id")?;
            admin.revoke(id).await.map_err(|e| e.to_string())?;
            println!("revoked {id}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}

#[cfg(feature = "redis")]
fn redis_store(
    url: String,
    prefix: String,
    hasher: KeyHasher,
) -> Result<Box<dyn KeyAdmin>, String> {
    let cfg = infergate_identity::RedisStoreConfig {
        url,
        prefix,
        ..Default::default()
    };
    Ok(Box::new(
        infergate_identity::RedisKeyStore::new(cfg, hasher).map_err(|e| e.to_string())?,
    ))
}

#[cfg(not(feature = "redis"))]
fn redis_store(_: String, _: String, _: KeyHasher) -> Result<Box<dyn KeyAdmin>, String> {
    Err("built without the `redis` feature".into())
}

fn pair(v: &str) -> Result<(String, String), String> {
    v.split_once('=')
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .ok_or_else(|| format!("{v:?} is not K=V"))
}

async fn create(admin: &dyn KeyAdmin, args: &[String]) -> Result<(), String> {
    let mut spec = PrincipalSpec::default();
    let mut expires = None;
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().ok_or_else(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--tenant" => spec.tenant = Some(value.clone()),
            "--team" => spec.team = Some(value.clone()),
            "--user" => spec.user = Some(value.clone()),
            "--model" => spec.allowed_models.push(value.clone()),
            "--endpoint" => spec.allowed_endpoints.push(value.clone()),
            "--label" => {
                let (k, v) = pair(value)?;
                spec.labels.insert(k, v);
            }
            "--limit" => {
                let (k, v) = pair(value)?;
                spec.limits.insert(k, v);
            }
            "--expires-days" => {
                let days: u64 = value.parse().map_err(|_| "--expires-days: a number")?;
                expires = Some(SystemTime::now() + Duration::from_secs(days * 86_400));
            }
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    if spec.tenant.is_none() {
        return Err("create needs --tenant".into());
    }
    let (key, record) = admin
        .create(spec, expires)
        .await
        .map_err(|e| e.to_string())?;
    println!("{}", key.expose());
    eprintln!(
        "key id {} created: the key above is shown once; only its hash is stored",
        record.key_id
    );
    Ok(())
}

async fn list(admin: &dyn KeyAdmin) -> Result<(), String> {
    let records = admin.list().await.map_err(|e| e.to_string())?;
    println!(
        "{:<16} {:<16} {:<12} {:<12} {:<8} {:<12} models",
        "key id", "tenant", "team", "user", "revoked", "expires"
    );
    for r in records {
        let p = &r.principal;
        println!(
            "{:<16} {:<16} {:<12} {:<12} {:<8} {:<12} {}",
            r.key_id,
            p.tenant.as_deref().unwrap_or("-"),
            p.team.as_deref().unwrap_or("-"),
            p.user.as_deref().unwrap_or("-"),
            r.revoked,
            r.expires_at
                .map_or_else(|| "-".to_owned(), |t| t.to_string()),
            if p.allowed_models.is_empty() {
                "*".to_owned()
            } else {
                p.allowed_models.join(",")
            },
        );
    }
    Ok(())
}
