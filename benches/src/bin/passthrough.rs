//! The baseline of the load benchmark: a bare hyper 1 reverse proxy with hyper-util's pooled
//! client and no infergate code at all. `passthrough LISTEN UPSTREAM_AUTHORITY`.

use hyper::body::Incoming;

use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let upstream = args
        .next()
        .ok_or("usage: passthrough LISTEN UPSTREAM_AUTHORITY")?;
    let client: Client<_, Incoming> = Client::builder(TokioExecutor::new())
        .pool_max_idle_per_host(256)
        .build_http();
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("passthrough listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let client = client.clone();
        let upstream = upstream.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                let client = client.clone();
                let pq = req
                    .uri()
                    .path_and_query()
                    .map_or("/", http::uri::PathAndQuery::as_str)
                    .to_owned();
                let uri = format!("http://{upstream}{pq}");
                async move {
                    *req.uri_mut() = uri.parse().map_err(std::io::Error::other)?;
                    req.headers_mut().remove(http::header::HOST);
                    client.request(req).await.map_err(std::io::Error::other)
                }
            });
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
