//! What the kernel can enforce, found out the only honest way: by starting a real confined
//! command (`true`) and checking the helper's handshake. Kernel facts read from `/proc` and
//! `/sys` only explain a failure and suggest the fix; they never decide that a sandbox works.

use std::path::Path;
use std::time::Duration;

use serde::Serialize;

use crate::launch::{RunLimits, Termination};
use crate::protocol::Ready;
use crate::{ExecSpec, Limits, NetworkAccess, Sandbox, SandboxError, SandboxKind};

/// Kernel settings that commonly disable sandboxes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KernelFacts {
    /// `/proc/sys/user/max_user_namespaces` (0 disables user namespaces).
    pub max_user_namespaces: Option<u64>,
    /// `/proc/sys/kernel/unprivileged_userns_clone` (Debian's switch; false disables them for
    /// unprivileged users).
    pub unprivileged_userns_clone: Option<bool>,
    /// `/proc/sys/kernel/apparmor_restrict_unprivileged_userns` (Ubuntu 24.04+).
    pub apparmor_restricts_userns: Option<bool>,
    /// Whether `landlock` is in the active LSM list (`/sys/kernel/security/lsm`).
    pub landlock_lsm: Option<bool>,
}

impl KernelFacts {
    /// Reads the facts (missing files are `None`).
    pub fn read() -> Self {
        let num = |p: &str| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|s| s.trim().parse::<u64>().ok())
        };
        Self {
            max_user_namespaces: num("/proc/sys/user/max_user_namespaces"),
            unprivileged_userns_clone: num("/proc/sys/kernel/unprivileged_userns_clone")
                .map(|v| v != 0),
            apparmor_restricts_userns: num(
                "/proc/sys/kernel/apparmor_restrict_unprivileged_userns",
            )
            .map(|v| v != 0),
            landlock_lsm: std::fs::read_to_string("/sys/kernel/security/lsm")
                .ok()
                .map(|s| s.split(',').any(|m| m.trim() == "landlock")),
        }
    }
}

/// The result of probing one provider.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Probe {
    /// The provider probed.
    #[serde(serialize_with = "kind_str")]
    pub kind: SandboxKind,
    /// What the helper enforced, when a confined `true` ran and exited 0.
    pub ready: Option<Ready>,
    /// Why not, when it did not.
    pub error: Option<String>,
    /// How to fix it.
    pub fix: Option<String>,
    /// Kernel settings, for the report.
    pub facts: KernelFacts,
}

fn kind_str<S: serde::Serializer>(k: &SandboxKind, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(k.as_str())
}

impl Probe {
    /// True when the provider fully enforced its confinement on this machine.
    pub fn is_enforced(&self) -> bool {
        self.ready.is_some() && self.error.is_none()
    }

    /// A probe that failed before anything ran (e.g. `bwrap` is not installed).
    pub fn failed(kind: SandboxKind, err: &SandboxError) -> Self {
        let facts = KernelFacts::read();
        Self {
            kind,
            ready: None,
            fix: Some(fix_for(kind, err, &facts)),
            error: Some(err.to_string()),
            facts,
        }
    }
}

/// Starts a confined `true` in `workdir` and reports what happened.
pub async fn probe(sandbox: &dyn Sandbox, workdir: &Path) -> Probe {
    let kind = sandbox.kind();
    let spec = ExecSpec {
        argv: vec!["true".into()],
        cwd: workdir.to_path_buf(),
        env: vec![("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into())],
        workspace: workdir.to_path_buf(),
        read_only: vec![],
        limits: Limits::default(),
        network: NetworkAccess::Off,
        writable: vec![],
        stdin_pipe: false,
        unix_sockets: false,
        control_pipe: false,
    };
    let limits = RunLimits {
        timeout: Some(Duration::from_secs(30)),
        output_cap: 4096,
        output_kill: 1 << 20,
    };
    let running = match crate::launch::spawn(sandbox, spec).await {
        Ok(r) => r,
        Err(e) => return Probe::failed(kind, &e),
    };
    let ready = running.ready().clone();
    let mut err_text = Vec::new();
    let finished = running
        .drive(limits, std::future::pending(), |_, b| {
            err_text.extend_from_slice(b)
        })
        .await;
    let error = match finished {
        Ok(f) if f.termination == Termination::Exited && f.exit_code == Some(0) => None,
        Ok(f) => Some(format!(
            "a confined `true` did not succeed ({:?}, exit {:?}): {}",
            f.termination,
            f.exit_code,
            String::from_utf8_lossy(&err_text).trim()
        )),
        Err(e) => Some(e.to_string()),
    };
    let facts = KernelFacts::read();
    Probe {
        kind,
        ready: error.is_none().then_some(ready),
        fix: error
            .as_ref()
            .map(|_| "run `pincer sandbox check` and see docs/SECURITY.md".to_owned()),
        error,
        facts,
    }
}

/// A concrete suggestion for a failed provider.
fn fix_for(kind: SandboxKind, err: &SandboxError, facts: &KernelFacts) -> String {
    let step = match err {
        SandboxError::Setup { step, .. } => step.as_str(),
        SandboxError::Launch(_) => "launcher",
        SandboxError::InvalidSpec(_) | SandboxError::Io(_) => "",
    };
    let userns = || {
        if facts.max_user_namespaces == Some(0) {
            "user namespaces are disabled: `sysctl -w user.max_user_namespaces=15000`".to_owned()
        } else if facts.unprivileged_userns_clone == Some(false) {
            "unprivileged user namespaces are disabled: `sysctl -w kernel.unprivileged_userns_clone=1`".to_owned()
        } else if facts.apparmor_restricts_userns == Some(true) {
            "AppArmor restricts unprivileged user namespaces: add an AppArmor profile granting `userns` to pincer (or bwrap), or `sysctl -w kernel.apparmor_restrict_unprivileged_userns=0`".to_owned()
        } else {
            "user namespaces are not permitted here (inside a container, allow them or run Pincer on the host)".to_owned()
        }
    };
    match step {
        "unshare" | "uid_map" | "gid_map" | "setgroups" => userns(),
        "landlock" => {
            if facts.landlock_lsm == Some(false) {
                "Landlock is built in but not active: add `landlock` to the `lsm=` kernel boot parameter".to_owned()
            } else {
                "Landlock ABI 3 or newer is required (Linux 6.2+ with CONFIG_SECURITY_LANDLOCK)"
                    .to_owned()
            }
        }
        "mount-proc" => {
            "mounting /proc failed: the host /proc is masked (typical inside containers); run Pincer on the host".to_owned()
        }
        "launcher" => match kind {
            SandboxKind::Bwrap => format!(
                "install bubblewrap (`apt-get install bubblewrap`) and make sure it can create user namespaces; {}",
                userns()
            ),
            SandboxKind::Native => "the pincer binary could not re-execute itself".to_owned(),
        },
        _ => "see docs/SECURITY.md (sandbox requirements)".to_owned(),
    }
}
