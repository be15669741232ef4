//! OpenAI chat-completions client (`POST {base_url}/chat/completions`).

use std::collections::BTreeMap;

use pincer_types::TokenUsage;
use reqwest::header::HeaderMap;
use serde::Serialize;
use serde_json::Value;

use crate::call::{self, MAX_EVENT};
use crate::http::headers;
use crate::provider::finish_reason;
use crate::wire::{Wire, WireProvider};
use crate::{ApiKey, ChatRequest, Message, ProviderError, StreamEvent, ToolCall};

/// The OpenAI chat completions wire format.
#[derive(Debug, Clone, Copy)]
pub struct OpenAi;

/// A client for the OpenAI chat completions wire format.
pub type OpenAiProvider = WireProvider<OpenAi>;

impl Wire for OpenAi {
    const NAME: &'static str = "openai";
    const CHAT_PATH: &'static str = "/chat/completions";
    type Assembler = Assembler;

    fn headers(
        key: Option<&ApiKey>,
        accept: Option<&'static str>,
    ) -> Result<HeaderMap, ProviderError> {
        let auth = key.map(|k| format!("Bearer {}", k.expose()));
        let mut pairs = Vec::with_capacity(2);
        if let Some(a) = accept {
            pairs.push(("accept", a));
        }
        if let Some(a) = auth.as_deref() {
            pairs.push(("authorization", a));
        }
        headers(&pairs)
    }

    fn request_body(req: &ChatRequest, stream: bool) -> Result<bytes::Bytes, ProviderError> {
        crate::http::json_bytes(&Body::new(req, stream))
    }

    fn parse_full(bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError> {
        parse_full(bytes)
    }
}

/// The request body, borrowed from the request and written straight to JSON text: no `Value`
/// tree, no copy of the tool schemas or the conversation (a served turn's largest allocation
/// site before).
#[derive(Serialize)]
struct Body<'a> {
    model: &'a str,
    messages: Vec<WireMessage<'a>>,
    max_tokens: u32,
    stream: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    stream_options: Option<StreamOptions>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<WireTool<'a>>,
}

#[derive(Serialize)]
struct StreamOptions {
    include_usage: bool,
}

/// One chat-completions message; the system prompt (when there is one) comes first.
#[derive(Serialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        /// An assistant turn of only tool calls has no text: `null`, not "".
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: &'a str,
    },
}

#[derive(Serialize)]
struct WireCall<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: CallFunction<'a>,
}

#[derive(Serialize)]
struct CallFunction<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Serialize)]
struct WireTool<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: ToolFunction<'a>,
}

#[derive(Serialize)]
struct ToolFunction<'a> {
    name: &'a str,
    description: &'a str,
    parameters: &'a Value,
}

impl<'a> Body<'a> {
    fn new(req: &'a ChatRequest, stream: bool) -> Self {
        let system = (!req.system.is_empty()).then_some(WireMessage::System {
            content: &req.system,
        });
        let messages = system
            .into_iter()
            .chain(req.messages.iter().map(WireMessage::of))
            .collect();
        let tools = req
            .tools
            .iter()
            .map(|t| WireTool {
                kind: "function",
                function: ToolFunction {
                    name: &t.name,
                    description: &t.description,
                    parameters: &t.parameters,
                },
            })
            .collect();
        Self {
            model: &req.model,
            messages,
            max_tokens: req.max_tokens,
            stream,
            stream_options: stream.then_some(StreamOptions {
                include_usage: true,
            }),
            tools,
        }
    }
}

impl<'a> WireMessage<'a> {
    fn of(m: &'a Message) -> Self {
        match m {
            Message::User { content } => Self::User { content },
            Message::Assistant {
                content,
                tool_calls,
            } => Self::Assistant {
                content: Some(content.as_str()).filter(|c| tool_calls.is_empty() || !c.is_empty()),
                tool_calls: tool_calls
                    .iter()
                    .map(|c| WireCall {
                        id: &c.id,
                        kind: "function",
                        function: CallFunction {
                            name: &c.name,
                            arguments: &c.arguments,
                        },
                    })
                    .collect(),
            },
            Message::Tool {
                call_id, content, ..
            } => Self::Tool {
                tool_call_id: call_id,
                content,
            },
        }
    }
}

fn usage_of(v: &Value) -> Option<TokenUsage> {
    let u = v.get("usage").filter(|u| u.is_object())?;
    Some(TokenUsage {
        input_tokens: u.get("prompt_tokens").and_then(Value::as_u64).unwrap_or(0),
        output_tokens: u
            .get("completion_tokens")
            .and_then(Value::as_u64)
            .unwrap_or(0),
    })
}

fn api_error(v: &Value) -> Option<ProviderError> {
    let e = v.get("error")?;
    let msg = e
        .get("message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    Some(ProviderError::new(
        crate::ErrorKind::Server,
        format!("error in answer stream: {msg}"),
    ))
}

/// Parses a non-streamed response.
fn parse_full(bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError> {
    let v: Value = serde_json::from_slice(bytes)
        .map_err(|e| ProviderError::malformed(format!("answer is not valid JSON: {e}")))?;
    if let Some(e) = api_error(&v) {
        return Err(e);
    }
    let choice = v
        .pointer("/choices/0")
        .ok_or_else(|| ProviderError::malformed("answer has no choices"))?;
    let msg = choice.get("message").unwrap_or(&Value::Null);
    let mut out = Vec::new();
    if let Some(text) = msg
        .get("content")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        out.push(StreamEvent::TextDelta(text.to_owned()));
    }
    if let Some(calls) = msg.get("tool_calls").and_then(Value::as_array) {
        for (i, c) in calls.iter().enumerate() {
            let name = c
                .pointer("/function/name")
                .and_then(Value::as_str)
                .unwrap_or_default();
            if name.is_empty() {
                return Err(ProviderError::malformed("tool call without a name"));
            }
            let arguments = match c.pointer("/function/arguments") {
                Some(Value::String(s)) => s.clone(),
                Some(other) => other.to_string(),
                None => "{}".to_owned(),
            };
            let id = c
                .get("id")
                .and_then(Value::as_str)
                .map_or_else(|| format!("call_{i}"), str::to_owned);
            out.push(StreamEvent::ToolCall(ToolCall {
                id,
                name: name.to_owned(),
                arguments,
            }));
        }
    }
    if let Some(u) = usage_of(&v) {
        out.push(StreamEvent::Usage(u));
    }
    let reason = choice
        .get("finish_reason")
        .and_then(Value::as_str)
        .unwrap_or("stop");
    out.push(StreamEvent::Finish(finish_reason(reason)));
    Ok(out)
}

#[derive(Debug, Default)]
struct PartialCall {
    id: String,
    name: String,
    arguments: String,
}

/// Assembles streamed chunks: text passes straight through; tool-call fragments are joined by
/// index and released, whole, at the end.
#[derive(Debug, Default)]
pub struct Assembler {
    calls: BTreeMap<u64, PartialCall>,
    finish: Option<String>,
    usage: Option<TokenUsage>,
    done: bool,
}

impl call::Assembler for Assembler {
    fn on_data(&mut self, data: &str) -> Result<Vec<StreamEvent>, ProviderError> {
        if data.trim() == "[DONE]" {
            self.done = true;
            return Ok(Vec::new());
        }
        let v: Value = serde_json::from_str(data)
            .map_err(|e| ProviderError::malformed(format!("invalid JSON in answer stream: {e}")))?;
        if let Some(e) = api_error(&v) {
            return Err(e);
        }
        if let Some(u) = usage_of(&v) {
            self.usage = Some(u);
        }
        let mut out = Vec::new();
        let Some(choice) = v.pointer("/choices/0") else {
            return Ok(out);
        };
        if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
            self.finish = Some(reason.to_owned());
        }
        let Some(delta) = choice.get("delta") else {
            return Ok(out);
        };
        if let Some(text) = delta
            .get("content")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty())
        {
            out.push(StreamEvent::TextDelta(text.to_owned()));
        }
        if let Some(calls) = delta.get("tool_calls").and_then(Value::as_array) {
            for (pos, c) in calls.iter().enumerate() {
                let index = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
                if self.calls.len() >= 128 && !self.calls.contains_key(&index) {
                    return Err(ProviderError::malformed(
                        "more than 128 tool calls in one answer",
                    ));
                }
                let slot = self.calls.entry(index).or_default();
                if let Some(id) = c
                    .get("id")
                    .and_then(Value::as_str)
                    .filter(|s| !s.is_empty())
                {
                    slot.id = id.to_owned();
                }
                if let Some(name) = c.pointer("/function/name").and_then(Value::as_str) {
                    // Most servers send the name once; some repeat it whole in every fragment.
                    if slot.name.is_empty() {
                        slot.name = name.to_owned();
                    } else if name != slot.name {
                        slot.name.push_str(name);
                    }
                }
                if let Some(args) = c.pointer("/function/arguments").and_then(Value::as_str) {
                    if slot.arguments.len() + args.len() > MAX_EVENT {
                        return Err(ProviderError::malformed("tool call arguments too large"));
                    }
                    slot.arguments.push_str(args);
                }
            }
        }
        Ok(out)
    }

    fn is_complete(&self) -> bool {
        self.done
    }

    fn finish(self) -> Result<Vec<StreamEvent>, ProviderError> {
        let Some(reason) = self.finish else {
            return Err(ProviderError::malformed(
                "the answer stream ended before the model finished (connection cut?)",
            ));
        };
        let mut out = Vec::with_capacity(self.calls.len() + 2);
        for (index, c) in self.calls {
            if c.name.is_empty() {
                return Err(ProviderError::malformed(format!(
                    "tool call #{index} has no name"
                )));
            }
            let id = if c.id.is_empty() {
                format!("call_{index}")
            } else {
                c.id
            };
            let arguments = if c.arguments.trim().is_empty() {
                "{}".to_owned()
            } else {
                c.arguments
            };
            out.push(StreamEvent::ToolCall(ToolCall {
                id,
                name: c.name,
                arguments,
            }));
        }
        if let Some(u) = self.usage {
            out.push(StreamEvent::Usage(u));
        }
        out.push(StreamEvent::Finish(finish_reason(&reason)));
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::FinishReason;
    use crate::call::Assembler as _;
    use serde_json::json;

    /// The body as it was built before it was written straight from the request: a `Value`
    /// tree per message and per tool.
    fn reference_body(req: &ChatRequest, stream: bool) -> Value {
        let mut messages = Vec::new();
        if !req.system.is_empty() {
            messages.push(json!({"role": "system", "content": req.system}));
        }
        for m in &req.messages {
            messages.push(match m {
                Message::User { content } => json!({"role": "user", "content": content}),
                Message::Assistant { content, tool_calls } if tool_calls.is_empty() => {
                    json!({"role": "assistant", "content": content})
                }
                Message::Assistant { content, tool_calls } => json!({
                    "role": "assistant",
                    "content": if content.is_empty() { Value::Null } else { Value::from(content.as_str()) },
                    "tool_calls": tool_calls.iter().map(|c| json!({
                        "id": c.id, "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments},
                    })).collect::<Vec<_>>(),
                }),
                Message::Tool { call_id, content, .. } => {
                    json!({"role": "tool", "tool_call_id": call_id, "content": content})
                }
            });
        }
        let mut body = json!({"model": req.model, "messages": messages,
                              "max_tokens": req.max_tokens, "stream": stream});
        if stream {
            body["stream_options"] = json!({"include_usage": true});
        }
        if !req.tools.is_empty() {
            body["tools"] = req
                .tools
                .iter()
                .map(|t| {
                    json!({"type": "function", "function": {
                        "name": t.name, "description": t.description, "parameters": *t.parameters,
                    }})
                })
                .collect();
        }
        body
    }

    #[test]
    fn the_body_written_from_the_request_is_the_reference_body() {
        let call = |id: &str| ToolCall {
            id: id.into(),
            name: "fs_read".into(),
            arguments: r#"{"path":"a \"b\" ü"}"#.into(),
        };
        let full = ChatRequest {
            model: "m-1".into(),
            strict_model: false,
            system: "be brief\n<pincer>".into(),
            messages: vec![
                Message::User {
                    content: "hi \u{1F980}".into(),
                },
                Message::Assistant {
                    content: String::new(),
                    tool_calls: vec![call("c1"), call("c2")],
                },
                Message::Tool {
                    call_id: "c1".into(),
                    content: "x".into(),
                    is_error: true,
                },
                Message::Tool {
                    call_id: "c2".into(),
                    content: String::new(),
                    is_error: false,
                },
                Message::Assistant {
                    content: "thinking".into(),
                    tool_calls: vec![call("c3")],
                },
                Message::Assistant {
                    content: "done".into(),
                    tool_calls: Vec::new(),
                },
            ],
            tools: vec![crate::ToolDef {
                name: "fs_read".into(),
                description: "Reads \"a\" file".into(),
                parameters: std::sync::Arc::new(json!({"type": "object",
                    "properties": {"path": {"type": "string"}}, "required": ["path"]})),
            }],
            max_tokens: 77,
            context: crate::CallContext::default(),
        };
        let bare = ChatRequest {
            system: String::new(),
            messages: Vec::new(),
            tools: Vec::new(),
            ..full.clone()
        };
        for req in [&full, &bare] {
            for stream in [true, false] {
                let want = reference_body(req, stream);
                let sent: Value =
                    serde_json::from_slice(&<OpenAi as Wire>::request_body(req, stream).unwrap())
                        .unwrap();
                assert_eq!(sent, want);
            }
        }
    }

    #[test]
    fn assembles_interleaved_tool_call_fragments() {
        let mut a = Assembler::default();
        let chunks = [
            r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":"Hi"}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"c1","type":"function","function":{"name":"time_now","arguments":""}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"id":"c2","type":"function","function":{"name":"fs_read","arguments":"{\"pa"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":1,"function":{"arguments":"th\":\"a\"}"}}]}}]}"#,
            r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
            "[DONE]",
        ];
        let mut events = Vec::new();
        for c in chunks {
            events.extend(a.on_data(c).unwrap());
        }
        assert!(a.done);
        events.extend(a.finish().unwrap());
        assert_eq!(events[0], StreamEvent::TextDelta("Hi".into()));
        assert_eq!(
            events[1],
            StreamEvent::ToolCall(ToolCall {
                id: "c1".into(),
                name: "time_now".into(),
                arguments: "{}".into()
            })
        );
        assert_eq!(
            events[2],
            StreamEvent::ToolCall(ToolCall {
                id: "c2".into(),
                name: "fs_read".into(),
                arguments: r#"{"path":"a"}"#.into()
            })
        );
        assert_eq!(
            events[3],
            StreamEvent::Usage(TokenUsage {
                input_tokens: 7,
                output_tokens: 3
            })
        );
        assert_eq!(events[4], StreamEvent::Finish(FinishReason::ToolCalls));
    }

    #[test]
    fn cut_stream_is_an_error() {
        let mut a = Assembler::default();
        a.on_data(r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#)
            .unwrap();
        assert_eq!(a.finish().unwrap_err().kind, crate::ErrorKind::Malformed);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        let mut a = Assembler::default();
        for junk in [
            "{",
            "null",
            "[1,2]",
            r#"{"choices":"x"}"#,
            r#"{"choices":[{"delta":{"tool_calls":"x"}}]}"#,
        ] {
            let _ = a.on_data(junk);
        }
        assert!(a.on_data("{").is_err());
        for junk in [&b"{"[..], b"[]", b"{\"choices\":[]}", b"\xff"] {
            assert!(parse_full(junk).is_err());
        }
    }

    #[test]
    fn parses_non_streamed_answer() {
        let body = br#"{"choices":[{"message":{"role":"assistant","content":null,"tool_calls":[{"id":"x","type":"function","function":{"name":"time_now","arguments":"{}"}}]},"finish_reason":"tool_calls"}],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;
        let ev = parse_full(body).unwrap();
        assert!(matches!(&ev[0], StreamEvent::ToolCall(c) if c.name == "time_now"));
        assert_eq!(
            ev.last(),
            Some(&StreamEvent::Finish(FinishReason::ToolCalls))
        );
    }
}
