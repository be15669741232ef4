//! The helper entry point: the child side of every sandbox.
//!
//! The parent runs its own executable (or, for bwrap, a bind-mounted copy of it) as
//! `<exe> __pincer-sandbox <stage>` with the JSON spec on stdin (argv is readable by every local
//! user; stdin is not):
//! - `enter <cgroup.procs> <program> …` joins a `pids` cgroup and becomes `program` (bwrap as
//!   root; see `cgroup.rs`).
//! - `native` (native provider only) unshares the namespaces, writes the id maps and starts the
//!   `init` stage, which becomes pid 1 of the new pid namespace; it then waits and passes on the
//!   exit status.
//! - `init` builds the root (native only), applies the rlimits, drops every capability, sets
//!   `no_new_privs`, restricts itself with Landlock and seccomp, scrubs the environment, writes
//!   the ready line ([`crate::protocol`]) and `execve`s the command.
//!
//! The helper runs before any thread or async runtime exists, which is what makes `unshare` of
//! a user namespace possible.

mod confine;
mod init;
pub(crate) mod net;
mod rootfs;
mod seccomp;
mod stage1;

use std::ffi::OsString;
use std::fmt::Display;
use std::io::Write as _;

use serde::{Deserialize, Serialize};

use crate::ExecSpec;
use crate::protocol::{ERROR, Failure, SETUP_FAILED};

/// `argv[1]` that selects the helper.
pub const HELPER_ARG: &str = "__pincer-sandbox";

/// What the parent passes to the helper.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(crate) struct HelperSpec {
    /// The command and its confinement.
    pub exec: ExecSpec,
    /// True when the helper builds the mount namespace and root itself (native).
    pub own_root: bool,
    /// The parent's pid; the helper exits if it is orphaned before it starts.
    pub parent: u32,
    /// `cgroup.procs` of the `pids` cgroup to join before forking (native; see `cgroup.rs`).
    pub cgroup: Option<std::path::PathBuf>,
}

/// Runs the helper and exits if this process was started as one; returns otherwise.
///
/// Call it first thing in `main`, before any thread is started.
pub fn run_if_helper() {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.get(1).is_none_or(|a| a != HELPER_ARG) {
        return;
    }
    let code = match args.get(2).and_then(|s| s.to_str()) {
        Some("native") => report(read_spec().and_then(|json| stage1::run(&json))),
        Some("init") => report(
            read_spec()
                .and_then(|json| init::run(&json))
                .map(|never| match never {}),
        ),
        Some("enter") => report(enter(&args[3..]).map(|never| match never {})),
        _ => report(Err(StepError::new(
            "args",
            "usage: __pincer-sandbox native|init (spec on stdin) | enter <cgroup.procs> <program> …",
        ))),
    };
    std::process::exit(code)
}

/// A failed confinement step.
#[derive(Debug)]
pub(crate) struct StepError {
    step: &'static str,
    message: String,
}

impl StepError {
    pub(crate) fn new(step: &'static str, message: impl Display) -> Self {
        Self {
            step,
            message: message.to_string(),
        }
    }
}

/// `map_err` adapter naming the step.
pub(crate) fn at<E: Display>(step: &'static str) -> impl FnOnce(E) -> StepError {
    move |e| StepError::new(step, e)
}

fn report(r: Result<i32, StepError>) -> i32 {
    match r {
        Ok(code) => code,
        Err(e) => {
            let line = serde_json::to_vec(&Failure {
                step: e.step.to_owned(),
                message: e.message,
            })
            .unwrap_or_default();
            let mut err = std::io::stderr().lock();
            // Nothing else can be done if stderr is gone; the exit code still says it.
            let _ = err.write_all(ERROR);
            let _ = err.write_all(&line);
            let _ = err.write_all(b"\n");
            let _ = err.flush();
            SETUP_FAILED
        }
    }
}

/// Joins the cgroup whose `cgroup.procs` is `args[0]`, then becomes `args[1..]`.
fn enter(args: &[OsString]) -> Result<std::convert::Infallible, StepError> {
    use std::os::unix::process::CommandExt as _;
    let [procs, program, rest @ ..] = args else {
        return Err(StepError::new(
            "args",
            "usage: enter <cgroup.procs> <program> [args]",
        ));
    };
    join_cgroup(std::path::Path::new(procs))?;
    let e = std::process::Command::new(program).args(rest).exec();
    Err(StepError::new(
        "launcher",
        format!("{}: {e}", program.to_string_lossy()),
    ))
}

/// Moves this process into a cgroup.
pub(crate) fn join_cgroup(procs: &std::path::Path) -> Result<(), StepError> {
    std::fs::write(procs, "0")
        .map_err(|e| StepError::new("cgroup", format!("joining {}: {e}", procs.display())))
}

/// Most spec bytes read from stdin.
const MAX_SPEC: usize = 8 << 20;

/// Frames a spec for one helper stage: its length in decimal, a newline, the JSON. A stage reads
/// exactly its frame and nothing after it, so the rest of stdin — the next stage's frame, then
/// (with `stdin_pipe`) the command's input — stays in the pipe.
pub(crate) fn frame(json: &[u8]) -> Vec<u8> {
    let mut v = format!("{}\n", json.len()).into_bytes();
    v.extend_from_slice(json);
    v
}

/// Reads one framed spec from stdin without buffering past it.
fn read_spec() -> Result<String, StepError> {
    use std::io::Read as _;
    use std::os::fd::AsFd as _;
    let fail = at("spec");
    // An unbuffered handle on fd 0: `std::io::stdin()` would read ahead into its buffer and
    // swallow bytes that belong to the next stage or the command.
    let mut f = std::fs::File::from(
        std::io::stdin()
            .as_fd()
            .try_clone_to_owned()
            .map_err(at("spec"))?,
    );
    let mut len = 0usize;
    let mut digits = 0;
    loop {
        let mut b = [0u8; 1];
        f.read_exact(&mut b).map_err(at("spec"))?;
        match b[0] {
            b'\n' if digits > 0 => break,
            d @ b'0'..=b'9' if digits < 8 => {
                len = len * 10 + usize::from(d - b'0');
                digits += 1;
            }
            _ => return Err(StepError::new("spec", "malformed spec frame")),
        }
    }
    if len > MAX_SPEC {
        return Err(StepError::new("spec", "spec too large"));
    }
    let mut buf = vec![0u8; len];
    f.read_exact(&mut buf).map_err(fail)?;
    String::from_utf8(buf).map_err(at("spec"))
}

pub(crate) fn parse_spec(json: &str) -> Result<HelperSpec, StepError> {
    serde_json::from_str(json).map_err(at("spec"))
}
