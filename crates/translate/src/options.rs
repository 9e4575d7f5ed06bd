//! What a caller allows and bounds.

/// Options of a translation. The default is strict: every field the target cannot represent is
/// refused ([`crate::Error::Unsupported`]).
///
/// ```
/// use infergate_translate::Options;
///
/// // Drop `logit_bias` and `seed` when the target has no such field; refuse anything else.
/// let opts = Options::default().allow_lossy(["logit_bias", "seed"]);
/// assert!(opts.allows("seed"));
/// assert!(!opts.allows("cache_control"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Options {
    /// Fields (OpenAI `param` names, e.g. `logit_bias`, `cache_control`, `strict`) whose
    /// documented lossy mapping the caller accepts. See `docs/translation.md`.
    pub lossy: Vec<String>,
    /// Accept every documented lossy mapping.
    pub lossy_all: bool,
    /// `max_tokens` sent to Anthropic when the client gave none (Anthropic requires it).
    pub default_max_tokens: u32,
    /// Input tokens to report in an Anthropic `message_start` when the upstream reports usage
    /// only at the end of the stream (OpenAI, Bedrock): e.g. the gateway's own count of the
    /// prompt. The real figure always follows in `message_delta.usage.input_tokens`.
    pub input_tokens_hint: Option<u64>,
    /// The client asked OpenAI for `stream_options.include_usage`: emit the usage chunk.
    /// (A non-OpenAI client always gets its protocol's usage.)
    pub include_usage: bool,
    /// The bound on one request or response body, and on one stream event (bytes).
    pub max_body_len: usize,
    /// `created` for OpenAI chunks when the upstream does not say (Unix seconds).
    pub created: u64,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            lossy: Vec::new(),
            lossy_all: false,
            default_max_tokens: 4096,
            input_tokens_hint: None,
            include_usage: false,
            max_body_len: 32 * 1024 * 1024,
            created: 0,
        }
    }
}

impl Options {
    /// Accepts the lossy mapping of these fields.
    #[must_use]
    pub fn allow_lossy<I, S>(mut self, fields: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.lossy.extend(fields.into_iter().map(Into::into));
        self
    }

    /// Whether the lossy mapping of `param` is accepted.
    pub fn allows(&self, param: &str) -> bool {
        self.lossy_all || self.lossy.iter().any(|p| p == param)
    }
}
