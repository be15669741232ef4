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
    /// Set when the action is a sensitive sink (D9): what kind, and its security-relevant
    /// arguments, which must be grounded in trusted content when the turn is tainted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sink: Option<Sink>,
}

impl Action {
    /// The same action marked as a sensitive sink with `args`.
    #[must_use]
    pub fn with_sink(mut self, kind: SinkKind, args: Vec<SinkArg>) -> Self {
        self.sink = Some(Sink { kind, args });
        self
    }
}

/// A sensitive sink: an action untrusted content must not be able to steer (D9).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sink {
    /// What kind.
    pub kind: SinkKind,
    /// Its security-relevant arguments (none: it can never be grounded, so a tainted turn
    /// always needs a human for it).
    pub args: Vec<SinkArg>,
}

/// Kinds of sensitive sinks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SinkKind {
    /// Runs a command.
    Exec,
    /// Sends data to a host (a request, a form).
    Egress,
    /// Sends a message to someone.
    Messaging,
    /// Money or other side effects outside (MCP tools).
    External,
    /// Changes what runs later or who may do what (jobs, tokens, approvals).
    ControlPlane,
}

impl SinkKind {
    /// The name used in audit records and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Exec => "exec",
            Self::Egress => "egress",
            Self::Messaging => "messaging",
            Self::External => "external",
            Self::ControlPlane => "control_plane",
        }
    }
}

/// One security-relevant argument of a sink.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SinkArg {
    /// The argument's name (`to`, `host`, `command`, …).
    pub name: String,
    /// How it is compared with trusted content.
    pub role: ArgRole,
    /// Its value.
    pub value: String,
}

impl SinkArg {
    /// An argument.
    pub fn new(name: &str, role: ArgRole, value: impl Into<String>) -> Self {
        Self {
            name: name.to_owned(),
            role,
            value: value.into(),
        }
    }
}

/// How an argument is normalised before it is looked for in trusted content.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArgRole {
    /// A host name (or a URL, whose host counts): case-insensitive, a leading `www.` ignored.
    Host,
    /// An e-mail address, chat id or user name: case-insensitive, `mailto:` and `@` prefixes
    /// ignored.
    Recipient,
    /// An account number (IBAN-like): letters and digits only, case-insensitive, so spacing
    /// and dashes do not matter.
    Account,
    /// An amount or other number: compared as a number (`1,000.50` = `1000.5`).
    Amount,
    /// A command, path or other free text: whitespace-normalised, case-sensitive, must occur
    /// as a whole.
    Text,
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
            sink: None,
        };
        let mut b = a.clone();
        assert_eq!(a.digest(), b.digest());
        b.tier = RiskTier::L1Mutating;
        assert_ne!(a.digest(), b.digest());
    }
}
