//! The HTTP core shared by both clients: one `reqwest` client, retries with back-off that honour
//! `Retry-After`, bounded body reads, cancellation, and API-key hygiene.

use std::fmt;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use tokio_util::sync::CancellationToken;

use crate::{ErrorKind, ProviderError};

/// Longest delay between retries, whatever the server asks for.
const MAX_BACKOFF: Duration = Duration::from_secs(60);
/// Most bytes read from an error body.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// An API key. `Debug` and `Display` never show it.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    /// Wraps a key read from the environment or the secret store.
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// Removes every occurrence of the key from `text`.
    pub fn scrub(&self, text: &str) -> String {
        if self.0.len() < 4 {
            return text.to_owned();
        }
        text.replace(&self.0, "[REDACTED]")
    }

    pub(crate) fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([REDACTED])")
    }
}

/// Timeouts and retry behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpSettings {
    /// Whole-request timeout, streaming included.
    pub timeout: Duration,
    /// Connect timeout.
    pub connect_timeout: Duration,
    /// Retries after the first attempt.
    pub max_retries: u32,
    /// First back-off delay; doubles each retry.
    pub retry_base: Duration,
    /// Use SSE streaming.
    pub stream: bool,
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(300),
            connect_timeout: Duration::from_secs(10),
            max_retries: 3,
            retry_base: Duration::from_millis(500),
            stream: true,
        }
    }
}

#[derive(Debug)]
pub(crate) struct HttpCore {
    /// Built at the first request (issue 24: an idle gateway or a command that never calls the
    /// model does not load and parse the system's TLS roots).
    client: std::sync::OnceLock<reqwest::Client>,
    /// The base URL is plain `http://` (a local model server): the client carries no TLS roots.
    /// No client follows redirects — a redirect is answered as the error it is.
    plain_http: bool,
    pub(crate) settings: HttpSettings,
    key: Option<ApiKey>,
}

/// A redirect from a model server (never followed): not retried, and saying where it pointed.
fn redirected(resp: &reqwest::Response) -> ProviderError {
    let to = resp
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("(no Location)");
    let mut e = ProviderError::new(
        ErrorKind::BadRequest,
        format!(
            "the model server answered with a redirect (HTTP {}) to {to}; redirects are not \
             followed — set the provider's base_url to the address it names",
            resp.status().as_u16()
        ),
    );
    e.status = Some(resp.status().as_u16());
    e
}

impl HttpCore {
    pub(crate) fn new(settings: HttpSettings, key: Option<ApiKey>, base_url: &str) -> Self {
        Self {
            client: std::sync::OnceLock::new(),
            plain_http: base_url
                .get(..7)
                .is_some_and(|s| s.eq_ignore_ascii_case("http://")),
            settings,
            key,
        }
    }

    /// The HTTP client, built on first use.
    fn client(&self) -> Result<&reqwest::Client, ProviderError> {
        if let Some(c) = self.client.get() {
            return Ok(c);
        }
        // reqwest is built without a bundled crypto provider; ring is ours. Installing twice is
        // harmless (the second call reports the first is in place).
        let _ = rustls::crypto::ring::default_provider().install_default();
        // A model API never needs a redirect; following one would re-send the conversation
        // (and for 307/308 the body) to wherever it points.
        let mut b = reqwest::Client::builder()
            .timeout(self.settings.timeout)
            .connect_timeout(self.settings.connect_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("pincer/", env!("CARGO_PKG_VERSION")));
        if self.plain_http {
            b = b.tls_certs_only(std::iter::empty());
        }
        let built = b.build().map_err(|e| {
            ProviderError::new(ErrorKind::Network, format!("cannot build HTTP client: {e}"))
        })?;
        // Two first calls at once may both build; one client is kept.
        Ok(self.client.get_or_init(|| built))
    }

    pub(crate) fn key(&self) -> Option<&ApiKey> {
        self.key.as_ref()
    }

    fn scrub(&self, text: &str) -> String {
        match &self.key {
            Some(k) => k.scrub(text),
            None => text.to_owned(),
        }
    }

    /// POSTs `body` (JSON text), retrying retryable failures. Returns the first 2xx response.
    pub(crate) async fn post_json(
        &self,
        url: &str,
        headers: HeaderMap,
        body: &bytes::Bytes,
        cancel: &CancellationToken,
    ) -> Result<reqwest::Response, ProviderError> {
        let mut attempt = 0u32;
        loop {
            let request = self
                .client()?
                .post(url)
                .headers(headers.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            let result = tokio::select! {
                r = request.send() => r,
                () = cancel.cancelled() => return Err(canceled()),
            };
            let err = match result {
                Ok(resp) if resp.status().is_success() => return Ok(resp),
                Ok(resp) if resp.status().is_redirection() => return Err(redirected(&resp)),
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = retry_after(resp.headers());
                    let text = read_limited(resp, MAX_ERROR_BODY, cancel)
                        .await
                        .unwrap_or_default();
                    let mut e = ProviderError::from_status(
                        status,
                        &String::from_utf8_lossy(&text),
                        retry_after,
                    );
                    e.message = self.scrub(&e.message);
                    e
                }
                Err(e) => self.transport_error(&e),
            };
            if !err.kind.is_retryable() || attempt >= self.settings.max_retries {
                return Err(err);
            }
            let backoff = self
                .settings
                .retry_base
                .saturating_mul(2u32.saturating_pow(attempt));
            let delay = err.retry_after.unwrap_or(backoff).min(MAX_BACKOFF);
            tracing::warn!(error = %err, attempt, delay_ms = delay.as_millis() as u64, "model request failed; retrying");
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = cancel.cancelled() => return Err(canceled()),
            }
            attempt += 1;
        }
    }

    pub(crate) fn transport_error(&self, e: &reqwest::Error) -> ProviderError {
        // reqwest's Display includes the URL, never headers; scrub anyway.
        let kind = if e.is_timeout() {
            ErrorKind::Timeout
        } else {
            ErrorKind::Network
        };
        let mut msg = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            msg.push_str(": ");
            msg.push_str(&s.to_string());
            source = s.source();
        }
        ProviderError::new(kind, self.scrub(&msg))
    }

    /// `GET url` once (no retries); any 2xx is success.
    pub(crate) async fn get_ok(&self, url: &str, headers: HeaderMap) -> Result<(), ProviderError> {
        let resp = self
            .client()?
            .get(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| self.transport_error(&e))?;
        if resp.status().is_success() {
            return Ok(());
        }
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let mut e = ProviderError::from_status(status, &body, None);
        e.message = self.scrub(&e.message);
        Err(e)
    }

    /// The next body chunk, honouring cancellation.
    pub(crate) async fn next_chunk(
        &self,
        resp: &mut reqwest::Response,
        cancel: &CancellationToken,
    ) -> Result<Option<bytes::Bytes>, ProviderError> {
        tokio::select! {
            r = resp.chunk() => r.map_err(|e| {
                let mut err = self.transport_error(&e);
                if err.kind == ErrorKind::Network {
                    err.kind = ErrorKind::Malformed;
                    err.message = format!("the answer stream broke off: {}", err.message);
                }
                err
            }),
            () = cancel.cancelled() => Err(canceled()),
        }
    }

    /// Reads a whole (non-streamed) body, at most `limit` bytes.
    pub(crate) async fn read_body(
        &self,
        resp: reqwest::Response,
        limit: usize,
        cancel: &CancellationToken,
    ) -> Result<Vec<u8>, ProviderError> {
        read_limited(resp, limit, cancel)
            .await
            .map_err(|e| match e {
                ReadError::Canceled => canceled(),
                ReadError::TooLarge => {
                    ProviderError::malformed(format!("answer larger than {limit} bytes"))
                }
                ReadError::Http(e) => self.transport_error(&e),
            })
    }
}

pub(crate) fn canceled() -> ProviderError {
    ProviderError::new(ErrorKind::Canceled, "canceled")
}

enum ReadError {
    Canceled,
    TooLarge,
    Http(reqwest::Error),
}

async fn read_limited(
    mut resp: reqwest::Response,
    limit: usize,
    cancel: &CancellationToken,
) -> Result<Vec<u8>, ReadError> {
    let mut out = Vec::new();
    loop {
        let chunk = tokio::select! {
            r = resp.chunk() => r.map_err(ReadError::Http)?,
            () = cancel.cancelled() => return Err(ReadError::Canceled),
        };
        let Some(chunk) = chunk else { return Ok(out) };
        if out.len() + chunk.len() > limit {
            return Err(ReadError::TooLarge);
        }
        out.extend_from_slice(&chunk);
    }
}

/// `Retry-After` (seconds) or `retry-after-ms`.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(ms) = text("retry-after-ms").and_then(|v| v.parse::<f64>().ok())
        && ms.is_finite()
        && ms >= 0.0
    {
        return Some(Duration::from_millis(ms as u64));
    }
    text("retry-after")
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_millis((s * 1000.0) as u64))
}

/// The `accept` header for a streamed or whole answer.
pub(crate) fn accept(stream: bool) -> &'static str {
    if stream {
        "text/event-stream"
    } else {
        "application/json"
    }
}

/// Builds a header map; a value that is not a valid header (e.g. a key with a newline) is an
/// auth error, reported without the value.
pub(crate) fn headers(pairs: &[(&'static str, &str)]) -> Result<HeaderMap, ProviderError> {
    let mut map = HeaderMap::new();
    for (name, value) in pairs {
        let mut v = HeaderValue::from_str(value).map_err(|_| {
            ProviderError::new(
                ErrorKind::Auth,
                format!("the value for header `{name}` is not a valid header value"),
            )
        })?;
        if matches!(*name, "authorization" | "x-api-key" | "x-goog-api-key") {
            v.set_sensitive(true);
        }
        map.insert(HeaderName::from_static(name), v);
    }
    Ok(map)
}

/// `v` as JSON text, for a request body. One that cannot be encoded is refused before anything
/// is sent (not retried).
///
/// # Errors
/// [`ErrorKind::BadRequest`] naming the encoding error.
pub(crate) fn json_bytes(v: &impl serde::Serialize) -> Result<bytes::Bytes, ProviderError> {
    serde_json::to_vec(v).map(Into::into).map_err(|e| {
        ProviderError::new(
            ErrorKind::BadRequest,
            format!("the request cannot be encoded as JSON: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_is_redacted() {
        let k = ApiKey::new("sk-secret-123456");
        assert_eq!(format!("{k:?}"), "ApiKey([REDACTED])");
        assert_eq!(k.scrub("bad key sk-secret-123456!"), "bad key [REDACTED]!");
    }

    #[test]
    fn parses_retry_after() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("2"));
        assert_eq!(retry_after(&h), Some(Duration::from_secs(2)));
        h.insert("retry-after-ms", HeaderValue::from_static("150"));
        assert_eq!(retry_after(&h), Some(Duration::from_millis(150)));
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h), None);
    }

    #[test]
    fn a_body_that_cannot_be_encoded_is_refused_not_sent_empty() {
        let ok = json_bytes(&serde_json::json!({"a": 1})).unwrap();
        assert_eq!(&ok[..], br#"{"a":1}"#);
        // JSON object keys must be strings.
        let bad: std::collections::BTreeMap<(i32, i32), i32> = [((1, 2), 3)].into();
        let e = json_bytes(&bad).unwrap_err();
        assert_eq!(e.kind, ErrorKind::BadRequest);
        assert!(!e.kind.is_retryable());
    }
}
