//! Anthropic Messages client (`POST {base_url}/messages`).

use std::collections::BTreeMap;

use pincer_types::TokenUsage;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::call::{self, MAX_EVENT};
use crate::http::headers;
use crate::provider::finish_reason;
use crate::wire::{Wire, WireProvider};
use crate::{ApiKey, ChatRequest, ErrorKind, Message, ProviderError, StreamEvent, ToolCall};

const API_VERSION: &str = "2023-06-01";

/// The Anthropic Messages wire format.
#[derive(Debug, Clone, Copy)]
pub struct Anthropic;

/// A client for the Anthropic Messages wire format.
pub type AnthropicProvider = WireProvider<Anthropic>;

impl Wire for Anthropic {
    const NAME: &'static str = "anthropic";
    const CHAT_PATH: &'static str = "/messages";
    type Assembler = Assembler;

    fn headers(
        key: Option<&ApiKey>,
        accept: Option<&'static str>,
    ) -> Result<HeaderMap, ProviderError> {
        let mut pairs = vec![("anthropic-version", API_VERSION)];
        if let Some(a) = accept {
            pairs.push(("accept", a));
        }
        if let Some(k) = key {
            pairs.push(("x-api-key", k.expose()));
        }
        headers(&pairs)
    }

    fn request_body(req: &ChatRequest, stream: bool) -> Result<bytes::Bytes, ProviderError> {
        crate::http::json_bytes(&request_body(req, stream))
    }

    fn parse_full(bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError> {
        parse_full(bytes)
    }
}

/// The JSON body for a request. Consecutive user-side turns (user text and tool results) are
/// merged, as the API requires strictly alternating roles.
pub(crate) fn request_body(req: &ChatRequest, stream: bool) -> Value {
    let mut messages: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, block: Value| match messages.last_mut() {
        Some((r, blocks)) if *r == role => blocks.push(block),
        _ => messages.push((role, vec![block])),
    };
    for m in &req.messages {
        match m {
            Message::User { content } => push("user", json!({"type": "text", "text": content})),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                if !content.is_empty() {
                    push("assistant", json!({"type": "text", "text": content}));
                }
                for c in tool_calls {
                    let input: Value = serde_json::from_str(&c.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    push(
                        "assistant",
                        json!({"type": "tool_use", "id": c.id, "name": c.name, "input": input}),
                    );
                }
            }
            Message::Tool {
                call_id,
                content,
                is_error,
            } => push(
                "user",
                json!({"type": "tool_result", "tool_use_id": call_id, "content": content, "is_error": is_error}),
            ),
        }
    }
    let messages: Vec<Value> = messages
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    let mut body = json!({
        "model": req.model,
        "max_tokens": req.max_tokens,
        "messages": messages,
        "stream": stream,
    });
    if !req.system.is_empty() {
        body["system"] = Value::from(req.system.as_str());
    }
    if !req.tools.is_empty() {
        body["tools"] = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "input_schema": t.parameters}))
            .collect();
    }
    body
}

fn parse_full(bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ProviderError::malformed(format!("answer is not valid JSON: {e}")))?;
    if v.get("type").and_then(Value::as_str) == Some("error") {
        return Err(stream_error(&v));
    }
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .ok_or_else(|| ProviderError::malformed("answer has no content array"))?;
    let mut out = Vec::new();
    for b in blocks {
        match b.get("type").and_then(Value::as_str) {
            Some("text") => {
                if let Some(t) = b
                    .get("text")
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    out.push(StreamEvent::TextDelta(t.to_owned()));
                }
            }
            Some("tool_use") => {
                let (Some(id), Some(name)) = (
                    b.get("id").and_then(Value::as_str),
                    b.get("name").and_then(Value::as_str),
                ) else {
                    return Err(ProviderError::malformed(
                        "tool_use block without id or name",
                    ));
                };
                let arguments = b
                    .get("input")
                    .map_or_else(|| "{}".to_owned(), Value::to_string);
                out.push(StreamEvent::ToolCall(ToolCall {
                    id: id.to_owned(),
                    name: name.to_owned(),
                    arguments,
                }));
            }
            _ => {}
        }
    }
    out.push(StreamEvent::Usage(usage_of(v.get("usage"))));
    let reason = v
        .get("stop_reason")
        .and_then(Value::as_str)
        .unwrap_or("end_turn");
    out.push(StreamEvent::Finish(finish_reason(reason)));
    Ok(out)
}

/// Token usage from a Messages `usage` object; cached prompt tokens count as input.
fn usage_of(usage: Option<&Value>) -> TokenUsage {
    let n = |k: &str| {
        usage
            .and_then(|u| u.get(k))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    TokenUsage {
        input_tokens: n("input_tokens")
            .saturating_add(n("cache_read_input_tokens"))
            .saturating_add(n("cache_creation_input_tokens")),
        output_tokens: n("output_tokens"),
    }
}

fn stream_error(v: &Value) -> ProviderError {
    let kind_text = v
        .pointer("/error/type")
        .and_then(Value::as_str)
        .unwrap_or("api_error");
    let msg = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    let kind = match kind_text {
        "overloaded_error" => ErrorKind::Overloaded,
        "rate_limit_error" => ErrorKind::RateLimit,
        "authentication_error" | "permission_error" => ErrorKind::Auth,
        "billing_error" => ErrorKind::Billing,
        "invalid_request_error" | "not_found_error" | "request_too_large" => ErrorKind::BadRequest,
        _ => ErrorKind::Server,
    };
    ProviderError::new(kind, format!("{kind_text}: {msg}"))
}

#[derive(Debug)]
enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
    },
    Other,
}

/// Turns the Messages event stream into [`StreamEvent`]s.
#[derive(Debug, Default)]
pub struct Assembler {
    blocks: BTreeMap<u64, Block>,
    usage: TokenUsage,
    stop_reason: Option<String>,
    stopped: bool,
}

impl call::Assembler for Assembler {
    fn on_data(&mut self, data: &str) -> Result<Vec<StreamEvent>, ProviderError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| ProviderError::malformed(format!("invalid JSON in answer stream: {e}")))?;
        let index = v.get("index").and_then(Value::as_u64).unwrap_or(0);
        let mut out = Vec::new();
        match v.get("type").and_then(Value::as_str).unwrap_or_default() {
            "message_start" => {
                self.usage = usage_of(v.pointer("/message/usage"));
            }
            "content_block_start" => {
                if self.blocks.len() >= 256 {
                    return Err(ProviderError::malformed("too many content blocks"));
                }
                let b = v.get("content_block").unwrap_or(&Value::Null);
                let block = match b.get("type").and_then(Value::as_str) {
                    Some("text") => {
                        if let Some(t) = b
                            .get("text")
                            .and_then(Value::as_str)
                            .filter(|t| !t.is_empty())
                        {
                            out.push(StreamEvent::TextDelta(t.to_owned()));
                        }
                        Block::Text
                    }
                    Some("tool_use") => {
                        let s = |k: &str| {
                            b.get(k)
                                .and_then(Value::as_str)
                                .unwrap_or_default()
                                .to_owned()
                        };
                        Block::Tool {
                            id: s("id"),
                            name: s("name"),
                            json: String::new(),
                        }
                    }
                    _ => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            "content_block_delta" => {
                let d = v.get("delta").unwrap_or(&Value::Null);
                match (
                    self.blocks.get_mut(&index),
                    d.get("type").and_then(Value::as_str),
                ) {
                    (Some(Block::Text), Some("text_delta")) => {
                        if let Some(t) = d.get("text").and_then(Value::as_str) {
                            out.push(StreamEvent::TextDelta(t.to_owned()));
                        }
                    }
                    (Some(Block::Tool { json, .. }), Some("input_json_delta")) => {
                        let part = d
                            .get("partial_json")
                            .and_then(Value::as_str)
                            .unwrap_or_default();
                        if json.len() + part.len() > MAX_EVENT {
                            return Err(ProviderError::malformed("tool input too large"));
                        }
                        json.push_str(part);
                    }
                    (None, _) => {
                        return Err(ProviderError::malformed(format!(
                            "delta for unknown content block {index}"
                        )));
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(r) = v.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    self.stop_reason = Some(r.to_owned());
                }
                if let Some(n) = v.pointer("/usage/output_tokens").and_then(Value::as_u64) {
                    self.usage.output_tokens = n;
                }
            }
            "message_stop" => self.stopped = true,
            "error" => return Err(stream_error(&v)),
            _ => {} // ping, content_block_stop, and future event types
        }
        Ok(out)
    }

    fn is_complete(&self) -> bool {
        self.stopped
    }

    fn finish(self) -> Result<Vec<StreamEvent>, ProviderError> {
        if !self.stopped && self.stop_reason.is_none() {
            return Err(ProviderError::malformed(
                "the answer stream ended before the model finished (connection cut?)",
            ));
        }
        let mut out = Vec::new();
        for (_, b) in self.blocks {
            if let Block::Tool { id, name, json } = b {
                if id.is_empty() || name.is_empty() {
                    return Err(ProviderError::malformed(
                        "tool_use block without id or name",
                    ));
                }
                let arguments = if json.trim().is_empty() {
                    "{}".to_owned()
                } else {
                    json
                };
                out.push(StreamEvent::ToolCall(ToolCall {
                    id,
                    name,
                    arguments,
                }));
            }
        }
        out.push(StreamEvent::Usage(self.usage));
        out.push(StreamEvent::Finish(finish_reason(
            self.stop_reason.as_deref().unwrap_or("end_turn"),
        )));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FinishReason;
    use crate::call::Assembler as _;

    #[test]
    fn assembles_text_and_two_tool_uses() {
        let mut a = Assembler::default();
        let events = [
            r#"{"type":"message_start","message":{"usage":{"input_tokens":11,"output_tokens":1}}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Let me"}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"t1","name":"time_now","input":{}}}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"tool_use","id":"t2","name":"fs_read","input":{}}}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"{\"path\":"}}"#,
            r#"{"type":"ping"}"#,
            r#"{"type":"content_block_delta","index":2,"delta":{"type":"input_json_delta","partial_json":"\"a\"}"}}"#,
            r#"{"type":"content_block_stop","index":2}"#,
            r#"{"type":"message_delta","delta":{"stop_reason":"tool_use"},"usage":{"output_tokens":9}}"#,
            r#"{"type":"message_stop"}"#,
        ];
        let mut out = Vec::new();
        for e in events {
            out.extend(a.on_data(e).unwrap());
        }
        out.extend(a.finish().unwrap());
        assert_eq!(out[0], StreamEvent::TextDelta("Let me".into()));
        assert!(matches!(&out[1], StreamEvent::ToolCall(c) if c.id == "t1" && c.arguments == "{}"));
        assert!(
            matches!(&out[2], StreamEvent::ToolCall(c) if c.name == "fs_read" && c.arguments == r#"{"path":"a"}"#)
        );
        assert_eq!(
            out[3],
            StreamEvent::Usage(TokenUsage {
                input_tokens: 11,
                output_tokens: 9
            })
        );
        assert_eq!(out[4], StreamEvent::Finish(FinishReason::ToolCalls));
    }

    #[test]
    fn error_event_is_classified() {
        let mut a = Assembler::default();
        let e = a
            .on_data(
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
            )
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Overloaded);
    }

    #[test]
    fn merges_tool_results_into_one_user_turn() {
        let req = ChatRequest {
            model: "m".into(),
            strict_model: false,
            context: crate::CallContext::default(),
            system: "s".into(),
            messages: vec![
                Message::User {
                    content: "q".into(),
                },
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![
                        ToolCall {
                            id: "a".into(),
                            name: "x".into(),
                            arguments: "{}".into(),
                        },
                        ToolCall {
                            id: "b".into(),
                            name: "x".into(),
                            arguments: "not json".into(),
                        },
                    ],
                },
                Message::Tool {
                    call_id: "a".into(),
                    content: "1".into(),
                    is_error: false,
                },
                Message::Tool {
                    call_id: "b".into(),
                    content: "2".into(),
                    is_error: true,
                },
            ],
            tools: vec![],
            max_tokens: 10,
        };
        let body = request_body(&req, true);
        let msgs = body["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 3);
        assert_eq!(msgs[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(msgs[1]["content"][1]["input"], json!({}));
        assert_eq!(body["system"], "s");
    }
}
