//! What the fake model answers.

use serde::{Deserialize, Serialize};

/// One scripted tool call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScriptedCall {
    /// Wire name of the tool (e.g. `time_now`).
    pub name: String,
    /// Arguments object.
    #[serde(default = "empty_object")]
    pub arguments: serde_json::Value,
}

fn empty_object() -> serde_json::Value {
    serde_json::json!({})
}

/// One scripted answer. Replies are used in order, one per request; when the script runs out the
/// server's default reply is used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Reply {
    /// A plain text answer.
    Text {
        /// The text.
        text: String,
    },
    /// Echo the last user message: `echo: <text>` (the default reply).
    Echo,
    /// One or more tool calls, optionally with text before them.
    ToolCalls {
        /// The calls, in order.
        calls: Vec<ScriptedCall>,
        /// Text before the calls.
        #[serde(default)]
        text: String,
    },
    /// An HTTP error status with an optional `Retry-After` (seconds) and body.
    Status {
        /// HTTP status code.
        code: u16,
        /// `Retry-After` header value in seconds.
        #[serde(default)]
        retry_after: Option<u64>,
        /// Response body (a JSON error object by default).
        #[serde(default)]
        body: Option<String>,
    },
    /// An answer the provider's safety filter blocked: no content, and the format's filter
    /// reason (Gemini `SAFETY`, OpenAI `content_filter`, Anthropic `refusal`).
    Blocked,
    /// A 200 answer whose JSON is broken (non-streamed) or a stream with a broken chunk.
    Malformed,
    /// A stream that sends the first half of `text` and then drops the connection.
    CutStream {
        /// The text it started to send.
        text: String,
    },
    /// Waits `delay_ms` before answering with `reply`.
    Slow {
        /// Delay in milliseconds.
        delay_ms: u64,
        /// The answer after the delay.
        reply: Box<Reply>,
    },
    /// `reply`, streamed with `delay_ms` between its chunks (a model that writes slowly), when
    /// the request asks for a stream.
    Drip {
        /// Delay between chunks in milliseconds.
        delay_ms: u64,
        /// The answer.
        reply: Box<Reply>,
    },
    /// `reply` when the request's last message is a user message containing `marker` (a new
    /// turn that asks for it), `otherwise` for every other request — including the same turn's
    /// follow-up after a tool result. Lets one default reply script many concurrent tasks.
    WhenAsked {
        /// Text the user message must contain.
        marker: String,
        /// The answer to such a turn.
        reply: Box<Reply>,
        /// The answer to anything else.
        otherwise: Box<Reply>,
    },
}

impl Reply {
    /// A text reply.
    pub fn text(text: impl Into<String>) -> Self {
        Self::Text { text: text.into() }
    }

    /// A reply with one tool call.
    pub fn tool_call(name: impl Into<String>, arguments: serde_json::Value) -> Self {
        Self::ToolCalls {
            calls: vec![ScriptedCall {
                name: name.into(),
                arguments,
            }],
            text: String::new(),
        }
    }

    /// An error status with `Retry-After`.
    pub fn status(code: u16, retry_after: Option<u64>) -> Self {
        Self::Status {
            code,
            retry_after,
            body: None,
        }
    }
}
