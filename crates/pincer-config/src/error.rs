//! The config crate's error type. Every variant that concerns file content names the file, and
//! where it can, the line and the key.

use std::path::PathBuf;

/// What went wrong reading, validating or writing configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// There is no config file yet.
    #[error("{path}: no config file (run `pincer init` first)")]
    NotFound {
        /// The missing file.
        path: PathBuf,
    },
    /// A filesystem operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML, or does not match the schema.
    #[error("{}:{line}:{column}: {}{message}", path.display(), key.as_deref().map(|k| format!("key `{k}`: ")).unwrap_or_default())]
    Invalid {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// Dotted key path, when known.
        key: Option<String>,
        /// What is wrong and, where possible, what is expected.
        message: String,
    },
    /// `config get`/`set` named a key the schema does not have.
    #[error("unknown config key `{key}`")]
    UnknownKey {
        /// The dotted key.
        key: String,
    },
    /// The home directory could not be determined.
    #[error("cannot find a home directory: set PINCER_HOME or HOME")]
    NoHome,
}

impl ConfigError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }
}
