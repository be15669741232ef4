//! The chat-completions request: which fields Pincer honours, which it accepts and leaves to the
//! agent's configuration, and which it refuses with a 400 naming the field.

use serde::Deserialize;
use serde_json::{Value, json};

use crate::ApiError;

/// `POST /v1/chat/completions`. Unknown fields are refused (`deny_unknown_fields`); the
/// accepted-and-ignored ones are parsed only so that common clients work.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    dead_code,
    reason = "fields accepted for compatibility and deliberately ignored"
)]
pub(crate) struct ChatRequest {
    /// The agent id (`GET /v1/models` lists them).
    pub model: String,
    /// The conversation: earlier messages are the history, the last one must be the user's.
    pub messages: Vec<ChatMessage>,
    /// Stream the answer as server-sent events, text as the agent produces it.
    #[serde(default)]
    pub stream: bool,
    /// `{"include_usage": true}` adds a last chunk with token usage.
    #[serde(default)]
    pub stream_options: Option<StreamOptions>,
    /// The end user: accepted and ignored (it does not select a conversation; the
    /// `X-Pincer-Session` header does).
    #[serde(default)]
    pub user: Option<String>,
    /// Accepted and ignored: sampling and length are the agent's configuration.
    #[serde(default)]
    pub temperature: Option<Value>,
    /// Accepted and ignored (as `temperature`).
    #[serde(default)]
    pub top_p: Option<Value>,
    /// Accepted and ignored (as `temperature`).
    #[serde(default)]
    pub max_tokens: Option<Value>,
    /// Accepted and ignored (as `temperature`).
    #[serde(default)]
    pub max_completion_tokens: Option<Value>,
    /// Accepted and ignored (as `temperature`).
    #[serde(default)]
    pub presence_penalty: Option<Value>,
    /// Accepted and ignored (as `temperature`).
    #[serde(default)]
    pub frequency_penalty: Option<Value>,
    /// Accepted and ignored (as `temperature`).
    #[serde(default)]
    pub seed: Option<Value>,
    /// Accepted and ignored (as `temperature`).
    #[serde(default)]
    pub stop: Option<Value>,
    /// Accepted and ignored.
    #[serde(default)]
    pub metadata: Option<Value>,
    /// Accepted and ignored (nothing is stored for OpenAI's own tools).
    #[serde(default)]
    pub store: Option<Value>,
    /// Only 1.
    #[serde(default)]
    pub n: Option<u32>,
    /// Refused: the agent's tools are configured by the operator, not sent by clients.
    #[serde(default)]
    pub tools: Option<Value>,
    /// Refused (as `tools`).
    #[serde(default)]
    pub tool_choice: Option<Value>,
    /// Refused (as `tools`).
    #[serde(default)]
    pub parallel_tool_calls: Option<Value>,
    /// Refused (as `tools`; the legacy name).
    #[serde(default)]
    pub functions: Option<Value>,
    /// Refused (as `tools`; the legacy name).
    #[serde(default)]
    pub function_call: Option<Value>,
    /// Refused: structured output is not supported.
    #[serde(default)]
    pub response_format: Option<Value>,
    /// Refused: not supported.
    #[serde(default)]
    pub logprobs: Option<Value>,
    /// Refused: not supported.
    #[serde(default)]
    pub top_logprobs: Option<Value>,
    /// Refused: text only.
    #[serde(default)]
    pub modalities: Option<Value>,
    /// Refused: text only.
    #[serde(default)]
    pub audio: Option<Value>,
}

/// `stream_options`.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
pub(crate) struct StreamOptions {
    /// Send a last chunk with `usage`.
    #[serde(default)]
    pub include_usage: bool,
}

/// One message.
#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[expect(dead_code, reason = "`name` is accepted for compatibility and ignored")]
pub(crate) struct ChatMessage {
    /// `system`, `developer`, `user` or `assistant`.
    pub role: String,
    /// Text, or a list of content parts (`{"type": "text", "text": …}`).
    #[serde(default)]
    pub content: Value,
    /// Refused: a client's own tool calls.
    #[serde(default)]
    pub tool_calls: Option<Value>,
    /// Accepted and ignored.
    #[serde(default)]
    pub name: Option<String>,
}

fn unsupported(field: &str, why: &str) -> ApiError {
    ApiError::bad_request("unsupported_parameter", format!("`{field}`: {why}"))
}

fn text_of(content: &Value, at: usize) -> Result<String, ApiError> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Null => Ok(String::new()),
        Value::Array(parts) => {
            let mut out = Vec::new();
            for p in parts {
                match p["type"].as_str() {
                    Some("text") => out.push(p["text"].as_str().unwrap_or_default()),
                    other => {
                        return Err(unsupported(
                            &format!("messages[{at}].content"),
                            &format!(
                                "content parts of type {} are not supported (text only)",
                                other.unwrap_or("(none)")
                            ),
                        ));
                    }
                }
            }
            Ok(out.join("\n"))
        }
        _ => Err(ApiError::bad_request(
            "invalid_request",
            format!("messages[{at}].content must be text or a list of text parts"),
        )),
    }
}

/// The conversation a request carries: the history before the last message, and the last
/// (user) message, which becomes the task's input.
#[derive(Debug)]
pub(crate) struct Conversation {
    /// Earlier messages, as the agent's history (in the session store's message shape:
    /// `{"role", "content"}`). Client `system`/`developer` messages become user messages marked
    /// as the client's instructions: the operator's system prompt stays the only system prompt.
    pub history: Vec<Value>,
    /// The last user message.
    pub input: String,
}

impl ChatRequest {
    /// Checks the fields Pincer refuses and splits the conversation.
    ///
    /// # Errors
    /// 400 `unsupported_parameter` naming the field, or `invalid_request`.
    pub(crate) fn conversation(&self) -> Result<Conversation, ApiError> {
        let tools_why = "this endpoint runs a Pincer agent, whose tools are configured by its operator; clients cannot send their own";
        for (field, set) in [
            ("tools", self.tools.is_some()),
            ("tool_choice", self.tool_choice.is_some()),
            ("parallel_tool_calls", self.parallel_tool_calls.is_some()),
            ("functions", self.functions.is_some()),
            ("function_call", self.function_call.is_some()),
        ] {
            if set {
                return Err(unsupported(field, tools_why));
            }
        }
        for (field, set) in [
            ("response_format", self.response_format.is_some()),
            ("logprobs", self.logprobs.is_some()),
            ("top_logprobs", self.top_logprobs.is_some()),
            ("modalities", self.modalities.is_some()),
            ("audio", self.audio.is_some()),
        ] {
            if set {
                return Err(unsupported(field, "not supported by Pincer"));
            }
        }
        if self.n.is_some_and(|n| n != 1) {
            return Err(unsupported("n", "only one choice is produced"));
        }
        let Some((last, earlier)) = self.messages.split_last() else {
            return Err(ApiError::bad_request(
                "invalid_request",
                "`messages` is empty",
            ));
        };
        if last.role != "user" {
            return Err(ApiError::bad_request(
                "invalid_request",
                "the last message must be the user's",
            ));
        }
        let mut history = Vec::with_capacity(earlier.len());
        for (i, m) in self.messages.iter().enumerate() {
            if m.tool_calls.is_some() {
                return Err(unsupported(&format!("messages[{i}].tool_calls"), tools_why));
            }
            if i + 1 == self.messages.len() {
                break;
            }
            let text = text_of(&m.content, i)?;
            history.push(match m.role.as_str() {
                "user" => json!({"role": "user", "content": text}),
                "assistant" => json!({"role": "assistant", "content": text}),
                "system" | "developer" => json!({"role": "user",
                    "content": format!("[Instructions from the API client]\n{text}")}),
                "tool" | "function" => {
                    return Err(unsupported(&format!("messages[{i}].role"), tools_why));
                }
                other => {
                    return Err(ApiError::bad_request(
                        "invalid_request",
                        format!("messages[{i}].role `{other}` is not a chat role"),
                    ));
                }
            });
        }
        let input = text_of(&last.content, self.messages.len() - 1)?;
        if input.trim().is_empty() {
            return Err(ApiError::bad_request(
                "invalid_request",
                "the last user message has no text",
            ));
        }
        Ok(Conversation { history, input })
    }

    /// Whether the stream ends with a usage chunk.
    pub(crate) fn include_usage(&self) -> bool {
        self.stream_options
            .as_ref()
            .is_some_and(|o| o.include_usage)
    }
}
