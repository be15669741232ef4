//! One provider type for every wire format: [`WireProvider<W>`] holds the HTTP core and base
//! URL; a [`Wire`] says how its format names its endpoint, authenticates, encodes a request and
//! decodes an answer.

use std::marker::PhantomData;
use std::sync::Arc;

use reqwest::header::HeaderMap;
use tokio_util::sync::CancellationToken;

use crate::call::{self, Assembler, Call};
use crate::http::{HttpCore, accept};
use crate::{
    ApiKey, Capabilities, ChatRequest, CheckFuture, EventStream, HttpSettings, ModelProvider,
    ProviderError, StreamEvent,
};

/// A model API wire format. Sealed: it lives in a private module, so only this crate implements it.
pub trait Wire: Send + Sync + std::fmt::Debug + 'static {
    /// Short name for logs and run records.
    const NAME: &'static str;
    /// Path of the chat endpoint below the base URL.
    const CHAT_PATH: &'static str;
    /// Stream decoder.
    type Assembler: Assembler;
    /// The chat endpoint for `req` (formats that put the model in the URL override this).
    fn chat_url(base: &str, _req: &ChatRequest, _stream: bool) -> String {
        format!("{base}{}", Self::CHAT_PATH)
    }
    /// Authentication and version headers, plus `accept` when `accept` is given.
    ///
    /// # Errors
    /// When a header value (the key) is not a valid header.
    fn headers(
        key: Option<&ApiKey>,
        accept: Option<&'static str>,
    ) -> Result<HeaderMap, ProviderError>;
    /// The request body, as sent (JSON text).
    ///
    /// # Errors
    /// When it cannot be encoded ([`crate::http::json_bytes`]).
    fn request_body(req: &ChatRequest, stream: bool) -> Result<bytes::Bytes, ProviderError>;
    /// Decodes a non-streamed answer.
    ///
    /// # Errors
    /// When the answer does not follow the format.
    fn parse_full(bytes: &[u8]) -> Result<Vec<StreamEvent>, ProviderError>;
}

/// A client for wire format `W`.
#[derive(Debug)]
pub struct WireProvider<W> {
    core: Arc<HttpCore>,
    base: Arc<str>,
    wire: PhantomData<W>,
}

impl<W> Clone for WireProvider<W> {
    fn clone(&self) -> Self {
        Self {
            core: Arc::clone(&self.core),
            base: Arc::clone(&self.base),
            wire: PhantomData,
        }
    }
}

impl<W: Wire> WireProvider<W> {
    /// A client for `base_url` (e.g. `https://api.openai.com/v1`).
    ///
    /// # Errors
    /// None today: the HTTP client is built (and can fail, as a network error) at the first
    /// request, so that nothing loads TLS roots before a model is called.
    pub fn new(
        base_url: &str,
        key: Option<ApiKey>,
        settings: HttpSettings,
    ) -> Result<Self, ProviderError> {
        Ok(Self {
            core: Arc::new(HttpCore::new(settings, key, base_url)),
            base: base_url.trim_end_matches('/').into(),
            wire: PhantomData,
        })
    }
}

impl<W: Wire> ModelProvider for WireProvider<W> {
    fn name(&self) -> &'static str {
        W::NAME
    }

    fn capabilities(&self) -> Capabilities {
        Capabilities {
            tools: true,
            streaming: self.core.settings.stream,
        }
    }

    fn stream(&self, request: &ChatRequest, cancel: CancellationToken) -> EventStream {
        let stream = self.core.settings.stream;
        let call = W::headers(self.core.key(), Some(accept(stream))).and_then(|headers| {
            Ok(Call {
                url: W::chat_url(&self.base, request, stream),
                headers,
                body: W::request_body(request, stream)?,
                parse_full: W::parse_full,
            })
        });
        call::start::<W::Assembler>(Arc::clone(&self.core), call, cancel)
    }

    fn check(&self) -> CheckFuture {
        let core = Arc::clone(&self.core);
        let url = format!("{}/models", self.base);
        Box::pin(async move { core.get_ok(&url, W::headers(core.key(), None)?).await })
    }
}
