//! Exit codes and [`Failure`], an error that carries the exit code the `pincer` process ends
//! with (the server runtime uses it for configuration problems, exit 2).

/// Exit code: a run or check failed.
pub const FAILED: u8 = 1;
/// Exit code: bad usage or configuration.
pub const USAGE: u8 = 2;
/// Exit code: denied by policy.
pub const DENIED: u8 = 3;
/// Exit code: needed approval and none was given.
pub const NOT_APPROVED: u8 = 4;
/// Exit code: canceled by the user (128 + SIGINT).
pub const CANCELED: u8 = 130;

/// An error with a chosen exit code.
#[derive(Debug)]
pub struct Failure {
    /// Exit code.
    pub code: u8,
    /// Message.
    pub message: String,
}

impl Failure {
    /// A usage/configuration failure (exit 2).
    pub fn usage(message: impl Into<String>) -> Self {
        Self {
            code: USAGE,
            message: message.into(),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Failure {}
