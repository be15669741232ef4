//! File tools and the confinement they all go through ([`FsScope`]).

mod edit;
mod guard;
mod list;
pub mod path;
mod read;
mod scope;
mod write;

pub use edit::FsEdit;
pub use guard::{Covers, ProtectedPath, Protection};
pub use list::FsList;
pub use read::FsRead;
pub use scope::{Entry, FileData, FsScope, Listing, Reader, WORKSPACE, WriteMode, sha256_hex};
pub use write::FsWrite;

use crate::ToolError;

/// Why a filesystem operation was refused or failed. The message is shown to the model.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FsError {
    /// The path contains a NUL byte.
    #[error("path contains a NUL byte")]
    Nul,
    /// The path or a component is too long.
    #[error("{0}")]
    TooLong(String),
    /// The path is absolute.
    #[error("absolute paths are not allowed (`{0}`); use a path relative to the root")]
    Absolute(String),
    /// The path uses `..`.
    #[error("`..` is not allowed (`{0}`); use a path relative to the root")]
    DotDot(String),
    /// A component is a symlink.
    #[error("`{0}` is a symbolic link; file tools never follow links")]
    Symlink(String),
    /// The target is a FIFO, socket or device.
    #[error("`{0}` is not a regular file (FIFO, socket or device); refused")]
    NotRegular(String),
    /// The target has several hard links.
    #[error(
        "`{0}` has more than one hard link; refused because a link can point outside the workspace"
    )]
    Hardlinked(String),
    /// The path is protected.
    #[error("protected: {0}")]
    Protected(String),
    /// The root is read-only.
    #[error("root `{0}` is read-only; only the workspace is writable")]
    ReadOnly(String),
    /// No such root.
    #[error("{0}")]
    UnknownRoot(String),
    /// The file changed between inspection and use.
    #[error("`{0}` changed while it was being opened; refused")]
    Raced(String),
    /// No such file or directory.
    #[error("`{0}` does not exist")]
    NotFound(String),
    /// A component is not a directory.
    #[error("`{0}` is not a directory")]
    NotADirectory(String),
    /// The target is a directory.
    #[error("`{0}` is a directory")]
    IsADirectory(String),
    /// The file already exists.
    #[error("`{0}` already exists (it was created after the action was approved)")]
    Exists(String),
    /// The file is not what the approver saw.
    #[error("`{0}` changed since the action was approved; nothing was written")]
    Changed(String),
    /// The file is too large.
    #[error("{0}")]
    TooLarge(String),
    /// An I/O error.
    #[error("I/O error: {0}")]
    Io(String),
}

impl FsError {
    /// Whether this is a confinement refusal (an escape attempt) rather than an ordinary failure.
    pub fn is_forbidden(&self) -> bool {
        matches!(
            self,
            Self::Nul
                | Self::TooLong(_)
                | Self::Absolute(_)
                | Self::DotDot(_)
                | Self::Symlink(_)
                | Self::NotRegular(_)
                | Self::Hardlinked(_)
                | Self::Protected(_)
                | Self::ReadOnly(_)
                | Self::UnknownRoot(_)
                | Self::Raced(_)
        )
    }
}

impl From<FsError> for ToolError {
    fn from(e: FsError) -> Self {
        if e.is_forbidden() {
            ToolError::Forbidden(e.to_string())
        } else {
            ToolError::Failed(e.to_string())
        }
    }
}

/// Runs blocking filesystem work off the async executor.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, ToolError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, ToolError> + Send + 'static,
{
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ToolError::Internal(format!("file task failed: {e}")))?
}
