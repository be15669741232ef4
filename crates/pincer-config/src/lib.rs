//! Pincer's configuration: the home directory, the `config.toml` schema with secure defaults,
//! loading with file/line/key-precise errors, atomic writes and the last-known-good copy.
//!
//! Invariants:
//! - `config.toml` is human-controlled: nothing in this crate is reachable from a tool.
//! - Unknown keys are rejected; a config that does not validate is never written.
//! - Every write is atomic (temp file → fsync → rename → fsync directory); a successful load keeps
//!   `config.last-good.toml` up to date, and a broken current file falls back to it loudly.

mod atomic;
mod audit;
mod automation;
mod channels;
mod credential;
mod edit;
mod error;
mod exec;
mod governance;
mod home;
mod load;
mod locate;
mod mcp;
mod models;
mod names;
mod retention;
mod schema;
mod skills;
mod storage;
mod telemetry;
mod web;

pub use atomic::{atomic_write, atomic_write_with_hook};
pub use audit::AuditConfig;
pub use automation::{
    HeartbeatConfig, HookAuth, HookConfig, JobsConfig, SessionMode, delivery_target_error,
};
pub use channels::{ChannelsConfig, DmPolicy, TelegramConfig};
pub use credential::{credential_fields, credential_ref_ok, env_name_ok};
pub use edit::{get_value, remove_value, set_table, set_value};
pub use error::ConfigError;
pub use exec::{ExecConfig, ProcessCleanup, SandboxProvider, argv_prefix};
pub use governance::{BypassPolicy, BypassTier, GovernanceConfig, Quota};
pub use home::PincerHome;
pub use load::{LoadedConfig, load, parse_and_validate, save};
pub use mcp::{McpConfig, McpServerConfig, env_reference, server_name_error};
pub use models::{BudgetsConfig, FailoverConfig, Limits, MemoryConfig, ModelConfig};
pub use retention::RetentionConfig;
pub use schema::{
    AgentConfig, ApprovalMode, CONFIG_VERSION, Config, ExecMode, GatewayConfig, NetworkMode,
    PromptLimits, ProviderConfig, ProviderKind, SecurityConfig, ToolGroup, ToolProfile,
    ToolSelector,
};
pub use skills::SkillsConfig;
pub use storage::StorageConfig;
pub use telemetry::TelemetryConfig;
pub use web::{BrowserConfig, SearchBackend, SearchConfig, WebConfig};
