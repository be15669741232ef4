//! Confined process execution (D3): commands run only inside a sandbox the kernel enforces.
//!
//! Two providers implement [`Sandbox`]:
//! - [`Native`]: Pincer builds the sandbox itself — new user, mount, pid, ipc, uts, cgroup and
//!   net namespaces; a fresh root holding only system directories (read-only), the workspace
//!   (read-write) and a private `/tmp`; Landlock; a seccomp filter; `no_new_privs`; no
//!   capabilities; rlimits; a new session; a scrubbed environment.
//! - [`Bwrap`]: bubblewrap builds the namespaces and the root; the same confinement as the native
//!   provider is then applied inside by Pincer's helper.
//!
//! In both, the last steps before `execve` run in the child, in a helper entry point of the same
//! binary ([`run_if_helper`]); the helper reports over stderr whether every step succeeded
//! before the command starts ([`protocol`]). When anything fails the command never runs and the
//! caller gets [`SandboxError::Setup`]. Nothing here ever runs a command unconfined.
//!
//! The parent side is [`launch`]: spawn with a handshake, drain output into bounded buffers,
//! enforce a wall-clock timeout, kill the whole process tree.

mod bwrap;
mod capture;
mod cgroup;
mod error;
pub mod fds;
mod helper;
pub mod launch;
mod native;
mod probe;
pub mod protocol;
mod spec;

pub use bwrap::Bwrap;
pub use capture::{Captured, HeadTail};
pub use error::SandboxError;
pub use helper::{HELPER_ARG, run_if_helper};
pub use launch::{
    CommandStdin, ExecOutcome, Finished, NetworkProxy, RunLimits, Running, Stream, Termination,
};
pub use native::Native;
pub use probe::{KernelFacts, Probe, probe};
pub use spec::{ExecSpec, Limits, NetworkAccess, PROXY_ADDR, PROXY_ENV, PROXY_PORT, SYSTEM_PATHS};

/// Which sandbox implementation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SandboxKind {
    /// Pincer's own namespaces + Landlock + seccomp.
    Native,
    /// bubblewrap, plus Pincer's Landlock + seccomp inside.
    Bwrap,
}

impl SandboxKind {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Native => "native",
            Self::Bwrap => "bwrap",
        }
    }
}

/// A launcher command and the bytes to write to its stdin (the helper's spec — on stdin rather
/// than in argv, because every local user can read a process's argv but not its stdin).
#[derive(Debug)]
pub struct Launcher {
    /// The command to spawn.
    pub command: std::process::Command,
    /// Written to its stdin, which is then closed.
    pub stdin: Vec<u8>,
}

/// A way to start a confined command.
///
/// Implementors build a *launcher*: a command that, once spawned by [`launch::spawn`], confines
/// itself and then runs `spec.argv`. The launcher must either reach the helper's ready marker
/// with every confinement step applied, or fail without running the command.
pub trait Sandbox: Send + Sync + std::fmt::Debug {
    /// Which provider this is.
    fn kind(&self) -> SandboxKind;
    /// The launcher for `spec` (already validated by the caller). When `cgroup` is given (the
    /// `cgroup.procs` file of a `pids` cgroup), the launcher must join it before it forks.
    ///
    /// # Errors
    /// [`SandboxError`] when the launcher cannot be built (e.g. the spec cannot be encoded).
    fn launcher(
        &self,
        spec: &ExecSpec,
        cgroup: Option<&std::path::Path>,
    ) -> Result<Launcher, SandboxError>;
}
