//! The `Clock` seam: everything that reads time (runs, leases, schedules, rate limits) reads it
//! through this trait, so tests can control it.

use chrono::{DateTime, Utc};

/// A source of the current time. Implementors must be monotone enough for timestamps in logs.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current UTC time.
    fn now(&self) -> DateTime<Utc>;
}

/// The real wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}
