//! Test kit: real loopback servers that speak real wire formats, for tests and benchmarks.
//!
//! [`FakeLlm`] is a model server on `127.0.0.1:0` that speaks both OpenAI chat completions
//! (`POST /v1/chat/completions`) and Anthropic Messages (`POST /v1/messages`), streamed (SSE) or
//! not, as the request asks. Each test scripts its replies ([`Reply`]); every request is recorded.
//! Faults can be injected: HTTP errors with `Retry-After`, malformed JSON, a stream cut mid-way,
//! slow replies.
//!
//! [`FakeTelegram`] is a Bot API server with Telegram's JSON shapes, offset-confirming long
//! polling and injectable errors (429 `retry_after`, 400, 409).
//!
//! [`FakeWeb`] serves pages, redirects, endless and huge bodies, and two search APIs' formats.
//!
//! [`TcpProxy`] forwards to a real server (Postgres) and can cut the line and restore it.

mod llm;
mod postgres;
mod proxy;
mod render;
mod script;
mod telegram;
mod web;

pub use llm::{FakeLlm, RecordedRequest};
pub use postgres::PgSchema;
pub use proxy::TcpProxy;
pub use script::{Reply, ScriptedCall};
pub use telegram::{FakeTelegram, TgCall, TgFault};
pub use web::{ARTICLE_HTML, FakeWeb};
