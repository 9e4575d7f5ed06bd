//! Prices per model and the cost of a usage record.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::OnceLock;

use infergate_core::usage::Usage;

/// An amount of US dollars, in nano-dollars (10⁻⁹ USD): an integer, so that sums are exact and
/// a shared store can add them atomically. Saturates instead of wrapping.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Usd(u64);

impl Usd {
    /// Nothing.
    pub const ZERO: Usd = Usd(0);

    /// From nano-dollars.
    pub const fn from_nanos(nanos: u64) -> Self {
        Self(nanos)
    }

    /// From dollars (`None` unless finite and not negative). Rounded to the nano-dollar.
    pub fn from_dollars(dollars: f64) -> Option<Self> {
        if !dollars.is_finite() || dollars < 0.0 {
            return None;
        }
        // `as` saturates a value too large for u64.
        Some(Self((dollars * 1e9).round() as u64))
    }

    /// Nano-dollars.
    pub const fn nanos(self) -> u64 {
        self.0
    }

    /// Dollars, as a float (for display and metrics; sums use [`Usd::nanos`]).
    pub fn dollars(self) -> f64 {
        self.0 as f64 / 1e9
    }

    /// `self + other`, saturating.
    #[must_use]
    pub const fn saturating_add(self, other: Usd) -> Usd {
        Usd(self.0.saturating_add(other.0))
    }

    /// `self - other`, at least zero.
    #[must_use]
    pub const fn saturating_sub(self, other: Usd) -> Usd {
        Usd(self.0.saturating_sub(other.0))
    }
}

impl fmt::Display for Usd {
    /// Dollars with up to nine decimals, trailing zeros trimmed: `0.0000015`, `1`, `12.5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000_000;
        let frac = self.0 % 1_000_000_000;
        if frac == 0 {
            return write!(f, "{whole}");
        }
        let digits = format!("{frac:09}");
        write!(f, "{whole}.{}", digits.trim_end_matches('0'))
    }
}

/// A model's prices, in dollars per million tokens (held as [`Usd`] per million).
///
/// Cache reads, cache writes and reasoning default to the input and output prices when the
/// table does not give them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub struct Price {
    /// Per million input tokens (not read from or written to the cache).
    pub input: Usd,
    /// Per million output tokens.
    pub output: Usd,
    /// Per million input tokens read from the prompt cache.
    pub cache_read: Option<Usd>,
    /// Per million input tokens written to the prompt cache.
    pub cache_write: Option<Usd>,
    /// Per million reasoning tokens (when billed apart from output).
    pub reasoning: Option<Usd>,
    /// The model's largest answer, the worst case when a request sets no `max_tokens`.
    pub max_output_tokens: Option<u64>,
}

/// `tokens × per_million / 10⁶`, rounded up to the nano-dollar, saturating.
fn times(tokens: u64, per_million: Usd) -> u128 {
    u128::from(tokens) * u128::from(per_million.nanos())
}

fn to_usd(micro_nanos: u128) -> Usd {
    Usd(u64::try_from(micro_nanos.div_ceil(1_000_000)).unwrap_or(u64::MAX))
}

impl Price {
    /// `input` and `output` dollars per million tokens (`None` if either is negative or not
    /// finite).
    pub fn per_million(input: f64, output: f64) -> Option<Self> {
        Some(Self {
            input: Usd::from_dollars(input)?,
            output: Usd::from_dollars(output)?,
            cache_read: None,
            cache_write: None,
            reasoning: None,
            max_output_tokens: None,
        })
    }

    /// With a cache-read price (dollars per million tokens).
    #[must_use]
    pub fn with_cache_read(mut self, per_million: Usd) -> Self {
        self.cache_read = Some(per_million);
        self
    }

    /// With a cache-write price (dollars per million tokens).
    #[must_use]
    pub fn with_cache_write(mut self, per_million: Usd) -> Self {
        self.cache_write = Some(per_million);
        self
    }

    /// With a reasoning price (dollars per million tokens).
    #[must_use]
    pub fn with_reasoning(mut self, per_million: Usd) -> Self {
        self.reasoning = Some(per_million);
        self
    }

    /// With the model's largest answer.
    #[must_use]
    pub fn with_max_output_tokens(mut self, tokens: u64) -> Self {
        self.max_output_tokens = Some(tokens);
        self
    }

    /// The cost of `usage`, rounded up to the nano-dollar.
    pub fn cost(&self, usage: &Usage) -> Usd {
        let reasoning = match self.reasoning {
            Some(p) => times(usage.reasoning_tokens, p),
            None => times(usage.reasoning_tokens, self.output),
        };
        let sum = times(usage.uncached_input_tokens(), self.input)
            + times(
                usage.cache_read_input_tokens,
                self.cache_read.unwrap_or(self.input),
            )
            + times(
                usage.cache_creation_input_tokens,
                self.cache_write.unwrap_or(self.input),
            )
            + times(usage.visible_output_tokens(), self.output)
            + reasoning;
        to_usd(sum)
    }

    /// The most a request of `input` tokens answered with at most `output` tokens can cost:
    /// every input token at the dearer of the input and cache-write prices, every output token
    /// at the dearer of the output and reasoning prices.
    pub fn worst_case(&self, input: u64, output: u64) -> Usd {
        let inp = self.input.max(self.cache_write.unwrap_or(Usd::ZERO));
        let out = self.output.max(self.reasoning.unwrap_or(Usd::ZERO));
        to_usd(times(input, inp) + times(output, out))
    }
}

/// Prices by model name, with where they come from.
///
/// A model is looked up by its exact name, then without a provider prefix (`openai/`,
/// `anthropic/`, `bedrock/`, a Bedrock region such as `us.`), then by the longest entry that
/// it starts with followed by `-`, `@` or `:` (so `gpt-4o-2024-08-06` finds `gpt-4o`, and
/// `gpt-4o-mini-2024-07-18` finds `gpt-4o-mini`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PriceTable {
    models: BTreeMap<String, Price>,
    source: String,
    date: String,
}

/// The table shipped with the crate (`data/prices.json`).
const BUILTIN: &str = include_str!("../data/prices.json");

/// Why a price table could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PriceError {
    /// The JSON is not a price table.
    #[error("the price table is not valid: {0}")]
    Invalid(String),
    /// A price is negative or not a number.
    #[error("the price of {model} is not a non-negative number of dollars")]
    BadPrice {
        /// The model.
        model: String,
    },
}

impl PriceTable {
    /// An empty table.
    pub fn new() -> Self {
        Self::default()
    }

    /// The table shipped with the crate: list prices of OpenAI, Anthropic, Google and Amazon
    /// models (see [`PriceTable::source`] and [`PriceTable::date`]).
    pub fn builtin() -> &'static PriceTable {
        static TABLE: OnceLock<PriceTable> = OnceLock::new();
        TABLE.get_or_init(|| {
            // A unit test checks that the shipped table parses.
            Self::from_json(BUILTIN).unwrap_or_default()
        })
    }

    /// Reads a table in the shipped format: `{"source": …, "date": …, "models": {"name":
    /// {"input": 2.5, "output": 10, "cache_read": 1.25, "cache_write": …, "reasoning": …,
    /// "max_output_tokens": …}}}`, dollars per million tokens.
    pub fn from_json(json: &str) -> Result<Self, PriceError> {
        #[derive(serde::Deserialize)]
        struct File {
            #[serde(default)]
            source: String,
            #[serde(default)]
            date: String,
            models: BTreeMap<String, PriceSpec>,
        }
        let f: File = serde_json::from_str(json).map_err(|e| PriceError::Invalid(e.to_string()))?;
        let mut t = Self {
            models: BTreeMap::new(),
            source: f.source,
            date: f.date,
        };
        for (model, spec) in f.models {
            let p = spec.to_price().ok_or_else(|| PriceError::BadPrice {
                model: model.clone(),
            })?;
            t.models.insert(model, p);
        }
        Ok(t)
    }

    /// Where the prices come from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// When they were taken.
    pub fn date(&self) -> &str {
        &self.date
    }

    /// How many models it prices.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether it prices no model.
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// Adds or replaces a model's price.
    #[must_use]
    pub fn with(mut self, model: impl Into<String>, price: Price) -> Self {
        self.models.insert(model.into(), price);
        self
    }

    /// Adds or replaces every price of `other` (an operator's overrides over the shipped
    /// table).
    #[must_use]
    pub fn extended(mut self, other: &PriceTable) -> Self {
        for (m, p) in &other.models {
            self.models.insert(m.clone(), *p);
        }
        self
    }

    /// The price of `model` (see the type's docs for how names are matched).
    pub fn lookup(&self, model: &str) -> Option<&Price> {
        if let Some(p) = self.models.get(model) {
            return Some(p);
        }
        let bare = strip_provider(model);
        if let Some(p) = self.models.get(bare) {
            return Some(p);
        }
        // The longest entry that `bare` starts with, at a word boundary.
        let mut best: Option<(&str, &Price)> = None;
        let upper = (std::ops::Bound::Unbounded, std::ops::Bound::Included(bare));
        for (name, p) in self.models.range::<str, _>(upper).rev() {
            if !bare.starts_with(name.as_str()) {
                if name.as_bytes().first() != bare.as_bytes().first() {
                    break;
                }
                continue;
            }
            let rest = &bare[name.len()..];
            if (rest.is_empty() || rest.starts_with(['-', '@', ':']))
                && best.is_none_or(|(b, _)| name.len() > b.len())
            {
                best = Some((name, p));
            }
        }
        best.map(|(_, p)| p)
    }
}

fn strip_provider(model: &str) -> &str {
    let mut m = model;
    for prefix in [
        "openai/",
        "anthropic/",
        "bedrock/",
        "gemini/",
        "google/",
        "vertex_ai/",
        "vertex/",
        "azure/",
    ] {
        if let Some(rest) = m.strip_prefix(prefix) {
            m = rest;
            break;
        }
    }
    for region in ["us.", "eu.", "apac.", "jp.", "global.", "us-gov."] {
        if let Some(rest) = m.strip_prefix(region) {
            return rest;
        }
    }
    m
}

/// A price in configuration: dollars per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PriceSpec {
    /// Per million input tokens.
    pub input: f64,
    /// Per million output tokens.
    pub output: f64,
    /// Per million cache-read input tokens.
    #[serde(default)]
    pub cache_read: Option<f64>,
    /// Per million cache-write input tokens.
    #[serde(default)]
    pub cache_write: Option<f64>,
    /// Per million reasoning tokens.
    #[serde(default)]
    pub reasoning: Option<f64>,
    /// The model's largest answer.
    #[serde(default)]
    pub max_output_tokens: Option<u64>,
}

impl PriceSpec {
    /// The price (`None` if a number is negative or not finite).
    pub fn to_price(&self) -> Option<Price> {
        let opt = |v: Option<f64>| match v {
            None => Some(None),
            Some(d) => Usd::from_dollars(d).map(Some),
        };
        let mut p = Price::per_million(self.input, self.output)?;
        p.cache_read = opt(self.cache_read)?;
        p.cache_write = opt(self.cache_write)?;
        p.reasoning = opt(self.reasoning)?;
        p.max_output_tokens = self.max_output_tokens;
        Some(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_table_parses_and_names_its_source() {
        let t = PriceTable::from_json(BUILTIN).expect("the shipped table parses");
        assert!(t.len() >= 20);
        assert!(!t.source().is_empty() && !t.date().is_empty());
        assert_eq!(PriceTable::builtin(), &t);
    }

    #[test]
    fn names_match_by_prefix_at_a_boundary() {
        let t = PriceTable::new()
            .with("gpt-4o", Price::per_million(2.5, 10.0).expect("price"))
            .with("gpt-4o-mini", Price::per_million(0.15, 0.6).expect("price"))
            .with(
                "claude-sonnet-4-5",
                Price::per_million(3.0, 15.0).expect("price"),
            );
        let input = |m: &str| t.lookup(m).map(|p| p.input);
        assert_eq!(input("gpt-4o-2024-08-06"), Usd::from_dollars(2.5));
        assert_eq!(input("gpt-4o-mini-2024-07-18"), Usd::from_dollars(0.15));
        assert_eq!(input("openai/gpt-4o-mini"), Usd::from_dollars(0.15));
        assert_eq!(
            input("us.claude-sonnet-4-5-20250929"),
            Usd::from_dollars(3.0)
        );
        assert_eq!(input("gpt-4ox"), None);
        assert_eq!(input("gpt-4"), None);
        assert_eq!(input(""), None);
    }

    #[test]
    fn cost_prices_every_kind_of_token() {
        let p = Price::per_million(3.0, 15.0)
            .expect("price")
            .with_cache_read(Usd::from_dollars(0.3).expect("usd"))
            .with_cache_write(Usd::from_dollars(3.75).expect("usd"));
        // 1,000 uncached + 10,000 read + 2,000 written; 500 out.
        let u = Usage::new(13_000, 500)
            .with_cache_read(10_000)
            .with_cache_creation(2_000);
        // 0.003 + 0.003 + 0.0075 + 0.0075
        assert_eq!(p.cost(&u), Usd::from_dollars(0.021).expect("usd"));
        assert_eq!(p.cost(&u).to_string(), "0.021");
        // The worst case prices input at the cache-write price.
        assert_eq!(
            p.worst_case(1_000_000, 0),
            Usd::from_dollars(3.75).expect("usd")
        );
        // A fraction of a nano-dollar rounds up; huge counts saturate.
        let tiny = Price::per_million(0.001, 0.0).expect("price");
        assert_eq!(tiny.cost(&Usage::new(1, 0)), Usd::from_nanos(1));
        assert_eq!(p.cost(&Usage::new(u64::MAX, u64::MAX)).nanos(), u64::MAX);
    }

    #[test]
    fn usd_displays_in_dollars() {
        assert_eq!(Usd::from_nanos(1_500).to_string(), "0.0000015");
        assert_eq!(Usd::from_nanos(2_000_000_000).to_string(), "2");
        assert_eq!(Usd::from_dollars(12.5).expect("usd").to_string(), "12.5");
        assert_eq!(Usd::from_dollars(-1.0), None);
        assert_eq!(Usd::from_dollars(f64::NAN), None);
    }
}
