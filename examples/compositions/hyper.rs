//! The building blocks on plain hyper 1: guardrail → cache → rate limiter over failover between
//! two embedded mock providers (one failing). Run: `cargo run -p infergate-examples --example hyper`
//! then e.g. `curl -s localhost:8091/v1/chat/completions -H 'content-type: application/json'
//! -H 'x-tenant-id: me' -d '{"model":"gpt-4o-mini","messages":[{"role":"user","content":"hi"}]}'`.
use infergate_examples::compositions::{Mocks, serve_hyper, tower_stack};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mocks = Mocks::start().await?;
    let stack = tower_stack(&mocks)?;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8091").await?;
    println!(
        "hyper composition listening on http://{}",
        listener.local_addr()?
    );
    serve_hyper(listener, stack).await;
    Ok(())
}
