//! Typed MCP errors. Every variant says what happened in words an operator (and the model, as a
//! tool error) can act on; none carries a secret (header values and environment are never
//! formatted).

/// An MCP failure.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum McpError {
    /// The server could not be started or reached.
    #[error("cannot start `{server}`: {message}")]
    Start {
        /// Server name.
        server: String,
        /// Why.
        message: String,
    },
    /// The server broke the protocol (malformed JSON-RPC, oversized message, wrong version).
    #[error("`{server}` broke the protocol: {message}")]
    Protocol {
        /// Server name.
        server: String,
        /// What was wrong.
        message: String,
    },
    /// The server answered a request with a JSON-RPC error.
    #[error("`{server}` answered {method} with error {code}: {message}")]
    Rpc {
        /// Server name.
        server: String,
        /// The request's method.
        method: String,
        /// JSON-RPC error code.
        code: i64,
        /// The server's message (truncated).
        message: String,
    },
    /// No answer in time; the request was cancelled (`notifications/cancelled`).
    #[error("`{server}` did not answer {method} within {secs}s (cancelled)")]
    Timeout {
        /// Server name.
        server: String,
        /// The request's method.
        method: String,
        /// The limit.
        secs: u64,
    },
    /// The connection ended (the server exited or closed its output).
    #[error("`{server}` closed the connection: {message}")]
    Closed {
        /// Server name.
        server: String,
        /// Why, as far as known (exit status, last stderr line).
        message: String,
    },
    /// The server's tools are withdrawn until an operator approves its current manifest.
    #[error("`{server}`'s tools are withdrawn: {message}")]
    Withdrawn {
        /// Server name.
        server: String,
        /// Why (changed manifest, never approved, disabled).
        message: String,
    },
    /// The egress policy refused the server's URL.
    #[error("`{server}`: {message}")]
    Egress {
        /// Server name.
        server: String,
        /// The policy's reason.
        message: String,
    },
}

impl McpError {
    /// The audit event kind for this failure (`mcp.protocol_error`, `mcp.timeout`, …).
    pub fn audit_kind(&self) -> &'static str {
        match self {
            Self::Start { .. } => "mcp.start_failed",
            Self::Protocol { .. } => "mcp.protocol_error",
            Self::Rpc { .. } => "mcp.rpc_error",
            Self::Timeout { .. } => "mcp.timeout",
            Self::Closed { .. } => "mcp.closed",
            Self::Withdrawn { .. } => "mcp.withdrawn",
            Self::Egress { .. } => "mcp.egress_refused",
        }
    }
}

/// Cuts `s` to at most `max` bytes on a character boundary, marking the cut.
pub(crate) fn clip(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}
