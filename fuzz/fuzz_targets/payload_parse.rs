//! The payload parser never panics on any bytes, for any API; what it accepts re-serialises to
//! something it parses again to the same payload, and the accessors never panic.
#![no_main]

use infergate_core::payload::{ApiKind, Payload};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for api in [
        ApiKind::ChatCompletions,
        ApiKind::Embeddings,
        ApiKind::Responses,
        ApiKind::AnthropicMessages,
        ApiKind::Other,
    ] {
        let Ok(mut p) = Payload::parse(api, data) else {
            continue;
        };
        let _ = (p.model(), p.is_stream(), p.max_output_tokens(), p.user(), p.last_user_text());
        let mut n = 0usize;
        p.for_each_text(&mut |t| n += t.text.len());
        let bytes = p.to_bytes().expect("a parsed payload serialises");
        let again = Payload::parse(api, &bytes).expect("a serialised payload parses");
        assert_eq!(again, p);
        p.for_each_text_mut(&mut |_, _, t| t.push('x'));
        p.ensure_stream_usage();
        let _ = p.to_bytes();
    }
});
