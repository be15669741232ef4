//! Built-in tools.

mod time_now;

pub use time_now::TimeNow;
