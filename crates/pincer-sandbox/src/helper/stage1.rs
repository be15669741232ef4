//! The native provider's first stage: new namespaces, id maps, then the `init` stage as pid 1.

use std::os::unix::process::ExitStatusExt as _;
use std::process::{Command, Stdio};

use rustix::process::{Signal, getgid, getppid, getuid, set_parent_process_death_signal};
use rustix::thread::UnshareFlags;

use super::{HELPER_ARG, StepError, at, parse_spec};

pub(super) fn run(json: &str) -> Result<i32, StepError> {
    let spec = parse_spec(json)?;
    set_parent_process_death_signal(Some(Signal::KILL)).map_err(at("pdeathsig"))?;
    // The parent may have died before the line above; then nobody would reap us.
    if getppid().map(|p| p.as_raw_nonzero().get()) != i32::try_from(spec.parent).ok() {
        return Err(StepError::new("pdeathsig", "the parent exited"));
    }
    if let Some(procs) = &spec.cgroup {
        super::join_cgroup(procs)?;
    }
    let (uid, gid) = (getuid().as_raw(), getgid().as_raw());
    unshare_all()?;
    std::fs::write("/proc/self/setgroups", "deny").map_err(at("setgroups"))?;
    std::fs::write("/proc/self/uid_map", format!("{uid} {uid} 1\n")).map_err(at("uid_map"))?;
    std::fs::write("/proc/self/gid_map", format!("{gid} {gid} 1\n")).map_err(at("gid_map"))?;
    // The first child of this process is pid 1 of the new pid namespace; when it exits the
    // kernel kills everything left in the namespace.
    // `init` inherits stdin and reads the second frame the parent wrote there (and, with
    // `stdin_pipe`, hands the rest of the pipe to the command).
    let mut child = Command::new("/proc/self/exe")
        .arg(HELPER_ARG)
        .arg("init")
        .env_clear()
        .stdin(Stdio::inherit())
        .spawn()
        .map_err(at("spawn"))?;
    let status = child.wait().map_err(at("spawn"))?;
    Ok(status
        .code()
        .unwrap_or_else(|| 128 + status.signal().unwrap_or(0)))
}

#[allow(unsafe_code)]
fn unshare_all() -> Result<(), StepError> {
    let flags = UnshareFlags::NEWUSER
        | UnshareFlags::NEWNS
        | UnshareFlags::NEWPID
        | UnshareFlags::NEWIPC
        | UnshareFlags::NEWUTS
        | UnshareFlags::NEWNET
        | UnshareFlags::NEWCGROUP;
    // SAFETY: `unshare_unsafe` is unsafe only because `CLONE_FILES` can make file descriptors
    // differ between threads. The flags above do not include `FILES`, and the helper is
    // single-threaded (it runs before any thread is started, see `run_if_helper`).
    unsafe { rustix::thread::unshare_unsafe(flags) }.map_err(|e| {
        StepError::new(
            "unshare",
            format!(
                "{e} (unprivileged user namespaces are unavailable; see `pincer sandbox check`)"
            ),
        )
    })
}
