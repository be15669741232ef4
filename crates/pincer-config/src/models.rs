//! `[models.<alias>]`, `agents.<id>.models` and `[failover]` (B2–B4): named models an agent can
//! fall back through, their prices, and the cooldown ladder a failing model climbs.
//!
//! ```toml
//! [models.fast]
//! provider = "openai"
//! model = "gpt-4o-mini"
//! input_price = 0.15        # USD per million input tokens (optional: tokens only without it)
//! output_price = 0.60
//!
//! [models.backup]
//! provider = "anthropic"
//! model = "claude-sonnet-4-5"
//!
//! [agents.main]
//! models = ["fast", "backup"]   # the failover chain, first is the default
//!
//! [failover]
//! cooldown_secs = [60, 300, 1500, 3600]
//! ```
//!
//! An alias names exactly one provider and model (aliases never name aliases), so a chain
//! cannot loop; naming an alias twice in one chain is refused.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

/// `[models.<alias>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelConfig {
    /// A provider in `[providers]`.
    pub provider: String,
    /// The model name sent to it.
    pub model: String,
    /// Its context window in tokens, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// USD per million input tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub input_price: Option<f64>,
    /// USD per million output tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_price: Option<f64>,
}

/// Hard limits for one scope (all optional; a period without a limit is not checked).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Limits {
    /// Tokens (input + output) per UTC day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_tokens: Option<u64>,
    /// Tokens per UTC calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_tokens: Option<u64>,
    /// USD per UTC day (models with prices only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_cost_usd: Option<f64>,
    /// USD per UTC calendar month.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub monthly_cost_usd: Option<f64>,
}

impl Limits {
    /// Whether any limit is set.
    pub fn any(&self) -> bool {
        self.daily_tokens.is_some()
            || self.monthly_tokens.is_some()
            || self.daily_cost_usd.is_some()
            || self.monthly_cost_usd.is_some()
    }

    fn errors(&self, key: &str) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        for (k, v) in [
            ("daily_cost_usd", self.daily_cost_usd),
            ("monthly_cost_usd", self.monthly_cost_usd),
        ] {
            if v.is_some_and(|c| !c.is_finite() || c < 0.0) {
                errs.push((
                    format!("{key}.{k}"),
                    "must be a non-negative number of USD".into(),
                ));
            }
        }
        errs
    }
}

/// `[budgets]`: hard limits checked before every model call (B4).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetsConfig {
    /// Fraction of a limit at which a warning is recorded (once per crossing).
    #[serde(default = "default_warn_at")]
    pub warn_at: f64,
    /// For everything together.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub global: Limits,
    /// For each user separately (a chat account, an API token, a CLI session).
    #[serde(default, skip_serializing_if = "is_unset")]
    pub per_user: Limits,
    /// Per agent.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub agents: BTreeMap<String, Limits>,
}

fn is_unset(l: &Limits) -> bool {
    !l.any()
}

fn default_warn_at() -> f64 {
    0.8
}

impl Default for BudgetsConfig {
    fn default() -> Self {
        Self {
            warn_at: default_warn_at(),
            global: Limits::default(),
            per_user: Limits::default(),
            agents: BTreeMap::new(),
        }
    }
}

impl BudgetsConfig {
    /// Whether this is the default (no budgets).
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// Whether any limit applies anywhere.
    pub fn any(&self) -> bool {
        self.global.any() || self.per_user.any() || self.agents.values().any(Limits::any)
    }

    pub(crate) fn errors(&self, agents: &[&str]) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if !(self.warn_at > 0.0 && self.warn_at <= 1.0) {
            errs.push((
                "budgets.warn_at".into(),
                "must be a fraction in (0, 1]".into(),
            ));
        }
        errs.extend(self.global.errors("budgets.global"));
        errs.extend(self.per_user.errors("budgets.per_user"));
        for (agent, l) in &self.agents {
            if !agents.contains(&agent.as_str()) {
                errs.push((
                    format!("budgets.agents.{agent}"),
                    format!("no agent `{agent}` in [agents]"),
                ));
            }
            errs.extend(l.errors(&format!("budgets.agents.{agent}")));
        }
        errs
    }
}

/// `[memory]`: the embeddings model memory search uses besides full text (optional).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// Base URL of an OpenAI-compatible server with `/embeddings` (e.g. a local one).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings_base_url: Option<String>,
    /// The embeddings model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings_model: Option<String>,
    /// Environment variable holding its API key (none for local servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embeddings_api_key_env: Option<String>,
}

impl MemoryConfig {
    /// Whether this is the default (no embeddings).
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if let Some(u) = &self.embeddings_base_url
            && !(u.starts_with("http://") || u.starts_with("https://"))
        {
            errs.push((
                "memory.embeddings_base_url".into(),
                "must start with http:// or https://".into(),
            ));
        }
        if self.embeddings_base_url.is_some() != self.embeddings_model.is_some() {
            errs.push((
                "memory.embeddings_model".into(),
                "embeddings_base_url and embeddings_model go together".into(),
            ));
        }
        if let Some(v) = &self.embeddings_api_key_env
            && !crate::credential_ref_ok(v)
        {
            errs.push((
                "memory.embeddings_api_key_env".into(),
                crate::credential::CREDENTIAL_REF.into(),
            ));
        }
        errs
    }
}

/// `[failover]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailoverConfig {
    /// The cooldown after the 1st, 2nd, … consecutive failure of a model or key, in seconds;
    /// the last rung repeats.
    #[serde(default = "default_ladder")]
    pub cooldown_secs: Vec<u64>,
}

fn default_ladder() -> Vec<u64> {
    vec![60, 300, 1500, 3600]
}

impl Default for FailoverConfig {
    fn default() -> Self {
        Self {
            cooldown_secs: default_ladder(),
        }
    }
}

impl FailoverConfig {
    /// Whether this is the default.
    pub fn is_default(&self) -> bool {
        self == &Self::default()
    }

    /// The ladder as durations.
    pub fn ladder(&self) -> Vec<std::time::Duration> {
        self.cooldown_secs
            .iter()
            .map(|s| std::time::Duration::from_secs(*s))
            .collect()
    }
}

fn alias_ok(a: &str) -> bool {
    !a.is_empty()
        && a.len() <= 64
        && a.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
}

/// Validation errors, `(key, message)`.
pub(crate) fn errors(
    models: &BTreeMap<String, ModelConfig>,
    providers: &BTreeSet<&str>,
    chains: &[(String, &[String])],
    failover: &FailoverConfig,
) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    for (alias, m) in models {
        if !alias_ok(alias) {
            errs.push((
                format!("models.{alias}"),
                "aliases use letters, digits, -, _ and . (at most 64)".into(),
            ));
        }
        if !providers.contains(m.provider.as_str()) {
            errs.push((
                format!("models.{alias}.provider"),
                format!("no provider named `{}` in [providers]", m.provider),
            ));
        }
        if m.model.trim().is_empty() {
            errs.push((format!("models.{alias}.model"), "must not be empty".into()));
        }
        for (key, price) in [
            ("input_price", m.input_price),
            ("output_price", m.output_price),
        ] {
            if price.is_some_and(|p| !p.is_finite() || p < 0.0) {
                errs.push((
                    format!("models.{alias}.{key}"),
                    "must be a non-negative number (USD per million tokens)".into(),
                ));
            }
        }
        if m.context_window == Some(0) {
            errs.push((
                format!("models.{alias}.context_window"),
                "must be at least 1".into(),
            ));
        }
    }
    for (agent, chain) in chains {
        let mut seen = BTreeSet::new();
        for (i, alias) in chain.iter().enumerate() {
            let key = format!("agents.{agent}.models[{i}]");
            if !models.contains_key(alias) {
                errs.push((key, format!("no model named `{alias}` in [models]")));
            } else if !seen.insert(alias.as_str()) {
                errs.push((key, format!("`{alias}` appears twice in the chain")));
            }
        }
    }
    if failover.cooldown_secs.is_empty()
        || failover
            .cooldown_secs
            .iter()
            .any(|s| !(1..=86_400).contains(s))
    {
        errs.push((
            "failover.cooldown_secs".into(),
            "must list 1 to 86400 seconds per rung, at least one rung".into(),
        ));
    }
    errs
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(provider: &str) -> ModelConfig {
        ModelConfig {
            provider: provider.into(),
            model: "m".into(),
            context_window: None,
            input_price: None,
            output_price: None,
        }
    }

    #[test]
    fn chains_name_known_aliases_once() {
        let models: BTreeMap<String, ModelConfig> = [
            ("a".to_owned(), model("openai")),
            ("b".to_owned(), model("ghost")),
        ]
        .into();
        let providers: BTreeSet<&str> = ["openai"].into();
        let chain = ["a".to_owned(), "a".to_owned(), "zzz".to_owned()];
        let errs = errors(
            &models,
            &providers,
            &[("main".into(), &chain[..])],
            &FailoverConfig::default(),
        );
        let keys: Vec<&str> = errs.iter().map(|e| e.0.as_str()).collect();
        assert_eq!(
            keys,
            [
                "models.b.provider",
                "agents.main.models[1]",
                "agents.main.models[2]"
            ],
            "{errs:?}"
        );
        let bad = FailoverConfig {
            cooldown_secs: vec![],
        };
        assert_eq!(
            errors(&models, &providers, &[], &bad).last().unwrap().0,
            "failover.cooldown_secs"
        );
    }
}
