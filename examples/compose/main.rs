//! A minimal composition: infergate layers stacked with `tower::ServiceBuilder` in front of an
//! upstream, served by plain hyper. Run: `cargo run --example compose` (it starts a mock
//! provider as its upstream).
use async_trait::async_trait;
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
    service::TowerToHyperService,
};
use infergate::core::{
    Decision, Phases, PipelineLayer, Processor, ProcessorError, RejectKind, Rejection,
    RequestContext,
};
use tower::ServiceBuilder;
use tower_http::limit::RequestBodyLimitLayer;

/// Only lets known models through.
struct AllowModels(&'static [&'static str]);

#[async_trait]
impl Processor for AllowModels {
    fn name(&self) -> &str {
        "allow-models"
    }
    fn phases(&self) -> Phases {
        Phases::REQUEST
    }
    async fn on_request(&self, cx: &mut RequestContext) -> Result<Decision, ProcessorError> {
        match cx.payload().and_then(|p| p.model()) {
            Some(m) if !self.0.contains(&m) => Ok(Rejection::new(
                RejectKind::InvalidRequest,
                format!("model '{m}' is not allowed"),
            )
            .into()),
            _ => Ok(Decision::Continue),
        }
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mock = infergate::mock::MockProvider::start().await?;
    let svc = ServiceBuilder::new()
        .layer(RequestBodyLimitLayer::new(4 << 20)) // any body type: the pipeline is generic over it
        .layer(PipelineLayer::processor(AllowModels(&[
            "gpt-4o-mini",
            "gpt-4o",
        ])))
        .service(infergate::client::UpstreamClient::new(&mock.url())?.into_proxy());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:8081").await?;
    println!("compose example on http://{}", listener.local_addr()?);
    loop {
        let (stream, _) = listener.accept().await?;
        let svc = TowerToHyperService::new(svc.clone());
        tokio::spawn(
            auto::Builder::new(TokioExecutor::new())
                .serve_connection_with_upgrades(TokioIo::new(stream), svc)
                .into_owned(),
        );
    }
}
