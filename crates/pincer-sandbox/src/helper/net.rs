//! The proxy port of a [`crate::NetworkAccess::Proxy`] sandbox, helper side.
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
use std::os::fd::AsFd as _;

use rustix::net::{SendAncillaryBuffer, SendAncillaryMessage, SendFlags};

use super::{StepError, at};
use crate::PROXY_ADDR;

/// The one byte sent along with the descriptor.
pub(crate) const TAG: u8 = b'P';

pub(super) fn open_proxy_port(bring_up_loopback: bool) -> Result<(), StepError> {
    if bring_up_loopback {
        loopback_up()?;
    }
    let listener = std::net::TcpListener::bind(PROXY_ADDR)
        .map_err(|e| StepError::new("proxy", format!("binding {PROXY_ADDR}: {e}")))?;
    let mut space = [MaybeUninit::<u8>::uninit(); rustix::cmsg_space!(ScmRights(1))];
    let mut control = SendAncillaryBuffer::new(&mut space);
    let fds = [listener.as_fd()];
    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
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
            format!("handing the proxy port to Pincer over stdin: {e}"),
        )
    })?;
    // Dropped here: the command never holds the listener.
    Ok(())
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
