//! Who is calling: the [`Principal`] an identity processor (`infergate-identity`) authenticated,
//! carried in the request extensions so that every building block can key off it without
//! depending on the identity crate.
//!
//! A principal holds no secret: only the id of the key or the subject of the token that proved
//! it, so its `Debug` output and its fields are safe to log.
//!
//! ```
//! use infergate_core::principal::Principal;
//!
//! let p = Principal::new("k1", "acme")
//!     .with_user("alice")
//!     .with_allowed_models(["gpt-4o*", "claude-?-haiku"]);
//! let mut ext = http::Extensions::new();
//! p.insert_into(&mut ext);
//! let seen = Principal::from_extensions(&ext).unwrap();
//! assert_eq!(seen.tenant(), "acme");
//! assert!(seen.allows_model("gpt-4o-mini"));
//! assert!(!seen.allows_model("o3"));
//! ```

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::SystemTime;

use crate::payload::ApiKind;

/// An authenticated caller (or the configured anonymous one).
///
/// Cheap to clone where it matters: the request extensions hold an `Arc<Principal>`
/// ([`Principal::insert_into`], [`Principal::from_extensions`], [`Principal::arc_from_extensions`]).
#[non_exhaustive]
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    id: String,
    tenant: String,
    team: Option<String>,
    user: Option<String>,
    labels: BTreeMap<String, String>,
    allowed_models: Vec<String>,
    allowed_endpoints: Vec<String>,
    expires_at: Option<SystemTime>,
    limits: BTreeMap<String, String>,
    anonymous: bool,
    /// Backend label restrictions: label key → the value globs this principal's traffic may
    /// go to (see [`Principal::allows_labels`]); empty: no restriction.
    allowed_labels: BTreeMap<String, Vec<String>>,
}

impl Principal {
    /// A principal with this id (the key id or the token's subject) in this tenant, allowed
    /// every model and endpoint, never expiring.
    pub fn new(id: impl Into<String>, tenant: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            tenant: tenant.into(),
            team: None,
            user: None,
            labels: BTreeMap::new(),
            allowed_models: Vec::new(),
            allowed_endpoints: Vec::new(),
            expires_at: None,
            limits: BTreeMap::new(),
            anonymous: false,
            allowed_labels: BTreeMap::new(),
        }
    }

    /// The anonymous principal with this id and tenant (for deployments that allow requests
    /// without credentials).
    pub fn anonymous(id: impl Into<String>, tenant: impl Into<String>) -> Self {
        Self {
            anonymous: true,
            ..Self::new(id, tenant)
        }
    }

    /// Sets the team.
    #[must_use]
    pub fn with_team(mut self, team: impl Into<String>) -> Self {
        self.team = Some(team.into());
        self
    }

    /// Sets the end user.
    #[must_use]
    pub fn with_user(mut self, user: impl Into<String>) -> Self {
        self.user = Some(user.into());
        self
    }

    /// Adds a label.
    #[must_use]
    pub fn with_label(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.labels.insert(key.into(), value.into());
        self
    }

    /// Sets the model globs (`*`, `?`) this principal may use; empty allows all.
    #[must_use]
    pub fn with_allowed_models<I, S>(mut self, globs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_models = globs.into_iter().map(Into::into).collect();
        self
    }

    /// Sets the endpoints this principal may call: path globs starting with `/`
    /// (`/v1/chat/completions`, `/v1/*`) or API names (`chat_completions`, `embeddings`,
    /// `responses`, `messages`); empty allows all.
    #[must_use]
    pub fn with_allowed_endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Sets when the credential that proved this principal expires.
    #[must_use]
    pub fn with_expires_at(mut self, at: SystemTime) -> Self {
        self.expires_at = Some(at);
        self
    }

    /// Adds a named limit or budget (`"tokens_per_minute" = "100000"`) for other blocks to
    /// look up.
    #[must_use]
    pub fn with_limit(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.limits.insert(name.into(), value.into());
        self
    }

    /// Restricts this principal's traffic to backends whose label `key` matches one of the
    /// value globs (`*`, `?`): `with_allowed_labels("region", ["eu-*"])`. Several keys must
    /// all match; a backend without the label is not allowed. Calling it again for a key
    /// replaces that key's values. See [`labels_allowed`].
    #[must_use]
    pub fn with_allowed_labels<I, S>(mut self, key: impl Into<String>, values: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.allowed_labels
            .insert(key.into(), values.into_iter().map(Into::into).collect());
        self
    }

    /// The backend label restrictions (label key → allowed value globs; empty: none).
    pub fn allowed_labels(&self) -> &BTreeMap<String, Vec<String>> {
        &self.allowed_labels
    }

    /// Whether this principal's traffic may go to a backend with these `labels`
    /// ([`labels_allowed`] under [`allowed_labels`](Self::allowed_labels)).
    pub fn allows_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        labels_allowed(&self.allowed_labels, labels)
    }

    /// The key id or the token's subject (never a secret).
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The tenant.
    pub fn tenant(&self) -> &str {
        &self.tenant
    }

    /// The team, if any.
    pub fn team(&self) -> Option<&str> {
        self.team.as_deref()
    }

    /// The end user, if any.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Every label.
    pub fn labels(&self) -> &BTreeMap<String, String> {
        &self.labels
    }

    /// One label.
    pub fn label(&self, key: &str) -> Option<&str> {
        self.labels.get(key).map(String::as_str)
    }

    /// The model globs this principal may use (empty: all).
    pub fn allowed_models(&self) -> &[String] {
        &self.allowed_models
    }

    /// The endpoints this principal may call (empty: all).
    pub fn allowed_endpoints(&self) -> &[String] {
        &self.allowed_endpoints
    }

    /// When the credential expires, if it does.
    pub fn expires_at(&self) -> Option<SystemTime> {
        self.expires_at
    }

    /// Whether the credential has expired at `now`.
    pub fn is_expired(&self, now: SystemTime) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }

    /// Every named limit or budget.
    pub fn limits(&self) -> &BTreeMap<String, String> {
        &self.limits
    }

    /// One named limit or budget.
    pub fn limit(&self, name: &str) -> Option<&str> {
        self.limits.get(name).map(String::as_str)
    }

    /// Whether this is the configured anonymous principal.
    pub fn is_anonymous(&self) -> bool {
        self.anonymous
    }

    /// Whether this principal may use `model` (a glob of [`allowed_models`](Self::allowed_models)
    /// matches it, or there are none).
    pub fn allows_model(&self, model: &str) -> bool {
        self.allowed_models.is_empty() || self.allowed_models.iter().any(|g| glob_match(g, model))
    }

    /// Whether this principal may call `path`: an entry starting with `/` is a path glob, any
    /// other entry an API name (`chat_completions`, `embeddings`, `responses`, `messages`,
    /// `other`), compared case-insensitively with the API of `path`.
    pub fn allows_endpoint(&self, path: &str) -> bool {
        if self.allowed_endpoints.is_empty() {
            return true;
        }
        let trimmed = match path.trim_end_matches('/') {
            "" => "/",
            p => p,
        };
        let api = api_name(ApiKind::from_path(trimmed));
        self.allowed_endpoints.iter().any(|e| {
            if e.starts_with('/') {
                glob_match(e.trim_end_matches('/'), trimmed)
            } else {
                e.eq_ignore_ascii_case(api)
                    || (api == "messages" && e.eq_ignore_ascii_case("anthropic_messages"))
            }
        })
    }

    /// Puts this principal into `ext` (as an `Arc<Principal>`).
    pub fn insert_into(self, ext: &mut http::Extensions) {
        ext.insert(Arc::new(self));
    }

    /// The principal in `ext`, if an identity processor put one there.
    pub fn from_extensions(ext: &http::Extensions) -> Option<&Principal> {
        ext.get::<Arc<Principal>>().map(AsRef::as_ref)
    }

    /// The principal in `ext` as a shared handle (to keep beyond the request).
    pub fn arc_from_extensions(ext: &http::Extensions) -> Option<Arc<Principal>> {
        ext.get::<Arc<Principal>>().cloned()
    }
}

/// Whether a backend with `labels` satisfies `restriction` (label key → allowed value globs,
/// `*` and `?`): for every key of the restriction, the backend has that label and its value
/// matches one of the globs. A key with no values allows nothing; an empty restriction allows
/// every backend.
///
/// ```
/// use std::collections::BTreeMap;
/// use infergate_core::principal::labels_allowed;
///
/// let restriction = BTreeMap::from([("region".to_owned(), vec!["eu-*".to_owned()])]);
/// let eu = BTreeMap::from([("region".to_owned(), "eu-west-1".to_owned())]);
/// let us = BTreeMap::from([("region".to_owned(), "us-east-1".to_owned())]);
/// assert!(labels_allowed(&restriction, &eu));
/// assert!(!labels_allowed(&restriction, &us));
/// assert!(!labels_allowed(&restriction, &BTreeMap::new()));
/// assert!(labels_allowed(&BTreeMap::new(), &us));
/// ```
pub fn labels_allowed(
    restriction: &BTreeMap<String, Vec<String>>,
    labels: &BTreeMap<String, String>,
) -> bool {
    restriction.iter().all(|(key, globs)| {
        labels
            .get(key)
            .is_some_and(|v| globs.iter().any(|g| glob_match(g, v)))
    })
}

/// A restriction as text for messages and the router's explain header:
/// `region in [eu-west-1, eu-central-1]; provider in [azure]` (label keys and values only,
/// never a secret).
pub fn restriction_text(restriction: &BTreeMap<String, Vec<String>>) -> String {
    restriction
        .iter()
        .map(|(k, vs)| format!("{k} in [{}]", vs.join(", ")))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The name [`Principal::allows_endpoint`] gives an API.
fn api_name(api: ApiKind) -> &'static str {
    match api {
        ApiKind::ChatCompletions => "chat_completions",
        ApiKind::Embeddings => "embeddings",
        ApiKind::Responses => "responses",
        ApiKind::AnthropicMessages => "messages",
        ApiKind::Other => "other",
    }
}

/// Whether `text` matches `glob`, where `*` matches any run of characters (none too) and `?`
/// exactly one. Linear in practice (the classic backtrack-to-last-star algorithm).
pub fn glob_match(glob: &str, text: &str) -> bool {
    let g: Vec<char> = glob.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut gi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if gi < g.len() && (g[gi] == '?' || (g[gi] != '*' && g[gi] == t[ti])) {
            gi += 1;
            ti += 1;
        } else if gi < g.len() && g[gi] == '*' {
            star = Some((gi, ti));
            gi += 1;
        } else if let Some((sg, st)) = star {
            gi = sg + 1;
            ti = st + 1;
            star = Some((sg, st + 1));
        } else {
            return false;
        }
    }
    g[gi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob_match("*", ""));
        assert!(glob_match("gpt-4o*", "gpt-4o"));
        assert!(glob_match("gpt-4o*", "gpt-4o-mini"));
        assert!(!glob_match("gpt-4o*", "gpt-4"));
        assert!(glob_match("claude-?-haiku", "claude-3-haiku"));
        assert!(!glob_match("claude-?-haiku", "claude-35-haiku"));
        assert!(glob_match("*mini*", "gpt-4o-mini-2024"));
        assert!(glob_match("a*b*c", "aXbYbZc"));
        assert!(!glob_match("a*b*c", "aXbYbZ"));
        assert!(glob_match("exact", "exact"));
        assert!(!glob_match("exact", "exactly"));
    }

    #[test]
    fn endpoints() {
        let p = Principal::new("k", "t").with_allowed_endpoints(["chat_completions", "/v1/files*"]);
        assert!(p.allows_endpoint("/v1/chat/completions"));
        assert!(p.allows_endpoint("/openai/deployments/x/chat/completions/"));
        assert!(p.allows_endpoint("/v1/files/abc"));
        assert!(!p.allows_endpoint("/v1/embeddings"));
        assert!(!p.allows_endpoint("/v1/messages"));
        let m = Principal::new("k", "t").with_allowed_endpoints(["Anthropic_Messages"]);
        assert!(m.allows_endpoint("/v1/messages"));
        assert!(Principal::new("k", "t").allows_endpoint("/anything"));
    }

    #[test]
    fn label_restrictions() {
        let label = |k: &str, v: &str| BTreeMap::from([(k.to_owned(), v.to_owned())]);
        let p = Principal::new("k", "t").with_allowed_labels("region", ["eu-west-1", "eu-c*"]);
        assert!(p.allows_labels(&label("region", "eu-west-1")));
        assert!(p.allows_labels(&label("region", "eu-central-1")));
        assert!(!p.allows_labels(&label("region", "us-east-1")));
        assert!(!p.allows_labels(&label("provider", "azure")));
        assert!(Principal::new("k", "t").allows_labels(&BTreeMap::new()));
        let none = Principal::new("k", "t").with_allowed_labels("region", Vec::<String>::new());
        assert!(!none.allows_labels(&label("region", "eu-west-1")));
        assert_eq!(
            restriction_text(p.allowed_labels()),
            "region in [eu-west-1, eu-c*]"
        );
    }

    #[test]
    fn extensions_round_trip() {
        let mut ext = http::Extensions::new();
        assert!(Principal::from_extensions(&ext).is_none());
        Principal::anonymous("anon", "public").insert_into(&mut ext);
        let p = Principal::arc_from_extensions(&ext).unwrap();
        assert!(p.is_anonymous());
        assert!(!p.is_expired(SystemTime::now()));
        let q = Principal::new("k", "t").with_expires_at(SystemTime::UNIX_EPOCH);
        assert!(q.is_expired(SystemTime::now()));
    }
}
