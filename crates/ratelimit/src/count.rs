//! Token counting with tiktoken-rs, memoised per message.
//!
//! Chat clients resend the whole conversation every turn; counting it again costs
//! O(conversation) per turn. The [`TokenCounter`] keeps a bounded map from a 128-bit hash of
//! (encoding, text) to its count, so a turn costs a hash of each earlier message plus a count of
//! the new text only.

use infergate_core::Payload;
use tiktoken_rs::CoreBPE;

/// A BPE encoding.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Encoding {
    /// `o200k_base`: gpt-4o, gpt-4.1, gpt-5, o1/o3/o4 and later OpenAI models.
    O200kBase,
    /// `cl100k_base`: gpt-4, gpt-3.5-turbo, text-embedding-3 and ada-002.
    Cl100kBase,
}

impl Encoding {
    /// The encoding of a model name, and whether it is exact (`false`: another provider's model,
    /// counted with `o200k_base` as an approximation — Anthropic, Google, Meta and Mistral
    /// tokenizers differ by roughly ±20 % on English text; the reservation is reconciled with
    /// the provider's real usage after the response anyway).
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

    fn bpe(self) -> &'static CoreBPE {
        match self {
            Self::O200kBase => tiktoken_rs::o200k_base_singleton(),
            Self::Cl100kBase => tiktoken_rs::cl100k_base_singleton(),
        }
    }
}

/// Counts tokens, memoising per text.
#[derive(Debug, Clone)]
pub struct TokenCounter {
    memo: moka::sync::Cache<u128, u32>,
}

impl Default for TokenCounter {
    fn default() -> Self {
        Self::new(100_000)
    }
}

impl TokenCounter {
    /// A counter remembering up to `capacity` texts.
    pub fn new(capacity: u64) -> Self {
        Self {
            memo: moka::sync::Cache::new(capacity),
        }
    }

    /// The process-wide counter (100,000 texts): every block that counts tokens — the rate
    /// limiter, the guardrail's token limit — shares its memo, so a prompt is tokenised once
    /// per process, not once per block. Clones share the memo.
    pub fn shared() -> Self {
        static SHARED: std::sync::OnceLock<TokenCounter> = std::sync::OnceLock::new();
        SHARED.get_or_init(TokenCounter::default).clone()
    }

    /// Loads both encodings (about 100 ms once per process), so the first request does not pay.
    pub fn warm_up() {
        let _ = Encoding::O200kBase.bpe();
        let _ = Encoding::Cl100kBase.bpe();
    }

    /// Tokens in `text`, special-token text counted as ordinary text (as the APIs do for user
    /// content).
    pub fn count_uncached(encoding: Encoding, text: &str) -> u64 {
        encoding.bpe().encode_ordinary(text).len() as u64
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
        let c = TokenCounter::default();
        // 6 + 1 content tokens, 2 × (3 + 1 role), 3 priming.
        assert_eq!(c.count_prompt(&p), 7 + 8 + 3);
        // Memoised: same answer.
        assert_eq!(c.count_prompt(&p), 18);
    }
}
