//! The `config.toml` schema. Every table rejects unknown keys, and every default is the secure
//! one: no exec, no network, loopback-only gateway, `balanced` approvals.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use pincer_types::{AgentId, ToolName};

use crate::channels::ChannelsConfig;
use crate::exec::{ExecConfig, SandboxProvider};

fn is_default_channels(c: &ChannelsConfig) -> bool {
    *c == ChannelsConfig::default()
}
fn is_default_jobs(c: &crate::JobsConfig) -> bool {
    *c == crate::JobsConfig::default()
}
use serde::{Deserialize, Serialize};

/// The config schema version this build reads and writes.
pub const CONFIG_VERSION: u32 = 1;

/// The whole of `config.toml`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Schema version; must be [`CONFIG_VERSION`].
    pub version: u32,
    /// The HTTP gateway.
    #[serde(default)]
    pub gateway: GatewayConfig,
    /// Global security switches.
    #[serde(default)]
    pub security: SecurityConfig,
    /// Where state lives: the embedded SQLite database (default) or Postgres.
    #[serde(default, skip_serializing_if = "crate::StorageConfig::is_default")]
    pub storage: crate::StorageConfig,
    /// Limits for sandboxed commands.
    #[serde(default)]
    pub exec: ExecConfig,
    /// Chat channels.
    #[serde(default, skip_serializing_if = "is_default_channels")]
    pub channels: ChannelsConfig,
    /// Failure handling of scheduled jobs.
    #[serde(default, skip_serializing_if = "is_default_jobs")]
    pub jobs: crate::JobsConfig,
    /// Authenticated webhooks by name (`POST /v1/hooks/<name>`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub hooks: BTreeMap<String, crate::HookConfig>,
    /// Model providers by name.
    #[serde(default)]
    pub providers: BTreeMap<String, ProviderConfig>,
    /// Named models (provider + model + prices) agents can fall back through.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub models: BTreeMap<String, crate::ModelConfig>,
    /// The cooldown ladder of failing models and keys.
    #[serde(default, skip_serializing_if = "crate::FailoverConfig::is_default")]
    pub failover: crate::FailoverConfig,
    /// Users, approver rules, bypass policy and quotas.
    #[serde(default, skip_serializing_if = "crate::GovernanceConfig::is_default")]
    pub governance: crate::GovernanceConfig,
    /// Token and cost limits, checked before every model call.
    #[serde(default, skip_serializing_if = "crate::BudgetsConfig::is_default")]
    pub budgets: crate::BudgetsConfig,
    /// Memory search: the optional embeddings model.
    #[serde(default, skip_serializing_if = "crate::MemoryConfig::is_default")]
    pub memory: crate::MemoryConfig,
    /// Web access: `http.fetch` limits and the `web.search` backend.
    #[serde(default, skip_serializing_if = "crate::WebConfig::is_default")]
    pub web: crate::WebConfig,
    /// MCP tool servers (`[mcp.servers.<name>]`).
    #[serde(default, skip_serializing_if = "crate::McpConfig::is_default")]
    pub mcp: crate::McpConfig,
    /// Skills: trusted git sources.
    #[serde(default, skip_serializing_if = "crate::SkillsConfig::is_default")]
    pub skills: crate::SkillsConfig,
    /// The audit chain's external witness.
    #[serde(default, skip_serializing_if = "crate::AuditConfig::is_default")]
    pub audit: crate::AuditConfig,
    /// How long runs, tasks, conversations, outbox entries and audit day files are kept.
    #[serde(default, skip_serializing_if = "crate::RetentionConfig::is_default")]
    pub retention: crate::RetentionConfig,
    /// OpenTelemetry traces.
    #[serde(default, skip_serializing_if = "crate::TelemetryConfig::is_default")]
    pub telemetry: crate::TelemetryConfig,
    /// Agents by id.
    #[serde(default)]
    pub agents: BTreeMap<AgentId, AgentConfig>,
}

/// `[gateway]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GatewayConfig {
    /// Listen address; loopback unless `allow_non_loopback`.
    #[serde(default = "default_bind")]
    pub bind: SocketAddr,
    /// Explicit opt-in to a non-loopback `bind`; `pincer serve` still refuses it while no API
    /// token exists.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_non_loopback: bool,
    /// Tasks run at once across all agents.
    #[serde(default = "default_workers")]
    pub workers: usize,
    /// How long a worker's claim on a task holds without a heartbeat; after a crash, its tasks
    /// are ended (never re-run) once this passes.
    #[serde(default = "default_lease")]
    pub lease_secs: u64,
    /// How long an approval request waits for a decision before it counts as denied.
    #[serde(default = "default_approval_ttl")]
    pub approval_ttl_secs: u64,
    /// Serve `POST /v1/chat/completions` (OpenAI-compatible; `model` names the agent). Off by
    /// default.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub openai_compat: bool,
    /// `Host` names the API answers besides IP literals and `localhost` (DNS rebinding
    /// defence), e.g. the name a reverse proxy forwards.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_hosts: Vec<String>,
    /// Browser origins allowed besides the server's own (`https://admin.example`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allowed_origins: Vec<String>,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        Self {
            bind: default_bind(),
            allow_non_loopback: false,
            workers: default_workers(),
            lease_secs: default_lease(),
            approval_ttl_secs: default_approval_ttl(),
            openai_compat: false,
            allowed_hosts: Vec::new(),
            allowed_origins: Vec::new(),
        }
    }
}

fn default_workers() -> usize {
    4
}

fn default_lease() -> u64 {
    30
}

fn default_approval_ttl() -> u64 {
    600
}

fn default_bind() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7878))
}

/// Whether agents may run commands.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExecMode {
    /// No command execution at all (default).
    #[default]
    Off,
    /// Commands run only inside an enforced sandbox.
    Sandboxed,
}

/// Whether agents may reach the network.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NetworkMode {
    /// No egress (default).
    #[default]
    Off,
    /// Only allowlisted hosts.
    Allowlist,
}

/// Which risk tiers need a human's approval.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ApprovalMode {
    /// L1 and above need approval.
    Strict,
    /// L2 and above need approval (default).
    #[default]
    Balanced,
    /// Only L3 needs approval.
    Trusted,
}

/// A named base set of tools for an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ToolProfile {
    /// The clock only (default): an agent that can talk and nothing else.
    #[default]
    Minimal,
    /// Files, patches, code search, memory and (when enabled) sandboxed exec.
    Coding,
    /// Sending messages and memory.
    Messaging,
    /// Every tool Pincer has. Global switches (exec, network) and approvals still apply.
    Full,
}

/// A named group of tools, written `group:<name>` in `allow` and `deny`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ToolGroup {
    /// `group:fs`: reading, listing, writing, editing, patching and searching files.
    Fs,
    /// `group:runtime`: sandboxed command execution.
    Runtime,
    /// `group:web`: fetching and searching the web.
    Web,
    /// `group:browser`: the managed browser.
    Browser,
    /// `group:memory`: the agent's memory.
    Memory,
    /// `group:messaging`: sending messages on channels.
    Messaging,
    /// `group:automation`: schedules and webhooks.
    Automation,
}

impl ToolGroup {
    /// Every group.
    pub const ALL: [Self; 7] = [
        Self::Fs,
        Self::Runtime,
        Self::Web,
        Self::Browser,
        Self::Memory,
        Self::Messaging,
        Self::Automation,
    ];

    /// The name after `group:`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Fs => "fs",
            Self::Runtime => "runtime",
            Self::Web => "web",
            Self::Browser => "browser",
            Self::Memory => "memory",
            Self::Messaging => "messaging",
            Self::Automation => "automation",
        }
    }
}

/// One entry of `allow` / `deny`: a tool name or `group:<name>`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ToolSelector {
    /// A single tool.
    Tool(ToolName),
    /// A group of tools.
    Group(ToolGroup),
    /// Every approved tool of one MCP server (`group:mcp:<server>`).
    McpServer(String),
}

impl std::str::FromStr for ToolSelector {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if let Some(server) = s.strip_prefix("group:mcp:") {
            return match crate::mcp::server_name_error(server) {
                None => Ok(Self::McpServer(server.to_owned())),
                Some(m) => Err(format!("`{s}`: {m}")),
            };
        }
        if let Some(g) = s.strip_prefix("group:") {
            return ToolGroup::ALL
                .into_iter()
                .find(|x| x.as_str() == g)
                .map(Self::Group)
                .ok_or_else(|| {
                    let known: Vec<String> = ToolGroup::ALL
                        .iter()
                        .map(|g| format!("group:{}", g.as_str()))
                        .collect();
                    format!("unknown tool group `{s}` (known: {})", known.join(", "))
                });
        }
        s.parse().map(Self::Tool).map_err(|e| format!("{e}"))
    }
}

impl std::fmt::Display for ToolSelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Tool(t) => write!(f, "{t}"),
            Self::Group(g) => write!(f, "group:{}", g.as_str()),
            Self::McpServer(s) => write!(f, "group:mcp:{s}"),
        }
    }
}

impl Serialize for ToolSelector {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ToolSelector {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// `[security]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecurityConfig {
    /// Command execution.
    #[serde(default)]
    pub exec: ExecMode,
    /// Which sandbox runs commands when `exec = "sandboxed"`; `none` removes the exec tools.
    #[serde(default)]
    pub sandbox: SandboxProvider,
    /// Network egress.
    #[serde(default)]
    pub network: NetworkMode,
    /// Hosts Pincer itself may reach when `network = "allowlist"` (job delivery webhooks);
    /// private, loopback, link-local and metadata addresses stay blocked whatever is listed.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_allow: Vec<String>,
    /// Private addresses Pincer may reach anyway, each named with its port
    /// (`["homeassistant.lan:8123", "10.0.0.5:443"]`): the LAN services people use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress_allow_private: Vec<String>,
    /// Default approval mode for agents that do not set one.
    #[serde(default)]
    pub approval_mode: ApprovalMode,
    /// Extra secret shapes to redact from the audit log, by name (`internal = "corp_[A-Za-z0-9]{20}"`);
    /// matches become `[REDACTED:<name>]`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub redact_patterns: BTreeMap<String, String>,
}

/// Which wire format a provider speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    /// OpenAI chat completions (also OpenRouter, Ollama, vLLM, llama.cpp, LM Studio, Groq, …).
    Openai,
    /// Anthropic Messages.
    Anthropic,
    /// Google Gemini `generateContent`.
    Gemini,
}

/// `[providers.<name>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderConfig {
    /// Wire format.
    pub kind: ProviderKind,
    /// API base URL, e.g. `https://api.openai.com/v1` or `http://127.0.0.1:11434/v1`.
    pub base_url: String,
    /// Name of the environment variable that holds the API key (none for local servers).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// More keys for the same provider (environment variable names), rotated after
    /// `api_key_env` when a key is rate-limited or refused, before the chain moves on.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub api_key_envs: Vec<String>,
    /// Whole-request timeout in seconds (streaming included).
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    /// Connect timeout in seconds.
    #[serde(default = "default_connect_timeout")]
    pub connect_timeout_secs: u64,
    /// Retries on 429/5xx/network errors before the first byte of an answer.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
    /// First back-off delay in milliseconds (doubles each retry, capped at 30 s; `Retry-After`
    /// wins when the server sends it).
    #[serde(default = "default_backoff")]
    pub retry_base_ms: u64,
    /// Use server-sent-event streaming (default true).
    #[serde(default = "default_true")]
    pub stream: bool,
}

fn default_timeout() -> u64 {
    300
}
fn default_connect_timeout() -> u64 {
    10
}
fn default_retries() -> u32 {
    3
}
fn default_backoff() -> u64 {
    500
}
fn default_true() -> bool {
    true
}

/// `[agents.<id>.prompt]`: prompt assembly caps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptLimits {
    /// Most bytes taken from any one instruction file.
    #[serde(default = "default_file_cap")]
    pub file_cap_bytes: usize,
    /// Most bytes in the whole assembled system prompt.
    #[serde(default = "default_total_cap")]
    pub total_cap_bytes: usize,
}

impl Default for PromptLimits {
    fn default() -> Self {
        Self {
            file_cap_bytes: default_file_cap(),
            total_cap_bytes: default_total_cap(),
        }
    }
}

fn default_file_cap() -> usize {
    20_000
}
fn default_total_cap() -> usize {
    100_000
}

/// `[agents.<id>]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Name of the provider in `[providers]`.
    #[serde(default = "default_provider")]
    pub provider: String,
    /// Model name sent to the provider (not needed with `models`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub model: String,
    /// Failover chain of `[models]` aliases, first is the default; replaces `provider`/`model`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub models: Vec<String>,
    /// Writable root; default `$PINCER_HOME/workspaces/<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workspace: Option<PathBuf>,
    /// The base tool set; `allow` adds to it and `deny` removes from it.
    #[serde(default)]
    pub profile: ToolProfile,
    /// Extra tools or groups (`group:fs`) on top of the profile.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allow: Vec<ToolSelector>,
    /// Tools or groups this agent never gets; deny always wins over profile and allow.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deny: Vec<ToolSelector>,
    /// Extra read-only roots by name (`docs = "/usr/share/doc"`); file tools reach them with
    /// `root = "docs"`. Nothing outside the workspace is ever writable.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub read_roots: BTreeMap<String, PathBuf>,
    /// Commands `shell.exec` may run at a lower risk tier (`L1_MUTATING` instead of
    /// `L2_DESTRUCTIVE`), as argv prefixes: `"cargo test"` matches `cargo test --all` but not
    /// `cargo testx` or `sh -c "cargo test"`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exec_allow: Vec<String>,
    /// Approval mode; default from `[security]`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval_mode: Option<ApprovalMode>,
    /// Most model calls in one run.
    #[serde(default = "default_max_steps")]
    pub max_steps: u32,
    /// Wall-clock limit of one run, in seconds.
    #[serde(default = "default_run_timeout")]
    pub run_timeout_secs: u64,
    /// `max_tokens` sent with each model request.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// The model's context window in tokens (default: the first model's
    /// `models.<alias>.context_window`, else 32000).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context_window: Option<u64>,
    /// Compact what is sent past this fraction of the context window (default 0.8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compact_at: Option<f64>,
    /// IANA time zone of the agent's daily memory notes (default UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
    /// Prompt assembly caps.
    #[serde(default)]
    pub prompt: PromptLimits,
    /// Periodic check-in; unset: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub heartbeat: Option<crate::HeartbeatConfig>,
}

fn default_provider() -> String {
    "default".to_owned()
}
fn default_max_steps() -> u32 {
    16
}
fn default_run_timeout() -> u64 {
    600
}
fn default_max_tokens() -> u32 {
    4096
}

impl AgentConfig {
    /// A new agent on `provider` using `model`, everything else default.
    pub fn new(provider: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            provider: provider.into(),
            model: model.into(),
            models: Vec::new(),
            workspace: None,
            profile: ToolProfile::default(),
            allow: Vec::new(),
            deny: Vec::new(),
            read_roots: BTreeMap::new(),
            exec_allow: Vec::new(),
            approval_mode: None,
            max_steps: default_max_steps(),
            run_timeout_secs: default_run_timeout(),
            max_tokens: default_max_tokens(),
            context_window: None,
            compact_at: None,
            timezone: None,
            prompt: PromptLimits::default(),
            heartbeat: None,
        }
    }
}

impl ProviderConfig {
    /// A provider of `kind` at `base_url`, everything else default.
    pub fn new(
        kind: ProviderKind,
        base_url: impl Into<String>,
        api_key_env: Option<String>,
    ) -> Self {
        Self {
            kind,
            base_url: base_url.into(),
            api_key_env,
            api_key_envs: Vec::new(),
            timeout_secs: default_timeout(),
            connect_timeout_secs: default_connect_timeout(),
            max_retries: default_retries(),
            retry_base_ms: default_backoff(),
            stream: true,
        }
    }
}

impl Config {
    /// An empty config at the current version with secure defaults.
    pub fn new() -> Self {
        Self {
            version: CONFIG_VERSION,
            gateway: GatewayConfig::default(),
            security: SecurityConfig::default(),
            storage: crate::StorageConfig::default(),
            exec: ExecConfig::default(),
            channels: ChannelsConfig::default(),
            jobs: crate::JobsConfig::default(),
            hooks: BTreeMap::new(),
            providers: BTreeMap::new(),
            models: BTreeMap::new(),
            failover: crate::FailoverConfig::default(),
            budgets: crate::BudgetsConfig::default(),
            governance: crate::GovernanceConfig::default(),
            memory: crate::MemoryConfig::default(),
            web: crate::WebConfig::default(),
            mcp: crate::McpConfig::default(),
            skills: crate::SkillsConfig::default(),
            audit: crate::AuditConfig::default(),
            retention: crate::RetentionConfig::default(),
            telemetry: crate::TelemetryConfig::default(),
            agents: BTreeMap::new(),
        }
    }

    /// The config as TOML text (no comments).
    ///
    /// # Errors
    /// Only if a value cannot be represented in TOML, which the schema rules out.
    pub fn to_toml(&self) -> Result<String, toml::ser::Error> {
        toml::to_string_pretty(self)
    }

    /// The approval mode in force for an agent.
    pub fn approval_mode(&self, agent: &AgentId) -> ApprovalMode {
        self.agents
            .get(agent)
            .and_then(|a| a.approval_mode)
            .unwrap_or(self.security.approval_mode)
    }

    /// Semantic checks serde cannot express. Returns `(dotted key, message)` pairs.
    pub(crate) fn semantic_errors(&self) -> Vec<(String, String)> {
        let mut errs = Vec::new();
        if self.version != CONFIG_VERSION {
            errs.push((
                "version".to_owned(),
                format!(
                    "unsupported version {} (this Pincer reads version {CONFIG_VERSION})",
                    self.version
                ),
            ));
        }
        if !(1..=86_400).contains(&self.gateway.approval_ttl_secs) {
            errs.push((
                "gateway.approval_ttl_secs".to_owned(),
                "must be 1..=86400".into(),
            ));
        }
        if !(1..=3600).contains(&self.gateway.lease_secs) {
            errs.push(("gateway.lease_secs".to_owned(), "must be 1..=3600".into()));
        }
        if self.gateway.workers == 0 || self.gateway.workers > 256 {
            errs.push(("gateway.workers".to_owned(), "must be 1..=256".into()));
        }
        if !self.gateway.bind.ip().is_loopback() && !self.gateway.allow_non_loopback {
            errs.push((
                "gateway.bind".to_owned(),
                format!(
                    "{} is not a loopback address; Pincer binds loopback only unless `gateway.allow_non_loopback = true` (and `pincer serve` also needs an API token to exist)",
                    self.gateway.bind
                ),
            ));
        }
        for (name, p) in &self.providers {
            if !(p.base_url.starts_with("http://") || p.base_url.starts_with("https://")) {
                errs.push((
                    format!("providers.{name}.base_url"),
                    "must start with http:// or https://".into(),
                ));
            }
            let vars = p
                .api_key_env
                .iter()
                .map(|v| (format!("providers.{name}.api_key_env"), v))
                .chain(
                    p.api_key_envs
                        .iter()
                        .enumerate()
                        .map(|(i, v)| (format!("providers.{name}.api_key_envs[{i}]"), v)),
                );
            for (key, var) in vars {
                if !crate::credential_ref_ok(var) {
                    errs.push((key, crate::credential::CREDENTIAL_REF.into()));
                }
            }
            if !p.api_key_envs.is_empty() && p.api_key_env.is_none() {
                errs.push((
                    format!("providers.{name}.api_key_envs"),
                    "extra keys need providers.{name}.api_key_env first".into(),
                ));
            }
            if p.timeout_secs == 0 {
                errs.push((
                    format!("providers.{name}.timeout_secs"),
                    "must be at least 1".into(),
                ));
            }
        }
        let key_vars: Vec<&str> = self
            .providers
            .values()
            .flat_map(|p| p.api_key_env.iter().chain(&p.api_key_envs))
            .map(String::as_str)
            .collect();
        let provider_names: std::collections::BTreeSet<&str> =
            self.providers.keys().map(String::as_str).collect();
        let chains: Vec<(String, &[String])> = self
            .agents
            .iter()
            .map(|(id, a)| (id.to_string(), a.models.as_slice()))
            .collect();
        errs.extend(crate::models::errors(
            &self.models,
            &provider_names,
            &chains,
            &self.failover,
        ));
        errs.extend(self.exec.errors(&key_vars));
        let agent_names: Vec<&str> = self.agents.keys().map(AgentId::as_str).collect();
        errs.extend(self.channels.errors(&agent_names));
        errs.extend(self.budgets.errors(&agent_names));
        errs.extend(self.governance.errors());
        errs.extend(self.memory.errors());
        errs.extend(self.mcp.errors());
        errs.extend(self.skills.errors());
        errs.extend(self.audit.errors());
        errs.extend(self.retention.errors());
        errs.extend(self.telemetry.errors());
        errs.extend(self.jobs.errors());
        errs.extend(crate::automation::hook_errors(&self.hooks, &agent_names));
        errs.extend(self.storage.errors());
        for (i, a) in self.security.egress_allow_private.iter().enumerate() {
            if let Some(m) = crate::names::host_port_error(a) {
                errs.push((format!("security.egress_allow_private[{i}]"), m.into()));
            }
        }
        errs.extend(self.web.errors());
        errs.extend(crate::names::errors(
            &self.security.egress_allow,
            &self.gateway.allowed_hosts,
            &self.gateway.allowed_origins,
        ));
        for (id, a) in &self.agents {
            for (i, entry) in a.exec_allow.iter().enumerate() {
                if entry.split_whitespace().next().is_none() {
                    errs.push((
                        format!("agents.{id}.exec_allow[{i}]"),
                        "must name a command (e.g. \"cargo test\")".into(),
                    ));
                }
            }
            if a.models.is_empty() {
                if !self.providers.contains_key(&a.provider) {
                    errs.push((
                        format!("agents.{id}.provider"),
                        format!("no provider named `{}` in [providers]", a.provider),
                    ));
                }
                if a.model.trim().is_empty() {
                    errs.push((
                        format!("agents.{id}.model"),
                        "must not be empty (or name a failover chain in agents.{id}.models)".into(),
                    ));
                }
            }
            if let Some(hb) = &a.heartbeat {
                errs.extend(hb.errors(id.as_str()));
            }
            if let Some(tz) = &a.timezone
                && let Err(e) = pincer_scheduler::check_zone(tz)
            {
                errs.push((format!("agents.{id}.timezone"), e.to_string()));
            }
            if a.context_window.is_some_and(|w| w < 1024) {
                errs.push((
                    format!("agents.{id}.context_window"),
                    "must be at least 1024 tokens".into(),
                ));
            }
            if a.compact_at.is_some_and(|f| !(f > 0.1 && f <= 1.0)) {
                errs.push((
                    format!("agents.{id}.compact_at"),
                    "must be a fraction in (0.1, 1]".into(),
                ));
            }
            if a.max_steps == 0 {
                errs.push((
                    format!("agents.{id}.max_steps"),
                    "must be at least 1".into(),
                ));
            }
            if a.run_timeout_secs == 0 {
                errs.push((
                    format!("agents.{id}.run_timeout_secs"),
                    "must be at least 1".into(),
                ));
            }
            if let Some(ws) = &a.workspace
                && !ws.is_absolute()
            {
                errs.push((
                    format!("agents.{id}.workspace"),
                    "must be an absolute path".into(),
                ));
            }
            for (name, path) in &a.read_roots {
                let ok_name = !name.is_empty()
                    && name != "workspace"
                    && name
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
                if !ok_name {
                    errs.push((
                        format!("agents.{id}.read_roots.{name}"),
                        "root names use a-z, 0-9, _ and - and cannot be `workspace`".into(),
                    ));
                }
                if !path.is_absolute() {
                    errs.push((
                        format!("agents.{id}.read_roots.{name}"),
                        "must be an absolute path".into(),
                    ));
                }
            }
            if a.prompt.file_cap_bytes == 0 || a.prompt.total_cap_bytes < a.prompt.file_cap_bytes {
                errs.push((
                    format!("agents.{id}.prompt"),
                    "file_cap_bytes must be > 0 and total_cap_bytes >= file_cap_bytes".into(),
                ));
            }
        }
        errs
    }
}

impl Default for Config {
    fn default() -> Self {
        Self::new()
    }
}
