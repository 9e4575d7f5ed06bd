//! Every captured SSE stream (tests/fixtures/sse, copied from ../shared/data/sse with their
//! licences; see fixtures/sse/SOURCE.md) decodes in any chunking, gives back its bytes exactly,
//! parses into typed events, and re-encodes canonically byte-for-byte where it was canonical.

#![allow(clippy::unwrap_used, clippy::pedantic, missing_docs)]

use std::path::{Path, PathBuf};

use infergate_core::payload::ApiKind;
use infergate_core::sse::{SseDecoder, SseEvent, TypedEvent, UsageTracker, parse_event};

fn fixtures() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else {
                let name = p.file_name().unwrap().to_string_lossy().to_string();
                let is_stream = name.ends_with(".sse")
                    || name.ends_with(".sse.txt")
                    || (name.ends_with(".txt") && !name.starts_with("LICENSE"))
                    || (name.ends_with(".json") && !name.starts_with("INDEX"))
                    || p.parent().unwrap().ends_with("detect");
                if is_stream {
                    out.push(p);
                }
            }
        }
    }
    let mut out = vec![];
    walk(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sse"),
        &mut out,
    );
    out.sort();
    out
}

fn api_of(path: &Path) -> ApiKind {
    let s = path.to_string_lossy();
    if s.contains("anthropic") {
        ApiKind::AnthropicMessages
    } else if s.contains("responses") {
        ApiKind::Responses
    } else {
        ApiKind::ChatCompletions
    }
}

fn decode(bytes: &[u8], chunk: usize) -> (Vec<SseEvent>, Vec<u8>) {
    let mut dec = SseDecoder::new();
    let mut events = vec![];
    for c in bytes.chunks(chunk.max(1)) {
        dec.decode(c, &mut events).unwrap();
    }
    let rest = match dec.finish(&mut events) {
        Ok(()) => vec![],
        Err(_) => dec.take_remaining().to_vec(),
    };
    (events, rest)
}

#[test]
fn every_fixture_decodes_and_round_trips() {
    let files = fixtures();
    assert!(
        files.len() >= 35,
        "expected the copied fixtures, found {}",
        files.len()
    );
    let mut events_seen = 0;
    let mut canonical_checked = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let broken = path.to_string_lossy().contains("broken-sse");
        let (whole, rest) = decode(&bytes, bytes.len());
        // Byte-exact passthrough: raw events + leftover = input.
        let mut again: Vec<u8> = whole.iter().flat_map(|e| e.to_bytes().to_vec()).collect();
        again.extend_from_slice(&rest);
        assert_eq!(again, bytes, "{} does not round-trip", path.display());
        // Any chunking gives the same events.
        for chunk in [1, 2, 3, 7, 64, 1000] {
            let (evs, rest2) = decode(&bytes, chunk);
            assert_eq!(evs, whole, "{} chunk {chunk}", path.display());
            assert_eq!(rest2, rest);
        }
        // Typed parsing of every data event.
        let api = api_of(path);
        let mut usage = UsageTracker::new(api);
        for e in &whole {
            usage.observe(e);
            let parsed = parse_event(api, e);
            if broken {
                continue;
            }
            let parsed = parsed
                .unwrap_or_else(|err| panic!("{}: {err} in {:?}", path.display(), e.data_str()));
            assert!(!matches!(parsed, TypedEvent::Empty) || e.data_str().is_none());
            events_seen += 1;
        }
        // Canonical re-encoding equals the input where the input was canonical.
        let canonical: Vec<u8> = whole
            .iter()
            .flat_map(|e| e.to_canonical_bytes().to_vec())
            .collect();
        let text = String::from_utf8_lossy(&bytes);
        let is_canonical = !text.contains('\r')
            && !text.contains("data:{")
            && !text.contains("event:m")
            && !text.contains("\n:")
            && text.ends_with("\n\n")
            && !broken;
        if is_canonical {
            canonical_checked += 1;
            assert_eq!(
                String::from_utf8_lossy(&canonical),
                text,
                "{} canonical re-encoding differs",
                path.display()
            );
        }
    }
    assert!(events_seen > 500, "only {events_seen} events parsed");
    assert!(
        canonical_checked >= 20,
        "only {canonical_checked} canonical files"
    );
}

#[test]
fn usage_is_found_where_the_capture_has_it() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sse");
    let cases = [
        (
            "extracted/envoy-ai-gateway__chat-streaming-detailed-usage__0.sse.txt",
            ApiKind::ChatCompletions,
        ),
        (
            "extracted/pydantic-ai__test_openai_responses_streaming_usage__0.sse.txt",
            ApiKind::Responses,
        ),
        (
            "anthropic-sdk-python/tests/lib/streaming/fixtures/basic_response.txt",
            ApiKind::AnthropicMessages,
        ),
        (
            "agentgateway/crates/llm/src/tests/response/anthropic/stream_message_delta_usage.json",
            ApiKind::AnthropicMessages,
        ),
    ];
    for (file, api) in cases {
        let bytes = std::fs::read(dir.join(file)).unwrap();
        let (events, _) = decode(&bytes, 5);
        let mut t = UsageTracker::new(api);
        for e in &events {
            t.observe(e);
        }
        let u = t.usage().unwrap_or_else(|| panic!("no usage in {file}"));
        assert!(u.input_tokens > 0 && u.output_tokens > 0, "{file}: {u:?}");
    }
}

#[test]
fn mid_stream_error_capture_is_recognised() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(
        "tests/fixtures/sse/extracted/pydantic-ai__test_tool_use_failed_error_streaming__0.sse.txt",
    );
    let bytes = std::fs::read(path).unwrap();
    let (events, _) = decode(&bytes, 13);
    let last = events
        .iter()
        .rev()
        .find(|e| e.data_str().is_some())
        .unwrap();
    match parse_event(ApiKind::ChatCompletions, last).unwrap() {
        TypedEvent::Error(v) => assert_eq!(v["error"]["code"], "tool_use_failed"),
        other => panic!("expected an error event, got {other:?}"),
    }
}

#[test]
fn shared_data_streams_match_the_copies() {
    // The copies in the repo are the shared data set's; when ../shared is present, check that
    // nothing was lost in copying.
    let shared = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data/sse");
    if !shared.exists() {
        eprintln!(
            "skipping: ../shared/data/sse is absent (only CI and developer machines have it)"
        );
        return;
    }
    let mine = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sse");
    for f in fixtures() {
        let rel = f.strip_prefix(&mine).unwrap();
        let theirs = shared.join(rel);
        if theirs.exists() {
            assert_eq!(std::fs::read(&f).unwrap(), std::fs::read(&theirs).unwrap());
        }
    }
}

/// The provider's own final numbers, read plainly from the capture: the last non-null `usage`
/// of a Chat stream, the `usage` of the Responses API's final `response.*` event, and for
/// Anthropic the start's counts with every count a later `message_delta` carries replacing
/// the one before.
fn providers_final_numbers(api: ApiKind, events: &[SseEvent]) -> Option<[u64; 5]> {
    let n = |v: &serde_json::Value, k: &str| v.get(k).and_then(|x| x.as_u64());
    let mut last: Option<[u64; 5]> = None;
    // Anthropic: uncached input, cache read, cache write, output.
    let mut parts: Option<[u64; 4]> = None;
    for e in events {
        let Some(d) = e.data_str() else { continue };
        let Ok(v) = serde_json::from_str::<serde_json::Value>(d) else {
            continue;
        };
        match api {
            ApiKind::ChatCompletions => {
                if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
                    if u.get("prompt_tokens").is_none() {
                        // The Images API's stream: the Responses API's names.
                        last = Some([
                            n(u, "input_tokens").unwrap_or(0),
                            n(u, "output_tokens").unwrap_or(0),
                            0,
                            0,
                            0,
                        ]);
                        continue;
                    }
                    let p = n(u, "prompt_tokens").unwrap_or(0);
                    last = Some([
                        p,
                        n(u, "completion_tokens").unwrap_or(0),
                        u.pointer("/prompt_tokens_details/cached_tokens")
                            .and_then(|x| x.as_u64())
                            .unwrap_or(0),
                        0,
                        u.pointer("/completion_tokens_details/reasoning_tokens")
                            .and_then(|x| x.as_u64())
                            .unwrap_or(0),
                    ]);
                }
            }
            ApiKind::Responses => {
                if let Some(u) = v.pointer("/response/usage").filter(|u| u.is_object()) {
                    last = Some([
                        n(u, "input_tokens").unwrap_or(0),
                        n(u, "output_tokens").unwrap_or(0),
                        u.pointer("/input_tokens_details/cached_tokens")
                            .and_then(|x| x.as_u64())
                            .unwrap_or(0),
                        0,
                        u.pointer("/output_tokens_details/reasoning_tokens")
                            .and_then(|x| x.as_u64())
                            .unwrap_or(0),
                    ]);
                }
            }
            _ => {
                let u = match v.get("type").and_then(|t| t.as_str()) {
                    Some("message_start") => v.pointer("/message/usage"),
                    Some("message_delta") => v.get("usage"),
                    _ => None,
                };
                let Some(u) = u.filter(|u| u.is_object()) else {
                    continue;
                };
                let p = parts.get_or_insert([0; 4]);
                for (i, k) in [
                    "input_tokens",
                    "cache_read_input_tokens",
                    "cache_creation_input_tokens",
                    "output_tokens",
                ]
                .iter()
                .enumerate()
                {
                    if let Some(x) = n(u, k) {
                        p[i] = x;
                    }
                }
            }
        }
    }
    if let Some([i, r, w, o]) = parts {
        return Some([i + r + w, o, r, w, 0]);
    }
    last
}

#[test]
fn usage_record_equals_the_providers_final_numbers_in_every_capture() {
    use infergate_core::usage::UsageMeter;
    let mut with_usage = 0;
    let (mut saw_cache_read, mut saw_reasoning) = (false, false);
    for path in fixtures() {
        if path.to_string_lossy().contains("broken-sse") {
            continue;
        }
        let bytes = std::fs::read(&path).unwrap();
        let api = api_of(&path);
        for chunk in [1, 7, bytes.len()] {
            let (events, _) = decode(&bytes, chunk);
            let mut m = UsageMeter::new(api);
            for e in &events {
                m.observe(e);
            }
            let got = m.usage().map(|u| {
                [
                    u.input_tokens,
                    u.output_tokens,
                    u.cache_read_input_tokens,
                    u.cache_creation_input_tokens,
                    u.reasoning_tokens,
                ]
            });
            let want = providers_final_numbers(api, &events);
            assert_eq!(got, want, "{} (chunks of {chunk})", path.display());
            if let (1, Some(g)) = (chunk, got) {
                with_usage += 1;
                saw_cache_read |= g[2] > 0;
                saw_reasoning |= g[4] > 0;
            }
        }
    }
    assert!(with_usage >= 25, "only {with_usage} captures carry usage");
    assert!(
        saw_cache_read && saw_reasoning,
        "cache reads and reasoning were checked"
    );
}
