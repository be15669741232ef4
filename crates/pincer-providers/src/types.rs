//! Provider-neutral request and response types.

use pincer_types::TokenUsage;
use serde::{Deserialize, Serialize};

/// A tool offered to the model. `name` is the wire name (`[a-zA-Z0-9_-]{1,64}`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolDef {
    /// Wire name.
    pub name: String,
    /// What the tool does, for the model.
    pub description: String,
    /// JSON Schema of the arguments object (shared with the tool's spec: offered on every
    /// turn, never copied).
    pub parameters: std::sync::Arc<serde_json::Value>,
}

/// A complete tool call requested by the model.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ToolCall {
    /// Provider-assigned id, echoed back with the result.
    pub id: String,
    /// Wire name of the tool.
    pub name: String,
    /// Arguments as JSON text, exactly as the model produced it (may be invalid JSON).
    pub arguments: String,
}

/// One message of the conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// From the user.
    User {
        /// Text.
        content: String,
    },
    /// From the model: text and/or tool calls.
    Assistant {
        /// Text (may be empty).
        content: String,
        /// Tool calls, in order.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<ToolCall>,
    },
    /// A tool's result for one call.
    Tool {
        /// The call this answers.
        call_id: String,
        /// The result text.
        content: String,
        /// Whether the tool failed.
        #[serde(default)]
        is_error: bool,
    },
}

/// A request to the model.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// Model name (for a failover chain: the alias to start with).
    pub model: String,
    /// Only `model`, never another in the chain (a strict pin); plain providers ignore it.
    pub strict_model: bool,
    /// System prompt.
    pub system: String,
    /// Conversation so far.
    pub messages: Vec<Message>,
    /// Tools offered.
    pub tools: Vec<ToolDef>,
    /// Output token limit.
    pub max_tokens: u32,
    /// Who the call is for (usage records and budgets); providers do not send it.
    pub context: CallContext,
}

/// Who a model call is for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallContext {
    /// The agent.
    pub agent: String,
    /// The conversation's session key (`main:telegram:dm:42`).
    pub session: String,
}

impl ChatRequest {
    /// A conservative estimate of the request's input tokens, without a tokenizer: about four
    /// bytes of text per token, plus ten per message, tool call and tool for the framing around
    /// them (roles, ids, JSON). Costs one pass over the messages (string lengths, not their
    /// bytes), so it is cheap for any prompt size.
    pub fn estimate_input_tokens(&self) -> u64 {
        let messages: u64 = self.messages.iter().map(Message::estimate_tokens).sum();
        messages.saturating_add(self.estimate_frame_tokens())
    }

    /// The estimate for what is sent besides the messages: the system prompt and the tools.
    pub fn estimate_frame_tokens(&self) -> u64 {
        let bytes = self.system.len()
            + self
                .tools
                .iter()
                .map(|t| t.name.len() + t.description.len() + json_len(&t.parameters))
                .sum::<usize>();
        u64::try_from(bytes.div_ceil(4) + (1 + self.tools.len()) * 10).unwrap_or(u64::MAX)
    }
}

/// The length of `v` as compact JSON, counted without building the text (this runs before every
/// model call, for every tool offered).
fn json_len(v: &serde_json::Value) -> usize {
    /// Counts the bytes written to it.
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut n = Count(0);
    // Writing a Value to a sink that never fails cannot fail.
    let _ = serde_json::to_writer(&mut n, v);
    n.0
}

impl Message {
    /// This message's share of [`ChatRequest::estimate_input_tokens`].
    pub fn estimate_tokens(&self) -> u64 {
        let (bytes, items) = match self {
            Message::User { content } => (content.len(), 1),
            Message::Assistant {
                content,
                tool_calls,
            } => (
                content.len()
                    + tool_calls
                        .iter()
                        .map(|c| c.name.len() + c.arguments.len() + c.id.len())
                        .sum::<usize>(),
                1 + tool_calls.len(),
            ),
            Message::Tool {
                call_id, content, ..
            } => (call_id.len() + content.len(), 1),
        };
        u64::try_from(bytes.div_ceil(4) + items * 10).unwrap_or(u64::MAX)
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// Natural end of the answer.
    Stop,
    /// It wants tool results.
    ToolCalls,
    /// Hit the token limit.
    Length,
    /// Filtered by the provider.
    ContentFilter,
    /// Something else, as the provider said it.
    Other(String),
}

/// One event of a streamed answer.
#[derive(Debug, Clone, PartialEq)]
pub enum StreamEvent {
    /// A piece of answer text.
    TextDelta(String),
    /// A complete tool call (fragments already assembled).
    ToolCall(ToolCall),
    /// Token usage for this request.
    Usage(TokenUsage),
    /// The answer is complete. Always the last event of a successful stream.
    Finish(FinishReason),
}

/// A whole answer, collected from a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    /// The text.
    pub text: String,
    /// Tool calls, in order.
    pub tool_calls: Vec<ToolCall>,
    /// Token usage (zero when the provider reported none).
    pub usage: TokenUsage,
    /// Why it stopped.
    pub finish: FinishReason,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_len_is_the_length_of_the_compact_text() {
        for v in [
            serde_json::json!({}),
            serde_json::json!({"type": "object", "properties": {"path": {"type": "string",
                "description": "a \"quoted\" ü\n"}}, "required": ["path"], "n": [1, 2.5, null]}),
        ] {
            assert_eq!(json_len(&v), v.to_string().len());
        }
    }
}
