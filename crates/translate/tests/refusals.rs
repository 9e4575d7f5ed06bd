//! A refusal names the field and the protocol of the translation that could not carry it.

#![allow(clippy::unwrap_used, missing_docs)]

use infergate_translate::{Error, Options, Protocol, translate_request};

#[test]
fn a_refusal_while_decoding_names_the_target_of_the_translation() {
    let body = br#"{"model":"m","messages":[{"role":"user","name":"bob","content":"hi"}]}"#;
    for to in [Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini] {
        let e = translate_request(Protocol::OpenAiChat, to, body, &Options::default()).unwrap_err();
        match &e {
            Error::Unsupported { param, target, .. } => {
                assert_eq!(param, "messages[0].name");
                assert_eq!(*target, to);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(e.status(), 400);
        assert!(e.to_string().contains(to.as_str()), "{e}");
    }
}

#[test]
fn tool_arguments_no_json_value_can_hold_are_an_upstream_error_not_a_panic() {
    use infergate_translate::{Error, Options, Protocol, StreamTranslator, translate_response};
    let opts = Options::default();
    for args in [r#"{\"n\":1e999}"#, r#"{\"s\":\"\\ud800\"}"#] {
        let answer = format!(
            r#"{{"id":"c","object":"chat.completion","created":1,"model":"m","choices":[{{"index":0,"message":{{"role":"assistant","content":null,"tool_calls":[{{"id":"call_1","type":"function","function":{{"name":"f","arguments":"{args}"}}}}]}},"finish_reason":"tool_calls"}}],"usage":{{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}}}"#
        );
        for to in [Protocol::Anthropic, Protocol::Bedrock, Protocol::Gemini] {
            let got = translate_response(Protocol::OpenAiChat, to, answer.as_bytes(), &opts);
            assert!(
                matches!(got, Err(Error::Upstream(_))),
                "{to} {args}: {got:?}"
            );
        }
        // The same arguments streamed to Gemini (sent whole when the call ends).
        let stream = format!(
            "data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{\"role\":\"assistant\",\"tool_calls\":[{{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{{\"name\":\"f\",\"arguments\":\"{args}\"}}}}]}},\"finish_reason\":null}}]}}\n\n\
             data: {{\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{{\"index\":0,\"delta\":{{}},\"finish_reason\":\"tool_calls\"}}]}}\n\ndata: [DONE]\n\n"
        );
        let mut t = StreamTranslator::new(Protocol::OpenAiChat, Protocol::Gemini, &opts);
        let mut out = Vec::new();
        let fed = t
            .feed(stream.as_bytes(), &mut out)
            .and_then(|()| t.finish(&mut out));
        assert!(fed.is_err(), "{args}: {}", String::from_utf8_lossy(&out));
    }
}
