//! Counts tokens of texts, one JSON string per input line, with tiktoken-rs: prints one count per
//! line. `count_tokens o200k_base < texts.jsonl`. Used by the parity test against OpenAI's Python
//! `tiktoken` (tests/python/test_tiktoken_parity.py).

use std::io::{BufRead, Write};

use infergate_ratelimit::{Encoding, TokenCounter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let enc = match std::env::args().nth(1).as_deref() {
        Some("cl100k_base") => Encoding::Cl100kBase,
        Some("o200k_base") => Encoding::O200kBase,
        other => {
            return Err(
                format!("unknown encoding {other:?}; use o200k_base or cl100k_base").into(),
            );
        }
    };
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for line in stdin.lock().lines() {
        let text: String = serde_json::from_str(&line?)?;
        writeln!(out, "{}", TokenCounter::count_uncached(enc, &text))?;
    }
    Ok(())
}
