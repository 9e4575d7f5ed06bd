//! The load benchmark's middle row: an empty infergate `PipelineLayer` over the infergate
//! `UpstreamClient`, served by plain hyper (no axum). `layered LISTEN UPSTREAM_URL`.

use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::service::TowerToHyperService;
use infergate_client::UpstreamClient;
use infergate_core::{Pipeline, PipelineLayer};
use tower::Layer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let listen = args.next().unwrap_or_else(|| "127.0.0.1:0".into());
    let upstream = args.next().ok_or("usage: layered LISTEN UPSTREAM_URL")?;
    let svc =
        PipelineLayer::new(Pipeline::default()).layer(UpstreamClient::new(&upstream)?.into_proxy());
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    println!("layered listening on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let _ = stream.set_nodelay(true);
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), svc)
                .await;
        });
    }
}
