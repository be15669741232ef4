//! Typed sandbox errors.

/// Why a confined command could not be started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SandboxError {
    /// The spec is wrong (empty argv, cwd outside the workspace, …).
    #[error("invalid command: {0}")]
    InvalidSpec(String),
    /// The launcher could not be started (missing `bwrap`, no helper binary, …).
    #[error("sandbox launcher could not start: {0}")]
    Launch(String),
    /// A confinement step failed in the child; the command did not run.
    #[error("sandbox setup failed at `{step}`: {message}")]
    Setup {
        /// The step that failed (`unshare`, `landlock`, `seccomp`, `exec`, …).
        step: String,
        /// What the kernel or the launcher said.
        message: String,
    },
    /// Reading from or waiting on the child failed.
    #[error("sandbox I/O: {0}")]
    Io(String),
}

impl SandboxError {
    /// True when the command itself could not be found or executed (it is the model's mistake,
    /// not the sandbox's).
    pub fn is_command_not_found(&self) -> bool {
        matches!(self, Self::Setup { step, .. } if step == "exec")
    }
}
