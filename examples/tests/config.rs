//! Config errors: clear, naming the key, never repeating a value from the file.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use infergate_examples::config::Config;
use infergate_examples::gateway;

const SECRET: &str = "sk-live-0123456789abcdefSECRET";

fn err(text: &str) -> String {
    Config::parse(text).unwrap_err().to_string()
}

#[test]
fn toml_errors_give_a_place_and_never_a_value() {
    // A value of the wrong type: the message names the place, not the value.
    let e = err(&format!("[pipeline]\ndeadline_ms = \"{SECRET}\"\n"));
    assert!(!e.contains(SECRET), "{e}");
    assert!(e.contains("line 2"), "{e}");
    // A misspelt key is an error naming the key.
    let e = err(&format!(
        "[backends.up]\nurl = \"http://x\"\napi_kee = \"{SECRET}\"\n"
    ));
    assert!(!e.contains(SECRET), "{e}");
    assert!(e.contains("api_kee"), "{e}");
    // Broken syntax on a line holding a key.
    let e = err(&format!(
        "[backends.up]\nurl = \"http://x\nkey = {SECRET}\n"
    ));
    assert!(!e.contains(SECRET), "{e}");
}

#[test]
fn unknown_values_are_errors_naming_the_key() {
    let e = err(
        "[backends.up]\nurl = \"mock\"\n[ratelimit]\nkey = [\"api-key\"]\n[ratelimit.limits]\nrequests_per_minute = 1\n",
    );
    assert!(e.contains("ratelimit.key"), "{e}");
    assert!(!e.contains("api-key"), "{e}");
    let e = err(&format!(
        "[backends.up]\nurl = \"mock\"\n[guardrail]\n[[guardrail.checks]]\nname = \"x\"\ndetector = \"{SECRET}\"\naction = \"block\"\n"
    ));
    assert!(e.contains("detector"), "{e}");
    assert!(!e.contains(SECRET), "{e}");
}

#[tokio::test]
async fn tls_settings_are_checked_when_the_gateway_is_built() {
    let cfg = Config::parse(
        "[backends.up]\nurl = \"https://127.0.0.1:9\"\n[backends.up.tls]\nca_files = [\"/nonexistent/ca.pem\"]\nmin_version = \"1.3\"\n",
    )
    .unwrap();
    let e = gateway::build(&cfg).await.unwrap_err().to_string();
    assert!(e.contains("up") && e.contains("tls_ca"), "{e}");
    // A version that is not one: refused when the file is read, naming the key.
    let e = err(
        "[backends.up]\nurl = \"https://127.0.0.1:9\"\n[backends.up.tls]\nmin_version = \"1.1\"\n",
    );
    assert!(e.contains("backends.up.tls.min_version"), "{e}");
    assert!(e.contains("`1.3`"), "{e}");
    let cfg = Config::parse(
        "[backends.up]\nurl = \"https://127.0.0.1:9\"\n[backends.up.tls]\nclient_cert_file = \"/x.pem\"\n",
    )
    .unwrap();
    let e = gateway::build(&cfg).await.unwrap_err().to_string();
    assert!(e.contains("client_key_file"), "{e}");
}

#[test]
fn errors_name_the_field_path_and_the_allowed_values() {
    // A value outside a block's enum: the path, the allowed values, never the value.
    let e = err(&format!(
        "[backends.up]\nurl = \"mock\"\n[failover.chat]\nmembers = [{{ backend = \"up\" }}]\nselection = \"{SECRET}\"\n"
    ));
    assert!(e.contains("failover.chat.selection"), "{e}");
    assert!(e.contains("`least_outstanding`"), "{e}");
    assert!(!e.contains(SECRET), "{e}");
    // A misspelt field in a block's section.
    let e = err("[backends.up]\nurl = \"mock\"\n[cache]\nttl_sec = 5\n");
    assert!(e.contains("ttl_sec") && e.contains("ttl_secs"), "{e}");
    // A quoted table name (an override key may be a tenant id or a key) is not repeated.
    let e = err(&format!(
        "[backends.up]\nurl = \"mock\"\n[ratelimit.overrides.\"{SECRET}\"]\ntokens_per_minut = 1\n"
    ));
    assert!(e.contains("tokens_per_minut"), "{e}");
    assert!(!e.contains(SECRET), "{e}");
    // A check whose detector lacks its setting, found when the file is read.
    let e = err(
        "[backends.up]\nurl = \"mock\"\n[guardrail]\n[[guardrail.checks]]\nname = \"words\"\ndetector = \"deny_list\"\naction = \"block\"\n",
    );
    assert!(e.contains("terms"), "{e}");
}
