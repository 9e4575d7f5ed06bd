//! What a budget is, and the processor's configuration.

use std::sync::Arc;
use std::time::Duration;

use infergate_core::FailureMode;
use jiff::tz::TimeZone;

use crate::{PriceTable, Usd, Window};

/// Whose spend a budget adds up.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Scope {
    /// Each principal (an authenticated key) on its own.
    Principal,
    /// Each team (principals with the same team).
    Team,
    /// Each tenant.
    Tenant,
    /// Each model requested, across callers.
    Model,
    /// Everyone together.
    Global,
    /// Each value of a principal's label (for example a cost centre).
    Label(String),
}

/// What a budget limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Limit {
    /// Dollars, priced from the price table.
    Usd(Usd),
    /// Tokens (input plus output).
    Tokens(u64),
}

impl Limit {
    /// The limit in the store's unit (nano-dollars or tokens).
    pub fn units(self) -> u64 {
        match self {
            Limit::Usd(u) => u.nanos(),
            Limit::Tokens(t) => t,
        }
    }

    /// `units` in this limit's unit, for messages and headers (`$0.25`, `1200 tokens`).
    pub fn show(self, units: u64) -> String {
        match self {
            Limit::Usd(_) => format!("${}", Usd::from_nanos(units)),
            Limit::Tokens(_) => format!("{units} tokens"),
        }
    }
}

/// One budget: a limit on a scope's spend over a window.
#[derive(Debug, Clone, PartialEq)]
pub struct Budget {
    pub(crate) name: String,
    pub(crate) scope: Scope,
    pub(crate) limit: Limit,
    pub(crate) window: Window,
    pub(crate) time_zone: TimeZone,
    pub(crate) thresholds: Vec<u8>,
    pub(crate) models: Vec<String>,
}

impl Budget {
    /// A budget named `name` (unique: it is part of the store key) limiting `scope` to `limit`
    /// per `window`, in UTC, reporting when 80 % is spent.
    pub fn new(name: impl Into<String>, scope: Scope, limit: Limit, window: Window) -> Self {
        Self {
            name: name.into(),
            scope,
            limit,
            window,
            time_zone: TimeZone::UTC,
            thresholds: vec![80],
            models: Vec::new(),
        }
    }

    /// Calendar periods in this time zone.
    #[must_use]
    pub fn time_zone(mut self, tz: TimeZone) -> Self {
        self.time_zone = tz;
        self
    }

    /// The soft thresholds (percent of the limit) reported as events when crossed; empty for
    /// none.
    #[must_use]
    pub fn thresholds(mut self, percents: impl IntoIterator<Item = u8>) -> Self {
        self.thresholds = percents.into_iter().filter(|p| *p > 0).collect();
        self.thresholds.sort_unstable();
        self
    }

    /// Applies only to requests for these models (globs with `*`); all models when empty.
    #[must_use]
    pub fn models<I, S>(mut self, globs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.models = globs.into_iter().map(Into::into).collect();
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its scope.
    pub fn scope(&self) -> &Scope {
        &self.scope
    }

    /// Its limit.
    pub fn limit(&self) -> Limit {
        self.limit
    }

    /// Its window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    pub(crate) fn applies_to_model(&self, model: &str) -> bool {
        self.models.is_empty() || self.models.iter().any(|g| glob(g, model))
    }
}

/// `*` matches any run of characters.
fn glob(pattern: &str, s: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return s.is_empty();
    };
    let Some(mut rest) = s.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.ends_with(last)
}

/// What to do with a request for a model the price table does not know, when a dollar budget
/// applies to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum Unpriced {
    /// Refuse it (400, `model_not_priced`): a dollar budget cannot be kept on it.
    #[default]
    Reject,
    /// Let it through; dollar budgets do not count it (token budgets still do), and a warning
    /// says so once per model.
    Allow,
}

/// A threshold crossed or a budget exhausted, for observers (metrics, alerts).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BudgetEvent {
    /// The budget.
    pub budget: String,
    /// The scope's value (a principal id, a team, a tenant, a model), empty for global.
    pub subject: String,
    /// The threshold crossed (percent); 100 when the budget refused a request.
    pub percent: u8,
    /// Spent, in the limit's unit.
    pub spent: u64,
    /// The limit, in its unit.
    pub limit: u64,
}

/// A callback for [`BudgetEvent`]s.
pub type Observer = Arc<dyn Fn(&BudgetEvent) + Send + Sync>;

/// The budget processor's configuration.
#[derive(Clone)]
pub struct BudgetConfig {
    pub(crate) budgets: Vec<Budget>,
    pub(crate) prices: PriceTable,
    pub(crate) failure_mode: FailureMode,
    pub(crate) timeout: Duration,
    pub(crate) cost_header: bool,
    pub(crate) default_max_output_tokens: Option<u64>,
    pub(crate) unpriced: Unpriced,
    pub(crate) observer: Option<Observer>,
}

impl std::fmt::Debug for BudgetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BudgetConfig")
            .field("budgets", &self.budgets)
            .field("prices", &self.prices.len())
            .field("failure_mode", &self.failure_mode)
            .field("timeout", &self.timeout)
            .field("cost_header", &self.cost_header)
            .field("default_max_output_tokens", &self.default_max_output_tokens)
            .field("unpriced", &self.unpriced)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl BudgetConfig {
    /// These budgets, the shipped price table, `FailClosed`, a 250 ms store timeout, no cost
    /// header, the model's largest answer (from the price table, else 4,096 tokens) reserved
    /// when a request sets no `max_tokens`, unpriced models refused.
    pub fn new(budgets: impl IntoIterator<Item = Budget>) -> Self {
        Self {
            budgets: budgets.into_iter().collect(),
            prices: PriceTable::builtin().clone(),
            failure_mode: FailureMode::FailClosed,
            timeout: Duration::from_millis(250),
            cost_header: false,
            default_max_output_tokens: None,
            unpriced: Unpriced::Reject,
            observer: None,
        }
    }

    /// The price table (replacing the shipped one; extend it with [`PriceTable::extended`]).
    #[must_use]
    pub fn prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    /// What happens when the store fails or times out.
    #[must_use]
    pub fn failure_mode(mut self, mode: FailureMode) -> Self {
        self.failure_mode = mode;
        self
    }

    /// How long a store call may take.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Whether answers carry `x-infergate-cost-usd` (non-streamed answers; a stream's cost is
    /// known only at its end and goes to the usage record).
    #[must_use]
    pub fn cost_header(mut self, on: bool) -> Self {
        self.cost_header = on;
        self
    }

    /// The output tokens reserved when a request sets no `max_tokens`, instead of the model's
    /// largest answer. Smaller reservations admit more concurrent requests; an answer longer
    /// than this is still charged in full when it ends, so a budget can then be overrun by at
    /// most the difference, per request in flight.
    #[must_use]
    pub fn default_max_output_tokens(mut self, tokens: u64) -> Self {
        self.default_max_output_tokens = Some(tokens);
        self
    }

    /// What to do with models the price table does not know.
    #[must_use]
    pub fn unpriced(mut self, policy: Unpriced) -> Self {
        self.unpriced = policy;
        self
    }

    /// Calls `f` for every threshold crossed and every refusal.
    #[must_use]
    pub fn observer(mut self, f: impl Fn(&BudgetEvent) + Send + Sync + 'static) -> Self {
        self.observer = Some(Arc::new(f));
        self
    }

    /// The budgets.
    pub fn budgets(&self) -> &[Budget] {
        &self.budgets
    }

    /// The price table.
    pub fn price_table(&self) -> &PriceTable {
        &self.prices
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("claude-*", "claude-sonnet-4-5"));
        assert!(glob("*", "x"));
        assert!(glob("gpt-*-mini", "gpt-4o-mini"));
        assert!(!glob("gpt-*-mini", "gpt-4o"));
        assert!(glob("gpt-4o", "gpt-4o"));
        assert!(!glob("gpt-4o", "gpt-4o-mini"));
    }
}
