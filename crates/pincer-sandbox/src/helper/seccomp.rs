//! The seccomp filters: a denylist of syscalls a confined command has no business making.
//!
//! Denied with `EPERM`: debugging other processes (`ptrace`, `process_vm_*`, `pidfd_getfd`),
//! mounting and namespaces (`mount`, the new mount API, `pivot_root`, `chroot`, `unshare`,
//! `setns`, namespace flags on `clone`), kernel attack surface (`bpf`, `perf_event_open`,
//! `io_uring_*`, `userfaultfd`, `keyctl` and friends, modules, `kexec_*`), host state (`reboot`,
//! `swapon`, clocks, `acct`, `syslog`, `quotactl`), file handles (`open_by_handle_at`), terminal
//! injection (`ioctl(TIOCSTI)`, `ioctl(TIOCLINUX)`) and — with network off — `socket(2)` for
//! every family, `AF_UNIX` included: a host's Unix socket that lies in the workspace (an SSH
//! agent, a Docker or database socket) is a bind-mounted path the command could otherwise
//! `connect` to, and neither the network namespace nor Landlock governs connecting to a named
//! socket. With network through the proxy, `socket(2)` is allowed for `AF_INET` and `AF_INET6`
//! only (plus `AF_UNIX` for a spec that asks: the browser's private scratch directory holds no host
//! socket). `socketpair(2)` stays allowed (an unnamed pair reaches nothing outside). `clone3` answers `ENOSYS` (its flags live in memory a filter cannot read), so
//! the C library falls back to `clone`, whose flags are checked. On x86-64, the x32 syscall ABI
//! is refused outright so it cannot be used to dodge the list.

use std::collections::BTreeMap;

use seccompiler::{
    BpfProgram, SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter,
    SeccompRule, TargetArch, sock_filter,
};

use super::{StepError, at};
use crate::{ExecSpec, NetworkAccess};

// Syscall numbers are `c_long`, which is `i64` on every architecture seccompiler supports.
const DENIED: &[i64] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_pidfd_getfd,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_chroot,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_move_mount,
    libc::SYS_open_tree,
    libc::SYS_mount_setattr,
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_bpf,
    libc::SYS_perf_event_open,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_userfaultfd,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    libc::SYS_acct,
    libc::SYS_syslog,
    libc::SYS_quotactl,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_vhangup,
];

/// `CLONE_NEW*` flags refused on `clone`.
const NAMESPACE_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

pub(super) fn install(spec: &ExecSpec) -> Result<(), StepError> {
    let arch = TargetArch::try_from(std::env::consts::ARCH).map_err(|_| {
        StepError::new(
            "seccomp",
            format!("no seccomp filter for {}", std::env::consts::ARCH),
        )
    })?;
    let main = denylist(spec, arch)?;
    let clone3 = SeccompFilter::new(
        BTreeMap::from([(libc::SYS_clone3, vec![])]),
        SeccompAction::Allow,
        SeccompAction::Errno(libc::ENOSYS as u32),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(at("seccomp"))?;
    seccompiler::apply_filter(&main).map_err(at("seccomp"))?;
    seccompiler::apply_filter(&clone3).map_err(at("seccomp"))?;
    if cfg!(target_arch = "x86_64") {
        seccompiler::apply_filter(&x32_guard()).map_err(at("seccomp"))?;
    }
    Ok(())
}

fn cond(arg: u8, op: SeccompCmpOp, value: u64) -> Result<SeccompCondition, StepError> {
    SeccompCondition::new(arg, SeccompCmpArgLen::Dword, op, value).map_err(at("seccomp"))
}

fn denylist(spec: &ExecSpec, arch: TargetArch) -> Result<BpfProgram, StepError> {
    let mut rules: BTreeMap<i64, Vec<SeccompRule>> =
        DENIED.iter().map(|&nr| (nr, vec![])).collect();
    let clone_rules = NAMESPACE_FLAGS
        .iter()
        .map(|&f| {
            let f = u64::from(f.unsigned_abs());
            SeccompRule::new(vec![cond(0, SeccompCmpOp::MaskedEq(f), f)?]).map_err(at("seccomp"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_clone, clone_rules);
    let ioctl_rules = [libc::TIOCSTI, libc::TIOCLINUX]
        .iter()
        .map(|&req| {
            // The request type is `c_ulong` on glibc and `c_int` on musl.
            #[allow(clippy::unnecessary_cast)]
            SeccompRule::new(vec![cond(1, SeccompCmpOp::Eq, req as u64)?]).map_err(at("seccomp"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    rules.insert(libc::SYS_ioctl, ioctl_rules);
    // `socket(2)` is refused unless its family is allowed (see the module docs): none with
    // network off; IPv4/IPv6 through the proxy (the namespace holds nothing but the proxy
    // port); `AF_UNIX` only for specs that ask (the browser's private scratch directory).
    let mut families = Vec::new();
    if spec.network == NetworkAccess::Proxy {
        families.extend([libc::AF_INET, libc::AF_INET6]);
    }
    if spec.unix_sockets {
        families.push(libc::AF_UNIX);
    }
    let socket_rule = if families.is_empty() {
        vec![]
    } else {
        let ne = families
            .iter()
            .map(|f| cond(0, SeccompCmpOp::Ne, u64::from(f.unsigned_abs())))
            .collect::<Result<Vec<_>, _>>()?;
        vec![SeccompRule::new(ne).map_err(at("seccomp"))?]
    };
    rules.insert(libc::SYS_socket, socket_rule);
    SeccompFilter::new(
        rules,
        SeccompAction::Allow,
        SeccompAction::Errno(libc::EPERM as u32),
        arch,
    )
    .and_then(BpfProgram::try_from)
    .map_err(at("seccomp"))
}

/// `nr >= __X32_SYSCALL_BIT` → `ENOSYS`, else allow. Hand-written because the filter compiler
/// matches syscall numbers exactly.
fn x32_guard() -> BpfProgram {
    const LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
    const JGE_K: u16 = 0x35; // BPF_JMP | BPF_JGE | BPF_K
    const RET_K: u16 = 0x06; // BPF_RET | BPF_K
    const RET_ERRNO: u32 = 0x0005_0000;
    const RET_ALLOW: u32 = 0x7fff_0000;
    const X32_BIT: u32 = 0x4000_0000;
    let i = |code, jt, jf, k| sock_filter { code, jt, jf, k };
    vec![
        i(LD_W_ABS, 0, 0, 0), // seccomp_data.nr
        i(JGE_K, 0, 1, X32_BIT),
        i(RET_K, 0, 0, RET_ERRNO | libc::ENOSYS as u32),
        i(RET_K, 0, 0, RET_ALLOW),
    ]
}
