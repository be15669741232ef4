//! The store's error type.

/// A persistence failure.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(#[from] rusqlite::Error),
    /// The database file could not be prepared.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: std::path::PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// Stored data could not be decoded.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The database was written by a newer Pincer.
    #[error("database schema version {found} is newer than this Pincer understands ({known})")]
    TooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this build knows.
        known: i64,
    },
    /// A blocking task failed.
    #[error("store task failed: {0}")]
    Task(String),
    /// A database server (Postgres) failed or could not be reached; the message never holds a
    /// password.
    #[error("database server: {0}")]
    Server(String),
    /// A uniqueness constraint refused a write (another writer got there first); names the
    /// constraint.
    #[error("constraint {0} refused the write")]
    Conflict(String),
    /// The stored state cannot be used as asked (the message says why and what to do).
    #[error("{0}")]
    Refused(String),
}
