//! Inherited file descriptors: none may reach a confined command (D3).
//!
//! A process started from a shell can inherit descriptors without `FD_CLOEXEC`
//! (`exec 7<secret` in the shell that runs `pincer serve`). Rust opens its own descriptors with
//! `FD_CLOEXEC`, but inherited ones would pass through every `exec` — into the sandbox helper,
//! bubblewrap, and the command itself, where they are a way around the mount namespace and
//! Landlock (an open descriptor is not re-checked). [`seal_inherited`] marks every descriptor
//! above stderr close-on-exec; Pincer calls it first thing in `main` and again in the helper just
//! before it executes the command.

use std::io;

/// Marks every file descriptor above 2 close-on-exec.
///
/// Uses `close_range(3, ~0, CLOSE_RANGE_CLOEXEC)` (Linux 5.11+), falling back to `fcntl` on each
/// descriptor listed in `/proc/self/fd`.
///
/// # Errors
/// When neither way works (no `close_range` and no `/proc`).
pub fn seal_inherited() -> io::Result<()> {
    if close_range_cloexec().is_ok() {
        return Ok(());
    }
    let mut fds = Vec::new();
    for entry in std::fs::read_dir("/proc/self/fd")? {
        if let Some(fd) = entry?
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<i32>().ok())
            && fd > 2
        {
            fds.push(fd);
        }
    }
    for fd in fds {
        set_cloexec(fd);
    }
    Ok(())
}

#[allow(unsafe_code)]
fn close_range_cloexec() -> io::Result<()> {
    // SAFETY: with `CLOSE_RANGE_CLOEXEC` the kernel only sets the close-on-exec flag; no
    // descriptor is closed, so no owned handle in this process is invalidated. The call takes
    // plain integers and touches no memory of ours.
    let r = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            3_u32,
            u32::MAX,
            libc::CLOSE_RANGE_CLOEXEC,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[allow(unsafe_code)]
fn set_cloexec(fd: i32) {
    // SAFETY: `F_SETFD` with `FD_CLOEXEC` changes one flag of the descriptor (the only
    // descriptor flag there is); an fd that was closed meanwhile gives EBADF, which is fine.
    // No memory is passed.
    let _ = unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
}

#[cfg(test)]
mod tests {
    use std::os::fd::AsRawFd as _;

    #[test]
    fn an_inheritable_descriptor_becomes_close_on_exec() {
        let f = std::fs::File::open("/proc/self/status").unwrap();
        let fd = rustix::io::fcntl_getfd(&f).unwrap();
        assert!(fd.contains(rustix::io::FdFlags::CLOEXEC));
        rustix::io::fcntl_setfd(&f, rustix::io::FdFlags::empty()).unwrap();
        assert!(rustix::io::fcntl_getfd(&f).unwrap().is_empty());
        super::seal_inherited().unwrap();
        assert!(
            rustix::io::fcntl_getfd(&f)
                .unwrap()
                .contains(rustix::io::FdFlags::CLOEXEC),
            "fd {} still inheritable",
            f.as_raw_fd()
        );
    }
}
