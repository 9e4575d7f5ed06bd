//! The mock provider as a standalone server, for the load benchmark:
//! `mock [ADDR]` (default 127.0.0.1:0); prints `mock listening on http://ADDR`.

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into())
        .parse()
        .map_err(std::io::Error::other)?;
    // MOCK_WIRE=real: compressed answers (when accepted) and chunked JSON, like real providers.
    let wire = if std::env::var("MOCK_WIRE").is_ok_and(|v| v == "real") {
        infergate_mock::Wire::real()
    } else {
        infergate_mock::Wire::default()
    };
    let mock = infergate_mock::MockProvider::builder()
        .record(false)
        .wire(wire)
        .addr(addr)
        .start()
        .await?;
    println!("mock listening on {}", mock.url());
    std::future::pending::<()>().await;
    Ok(())
}
