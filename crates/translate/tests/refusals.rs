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
