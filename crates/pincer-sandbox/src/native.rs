//! The native provider: Pincer's own namespaces, root, Landlock and seccomp.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helper::{HELPER_ARG, HelperSpec, frame};
use crate::{ExecSpec, Launcher, Sandbox, SandboxError, SandboxKind};

/// Runs the helper (this binary) in two stages: `native` unshares the namespaces, `init` builds
/// the root and confines itself (see the crate docs).
#[derive(Debug, Clone)]
pub struct Native {
    helper: PathBuf,
}

impl Native {
    /// A native sandbox whose helper is `helper`: an executable that calls
    /// [`crate::run_if_helper`] first thing (normally this binary, `/proc/self/exe`).
    pub fn new(helper: impl Into<PathBuf>) -> Self {
        Self {
            helper: helper.into(),
        }
    }

    /// A native sandbox that re-executes the running binary.
    pub fn this_binary() -> Self {
        Self::new("/proc/self/exe")
    }
}

impl Sandbox for Native {
    fn kind(&self) -> SandboxKind {
        SandboxKind::Native
    }

    fn launcher(&self, spec: &ExecSpec, cgroup: Option<&Path>) -> Result<Launcher, SandboxError> {
        let json = serde_json::to_vec(&HelperSpec {
            exec: spec.clone(),
            own_root: true,
            parent: std::process::id(),
            cgroup: cgroup.map(Path::to_path_buf),
        })
        .map_err(|e| SandboxError::InvalidSpec(e.to_string()))?;
        // One frame for each stage: `native` reads the first, `init` (which inherits stdin)
        // the second.
        let mut stdin = frame(&json);
        stdin.extend_from_slice(&frame(&json));
        let mut command = Command::new(&self.helper);
        command.arg(HELPER_ARG).arg("native").env_clear();
        Ok(Launcher { command, stdin })
    }
}
