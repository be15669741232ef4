//! `Action`: the concrete, fully resolved thing a tool call will do. Policy decides on an
//! `Action`, approvals bind to its digest, and only an approved `Action` can run.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::{Capability, RiskTier, ToolName};

/// A resolved tool call: which tool, what capability it uses, the tier its arguments imply, and
/// the resolved details (paths, argv, hosts) as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// The tool that will run.
    pub tool: ToolName,
    /// The capability it exercises.
    pub capability: Capability,
    /// The risk tier implied by the tool and its arguments.
    pub tier: RiskTier,
    /// Resolved details; what an approver sees.
    pub detail: serde_json::Value,
}

/// The sha256 of an action's canonical JSON, hex encoded.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ActionDigest(pub String);

impl Action {
    /// The digest approvals bind to. `serde_json` writes object keys in sorted order (no
    /// `preserve_order` feature), so equal actions always hash equally.
    pub fn digest(&self) -> ActionDigest {
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        ActionDigest(hex::encode(Sha256::digest(bytes)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_is_stable_and_sensitive() {
        let a = Action {
            tool: "time.now".parse().unwrap(),
            capability: Capability::Time,
            tier: RiskTier::L0ReadOnly,
            detail: serde_json::json!({"b": 1, "a": 2}),
        };
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        b.tier = RiskTier::L1Mutating;
        assert_ne!(a.digest(), b.digest());
    }
}
