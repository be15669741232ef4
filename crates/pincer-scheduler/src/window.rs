//! Active hours (when a heartbeat may run) and deterministic jitter (spreading top-of-hour
//! jobs).

use std::time::Duration;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::tz::TimeZone;

use crate::ScheduleError;

/// A daily window of local time, `08:00-22:00`. A window whose end is before its start spans
/// midnight (`22:00-06:00`); equal ends mean all day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ActiveHours {
    start: Time,
    end: Time,
}

fn hhmm(s: &str, whole: &str) -> Result<Time, ScheduleError> {
    let bad = || ScheduleError::Invalid(format!("`{whole}` is not a window like 08:00-22:00"));
    let (h, m) = s.trim().split_once(':').ok_or_else(bad)?;
    let h: i8 = h.parse().map_err(|_| bad())?;
    let m: i8 = m.parse().map_err(|_| bad())?;
    if h == 24 && m == 0 {
        return Ok(Time::MAX);
    }
    Time::new(h, m, 0, 0).map_err(|_| bad())
}

impl ActiveHours {
    /// Parses `HH:MM-HH:MM` (`24:00` allowed as an end).
    ///
    /// # Errors
    /// [`ScheduleError::Invalid`] for anything else.
    pub fn parse(s: &str) -> Result<Self, ScheduleError> {
        let (a, b) = s.split_once('-').ok_or_else(|| {
            ScheduleError::Invalid(format!("`{s}` is not a window like 08:00-22:00"))
        })?;
        Ok(Self {
            start: hhmm(a, s)?,
            end: hhmm(b, s)?,
        })
    }

    /// Whether `t` falls inside the window in `tz` (start inclusive, end exclusive).
    pub fn contains(&self, t: Timestamp, tz: &TimeZone) -> bool {
        let local = t.to_zoned(tz.clone()).time();
        match self.start.cmp(&self.end) {
            std::cmp::Ordering::Equal => true,
            std::cmp::Ordering::Less => local >= self.start && local < self.end,
            std::cmp::Ordering::Greater => local >= self.start || local < self.end,
        }
    }
}

/// A fixed offset in `[0, max)` derived from `key` (FNV-1a): the same job always gets the same
/// delay, so restarts do not move it, while jobs scheduled for the same minute spread out.
pub fn jitter(key: &str, max: Duration) -> Duration {
    let secs = max.as_secs();
    if secs == 0 {
        return Duration::ZERO;
    }
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    Duration::from_secs(h % secs)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn at(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_daytime_window_in_its_zone() {
        let w = ActiveHours::parse("08:00-22:00").unwrap();
        let berlin = TimeZone::get("Europe/Berlin").unwrap();
        // 06:30 UTC is 07:30 in Berlin in winter (outside), 08:30 in summer (inside).
        assert!(!w.contains(at("2026-01-15T06:30:00Z"), &berlin));
        assert!(w.contains(at("2026-07-15T06:30:00Z"), &berlin));
        assert!(w.contains(at("2026-01-15T07:00:00Z"), &berlin)); // 08:00 exactly
        assert!(!w.contains(at("2026-01-15T21:00:00Z"), &berlin)); // 22:00 exactly
    }

    #[test]
    fn a_window_across_midnight_and_all_day() {
        let w = ActiveHours::parse("22:00-06:00").unwrap();
        let utc = TimeZone::UTC;
        assert!(w.contains(at("2026-01-15T23:10:00Z"), &utc));
        assert!(w.contains(at("2026-01-15T05:59:00Z"), &utc));
        assert!(!w.contains(at("2026-01-15T12:00:00Z"), &utc));
        let all = ActiveHours::parse("00:00-24:00").unwrap();
        assert!(all.contains(at("2026-01-15T23:59:59Z"), &utc));
        assert!(
            ActiveHours::parse("0:00-0:00")
                .unwrap()
                .contains(at("2026-01-15T12:00:00Z"), &utc)
        );
    }

    #[test]
    fn bad_windows_are_refused() {
        for s in [
            "8-22",
            "08:00",
            "25:00-26:00",
            "08:60-09:00",
            "",
            "aa:bb-cc:dd",
        ] {
            assert!(ActiveHours::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn jitter_is_stable_bounded_and_spreads() {
        let max = Duration::from_secs(300);
        assert_eq!(jitter("report", max), jitter("report", max));
        assert!(jitter("report", max) < max);
        assert_eq!(jitter("report", Duration::ZERO), Duration::ZERO);
        let distinct: std::collections::BTreeSet<_> =
            (0..20).map(|i| jitter(&format!("job-{i}"), max)).collect();
        assert!(distinct.len() > 10);
    }
}
