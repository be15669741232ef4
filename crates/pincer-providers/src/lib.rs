//! Model provider clients behind one small trait, [`ModelProvider`].
//!
//! Three wire formats are spoken: Google Gemini (`generateContent`), OpenAI chat completions (which also serves OpenRouter, Ollama,
//! vLLM, llama.cpp, LM Studio, Groq, DeepSeek and Mistral) and Anthropic Messages. All stream
//! server-sent events, assemble tool-call fragments into whole calls, report token usage, retry
//! 429/5xx with back-off honouring `Retry-After`, and classify errors.
//!
//! Invariants: the API key lives in an [`ApiKey`] whose `Debug` is redacted, is sent only in a
//! request header, and is scrubbed from any error text a server echoes back. No input from the
//! network can panic the process; buffers are bounded.

mod anthropic;
mod call;
mod embeddings;
mod error;
mod gemini;
mod http;
mod openai;
mod provider;
pub mod sse;
mod types;
mod wire;

pub use anthropic::{Anthropic, AnthropicProvider};
pub use embeddings::EmbeddingsClient;
pub use error::{ErrorKind, ProviderError};
pub use gemini::{Gemini, GeminiProvider};
pub use http::{ApiKey, HttpSettings};
pub use openai::{OpenAi, OpenAiProvider};
pub use provider::{Capabilities, CheckFuture, EventStream, ModelProvider, collect};
pub use types::{
    CallContext, ChatRequest, Completion, FinishReason, Message, StreamEvent, ToolCall, ToolDef,
};
pub use wire::WireProvider;
