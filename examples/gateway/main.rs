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

#[tokio::main]
async fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    if let Err(e) = run().await {
        eprintln!("error: {e}");
        std::process::exit(2);
    }
}

async fn run() -> Result<(), String> {
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
    let listener = tokio::net::TcpListener::bind(addr)
        .await
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
    // With identity on, the sample config's documented demo key (docs/identity.md).
    let key = if config.identity.is_some() {
        " -H 'authorization: Bearer igk_demo_0000000000000000000000000000'"
    } else {
        ""
    };
    println!(
        "try:\n  curl -s http://{local}/v1/chat/completions -H 'content-type: application/json'{key} \\\n    -d '{{\"model\":\"gpt-4o-mini\",\"messages\":[{{\"role\":\"user\",\"content\":\"Hello\"}}]}}'"
    );
    gateway::serve_with(listener, gw.service, &config.server, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await
    .map_err(|e| e.to_string())
}
