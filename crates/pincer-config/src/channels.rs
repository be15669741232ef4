//! `[channels.*]`: chat channels. Telegram first.

use serde::{Deserialize, Serialize};

/// Who may talk to the bot in direct messages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DmPolicy {
    /// Unknown senders get a pairing code an operator approves (default).
    #[default]
    Pairing,
    /// Only `allow_from`.
    Allowlist,
    /// Anyone (an explicit choice; `pincer doctor` warns).
    Open,
    /// No direct messages.
    Disabled,
}

/// `[channels]`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelsConfig {
    /// Telegram.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub telegram: Option<TelegramConfig>,
}

/// `[channels.telegram]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Run the channel inside `pincer serve`.
    #[serde(default)]
    pub enabled: bool,
    /// Environment variable holding the bot token (never the token itself).
    #[serde(default = "default_token_env")]
    pub token_env: String,
    /// Bot API base URL (a self-hosted Bot API server, or a test server).
    #[serde(default = "default_api_base")]
    pub api_base: String,
    /// The agent that answers.
    #[serde(default = "default_agent")]
    pub agent: String,
    /// Direct-message policy.
    #[serde(default)]
    pub dm_policy: DmPolicy,
    /// Telegram user ids always allowed in direct messages.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow_from: Vec<i64>,
    /// Group chat ids the bot answers in (when mentioned or replied to).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<i64>,
    /// Long-poll timeout in seconds.
    #[serde(default = "default_poll")]
    pub poll_timeout_secs: u64,
    /// Messages one sender may send per minute before getting a polite notice instead.
    #[serde(default = "default_rate")]
    pub rate_limit_per_minute: u32,
    /// Webhook mode: the public URL Telegram posts updates to (it must reach
    /// `/v1/channels/telegram/webhook` of `pincer serve`). Unset: long polling.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub webhook_url: Option<String>,
    /// Environment variable holding the webhook secret (Telegram sends it back in
    /// `X-Telegram-Bot-Api-Secret-Token`).
    #[serde(default = "default_webhook_secret_env")]
    pub webhook_secret_env: String,
}

fn default_webhook_secret_env() -> String {
    "TELEGRAM_WEBHOOK_SECRET".into()
}

fn default_token_env() -> String {
    "TELEGRAM_BOT_TOKEN".into()
}
fn default_api_base() -> String {
    "https://api.telegram.org".into()
}
fn default_agent() -> String {
    "main".into()
}
fn default_poll() -> u64 {
    25
}
fn default_rate() -> u32 {
    20
}

impl ChannelsConfig {
    /// Semantic errors as `(key, message)`.
    pub(crate) fn errors(&self, agents: &[&str]) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if let Some(t) = &self.telegram {
            for (key, var) in [
                ("channels.telegram.token_env", &t.token_env),
                (
                    "channels.telegram.webhook_secret_env",
                    &t.webhook_secret_env,
                ),
            ] {
                if !crate::credential_ref_ok(var) {
                    errs.push((key.into(), crate::credential::CREDENTIAL_REF.into()));
                }
            }
            if !(t.api_base.starts_with("https://") || t.api_base.starts_with("http://")) {
                errs.push((
                    "channels.telegram.api_base".into(),
                    "must start with https:// or http://".into(),
                ));
            }
            if !agents.contains(&t.agent.as_str()) {
                errs.push((
                    "channels.telegram.agent".into(),
                    format!("no agent `{}` in [agents]", t.agent),
                ));
            }
            if let Some(url) = &t.webhook_url
                && !(url.starts_with("https://") || url.starts_with("http://"))
            {
                errs.push((
                    "channels.telegram.webhook_url".into(),
                    "must be an https:// URL".into(),
                ));
            }
            if t.rate_limit_per_minute == 0 {
                errs.push((
                    "channels.telegram.rate_limit_per_minute".into(),
                    "must be at least 1".into(),
                ));
            }
            if !(1..=50).contains(&t.poll_timeout_secs) {
                errs.push((
                    "channels.telegram.poll_timeout_secs".into(),
                    "must be 1..=50".into(),
                ));
            }
        }
        errs
    }
}
