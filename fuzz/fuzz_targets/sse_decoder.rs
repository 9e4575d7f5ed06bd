//! The SSE decoder never panics, and in any chunking gives the same events whose raw bytes
//! (plus what is left over) are the input exactly.
#![no_main]

use infergate_core::sse::{SseDecoder, SseEvent};
use libfuzzer_sys::fuzz_target;

fn decode(parts: &[&[u8]]) -> (Vec<SseEvent>, Vec<u8>) {
    let mut dec = SseDecoder::with_max_event_size(1 << 16);
    let mut events = Vec::new();
    for p in parts {
        if dec.decode(p, &mut events).is_err() {
            return (events, b"<too large>".to_vec());
        }
    }
    let rest = match dec.finish(&mut events) {
        Ok(()) => Vec::new(),
        Err(_) => dec.take_remaining().to_vec(),
    };
    (events, rest)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let split = usize::from(data[0]) % data.len();
    let input = &data[1..];
    let split = split.min(input.len());
    let (whole, rest) = decode(&[input]);
    let (parts, rest2) = decode(&[&input[..split], &input[split..]]);
    if rest == b"<too large>" || rest2 == b"<too large>" {
        return;
    }
    assert_eq!(whole, parts);
    assert_eq!(rest, rest2);
    let mut again: Vec<u8> = whole.iter().flat_map(|e| e.to_bytes().to_vec()).collect();
    again.extend_from_slice(&rest);
    assert_eq!(again, input);
    for e in &whole {
        let _ = infergate_core::sse::parse_event(infergate_core::ApiKind::AnthropicMessages, e);
        let _ = infergate_core::sse::parse_event(infergate_core::ApiKind::ChatCompletions, e);
        let _ = e.to_canonical_bytes();
    }
});
