//! Typed errors of the secret store. None of them ever contains a secret or a key.

use std::path::PathBuf;

/// What went wrong with the secret store.
#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    /// A file could not be read or written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
    /// The store is sealed with a different key than the one in use.
    #[error(
        "{}: sealed with key {sealed}, but the key in use is {in_use} (wrong PINCER_SECRETS_KEY or secrets.key?)",
        path.display()
    )]
    WrongKey {
        /// The store.
        path: PathBuf,
        /// The id of the key it was sealed with.
        sealed: String,
        /// The id of the key in use.
        in_use: String,
    },
    /// The store does not decrypt or parse: it was changed or damaged.
    #[error("{}: {reason}", path.display())]
    Corrupt {
        /// The store.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A store exists but its key does not.
    #[error(
        "{}: the key is missing while secrets.enc exists (set PINCER_SECRETS_KEY or restore the key file)",
        path.display()
    )]
    NoKey {
        /// Where the key was looked for.
        path: PathBuf,
    },
    /// A key in the environment is malformed.
    #[error("{var} {reason}")]
    BadKey {
        /// The variable.
        var: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// A name that cannot name a secret.
    #[error(
        "`{0}` is not a secret name: 1-64 of A-Z a-z 0-9 _ . -, starting with a letter or digit"
    )]
    BadName(String),
    /// An empty value.
    #[error("the value for `{0}` is empty")]
    Empty(String),
    /// A value over the size limit.
    #[error("the value for `{name}` is larger than {limit} bytes")]
    TooLarge {
        /// The name.
        name: String,
        /// The limit.
        limit: usize,
    },
    /// Rotation of a key kept in the environment needs the new key.
    #[error(
        "the key is in PINCER_SECRETS_KEY: set PINCER_SECRETS_NEW_KEY to a new key (64 hex digits, e.g. `head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \\n'`), rotate, then put it in PINCER_SECRETS_KEY"
    )]
    NewKeyNeeded,
    /// The system's random source failed.
    #[error("no randomness: {0}")]
    Random(String),
}

impl SecretsError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_owned(),
            source,
        }
    }
}
