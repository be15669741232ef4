//! The audit crate's error type.

use std::path::PathBuf;

/// An audit log failure.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The chain is broken at `line` of `path`.
    #[error("{}:{line}: {reason}", path.display())]
    Tampered {
        /// The file.
        path: PathBuf,
        /// 1-based line number (0 for the HEAD file).
        line: usize,
        /// What is wrong.
        reason: String,
    },
    /// A database chain ([`crate::ChainStore`]) could not be read or written.
    #[error("audit chain at {location}: {message}")]
    Chain {
        /// Where (a URL without its password, and the table).
        location: String,
        /// What went wrong.
        message: String,
    },
    /// A configured redaction pattern is not a valid regex.
    #[error("invalid redaction pattern `{pattern}`: {message}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why.
        message: String,
    },
}

impl AuditError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
