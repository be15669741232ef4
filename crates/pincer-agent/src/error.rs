//! The agent crate's error type: failures that stop a run before its bundle exists, or that
//! concern agent files.

use std::path::PathBuf;

/// An agent-level failure.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// A file or directory operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The session store failed.
    #[error(transparent)]
    Store(#[from] pincer_store::StoreError),
    /// The agent directory is missing.
    #[error("agent directory {0} does not exist (run `pincer init`)")]
    MissingAgent(PathBuf),
}

impl AgentError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
