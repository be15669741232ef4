//! Cron expressions: 5 fields (`minute hour day-of-month month day-of-week`) or 6 (seconds
//! first). Each field takes `*`, numbers, ranges `a-b`, steps `*/n` and `a-b/n`, lists `a,b`,
//! and names for months (`JAN`) and weekdays (`MON`); day-of-week 0 and 7 are Sunday. When both
//! day fields are restricted a day matches either (classic cron).

use std::fmt;

/// A parsed cron expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cron {
    source: String,
    seconds: u64,
    minutes: u64,
    hours: u32,
    days: u32,
    months: u16,
    weekdays: u8,
    day_restricted: bool,
    weekday_restricted: bool,
}

/// A cron expression that does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cron `{expr}`: {reason}")]
pub struct CronError {
    expr: String,
    reason: String,
}

const MONTHS: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];
const WEEKDAYS: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

/// Parses one field into a bit set of allowed values in `lo..=hi`.
fn field(text: &str, lo: u32, hi: u32, names: &[&str], name_base: u32) -> Result<u64, String> {
    let value = |s: &str| -> Result<u32, String> {
        let upper = s.to_ascii_uppercase();
        if let Some(i) = names.iter().position(|n| *n == upper) {
            return Ok(name_base + u32::try_from(i).unwrap_or(0));
        }
        s.parse::<u32>()
            .map_err(|_| format!("`{s}` is not a number or name"))
    };
    let mut set = 0u64;
    for part in text.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((r, s)) => {
                let step: u32 = s.parse().map_err(|_| format!("bad step `{s}`"))?;
                if step == 0 {
                    return Err("a step of 0".into());
                }
                (r, step)
            }
            None => (part, 1),
        };
        let (a, b) = if range == "*" {
            (lo, hi)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a)?, value(b)?)
        } else {
            let v = value(range)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if step > 1 { hi } else { v })
        };
        if a < lo || b > hi || a > b {
            return Err(format!("`{part}` is outside {lo}-{hi}"));
        }
        let mut v = a;
        while v <= b {
            set |= 1 << v;
            v += step;
        }
    }
    Ok(set)
}

impl Cron {
    /// Parses an expression.
    ///
    /// # Errors
    /// [`CronError`] naming what is wrong.
    pub fn parse(expr: &str) -> Result<Self, CronError> {
        let err = |reason: String| CronError {
            expr: expr.to_owned(),
            reason,
        };
        let parts: Vec<&str> = expr.split_whitespace().collect();
        let (sec, rest) = match parts.len() {
            5 => ("0", &parts[..]),
            6 => (parts[0], &parts[1..]),
            n => return Err(err(format!("{n} fields; use 5 (or 6 with seconds first)"))),
        };
        let weekdays = field(rest[4], 0, 7, &WEEKDAYS, 0).map_err(&err)?;
        // 7 is Sunday too.
        let weekdays = (weekdays | (weekdays >> 7)) & 0x7f;
        Ok(Self {
            source: expr.to_owned(),
            seconds: field(sec, 0, 59, &[], 0).map_err(&err)?,
            minutes: field(rest[0], 0, 59, &[], 0).map_err(&err)?,
            hours: u32::try_from(field(rest[1], 0, 23, &[], 0).map_err(&err)?).unwrap_or(0),
            days: u32::try_from(field(rest[2], 1, 31, &[], 0).map_err(&err)?).unwrap_or(0),
            months: u16::try_from(field(rest[3], 1, 12, &MONTHS, 1).map_err(&err)?).unwrap_or(0),
            weekdays: u8::try_from(weekdays).unwrap_or(0),
            day_restricted: rest[2] != "*",
            weekday_restricted: rest[4] != "*",
        })
    }

    /// Whether the civil date matches the day fields.
    pub(crate) fn day_matches(&self, month: i8, day: i8, weekday_from_sunday: i8) -> bool {
        let bit = |set: u64, v: i8| u8::try_from(v).is_ok_and(|v| set & (1 << v) != 0);
        if !bit(u64::from(self.months), month) {
            return false;
        }
        let dom = bit(u64::from(self.days), day);
        let dow = bit(u64::from(self.weekdays), weekday_from_sunday);
        match (self.day_restricted, self.weekday_restricted) {
            (true, true) => dom || dow,
            (true, false) => dom,
            (false, true) => dow,
            (false, false) => true,
        }
    }

    /// Matching hours, ascending.
    pub(crate) fn hours(&self) -> impl Iterator<Item = i8> + '_ {
        (0..24i8).filter(|h| self.hours & (1 << h) != 0)
    }

    /// Matching minutes, ascending.
    pub(crate) fn minutes(&self) -> impl Iterator<Item = i8> + '_ {
        (0..60i8).filter(|m| self.minutes & (1 << m) != 0)
    }

    /// Matching seconds, ascending.
    pub(crate) fn seconds(&self) -> impl Iterator<Item = i8> + '_ {
        (0..60i8).filter(|s| self.seconds & (1 << s) != 0)
    }
}

impl fmt::Display for Cron {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_parse_with_ranges_steps_lists_and_names() {
        let c = Cron::parse("*/15 9-17 * JAN,jul MON-FRI").unwrap();
        assert_eq!(c.minutes().collect::<Vec<_>>(), [0, 15, 30, 45]);
        assert_eq!(c.hours().count(), 9);
        assert!(c.day_matches(1, 5, 1));
        assert!(!c.day_matches(2, 5, 1));
        assert!(!c.day_matches(7, 5, 0));
        let c = Cron::parse("30 5 * * * *").unwrap();
        assert_eq!(c.seconds().collect::<Vec<_>>(), [30]);
        assert_eq!(c.minutes().collect::<Vec<_>>(), [5]);
        // Sunday as 7.
        let c = Cron::parse("0 0 * * 7").unwrap();
        assert!(c.day_matches(3, 3, 0));
        // Both day fields: either matches.
        let c = Cron::parse("0 0 13 * FRI").unwrap();
        assert!(c.day_matches(6, 13, 2) && c.day_matches(6, 14, 5));
        assert!(!c.day_matches(6, 14, 4));
    }

    #[test]
    fn bad_expressions_say_why() {
        for bad in [
            "* * * *",
            "60 * * * *",
            "* 24 * * *",
            "*/0 * * * *",
            "* * 0 * *",
            "* * * 13 *",
            "a * * * *",
            "5-1 * * * *",
        ] {
            assert!(Cron::parse(bad).is_err(), "{bad}");
        }
    }
}
