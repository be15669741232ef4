//! Typed API errors: `{"error": {"code", "message"}}` with a matching status.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// An API error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable machine-readable code (`unauthorized`, `invalid_json`, …).
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
    /// Seconds to wait, for 429.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with `status`, `code` and `message`.
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            retry_after: None,
        }
    }

    /// 400 `bad_request`.
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// A store failure: 503 `store_unavailable` (with `Retry-After: 1`) when the database
    /// server cannot be reached — nothing was accepted, the client may retry — and 500
    /// `internal` otherwise.
    pub fn store(e: &pincer_store::StoreError) -> Self {
        match e {
            pincer_store::StoreError::Server(msg) => {
                log_internal(msg);
                Self {
                    retry_after: Some(1),
                    ..Self::new(
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store_unavailable",
                        "the state database is unreachable; nothing was changed, retry shortly",
                    )
                }
            }
            other => Self::internal(other),
        }
    }

    /// 500 `internal` (details are logged, not returned).
    pub fn internal(e: impl std::fmt::Display) -> Self {
        log_internal(&e.to_string());
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "internal error; see the server log",
        )
    }
}

fn log_internal(msg: &str) {
    eprintln!("pincer serve: internal error: {msg}");
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut r = (
            self.status,
            Json(json!({"error": {"code": self.code, "message": self.message}})),
        )
            .into_response();
        if let Some(s) = self.retry_after
            && let Ok(v) = HeaderValue::from_str(&s.to_string())
        {
            r.headers_mut().insert(header::RETRY_AFTER, v);
        }
        r
    }
}
