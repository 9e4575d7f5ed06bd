//! # infergate-tokens
//!
//! Token counting for LLM requests with tiktoken-rs: the model's encoding, OpenAI's chat
//! framing, and a memo of message counts shared by every block of a process.
//!
//! ```
//! use infergate_core::{ApiKind, Payload};
//! use infergate_tokens::{Encoding, TokenCounter};
//!
//! let body = br#"{"model":"gpt-4o","messages":[
//!     {"role":"system","content":"You are a helpful assistant."},
//!     {"role":"user","content":"Hi"}]}"#;
//! let payload = Payload::parse(ApiKind::ChatCompletions, body).unwrap();
//!
//! // The process-wide counter: every block that counts tokens shares its memo.
//! let counter = TokenCounter::shared();
//! assert!(counter.is_shared());
//! // 7 content tokens, 2 × (3 + 1 for the role), 3 to prime the reply.
//! assert_eq!(counter.count_prompt(&payload), 18);
//!
//! // A counter with a memo of its own, and the raw count of a text.
//! let own = TokenCounter::private(1_000);
//! assert!(!own.is_shared());
//! assert_eq!(own.count(Encoding::O200kBase, "hello world"), 2);
//! assert_eq!(Encoding::for_model("gpt-4-turbo"), (Encoding::Cl100kBase, true));
//! ```
//!
//! ## The memo
//!
//! Chat clients resend the whole conversation every turn; counting it again costs
//! O(conversation) per turn. A [`TokenCounter`] keeps a bounded map from a 128-bit hash of
//! (encoding, text) to its count, so a turn costs a hash of each earlier message plus a count of
//! the new text only. Which memo a counter uses is said explicitly: [`TokenCounter::shared`] is
//! the one memo of the process ([`SHARED_MEMO_CAPACITY`] texts), so that the rate limiter and
//! the guardrail's token limit tokenise a prompt once between them; [`TokenCounter::private`]
//! makes a memo of its own, of the size given. Clones of a counter share its memo.
//!
//! ## Accuracy
//!
//! OpenAI models are counted in their own encoding (`o200k_base` for gpt-4o, gpt-4.1, gpt-5 and
//! the o-series, `cl100k_base` for gpt-4 and gpt-3.5); counts of texts match OpenAI's Python
//! `tiktoken` (the repository's test script checks parity on a corpus). Other providers' models
//! are counted with `o200k_base` as an approximation (see [`Encoding::for_model`]).

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, OnceLock};

use infergate_core::Payload;
use tiktoken_rs::CoreBPE;

mod bpe;
mod split;

/// `per_len` deterministic texts of each length in `lens` (counted in pool entries), each
/// entry drawn from `pool` by a xorshift generator started at `seed`.
#[cfg(test)]
fn random_texts(pool: &[&str], lens: &[usize], per_len: usize, seed: u64) -> Vec<String> {
    let mut out = Vec::new();
    let mut x = seed;
    for &len in lens {
        for _ in 0..per_len {
            let mut t = String::new();
            for _ in 0..len {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                t.push_str(pool[(x % pool.len() as u64) as usize]);
            }
            out.push(t);
        }
    }
    out
}

/// How many texts the process-wide memo of [`TokenCounter::shared`] remembers.
pub const SHARED_MEMO_CAPACITY: u64 = 100_000;

/// A BPE encoding.
#[non_exhaustive]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `o200k_base`: gpt-4o, gpt-4.1, gpt-5, o1/o3/o4 and later OpenAI models.
    O200kBase,
    /// `cl100k_base`: gpt-4, gpt-3.5-turbo, text-embedding-3 and ada-002.
    Cl100kBase,
}

/// A name that is not one of the [`Encoding`]s.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown encoding {name:?}; use o200k_base or cl100k_base")]
pub struct UnknownEncoding {
    name: String,
}

impl UnknownEncoding {
    /// The name that was given.
    pub fn name(&self) -> &str {
        &self.name
    }
}

impl Encoding {
    /// The encoding of a model name, and whether it is exact (`false`: another provider's model,
    /// counted with `o200k_base` as an approximation — Anthropic, Google, Meta and Mistral
    /// tokenizers differ by roughly ±20 % on English text; a rate limiter's reservation is
    /// reconciled with the provider's real usage after the response anyway).
    pub fn for_model(model: &str) -> (Self, bool) {
        let m = model
            .rsplit('/')
            .next()
            .unwrap_or(model)
            .to_ascii_lowercase();
        let m = m.strip_prefix("ft:").unwrap_or(&m);
        let o200k = [
            "gpt-4o",
            "gpt-4.1",
            "gpt-4.5",
            "gpt-5",
            "o1",
            "o3",
            "o4",
            "chatgpt-4o",
            "gpt-oss",
            "codex",
        ];
        let cl100k = [
            "gpt-4",
            "gpt-3.5",
            "text-embedding-3",
            "text-embedding-ada-002",
            "davinci-002",
            "babbage-002",
        ];
        if o200k.iter().any(|p| m.starts_with(p)) {
            (Self::O200kBase, true)
        } else if cl100k.iter().any(|p| m.starts_with(p)) {
            (Self::Cl100kBase, true)
        } else {
            (Self::O200kBase, false)
        }
    }

    /// The encoding's name, as tiktoken spells it (`o200k_base`).
    pub fn name(self) -> &'static str {
        match self {
            Self::O200kBase => "o200k_base",
            Self::Cl100kBase => "cl100k_base",
        }
    }

    /// The count-only encoder of this encoding, built once per process from tiktoken-rs's
    /// tables (whose own copy is dropped): about 5 MB instead of tiktoken-rs's ~50 MB.
    fn compact(self) -> Option<&'static bpe::CompactBpe> {
        static O200K: OnceLock<Option<bpe::CompactBpe>> = OnceLock::new();
        static CL100K: OnceLock<Option<bpe::CompactBpe>> = OnceLock::new();
        match self {
            Self::O200kBase => O200K.get_or_init(|| {
                let core = tiktoken_rs::o200k_base().ok()?;
                bpe::CompactBpe::from_core(&core, split::Split::O200k)
            }),
            Self::Cl100kBase => CL100K.get_or_init(|| {
                let core = tiktoken_rs::cl100k_base().ok()?;
                bpe::CompactBpe::from_core(&core, split::Split::Cl100k)
            }),
        }
        .as_ref()
    }

    /// tiktoken-rs's own encoder (only if the compact one could not be built).
    fn bpe(self) -> &'static CoreBPE {
        match self {
            Self::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Self::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }
}

impl fmt::Display for Encoding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for Encoding {
    type Err = UnknownEncoding;

    /// Reads the names [`Encoding::name`] writes.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "o200k_base" => Ok(Self::O200kBase),
            "cl100k_base" => Ok(Self::Cl100kBase),
            other => Err(UnknownEncoding {
                name: other.to_owned(),
            }),
        }
    }
}

/// Counts tokens, memoising per text. Clones share the memo.
///
/// Made with [`TokenCounter::shared`] (the process-wide memo) or [`TokenCounter::private`]
/// (a memo of its own).
#[derive(Clone)]
pub struct TokenCounter {
    memo: Arc<quick_cache::sync::Cache<u128, u32>>,
    shared: bool,
}

/// A memo of `capacity` counts: `quick_cache` (sharded, a read lock per lookup) rather than
/// moka, whose reads record every access (measured: a third of a prompt's counting time).
fn memo(capacity: u64) -> quick_cache::sync::Cache<u128, u32> {
    quick_cache::sync::Cache::new(usize::try_from(capacity).unwrap_or(usize::MAX))
}

impl fmt::Debug for TokenCounter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenCounter")
            .field("shared", &self.shared)
            .field("capacity", &self.memo.capacity())
            .finish_non_exhaustive()
    }
}

impl Default for TokenCounter {
    /// A private memo of [`SHARED_MEMO_CAPACITY`] texts (not the shared one: ask for
    /// [`TokenCounter::shared`] by name).
    fn default() -> Self {
        Self::private(SHARED_MEMO_CAPACITY)
    }
}

impl TokenCounter {
    /// The process-wide counter ([`SHARED_MEMO_CAPACITY`] texts): every block that counts
    /// tokens — the rate limiter, the guardrail's token limit — shares its memo, so a prompt is
    /// tokenised once per process, not once per block.
    pub fn shared() -> Self {
        static SHARED: OnceLock<TokenCounter> = OnceLock::new();
        SHARED
            .get_or_init(|| Self {
                memo: Arc::new(memo(SHARED_MEMO_CAPACITY)),
                shared: true,
            })
            .clone()
    }

    /// A counter with a memo of its own, remembering up to `capacity` texts (`0`: none), whatever
    /// the capacity.
    pub fn private(capacity: u64) -> Self {
        Self {
            memo: Arc::new(memo(capacity)),
            shared: false,
        }
    }

    /// The same as [`TokenCounter::private`].
    pub fn new(capacity: u64) -> Self {
        Self::private(capacity)
    }

    /// Whether this counter uses the process-wide memo.
    pub fn is_shared(&self) -> bool {
        self.shared
    }

    /// Loads `o200k_base`, the encoding of current OpenAI models and of every other model's
    /// approximation (about 150 ms and 5 MB once per process), so the first request does not
    /// pay. `cl100k_base` (gpt-4, gpt-3.5) loads on its first use instead (another ~100 ms,
    /// once). [`TokenCounter::warm_up_all`] loads both.
    pub fn warm_up() {
        let _ = Encoding::O200kBase.compact();
    }

    /// Loads both encodings now.
    pub fn warm_up_all() {
        let _ = Encoding::O200kBase.compact();
        let _ = Encoding::Cl100kBase.compact();
    }

    /// Tokens in `text`, special-token text counted as ordinary text (as the APIs do for user
    /// content).
    pub fn count_uncached(encoding: Encoding, text: &str) -> u64 {
        match encoding.compact() {
            Some(c) => c.count(text),
            None => encoding.bpe().encode_ordinary(text).len() as u64,
        }
    }

    /// Tokens in `text`, memoised.
    pub fn count(&self, encoding: Encoding, text: &str) -> u64 {
        if text.is_empty() {
            return 0;
        }
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&[encoding as u8]);
        h.update(text.as_bytes());
        let key = h.digest128();
        if let Some(n) = self.memo.get(&key) {
            return u64::from(n);
        }
        let n = Self::count_uncached(encoding, text);
        self.memo.insert(key, u32::try_from(n).unwrap_or(u32::MAX));
        n
    }

    /// Prompt tokens of a request, as the provider will count them: every text (content, tool
    /// arguments, system prompt, embeddings input) plus the chat framing OpenAI documents
    /// (3 tokens per message, 1 per name, 3 to prime the reply).
    pub fn count_prompt(&self, payload: &Payload) -> u64 {
        let (enc, _) = Encoding::for_model(payload.model().unwrap_or(""));
        let mut total: u64 = 0;
        payload.for_each_text(&mut |t| total = total.saturating_add(self.count(enc, t.text)));
        match payload {
            Payload::Chat(r) => {
                for m in &r.messages {
                    total = total.saturating_add(3 + self.count(enc, &m.role));
                    if let Some(serde_json::Value::String(name)) = m.extra.get("name") {
                        total = total.saturating_add(1 + self.count(enc, name));
                    }
                }
                total.saturating_add(3)
            }
            Payload::Messages(r) => {
                let framing = (r.messages.len() as u64).saturating_mul(3);
                total.saturating_add(framing).saturating_add(3)
            }
            Payload::Responses(_) => total.saturating_add(3),
            _ => total,
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use infergate_core::ApiKind;

    #[test]
    fn models_map_to_encodings() {
        assert_eq!(
            Encoding::for_model("gpt-4o-mini"),
            (Encoding::O200kBase, true)
        );
        assert_eq!(
            Encoding::for_model("openai/gpt-5"),
            (Encoding::O200kBase, true)
        );
        assert_eq!(Encoding::for_model("o3-mini"), (Encoding::O200kBase, true));
        assert_eq!(
            Encoding::for_model("gpt-4-turbo"),
            (Encoding::Cl100kBase, true)
        );
        assert_eq!(
            Encoding::for_model("gpt-3.5-turbo"),
            (Encoding::Cl100kBase, true)
        );
        assert_eq!(
            Encoding::for_model("claude-sonnet-4-5"),
            (Encoding::O200kBase, false)
        );
    }

    #[test]
    fn encoding_names_round_trip() {
        for e in [Encoding::O200kBase, Encoding::Cl100kBase] {
            assert_eq!(e.name().parse::<Encoding>(), Ok(e));
            assert_eq!(e.to_string(), e.name());
        }
        let err = "p50k_base".parse::<Encoding>().unwrap_err();
        assert_eq!(err.name(), "p50k_base");
    }

    #[test]
    fn counts_known_strings() {
        // Reference values from OpenAI's tiktoken.
        assert_eq!(
            TokenCounter::count_uncached(Encoding::Cl100kBase, "hello world"),
            2
        );
        assert_eq!(
            TokenCounter::count_uncached(Encoding::O200kBase, "hello world"),
            2
        );
        assert_eq!(
            TokenCounter::count_uncached(Encoding::Cl100kBase, "<|endoftext|>"),
            7,
            "special tokens in user text are ordinary text"
        );
    }

    #[test]
    fn chat_prompt_follows_openai_framing() {
        // The OpenAI cookbook's example: 2 messages "You are a helpful assistant." + "Hi"
        let p = Payload::parse(
            ApiKind::ChatCompletions,
            br#"{"model":"gpt-4o","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Hi"}]}"#,
        )
        .unwrap();
        let c = TokenCounter::private(100);
        // 6 + 1 content tokens, 2 × (3 + 1 role), 3 priming.
        assert_eq!(c.count_prompt(&p), 7 + 8 + 3);
        // Memoised: same answer.
        assert_eq!(c.count_prompt(&p), 18);
    }

    #[test]
    fn shared_and_private_memos_are_chosen_by_name() {
        let a = TokenCounter::shared();
        let b = TokenCounter::shared();
        assert!(a.is_shared() && b.is_shared());
        // Clones of the shared counter share one memo: a count through one is seen by the other.
        let text = "a text only this test counts, 7f3c9e";
        a.count(Encoding::O200kBase, text);
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        h.update(&[Encoding::O200kBase as u8]);
        h.update(text.as_bytes());
        assert!(b.memo.get(&h.digest128()).is_some());
        // A private memo of the shared size is still private.
        let p = TokenCounter::private(SHARED_MEMO_CAPACITY);
        assert!(!p.is_shared());
        assert!(p.memo.get(&h.digest128()).is_none());
        assert!(!TokenCounter::default().is_shared());
    }
}
