//! When jobs run (F1): `at` a time, `every` interval, or on a `cron` schedule in a time zone,
//! and what happens to runs missed while the server was down. Pure functions of an explicit
//! "now", so tests move time freely (DST changes included).
//!
//! DST, precisely: a cron time that falls in a spring-forward gap runs at the first valid time
//! after the gap (02:30 → 03:30 on the change day); a time that occurs twice in a fall-back
//! fold runs once, at its first occurrence (so an hourly job has no run in the repeated hour;
//! use `every 1h` for exact elapsed-time intervals).

mod cron;
mod window;

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use serde::{Deserialize, Serialize};

pub use cron::{Cron, CronError};
pub use jiff;
pub use window::{ActiveHours, jitter};

/// Days searched for the next cron match (covers every 29 February in four years).
const SEARCH_DAYS: i32 = 1500;

/// A schedule that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// Bad time or duration.
    #[error("{0}")]
    Invalid(String),
    /// Bad cron expression.
    #[error(transparent)]
    Cron(#[from] CronError),
}

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Schedule {
    /// Once.
    At(Timestamp),
    /// Every `every`, counted from `anchor`.
    Every {
        /// Interval.
        every: Duration,
        /// The first run.
        anchor: Timestamp,
    },
    /// On a cron schedule in a time zone.
    Cron {
        /// The expression.
        cron: Cron,
        /// Its zone.
        tz: TimeZone,
        /// The zone's name (`Europe/Berlin`, `UTC`).
        tz_name: String,
    },
}

/// What to do with runs missed while the server was down.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MissedRuns {
    /// Skip them; run at the next scheduled time (default).
    #[default]
    Skip,
    /// Run once now, however many were missed, then continue on schedule.
    RunOnce,
}

/// Parses `90s`, `20m`, `2h`, `1d` (or combinations such as `1h30m`).
///
/// # Errors
/// [`ScheduleError::Invalid`] for anything else or zero.
pub fn parse_duration(s: &str) -> Result<Duration, ScheduleError> {
    let bad = || ScheduleError::Invalid(format!("`{s}` is not a duration like 90s, 20m, 2h or 1d"));
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.trim().chars() {
        if c.is_ascii_digit() {
            num.push(c);
            continue;
        }
        let n: u64 = num.parse().map_err(|_| bad())?;
        num.clear();
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        total = total
            .checked_add(n.checked_mul(unit).ok_or_else(bad)?)
            .ok_or_else(bad)?;
    }
    if !num.is_empty() || total == 0 {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

fn add(t: Timestamp, d: Duration) -> Option<Timestamp> {
    let d = jiff::SignedDuration::try_from(d).ok()?;
    t.checked_add(d).ok()
}

impl Schedule {
    /// `at`: an RFC 3339 time, or a delay from `now` (`20m`).
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] when it is neither.
    pub fn at(s: &str, now: Timestamp) -> Result<Self, ScheduleError> {
        if let Ok(t) = s.parse::<Timestamp>() {
            return Ok(Self::At(t));
        }
        let d = parse_duration(s).map_err(|_| {
            ScheduleError::Invalid(format!(
                "`{s}` is neither an RFC 3339 time nor a delay like 20m"
            ))
        })?;
        add(now, d)
            .map(Self::At)
            .ok_or_else(|| ScheduleError::Invalid(format!("`{s}` is too far away")))
    }

    /// `every`: an interval starting at `anchor`.
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] for a bad duration.
    pub fn every(s: &str, anchor: Timestamp) -> Result<Self, ScheduleError> {
        Ok(Self::Every {
            every: parse_duration(s)?,
            anchor,
        })
    }

    /// `cron` in time zone `tz` (IANA name; `UTC` by default).
    ///
    /// # Errors
    /// For a bad expression or an unknown zone.
    pub fn cron(expr: &str, tz: &str) -> Result<Self, ScheduleError> {
        let zone = TimeZone::get(tz)
            .map_err(|e| ScheduleError::Invalid(format!("time zone `{tz}`: {e}")))?;
        Ok(Self::Cron {
            cron: Cron::parse(expr)?,
            tz: zone,
            tz_name: tz.to_owned(),
        })
    }

    /// The first run strictly after `t`, if any.
    pub fn next_after(&self, t: Timestamp) -> Option<Timestamp> {
        match self {
            Self::At(at) => (*at > t).then_some(*at),
            Self::Every { every, anchor } => {
                if t < *anchor {
                    return Some(*anchor);
                }
                let step = i128::try_from(every.as_nanos()).ok()?.max(1);
                let elapsed = t.as_nanosecond() - anchor.as_nanosecond();
                let k = elapsed / step + 1;
                Timestamp::from_nanosecond(anchor.as_nanosecond() + k * step).ok()
            }
            Self::Cron { cron, tz, .. } => next_cron(cron, tz, t),
        }
    }
}

fn next_cron(cron: &Cron, tz: &TimeZone, t: Timestamp) -> Option<Timestamp> {
    let start: DateTime = t.to_zoned(tz.clone()).datetime();
    let mut date = start.date();
    for _ in 0..SEARCH_DAYS {
        let weekday = date.weekday().to_sunday_zero_offset();
        if cron.day_matches(date.month(), date.day(), weekday) {
            for h in cron.hours() {
                for m in cron.minutes() {
                    for s in cron.seconds() {
                        let civil = date.at(h, m, s, 0);
                        if civil <= start {
                            continue;
                        }
                        // Gap: the first valid time after it; fold: the first occurrence.
                        let Ok(z) = tz.to_ambiguous_zoned(civil).compatible() else {
                            continue;
                        };
                        let at = z.timestamp();
                        // In a fold's second pass a time already ran in the first.
                        if at > t {
                            return Some(at);
                        }
                    }
                }
            }
        }
        date = date.tomorrow().ok()?;
    }
    None
}

/// What the scheduler does with a job whose next run is `next` when it looks at `now`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Due {
    /// Start a run now.
    pub run: bool,
    /// Runs that were missed (skipped, or folded into this one).
    pub missed: bool,
    /// The next run to store.
    pub next: Option<Timestamp>,
}

/// Decides a job's run at `now`. A run later than `grace` counts as missed and follows
/// `policy`; whatever happens, the stored next run moves past `now`, so a restart applies the
/// policy exactly once.
pub fn due(
    schedule: &Schedule,
    next: Timestamp,
    now: Timestamp,
    policy: MissedRuns,
    grace: Duration,
) -> Due {
    if next > now {
        return Due {
            run: false,
            missed: false,
            next: Some(next),
        };
    }
    let late = add(next, grace).is_some_and(|deadline| now > deadline);
    let following = schedule.next_after(now);
    match (late, policy) {
        (false, _) => Due {
            run: true,
            missed: false,
            next: following,
        },
        (true, MissedRuns::Skip) => Due {
            run: false,
            missed: true,
            next: following,
        },
        (true, MissedRuns::RunOnce) => Due {
            run: true,
            missed: true,
            next: following,
        },
    }
}

/// Checks that `tz` names an IANA time zone this machine (or the bundled database) knows.
///
/// # Errors
/// [`ScheduleError::Invalid`] naming the zone.
pub fn check_zone(tz: &str) -> Result<(), ScheduleError> {
    TimeZone::get(tz)
        .map(|_| ())
        .map_err(|e| ScheduleError::Invalid(format!("time zone `{tz}`: {e}")))
}

/// Today's date (`YYYY-MM-DD`) in the IANA zone `tz`.
///
/// # Errors
/// [`ScheduleError::Invalid`] naming an unknown zone.
pub fn today_in(tz: &str) -> Result<String, ScheduleError> {
    let zone =
        TimeZone::get(tz).map_err(|e| ScheduleError::Invalid(format!("time zone `{tz}`: {e}")))?;
    Ok(jiff::Timestamp::now().to_zoned(zone).date().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn durations_parse() {
        assert_eq!(parse_duration("90s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("1h30m").unwrap(), Duration::from_secs(5400));
        assert_eq!(parse_duration("2d").unwrap(), Duration::from_secs(172_800));
        for bad in ["", "0s", "5", "5x", "m", "-5m"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn at_runs_once_absolute_or_relative() {
        let now = ts("2026-03-01T10:00:00Z");
        let s = Schedule::at("20m", now).unwrap();
        assert_eq!(s.next_after(now), Some(ts("2026-03-01T10:20:00Z")));
        assert_eq!(s.next_after(ts("2026-03-01T10:20:00Z")), None);
        let s = Schedule::at("2026-03-02T08:00:00+01:00", now).unwrap();
        assert_eq!(s.next_after(now), Some(ts("2026-03-02T07:00:00Z")));
        assert!(Schedule::at("tomorrow", now).is_err());
    }

    #[test]
    fn every_counts_from_its_anchor_without_drift() {
        let anchor = ts("2026-03-01T10:00:00Z");
        let s = Schedule::every("2s", anchor).unwrap();
        assert_eq!(s.next_after(ts("2026-03-01T09:00:00Z")), Some(anchor));
        assert_eq!(s.next_after(anchor), Some(ts("2026-03-01T10:00:02Z")));
        assert_eq!(
            s.next_after(ts("2026-03-01T10:00:03.5Z")),
            Some(ts("2026-03-01T10:00:04Z"))
        );
    }

    #[test]
    fn cron_in_a_time_zone_across_the_spring_dst_change() {
        // Europe/Berlin skips 02:00-03:00 on 2026-03-29.
        let s = Schedule::cron("30 2 * * *", "Europe/Berlin").unwrap();
        let before = ts("2026-03-28T12:00:00Z");
        // 28 March: 02:30 CET = 01:30 UTC.
        let first = s.next_after(ts("2026-03-27T12:00:00Z")).unwrap();
        assert_eq!(first, ts("2026-03-28T01:30:00Z"));
        // 29 March: 02:30 does not exist; it runs right after the gap, 03:30 CEST = 01:30 UTC.
        let on_change = s.next_after(before).unwrap();
        assert_eq!(on_change, ts("2026-03-29T01:30:00Z"));
        // 30 March: 02:30 CEST = 00:30 UTC.
        assert_eq!(s.next_after(on_change).unwrap(), ts("2026-03-30T00:30:00Z"));
    }

    #[test]
    fn cron_runs_once_in_the_autumn_fold() {
        // Europe/Berlin repeats 02:00-03:00 on 2026-10-25.
        let s = Schedule::cron("30 2 * * *", "Europe/Berlin").unwrap();
        let first = s.next_after(ts("2026-10-24T12:00:00Z")).unwrap();
        // The first 02:30 (CEST, +02:00) = 00:30 UTC.
        assert_eq!(first, ts("2026-10-25T00:30:00Z"));
        // Not again at the second 02:30 (CET) an hour later: next is the 26th.
        assert_eq!(s.next_after(first).unwrap(), ts("2026-10-26T01:30:00Z"));
        // Each civil time runs once, so an hourly job does not run again at the repeated
        // 02:00: after 02:10 CEST (00:10 UTC) comes 03:00 CET (02:00 UTC).
        let hourly = Schedule::cron("0 * * * *", "Europe/Berlin").unwrap();
        let t = hourly.next_after(ts("2026-10-25T00:10:00Z")).unwrap();
        assert_eq!(t, ts("2026-10-25T02:00:00Z"));
    }

    #[test]
    fn cron_six_fields_and_utc() {
        let s = Schedule::cron("*/10 * * * * *", "UTC").unwrap();
        assert_eq!(
            s.next_after(ts("2026-01-01T00:00:05Z")),
            Some(ts("2026-01-01T00:00:10Z"))
        );
        assert!(Schedule::cron("* * * * *", "Mars/Olympus").is_err());
        // 29 February is found years ahead.
        let leap = Schedule::cron("0 0 29 2 *", "UTC").unwrap();
        assert_eq!(
            leap.next_after(ts("2026-03-01T00:00:00Z")),
            Some(ts("2028-02-29T00:00:00Z"))
        );
    }

    #[test]
    fn missed_runs_are_skipped_or_run_once_after_downtime() {
        let anchor = ts("2026-03-01T10:00:00Z");
        let every = Schedule::every("1h", anchor).unwrap();
        let grace = Duration::from_secs(60);
        // On time (within grace): run, next moves on.
        let d = due(
            &every,
            anchor,
            ts("2026-03-01T10:00:30Z"),
            MissedRuns::Skip,
            grace,
        );
        assert_eq!(
            d,
            Due {
                run: true,
                missed: false,
                next: Some(ts("2026-03-01T11:00:00Z"))
            }
        );
        // Down for five hours: skip → no run; run_once → one run. Either way the next run is
        // the next slot after now, so a second look does nothing.
        let now = ts("2026-03-01T15:10:00Z");
        let skip = due(&every, anchor, now, MissedRuns::Skip, grace);
        assert!(!skip.run && skip.missed);
        assert_eq!(skip.next, Some(ts("2026-03-01T16:00:00Z")));
        let once = due(&every, anchor, now, MissedRuns::RunOnce, grace);
        assert!(once.run && once.missed);
        let again = due(&every, once.next.unwrap(), now, MissedRuns::RunOnce, grace);
        assert!(!again.run);
        // Not yet due.
        let early = due(
            &every,
            ts("2026-03-01T16:00:00Z"),
            now,
            MissedRuns::RunOnce,
            grace,
        );
        assert!(!early.run && !early.missed);
    }
}
