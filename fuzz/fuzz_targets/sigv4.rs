//! SigV4 signing never panics on any method, URI, header or body, and a signed request carries
//! the signature headers.
#![no_main]

use std::time::{Duration, SystemTime};

use infergate_auth::{AwsCredentials, Secret, SigV4Options, sign_sigv4};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut parts = text.splitn(5, '\n');
    let method = parts.next().unwrap_or("POST");
    let uri = parts.next().unwrap_or("/");
    let header_name = parts.next().unwrap_or("x-a");
    let header_value = parts.next().unwrap_or("");
    let body = parts.next().unwrap_or("").as_bytes();
    let Ok(method) = http::Method::from_bytes(method.as_bytes()) else {
        return;
    };
    let mut headers = http::HeaderMap::new();
    headers.insert(http::header::HOST, http::HeaderValue::from_static("bedrock.example.test"));
    if let (Ok(n), Ok(v)) = (
        http::HeaderName::from_bytes(header_name.as_bytes()),
        http::HeaderValue::from_str(header_value),
    ) {
        headers.append(n, v);
    }
    let creds = AwsCredentials {
        access_key_id: "AKIDEXAMPLE".to_owned(),
        secret_access_key: Secret::new("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
        session_token: None,
    };
    let time = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    for options in [SigV4Options::default(), SigV4Options { normalize_path: false, ..SigV4Options::default() }] {
        let mut h = headers.clone();
        if sign_sigv4(&method, uri, &mut h, body, &creds, "us-east-1", "bedrock", time, options).is_ok() {
            assert!(h.contains_key(http::header::AUTHORIZATION));
            assert!(h.contains_key("x-amz-date"));
        }
    }
});
