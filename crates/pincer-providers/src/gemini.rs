//! Google Gemini client (B1): `POST {base_url}/models/{model}:generateContent`, or
//! `:streamGenerateContent?alt=sse` when streaming, with function calling and usage.
//!
//! Format notes: roles are `user` and `model`; tool results are `functionResponse` parts in a
//! user turn and carry the function's *name*, which Pincer looks up from the call they answer;
//! function calls arrive whole (not in fragments) and have no ids, so Pincer numbers them; the
//! stream has no end marker, so an answer without a `finishReason` is a cut stream. A prompt or
//! answer the safety filter blocked ends with [`FinishReason::ContentFilter`] and no text.

use std::collections::HashMap;

use pincer_types::TokenUsage;
use reqwest::header::HeaderMap;
use serde_json::{Value, json};

use crate::call;
use crate::http::headers;
use crate::wire::{Wire, WireProvider};
use crate::{
    ApiKey, ChatRequest, ErrorKind, FinishReason, Message, ProviderError, StreamEvent, ToolCall,
};

/// The Gemini wire format.
#[derive(Debug, Clone, Copy)]
pub struct Gemini;

/// A client for the Gemini wire format.
pub type GeminiProvider = WireProvider<Gemini>;

impl Wire for Gemini {
    const NAME: &'static str = "gemini";
    const CHAT_PATH: &'static str = "/models";
    type Assembler = Assembler;

    fn chat_url(base: &str, req: &ChatRequest, stream: bool) -> String {
        if stream {
            format!("{base}/models/{}:streamGenerateContent?alt=sse", req.model)
        } else {
            format!("{base}/models/{}:generateContent", req.model)
        }
    }

    fn headers(
        key: Option<&ApiKey>,
        accept: Option<&'static str>,
    ) -> Result<HeaderMap, ProviderError> {
        let mut pairs = Vec::new();
        if let Some(a) = accept {
            pairs.push(("accept", a));
        }
        if let Some(k) = key {
            pairs.push(("x-goog-api-key", k.expose()));
        }
        headers(&pairs)
    }

    fn request_body(req: &ChatRequest, _stream: bool) -> Result<bytes::Bytes, ProviderError> {
        crate::http::json_bytes(&request_body(req))
    }

    fn parse_full(bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError> {
        let v: Value = serde_json::from_slice(bytes)
            .map_err(|e| ProviderError::malformed(format!("answer is not valid JSON: {e}")))?;
        let mut asm = Assembler::default();
        let mut out = asm.take(&v)?;
        out.extend(asm.end()?);
        Ok(out)
    }
}

/// The JSON body: `contents` with consecutive same-role turns merged, as the API requires.
pub(crate) fn request_body(req: &ChatRequest) -> Value {
    let mut names: HashMap<&str, &str> = HashMap::new();
    let mut contents: Vec<(&'static str, Vec<Value>)> = Vec::new();
    let mut push = |role: &'static str, part: Value| match contents.last_mut() {
        Some((r, parts)) if *r == role => parts.push(part),
        _ => contents.push((role, vec![part])),
    };
    for m in &req.messages {
        match m {
            Message::User { content } => push("user", json!({"text": content})),
            Message::Assistant {
                content,
                tool_calls,
            } => {
                if !content.is_empty() {
                    push("model", json!({"text": content}));
                }
                for c in tool_calls {
                    names.insert(c.id.as_str(), c.name.as_str());
                    let args: Value = serde_json::from_str(&c.arguments)
                        .ok()
                        .filter(Value::is_object)
                        .unwrap_or_else(|| json!({}));
                    push(
                        "model",
                        json!({"functionCall": {"name": c.name, "args": args}}),
                    );
                }
            }
            Message::Tool {
                call_id,
                content,
                is_error,
            } => {
                let name = names.get(call_id.as_str()).copied().unwrap_or("tool");
                let key = if *is_error { "error" } else { "result" };
                push(
                    "user",
                    json!({"functionResponse": {"name": name, "response": {key: content}}}),
                );
            }
        }
    }
    let contents: Vec<Value> = contents
        .into_iter()
        .map(|(role, parts)| json!({"role": role, "parts": parts}))
        .collect();
    let mut body = json!({
        "contents": contents,
        "generationConfig": {"maxOutputTokens": req.max_tokens},
    });
    if !req.system.is_empty() {
        body["systemInstruction"] = json!({"parts": [{"text": req.system}]});
    }
    if !req.tools.is_empty() {
        let decls: Vec<Value> = req
            .tools
            .iter()
            .map(|t| json!({"name": t.name, "description": t.description, "parameters": t.parameters}))
            .collect();
        body["tools"] = json!([{"functionDeclarations": decls}]);
    }
    body
}

fn finish(reason: &str) -> FinishReason {
    match reason {
        "STOP" => FinishReason::Stop,
        "MAX_TOKENS" => FinishReason::Length,
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            FinishReason::ContentFilter
        }
        other => FinishReason::Other(other.to_ascii_lowercase()),
    }
}

fn stream_error(v: &Value) -> ProviderError {
    let status = v
        .pointer("/error/status")
        .and_then(Value::as_str)
        .unwrap_or("");
    let msg = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or("unknown error");
    let kind = match status {
        "RESOURCE_EXHAUSTED" => ErrorKind::RateLimit,
        "UNAVAILABLE" => ErrorKind::Overloaded,
        "DEADLINE_EXCEEDED" => ErrorKind::Timeout,
        "PERMISSION_DENIED" | "UNAUTHENTICATED" => ErrorKind::Auth,
        "INVALID_ARGUMENT" | "NOT_FOUND" | "FAILED_PRECONDITION" => ErrorKind::BadRequest,
        _ => ErrorKind::Server,
    };
    ProviderError::new(kind, format!("{status}: {msg}"))
}

/// Turns Gemini responses (whole, or one per stream chunk) into [`StreamEvent`]s.
#[derive(Debug, Default)]
pub struct Assembler {
    calls: Vec<ToolCall>,
    usage: TokenUsage,
    finish: Option<FinishReason>,
}

impl Assembler {
    /// Takes one `GenerateContentResponse`: text now, calls, usage and the end for later.
    fn take(&mut self, v: &Value) -> Result<Vec<StreamEvent>, ProviderError> {
        if v.get("error").is_some() {
            return Err(stream_error(v));
        }
        if let Some(u) = v.get("usageMetadata") {
            let n = |k: &str| u.get(k).and_then(Value::as_u64).unwrap_or(0);
            self.usage = TokenUsage {
                input_tokens: n("promptTokenCount"),
                output_tokens: n("candidatesTokenCount").saturating_add(n("thoughtsTokenCount")),
            };
        }
        if v.pointer("/promptFeedback/blockReason").is_some() {
            self.finish = Some(FinishReason::ContentFilter);
            return Ok(Vec::new());
        }
        let mut out = Vec::new();
        let Some(candidate) = v.get("candidates").and_then(|c| c.get(0)) else {
            return Ok(out);
        };
        let parts = candidate
            .pointer("/content/parts")
            .and_then(Value::as_array)
            .map_or(&[][..], Vec::as_slice);
        for p in parts {
            if let Some(t) = p
                .get("text")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty())
            {
                // Thought summaries are not the answer.
                if p.get("thought").and_then(Value::as_bool) != Some(true) {
                    out.push(StreamEvent::TextDelta(t.to_owned()));
                }
            } else if let Some(fc) = p.get("functionCall") {
                let name = fc
                    .get("name")
                    .and_then(Value::as_str)
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| ProviderError::malformed("functionCall without a name"))?;
                if self.calls.len() >= 256 {
                    return Err(ProviderError::malformed("too many function calls"));
                }
                let id = fc
                    .get("id")
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("call_{}", self.calls.len()), str::to_owned);
                let arguments = fc
                    .get("args")
                    .map_or_else(|| "{}".to_owned(), Value::to_string);
                if arguments.len() > call::MAX_EVENT {
                    return Err(ProviderError::malformed(
                        "function call arguments too large",
                    ));
                }
                self.calls.push(ToolCall {
                    id,
                    name: name.to_owned(),
                    arguments,
                });
            }
        }
        if let Some(r) = candidate.get("finishReason").and_then(Value::as_str) {
            self.finish = Some(finish(r));
        }
        Ok(out)
    }

    fn end(self) -> Result<Vec<StreamEvent>, ProviderError> {
        let Some(mut reason) = self.finish else {
            return Err(ProviderError::malformed(
                "the answer ended without a finish reason (stream cut)",
            ));
        };
        if !self.calls.is_empty() && reason == FinishReason::Stop {
            reason = FinishReason::ToolCalls;
        }
        let mut out: Vec<StreamEvent> = self.calls.into_iter().map(StreamEvent::ToolCall).collect();
        out.push(StreamEvent::Usage(self.usage));
        out.push(StreamEvent::Finish(reason));
        Ok(out)
    }
}

impl call::Assembler for Assembler {
    fn on_data(&mut self, data: &str) -> Result<Vec<StreamEvent>, ProviderError> {
        let v: Value = serde_json::from_str(data)
            .map_err(|e| ProviderError::malformed(format!("invalid JSON in answer stream: {e}")))?;
        self.take(&v)
    }

    fn is_complete(&self) -> bool {
        false
    }

    fn finish(self) -> Result<Vec<StreamEvent>, ProviderError> {
        self.end()
    }
}
