//! The gateway: an axum router serving `/v1/chat/completions`, `/v1/responses`,
//! `/v1/embeddings`, `/v1/messages`, `/v1/models` and `/healthz`, each through the same
//! infergate pipeline in front of its backend.

use std::collections::BTreeMap;
use std::time::Duration;

use axum::Router;
use axum::routing::{any_service, get};
use infergate::client::UpstreamClient;
use infergate::core::{Pipeline, PipelineLayer, RejectKind, Rejection};
use infergate::mock::MockProvider;
use tower::Layer;

use crate::config::{BackendConfig, Config, ConfigError};

/// A gateway ready to serve, with the mock provider it embeds (if any) kept alive.
#[derive(Debug)]
pub struct Gateway {
    /// The router.
    pub router: Router,
    /// The embedded mock provider, when a backend's URL is `mock` or there is no config.
    pub mock: Option<MockProvider>,
}

/// The config used when no file is given: one backend, the embedded mock provider.
pub fn default_config() -> Config {
    let mut backends = BTreeMap::new();
    backends.insert(
        "mock".to_owned(),
        BackendConfig {
            url: "mock".into(),
            connect_timeout_ms: None,
            request_timeout_ms: None,
        },
    );
    Config {
        backends,
        ..Config::default()
    }
}

/// Builds the gateway from a config (starting the embedded mock if a backend asks for it).
pub async fn build(config: &Config) -> Result<Gateway, ConfigError> {
    let mut mock = None;
    let mut clients = BTreeMap::new();
    for (name, b) in &config.backends {
        let url = if b.url == "mock" {
            if mock.is_none() {
                mock = Some(
                    MockProvider::builder()
                        .record(false)
                        .start()
                        .await
                        .map_err(|e| {
                            ConfigError::Routes(format!("cannot start the mock provider: {e}"))
                        })?,
                );
            }
            mock.as_ref().map(MockProvider::url).unwrap_or_default()
        } else {
            b.url.clone()
        };
        let mut builder = UpstreamClient::builder();
        if let Some(ms) = b.connect_timeout_ms {
            builder = builder.connect_timeout(Duration::from_millis(ms));
        }
        if let Some(ms) = b.request_timeout_ms {
            builder = builder.request_timeout(Duration::from_millis(ms));
        }
        let client = builder
            .build(&url)
            .map_err(|e| ConfigError::Routes(format!("backend '{name}': {e}")))?;
        clients.insert(name.clone(), client);
    }

    let pipeline = Pipeline::builder()
        .max_request_body(config.pipeline.max_request_body_bytes)
        .deadline(Some(Duration::from_millis(config.pipeline.deadline_ms)))
        .build();
    let layer = PipelineLayer::new(pipeline);

    let mut router = Router::new().route("/healthz", get(|| async { "ok" }));
    let routes: [(&[&str], Option<&String>); 3] = [
        (
            &["/v1/chat/completions", "/v1/responses", "/v1/models"],
            config.routes.chat.as_ref(),
        ),
        (&["/v1/embeddings"], config.routes.embeddings.as_ref()),
        (&["/v1/messages"], config.routes.messages.as_ref()),
    ];
    for (paths, route) in routes {
        let Some(backend) = config.backend_for(route) else {
            continue;
        };
        let Some(upstream) = clients.get(&backend) else {
            continue;
        };
        let svc = layer.clone().layer(upstream.clone().into_proxy());
        for path in paths {
            router = router.route(path, any_service(svc.clone()));
        }
    }
    let router = router.fallback(|uri: http::Uri| async move {
        Rejection::new(
            RejectKind::InvalidRequest,
            format!("no route for {}", uri.path()),
        )
        .with_status(http::StatusCode::NOT_FOUND)
        .with_code("not_found")
        .into_response::<axum::body::Body>()
    });
    Ok(Gateway { router, mock })
}
