//! Budgets as written in a config file (feature `serde`).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use infergate_core::FailureMode;

use crate::store::BudgetStore;
use crate::{
    Budget, BudgetConfig, BudgetLimiter, Limit, PriceSpec, PriceTable, Scope, SystemClock,
    Unpriced, Usd, Window,
};

/// The `[budgets]` section: budgets, price overrides, the store and the failure mode.
///
/// ```
/// let spec: infergate_budget::BudgetSpec = toml_like(r#"{
///     "cost_header": true,
///     "budget": [{"name": "daily", "scope": "principal", "usd": 1.0, "window": "day",
///                 "time_zone": "Europe/Paris"}],
///     "prices": {"my-model": {"input": 0.5, "output": 1.5}}
/// }"#);
/// let limiter = spec.build().unwrap();
/// assert_eq!(limiter.config().budgets()[0].name(), "daily");
/// # fn toml_like(s: &str) -> infergate_budget::BudgetSpec { serde_json::from_str(s).unwrap() }
/// ```
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BudgetSpec {
    /// The budgets (`[[budgets.budget]]`).
    pub budget: Vec<BudgetEntry>,
    /// Prices that extend or replace the shipped table, by model (dollars per million tokens).
    pub prices: BTreeMap<String, PriceSpec>,
    /// Answers carry `x-infergate-cost-usd` (default false).
    pub cost_header: bool,
    /// `fail_closed` (default) or `fail_open` when the store fails.
    pub failure_mode: Option<FailureMode>,
    /// Store timeout in milliseconds (default 250).
    pub timeout_ms: Option<u64>,
    /// Output tokens reserved when a request sets no `max_tokens` (default: the model's
    /// largest answer from the price table, else 4096).
    pub default_max_output_tokens: Option<u64>,
    /// `reject` (default) or `allow` a model without a price when a dollar budget applies.
    pub unpriced: Option<UnpricedSpec>,
    /// Share spend between replicas: `{ url = "redis://…" }` or `{ cluster = ["redis://…"] }`
    /// (feature `redis`).
    #[cfg(feature = "redis")]
    pub redis: Option<infergate_redis::RedisConfig>,
}

/// `unpriced = "reject" | "allow"`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum UnpricedSpec {
    /// [`Unpriced::Reject`].
    Reject,
    /// [`Unpriced::Allow`].
    Allow,
}

/// One `[[budgets.budget]]`.
#[derive(Debug, Clone, serde::Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetEntry {
    /// Unique name (part of the store key and of the `x-infergate-budget-name` header).
    pub name: String,
    /// `principal`, `team`, `tenant`, `model`, `global` or `label:KEY`.
    pub scope: String,
    /// A dollar limit (give this or `tokens`).
    #[serde(default)]
    pub usd: Option<f64>,
    /// A token limit (give this or `usd`).
    #[serde(default)]
    pub tokens: Option<u64>,
    /// `day`, `month`, or a rolling window such as `1h`, `24h`, `7d`, `30m`.
    pub window: String,
    /// IANA time zone of calendar windows (default `UTC`).
    #[serde(default)]
    pub time_zone: Option<String>,
    /// Soft thresholds in percent (default `[80]`).
    #[serde(default)]
    pub thresholds: Option<Vec<u8>>,
    /// Model globs this budget applies to (default: every model).
    #[serde(default)]
    pub models: Vec<String>,
}

/// Why a [`BudgetSpec`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BudgetSpecError {
    /// A budget is not well formed; the message names it and the field.
    #[error("budget '{name}': {why}")]
    Budget {
        /// The budget.
        name: String,
        /// What is wrong.
        why: String,
    },
    /// A price is not a non-negative number.
    #[error("prices.{0}: prices are non-negative numbers of dollars per million tokens")]
    Price(String),
    /// The store cannot be built.
    #[error("redis: {0}")]
    Store(String),
}

fn bad(name: &str, why: impl Into<String>) -> BudgetSpecError {
    BudgetSpecError::Budget {
        name: name.to_owned(),
        why: why.into(),
    }
}

impl BudgetEntry {
    /// The budget.
    pub fn to_budget(&self) -> Result<Budget, BudgetSpecError> {
        let n = &self.name;
        if n.is_empty()
            || !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(bad(n, "names are letters, digits, '-', '_' and '.'"));
        }
        let scope = match self.scope.as_str() {
            "principal" => Scope::Principal,
            "team" => Scope::Team,
            "tenant" => Scope::Tenant,
            "model" => Scope::Model,
            "global" => Scope::Global,
            s => match s.strip_prefix("label:") {
                Some(k) if !k.is_empty() => Scope::Label(k.to_owned()),
                _ => {
                    return Err(bad(
                        n,
                        format!(
                            "scope '{s}': expected principal, team, tenant, model, global or label:KEY"
                        ),
                    ));
                }
            },
        };
        let limit = match (self.usd, self.tokens) {
            (Some(d), None) => Limit::Usd(
                Usd::from_dollars(d).ok_or_else(|| bad(n, "usd must be a non-negative number"))?,
            ),
            (None, Some(t)) => Limit::Tokens(t),
            _ => return Err(bad(n, "give exactly one of `usd` and `tokens`")),
        };
        let window = parse_window(&self.window).ok_or_else(|| {
            bad(
                n,
                format!(
                    "window '{}': expected day, month or a rolling window such as 1h, 24h, 7d",
                    self.window
                ),
            )
        })?;
        let mut b = Budget::new(n.clone(), scope, limit, window).models(self.models.clone());
        if let Some(tz) = &self.time_zone {
            let zone = jiff::tz::TimeZone::get(tz)
                .map_err(|_| bad(n, format!("time_zone '{tz}' is not an IANA time zone")))?;
            b = b.time_zone(zone);
        }
        if let Some(t) = &self.thresholds {
            if t.iter().any(|p| *p == 0 || *p > 100) {
                return Err(bad(n, "thresholds are percents from 1 to 100"));
            }
            b = b.thresholds(t.iter().copied());
        }
        Ok(b)
    }
}

/// `day`, `month`, or `<n>m|h|d` (a rolling window of at least a minute).
fn parse_window(s: &str) -> Option<Window> {
    match s {
        "day" => return Some(Window::Day),
        "month" => return Some(Window::Month),
        _ => {}
    }
    let unit = s.chars().last()?;
    let n: u64 = s[..s.len() - unit.len_utf8()].parse().ok()?;
    let secs = match unit {
        'm' => n.checked_mul(60)?,
        'h' => n.checked_mul(3600)?,
        'd' => n.checked_mul(86_400)?,
        _ => return None,
    };
    (secs >= 60).then(|| Window::Rolling(Duration::from_secs(secs)))
}

impl BudgetSpec {
    /// The configuration (prices: the shipped table extended by `prices`).
    pub fn config(&self) -> Result<BudgetConfig, BudgetSpecError> {
        let budgets = self
            .budget
            .iter()
            .map(BudgetEntry::to_budget)
            .collect::<Result<Vec<_>, _>>()?;
        let mut names = std::collections::HashSet::new();
        for b in &budgets {
            if !names.insert(b.name().to_owned()) {
                return Err(bad(b.name(), "two budgets have this name"));
            }
        }
        let mut overrides = PriceTable::new();
        for (model, p) in &self.prices {
            let price = p
                .to_price()
                .ok_or_else(|| BudgetSpecError::Price(model.clone()))?;
            overrides = overrides.with(model.clone(), price);
        }
        let mut cfg = BudgetConfig::new(budgets)
            .prices(PriceTable::builtin().clone().extended(&overrides))
            .cost_header(self.cost_header)
            .failure_mode(self.failure_mode.unwrap_or(FailureMode::FailClosed));
        if let Some(ms) = self.timeout_ms {
            cfg = cfg.timeout(Duration::from_millis(ms));
        }
        if let Some(n) = self.default_max_output_tokens {
            cfg = cfg.default_max_output_tokens(n);
        }
        if self.unpriced == Some(UnpricedSpec::Allow) {
            cfg = cfg.unpriced(Unpriced::Allow);
        }
        Ok(cfg)
    }

    /// The limiter: in memory, or on the Redis store when `redis` is set.
    pub fn build(&self) -> Result<BudgetLimiter, BudgetSpecError> {
        let cfg = self.config()?;
        #[cfg(feature = "redis")]
        if let Some(r) = &self.redis {
            let store: Arc<dyn BudgetStore> = Arc::new(
                crate::store::RedisStore::new(r.clone())
                    .map_err(|e| BudgetSpecError::Store(e.to_string()))?,
            );
            return Ok(BudgetLimiter::with_store(cfg, store, Arc::new(SystemClock)));
        }
        let store: Arc<dyn BudgetStore> = Arc::new(crate::store::MemoryStore::new());
        Ok(BudgetLimiter::with_store(cfg, store, Arc::new(SystemClock)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(json: &str) -> BudgetSpec {
        serde_json::from_str(json).expect("a spec")
    }

    #[test]
    fn budgets_read_and_errors_name_the_budget() {
        let s = spec(
            r#"{"budget":[
            {"name":"daily","scope":"principal","usd":1.0,"window":"day","time_zone":"Europe/Paris","thresholds":[50,90]},
            {"name":"team-week","scope":"label:cost_centre","tokens":1000000,"window":"7d","models":["gpt-*"]}],
            "prices":{"my-model":{"input":1,"output":2}}}"#,
        );
        let cfg = s.config().expect("builds");
        assert_eq!(cfg.budgets().len(), 2);
        assert_eq!(
            cfg.budgets()[1].window(),
            &Window::Rolling(Duration::from_secs(7 * 86_400))
        );
        assert!(cfg.price_table().lookup("my-model").is_some());
        assert!(
            cfg.price_table().lookup("gpt-4o").is_some(),
            "the shipped table stays"
        );
        for (json, needle) in [
            (
                r#"{"budget":[{"name":"x","scope":"user","usd":1,"window":"day"}]}"#,
                "scope 'user'",
            ),
            (
                r#"{"budget":[{"name":"x","scope":"global","usd":1,"tokens":2,"window":"day"}]}"#,
                "exactly one",
            ),
            (
                r#"{"budget":[{"name":"x","scope":"global","usd":1,"window":"week"}]}"#,
                "window 'week'",
            ),
            (
                r#"{"budget":[{"name":"x","scope":"global","usd":1,"window":"day","time_zone":"Mars/Olympus"}]}"#,
                "IANA",
            ),
            (
                r#"{"budget":[{"name":"x","scope":"global","usd":-1,"window":"day"}]}"#,
                "non-negative",
            ),
            (
                r#"{"budget":[{"name":"x","scope":"global","usd":1,"window":"day"},{"name":"x","scope":"team","usd":1,"window":"day"}]}"#,
                "two budgets",
            ),
        ] {
            let e = spec(json).config().expect_err(json).to_string();
            assert!(e.contains(needle) && e.contains("'x'"), "{e}");
        }
        assert!(serde_json::from_str::<BudgetSpec>(r#"{"budgets":[]}"#).is_err());
    }
}
