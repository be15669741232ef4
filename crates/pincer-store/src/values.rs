//! Value conversions both backends share: ids parsed from stored text, run statuses, lease ends,
//! and database URLs shown without their password.

use std::time::Duration;

use chrono::{DateTime, Utc};
use pincer_types::RunStatus;

use crate::StoreError;

/// Parses a stored id or key, naming what it is on failure.
pub(crate) fn parse<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what} `{s}`")))
}

/// A run status as stored.
pub(crate) fn status_str(s: RunStatus) -> &'static str {
    match s {
        RunStatus::Running => "running",
        RunStatus::Succeeded => "succeeded",
        RunStatus::Failed => "failed",
        RunStatus::Canceled => "canceled",
        RunStatus::TimedOut => "timed_out",
    }
}

/// A stored run status.
pub(crate) fn status_parse(s: &str) -> Result<RunStatus, StoreError> {
    Ok(match s {
        "running" => RunStatus::Running,
        "succeeded" => RunStatus::Succeeded,
        "failed" => RunStatus::Failed,
        "canceled" => RunStatus::Canceled,
        "timed_out" => RunStatus::TimedOut,
        other => return Err(StoreError::Corrupt(format!("run status `{other}`"))),
    })
}

/// The end of a lease of `ttl` from `now` (saturating: never overflows).
pub(crate) fn until(now: DateTime<Utc>, ttl: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(ttl)
        .ok()
        .and_then(|d| now.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// `url` with any password replaced by `***`.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let Some((auth, host)) = rest.split_once('@') else {
        return url.to_owned();
    };
    match auth.split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***@{host}"),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_appear_in_urls_shown() {
        assert_eq!(
            redact_url("postgres://pincer:s3cret@db:5432/p"),
            "postgres://pincer:***@db:5432/p"
        );
        assert_eq!(
            redact_url("postgres://pincer@db/p"),
            "postgres://pincer@db/p"
        );
    }

    #[test]
    fn a_huge_lease_saturates_instead_of_overflowing() {
        let now = Utc::now();
        assert_eq!(until(now, Duration::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(
            until(now, Duration::from_secs(30)),
            now + chrono::Duration::seconds(30)
        );
    }
}
