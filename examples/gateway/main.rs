//! The infergate example gateway.
//!
//! ```text
//! cargo run --release --example gateway                 # embedded mock provider
//! cargo run --release --example gateway -- --config examples/gateway/infergate.toml
//! cargo run --release --example gateway -- --listen 0.0.0.0:8080
//! ```
//!
//! With no config (and no `INFERGATE_CONFIG`), it starts the embedded mock provider and prints
//! its address and a curl command to paste. That quickstart is **open** (no `[identity]`: no
//! client is authenticated, and it says so when it starts); the sample config turns identity
//! on with the demo key `igk_demo_0000000000000000000000000000`.
//!
//! `INFERGATE_RUNTIME=per-core` serves with one current-thread tokio runtime per core, each
//! accepting on its own `SO_REUSEPORT` listener (about 10 % less CPU per request than the
//! work-stealing runtime in `benches/load.sh`; `[server] max_connections` then applies per core).

use std::net::SocketAddr;
use std::path::PathBuf;

use infergate_examples::config::Config;
use infergate_examples::gateway;

const USAGE: &str = "usage: gateway [--listen ADDR] [--config FILE]

  --listen ADDR   address to listen on (default 127.0.0.1:8080, or `listen` in the config)
  --config FILE   TOML config (default: $INFERGATE_CONFIG; none: the embedded mock provider)";

fn parse_args() -> Result<(Option<String>, Option<PathBuf>), String> {
    let mut listen = None;
    let mut config = std::env::var_os("INFERGATE_CONFIG").map(PathBuf::from);
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--listen" => listen = Some(args.next().ok_or("--listen needs an address")?),
            "--config" => config = Some(args.next().ok_or("--config needs a file")?.into()),
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument '{other}'\n\n{USAGE}")),
        }
    }
    Ok((listen, config))
}

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    // INFERGATE_RUNTIME=per-core: one current-thread runtime per core, each accepting on its own
    // SO_REUSEPORT listener (no work stealing, no cross-thread wake-ups); default: tokio's
    // multi-threaded runtime.
    let per_core = std::env::var("INFERGATE_RUNTIME").is_ok_and(|v| v == "per-core");
    let rt = if per_core {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
    };
    let result = match rt {
        Ok(rt) => rt.block_on(run(per_core)),
        Err(e) => Err(format!("cannot start the runtime: {e}")),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

/// A listener on `addr` that other threads may share (SO_REUSEPORT: the kernel spreads
/// connections between them).
fn reuseport_listener(addr: SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if addr.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket.bind(addr)?;
    socket.listen(1024)
}

async fn run(per_core: bool) -> Result<(), String> {
    let (listen, config_path) = parse_args()?;
    let config = match &config_path {
        Some(p) => Config::load(p).map_err(|e| e.to_string())?,
        None => gateway::default_config(),
    };
    let listen = listen
        .or_else(|| config.listen.clone())
        .unwrap_or_else(|| "127.0.0.1:8080".to_owned());
    let addr: SocketAddr = listen
        .parse()
        .map_err(|e| format!("invalid listen address '{listen}': {e}"))?;
    let gw = gateway::build(&config).await.map_err(|e| e.to_string())?;
    let listener = if per_core {
        reuseport_listener(addr)
    } else {
        tokio::net::TcpListener::bind(addr).await
    }
    .map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    if let Some(mock) = &gw.mock {
        println!("embedded mock provider at {}", mock.url());
    }
    for (name, mock) in &gw.named_mocks {
        println!("embedded mock provider '{name}' at {}", mock.url());
    }
    match &config_path {
        Some(p) => println!("config: {}", p.display()),
        None => println!(
            "no config given: every endpoint is served by the embedded mock provider, with an empty pipeline\n\
             (the building blocks: --config examples/gateway/infergate.toml)"
        ),
    }
    if config.identity.is_none() {
        println!(
            "OPEN: no [identity] section, so no client is authenticated; anyone who can reach this address \
             may call it, and tenants and users are whatever clients claim (not for production)"
        );
    }
    println!("infergate gateway listening on http://{local}");
    if let (Some(t), Some(section)) = (&gw.telemetry, &config.telemetry)
        && section.admin_listen != "off"
    {
        let admin: SocketAddr = section.admin_listen.parse().map_err(|e| {
            format!(
                "invalid telemetry.admin_listen '{}': {e}",
                section.admin_listen
            )
        })?;
        let admin = tokio::net::TcpListener::bind(admin)
            .await
            .map_err(|e| format!("cannot listen on {admin} (telemetry.admin_listen): {e}"))?;
        let at = admin.local_addr().map_err(|e| e.to_string())?;
        tokio::spawn(gateway::serve_admin(admin, t.clone(), async {
            let _ = tokio::signal::ctrl_c().await;
        }));
        println!("metrics (Prometheus): http://{at}/metrics");
    }
    // With identity on, the sample config's documented demo key (docs/identity.md).
    let key = if config.identity.is_some() {
        " -H 'authorization: Bearer igk_demo_0000000000000000000000000000'"
    } else {
        ""
    };
    println!(
        "try:\n  curl -s http://{local}/v1/chat/completions -H 'content-type: application/json'{key} \\\n    -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'"
    );
    if per_core {
        let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
        for _ in 1..cores {
            let service = gw.service.clone();
            let server = config.server.clone();
            std::thread::spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build();
                if let Ok(rt) = rt {
                    rt.block_on(async move {
                        let listener = match reuseport_listener(local) {
                            Ok(l) => l,
                            Err(e) => {
                                eprintln!("cannot listen on {local}: {e}");
                                return;
                            }
                        };
                        let _ = gateway::serve_with(listener, service, &server, async {
                            let _ = tokio::signal::ctrl_c().await;
                        })
                        .await;
                    });
                }
            });
        }
    }
    let served = gateway::serve_with(listener, gw.service, &config.server, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| e.to_string());
    // What is still queued: spans and metrics exported, the access log written.
    if let Some(t) = &gw.telemetry {
        t.flush().await;
    }
    served
}
