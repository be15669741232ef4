//! Descriptors the helper hands to the parent, helper side: the proxy port of a
//! [`crate::NetworkAccess::Proxy`] sandbox and the parent's ends of a control pipe
//! ([`crate::ExecSpec::control_pipe`]).
//!
//! Inside the sandbox's empty network namespace (before any confinement step) the helper brings
//! the loopback interface up (native: a fresh namespace has it down; bubblewrap already did),
//! binds [`PROXY_ADDR`] and sends the listening socket to the parent over stdin — which in proxy
//! mode is a Unix socket pair, not a pipe — with `SCM_RIGHTS`. Its own copy is closed before the
//! command starts: only Pincer accepts on that socket, so every connection the command makes to
//! the proxy port is handled by Pincer's egress policy outside the sandbox, and nothing else in
//! the namespace leads anywhere.

use std::io::IoSlice;
use std::mem::MaybeUninit;
use std::os::fd::{AsFd as _, AsRawFd as _, BorrowedFd, OwnedFd};

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use super::{StepError, at};
use crate::{ExecSpec, NetworkAccess, PROXY_ADDR};

/// The one byte sent along with the descriptors.
pub(crate) const TAG: u8 = b'P';
/// Most descriptors handed over at once (proxy port, two pipe ends).
pub(crate) const MAX_FDS: usize = 3;

/// The command's ends of the control pipe, kept until just before `execve`.
pub(super) struct Channel {
    read: OwnedFd,
    write: OwnedFd,
}

/// Opens what `spec` asks for and sends the parent its descriptors, in order: the proxy
/// listener (proxy mode), then the control pipe's write end (parent → command) and read end
/// (command → parent). Returns the command's ends of the control pipe.
pub(super) fn hand_over(spec: &ExecSpec, own_root: bool) -> Result<Option<Channel>, StepError> {
    if !spec.hands_over() {
        return Ok(None);
    }
    let mut fds: Vec<OwnedFd> = Vec::with_capacity(MAX_FDS);
    if spec.network == NetworkAccess::Proxy {
        if own_root {
            loopback_up()?;
        }
        let listener = std::net::TcpListener::bind(PROXY_ADDR)
            .map_err(|e| StepError::new("proxy", format!("binding {PROXY_ADDR}: {e}")))?;
        fds.push(listener.into());
    }
    let mut channel = None;
    if spec.control_pipe {
        use rustix::pipe::{PipeFlags, pipe_with};
        let (cmd_r, cmd_w) = pipe_with(PipeFlags::CLOEXEC).map_err(at("control pipe"))?;
        let (resp_r, resp_w) = pipe_with(PipeFlags::CLOEXEC).map_err(at("control pipe"))?;
        fds.push(cmd_w);
        fds.push(resp_r);
        channel = Some(Channel {
            read: cmd_r,
            write: resp_w,
        });
    }
    send(&fds)?;
    // Dropped here: the command never holds the listener or the parent's pipe ends.
    Ok(channel)
}

fn send(fds: &[OwnedFd]) -> Result<(), StepError> {
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(MAX_FDS))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let borrowed: Vec<BorrowedFd<'_>> = fds.iter().map(|f| f.as_fd()).collect();
    if !control.push(SendAncillaryMessage::ScmRights(&borrowed)) {
        return Err(StepError::new("proxy", "control buffer too small"));
    }
    let stdin = std::io::stdin();
    rustix::net::sendmsg(
        stdin.as_fd(),
        &[IoSlice::new(&[TAG])],
        &mut control,
        SendFlags::NOSIGNAL,
    )
    .map_err(|e| {
        StepError::new(
            "proxy",
            format!("handing descriptors to Pincer over stdin: {e}"),
        )
    })?;
    Ok(())
}

impl Channel {
    /// Puts the command's ends on descriptors 3 (read) and 4 (write), inheritable — the last
    /// step before `execve`, after every other descriptor was made close-on-exec.
    #[allow(unsafe_code)]
    pub(super) fn install(self) -> Result<(), StepError> {
        // Copies above 4 first, so neither `dup2` below can clobber the other's source.
        let r = rustix::io::fcntl_dupfd_cloexec(&self.read, 10).map_err(at("control pipe"))?;
        let w = rustix::io::fcntl_dupfd_cloexec(&self.write, 10).map_err(at("control pipe"))?;
        drop(self);
        for (src, dst) in [(&r, 3), (&w, 4)] {
            // SAFETY: `dup2` takes two descriptor numbers and touches no memory. Whatever was
            // open at 3 or 4 is replaced; nothing of this process uses a descriptor after this
            // step (`execve` follows), and `r`/`w` are above 9 so they are not among them.
            if unsafe { libc::dup2(src.as_raw_fd(), dst) } < 0 {
                return Err(StepError::new(
                    "control pipe",
                    std::io::Error::last_os_error(),
                ));
            }
        }
        Ok(())
    }
}

/// `ip link set lo up`, by `SIOCSIFFLAGS` (needs `CAP_NET_ADMIN` in the namespace's owner,
/// which the native helper has before it drops its capabilities).
#[allow(unsafe_code)]
fn loopback_up() -> Result<(), StepError> {
    use std::os::fd::AsRawFd as _;
    let sock = rustix::net::socket(
        rustix::net::AddressFamily::INET,
        rustix::net::SocketType::DGRAM,
        None,
    )
    .map_err(at("loopback"))?;
    // SAFETY: `ifreq` is a plain C struct (a name array and a union of integers and addresses);
    // all-zero bytes are a valid value of it.
    let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
    for (d, s) in req.ifr_name.iter_mut().zip(b"lo") {
        *d = *s as libc::c_char;
    }
    // SAFETY: `SIOCGIFFLAGS` reads the NUL-terminated name from `req` and writes the flags into
    // its union; `req` is a valid, exclusively borrowed `ifreq` for the duration of the call.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCGIFFLAGS as _, &mut req) } < 0 {
        return Err(StepError::new("loopback", std::io::Error::last_os_error()));
    }
    // SAFETY: the kernel filled `ifru_flags` above; reading and updating a `c_short` member of
    // the union is sound whatever was stored.
    unsafe {
        req.ifr_ifru.ifru_flags |= (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    }
    // SAFETY: as above; `SIOCSIFFLAGS` only reads `req`.
    if unsafe { libc::ioctl(sock.as_raw_fd(), libc::SIOCSIFFLAGS as _, &req) } < 0 {
        return Err(StepError::new("loopback", std::io::Error::last_os_error()));
    }
    Ok(())
}
