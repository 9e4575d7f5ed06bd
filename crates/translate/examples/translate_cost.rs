//! Runs one translation of the benchmarks' typical chat request and its answer `N` times, for
//! counting instructions: wall time on a shared 2-core VM moves by ±50 % between runs, an
//! instruction count under cachegrind by well under 1 %.
//!
//! ```text
//! cargo build --release -p infergate-translate --example translate_cost
//! for n in 0 1000; do valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \
//!   target/release/examples/translate_cost both anthropic $n 2>&1 | grep 'I *refs'; done
//! ```
//! The difference of the two counts over 1000 is the instructions per translation. `WHAT` is
//! `both` (request and answer, as the `request_and_answer` row), `decode`, `encode` or
//! `answer`; `TARGET` is `anthropic`, `bedrock` or `gemini`.
#![allow(missing_docs)]

#[path = "../benches/common/mod.rs"]
mod common;

use std::hint::black_box;

use common::{ANTHROPIC_ANSWER, REQUEST};
use infergate_translate::{
    Options, Protocol, decode_request, encode_request, translate_request, translate_response,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (Some(what), Some(target), Some(n)) = (args.first(), args.get(1), args.get(2)) else {
        return Err(
            "usage: translate_cost both|decode|encode|answer anthropic|bedrock|gemini N".into(),
        );
    };
    let n: usize = n.parse()?;
    let to = match target.as_str() {
        "anthropic" => Protocol::Anthropic,
        "bedrock" => Protocol::Bedrock,
        "gemini" => Protocol::Gemini,
        other => return Err(format!("unknown target {other}").into()),
    };
    let opts = Options::default();
    let answer = translate_response(Protocol::Anthropic, to, ANTHROPIC_ANSWER, &opts)?;
    let decoded = decode_request(Protocol::OpenAiChat, REQUEST, &opts)?;
    for _ in 0..n {
        match what.as_str() {
            "both" => {
                let req = translate_request(Protocol::OpenAiChat, to, black_box(REQUEST), &opts)?;
                let ans = translate_response(to, Protocol::OpenAiChat, black_box(&answer), &opts)?;
                black_box((req, ans));
            }
            "decode" => drop(black_box(decode_request(
                Protocol::OpenAiChat,
                black_box(REQUEST),
                &opts,
            )?)),
            "encode" => drop(black_box(encode_request(to, black_box(&decoded), &opts)?)),
            "answer" => drop(black_box(translate_response(
                to,
                Protocol::OpenAiChat,
                black_box(&answer),
                &opts,
            )?)),
            other => return Err(format!("unknown mode {other}").into()),
        }
    }
    Ok(())
}
