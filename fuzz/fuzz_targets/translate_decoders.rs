//! Every decoder of `infergate-translate` on hostile bytes: requests, answers and errors of each
//! protocol, translated to every other; the SSE stream translators of each protocol to every
//! client API, fed in two parts. Nothing panics; a translated request or answer is valid JSON;
//! a refusal names a status of 400 or 502; the fast Chat Completions request decoder agrees with
//! the general one.
#![no_main]

use infergate_translate::{
    Options, Protocol, StreamTranslator, decode_error, translate_request, translate_response,
};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let from = Protocol::ALL[usize::from(data[0]) % Protocol::ALL.len()];
    let split = usize::from(data[1]);
    let input = &data[2..];
    let split = split.min(input.len());
    let strict = Options::default();
    let mut lossy = Options::default();
    lossy.lossy_all = true;
    for to in Protocol::ALL {
        for opts in [&strict, &lossy] {
            match translate_request(from, to, input, opts) {
                Ok(out) => {
                    // Bedrock and Gemini bodies are JSON too (the model is in the URL).
                    serde_json::from_slice::<serde_json::Value>(&out)
                        .expect("a translated request is JSON");
                }
                Err(e) => assert!(matches!(e.status(), 400 | 502)),
            }
            match translate_response(from, to, input, opts) {
                Ok(out) => {
                    serde_json::from_slice::<serde_json::Value>(&out)
                        .expect("a translated answer is JSON");
                }
                Err(e) => assert!(matches!(e.status(), 400 | 502)),
            }
        }
        if from != Protocol::Bedrock {
            // Bedrock streams are the event-stream target's.
            let mut t = StreamTranslator::new(from, to, &lossy);
            let mut out = Vec::new();
            if t.feed(&input[..split], &mut out).is_ok() && t.feed(&input[split..], &mut out).is_ok()
            {
                let _ = t.finish(&mut out);
            }
        }
    }
    let _ = decode_error(from, 500, input, Some("ThrottlingException"));
    if from == Protocol::OpenAiChat {
        // The fast decoder (the borrowed scanner, then serde's typed structs) reads whatever it
        // accepts exactly as the general one does.
        if let Ok(fast) = infergate_translate::decode_request(from, input, &strict) {
            assert_eq!(
                Ok(fast),
                infergate_translate::openai::decode_request_general(input, &strict)
            );
        }
    }
});
