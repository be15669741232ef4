//! The `init` stage: build the root (native), confine, hand over to the command.

use std::convert::Infallible;
use std::io::Write as _;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rustix::process::{Signal, set_parent_process_death_signal, setsid};

use super::{StepError, at, confine, parse_spec, rootfs};
use crate::protocol::READY;

pub(super) fn run(json: &str) -> Result<Infallible, StepError> {
    let spec = parse_spec(json)?;
    set_parent_process_death_signal(Some(Signal::KILL)).map_err(at("pdeathsig"))?;
    // A new session: no controlling terminal to inject keystrokes into.
    setsid().map_err(at("setsid"))?;
    if spec.own_root {
        rootfs::build(&spec.exec)?;
        rustix::system::sethostname(b"pincer-sandbox").map_err(at("hostname"))?;
    }
    let exec = &spec.exec;
    let channel = super::net::hand_over(exec, spec.own_root)?;
    std::env::set_current_dir(&exec.cwd).map_err(at("chdir"))?;
    let ready = confine::apply(exec, spec.own_root)?;
    // Resolved after confinement, so only what the sandbox can see is found.
    let program = resolve(&exec.argv[0], &exec.env)?;
    let line = serde_json::to_vec(&ready).map_err(at("handshake"))?;
    {
        let mut err = std::io::stderr().lock();
        err.write_all(READY)
            .and_then(|()| err.write_all(&line))
            .and_then(|()| err.write_all(b"\n"))
            .and_then(|()| err.flush())
            .map_err(at("handshake"))?;
    }
    // Last step before the command: no descriptor the parent inherited may pass into it.
    crate::fds::seal_inherited().map_err(at("close inherited descriptors"))?;
    if let Some(c) = channel {
        c.install()?;
    }
    let stdin = if exec.stdin_pipe {
        Stdio::inherit()
    } else {
        Stdio::null()
    };
    let e = Command::new(&program)
        .arg0(&exec.argv[0])
        .args(&exec.argv[1..])
        .env_clear()
        .envs(exec.env.iter().map(|(k, v)| (k, v)))
        .stdin(stdin)
        .exec();
    // The ready line is out, so this goes to the command's stderr like a shell's would.
    eprintln!("pincer-sandbox: cannot execute {}: {e}", exec.argv[0]);
    std::process::exit(if e.kind() == std::io::ErrorKind::NotFound {
        127
    } else {
        126
    })
}

/// `argv[0]` as a path: as given when it has a `/`, else the first executable match in `PATH`.
fn resolve(argv0: &str, env: &[(String, String)]) -> Result<PathBuf, StepError> {
    let executable =
        |p: &Path| p.is_file() && rustix::fs::access(p, rustix::fs::Access::EXEC_OK).is_ok();
    if argv0.contains('/') {
        let p = PathBuf::from(argv0);
        return if executable(&p) {
            Ok(p)
        } else if p.exists() {
            Err(StepError::new(
                "exec",
                format!("{argv0}: not an executable file"),
            ))
        } else {
            Err(StepError::new("exec", format!("{argv0}: no such file")))
        };
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map_or("/usr/local/bin:/usr/bin:/bin", |(_, v)| v.as_str());
    path.split(':')
        .filter(|d| !d.is_empty())
        .map(|d| Path::new(d).join(argv0))
        .find(|p| executable(p))
        .ok_or_else(|| StepError::new("exec", format!("{argv0}: command not found")))
}
