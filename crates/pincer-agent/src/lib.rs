//! Agents and the run loop: agent directories, deterministic prompt assembly, the explicit run
//! state machine (input → prompt → model → tool calls → finalize), run bundles, and session
//! history.
//!
//! Invariants: the same agent files and tools always give the same prompt and prompt hash; every
//! run that starts writes a bundle and ends it with a final status, whatever went wrong; every
//! tool call passes through the [`Gate`] (plan → policy → approval → run), which records it in
//! the audit log first and refuses to run anything it cannot record.

mod breaker;
mod bundle;
mod compact;
mod error;
mod filecache;
mod files;
mod gate;
mod prompt;
pub mod provenance;
mod run;
pub mod skills;
pub mod stats;

pub use bundle::{RunBundle, RunMeta};
pub use compact::{Compaction, ContextLimits, SUMMARY_PROMPT, compact, needs_compaction};
pub use error::AgentError;
pub use files::{AGENT_FILES, AgentFile, scaffold_agent};
pub use gate::{
    ApprovalAnswer, ApprovalFuture, ApprovalRequest, Approver, CallOutcome, CallScope, CallStatus,
    ControlsFuture, Gate, Governor, NoApprover, Ungoverned, summarize,
};
pub use prompt::{
    AssembledPrompt, DATA_NOTICE, FileSection, LIGHT_FILES, assemble_light_prompt, assemble_prompt,
};
pub use run::{RunOutcome, RunRequest, RunSettings, Runner};
pub use skills::{RunSkill, SkillSource, SkillsFuture};
