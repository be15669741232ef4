//! What the CLI reads from its process environment, read once in one place.

use std::ffi::OsString;
use std::io::IsTerminal;

/// The process environment as the commands see it.
#[derive(Debug, Clone)]
pub struct Env {
    /// `PINCER_HOME`.
    pub pincer_home: Option<OsString>,
    /// `HOME`.
    pub home: Option<OsString>,
    /// Whether stdin is a terminal.
    pub stdin_tty: bool,
    /// Whether stdout is a terminal.
    pub stdout_tty: bool,
}

impl Env {
    /// Reads the real process environment.
    pub fn from_process() -> Self {
        Self {
            pincer_home: std::env::var_os("PINCER_HOME"),
            home: std::env::var_os("HOME"),
            stdin_tty: std::io::stdin().is_terminal(),
            stdout_tty: std::io::stdout().is_terminal(),
        }
    }

    /// An environment variable's value (used for API keys, read only when needed).
    pub fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}
