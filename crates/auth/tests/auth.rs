//! Provider credentials over loopback HTTP, checked at the mock provider's request record: the
//! client's own credentials never reach the upstream (unless pass-through is on), each provider
//! gets its headers, keys rotate from a file without restart, and no secret is printed.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use bytes::Bytes;
use infergate_auth::{
    AwsCredentialSource, AwsCredentials, KeySource, Keys, Provider, ProviderAuthLayer, Secret,
    SigV4Options,
};
use infergate_client::UpstreamClient;
use infergate_core::{Pipeline, PipelineLayer};
use infergate_mock::MockProvider;
use infergate_testkit::{Reply, send, serve};
use tower::Layer;

async fn gateway(mock: &MockProvider, layer: ProviderAuthLayer) -> std::net::SocketAddr {
    // The pipeline buffers the body (SigV4 signs the exact bytes) and hands it on.
    let upstream = layer.layer(UpstreamClient::new(&mock.url()).unwrap().into_proxy());
    serve(PipelineLayer::new(Pipeline::default()).layer(upstream)).await
}

/// A Bedrock layer (SigV4, us-east-1) towards `mock` with these credentials.
fn bedrock(mock: &MockProvider, secret: &str, token: &str) -> ProviderAuthLayer {
    ProviderAuthLayer::new(Provider::Bedrock {
        credentials: AwsCredentialSource::Static(AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::new(secret),
            session_token: Some(Secret::new(token)),
        }),
        region: "us-east-1".into(),
        service: "bedrock".into(),
        endpoint: mock.url().parse().unwrap(),
        options: SigV4Options::default(),
    })
}

async fn post(addr: std::net::SocketAddr, path: &str, headers: &[(&str, &str)]) -> Reply {
    let mut b = http::Request::post(format!("http://{addr}{path}"))
        .header("content-type", "application/json");
    for (k, v) in headers {
        b = b.header(*k, *v);
    }
    send(
        b.body(http_body_util::Full::new(Bytes::from_static(
            br#"{"model":"m","max_tokens":5,"messages":[{"role":"user","content":"hi"}]}"#,
        )))
        .unwrap(),
    )
    .await
}

#[tokio::test]
async fn the_clients_key_is_replaced_by_the_backends() {
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(
        &mock,
        ProviderAuthLayer::new(Provider::OpenAi(Keys::inline("sk-backend-1"))),
    )
    .await;
    let r = post(
        addr,
        "/v1/chat/completions",
        &[
            ("authorization", "Bearer sk-client-own"),
            ("x-api-key", "client-2"),
            ("api-key", "client-3"),
            ("x-goog-api-key", "client-4"),
        ],
    )
    .await;
    assert_eq!(r.status, 200);
    let seen = &mock.requests()[0];
    assert_eq!(seen.headers["authorization"], "Bearer sk-backend-1");
    for h in ["x-api-key", "api-key", "x-goog-api-key"] {
        assert!(!seen.headers.contains_key(h), "{h} reached the upstream");
    }
}

#[tokio::test]
async fn client_account_headers_are_stripped_but_protocol_headers_kept() {
    let mock = MockProvider::start().await.unwrap();
    let account = [
        ("openai-organization", "org-client"),
        ("openai-project", "proj-client"),
        ("x-goog-user-project", "gcp-client"),
        ("cookie", "session=client"),
        ("anthropic-organization-id", "org-ant-client"),
        ("anthropic-workspace", "ws-client"),
    ];
    let protocol = [
        ("anthropic-version", "2023-06-01"),
        ("anthropic-beta", "prompt-caching-2024-07-31"),
    ];
    let mut headers = vec![("authorization", "Bearer sk-client-own")];
    headers.extend(account);
    headers.extend(protocol);
    let addr = gateway(
        &mock,
        ProviderAuthLayer::new(Provider::OpenAi(Keys::inline("sk-backend-1"))),
    )
    .await;
    assert_eq!(
        post(addr, "/v1/chat/completions", &headers).await.status,
        200
    );
    let seen = &mock.requests()[0];
    assert_eq!(seen.headers["authorization"], "Bearer sk-backend-1");
    for (h, _) in account {
        assert!(!seen.headers.contains_key(h), "{h} reached the upstream");
    }
    for (h, v) in protocol {
        assert_eq!(seen.headers[h], v);
    }
    // An explicitly pass-through backend keeps the client's key and its account headers.
    let mock = MockProvider::start().await.unwrap();
    let layer =
        ProviderAuthLayer::new(Provider::OpenAi(Keys::inline("sk-backend"))).passthrough(true);
    let addr = gateway(&mock, layer).await;
    post(addr, "/v1/chat/completions", &headers).await;
    let seen = &mock.requests()[0];
    assert_eq!(seen.headers["authorization"], "Bearer sk-client-own");
    assert_eq!(seen.headers["openai-organization"], "org-client");
}

#[tokio::test]
async fn pass_through_keeps_a_clients_own_key() {
    let mock = MockProvider::start().await.unwrap();
    let layer =
        ProviderAuthLayer::new(Provider::OpenAi(Keys::inline("sk-backend"))).passthrough(true);
    let addr = gateway(&mock, layer).await;
    post(
        addr,
        "/v1/chat/completions",
        &[("authorization", "Bearer sk-byok")],
    )
    .await;
    post(addr, "/v1/chat/completions", &[]).await;
    let seen = mock.requests();
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-byok");
    assert_eq!(seen[1].headers["authorization"], "Bearer sk-backend");
}

#[tokio::test]
async fn anthropic_and_azure_get_their_headers() {
    let mock = MockProvider::start().await.unwrap();
    let anthropic = ProviderAuthLayer::new(Provider::Anthropic {
        keys: Keys::inline("sk-ant-backend"),
        version: infergate_auth::ANTHROPIC_VERSION.into(),
    });
    let addr = gateway(&mock, anthropic).await;
    post(addr, "/v1/messages", &[("authorization", "Bearer client")]).await;
    post(addr, "/v1/messages", &[("anthropic-version", "2099-01-01")]).await;
    let seen = mock.requests();
    assert_eq!(seen[0].headers["x-api-key"], "sk-ant-backend");
    assert_eq!(seen[0].headers["anthropic-version"], "2023-06-01");
    assert!(!seen[0].headers.contains_key("authorization"));
    assert_eq!(
        seen[1].headers["anthropic-version"], "2099-01-01",
        "the client's version kept"
    );

    let mock = MockProvider::start().await.unwrap();
    let azure = ProviderAuthLayer::new(Provider::AzureApiKey {
        keys: Keys::inline("azure-key"),
        api_version: Some("2024-10-21".into()),
    });
    let addr = gateway(&mock, azure).await;
    post(addr, "/openai/deployments/gpt4o/chat/completions", &[]).await;
    let seen = &mock.requests()[0];
    assert_eq!(seen.headers["api-key"], "azure-key");
    assert_eq!(
        seen.path,
        "/openai/deployments/gpt4o/chat/completions?api-version=2024-10-21"
    );
}

#[tokio::test]
async fn keys_are_used_in_turn_and_a_rotated_file_takes_effect_at_once() {
    let mock = MockProvider::start().await.unwrap();
    let dir = std::env::temp_dir().join(format!("infergate-auth-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("key");
    std::fs::write(&file, "sk-from-file-v1\n").unwrap();
    let keys = Keys::new([KeySource::File(file.clone())]);
    let addr = gateway(&mock, ProviderAuthLayer::new(Provider::OpenAi(keys))).await;
    post(addr, "/v1/chat/completions", &[]).await;
    // Rotation: a new key (another length, so even a coarse mtime sees the change).
    std::fs::write(&file, "sk-from-file-version-2\n").unwrap();
    post(addr, "/v1/chat/completions", &[]).await;
    let seen = mock.requests();
    assert_eq!(seen[0].headers["authorization"], "Bearer sk-from-file-v1");
    assert_eq!(
        seen[1].headers["authorization"],
        "Bearer sk-from-file-version-2"
    );

    let mock = MockProvider::start().await.unwrap();
    let keys = Keys::new([
        KeySource::Inline(Secret::new("key-a")),
        KeySource::Inline(Secret::new("key-b")),
    ]);
    let addr = gateway(&mock, ProviderAuthLayer::new(Provider::OpenAi(keys))).await;
    for _ in 0..4 {
        post(addr, "/v1/chat/completions", &[]).await;
    }
    let used: Vec<String> = mock
        .requests()
        .iter()
        .map(|r| r.headers["authorization"].to_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        used,
        [
            "Bearer key-a",
            "Bearer key-b",
            "Bearer key-a",
            "Bearer key-b"
        ]
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[tokio::test]
async fn bedrock_requests_are_signed_over_the_body_they_carry() {
    let mock = MockProvider::start().await.unwrap();
    let layer = bedrock(
        &mock,
        "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        "session-token-value",
    );
    let addr = gateway(&mock, layer).await;
    post(
        addr,
        "/v1/chat/completions",
        &[("authorization", "Bearer client")],
    )
    .await;
    post(addr, "/v1/chat/completions", &[]).await;
    for seen in mock.requests() {
        let authz = seen.headers["authorization"].to_str().unwrap();
        assert!(
            authz.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
                && authz.contains("/us-east-1/bedrock/aws4_request")
                && authz.contains("x-amz-security-token"),
            "{authz}"
        );
        assert_eq!(seen.headers["x-amz-security-token"], "session-token-value");
        // x-amz-content-sha256 is the SHA-256 of the bytes that arrived.
        let sha = seen.headers["x-amz-content-sha256"].to_str().unwrap();
        assert_eq!(sha.len(), 64);
        assert!(seen.headers.contains_key("x-amz-date"));
    }
}

#[tokio::test]
async fn no_secret_in_debug_output_or_error_bodies() {
    let keys = Keys::new([
        KeySource::Inline(Secret::new("sk-very-secret-inline")),
        KeySource::Env("INFERGATE_TEST_UNSET_KEY_VAR".into()),
    ]);
    let provider = Provider::OpenAi(keys);
    let layer = ProviderAuthLayer::new(provider);
    let printed = format!(
        "{layer:?} {:?} {}",
        Secret::new("sk-x-secret"),
        Secret::new("sk-y-secret")
    );
    assert!(
        !printed.contains("sk-very-secret-inline") && !printed.contains("secret\""),
        "{printed}"
    );
    assert!(printed.contains("[redacted]"));
    // The second key's variable is unset: that request fails with a generic 502.
    let mock = MockProvider::start().await.unwrap();
    let addr = gateway(&mock, layer).await;
    let ok = post(addr, "/v1/chat/completions", &[]).await;
    assert_eq!(ok.status, 200);
    let failed = post(addr, "/v1/chat/completions", &[]).await;
    assert_eq!(failed.status, 502);
    assert_eq!(failed.json()["error"]["code"], "upstream_auth_failed");
    assert!(!failed.text().contains("sk-very-secret"));
    assert!(
        !failed.text().contains("INFERGATE_TEST_UNSET_KEY_VAR"),
        "no configuration detail either"
    );
    assert_eq!(mock.requests().len(), 1);
}

#[tokio::test(flavor = "current_thread")]
async fn no_secret_in_the_logs_of_successes_and_failures() {
    // Global: the servers run on tasks of their own. (Only this test installs one.)
    let logs = infergate_testkit::CapturedLogs::install_global();

    let mock = MockProvider::start().await.unwrap();
    let keys = Keys::new([
        KeySource::Inline(Secret::new("sk-logged-never-1")),
        KeySource::Env("INFERGATE_TEST_UNSET_KEY_VAR_2".into()),
    ]);
    let addr = gateway(&mock, ProviderAuthLayer::new(Provider::OpenAi(keys))).await;
    assert_eq!(
        post(
            addr,
            "/v1/chat/completions",
            &[("authorization", "Bearer sk-client-secret-9")]
        )
        .await
        .status,
        200
    );
    assert_eq!(post(addr, "/v1/chat/completions", &[]).await.status, 502);
    let layer = bedrock(&mock, "aws-secret-never-logged", "aws-token-never-logged");
    let addr = gateway(&mock, layer).await;
    assert_eq!(post(addr, "/v1/chat/completions", &[]).await.status, 200);
    let text = logs.text();
    assert!(
        text.contains("provider credentials unavailable"),
        "the failure was logged: {text}"
    );
    for secret in [
        "sk-logged-never-1",
        "sk-client-secret-9",
        "aws-secret-never-logged",
        "aws-token-never-logged",
    ] {
        let line = text.lines().find(|l| l.contains(secret)).unwrap_or("");
        assert!(!text.contains(secret), "{secret} in the logs: {line}");
    }
}
