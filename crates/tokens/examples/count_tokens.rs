//! Counts tokens of texts, one JSON string per input line, with tiktoken-rs: prints one count per
//! line. `count_tokens o200k_base < texts.jsonl`. Used by the parity test against OpenAI's Python
//! `tiktoken` (tests/python/test_tiktoken_parity.py).

use std::io::{BufRead, Write};

use infergate_tokens::{Encoding, TokenCounter};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let enc: Encoding = std::env::args().nth(1).unwrap_or_default().parse()?;
    let stdin = std::io::stdin();
    let mut out = std::io::BufWriter::new(std::io::stdout());
    for line in stdin.lock().lines() {
        let text: String = serde_json::from_str(&line?)?;
        writeln!(out, "{}", TokenCounter::count_uncached(enc, &text))?;
    }
    Ok(())
}
