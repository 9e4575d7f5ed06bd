use std::process::Stdio;

use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// A `redis-server` on a loopback port, owned by a test: stopped on drop.
#[derive(Debug)]
pub struct RedisServer {
    port: u16,
    child: Option<Child>,
}

impl RedisServer {
    /// Whether `redis-server` is installed. Tests that need it skip with a message when it is
    /// not, except under CI (`CI` set), where they fail: CI installs it.
    pub fn available() -> bool {
        let ok = std::process::Command::new("redis-server")
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok || std::env::var_os("CI").is_none(),
            "redis-server is required under CI (.ci/run installs it)"
        );
        if !ok {
            eprintln!("skipping: redis-server is not installed (apt-get install redis-server)");
        }
        ok
    }

    /// Starts a server on a free port and waits until it accepts connections.
    pub async fn start() -> Self {
        let port = free_port();
        let mut s = Self { port, child: None };
        s.restart().await;
        s
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Kills the server (as a crash would) and waits for it to be gone.
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill().await;
        }
    }

    /// Starts it again on the same port (empty: no persistence).
    pub async fn restart(&mut self) {
        self.kill().await;
        let child = spawn_ready(Command::new("redis-server").args([
            "--port",
            &self.port.to_string(),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
        ]))
        .await;
        self.child = Some(child);
    }
}

/// Spawns a `redis-server` command and waits until it accepts connections.
async fn spawn_ready(cmd: &mut Command) -> Child {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("redis-server starts");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if line.contains("Ready to accept connections") {
            break;
        }
    }
    // Keep draining its output so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    child
}

fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("addr").port()
}

/// A Redis Cluster of `redis-server --cluster-enabled yes` processes on loopback ports,
/// created with `redis-cli --cluster create`: three masters, each with one replica, and a
/// one-second node timeout so that a killed master fails over quickly. Stopped on drop.
#[derive(Debug)]
pub struct RedisCluster {
    nodes: Vec<(u16, Option<Child>)>,
    _dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop (cluster nodes write their `nodes.conf` there).
    #[derive(Debug)]
    pub(super) struct Dir(pub(super) std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl RedisCluster {
    /// Starts six nodes and creates the cluster; returns once every node reports
    /// `cluster_state:ok`. Panics (the test cannot run) if `redis-cli` fails.
    pub async fn start() -> Self {
        let dir = std::env::temp_dir().join(format!(
            "infergate-cluster-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a temp dir");
        let mut nodes = Vec::new();
        for _ in 0..6 {
            let port = free_port();
            let child = start_cluster_node(&dir, port).await;
            nodes.push((port, Some(child)));
        }
        let mut args = vec!["--cluster".to_owned(), "create".to_owned()];
        args.extend(nodes.iter().map(|(p, _)| format!("127.0.0.1:{p}")));
        args.extend(["--cluster-replicas", "1", "--cluster-yes"].map(str::to_owned));
        let out = Command::new("redis-cli")
            .args(&args)
            .output()
            .await
            .expect("redis-cli runs");
        assert!(
            out.status.success(),
            "redis-cli --cluster create failed: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        let c = Self {
            nodes,
            _dir: tempdir::Dir(dir),
        };
        c.wait_until_ok().await;
        c
    }

    /// `redis://127.0.0.1:PORT` of every node (seed nodes for a cluster client).
    pub fn urls(&self) -> Vec<String> {
        self.nodes
            .iter()
            .map(|(p, _)| format!("redis://127.0.0.1:{p}"))
            .collect()
    }

    /// The port of the master that serves `key`'s slot.
    pub async fn master_of(&self, key: &str) -> u16 {
        let port = self.live_port();
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "-c", "cluster", "keyslot", key])
            .output()
            .await
            .expect("redis-cli runs");
        let slot: u16 = String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .expect("a slot");
        // `cluster nodes`: one line per node, `id host:port@bus flags ... 0-5460`.
        let out = Command::new("redis-cli")
            .args(["-p", &port.to_string(), "cluster", "nodes"])
            .output()
            .await
            .expect("redis-cli runs");
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 9 || !f[2].contains("master") || f[2].contains("fail") {
                continue;
            }
            for range in &f[8..] {
                let (a, b) = range.split_once('-').unwrap_or((range, range));
                if let (Ok(a), Ok(b)) = (a.parse::<u16>(), b.parse::<u16>())
                    && (a..=b).contains(&slot)
                {
                    let addr = f[1].split('@').next().unwrap_or("");
                    return addr
                        .rsplit(':')
                        .next()
                        .and_then(|p| p.parse().ok())
                        .expect("a port");
                }
            }
        }
        panic!("no master serves slot {slot}");
    }

    /// Kills the node on `port` (as a crash would).
    pub async fn kill(&mut self, port: u16) {
        for (p, child) in &mut self.nodes {
            if *p == port
                && let Some(mut c) = child.take()
            {
                let _ = c.kill().await;
            }
        }
    }

    fn live_port(&self) -> u16 {
        self.nodes
            .iter()
            .find(|(_, c)| c.is_some())
            .map(|(p, _)| *p)
            .expect("a live node")
    }

    /// Waits (bounded: 180 s, a guard against hanging, not a timing check — on a loaded 2-core
    /// CI machine an election after a killed master took over 60 s) until every live
    /// node reports `cluster_state:ok` and every replica's link to its master is up.
    pub async fn wait_until_ok(&self) {
        let wait = async {
            loop {
                let mut all = true;
                for (p, c) in &self.nodes {
                    if c.is_none() {
                        continue;
                    }
                    let out = Command::new("redis-cli")
                        .args(["-p", &p.to_string(), "cluster", "info"])
                        .output()
                        .await
                        .expect("redis-cli runs");
                    if !String::from_utf8_lossy(&out.stdout).contains("cluster_state:ok") {
                        all = false;
                    }
                    // A replica must have synced with its master, or a failover loses data.
                    let out = Command::new("redis-cli")
                        .args(["-p", &p.to_string(), "info", "replication"])
                        .output()
                        .await
                        .expect("redis-cli runs");
                    let info = String::from_utf8_lossy(&out.stdout);
                    if info.contains("role:slave") && !info.contains("master_link_status:up") {
                        all = false;
                    }
                }
                if all {
                    return;
                }
                // Each round spawns a redis-cli per node: no sleep needed between rounds.
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(180), wait)
            .await
            .expect("the cluster reaches cluster_state:ok");
    }
}

async fn start_cluster_node(dir: &std::path::Path, port: u16) -> Child {
    let port = port.to_string();
    let conf = format!("nodes-{port}.conf");
    spawn_ready(Command::new("redis-server").current_dir(dir).args([
        "--port",
        &port,
        "--bind",
        "127.0.0.1",
        "--cluster-enabled",
        "yes",
        "--cluster-config-file",
        &conf,
        "--cluster-node-timeout",
        "1000",
        // A replica may take over whenever its master dies (it would otherwise refuse when
        // its last exchange with the master is older than 10 node timeouts).
        "--cluster-replica-validity-factor",
        "0",
        "--save",
        "",
        "--appendonly",
        "no",
    ]))
    .await
}
