//! The `ModelProvider` seam.

use std::pin::Pin;

use futures_util::{Stream, StreamExt};
use pincer_types::TokenUsage;
use tokio_util::sync::CancellationToken;

use crate::{ChatRequest, Completion, FinishReason, ProviderError, StreamEvent};

/// A stream of answer events. A successful stream ends with [`StreamEvent::Finish`]; an error
/// item ends it early.
pub type EventStream = Pin<Box<dyn Stream<Item = Result<StreamEvent, ProviderError>> + Send>>;

/// What a provider supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capabilities {
    /// Tool calling.
    pub tools: bool,
    /// Token streaming.
    pub streaming: bool,
}

/// A model API client.
///
/// Implementors guarantee: the stream yields whole tool calls (never fragments), ends with
/// `Finish` or an error, stops promptly after `cancel` fires (yielding a `Canceled` error), never
/// panics on any server input, and never puts the API key in an error.
pub trait ModelProvider: Send + Sync + std::fmt::Debug {
    /// Short name for logs and run records (`openai`, `anthropic`).
    fn name(&self) -> &'static str;
    /// What it supports.
    fn capabilities(&self) -> Capabilities;
    /// Starts one model call. The request is encoded before this returns, so the caller keeps
    /// ownership of the conversation.
    fn stream(&self, request: &ChatRequest, cancel: CancellationToken) -> EventStream;
    /// Checks that the endpoint answers and accepts the key (`GET {base_url}/models`), without
    /// spending tokens. Used by `pincer doctor`.
    fn check(&self) -> CheckFuture;
}

/// The future [`ModelProvider::check`] returns.
pub type CheckFuture = Pin<Box<dyn std::future::Future<Output = Result<(), ProviderError>> + Send>>;

/// Drains a stream into a [`Completion`], calling `on_text` for each text delta.
///
/// # Errors
/// The first error the stream yields, or `Malformed` if it ends without `Finish`.
pub async fn collect(
    mut stream: EventStream,
    mut on_text: impl FnMut(&str),
) -> Result<Completion, ProviderError> {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    let mut usage = TokenUsage::default();
    while let Some(item) = stream.next().await {
        match item? {
            StreamEvent::TextDelta(t) => {
                on_text(&t);
                text.push_str(&t);
            }
            StreamEvent::ToolCall(c) => tool_calls.push(c),
            StreamEvent::Usage(u) => usage = u,
            StreamEvent::Finish(finish) => {
                return Ok(Completion {
                    text,
                    tool_calls,
                    usage,
                    finish,
                });
            }
        }
    }
    Err(ProviderError::malformed(
        "the answer ended without a finish event",
    ))
}

/// Sends events from a producer task to the consumer through a bounded channel.
pub(crate) fn channel_stream(
    mut rx: tokio::sync::mpsc::Receiver<Result<StreamEvent, ProviderError>>,
) -> EventStream {
    Box::pin(futures_util::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

/// Default finish reason when a provider's text is unknown.
pub(crate) fn finish_reason(s: &str) -> FinishReason {
    match s {
        "stop" | "end_turn" | "stop_sequence" => FinishReason::Stop,
        "tool_calls" | "tool_use" | "function_call" => FinishReason::ToolCalls,
        "length" | "max_tokens" => FinishReason::Length,
        "content_filter" | "refusal" => FinishReason::ContentFilter,
        other => FinishReason::Other(other.to_owned()),
    }
}
