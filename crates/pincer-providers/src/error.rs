//! Classified provider errors.

use std::time::Duration;

/// The class of a provider failure; decides retry and failover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Bad or missing API key (401/403).
    Auth,
    /// Too many requests (429).
    RateLimit,
    /// The provider is overloaded (503/529).
    Overloaded,
    /// No answer in time.
    Timeout,
    /// The request was rejected (400/404/413/422).
    BadRequest,
    /// Out of credit or quota (402, `insufficient_quota`).
    Billing,
    /// Another server-side failure (5xx).
    Server,
    /// Could not connect or the connection broke.
    Network,
    /// The answer did not follow the wire format (bad JSON, stream cut short).
    Malformed,
    /// Canceled by the caller.
    Canceled,
    /// Refused before sending: a token or cost budget would be exceeded.
    Budget,
}

impl ErrorKind {
    /// Stable lower-case name used in messages and `meta.json`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auth => "auth",
            Self::RateLimit => "rate_limit",
            Self::Overloaded => "overloaded",
            Self::Timeout => "timeout",
            Self::BadRequest => "bad_request",
            Self::Billing => "billing",
            Self::Server => "server",
            Self::Network => "network",
            Self::Malformed => "malformed",
            Self::Canceled => "canceled",
            Self::Budget => "budget",
        }
    }

    /// Whether retrying the same request may succeed.
    pub fn is_retryable(self) -> bool {
        match self {
            Self::RateLimit | Self::Overloaded | Self::Server | Self::Network | Self::Timeout => {
                true
            }
            Self::Auth
            | Self::BadRequest
            | Self::Billing
            | Self::Malformed
            | Self::Canceled
            | Self::Budget => false,
        }
    }
}

/// A failed model call. The message never contains the API key.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{} error{}: {message}", kind.as_str(), status.map(|s| format!(" (HTTP {s})")).unwrap_or_default())]
pub struct ProviderError {
    /// The class.
    pub kind: ErrorKind,
    /// HTTP status, when there was one.
    pub status: Option<u16>,
    /// Human-readable detail (provider's message, truncated, key scrubbed).
    pub message: String,
    /// Server-requested delay before retrying.
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// An error of `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            kind,
            status: None,
            message: message.into(),
            retry_after: None,
        }
    }

    /// A wire-format violation.
    pub fn malformed(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Malformed, message)
    }

    /// Classifies an HTTP error response from its status and body.
    pub fn from_status(status: u16, body: &str, retry_after: Option<Duration>) -> Self {
        let detail = error_detail(body);
        let lower = body.to_ascii_lowercase();
        let kind = match status {
            401 | 403 => ErrorKind::Auth,
            402 => ErrorKind::Billing,
            429 if lower.contains("insufficient_quota") || lower.contains("billing") => {
                ErrorKind::Billing
            }
            429 => ErrorKind::RateLimit,
            408 | 504 => ErrorKind::Timeout,
            503 | 529 => ErrorKind::Overloaded,
            400 if lower.contains("credit balance") || lower.contains("billing") => {
                ErrorKind::Billing
            }
            // Gemini answers a bad key with 400 INVALID_ARGUMENT / API_KEY_INVALID.
            400 if lower.contains("api_key_invalid") || lower.contains("api key not valid") => {
                ErrorKind::Auth
            }
            400..=499 => ErrorKind::BadRequest,
            _ if lower.contains("overloaded") => ErrorKind::Overloaded,
            _ => ErrorKind::Server,
        };
        Self {
            kind,
            status: Some(status),
            message: detail,
            retry_after,
        }
    }
}

/// The provider's own error message from a JSON error body (OpenAI or Anthropic shape), else
/// the start of the body.
fn error_detail(body: &str) -> String {
    let parsed: Option<serde_json::Value> = serde_json::from_str(body).ok();
    let from_json = parsed.as_ref().and_then(|v| {
        v.pointer("/error/message")
            .or_else(|| v.get("message"))
            .or_else(|| v.get("error"))
            .and_then(|m| m.as_str())
            .map(str::to_owned)
    });
    let text = from_json.unwrap_or_else(|| body.trim().to_owned());
    let mut out: String = text.chars().take(500).collect();
    if out.is_empty() {
        out.push_str("(empty body)");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_statuses() {
        let cases = [
            (401, "{}", ErrorKind::Auth),
            (402, "", ErrorKind::Billing),
            (
                429,
                r#"{"error":{"code":"insufficient_quota","message":"pay"}}"#,
                ErrorKind::Billing,
            ),
            (429, "slow down", ErrorKind::RateLimit),
            (
                529,
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
                ErrorKind::Overloaded,
            ),
            (400, r#"{"error":{"message":"bad"}}"#, ErrorKind::BadRequest),
            (500, "oops", ErrorKind::Server),
            (504, "", ErrorKind::Timeout),
        ];
        for (status, body, kind) in cases {
            assert_eq!(
                ProviderError::from_status(status, body, None).kind,
                kind,
                "{status} {body}"
            );
        }
        assert_eq!(
            ProviderError::from_status(400, r#"{"error":{"message":"bad thing"}}"#, None).message,
            "bad thing"
        );
    }
}
