//! Agents and the run loop: agent directories, deterministic prompt assembly, the explicit run
//! state machine (input → prompt → model → tool calls → finalize), run bundles, and session
//! history.
//!
//! Invariants: the same agent files and tools always give the same prompt and prompt hash; every
//! run that starts writes a bundle and ends it with a final status, whatever went wrong; every
//! tool call passes `pincer_policy::authorize` before it runs.

mod breaker;
mod bundle;
mod error;
mod files;
mod prompt;
mod run;

pub use bundle::{RunBundle, RunMeta};
pub use error::AgentError;
pub use files::{AGENT_FILES, AgentFile, scaffold_agent};
pub use prompt::{AssembledPrompt, FileSection, assemble_prompt};
pub use run::{RunOutcome, RunRequest, RunSettings, Runner};
