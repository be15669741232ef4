//! Skills with trust (G1, G2).
//!
//! A skill is a directory with `SKILL.md` — YAML front matter (`name`, `description`,
//! `version` and a `permissions` manifest) then Markdown instructions — and optional resource
//! files. Skills come only from a folder or a git repository the operator names; nothing is
//! fetched from a marketplace.
//!
//! - [`manifest`]: parsing `SKILL.md` (bounded, no YAML aliases or tags).
//! - [`tree`]: reading a skill's files safely and hashing them (the hash an operator approves).
//! - [`scan`]: the static scan — `approve`, `warn` or `block` with reasons.
//! - [`source`]: where a skill comes from (a folder, a local git repository, a trusted git URL
//!   fetched through the egress proxy).
//! - [`ops`]: install, approve, enable, disable, rescan, revoke, remove — every step audited,
//!   state in the store ([`pincer_store::SkillStore`]), files in `<home>/skills/<name>/`
//!   (protected: tools cannot write there).
//! - [`runtime`]: what runs get — the installed skills verified against their approved hash
//!   before every run (a changed file quarantines the skill), and the `skill.read` tool.

pub mod manifest;
pub mod ops;
pub mod runtime;
pub mod scan;
pub mod source;
pub mod tree;

pub use ops::{Skills, Validated};
pub use runtime::{SkillRead, SkillRuntime};

/// Why a skill operation failed.
#[derive(Debug, thiserror::Error)]
pub enum SkillError {
    /// `SKILL.md` is missing or malformed.
    #[error("SKILL.md: {0}")]
    Manifest(String),
    /// A file of the skill is refused (link, special file, too large, too many).
    #[error("refused: {0}")]
    Tree(String),
    /// The scan blocked it.
    #[error("blocked by the scan: {0}")]
    Blocked(String),
    /// The source is not allowed (not allowlisted, unsupported scheme).
    #[error("source refused: {0}")]
    Source(String),
    /// Fetching with git failed.
    #[error("git: {0}")]
    Git(String),
    /// No such skill.
    #[error("no skill `{0}` is installed")]
    NotFound(String),
    /// The operation does not apply in the skill's state.
    #[error("{0}")]
    State(String),
    /// The store failed.
    #[error("store: {0}")]
    Store(#[from] pincer_store::StoreError),
    /// The audit log failed (the step was not taken).
    #[error("audit log: {0}")]
    Audit(String),
    /// A file operation failed.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

impl SkillError {
    /// A stable code for the API.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Manifest(_) => "skill_manifest_invalid",
            Self::Tree(_) => "skill_file_refused",
            Self::Blocked(_) => "skill_blocked",
            Self::Source(_) => "skill_source_refused",
            Self::Git(_) => "skill_fetch_failed",
            Self::NotFound(_) => "skill_not_found",
            Self::State(_) => "skill_state_conflict",
            Self::Store(_) | Self::Audit(_) | Self::Io(_) => "skill_internal",
        }
    }
}
