//! `Envelope`: every message that enters Pincer, whatever the channel, becomes one of these.

use serde::{Deserialize, Serialize};

use crate::{AgentId, SessionKey};

/// Where a piece of content came from, and so how far it can be trusted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provenance {
    /// Typed by the operator on the local CLI.
    Operator,
    /// Sent by an authenticated user through a channel.
    User,
    /// Produced by a tool, read from a file, the web, memory or a skill: data, not instructions.
    Untrusted,
}

/// An inbound message: who, from where, for which agent and session, and what.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Envelope {
    /// The channel it arrived on (`cli`, `http`, `telegram`, …).
    pub channel: String,
    /// The sender's id on that channel.
    pub sender: String,
    /// The agent that should handle it.
    pub agent: AgentId,
    /// The conversation it belongs to.
    pub session: SessionKey,
    /// The message text.
    pub text: String,
    /// How far the text can be trusted.
    pub provenance: Provenance,
}
