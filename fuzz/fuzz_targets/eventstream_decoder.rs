//! The AWS event-stream decoder never panics; in any split it yields the same messages and the
//! same error; a decoded message re-encodes to the bytes it came from; and the Bedrock stream
//! translator to every client API never panics on what the decoder lets through.
#![no_main]

use infergate_translate::{
    Options, Protocol, StreamTranslator,
    eventstream::{Decoder, EventStreamError, Message, encode},
};
use libfuzzer_sys::fuzz_target;

fn decode(parts: &[&[u8]]) -> (Vec<Message>, Option<EventStreamError>) {
    let mut dec = Decoder::with_max_message_len(1 << 16);
    let mut out = Vec::new();
    for p in parts {
        if let Err(e) = dec.feed(p, &mut out) {
            return (out, Some(e));
        }
    }
    let err = dec.finish().err();
    (out, err)
}

fuzz_target!(|data: &[u8]| {
    if data.is_empty() {
        return;
    }
    let input = &data[1..];
    let split = usize::from(data[0]).min(input.len());
    let (whole, err) = decode(&[input]);
    let (parts, err2) = decode(&[&input[..split], &input[split..]]);
    assert_eq!(whole, parts, "the split changed the messages");
    // A cut stream reports how much is left over, which depends only on where it was cut.
    assert_eq!(
        err.is_some(),
        err2.is_some(),
        "the split changed the outcome"
    );
    let mut wire = Vec::new();
    for m in &whole {
        encode(m, &mut wire).expect("a decoded message encodes");
    }
    assert_eq!(
        &wire[..],
        &input[..wire.len()],
        "re-encoding gives the bytes back"
    );
    for to in Protocol::ALL {
        let mut t = StreamTranslator::new(Protocol::Bedrock, to, &Options::default());
        let mut out = Vec::new();
        if t.feed(&input[..split], &mut out).is_ok() && t.feed(&input[split..], &mut out).is_ok() {
            let _ = t.finish(&mut out);
        }
    }
});
