//! # infergate-redis
//!
//! One Redis connection type for infergate's blocks — a single server or a Redis Cluster —
//! so that the rate limiter, the response cache and the budgets speak to either alike.
//!
//! ```
//! use infergate_redis::{Redis, RedisConfig};
//! use std::time::Duration;
//!
//! let one = RedisConfig::new("redis://:hunter2@127.0.0.1:6379/0");
//! let cluster = RedisConfig::cluster(["redis://10.0.0.1:7000", "redis://10.0.0.2:7000"])
//!     .timeout(Duration::from_millis(100));
//! // Passwords never reach logs.
//! assert!(!format!("{one:?}").contains("hunter2"));
//! // Connecting is lazy: nothing is contacted until the first command.
//! let redis = Redis::new(cluster).unwrap();
//! assert!(redis.config().is_cluster());
//! ```
//!
//! - **One server**: redis-rs's `ConnectionManager`, which reconnects by itself.
//! - **A cluster**: redis-rs's async cluster client: it follows `MOVED` and `ASK` redirects and
//!   refreshes its slot map when a master fails over. A command whose keys span slots fails
//!   with `CROSSSLOT`: callers put one script's keys under one hash tag (`{…}`), and treat any
//!   error as a failure of the store — never as a reason to count locally.
//! - **Bounded**: connecting and every command are bounded by the configured timeout; while
//!   Redis is unreachable a new connection is tried at most every `reconnect_every`, so a dead
//!   Redis costs a request a fast error, not a connect timeout each.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClient;
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, RedisFuture, Value};

/// Where Redis is and how long to wait for it. Its `Debug` hides passwords.
///
/// With the `serde` feature it deserializes from `url` (one server) or `cluster` (seed
/// nodes), and optionally `timeout_ms` and `reconnect_ms`; unknown fields are errors.
#[derive(Clone, PartialEq, Eq)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Deserialize),
    serde(try_from = "raw::RedisConfig")
)]
pub struct RedisConfig {
    nodes: Vec<String>,
    cluster: bool,
    timeout: Duration,
    reconnect_every: Duration,
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let nodes: Vec<String> = self.nodes.iter().map(|u| hide_password(u)).collect();
        f.debug_struct("RedisConfig")
            .field("nodes", &nodes)
            .field("cluster", &self.cluster)
            .field("timeout", &self.timeout)
            .field("reconnect_every", &self.reconnect_every)
            .finish()
    }
}

#[cfg(feature = "serde")]
mod raw {
    use std::time::Duration;

    /// The written shape.
    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    pub(super) struct RedisConfig {
        #[serde(default)]
        url: Option<String>,
        #[serde(default)]
        cluster: Option<Vec<String>>,
        #[serde(default)]
        timeout_ms: Option<u64>,
        #[serde(default)]
        reconnect_ms: Option<u64>,
    }

    impl TryFrom<RedisConfig> for super::RedisConfig {
        type Error = String;

        fn try_from(r: RedisConfig) -> Result<Self, String> {
            let mut c = match (r.url, r.cluster) {
                (Some(u), None) => Self::new(u),
                (None, Some(nodes)) if !nodes.is_empty() => Self::cluster(nodes),
                _ => {
                    return Err(
                        "give either `url` (one server) or `cluster` (its seed nodes)".into(),
                    );
                }
            };
            if let Some(ms) = r.timeout_ms {
                c.timeout = Duration::from_millis(ms);
            }
            if let Some(ms) = r.reconnect_ms {
                c.reconnect_every = Duration::from_millis(ms);
            }
            Ok(c)
        }
    }
}

impl RedisConfig {
    /// One server (`redis://[:password@]host:port[/db]`); 250 ms timeout, reconnect every 1 s.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            nodes: vec![url.into()],
            cluster: false,
            timeout: Duration::from_millis(250),
            reconnect_every: Duration::from_secs(1),
        }
    }

    /// A Redis Cluster, from some of its nodes.
    pub fn cluster<I, S>(nodes: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Self {
            nodes: nodes.into_iter().map(Into::into).collect(),
            cluster: true,
            ..Self::new("")
        }
    }

    /// Bound on connecting and on each command.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// How often a missing connection is retried.
    #[must_use]
    pub fn reconnect_every(mut self, every: Duration) -> Self {
        self.reconnect_every = every;
        self
    }

    /// The bound on connecting and on each command.
    pub fn timeout_value(&self) -> Duration {
        self.timeout
    }

    /// Whether the nodes are a cluster.
    pub fn is_cluster(&self) -> bool {
        self.cluster
    }

    /// The nodes (URLs, passwords included: do not log them).
    pub fn nodes(&self) -> &[String] {
        &self.nodes
    }
}

/// `redis://user:password@host` → `redis://***@host`.
pub fn hide_password(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => match rest.split('/').next().and_then(|a| a.rfind('@')) {
            Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Why Redis could not be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration is not usable (a malformed URL, no node).
    #[error("invalid Redis configuration: {0}")]
    Config(String),
    /// Redis is unreachable, slow or answered with an error (`CROSSSLOT` included).
    #[error("Redis: {0}")]
    Unavailable(String),
}

/// A connection to one server or to a cluster; cheap to clone, usable wherever redis-rs takes
/// an async connection (commands, pipelines, scripts).
#[derive(Clone)]
pub enum Connection {
    /// One server.
    Single(ConnectionManager),
    /// A Redis Cluster.
    Cluster(ClusterConnection),
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Connection::Single(_) => "Connection::Single",
            Connection::Cluster(_) => "Connection::Cluster",
        })
    }
}

impl ConnectionLike for Connection {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Connection::Single(c) => c.req_packed_command(cmd),
            Connection::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Connection::Single(c) => c.req_packed_commands(pipeline, offset, count),
            Connection::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Connection::Single(c) => c.get_db(),
            Connection::Cluster(c) => c.get_db(),
        }
    }
}

/// A lazily connected Redis (one server or a cluster).
pub struct Redis {
    config: RedisConfig,
    conn: tokio::sync::Mutex<Option<Connection>>,
    last_attempt: Mutex<Option<Instant>>,
}

impl std::fmt::Debug for Redis {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Redis")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A Redis for `config`; nothing is contacted until [`Redis::connection`].
    pub fn new(config: RedisConfig) -> Result<Self, Error> {
        if config.nodes.is_empty() || config.nodes.iter().any(String::is_empty) {
            return Err(Error::Config("no Redis node given".into()));
        }
        for n in &config.nodes {
            redis::Client::open(n.as_str())
                .map_err(|e| Error::Config(format!("{}: {e}", hide_password(n))))?;
        }
        Ok(Self {
            config,
            conn: tokio::sync::Mutex::new(None),
            last_attempt: Mutex::new(None),
        })
    }

    /// The configuration.
    pub fn config(&self) -> &RedisConfig {
        &self.config
    }

    /// The connection, made on first use (and retried at most every `reconnect_every` while
    /// Redis is unreachable).
    pub async fn connection(&self) -> Result<Connection, Error> {
        let mut guard = self.conn.lock().await;
        if let Some(c) = guard.as_ref() {
            return Ok(c.clone());
        }
        {
            let mut last = self
                .last_attempt
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if last.is_some_and(|t| t.elapsed() < self.config.reconnect_every) {
                return Err(Error::Unavailable("unreachable (retrying later)".into()));
            }
            *last = Some(Instant::now());
        }
        let t = self.config.timeout;
        let connect = async {
            if self.config.cluster {
                let client = ClusterClient::builder(self.config.nodes.clone())
                    .connection_timeout(t)
                    .response_timeout(t)
                    .retries(2)
                    .build()
                    .map_err(|e| Error::Config(e.to_string()))?;
                client
                    .get_async_connection()
                    .await
                    .map(Connection::Cluster)
                    .map_err(|e| Error::Unavailable(e.to_string()))
            } else {
                let client = redis::Client::open(self.config.nodes[0].as_str())
                    .map_err(|e| Error::Config(e.to_string()))?;
                let cfg = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(t))
                    .set_response_timeout(Some(t))
                    .set_number_of_retries(1)
                    .set_max_delay(Duration::from_millis(500));
                ConnectionManager::new_with_config(client, cfg)
                    .await
                    .map(Connection::Single)
                    .map_err(|e| Error::Unavailable(e.to_string()))
            }
        };
        let c = tokio::time::timeout(t * 4, connect)
            .await
            .map_err(|_| Error::Unavailable("connection timed out".into()))??;
        *guard = Some(c.clone());
        Ok(c)
    }

    /// Runs `script` (keys and arguments already added) within the timeout.
    pub async fn invoke<T: redis::FromRedisValue>(
        &self,
        script: &redis::ScriptInvocation<'_>,
    ) -> Result<T, Error> {
        let mut c = self.connection().await?;
        match tokio::time::timeout(self.config.timeout * 2, script.invoke_async(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::Unavailable(e.to_string())),
            Err(_) => Err(Error::Unavailable("no answer in time".into())),
        }
    }

    /// Runs `cmd` within the timeout.
    pub async fn query<T: redis::FromRedisValue>(&self, cmd: &Cmd) -> Result<T, Error> {
        let mut c = self.connection().await?;
        match tokio::time::timeout(self.config.timeout * 2, cmd.query_async(&mut c)).await {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => Err(Error::Unavailable(e.to_string())),
            Err(_) => Err(Error::Unavailable("no answer in time".into())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_hidden_and_configs_read() {
        assert_eq!(hide_password("redis://u:p@h:1/0"), "redis://***@h:1/0");
        assert_eq!(hide_password("redis://h:1"), "redis://h:1");
        assert!(Redis::new(RedisConfig::cluster(Vec::<String>::new())).is_err());
        assert!(Redis::new(RedisConfig::new("not a url")).is_err());
        #[cfg(feature = "serde")]
        {
            let c: RedisConfig = serde_json::from_str(
                r#"{"cluster":["redis://a:1","redis://b:2"],"timeout_ms":50}"#,
            )
            .expect("reads");
            assert!(c.is_cluster() && c.timeout_value() == Duration::from_millis(50));
            assert!(
                serde_json::from_str::<RedisConfig>(
                    r#"{"url":"redis://a","cluster":["redis://b"]}"#
                )
                .is_err()
            );
            assert!(serde_json::from_str::<RedisConfig>(r#"{"host":"a"}"#).is_err());
        }
    }
}
