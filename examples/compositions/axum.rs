//! The building blocks on one axum route group (`/v1/...`; `/healthz` outside it), over
//! failover between two embedded mock providers (one failing). Run:
//! `cargo run -p infergate-examples --example axum`, then POST to
//! `http://127.0.0.1:8092/v1/chat/completions`.
use infergate_examples::compositions::{Mocks, axum_app, tower_stack};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mocks = Mocks::start().await?;
    let app = axum_app(tower_stack(&mocks)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8092").await?;
    println!(
        "axum composition listening on http://{}",
        listener.local_addr()?
    );
    axum::serve(listener, app).await?;
    Ok(())
}
