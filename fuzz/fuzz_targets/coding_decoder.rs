//! The content decoder never panics, never produces more than its bound, and gives the same
//! bytes (or the same verdict) whatever the chunking of its input.
#![no_main]

use bytes::BytesMut;
use infergate_core::coding::{ContentCoding, Decoder};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&sel, rest)) = data.split_first() else {
        return;
    };
    let coding = [
        ContentCoding::Gzip,
        ContentCoding::Deflate,
        ContentCoding::Br,
        ContentCoding::Zstd,
    ][usize::from(sel & 3)];
    let split = usize::from(sel >> 2).min(rest.len());
    let limit = 1 << 20;
    let whole = Decoder::decode_all(coding, rest, limit);
    // The same input in two chunks.
    let Some(mut d) = Decoder::new(coding) else {
        return;
    };
    let mut out = BytesMut::new();
    let chunked = d
        .decode_chunk(&rest[..split], &mut out, limit)
        .and_then(|()| d.decode_chunk(&rest[split..], &mut out, limit))
        .and_then(|()| d.finish());
    if let (Ok(Some(w)), Ok(())) = (&whole, &chunked) {
        assert_eq!(&w[..], &out[..]);
    }
    if let Ok(Some(w)) = &whole {
        assert!(w.len() <= limit);
    }
});
