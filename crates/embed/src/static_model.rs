//! A static embedder: one vector per vocabulary token, distilled from all-MiniLM-L6-v2 (the
//! Model2Vec method), summed over a text's WordPiece tokens — microseconds per text, no model
//! run.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use async_trait::async_trait;
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use crate::{EmbedError, Embedder, normalize};

/// The files of a static model directory.
pub const STATIC_VOCAB_FILE: &str = "vocab.txt";
/// The vectors: `vocab × dim` little-endian `f32`, row by row.
pub const STATIC_VECTORS_FILE: &str = "vectors.f32";
/// The model's description (`dim`, where it came from, how it was made).
pub const STATIC_CONFIG_FILE: &str = "config.json";

/// Longest word the WordPiece tokenizer splits (longer ones are one unknown token), as BERT's.
const MAX_WORD_CHARS: usize = 100;
/// Words read per text (a prompt of 100 KB costs no more than its first 4,096 words).
const MAX_WORDS: usize = 4096;
/// Bytes read per text (the first 4,096 words of ordinary text fit in far less).
const MAX_BYTES: usize = 64 * 1024;

/// Static token vectors distilled from all-MiniLM-L6-v2 (see `scripts/distill_static.sh`):
/// a text's vector is the mean of its WordPiece tokens' vectors, L2-normalised. Synchronous
/// and allocation-light ([`StaticEmbedder::embed_one`]), so request-path callers need no
/// `await`.
#[derive(Clone)]
pub struct StaticEmbedder {
    inner: Arc<Inner>,
}

struct Inner {
    /// Whole-word pieces.
    words: HashMap<Box<str>, u32>,
    /// Continuation pieces (`##ing` stored as `ing`).
    tails: HashMap<Box<str>, u32>,
    unk: Option<u32>,
    /// The longest piece, in bytes: the greedy match starts there, not at the word's end.
    longest: usize,
    vectors: Vec<f32>,
    dim: usize,
    name: String,
}

impl std::fmt::Debug for StaticEmbedder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StaticEmbedder")
            .field("name", &self.inner.name)
            .field("dim", &self.inner.dim)
            .field("vocab", &(self.inner.words.len() + self.inner.tails.len()))
            .finish()
    }
}

fn err(dir: &Path, what: impl std::fmt::Display) -> EmbedError {
    EmbedError::Model(format!("{}: {what}", dir.display()))
}

impl StaticEmbedder {
    /// Loads a model directory written by [`StaticEmbedder::write`] (`vocab.txt`,
    /// `vectors.f32`, `config.json`).
    pub fn load(dir: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let dir = dir.as_ref();
        let config: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join(STATIC_CONFIG_FILE)).map_err(|e| err(dir, e))?,
        )
        .map_err(|e| err(dir, e))?;
        let dim = config
            .get("dim")
            .and_then(serde_json::Value::as_u64)
            .and_then(|d| usize::try_from(d).ok())
            .filter(|d| *d > 0 && *d <= 4096)
            .ok_or_else(|| err(dir, "config.json has no valid `dim`"))?;
        let name = config
            .get("name")
            .and_then(serde_json::Value::as_str)
            .unwrap_or("static")
            .to_owned();
        let vocab =
            std::fs::read_to_string(dir.join(STATIC_VOCAB_FILE)).map_err(|e| err(dir, e))?;
        let tokens: Vec<&str> = vocab.lines().collect();
        let raw = std::fs::read(dir.join(STATIC_VECTORS_FILE)).map_err(|e| err(dir, e))?;
        if raw.len() != tokens.len().saturating_mul(dim).saturating_mul(4) {
            return Err(err(
                dir,
                format!(
                    "vectors.f32 holds {} bytes, not {} tokens × {dim} × 4",
                    raw.len(),
                    tokens.len()
                ),
            ));
        }
        let vectors = raw
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        Ok(Self::from_parts(&tokens, vectors, dim, name))
    }

    /// A model from its vocabulary (token `i` is line `i`; continuation pieces start with
    /// `##`) and its `vocab × dim` vectors.
    pub fn from_parts(tokens: &[&str], vectors: Vec<f32>, dim: usize, name: String) -> Self {
        let mut words = HashMap::with_capacity(tokens.len());
        let mut tails = HashMap::new();
        let mut unk = None;
        let mut longest = 1;
        for (i, t) in tokens.iter().enumerate() {
            longest = longest.max(t.trim_start_matches("##").len());
            let Ok(id) = u32::try_from(i) else { break };
            if *t == "[UNK]" {
                unk = Some(id);
            }
            match t.strip_prefix("##") {
                Some(tail) if !tail.is_empty() => {
                    tails.entry(tail.into()).or_insert(id);
                }
                _ => {
                    words.entry((*t).into()).or_insert(id);
                }
            }
        }
        Self {
            inner: Arc::new(Inner {
                words,
                tails,
                unk,
                longest,
                vectors,
                dim,
                name,
            }),
        }
    }

    /// Writes a model directory: `vocab.txt`, `vectors.f32` and `config.json` (`config` is
    /// written as given, with `dim` set).
    pub fn write(
        dir: impl AsRef<Path>,
        tokens: &[String],
        vectors: &[f32],
        dim: usize,
        mut config: serde_json::Value,
    ) -> std::io::Result<()> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir)?;
        std::fs::write(dir.join(STATIC_VOCAB_FILE), tokens.join("\n") + "\n")?;
        let mut raw = Vec::with_capacity(vectors.len() * 4);
        for v in vectors {
            raw.extend_from_slice(&v.to_le_bytes());
        }
        std::fs::write(dir.join(STATIC_VECTORS_FILE), raw)?;
        config["dim"] = serde_json::json!(dim);
        std::fs::write(
            dir.join(STATIC_CONFIG_FILE),
            serde_json::to_vec_pretty(&config).map_err(std::io::Error::other)?,
        )
    }

    /// The WordPiece token ids of `text`, as BERT's uncased tokenizer splits it (lowercased,
    /// accents stripped, split at whitespace and punctuation, then greedy longest pieces).
    pub fn token_ids(&self, text: &str) -> Vec<u32> {
        let mut ids = Vec::new();
        self.each_token(text, |id| ids.push(id));
        ids
    }

    fn each_token(&self, text: &str, mut f: impl FnMut(u32)) {
        let mut end = text.len().min(MAX_BYTES);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        let lowered = lower(&text[..end]);
        let mut words = 0usize;
        let mut word = |w: &str, f: &mut dyn FnMut(u32)| {
            if words < MAX_WORDS && !w.is_empty() {
                self.word(w, f);
                words += 1;
            }
            words < MAX_WORDS
        };
        'pieces: for piece in lowered.split(char::is_whitespace) {
            let mut start = 0;
            for (i, c) in piece.char_indices() {
                if is_punct(c) || is_cjk(c) {
                    let end = i + c.len_utf8();
                    if !word(&piece[start..i], &mut f) || !word(&piece[i..end], &mut f) {
                        break 'pieces;
                    }
                    start = end;
                }
            }
            if !word(&piece[start..], &mut f) {
                break;
            }
        }
    }

    /// One word's pieces: greedy longest match from the left; a word with a part no piece
    /// covers is one unknown token.
    fn word(&self, w: &str, f: &mut dyn FnMut(u32)) {
        if w.is_empty() {
            return;
        }
        let inner = &self.inner;
        if w.chars().count() > MAX_WORD_CHARS {
            if let Some(u) = inner.unk {
                f(u);
            }
            return;
        }
        let mut pieces: [u32; MAX_WORD_CHARS] = [0; MAX_WORD_CHARS];
        let mut n = 0usize;
        let mut start = 0usize;
        while start < w.len() {
            let map = if start == 0 {
                &inner.words
            } else {
                &inner.tails
            };
            let mut end = w.len().min(start.saturating_add(inner.longest));
            let mut found = None;
            while end > start {
                if w.is_char_boundary(end)
                    && let Some(id) = map.get(&w[start..end])
                {
                    found = Some(*id);
                    break;
                }
                end -= 1;
            }
            match found {
                Some(id) if n < pieces.len() => {
                    pieces[n] = id;
                    n += 1;
                    start = end;
                }
                _ => {
                    if let Some(u) = inner.unk {
                        f(u);
                    }
                    return;
                }
            }
        }
        for id in &pieces[..n] {
            f(*id);
        }
    }

    /// The vector of one text (all zeros for a text with no known token).
    pub fn embed_one(&self, text: &str) -> Vec<f32> {
        let dim = self.inner.dim;
        let mut out = vec![0.0f32; dim];
        let vectors = &self.inner.vectors;
        self.each_token(text, |id| {
            let at = id as usize * dim;
            if let Some(row) = vectors.get(at..at + dim) {
                for (o, x) in out.iter_mut().zip(row) {
                    *o += x;
                }
            }
        });
        normalize(&mut out);
        out
    }
}

/// Lowercased, accents stripped (BERT uncased's normaliser), control and format characters
/// (zero-width spaces and joiners, the soft hyphen, direction marks, the byte-order mark)
/// dropped, other whitespace kept.
fn lower(text: &str) -> std::borrow::Cow<'_, str> {
    let drop = |c: char| (c.is_control() && !c.is_whitespace()) || is_format(c) || c == '\u{fffd}';
    if text.is_ascii() {
        if text
            .bytes()
            .any(|b| b.is_ascii_uppercase() || drop(char::from(b)))
        {
            return std::borrow::Cow::Owned(
                text.chars()
                    .filter(|c| !drop(*c))
                    .map(|c| c.to_ascii_lowercase())
                    .collect(),
            );
        }
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len());
    for c in text
        .chars()
        .filter(|c| !drop(*c))
        .flat_map(char::to_lowercase)
        .nfd()
    {
        if !is_combining_mark(c) {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Unicode format characters (general category Cf) that text uses in practice.
fn is_format(c: char) -> bool {
    matches!(c as u32,
        0x00AD | 0x061C | 0x180E | 0x200B..=0x200F | 0x202A..=0x202E | 0x2060..=0x2064
        | 0x2066..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB)
}

/// BERT's punctuation: ASCII symbols and Unicode punctuation blocks.
fn is_punct(c: char) -> bool {
    c.is_ascii_punctuation()
        || matches!(c as u32,
            0x00A1 | 0x00A7 | 0x00AB | 0x00B6 | 0x00B7 | 0x00BB | 0x00BF | 0x037E | 0x0387
            | 0x055A..=0x055F | 0x0589 | 0x05BE | 0x05C0 | 0x05C3 | 0x05F3 | 0x05F4
            | 0x060C | 0x060D | 0x061B | 0x061E | 0x061F | 0x066A..=0x066D | 0x06D4
            | 0x0964 | 0x0965 | 0x0970 | 0x0E4F | 0x0E5A | 0x0E5B
            | 0x2010..=0x2027 | 0x2030..=0x2043 | 0x2045..=0x2051 | 0x2053..=0x205E
            | 0x2E00..=0x2E7F | 0x3001..=0x3003 | 0x3008..=0x3011 | 0x3014..=0x301F
            | 0x30FB | 0xFE10..=0xFE19 | 0xFE30..=0xFE4F | 0xFE50..=0xFE6B
            | 0xFF01..=0xFF03 | 0xFF05..=0xFF0A | 0xFF0C..=0xFF0F | 0xFF1A | 0xFF1B
            | 0xFF1F | 0xFF20 | 0xFF3B..=0xFF3D | 0xFF3F | 0xFF5B | 0xFF5D | 0xFF5F..=0xFF65)
}

/// CJK ideographs are tokens of their own (BERT's `handle_chinese_chars`).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x4E00..=0x9FFF | 0x3400..=0x4DBF | 0x20000..=0x2A6DF | 0x2A700..=0x2B73F
        | 0x2B740..=0x2B81F | 0x2B820..=0x2CEAF | 0xF900..=0xFAFF | 0x2F800..=0x2FA1F)
}

#[async_trait]
impl Embedder for StaticEmbedder {
    async fn embed(&self, texts: &[String]) -> Result<Vec<Vec<f32>>, EmbedError> {
        Ok(texts.iter().map(|t| self.embed_one(t)).collect())
    }

    fn embed_dense(&self, text: &str) -> Option<Vec<f32>> {
        Some(self.embed_one(text))
    }

    fn dim(&self) -> usize {
        self.inner.dim
    }

    fn name(&self) -> &str {
        &self.inner.name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> StaticEmbedder {
        let tokens = [
            "[PAD]", "[UNK]", "book", "a", "flight", "##s", "play", "##ing", ",", "cafe", "!",
        ];
        let dim = 2;
        let mut v = Vec::new();
        for i in 0..tokens.len() {
            v.extend([i as f32, 1.0]);
        }
        StaticEmbedder::from_parts(&tokens, v, dim, "tiny".into())
    }

    #[test]
    fn splits_like_bert_uncased() {
        let e = tiny();
        assert_eq!(
            e.token_ids("Book a FLIGHTS, playing!"),
            vec![2, 3, 4, 5, 8, 6, 7, 10]
        );
        assert_eq!(e.token_ids("Café"), vec![9]);
        assert_eq!(e.token_ids("flightx"), vec![1]);
        // Zero-width characters and control bytes are dropped, not word breaks.
        assert_eq!(e.token_ids("fli\u{200b}ght"), vec![4]);
        assert_eq!(e.token_ids("fli\u{0}ght"), vec![4]);
        assert_eq!(e.token_ids("Fli\u{0}ght café"), vec![4, 9]);
        assert_eq!(e.token_ids(""), Vec::<u32>::new());
    }

    #[test]
    fn hostile_input_is_bounded() {
        let e = tiny();
        let commas = "a,".repeat(200_000);
        let ids = e.token_ids(&commas);
        assert!(ids.len() <= MAX_WORDS, "{}", ids.len());
        let long_word = "b".repeat(99);
        assert_eq!(e.token_ids(&long_word), vec![1]);
    }

    #[test]
    fn a_vector_is_the_normalised_sum() {
        let e = tiny();
        let v = e.embed_one("book");
        let n = (4.0f32 + 1.0).sqrt();
        assert!((v[0] - 2.0 / n).abs() < 1e-6 && (v[1] - 1.0 / n).abs() < 1e-6);
        assert_eq!(e.embed_one("   "), vec![0.0, 0.0]);
    }
}
