//! `GET /v1/usage` (scope `usage:read`): tokens and cost grouped by agent, session, user or
//! model (B4), the same sums `pincer usage` prints.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use chrono::Utc;
use pincer_store::{UsageBy, UsageFilter, parse_since};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::handlers::ApiQuery;
use crate::{ApiError, AppState};

#[derive(Debug, Deserialize)]
pub(crate) struct UsageQuery {
    /// `agent` (default), `session`, `user` or `model`.
    #[serde(default)]
    by: Option<String>,
    /// RFC 3339, a date or a span back (`7d`).
    #[serde(default)]
    since: Option<String>,
}

pub(crate) async fn usage(
    State(st): State<Arc<AppState>>,
    axum::Extension(who): axum::Extension<crate::Caller>,
    ApiQuery(q): ApiQuery<UsageQuery>,
) -> Result<Json<Value>, ApiError> {
    let by_name = q.by.unwrap_or_else(|| "agent".into());
    let by: UsageBy = by_name
        .parse()
        .map_err(|e: String| ApiError::bad_request("invalid_query", format!("by: {e}")))?;
    let since = q
        .since
        .as_deref()
        .map(|s| parse_since(s, Utc::now()))
        .transpose()
        .map_err(|e| ApiError::bad_request("invalid_query", format!("since: {e}")))?;
    // A member sees only their own total, not others' groups.
    if let Some(me) = who.owner_filter() {
        let total = st
            .store
            .usage_total(&UsageFilter {
                since,
                user: Some(me.to_owned()),
                ..UsageFilter::default()
            })
            .await
            .map_err(|e| ApiError::store(&e))?;
        return Ok(Json(
            json!({"by": "user", "since": since, "rows": [], "total": total}),
        ));
    }
    let rows = st
        .store
        .usage_report(by, since)
        .await
        .map_err(|e| ApiError::store(&e))?;
    let total = st
        .store
        .usage_total(&UsageFilter {
            since,
            ..UsageFilter::default()
        })
        .await
        .map_err(|e| ApiError::store(&e))?;
    Ok(Json(
        json!({"by": by_name, "since": since, "rows": rows, "total": total}),
    ))
}
