//! Model health for failover (B2): which models and API keys are cooling down after failures,
//! or disabled until an operator clears them. Kept in the store so a restart and every other
//! process respect the same cooldowns.
//!
//! Subjects are free-form names the caller chooses (`model:<alias>`, `key:<ENV_VAR>`). A failure
//! moves a subject one rung down the cooldown ladder (the n-th consecutive failure cools it for
//! `ladder[min(n, len) - 1]`); a success resets it; an auth or billing failure disables an API
//! key until `clear`.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};

use crate::sqlite::{stamp, ts};
use crate::values::until;
use crate::{SqliteStore, StoreError};

/// One subject's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelHealth {
    /// `model:<alias>` or `key:<ENV_VAR>`.
    pub subject: String,
    /// Consecutive failures.
    pub failures: u32,
    /// Not used before this time.
    pub cooldown_until: Option<DateTime<Utc>>,
    /// Not used until an operator clears it (auth and billing failures of an API key).
    pub disabled: bool,
    /// Class of the last failure (`rate_limit`, `server`, …).
    pub last_error: Option<String>,
    /// When it happened.
    pub last_error_at: Option<DateTime<Utc>>,
    /// Its message (provider's text, key scrubbed).
    pub detail: Option<String>,
}

impl ModelHealth {
    /// Whether it may be used at `now`.
    pub fn usable(&self, now: DateTime<Utc>) -> bool {
        !self.disabled && self.cooldown_until.is_none_or(|u| u <= now)
    }
}

/// The cooldown after the `failures`-th consecutive failure.
pub(crate) fn cooldown(ladder: &[Duration], failures: u32) -> Option<Duration> {
    let rung = usize::try_from(failures.max(1) - 1).unwrap_or(usize::MAX);
    ladder.get(rung).or(ladder.last()).copied()
}

/// The health seam.
#[async_trait]
pub trait ModelHealthStore: Send + Sync + std::fmt::Debug {
    /// Every subject with a record.
    async fn model_health(&self) -> Result<Vec<ModelHealth>, StoreError>;
    /// Records a failure of class `class`: one more consecutive failure, cooled down per
    /// `ladder` from `now`.
    async fn record_model_failure(
        &self,
        subject: &str,
        class: &str,
        detail: &str,
        ladder: &[Duration],
        now: DateTime<Utc>,
    ) -> Result<ModelHealth, StoreError>;
    /// Disables a subject until [`Self::clear_model_health`] (an API key that was refused).
    async fn disable_model_subject(
        &self,
        subject: &str,
        class: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// A success: no failures, no cooldown (a disabled subject stays disabled).
    async fn record_model_success(&self, subject: &str) -> Result<(), StoreError>;
    /// The operator's reset: failures, cooldown and disabling cleared. `false` when there was no
    /// record.
    async fn clear_model_health(&self, subject: &str) -> Result<bool, StoreError>;
}

fn health_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Raw> {
    Ok((
        r.get(0)?,
        r.get(1)?,
        r.get(2)?,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
    ))
}

type Raw = (
    String,
    i64,
    Option<String>,
    bool,
    Option<String>,
    Option<String>,
    Option<String>,
);

fn decode(raw: Raw) -> Result<ModelHealth, StoreError> {
    let (subject, failures, cooldown_until, disabled, last_error, last_error_at, detail) = raw;
    Ok(ModelHealth {
        subject,
        failures: u32::try_from(failures).unwrap_or(u32::MAX),
        cooldown_until: cooldown_until.as_deref().map(ts).transpose()?,
        disabled,
        last_error,
        last_error_at: last_error_at.as_deref().map(ts).transpose()?,
        detail,
    })
}

const COLUMNS: &str =
    "subject, failures, cooldown_until, disabled, last_error, last_error_at, detail";

#[async_trait]
impl ModelHealthStore for SqliteStore {
    async fn model_health(&self) -> Result<Vec<ModelHealth>, StoreError> {
        let rows = self
            .with(|c| {
                let mut st = c.prepare_cached(&format!(
                    "SELECT {COLUMNS} FROM model_health ORDER BY subject"
                ))?;
                let rows = st
                    .query_map([], health_row)?
                    .collect::<Result<Vec<Raw>, _>>()?;
                Ok(rows)
            })
            .await?;
        rows.into_iter().map(decode).collect()
    }

    async fn record_model_failure(
        &self,
        subject: &str,
        class: &str,
        detail: &str,
        ladder: &[Duration],
        now: DateTime<Utc>,
    ) -> Result<ModelHealth, StoreError> {
        let (subject, class, detail, ladder) = (
            subject.to_owned(),
            class.to_owned(),
            detail.to_owned(),
            ladder.to_vec(),
        );
        let raw = self
            .transact(move |c| {
                let failures: i64 = c
                    .prepare_cached("SELECT failures FROM model_health WHERE subject = ?1")?
                    .query_row(params![subject], |r| r.get(0))
                    .optional()?
                    .unwrap_or(0)
                    + 1;
                let n = u32::try_from(failures).unwrap_or(u32::MAX);
                let cool = cooldown(&ladder, n).map(|d| stamp(until(now, d)));
                c.prepare_cached(
                    "INSERT INTO model_health (subject, failures, cooldown_until, disabled, last_error, last_error_at, detail)
                     VALUES (?1, ?2, ?3, 0, ?4, ?5, ?6)
                     ON CONFLICT(subject) DO UPDATE SET failures = excluded.failures,
                        cooldown_until = excluded.cooldown_until, last_error = excluded.last_error,
                        last_error_at = excluded.last_error_at, detail = excluded.detail",
                )?
                .execute(params![subject, failures, cool, class, stamp(now), detail])?;
                let raw = c
                    .prepare_cached(&format!(
                        "SELECT {COLUMNS} FROM model_health WHERE subject = ?1"
                    ))?
                    .query_row(params![subject], health_row)?;
                Ok::<_, StoreError>(raw)
            })
            .await?;
        decode(raw)
    }

    async fn disable_model_subject(
        &self,
        subject: &str,
        class: &str,
        detail: &str,
        now: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let (subject, class, detail) = (subject.to_owned(), class.to_owned(), detail.to_owned());
        self.with(move |c| {
            c.prepare_cached(
                "INSERT INTO model_health (subject, failures, cooldown_until, disabled, last_error, last_error_at, detail)
                 VALUES (?1, 1, NULL, 1, ?2, ?3, ?4)
                 ON CONFLICT(subject) DO UPDATE SET failures = model_health.failures + 1,
                    disabled = 1, last_error = excluded.last_error,
                    last_error_at = excluded.last_error_at, detail = excluded.detail",
            )?
            .execute(params![subject, class, stamp(now), detail])?;
            Ok(())
        })
        .await
    }

    async fn record_model_success(&self, subject: &str) -> Result<(), StoreError> {
        let subject = subject.to_owned();
        self.with(move |c| {
            c.prepare_cached(
                "UPDATE model_health SET failures = 0, cooldown_until = NULL WHERE subject = ?1",
            )?
            .execute(params![subject])?;
            Ok(())
        })
        .await
    }

    async fn clear_model_health(&self, subject: &str) -> Result<bool, StoreError> {
        let subject = subject.to_owned();
        self.with(move |c| {
            let n = c
                .prepare_cached(
                    "UPDATE model_health SET failures = 0, cooldown_until = NULL, disabled = 0
                     WHERE subject = ?1",
                )?
                .execute(params![subject])?;
            Ok(n > 0)
        })
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ladder_climbs_and_stays_on_its_last_rung() {
        let ladder = [Duration::from_secs(60), Duration::from_secs(300)];
        assert_eq!(cooldown(&ladder, 1), Some(Duration::from_secs(60)));
        assert_eq!(cooldown(&ladder, 2), Some(Duration::from_secs(300)));
        assert_eq!(cooldown(&ladder, 9), Some(Duration::from_secs(300)));
        assert_eq!(cooldown(&[], 3), None);
    }
}
