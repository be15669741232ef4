//! One model call, shared by both wire formats: POST with retries, then either read the whole
//! answer or decode the SSE stream through the format's [`Assembler`], sending events to the
//! caller through a bounded channel.

use std::sync::Arc;

use reqwest::header::HeaderMap;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::http::HttpCore;
use crate::provider::channel_stream;
use crate::sse::SseDecoder;
use crate::{EventStream, ProviderError, StreamEvent};

/// Largest single SSE event, and largest assembled tool-call argument text.
pub(crate) const MAX_EVENT: usize = 4 * 1024 * 1024;
/// Largest non-streamed answer body.
const MAX_BODY: usize = 32 * 1024 * 1024;

/// Turns one format's stream events into [`StreamEvent`]s.
pub trait Assembler: Default + Send + 'static {
    /// Handles one SSE `data` payload; returns events ready now (text deltas).
    fn on_data(&mut self, data: &str) -> Result<Vec<StreamEvent>, ProviderError>;
    /// Whether the format's end-of-answer marker was seen.
    fn is_complete(&self) -> bool;
    /// Releases the assembled tool calls, usage and finish reason; errors if the answer was cut.
    fn finish(self) -> Result<Vec<StreamEvent>, ProviderError>;
}

/// A prepared request.
pub(crate) struct Call {
    pub url: String,
    pub headers: HeaderMap,
    /// The JSON body, as sent (shared by retries).
    pub body: bytes::Bytes,
    /// Parser for a non-streamed answer.
    pub parse_full: fn(&[u8]) -> Result<Vec<StreamEvent>, ProviderError>,
}

type Tx = mpsc::Sender<Result<StreamEvent, ProviderError>>;

/// Starts `call` on a task and returns its event stream.
pub(crate) fn start<A: Assembler>(
    core: Arc<HttpCore>,
    call: Result<Call, ProviderError>,
    cancel: CancellationToken,
) -> EventStream {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        let result = match call {
            Ok(call) => run::<A>(&core, call, &cancel, &tx).await,
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            let _ = tx.send(Err(e)).await;
        }
    });
    channel_stream(rx)
}

/// Sends events; false when the receiver is gone (the caller stopped listening).
async fn send_all(tx: &Tx, events: Vec<StreamEvent>) -> bool {
    for ev in events {
        if tx.send(Ok(ev)).await.is_err() {
            return false;
        }
    }
    true
}

async fn run<A: Assembler>(
    core: &HttpCore,
    call: Call,
    cancel: &CancellationToken,
    tx: &Tx,
) -> Result<(), ProviderError> {
    let mut resp = core
        .post_json(&call.url, call.headers, &call.body, cancel)
        .await?;
    if !core.settings.stream {
        let bytes = core.read_body(resp, MAX_BODY, cancel).await?;
        send_all(tx, (call.parse_full)(&bytes)?).await;
        return Ok(());
    }
    let mut decoder = SseDecoder::new(MAX_EVENT);
    let mut asm = A::default();
    while let Some(chunk) = core.next_chunk(&mut resp, cancel).await? {
        for ev in decoder
            .push(&chunk)
            .map_err(|e| ProviderError::malformed(e.0))?
        {
            if !send_all(tx, asm.on_data(&ev.data)?).await {
                return Ok(());
            }
        }
        if asm.is_complete() {
            break;
        }
    }
    if let Some(ev) = decoder.finish() {
        asm.on_data(&ev.data)?;
    }
    send_all(tx, asm.finish()?).await;
    Ok(())
}
