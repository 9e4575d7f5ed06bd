//! No key, token or secret ever appears in the logs (captured at TRACE, every crate), whatever
//! happens: accepted, refused, malformed, a broken key file, a bad token.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

mod common;

use common::{call, gateway, store};
use infergate_identity::{
    FileKeyStore, Identity, JwksSource, JwtConfig, JwtVerifier, KeyHasher, PrincipalSpec,
};
use infergate_mock::MockProvider;

#[tokio::test(flavor = "current_thread")]
async fn no_credential_in_the_logs_of_successes_and_failures() {
    // Global: the servers run on tasks of their own. (Only this test binary installs one.)
    let logs = infergate_testkit::CapturedLogs::install_global();

    let good = "igk_logged_SecretNeverLogged0000000000001";
    let wrong = "igk_logged_SecretNeverLogged0000000000002";
    let unknown = "igk_nobody_SecretNeverLogged0000000000003";
    let malformed = "igk_bad_SecretNeverLogged!";
    let foreign = "sk-SecretNeverLogged-foreign";
    let in_a_bad_line = "igk_file_SecretNeverLogged0000000000004";
    let token = "eyJhbGciOiJFUzI1NiIsImtpZCI6IngifQ.eyJTZWNyZXROZXZlckxvZ2dlZCI6MX0.U2VjcmV0TmV2ZXJMb2dnZWQ";

    let mock = MockProvider::start().await.unwrap();
    let mut spec = PrincipalSpec::tenant("acme");
    spec.allowed_models = vec!["gpt-4o-mini".into()];
    let jwt = JwtVerifier::new(JwtConfig::new(JwksSource::Inline(r#"{"keys":[]}"#.into())))
        .await
        .unwrap();
    let id = Identity::builder()
        .keys(store(&[(good, spec)]))
        .jwt(jwt)
        .build();
    let addr = gateway(&mock, id).await;
    let mut statuses = Vec::new();
    for (cred, model) in [
        (good, "gpt-4o-mini"),
        (good, "gpt-4o"),
        (wrong, "gpt-4o-mini"),
        (unknown, "gpt-4o-mini"),
        (malformed, "gpt-4o-mini"),
        (foreign, "gpt-4o-mini"),
        (token, "gpt-4o-mini"),
    ] {
        let auth = format!("Bearer {cred}");
        statuses.push(
            call(
                addr,
                "/v1/chat/completions",
                model,
                &[("authorization", &auth)],
            )
            .await
            .status
            .as_u16(),
        );
        statuses.push(
            call(addr, "/v1/messages", model, &[("x-api-key", cred)])
                .await
                .status
                .as_u16(),
        );
    }
    assert_eq!(
        statuses,
        [
            200, 200, 403, 403, 401, 401, 401, 401, 401, 401, 401, 401, 401, 401
        ]
    );

    // A key file with a key pasted into the wrong field: the line is skipped and warned about.
    let path = std::env::temp_dir().join(format!(
        "infergate-identity-logs-{}.jsonl",
        std::process::id()
    ));
    std::fs::write(
        &path,
        format!(r#"{{"key_id":"file","hash":"sha256:00","expires_at":"{in_a_bad_line}"}}"#),
    )
    .unwrap();
    let _ = FileKeyStore::open(&path, KeyHasher::sha256()).unwrap();
    let _ = std::fs::remove_file(&path);

    let text = logs.text();
    assert!(
        text.contains("identity: request refused"),
        "refusals are logged: {text}"
    );
    assert!(text.contains("key file line skipped"), "{text}");
    assert!(
        !text.contains("SecretNeverLogged"),
        "a credential was logged: {text}"
    );
    assert!(
        !text.contains(token) && !text.contains("eyJTZWNyZXROZXZlckxvZ2dlZCI6MX0"),
        "{text}"
    );
    for r in mock.requests() {
        assert!(!format!("{:?}", r.headers).contains("SecretNeverLogged"));
    }
}
