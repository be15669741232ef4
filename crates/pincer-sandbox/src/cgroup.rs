//! A `pids` cgroup per sandbox, for when `RLIMIT_NPROC` cannot hold.
//!
//! The kernel exempts host root from `RLIMIT_NPROC` (even inside a user namespace), so when
//! Pincer runs as root the process limit comes from a `pids` cgroup instead: cgroup v1's `pids`
//! hierarchy or, on a pure cgroup v2 host, a child of Pincer's own cgroup with `pids` enabled.
//! The helper moves itself into the cgroup before it forks anything. When no such cgroup can be
//! made, root cannot get a process limit and exec is refused.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::SandboxError;

static NEXT: AtomicU64 = AtomicU64::new(0);

/// Name prefix of Pincer's sandbox cgroups.
const PREFIX: &str = "pincer-sandbox-";
/// A sandbox cgroup older than this with no process left is removed by the next `create`
/// (a sandbox's cgroup can outlive its `Drop` by the moments its last processes take to exit).
const STALE: std::time::Duration = std::time::Duration::from_secs(60);

/// A cgroup removed (best effort: it must be empty) when dropped.
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Whether this process needs one: only root is exempt from `RLIMIT_NPROC`.
    pub(crate) fn needed() -> bool {
        rustix::process::getuid().is_root()
    }

    /// Creates a cgroup limited to `max` processes.
    pub(crate) fn create(max: u64) -> Result<Self, SandboxError> {
        let base = pids_base().ok_or_else(|| SandboxError::Setup {
            step: "cgroup".into(),
            message: "running as root, the process limit needs a `pids` cgroup and none is \
                      writable (mount the pids controller, or run Pincer as a normal user)"
                .into(),
        })?;
        sweep(&base);
        let fail = |what: &str, dir: &Path, e: std::io::Error| SandboxError::Setup {
            step: "cgroup".into(),
            message: format!("{what} {}: {e}", dir.display()),
        };
        // Names are unique per process and call; a leftover from an earlier process that had
        // the same pid is skipped, never joined.
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let mut attempt = 0;
        let dir = loop {
            let dir = base.join(format!(
                "{PREFIX}{}-{}-{nanos}",
                std::process::id(),
                NEXT.fetch_add(1, Ordering::Relaxed)
            ));
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && attempt < 8 => {
                    attempt += 1;
                }
                Err(e) => return Err(fail("creating", &dir, e)),
            }
        };
        let cg = Self { dir };
        std::fs::write(cg.dir.join("pids.max"), max.to_string())
            .map_err(|e| fail("limiting", &cg.dir, e))?;
        Ok(cg)
    }

    /// The file a process writes `0` to in order to join.
    pub(crate) fn procs(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }
}

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        // Fails while a process is still inside; an empty leftover cgroup is harmless.
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// Removes leftover sandbox cgroups: empty (rmdir refuses otherwise) and older than [`STALE`],
/// so one being set up by another process right now is never touched.
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok())
            .is_some_and(|age| age > STALE);
        if old && e.file_name().to_string_lossy().starts_with(PREFIX) {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// The directory under which this process may create a `pids` cgroup.
fn pids_base() -> Option<PathBuf> {
    let own = std::fs::read_to_string("/proc/self/cgroup").ok()?;
    // cgroup v1: `N:pids:/path`.
    for line in own.lines() {
        let mut parts = line.splitn(3, ':');
        let (_, controllers, path) = (parts.next()?, parts.next()?, parts.next()?);
        if controllers.split(',').any(|c| c == "pids") {
            let base = Path::new("/sys/fs/cgroup/pids").join(path.trim_start_matches('/'));
            return writable(&base).then_some(base);
        }
    }
    // cgroup v2: `0::/path`, with `pids` enabled for children of our cgroup.
    let path = own.lines().find_map(|l| l.strip_prefix("0::"))?;
    let base = Path::new("/sys/fs/cgroup").join(path.trim_start_matches('/'));
    let enabled = |b: &Path| {
        std::fs::read_to_string(b.join("cgroup.subtree_control"))
            .is_ok_and(|s| s.split_whitespace().any(|c| c == "pids"))
    };
    if !enabled(&base) {
        // Only possible when our cgroup holds no processes (or is the root); harmless to try.
        let _ = std::fs::write(base.join("cgroup.subtree_control"), "+pids");
    }
    (enabled(&base) && writable(&base)).then_some(base)
}

fn writable(dir: &Path) -> bool {
    rustix::fs::access(dir, rustix::fs::Access::WRITE_OK).is_ok()
}
