use std::convert::Infallible;
use std::io;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures_util::StreamExt;
use http::{Method, Response, StatusCode, header};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use serde_json::{Value, json};

use crate::server::{Failure, RecordedRequest, State, error_status, lock};

pub(crate) type MockBody = BoxBody<Bytes, io::Error>;

pub(crate) fn full(b: impl Into<Bytes>) -> MockBody {
    Full::new(b.into())
        .map_err(|e: Infallible| match e {})
        .boxed()
}

fn json_response(status: StatusCode, v: &Value, name: &str) -> Response<MockBody> {
    let mut r = Response::new(full(v.to_string()));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(name) {
        r.headers_mut().insert("x-mock-name", v);
    }
    r
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// Rough token count: about four characters per token, at least one.
fn approx_tokens(v: &Value) -> u64 {
    fn chars(v: &Value) -> usize {
        match v {
            Value::String(s) => s.len(),
            Value::Array(a) => a.iter().map(chars).sum(),
            Value::Object(o) => o.values().map(chars).sum(),
            _ => 0,
        }
    }
    let msgs = v
        .get("messages")
        .or_else(|| v.get("input"))
        .map_or(0, chars)
        + v.get("system").map_or(0, chars);
    (msgs as u64).div_ceil(4).max(1)
}

pub(crate) async fn handle(
    state: Arc<State>,
    req: http::Request<Incoming>,
) -> Result<Response<MockBody>, io::Error> {
    let n = state.counter.fetch_add(1, Ordering::Relaxed) + 1;
    let (parts, body) = req.into_parts();
    let body = body
        .collect()
        .await
        .map_err(|e| io::Error::other(e.to_string()))?
        .to_bytes();
    let failure = {
        let queued = lock(&state.failures).pop_front();
        queued
            .or_else(|| {
                parts
                    .headers
                    .get("x-mock-fail")
                    .and_then(|v| v.to_str().ok())
                    .and_then(Failure::from_header)
            })
            .or_else(|| lock(&state.always).clone())
    };
    if state.record {
        lock(&state.requests).push(RecordedRequest {
            method: parts.method.clone(),
            version: parts.version,
            path: parts
                .uri
                .path_and_query()
                .map_or_else(|| parts.uri.path().to_owned(), ToString::to_string),
            headers: parts.headers.clone(),
            body: body.clone(),
            failure: failure.clone(),
        });
    }
    let latency = *lock(&state.latency);
    if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
    let mut disconnect_after = None;
    match failure {
        Some(Failure::Status {
            status,
            retry_after,
        }) => {
            let code = error_status(status);
            let mut r = json_response(
                code,
                &json!({"error": {
                    "message": format!("mock provider injected failure {status}"),
                    "type": if status == 429 { "rate_limit_error" } else { "server_error" },
                    "code": null, "param": null}}),
                &state.name,
            );
            if let Some(ra) = retry_after.and_then(|v| http::HeaderValue::from_str(&v).ok()) {
                r.headers_mut().insert(header::RETRY_AFTER, ra);
            }
            let wire = lock(&state.wire).clone();
            return Ok(crate::wire::apply(r, &parts.headers, &wire));
        }
        Some(Failure::Reset) => return Err(io::Error::other("mock: injected connection reset")),
        Some(Failure::Hang) => {
            std::future::pending::<()>().await;
        }
        Some(Failure::DisconnectAfter(k)) => disconnect_after = Some(k),
        None => {}
    }
    let path = parts.uri.path().trim_end_matches('/');
    let parsed: Option<Value> = serde_json::from_slice(&body).ok();
    let wire = lock(&state.wire).clone();
    let streamed = parsed
        .as_ref()
        .and_then(|v| v.get("stream"))
        .and_then(Value::as_bool)
        == Some(true);
    if parts.method == Method::POST && parsed.is_some() {
        if let (true, Some(replay)) = (streamed, &wire.stream_replay) {
            let frames = crate::wire::replay_frames(replay, wire.replay_frame);
            let resp = sse_frames(&state, frames, disconnect_after);
            return Ok(crate::wire::apply(resp, &parts.headers, &wire));
        }
        if let (false, Some(replay)) = (streamed, &wire.json_replay) {
            let mut r = Response::new(full(replay.clone()));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/json"),
            );
            let r = cut_body(r, disconnect_after);
            return Ok(crate::wire::apply(r, &parts.headers, &wire));
        }
    }
    if parts.method == Method::POST
        && let Some(v) = &parsed
        && let Some((protocol, model, stream)) = crate::agent::route(path, v)
    {
        let resp =
            crate::agent::answer(&state, protocol, model, stream, &body, n, disconnect_after);
        return Ok(crate::wire::apply(resp, &parts.headers, &wire));
    }
    let resp = match (&parts.method, path) {
        (&Method::GET, p) if p.ends_with("/models") => json_response(
            StatusCode::OK,
            &json!({"object": "list", "data": [
                {"id": "mock-gpt", "object": "model", "created": 0, "owned_by": "infergate-mock"},
                {"id": "mock-claude", "object": "model", "created": 0, "owned_by": "infergate-mock"},
                {"id": "mock-embed", "object": "model", "created": 0, "owned_by": "infergate-mock"}]}),
            &state.name,
        ),
        (&Method::POST, p) if p.ends_with("/chat/completions") => match parsed {
            Some(v) => chat(&state, &v, n, disconnect_after),
            None => bad_request(&state),
        },
        (&Method::POST, p) if p.ends_with("/embeddings") => match parsed {
            Some(v) => embeddings(&state, &v),
            None => bad_request(&state),
        },
        (&Method::POST, p) if p.ends_with("/moderations") => match parsed {
            Some(v) => moderations(&state, &v),
            None => bad_request(&state),
        },
        (&Method::POST, p) if p.ends_with("/messages") => match parsed {
            Some(v) => messages(&state, &v, n, disconnect_after),
            None => bad_request(&state),
        },
        _ => json_response(
            StatusCode::NOT_FOUND,
            &json!({"error": {"message": format!("mock: no route for {path}"), "type": "invalid_request_error", "code": "not_found", "param": null}}),
            &state.name,
        ),
    };
    Ok(crate::wire::apply(resp, &parts.headers, &wire))
}

fn bad_request(state: &State) -> Response<MockBody> {
    json_response(
        StatusCode::BAD_REQUEST,
        &json!({"error": {"message": "mock: body is not JSON", "type": "invalid_request_error", "code": null, "param": null}}),
        &state.name,
    )
}

pub(crate) fn words(reply: &str) -> Vec<String> {
    let mut out = Vec::new();
    for (i, w) in reply.split(' ').enumerate() {
        out.push(if i == 0 {
            w.to_owned()
        } else {
            format!(" {w}")
        });
    }
    out
}

fn sse_response(
    state: &State,
    events: Vec<String>,
    disconnect_after: Option<usize>,
) -> Response<MockBody> {
    sse_frames(
        state,
        events.into_iter().map(Bytes::from).collect(),
        disconnect_after,
    )
}

pub(crate) fn sse_frames(
    state: &State,
    events: Vec<Bytes>,
    disconnect_after: Option<usize>,
) -> Response<MockBody> {
    let delay = *lock(&state.token_delay);
    let stream =
        futures_util::stream::iter(events.into_iter().enumerate()).then(move |(i, e)| async move {
            if i > 0 && !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            if disconnect_after.is_some_and(|k| i >= k) {
                return Err(io::Error::other("mock: injected disconnect mid-stream"));
            }
            Ok(Frame::data(e))
        });
    let mut r = Response::new(BodyExt::boxed(StreamBody::new(stream)));
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    h.insert(
        header::CACHE_CONTROL,
        http::HeaderValue::from_static("no-cache"),
    );
    if let Ok(v) = http::HeaderValue::from_str(&state.name) {
        h.insert("x-mock-name", v);
    }
    r
}

pub(crate) fn cut_body(
    resp: Response<MockBody>,
    disconnect_after: Option<usize>,
) -> Response<MockBody> {
    if disconnect_after.is_none() {
        return resp;
    }
    // Send half of the body, then fail.
    let (parts, body) = resp.into_parts();
    let stream = futures_util::stream::once(async move {
        let all = body.collect().await?.to_bytes();
        Ok::<_, io::Error>(all.slice(..all.len() / 2))
    })
    .map(|r| r.map(Frame::data))
    .chain(futures_util::stream::once(async {
        Err(io::Error::other("mock: injected disconnect"))
    }));
    Response::from_parts(parts, BodyExt::boxed(StreamBody::new(stream)))
}

fn chat(state: &State, req: &Value, n: u64, cut: Option<usize>) -> Response<MockBody> {
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-gpt");
    let stream = req.get("stream").and_then(Value::as_bool) == Some(true);
    let prompt = approx_tokens(req);
    let pieces = words(&state.reply);
    let completion = pieces.len() as u64;
    let usage = json!({"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion});
    let id = format!("chatcmpl-mock-{n}");
    let created = now();
    if !stream {
        let v = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": state.reply, "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": usage, "system_fingerprint": "fp_mock"});
        return cut_body(json_response(StatusCode::OK, &v, &state.name), cut);
    }
    let include_usage = req
        .pointer("/stream_options/include_usage")
        .and_then(Value::as_bool)
        == Some(true);
    let chunk = |delta: Value, finish: Value, usage: Option<&Value>| {
        let mut c = json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if include_usage {
            c["usage"] = Value::Null;
        }
        if let Some(u) = usage {
            c["choices"] = json!([]);
            c["usage"] = u.clone();
        }
        format!("data: {c}\n\n")
    };
    let mut events = vec![chunk(
        json!({"role": "assistant", "content": "", "refusal": null}),
        Value::Null,
        None,
    )];
    for p in &pieces {
        events.push(chunk(json!({"content": p}), Value::Null, None));
    }
    events.push(chunk(json!({}), json!("stop"), None));
    if include_usage {
        events.push(chunk(json!({}), Value::Null, Some(&usage)));
    }
    events.push("data: [DONE]\n\n".to_owned());
    sse_response(state, events, cut)
}

fn embeddings(state: &State, req: &Value) -> Response<MockBody> {
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-embed");
    let dims = req
        .get("dimensions")
        .and_then(Value::as_u64)
        .unwrap_or(16)
        .clamp(1, 4096) as usize;
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().map_or_else(|| v.to_string(), ToOwned::to_owned))
            .collect(),
        _ => vec![String::new()],
    };
    let mut tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(i, text)| {
            tokens += (text.len() as u64).div_ceil(4).max(1);
            json!({"object": "embedding", "index": i, "embedding": embed(text, dims)})
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
        &state.name,
    )
}

/// `/v1/moderations`: flags every input containing the word `flagged-content` (category
/// `violence`), so tests can ask for either verdict.
fn moderations(state: &State, req: &Value) -> Response<MockBody> {
    let inputs: Vec<String> = match req.get("input") {
        Some(Value::String(s)) => vec![s.clone()],
        Some(Value::Array(a)) => a
            .iter()
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => vec![String::new()],
    };
    let results: Vec<Value> = inputs
        .iter()
        .map(|t| {
            let flagged = t.contains("flagged-content");
            json!({"flagged": flagged, "categories": {"violence": flagged, "hate": false},
                   "category_scores": {"violence": if flagged { 0.97 } else { 0.01 }, "hate": 0.0}})
        })
        .collect();
    json_response(
        StatusCode::OK,
        &json!({"id": "modr-mock", "model": "omni-moderation-latest", "results": results}),
        &state.name,
    )
}

/// A deterministic unit vector from the text's bytes (FNV-1a seeded per dimension).
fn embed(text: &str, dims: usize) -> Vec<f32> {
    let mut v: Vec<f32> = (0..dims)
        .map(|d| {
            let mut h: u64 = 0xcbf2_9ce4_8422_2325 ^ (d as u64);
            for b in text.bytes() {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
            ((h >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0) as f32
        })
        .collect();
    let norm = v
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::EPSILON);
    for x in &mut v {
        *x /= norm;
    }
    v
}

fn messages(state: &State, req: &Value, n: u64, cut: Option<usize>) -> Response<MockBody> {
    let model = req
        .get("model")
        .and_then(Value::as_str)
        .unwrap_or("mock-claude");
    let stream = req.get("stream").and_then(Value::as_bool) == Some(true);
    let input = approx_tokens(req);
    let pieces = words(&state.reply);
    let output = pieces.len() as u64;
    let id = format!("msg_mock_{n:016}");
    if !stream {
        let v = json!({"id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": state.reply}],
            "stop_reason": "end_turn", "stop_sequence": null,
            "usage": {"input_tokens": input, "output_tokens": output,
                      "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}});
        return cut_body(json_response(StatusCode::OK, &v, &state.name), cut);
    }
    let ev = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let mut events = vec![
        ev(
            "message_start",
            json!({"type": "message_start", "message": {"id": id, "type": "message", "role": "assistant",
                "model": model, "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": input, "output_tokens": 1,
                          "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}}),
        ),
        ev(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ev("ping", json!({"type": "ping"})),
    ];
    for p in &pieces {
        events.push(ev(
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}}),
        ));
    }
    events.push(ev(
        "content_block_stop",
        json!({"type": "content_block_stop", "index": 0}),
    ));
    events.push(ev(
        "message_delta",
        json!({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": null},
               "usage": {"output_tokens": output}}),
    ));
    events.push(ev("message_stop", json!({"type": "message_stop"})));
    sse_response(state, events, cut)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn embeddings_are_unit_and_deterministic() {
        let a = embed("hello", 8);
        assert_eq!(a, embed("hello", 8));
        let n: f32 = a.iter().map(|x| x * x).sum();
        assert!((n - 1.0).abs() < 1e-4);
        assert_ne!(a, embed("world", 8));
    }

    #[test]
    fn failure_header_parses() {
        assert_eq!(
            Failure::from_header("429; retry-after=3"),
            Some(Failure::status(429).retry_after("3"))
        );
        assert_eq!(Failure::from_header("reset"), Some(Failure::Reset));
        assert_eq!(
            Failure::from_header("disconnect:2"),
            Some(Failure::DisconnectAfter(2))
        );
    }
}
