//! The building blocks inside pingora (`infergate-pingora`): the same pipeline in pingora's
//! phases, failover on pingora's retries, in front of two embedded mock providers (one
//! failing). Run: `cargo run -p infergate-examples --features pingora --example pingora`
//! (builds pingora; needs cmake), then POST to `http://127.0.0.1:8093/v1/chat/completions`.
use infergate_examples::compositions::{Mocks, spawn_pingora, wait_listening};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mocks = Mocks::start().await?;
    let addr = "127.0.0.1:8093".parse()?;
    spawn_pingora(&mocks, addr);
    if !wait_listening(addr).await {
        return Err("pingora did not start".into());
    }
    println!("pingora composition listening on http://{addr}");
    tokio::signal::ctrl_c().await?;
    Ok(())
}
