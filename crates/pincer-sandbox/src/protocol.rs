//! The helper's handshake on stderr.
//!
//! Before `execve` the helper writes exactly one line to stderr: [`READY`] followed by a JSON
//! [`Ready`] report, or [`ERROR`] followed by a JSON [`Failure`]. Both start with a NUL byte, which
//! no launcher (bwrap included) prints on its own. Everything after the ready line is the
//! command's own stderr. Anything else first means the launcher failed before the helper ran
//! (bwrap's own error messages arrive this way).

use serde::{Deserialize, Serialize};

/// Prefix of the ready line.
pub const READY: &[u8] = b"\0pincer-sandbox:ready ";
/// Prefix of the failure line.
pub const ERROR: &[u8] = b"\0pincer-sandbox:error ";
/// Exit code of a helper that failed before running the command.
pub const SETUP_FAILED: i32 = 125;
/// Longest handshake line the parent reads.
pub const MAX_LINE: usize = 16 * 1024;

/// What the helper enforced, sent just before `execve`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ready {
    /// The Landlock ABI version in force.
    pub landlock_abi: u32,
    /// Whether seccomp filters were installed.
    pub seccomp: bool,
    /// Whether Pincer built the mount namespace itself (native) or the launcher did (bwrap).
    pub own_root: bool,
}

/// A failed confinement step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The step (`unshare`, `uid_map`, `mount`, `landlock`, `seccomp`, `exec`, …).
    pub step: String,
    /// The error.
    pub message: String,
}

/// What the first stderr line of a launcher said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Handshake {
    /// Confinement is in force; the command is starting.
    Ready(Ready),
    /// The helper failed a step.
    Failed(Failure),
    /// Something other than the helper spoke first (launcher error text).
    Foreign(String),
}

/// Parses the first line (without its newline).
pub fn parse(line: &[u8]) -> Handshake {
    if let Some(rest) = line.strip_prefix(READY) {
        return match serde_json::from_slice::<Ready>(rest) {
            Ok(r) => Handshake::Ready(r),
            Err(e) => Handshake::Failed(Failure {
                step: "handshake".into(),
                message: format!("unreadable ready report: {e}"),
            }),
        };
    }
    if let Some(rest) = line.strip_prefix(ERROR) {
        return Handshake::Failed(serde_json::from_slice::<Failure>(rest).unwrap_or_else(|e| {
            Failure {
                step: "handshake".into(),
                message: format!("unreadable failure report: {e}"),
            }
        }));
    }
    Handshake::Foreign(String::from_utf8_lossy(line).trim().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_parse() {
        let mut l = READY.to_vec();
        l.extend_from_slice(br#"{"landlock_abi":6,"seccomp":true,"own_root":true}"#);
        assert!(matches!(parse(&l), Handshake::Ready(r) if r.landlock_abi == 6));
        let mut l = ERROR.to_vec();
        l.extend_from_slice(br#"{"step":"unshare","message":"EPERM"}"#);
        assert!(matches!(parse(&l), Handshake::Failed(f) if f.step == "unshare"));
        assert!(
            matches!(parse(b"bwrap: No permissions"), Handshake::Foreign(t) if t.starts_with("bwrap"))
        );
        let mut l = READY.to_vec();
        l.extend_from_slice(b"{broken");
        assert!(matches!(parse(&l), Handshake::Failed(_)));
    }
}
