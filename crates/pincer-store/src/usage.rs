//! Token usage and cost (B4): one record per model call — which agent, conversation, user and
//! model, how many tokens, what it cost when the model's price is known — summed for reports
//! (`pincer usage`, `GET /v1/usage`) and for budgets, which are checked before a call is sent.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use rusqlite::params;
use serde::{Deserialize, Serialize};

use crate::sqlite::stamp;
use crate::{SqliteStore, StoreError};

/// One model call's usage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UsageRecord {
    /// When the call ended.
    pub at: DateTime<Utc>,
    /// The agent.
    pub agent: String,
    /// The conversation (session key).
    pub session: String,
    /// Who it was for (`telegram:42`, `token:ci`, `cli:default`, …).
    pub user: String,
    /// The model alias (or model name without a chain).
    pub model: String,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// USD, when the model's prices are configured.
    pub cost_usd: Option<f64>,
}

/// What a report groups by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UsageBy {
    /// Per agent.
    Agent,
    /// Per conversation.
    Session,
    /// Per user.
    User,
    /// Per model.
    Model,
}

impl std::str::FromStr for UsageBy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "agent" => Ok(Self::Agent),
            "session" => Ok(Self::Session),
            "user" => Ok(Self::User),
            "model" => Ok(Self::Model),
            other => Err(format!("`{other}`: group by agent, session, user or model")),
        }
    }
}

/// A report's start: RFC 3339, a UTC date (`2026-12-01`), or a span back from `now` (`7d`,
/// `24h`).
///
/// # Errors
/// A message naming the accepted forms.
pub fn parse_since(s: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    if let Some(t) = chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
    {
        return Ok(t.and_utc());
    }
    let span = |n: &str, unit: i64| {
        n.parse::<i64>()
            .ok()
            .filter(|n| (1..=100_000).contains(n))
            .map(|n| now - chrono::Duration::seconds(n * unit))
    };
    s.strip_suffix('d')
        .and_then(|n| span(n, 86_400))
        .or_else(|| s.strip_suffix('h').and_then(|n| span(n, 3600)))
        .ok_or_else(|| {
            format!("`{s}`: expected RFC 3339, a date (2026-12-01) or a span back (7d, 24h)")
        })
}

impl UsageBy {
    fn column(self) -> &'static str {
        match self {
            Self::Agent => "agent",
            Self::Session => "session",
            Self::User => "user_id",
            Self::Model => "model",
        }
    }
}

/// Which records a sum covers (every `Some` must match).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageFilter {
    /// From this time on.
    pub since: Option<DateTime<Utc>>,
    /// One agent.
    pub agent: Option<String>,
    /// One user.
    pub user: Option<String>,
}

/// A sum of records.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UsageTotal {
    /// The group (agent, session, user or model); empty for an overall sum.
    pub key: String,
    /// Model calls.
    pub calls: u64,
    /// Input tokens.
    pub input_tokens: u64,
    /// Output tokens.
    pub output_tokens: u64,
    /// USD of the calls whose price is known.
    pub cost_usd: f64,
    /// Calls without a known price (their cost is not in `cost_usd`).
    pub unpriced_calls: u64,
}

impl UsageTotal {
    /// Input plus output tokens.
    pub fn tokens(&self) -> u64 {
        self.input_tokens.saturating_add(self.output_tokens)
    }
}

/// One day's use by one agent of one model (UTC days).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DailyUsage {
    /// The day (UTC).
    pub day: chrono::NaiveDate,
    /// The agent.
    pub agent: String,
    /// The model.
    pub model: String,
    /// Input plus output tokens.
    pub tokens: u64,
}

/// `YYYY-MM-DD` as stored by either backend's day grouping.
fn parse_day(s: &str) -> Result<chrono::NaiveDate, StoreError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .map_err(|e| StoreError::Corrupt(format!("usage day `{s}`: {e}")))
}

/// The usage seam.
#[async_trait]
pub trait UsageStore: Send + Sync + std::fmt::Debug {
    /// Records one model call.
    async fn record_usage(&self, record: &UsageRecord) -> Result<(), StoreError>;
    /// The sum of the records `filter` selects.
    async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageTotal, StoreError>;
    /// Sums per group since `since`, largest token count first.
    async fn usage_report(
        &self,
        by: UsageBy,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageTotal>, StoreError>;
    /// Tokens per UTC day, agent and model of the records `filter` selects, oldest day first,
    /// from the per-day sums kept with every record (`usage_days`; the web page's week
    /// charts). `filter.since` counts from the start of its UTC day.
    async fn usage_daily(&self, filter: &UsageFilter) -> Result<Vec<DailyUsage>, StoreError>;
}

fn to_i64(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

fn to_u64(v: i64) -> u64 {
    u64::try_from(v).unwrap_or(0)
}

/// Which table a filter's `since` applies to.
#[derive(Clone, Copy)]
enum Since {
    /// `usage.at >= since`.
    At,
    /// `usage_days.day >= since`'s day.
    Day,
}

/// `(WHERE clause, values)` for a filter, with `?n` placeholders.
fn sqlite_where(f: &UsageFilter, by: Since) -> (String, Vec<String>) {
    let mut conds = Vec::new();
    let mut vals = Vec::new();
    if let Some(s) = f.since {
        match by {
            Since::At => vals.push(stamp(s)),
            Since::Day => vals.push(s.date_naive().to_string()),
        }
        let col = match by {
            Since::At => "at",
            Since::Day => "day",
        };
        conds.push(format!("{col} >= ?{}", vals.len()));
    }
    if let Some(a) = &f.agent {
        vals.push(a.clone());
        conds.push(format!("agent = ?{}", vals.len()));
    }
    if let Some(u) = &f.user {
        vals.push(u.clone());
        conds.push(format!("user_id = ?{}", vals.len()));
    }
    let clause = if conds.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", conds.join(" AND "))
    };
    (clause, vals)
}

const SUMS: &str = "COUNT(*), COALESCE(SUM(input_tokens), 0), COALESCE(SUM(output_tokens), 0), \
                    COALESCE(SUM(cost_usd), 0.0), COALESCE(SUM(CASE WHEN cost_usd IS NULL THEN 1 ELSE 0 END), 0)";

fn total_row(key: String, r: &rusqlite::Row<'_>, at: usize) -> rusqlite::Result<UsageTotal> {
    Ok(UsageTotal {
        key,
        calls: to_u64(r.get(at)?),
        input_tokens: to_u64(r.get(at + 1)?),
        output_tokens: to_u64(r.get(at + 2)?),
        cost_usd: r.get(at + 3)?,
        unpriced_calls: to_u64(r.get(at + 4)?),
    })
}

#[async_trait]
impl UsageStore for SqliteStore {
    async fn record_usage(&self, r: &UsageRecord) -> Result<(), StoreError> {
        let r = r.clone();
        self.transact(move |c| {
            let at = stamp(r.at);
            let (input, output) = (to_i64(r.input_tokens), to_i64(r.output_tokens));
            c.prepare_cached(
                "INSERT INTO usage (at, agent, session, user_id, model, input_tokens, output_tokens, cost_usd)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?
            .execute(params![
                at,
                r.agent,
                r.session,
                r.user,
                r.model,
                input,
                output,
                r.cost_usd
            ])?;
            c.prepare_cached(
                "INSERT INTO usage_days (day, agent, model, user_id, tokens)
                 VALUES (substr(?1, 1, 10), ?2, ?3, ?4, ?5)
                 ON CONFLICT (day, agent, model, user_id) DO UPDATE SET tokens = tokens + excluded.tokens",
            )?
            .execute(params![
                at,
                r.agent,
                r.model,
                r.user,
                input.saturating_add(output)
            ])?;
            Ok::<_, StoreError>(())
        })
        .await
    }

    async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageTotal, StoreError> {
        let (clause, vals) = sqlite_where(filter, Since::At);
        self.with(move |c| {
            let mut st = c.prepare_cached(&format!("SELECT {SUMS} FROM usage {clause}"))?;
            Ok(st.query_row(rusqlite::params_from_iter(vals.iter()), |r| {
                total_row(String::new(), r, 0)
            })?)
        })
        .await
    }

    async fn usage_report(
        &self,
        by: UsageBy,
        since: Option<DateTime<Utc>>,
    ) -> Result<Vec<UsageTotal>, StoreError> {
        let (clause, vals) = sqlite_where(
            &UsageFilter {
                since,
                ..UsageFilter::default()
            },
            Since::At,
        );
        let col = by.column();
        self.with(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT {col}, {SUMS} FROM usage {clause} GROUP BY {col}
                 ORDER BY COALESCE(SUM(input_tokens), 0) + COALESCE(SUM(output_tokens), 0) DESC, {col}"
            ))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(vals.iter()), |r| {
                    total_row(r.get(0)?, r, 1)
                })?
                .collect::<Result<Vec<_>, _>>()?;
            Ok(rows)
        })
        .await
    }

    async fn usage_daily(&self, filter: &UsageFilter) -> Result<Vec<DailyUsage>, StoreError> {
        let (clause, vals) = sqlite_where(filter, Since::Day);
        self.with(move |c| {
            let mut st = c.prepare_cached(&format!(
                "SELECT day, agent, model, SUM(tokens) FROM usage_days {clause}
                 GROUP BY day, agent, model ORDER BY day, agent, model"
            ))?;
            let rows = st
                .query_map(rusqlite::params_from_iter(vals.iter()), |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, String>(2)?,
                        r.get::<_, i64>(3)?,
                    ))
                })?
                .collect::<Result<Vec<_>, _>>()?;
            rows.into_iter()
                .map(|(day, agent, model, tokens)| {
                    Ok(DailyUsage {
                        day: parse_day(&day)?,
                        agent,
                        model,
                        tokens: to_u64(tokens),
                    })
                })
                .collect()
        })
        .await
    }
}

#[cfg(feature = "postgres")]
pub(crate) mod pg {
    //! [`UsageStore`] on Postgres.

    use async_trait::async_trait;
    use chrono::{DateTime, Utc};
    use tokio_postgres::types::ToSql;

    use super::{
        DailyUsage, SUMS, Since, UsageBy, UsageFilter, UsageRecord, UsageStore, UsageTotal,
        parse_day, to_i64, to_u64,
    };
    use crate::StoreError;
    use crate::pg::{PgStore, db};

    fn filter_sql(f: &UsageFilter, by: Since) -> (String, Vec<Box<dyn ToSql + Sync + Send>>) {
        let mut conds = Vec::new();
        let mut vals: Vec<Box<dyn ToSql + Sync + Send>> = Vec::new();
        if let Some(s) = f.since {
            match by {
                Since::At => vals.push(Box::new(s)),
                Since::Day => vals.push(Box::new(s.date_naive())),
            }
            let col = match by {
                Since::At => "at",
                Since::Day => "day",
            };
            conds.push(format!("{col} >= ${}", vals.len()));
        }
        if let Some(a) = &f.agent {
            vals.push(Box::new(a.clone()));
            conds.push(format!("agent = ${}", vals.len()));
        }
        if let Some(u) = &f.user {
            vals.push(Box::new(u.clone()));
            conds.push(format!("user_id = ${}", vals.len()));
        }
        let clause = if conds.is_empty() {
            String::new()
        } else {
            format!("WHERE {}", conds.join(" AND "))
        };
        (clause, vals)
    }

    fn total(key: String, r: &tokio_postgres::Row, at: usize) -> UsageTotal {
        UsageTotal {
            key,
            calls: to_u64(r.get(at)),
            input_tokens: to_u64(r.get(at + 1)),
            output_tokens: to_u64(r.get(at + 2)),
            cost_usd: r.get(at + 3),
            unpriced_calls: to_u64(r.get(at + 4)),
        }
    }

    /// Postgres sums are NUMERIC/BIGINT: cast to what [`total`] reads.
    fn sums() -> String {
        SUMS.replace("COUNT(*)", "COUNT(*)::BIGINT")
            .replace("SUM(input_tokens), 0)", "SUM(input_tokens), 0)::BIGINT")
            .replace("SUM(output_tokens), 0)", "SUM(output_tokens), 0)::BIGINT")
            .replace("SUM(cost_usd), 0.0)", "SUM(cost_usd), 0.0)::FLOAT8")
            .replace("ELSE 0 END), 0)", "ELSE 0 END), 0)::BIGINT")
    }

    #[async_trait]
    impl UsageStore for PgStore {
        async fn record_usage(&self, r: &UsageRecord) -> Result<(), StoreError> {
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(|e| db(&e))?;
            let (input, output) = (to_i64(r.input_tokens), to_i64(r.output_tokens));
            tx.execute(
                "INSERT INTO usage (at, agent, session, user_id, model, input_tokens, output_tokens, cost_usd)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                &[
                    &r.at,
                    &r.agent,
                    &r.session,
                    &r.user,
                    &r.model,
                    &input,
                    &output,
                    &r.cost_usd,
                ],
            )
            .await
            .map_err(|e| db(&e))?;
            tx.execute(
                "INSERT INTO usage_days (day, agent, model, user_id, tokens)
                 VALUES (($1::TIMESTAMPTZ AT TIME ZONE 'UTC')::DATE, $2, $3, $4, $5)
                 ON CONFLICT (day, agent, model, user_id)
                 DO UPDATE SET tokens = usage_days.tokens + excluded.tokens",
                &[
                    &r.at,
                    &r.agent,
                    &r.model,
                    &r.user,
                    &input.saturating_add(output),
                ],
            )
            .await
            .map_err(|e| db(&e))?;
            tx.commit().await.map_err(|e| db(&e))
        }

        async fn usage_total(&self, filter: &UsageFilter) -> Result<UsageTotal, StoreError> {
            let (clause, vals) = filter_sql(filter, Since::At);
            let params: Vec<&(dyn ToSql + Sync)> =
                vals.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
            let client = self.client().await?;
            let row = client
                .query_one(&format!("SELECT {} FROM usage {clause}", sums()), &params)
                .await
                .map_err(|e| db(&e))?;
            Ok(total(String::new(), &row, 0))
        }

        async fn usage_report(
            &self,
            by: UsageBy,
            since: Option<DateTime<Utc>>,
        ) -> Result<Vec<UsageTotal>, StoreError> {
            let (clause, vals) = filter_sql(
                &UsageFilter {
                    since,
                    ..UsageFilter::default()
                },
                Since::At,
            );
            let params: Vec<&(dyn ToSql + Sync)> =
                vals.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
            let col = by.column();
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT {col}, {} FROM usage {clause} GROUP BY {col}
                         ORDER BY COALESCE(SUM(input_tokens), 0) + COALESCE(SUM(output_tokens), 0) DESC, {col}",
                        sums()
                    ),
                    &params,
                )
                .await
                .map_err(|e| db(&e))?;
            Ok(rows.iter().map(|r| total(r.get(0), r, 1)).collect())
        }

        async fn usage_daily(&self, filter: &UsageFilter) -> Result<Vec<DailyUsage>, StoreError> {
            let (clause, vals) = filter_sql(filter, Since::Day);
            let params: Vec<&(dyn ToSql + Sync)> =
                vals.iter().map(|b| &**b as &(dyn ToSql + Sync)).collect();
            let client = self.client().await?;
            let rows = client
                .query(
                    &format!(
                        "SELECT to_char(day, 'YYYY-MM-DD'), agent, model, SUM(tokens)::BIGINT
                         FROM usage_days {clause}
                         GROUP BY day, agent, model ORDER BY day, agent, model"
                    ),
                    &params,
                )
                .await
                .map_err(|e| db(&e))?;
            rows.iter()
                .map(|r| {
                    Ok(DailyUsage {
                        day: parse_day(r.get(0))?,
                        agent: r.get(1),
                        model: r.get(2),
                        tokens: to_u64(r.get(3)),
                    })
                })
                .collect()
        }
    }
}
