//! Risk tiers and capabilities: what a tool call could do, and how dangerous that is.

use serde::{Deserialize, Serialize};

/// How much harm an action can do. Ordered: a higher tier is never less risky.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum RiskTier {
    /// Reads only; no state changes anywhere.
    #[serde(rename = "L0_READONLY")]
    L0ReadOnly,
    /// Changes state that can be undone (create or edit a workspace file).
    #[serde(rename = "L1_MUTATING")]
    L1Mutating,
    /// Destroys or overwrites state (delete, overwrite, kill).
    #[serde(rename = "L2_DESTRUCTIVE")]
    L2Destructive,
    /// Acts beyond the workspace or with elevated power (exec, egress, control plane).
    #[serde(rename = "L3_PRIVILEGED")]
    L3Privileged,
}

impl RiskTier {
    /// The wire spelling, e.g. `L0_READONLY`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::L0ReadOnly => "L0_READONLY",
            Self::L1Mutating => "L1_MUTATING",
            Self::L2Destructive => "L2_DESTRUCTIVE",
            Self::L3Privileged => "L3_PRIVILEGED",
        }
    }
}

/// A kind of power a tool needs. Agents are granted capabilities; tools declare them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    /// Read the clock and other harmless facts.
    Time,
    /// Read files under granted roots.
    FsRead,
    /// Write files inside the workspace.
    FsWrite,
    /// Run processes inside the sandbox.
    Exec,
    /// Reach the network through the egress policy.
    Network,
    /// Send messages on channels.
    Messaging,
    /// Read and write the agent's memory.
    Memory,
    /// Schedule work.
    Automation,
    /// Call a tool of an operator-approved MCP server (the server runs sandboxed or behind the
    /// egress policy; what the tool does is the server's).
    Mcp,
}
