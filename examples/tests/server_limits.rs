//! The example server's own limits (docs/reliability.md, "Server hardening"): the cap on
//! concurrent connections and the HTTP/2 limits it advertises.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::net::SocketAddr;
use std::time::Duration;

use infergate_examples::config::Config;
use infergate_examples::gateway;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

async fn start(server: &str) -> SocketAddr {
    let cfg = Config::parse(&format!(
        "[server]\n{server}\n[backends.mock]\nurl = \"mock\"\n"
    ))
    .unwrap();
    let gw = gateway::build(&cfg).await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let server = cfg.server.clone();
    tokio::spawn(async move {
        let _keep = (gw.mock, gw.named_mocks);
        gateway::serve_with(listener, gw.service, &server, std::future::pending()).await
    });
    addr
}

const MODELS: &[u8] = b"GET /v1/models HTTP/1.1\r\nhost: x\r\n\r\n";

/// Sends one request on a kept-alive connection and reads its whole answer's head.
async fn ask(conn: &mut TcpStream) -> String {
    conn.write_all(MODELS).await.unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let n = conn.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn connections_beyond_the_cap_wait_until_one_closes() {
    let addr = start("max_connections = 2\nheader_read_timeout_ms = 60000").await;
    // Two connections served and kept open: the cap is reached.
    let mut first = TcpStream::connect(addr).await.unwrap();
    let mut second = TcpStream::connect(addr).await.unwrap();
    assert!(ask(&mut first).await.starts_with("HTTP/1.1 200"));
    assert!(ask(&mut second).await.starts_with("HTTP/1.1 200"));
    // A third connects (the kernel's backlog) but is not served while both stay open.
    let mut third = TcpStream::connect(addr).await.unwrap();
    third.write_all(MODELS).await.unwrap();
    let mut buf = vec![0u8; 16 * 1024];
    let waited = tokio::time::timeout(Duration::from_millis(300), third.read(&mut buf)).await;
    assert!(waited.is_err(), "served beyond the connection cap");
    // One closes: the third is accepted and answered.
    drop(first);
    let n = third.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    // And the one kept open is still served.
    assert!(ask(&mut second).await.starts_with("HTTP/1.1 200"));
}

#[tokio::test]
async fn http2_advertises_its_stream_limit_and_serves_within_it() {
    let addr = start("http2_max_concurrent_streams = 3").await;
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client.ready().await.unwrap();
    let req = http::Request::get(format!("http://{addr}/v1/models"))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200);
    // The server's SETTINGS arrived with the first answer.
    assert_eq!(client.current_max_send_streams(), 3);
}
