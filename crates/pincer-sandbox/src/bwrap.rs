//! The bubblewrap provider: bwrap builds the namespaces and the root; Pincer's helper, bound
//! into the sandbox read-only, then applies the same rlimits, capability drop, Landlock and
//! seccomp as the native provider before it runs the command.

use std::ffi::OsStr;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::helper::{HELPER_ARG, HelperSpec, frame};
use crate::{ExecSpec, Launcher, SYSTEM_PATHS, Sandbox, SandboxError, SandboxKind};

/// Where the helper appears inside the sandbox.
const HELPER_INSIDE: &str = "/.pincer/helper";

/// bubblewrap plus Pincer's in-sandbox confinement.
#[derive(Debug, Clone)]
pub struct Bwrap {
    bwrap: PathBuf,
    helper: PathBuf,
}

impl Bwrap {
    /// A bwrap sandbox using the `bwrap` at `bwrap` and the helper executable at `helper` (a real
    /// path, not `/proc/self/exe`: it is bound into the sandbox).
    pub fn new(bwrap: impl Into<PathBuf>, helper: impl Into<PathBuf>) -> Self {
        Self {
            bwrap: bwrap.into(),
            helper: helper.into(),
        }
    }

    /// Finds `bwrap` on `path` (a `PATH`-style list) and uses the running binary as the helper.
    ///
    /// # Errors
    /// [`SandboxError::Launch`] when `bwrap` is not installed or the binary cannot be located.
    pub fn locate(path: Option<&OsStr>) -> Result<Self, SandboxError> {
        let bwrap = find_in_path("bwrap", path).ok_or_else(|| {
            SandboxError::Launch(
                "`bwrap` is not installed (Debian/Ubuntu: `apt-get install bubblewrap`)".into(),
            )
        })?;
        let helper = std::env::current_exe()
            .map_err(|e| SandboxError::Launch(format!("locating the pincer binary: {e}")))?;
        Ok(Self::new(bwrap, helper))
    }
}

/// The first executable `name` on `path` (default `/usr/local/bin:/usr/bin:/bin`).
pub(crate) fn find_in_path(name: &str, path: Option<&OsStr>) -> Option<PathBuf> {
    let path = path.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

impl Sandbox for Bwrap {
    fn kind(&self) -> SandboxKind {
        SandboxKind::Bwrap
    }

    fn launcher(&self, spec: &ExecSpec, cgroup: Option<&Path>) -> Result<Launcher, SandboxError> {
        let stdin = frame(
            &serde_json::to_vec(&HelperSpec {
                exec: spec.clone(),
                own_root: false,
                parent: std::process::id(),
                cgroup: None,
            })
            .map_err(|e| SandboxError::InvalidSpec(e.to_string()))?,
        );
        // With a cgroup, the helper joins it first and then becomes bwrap, so nothing forks
        // outside it.
        let mut c = match cgroup {
            Some(procs) => {
                let mut c = Command::new(&self.helper);
                c.args([HELPER_ARG, "enter"]).arg(procs).arg(&self.bwrap);
                c
            }
            None => Command::new(&self.bwrap),
        };
        c.env_clear();
        c.args([
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-net",
            "--unshare-cgroup-try",
            "--die-with-parent",
            "--cap-drop",
            "ALL",
            "--hostname",
            "pincer-sandbox",
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
        ]);
        c.arg(spec.limits.tmp_bytes.to_string())
            .args(["--tmpfs", "/tmp"]);
        for p in SYSTEM_PATHS.iter().map(Path::new) {
            match std::fs::symlink_metadata(p) {
                Ok(m) if m.file_type().is_symlink() => {
                    if let Ok(target) = std::fs::read_link(p) {
                        c.arg("--symlink").arg(target).arg(p);
                    }
                }
                Ok(_) => {
                    c.arg("--ro-bind").arg(p).arg(p);
                }
                Err(_) => {}
            }
        }
        for p in &spec.read_only {
            c.arg("--ro-bind").arg(p).arg(p);
        }
        c.arg("--bind").arg(&spec.workspace).arg(&spec.workspace);
        for p in &spec.writable {
            c.arg("--bind").arg(p).arg(p);
        }
        c.arg("--ro-bind").arg(&self.helper).arg(HELPER_INSIDE);
        c.arg("--remount-ro").arg("/");
        c.arg("--chdir").arg(&spec.cwd);
        // The spec reaches the helper on stdin, which bwrap passes through.
        c.args(["--", HELPER_INSIDE, HELPER_ARG, "init"]);
        Ok(Launcher { command: c, stdin })
    }
}
