//! Renders a reply in either wire format, streamed or whole.

use bytes::Bytes;
use serde_json::{Value, json};

use crate::ScriptedCall;

/// Which wire format the request came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Format {
    OpenAi,
    Anthropic,
    Gemini,
}

/// A rendered answer: content to send, and whether to break the connection after it.
pub(crate) struct Rendered {
    pub chunks: Vec<Bytes>,
    pub cut: bool,
}

/// The answer content independent of format.
pub(crate) struct Answer<'a> {
    pub text: &'a str,
    pub calls: &'a [ScriptedCall],
    pub input_tokens: u64,
    pub model: &'a str,
    /// Refused by the provider's safety filter.
    pub blocked: bool,
}

/// One Gemini `GenerateContentResponse` with `parts`, and a finish reason when it ends.
fn gemini_chunk(a: &Answer<'_>, parts: Vec<Value>, finish: Option<&str>, usage: bool) -> Value {
    let mut candidate = json!({"index": 0, "content": {"role": "model", "parts": parts}});
    if let Some(f) = finish {
        candidate["finishReason"] = Value::from(f);
    }
    let mut v = json!({"candidates": [candidate], "modelVersion": a.model});
    if usage {
        let out = output_tokens(a);
        v["usageMetadata"] = json!({"promptTokenCount": a.input_tokens,
            "candidatesTokenCount": out, "totalTokenCount": a.input_tokens + out});
    }
    v
}

fn gemini_calls(a: &Answer<'_>) -> Vec<Value> {
    a.calls
        .iter()
        .map(|c| json!({"functionCall": {"name": c.name, "args": c.arguments}}))
        .collect()
}

/// A safety-blocked Gemini answer: no content, finish reason `SAFETY`.
fn gemini_blocked(a: &Answer<'_>) -> Value {
    json!({"candidates": [{"index": 0, "finishReason": "SAFETY",
        "safetyRatings": [{"category": "HARM_CATEGORY_DANGEROUS_CONTENT", "probability": "HIGH", "blocked": true}]}],
        "usageMetadata": {"promptTokenCount": a.input_tokens, "totalTokenCount": a.input_tokens}})
}

fn output_tokens(a: &Answer<'_>) -> u64 {
    (a.text.split_whitespace().count() + a.calls.len() * 5) as u64
}

/// Splits text into word-sized pieces (keeping the spaces) for streaming.
fn pieces(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    for ch in text.chars() {
        cur.push(ch);
        if ch == ' ' {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

fn sse(event: Option<&str>, data: &Value) -> Bytes {
    let mut s = String::new();
    if let Some(e) = event {
        s.push_str("event: ");
        s.push_str(e);
        s.push('\n');
    }
    s.push_str("data: ");
    s.push_str(&data.to_string());
    s.push_str("\n\n");
    Bytes::from(s)
}

pub(crate) fn whole(format: Format, a: &Answer<'_>) -> Value {
    let out = output_tokens(a);
    match format {
        Format::Gemini => {
            if a.blocked {
                return gemini_blocked(a);
            }
            let mut parts = Vec::new();
            if !a.text.is_empty() {
                parts.push(json!({"text": a.text}));
            }
            parts.extend(gemini_calls(a));
            gemini_chunk(a, parts, Some("STOP"), true)
        }
        Format::OpenAi => {
            let calls: Vec<Value> = a
                .calls
                .iter()
                .enumerate()
                .map(|(i, c)| {
                    json!({"id": format!("call_{i}"), "type": "function",
                    "function": {"name": c.name, "arguments": c.arguments.to_string()}})
                })
                .collect();
            let mut message = json!({"role": "assistant", "content": a.text});
            if !calls.is_empty() {
                message["tool_calls"] = Value::from(calls);
            }
            json!({
                "id": "chatcmpl-fake", "object": "chat.completion", "model": a.model,
                "choices": [{"index": 0, "message": message,
                    "finish_reason": if a.blocked { "content_filter" } else if a.calls.is_empty() { "stop" } else { "tool_calls" }}],
                "usage": {"prompt_tokens": a.input_tokens, "completion_tokens": out,
                    "total_tokens": a.input_tokens + out},
            })
        }
        Format::Anthropic => {
            let mut content = Vec::new();
            if !a.text.is_empty() {
                content.push(json!({"type": "text", "text": a.text}));
            }
            for (i, c) in a.calls.iter().enumerate() {
                content.push(json!({"type": "tool_use", "id": format!("toolu_{i}"), "name": c.name, "input": c.arguments}));
            }
            json!({
                "id": "msg_fake", "type": "message", "role": "assistant", "model": a.model,
                "content": content,
                "stop_reason": if a.blocked { "refusal" } else if a.calls.is_empty() { "end_turn" } else { "tool_use" },
                "usage": {"input_tokens": a.input_tokens, "output_tokens": out},
            })
        }
    }
}

/// Streams `a`. With `cut`, only the first half of the text is sent and the connection breaks.
pub(crate) fn stream(format: Format, a: &Answer<'_>, cut: bool) -> Rendered {
    let mut parts = pieces(a.text);
    if cut {
        parts.truncate(parts.len().div_ceil(2).max(1));
    }
    let mut chunks = Vec::new();
    match format {
        Format::Gemini => {
            if a.blocked {
                chunks.push(sse(None, &gemini_blocked(a)));
                return Rendered { chunks, cut: false };
            }
            for p in &parts {
                chunks.push(sse(
                    None,
                    &gemini_chunk(a, vec![json!({"text": p})], None, false),
                ));
            }
            if cut {
                return Rendered { chunks, cut: true };
            }
            // Function calls arrive whole, in the last chunk, with the finish reason and usage.
            chunks.push(sse(
                None,
                &gemini_chunk(a, gemini_calls(a), Some("STOP"), true),
            ));
        }
        Format::OpenAi => {
            let chunk = |delta: Value, finish: Value| {
                sse(
                    None,
                    &json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "model": a.model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}),
                )
            };
            chunks.push(chunk(
                json!({"role": "assistant", "content": ""}),
                Value::Null,
            ));
            for p in &parts {
                chunks.push(chunk(json!({"content": p}), Value::Null));
            }
            if cut {
                return Rendered { chunks, cut: true };
            }
            for (i, c) in a.calls.iter().enumerate() {
                let args = c.arguments.to_string();
                let mid = args
                    .char_indices()
                    .nth(args.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                chunks.push(chunk(
                    json!({"tool_calls": [{"index": i, "id": format!("call_{i}"), "type": "function",
                        "function": {"name": c.name, "arguments": &args[..mid]}}]}),
                    Value::Null,
                ));
                chunks.push(chunk(
                    json!({"tool_calls": [{"index": i, "function": {"arguments": &args[mid..]}}]}),
                    Value::Null,
                ));
            }
            let finish = if a.blocked {
                "content_filter"
            } else if a.calls.is_empty() {
                "stop"
            } else {
                "tool_calls"
            };
            chunks.push(chunk(json!({}), Value::from(finish)));
            let out = output_tokens(a);
            chunks.push(sse(None, &json!({"id": "chatcmpl-fake", "object": "chat.completion.chunk", "choices": [],
                "usage": {"prompt_tokens": a.input_tokens, "completion_tokens": out, "total_tokens": a.input_tokens + out}})));
            chunks.push(Bytes::from_static(b"data: [DONE]\n\n"));
        }
        Format::Anthropic => {
            chunks.push(sse(Some("message_start"), &json!({"type": "message_start", "message": {
                "id": "msg_fake", "type": "message", "role": "assistant", "model": a.model, "content": [],
                "stop_reason": null, "usage": {"input_tokens": a.input_tokens, "output_tokens": 1}}})));
            let mut index = 0;
            if !a.text.is_empty() {
                chunks.push(sse(
                    Some("content_block_start"),
                    &json!({"type": "content_block_start", "index": 0,
                    "content_block": {"type": "text", "text": ""}}),
                ));
                for p in &parts {
                    chunks.push(sse(
                        Some("content_block_delta"),
                        &json!({"type": "content_block_delta", "index": 0,
                        "delta": {"type": "text_delta", "text": p}}),
                    ));
                }
                if cut {
                    return Rendered { chunks, cut: true };
                }
                chunks.push(sse(
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": 0}),
                ));
                index = 1;
            } else if cut {
                return Rendered { chunks, cut: true };
            }
            chunks.push(sse(Some("ping"), &json!({"type": "ping"})));
            for (i, c) in a.calls.iter().enumerate() {
                let idx = index + i;
                chunks.push(sse(Some("content_block_start"), &json!({"type": "content_block_start", "index": idx,
                    "content_block": {"type": "tool_use", "id": format!("toolu_{i}"), "name": c.name, "input": {}}})));
                let args = c.arguments.to_string();
                let mid = args
                    .char_indices()
                    .nth(args.chars().count() / 2)
                    .map_or(0, |(i, _)| i);
                for part in [&args[..mid], &args[mid..]] {
                    chunks.push(sse(
                        Some("content_block_delta"),
                        &json!({"type": "content_block_delta", "index": idx,
                        "delta": {"type": "input_json_delta", "partial_json": part}}),
                    ));
                }
                chunks.push(sse(
                    Some("content_block_stop"),
                    &json!({"type": "content_block_stop", "index": idx}),
                ));
            }
            let stop = if a.blocked {
                "refusal"
            } else if a.calls.is_empty() {
                "end_turn"
            } else {
                "tool_use"
            };
            chunks.push(sse(Some("message_delta"), &json!({"type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": null}, "usage": {"output_tokens": output_tokens(a)}})));
            chunks.push(sse(Some("message_stop"), &json!({"type": "message_stop"})));
        }
    }
    Rendered { chunks, cut: false }
}

/// A JSON error body in the format's shape.
pub(crate) fn error_body(format: Format, code: u16) -> String {
    let (kind, msg) = match code {
        401 => ("authentication_error", "invalid api key"),
        429 => ("rate_limit_error", "rate limited"),
        529 | 503 => ("overloaded_error", "Overloaded"),
        400..=499 => ("invalid_request_error", "bad request"),
        _ => ("api_error", "internal error"),
    };
    match format {
        Format::Gemini => {
            let status = match code {
                401 | 403 => "PERMISSION_DENIED",
                429 => "RESOURCE_EXHAUSTED",
                503 | 529 => "UNAVAILABLE",
                400..=499 => "INVALID_ARGUMENT",
                _ => "INTERNAL",
            };
            json!({"error": {"code": code, "message": msg, "status": status}}).to_string()
        }
        Format::OpenAi => {
            json!({"error": {"message": msg, "type": kind, "code": Value::Null}}).to_string()
        }
        Format::Anthropic => {
            json!({"type": "error", "error": {"type": kind, "message": msg}}).to_string()
        }
    }
}
