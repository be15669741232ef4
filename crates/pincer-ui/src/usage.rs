//! Token use over the last seven days as charts of `<meter>` elements (a chart without script or
//! inline style), from one grouped pass over the week's usage records
//! ([`pincer_store::UsageStore::usage_daily`]).

use std::collections::BTreeMap;

use chrono::{Duration, NaiveDate, Utc};
use maud::{Markup, html};
use pincer_gateway::AppState;
use pincer_store::{DailyUsage, UsageFilter};

/// Days shown.
const DAYS: i64 = 7;

/// The last seven days (UTC), oldest first.
fn days() -> Vec<NaiveDate> {
    let today = Utc::now().date_naive();
    (0..DAYS)
        .rev()
        .map(|back| today - Duration::days(back))
        .collect()
}

fn label(d: NaiveDate) -> String {
    d.format("%a %d").to_string()
}

/// The week's records `filter` selects (its `since` is replaced by the week's start); none when
/// the store cannot say (the page still renders).
pub(crate) async fn week(st: &AppState, filter: UsageFilter) -> Vec<DailyUsage> {
    let since = days()
        .first()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc());
    st.store
        .usage_daily(&UsageFilter { since, ..filter })
        .await
        .unwrap_or_default()
}

/// Per day of the week, the tokens of `rows` (rows outside the week are left out).
fn per_day<'a>(rows: impl Iterator<Item = &'a DailyUsage>) -> Vec<u64> {
    let days = days();
    let mut out = vec![0u64; days.len()];
    for r in rows {
        if let Some(i) = days.iter().position(|d| *d == r.day) {
            out[i] = out[i].saturating_add(r.tokens);
        }
    }
    out
}

/// `(day label, tokens)` for each day of the week.
pub(crate) fn daily(rows: &[DailyUsage]) -> Vec<(String, u64)> {
    days()
        .into_iter()
        .map(label)
        .zip(per_day(rows.iter()))
        .collect()
}

/// One row per agent or model (`key` picks which), largest week first:
/// `(key, [tokens per day, oldest first])`.
pub(crate) fn by(rows: &[DailyUsage], key: fn(&DailyUsage) -> &str) -> Vec<(String, Vec<u64>)> {
    let mut groups: BTreeMap<&str, Vec<&DailyUsage>> = BTreeMap::new();
    for r in rows {
        groups.entry(key(r)).or_default().push(r);
    }
    let mut out: Vec<(String, Vec<u64>)> = groups
        .into_iter()
        .map(|(k, rs)| (k.to_owned(), per_day(rs.into_iter())))
        .collect();
    out.sort_by_key(|(_, d)| std::cmp::Reverse(d.iter().sum::<u64>()));
    out
}

/// One row per day: label, bar, tokens.
pub(crate) fn bars(days: &[(String, u64)]) -> Markup {
    let max = days.iter().map(|(_, t)| *t).max().unwrap_or(0).max(1);
    html! {
        table.bars {
            @for (day, tokens) in days {
                tr { td { (day) } td { meter min="0" max=(max) value=(tokens) {} } td { (tokens) } }
            }
        }
    }
}

/// One row per key: a bar per day (on one scale for the whole chart) and the week's total.
pub(crate) fn grid(what: &str, rows: &[(String, Vec<u64>)]) -> Markup {
    let max = rows
        .iter()
        .flat_map(|(_, d)| d.iter().copied())
        .max()
        .unwrap_or(0)
        .max(1);
    html! {
        table.week {
            thead { tr { th { (what) } @for d in days() { th { (label(d)) } } th { "tokens" } } }
            tbody {
                @for (key, per) in rows {
                    tr {
                        td { code { (key) } }
                        @for t in per { td { meter min="0" max=(max) value=(t) title=(t) {} } }
                        td { (per.iter().sum::<u64>()) }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(back: i64, agent: &str, model: &str, tokens: u64) -> DailyUsage {
        DailyUsage {
            day: Utc::now().date_naive() - Duration::days(back),
            agent: agent.into(),
            model: model.into(),
            tokens,
        }
    }

    #[test]
    fn rows_land_on_their_day_and_group() {
        let rows = [
            row(0, "main", "a", 5),
            row(0, "ops", "a", 2),
            row(6, "main", "b", 3),
            row(9, "main", "b", 100), // outside the week: not shown
        ];
        let d = daily(&rows);
        assert_eq!(d.len(), 7);
        assert_eq!(d[6].1, 7);
        assert_eq!(d[0].1, 3);
        let by_agent = by(&rows, |r| &r.agent);
        assert_eq!(by_agent[0].0, "main");
        assert_eq!(by_agent[0].1, vec![3, 0, 0, 0, 0, 0, 5]);
        let by_model = by(&rows, |r| &r.model);
        assert_eq!(by_model[0], ("a".to_owned(), vec![0, 0, 0, 0, 0, 0, 7]));
    }
}
