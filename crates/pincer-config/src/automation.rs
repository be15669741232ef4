//! Automation settings: `[jobs]` (failure handling for scheduled jobs, F4), `[hooks.<name>]`
//! (authenticated webhooks, F3) and `agents.<id>.heartbeat` (F2).

use std::collections::BTreeMap;

use pincer_scheduler::{ActiveHours, parse_duration};
use serde::{Deserialize, Serialize};

/// `[jobs]`: what happens when a scheduled job's run fails (fails, times out or is canceled).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JobsConfig {
    /// Retries of a failed run (0: none), each after a doubling back-off.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// First retry delay in seconds (then ×2 per retry).
    #[serde(default = "default_backoff")]
    pub retry_backoff_secs: u64,
    /// After this many consecutive failed runs, an alert goes to the job's delivery target.
    #[serde(default = "default_alert_after")]
    pub alert_after: u32,
    /// After this many consecutive failed runs, the job is disabled (and an alert sent).
    #[serde(default = "default_disable_after")]
    pub disable_after: u32,
}

impl Default for JobsConfig {
    fn default() -> Self {
        Self {
            retries: default_retries(),
            retry_backoff_secs: default_backoff(),
            alert_after: default_alert_after(),
            disable_after: default_disable_after(),
        }
    }
}

fn default_retries() -> u32 {
    2
}
fn default_backoff() -> u64 {
    30
}
fn default_alert_after() -> u32 {
    3
}
fn default_disable_after() -> u32 {
    10
}

/// How a webhook sender proves itself.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HookAuth {
    /// `HMAC-SHA256(secret, body)` in the signature header, hex, optionally `sha256=`-prefixed
    /// (GitHub's `X-Hub-Signature-256` shape). Default.
    #[default]
    Hmac,
    /// `Authorization: Bearer <secret>`.
    Bearer,
}

/// Where a run's work goes: a fresh session each time, or one long-lived session.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionMode {
    /// A fresh session per run (default).
    #[default]
    Isolated,
    /// One session that keeps its history.
    Main,
}

impl SessionMode {
    /// `isolated` or `main`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Isolated => "isolated",
            Self::Main => "main",
        }
    }
}

/// `[hooks.<name>]`: `POST /v1/hooks/<name>` runs `agent` with the payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HookConfig {
    /// The agent that handles it.
    #[serde(default = "default_agent")]
    pub agent: String,
    /// Session mode.
    #[serde(default)]
    pub mode: SessionMode,
    /// Signature or bearer secret.
    #[serde(default)]
    pub auth: HookAuth,
    /// Environment variable holding the secret (never the secret itself).
    pub secret_env: String,
    /// Header carrying the HMAC signature.
    #[serde(default = "default_signature_header")]
    pub signature_header: String,
    /// Header carrying the sender's event id (a repeated id is accepted and not run again).
    #[serde(default = "default_event_header")]
    pub event_id_header: String,
    /// The instruction given to the agent before the (untrusted) payload.
    #[serde(default = "default_hook_message")]
    pub message: String,
}

fn default_agent() -> String {
    "main".into()
}
fn default_signature_header() -> String {
    "X-Pincer-Signature".into()
}
fn default_event_header() -> String {
    "X-Pincer-Event-Id".into()
}
fn default_hook_message() -> String {
    "A webhook event arrived. Handle it as your instructions say.".into()
}

/// `agents.<id>.heartbeat`: a periodic check-in driven by the agent's `HEARTBEAT.md`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeartbeatConfig {
    /// Interval (`30m`, `1h`).
    pub every: String,
    /// Local hours it may run in (`08:00-22:00`); unset: all day.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_hours: Option<String>,
    /// IANA time zone of `active_hours`.
    #[serde(default = "default_tz")]
    pub tz: String,
    /// Where a reply that is not `HEARTBEAT_OK` goes (`telegram:<chat id>`); unset: it is only
    /// recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver: Option<String>,
    /// Send every instruction file with each heartbeat. Default `false` keeps heartbeats light:
    /// `SOUL.md` and `RULES.md` only, in a fresh session with no history.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub full_context: bool,
}

fn default_tz() -> String {
    "UTC".into()
}

fn header_ok(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// Checks a delivery target's shape: `telegram:<chat id>` or an `https://` URL.
pub fn delivery_target_error(s: &str) -> Option<String> {
    if let Some(chat) = s.strip_prefix("telegram:") {
        return chat
            .parse::<i64>()
            .is_err()
            .then(|| format!("`{s}`: expected telegram:<numeric chat id>"));
    }
    if s.starts_with("https://") && s.len() > "https://".len() {
        return None;
    }
    Some(format!(
        "`{s}`: expected telegram:<chat id> or an https:// URL"
    ))
}

impl JobsConfig {
    pub(crate) fn errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if self.retry_backoff_secs == 0 {
            errs.push((
                "jobs.retry_backoff_secs".into(),
                "must be at least 1".into(),
            ));
        }
        if self.alert_after == 0 {
            errs.push(("jobs.alert_after".into(), "must be at least 1".into()));
        }
        if self.disable_after == 0 {
            errs.push(("jobs.disable_after".into(), "must be at least 1".into()));
        }
        if self.retries > 10 {
            errs.push(("jobs.retries".into(), "must be at most 10".into()));
        }
        errs
    }
}

/// Semantic errors of `[hooks]`.
pub(crate) fn hook_errors(
    hooks: &BTreeMap<String, HookConfig>,
    agents: &[&str],
) -> Vec<(String, String)> {
    let mut errs = Vec::new();
    for (name, h) in hooks {
        let key = |k: &str| format!("hooks.{name}.{k}");
        let name_ok = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !name_ok {
            errs.push((
                format!("hooks.{name}"),
                "hook names use a-z, 0-9, _ and - (at most 64)".into(),
            ));
        }
        if !agents.contains(&h.agent.as_str()) {
            errs.push((key("agent"), format!("no agent `{}` in [agents]", h.agent)));
        }
        if !crate::credential_ref_ok(&h.secret_env) {
            errs.push((key("secret_env"), crate::credential::CREDENTIAL_REF.into()));
        }
        if !header_ok(&h.signature_header) {
            errs.push((key("signature_header"), "must be a header name".into()));
        }
        if !header_ok(&h.event_id_header) {
            errs.push((key("event_id_header"), "must be a header name".into()));
        }
    }
    errs
}

impl HeartbeatConfig {
    pub(crate) fn errors(&self, agent: &str) -> Vec<(String, String)> {
        let key = |k: &str| format!("agents.{agent}.heartbeat.{k}");
        let mut errs = Vec::new();
        if let Err(e) = parse_duration(&self.every) {
            errs.push((key("every"), e.to_string()));
        }
        if let Some(h) = &self.active_hours
            && let Err(e) = ActiveHours::parse(h)
        {
            errs.push((key("active_hours"), e.to_string()));
        }
        if pincer_scheduler::jiff::tz::TimeZone::get(&self.tz).is_err() {
            errs.push((key("tz"), format!("unknown time zone `{}`", self.tz)));
        }
        if let Some(d) = &self.deliver
            && let Some(e) = delivery_target_error(d)
        {
            errs.push((key("deliver"), e));
        }
        errs
    }
}
