//! The native provider's root: a fresh tmpfs holding only what the spec allows, then
//! `pivot_root` into it so the rest of the host is not even addressable.
//!
//! Layout: [`SYSTEM_PATHS`] and `read_only` bound read-only, the workspace bound read-write at
//! its own path, a private tmpfs `/tmp`, a minimal `/dev`, a `/proc` of the new pid namespace.
//! Every bind is `nosuid,nodev`. The root tmpfs itself ends read-only.

use std::os::fd::{AsRawFd as _, OwnedFd};
use std::os::unix::fs::DirBuilderExt as _;
use std::path::{Path, PathBuf};

use rustix::fs::{Mode, OFlags, StatVfsMountFlags};
use rustix::mount::{MountFlags, MountPropagationFlags, UnmountFlags};

use super::{StepError, at};
use crate::{ExecSpec, SYSTEM_PATHS};

/// Where the new root is assembled; a tmpfs is mounted over it, so nothing of the host's
/// `/tmp` is visible inside.
const BASE: &str = "/tmp";

/// Device nodes bound from the host.
const DEVICES: &[&str] = &["null", "zero", "full", "random", "urandom"];

enum Entry {
    Symlink {
        path: PathBuf,
        target: PathBuf,
    },
    Bind {
        path: PathBuf,
        src: OwnedFd,
        dir: bool,
        writable: bool,
    },
}

impl Entry {
    fn path(&self) -> &Path {
        match self {
            Entry::Symlink { path, .. } | Entry::Bind { path, .. } => path,
        }
    }
}

pub(super) fn build(spec: &ExecSpec) -> Result<(), StepError> {
    rustix::mount::mount_change(
        "/",
        MountPropagationFlags::PRIVATE | MountPropagationFlags::REC,
    )
    .map_err(at("mount-private"))?;
    // Open every source before the new root hides anything.
    let mut entries = Vec::new();
    for p in SYSTEM_PATHS {
        entries.extend(entry(Path::new(p), false)?);
    }
    for p in &spec.read_only {
        entries.extend(entry(p, false)?);
    }
    entries.extend(entry(&spec.workspace, true)?);
    for p in &spec.writable {
        entries.extend(entry(p, true)?);
    }
    let devices = DEVICES
        .iter()
        .map(|d| {
            let p = Path::new("/dev").join(d);
            open_path(&p).map(|fd| (p, fd))
        })
        .collect::<Result<Vec<_>, _>>()?;
    // Parents before children.
    entries.sort_by_key(|e| e.path().components().count());

    let root = Path::new(BASE);
    mount_tmpfs(root, "mode=0755,size=16m")?;
    let tmp = root.join("tmp");
    mkdir(&tmp, 0o1777)?;
    mount_tmpfs(&tmp, &format!("mode=1777,size={}", spec.limits.tmp_bytes))?;
    for e in &entries {
        let target = inside(root, e.path());
        if let Some(parent) = target.parent() {
            mkdir_all(parent)?;
        }
        match e {
            Entry::Symlink { target: to, .. } => {
                std::os::unix::fs::symlink(to, &target).map_err(at("symlink"))?;
            }
            Entry::Bind {
                src, dir, writable, ..
            } => bind(
                src,
                &target,
                *dir,
                if *writable {
                    Bind::ReadWrite
                } else {
                    Bind::ReadOnly
                },
            )?,
        }
    }
    build_dev(root, &devices)?;
    let proc = root.join("proc");
    mkdir(&proc, 0o555)?;
    rustix::mount::mount(
        "proc",
        &proc,
        "proc",
        MountFlags::NOSUID | MountFlags::NODEV | MountFlags::NOEXEC,
        None,
    )
    .map_err(at("mount-proc"))?;
    rustix::mount::mount_remount(
        root,
        MountFlags::RDONLY | MountFlags::NOSUID | MountFlags::NODEV,
        "",
    )
    .map_err(at("mount-root-ro"))?;
    rustix::process::chdir(root).map_err(at("pivot_root"))?;
    rustix::process::pivot_root(".", ".").map_err(at("pivot_root"))?;
    rustix::mount::unmount(".", UnmountFlags::DETACH).map_err(at("pivot_root"))?;
    rustix::process::chdir("/").map_err(at("pivot_root"))?;
    Ok(())
}

/// The entry for a host path; `None` when it does not exist.
fn entry(p: &Path, writable: bool) -> Result<Option<Entry>, StepError> {
    let meta = match std::fs::symlink_metadata(p) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(StepError::new(
                "mount-plan",
                format!("{}: {e}", p.display()),
            ));
        }
    };
    if meta.file_type().is_symlink() {
        let target = std::fs::read_link(p).map_err(at("mount-plan"))?;
        return Ok(Some(Entry::Symlink {
            path: p.to_path_buf(),
            target,
        }));
    }
    Ok(Some(Entry::Bind {
        path: p.to_path_buf(),
        src: open_path(p)?,
        dir: meta.is_dir(),
        writable,
    }))
}

fn open_path(p: &Path) -> Result<OwnedFd, StepError> {
    rustix::fs::open(p, OFlags::PATH | OFlags::CLOEXEC, Mode::empty())
        .map_err(|e| StepError::new("mount-plan", format!("{}: {e}", p.display())))
}

fn inside(root: &Path, p: &Path) -> PathBuf {
    root.join(p.strip_prefix("/").unwrap_or(p))
}

fn mkdir(p: &Path, mode: u32) -> Result<(), StepError> {
    std::fs::DirBuilder::new()
        .mode(mode)
        .create(p)
        .map_err(|e| StepError::new("mount-mkdir", format!("{}: {e}", p.display())))
}

fn mkdir_all(p: &Path) -> Result<(), StepError> {
    std::fs::DirBuilder::new()
        .mode(0o755)
        .recursive(true)
        .create(p)
        .map_err(|e| StepError::new("mount-mkdir", format!("{}: {e}", p.display())))
}

fn mount_tmpfs(p: &Path, data: &str) -> Result<(), StepError> {
    let data = std::ffi::CString::new(data).map_err(at("mount-tmpfs"))?;
    rustix::mount::mount(
        "tmpfs",
        p,
        "tmpfs",
        MountFlags::NOSUID | MountFlags::NODEV,
        data.as_c_str(),
    )
    .map_err(|e| StepError::new("mount-tmpfs", format!("{}: {e}", p.display())))
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Bind {
    ReadOnly,
    ReadWrite,
    /// A device node: read-write, and without `nodev` (which would make it unopenable).
    Device,
}

/// Binds `src` (an `O_PATH` descriptor) at `target`, then remounts it `nosuid`, `nodev` unless
/// it is a device, and read-only unless writable — keeping the flags the kernel locks in a user
/// namespace.
fn bind(src: &OwnedFd, target: &Path, dir: bool, how: Bind) -> Result<(), StepError> {
    let fail =
        |e: rustix::io::Errno| StepError::new("mount-bind", format!("{}: {e}", target.display()));
    if dir {
        if !target.is_dir() {
            mkdir(target, 0o755)?;
        }
    } else if !target.exists() {
        std::fs::File::create(target).map_err(at("mount-bind"))?;
    }
    let source = format!("/proc/self/fd/{}", src.as_raw_fd());
    rustix::mount::mount_bind(source.as_str(), target).map_err(fail)?;
    let have = rustix::fs::statvfs(target).map_err(fail)?.f_flag;
    let mut flags = MountFlags::BIND | MountFlags::NOSUID;
    if how != Bind::Device || have.contains(StatVfsMountFlags::NODEV) {
        flags |= MountFlags::NODEV;
    }
    if how == Bind::ReadOnly || have.contains(StatVfsMountFlags::RDONLY) {
        flags |= MountFlags::RDONLY;
    }
    if have.contains(StatVfsMountFlags::NOEXEC) {
        flags |= MountFlags::NOEXEC;
    }
    if have.contains(StatVfsMountFlags::NODIRATIME) {
        flags |= MountFlags::NODIRATIME;
    }
    flags |= if have.contains(StatVfsMountFlags::NOATIME) {
        MountFlags::NOATIME
    } else if have.contains(StatVfsMountFlags::RELATIME) {
        MountFlags::RELATIME
    } else {
        MountFlags::STRICTATIME
    };
    rustix::mount::mount_remount(target, flags, "").map_err(fail)
}

fn build_dev(root: &Path, devices: &[(PathBuf, OwnedFd)]) -> Result<(), StepError> {
    let dev = root.join("dev");
    mkdir(&dev, 0o755)?;
    mount_tmpfs(&dev, "mode=0755,size=64k")?;
    for (p, fd) in devices {
        bind(fd, &inside(root, p), false, Bind::Device)?;
    }
    for (name, to) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
    ] {
        std::os::unix::fs::symlink(to, dev.join(name)).map_err(at("mount-dev"))?;
    }
    let shm = dev.join("shm");
    mkdir(&shm, 0o1777)?;
    mount_tmpfs(&shm, "mode=1777,size=64m")
}
