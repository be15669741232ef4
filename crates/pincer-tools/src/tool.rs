//! The `Tool` seam.

use std::future::Future;
use std::pin::Pin;

use pincer_policy::Approved;
use pincer_types::{Action, Capability, RiskTier, ToolName};

/// What a tool is, as shown to the model and to policy.
#[derive(Debug, Clone, PartialEq)]
pub struct ToolSpec {
    /// Canonical name (`time.now`).
    pub name: ToolName,
    /// What it does, for the model.
    pub description: String,
    /// JSON Schema of its arguments object.
    pub parameters: serde_json::Value,
    /// The capability it exercises.
    pub capability: Capability,
    /// Its tier before arguments raise it.
    pub base_tier: RiskTier,
}

/// A tool's result as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Result text (usually JSON).
    pub content: String,
}

/// A tool failure. Every variant is shown to the model so it can correct itself; `Internal` is
/// also logged as a fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments did not match the schema.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
    /// An internal fault.
    #[error("internal error: {0}")]
    Internal(String),
}

/// The future a tool's `run` returns.
pub type ToolFuture<'a> = Pin<Box<dyn Future<Output = Result<ToolOutput, ToolError>> + Send + 'a>>;

/// A capability-gated tool.
///
/// Implementors guarantee: `plan` has no side effects and returns an [`Action`] whose `tier` is
/// at least `spec().base_tier`; `run` does exactly what the approved action describes and
/// nothing else; neither panics on any input.
pub trait Tool: Send + Sync + std::fmt::Debug {
    /// The tool's description.
    fn spec(&self) -> &ToolSpec;
    /// Validates `args` and resolves them into an action.
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] when the arguments are wrong.
    fn plan(&self, args: &serde_json::Value) -> Result<Action, ToolError>;
    /// Runs an approved action.
    fn run(&self, action: Approved<Action>) -> ToolFuture<'_>;
}
