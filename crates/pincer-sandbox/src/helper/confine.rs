//! Confinement applied by the helper to itself right before `execve`: rlimits, no capabilities,
//! `no_new_privs`, Landlock, seccomp. Every step must succeed or the command does not run.

use std::path::{Path, PathBuf};

use landlock::{
    ABI, Access, AccessFs, AccessNet, CompatLevel, Compatible, LandlockStatus, NetPort, Ruleset,
    RulesetAttr, RulesetCreatedAttr, RulesetStatus, Scope, path_beneath_rules,
};
use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
use rustix::thread::CapabilitySet;

use super::{StepError, at, seccomp};
use crate::protocol::Ready;
use crate::{ExecSpec, Limits, NetworkAccess, PROXY_PORT, SYSTEM_PATHS};

/// The Landlock ABI the sandbox cannot do without: filesystem rules (V1), rename/link across
/// directories (V2, `REFER`) and truncation (V3). Anything older and exec is refused.
pub(crate) const REQUIRED_ABI: ABI = ABI::V3;
/// Newer features used when the kernel has them: device ioctls (V5), TCP (V4), and scoping of
/// abstract unix sockets and signals to the sandbox (V6).
const WANTED_ABI: ABI = ABI::V6;

pub(super) fn apply(spec: &ExecSpec, own_root: bool) -> Result<Ready, StepError> {
    rlimits(&spec.limits)?;
    drop_capabilities()?;
    rustix::thread::set_no_new_privs(true).map_err(at("no_new_privs"))?;
    let landlock_abi = landlock(spec)?;
    seccomp::install(spec)?;
    Ok(Ready {
        landlock_abi,
        seccomp: true,
        own_root,
    })
}

fn rlimits(l: &Limits) -> Result<(), StepError> {
    for (resource, value) in [
        (Resource::Cpu, l.cpu_secs),
        (Resource::As, l.memory_bytes),
        (Resource::Nproc, l.processes),
        (Resource::Nofile, l.open_files),
        (Resource::Fsize, l.file_size_bytes),
        (Resource::Core, 0),
    ] {
        // Never above the current hard limit (raising it would need a capability).
        let hard = getrlimit(resource).maximum;
        let v = hard.map_or(value, |h| h.min(value));
        setrlimit(
            resource,
            Rlimit {
                current: Some(v),
                maximum: Some(v),
            },
        )
        .map_err(|e| StepError::new("rlimit", format!("{resource:?}: {e}")))?;
    }
    Ok(())
}

/// Empties the bounding set (so no later `execve`, setuid-root binaries included, can gain a
/// capability) and then the effective, permitted and inheritable sets.
fn drop_capabilities() -> Result<(), StepError> {
    for bit in 0..64u32 {
        let cap = CapabilitySet::from_bits_retain(1u64 << bit);
        match rustix::thread::capability_is_in_bounding_set(cap) {
            Ok(true) => rustix::thread::remove_capability_from_bounding_set(cap)
                .map_err(|e| StepError::new("capabilities", format!("dropping cap {bit}: {e}")))?,
            Ok(false) => {}
            // Past the last capability this kernel knows.
            Err(rustix::io::Errno::INVAL) => break,
            Err(e) => return Err(StepError::new("capabilities", e)),
        }
    }
    rustix::thread::set_capabilities(
        None,
        rustix::thread::CapabilitySets {
            effective: CapabilitySet::empty(),
            permitted: CapabilitySet::empty(),
            inheritable: CapabilitySet::empty(),
        },
    )
    .map_err(at("capabilities"))
}

fn existing<'a>(paths: impl IntoIterator<Item = &'a Path>) -> Vec<PathBuf> {
    paths
        .into_iter()
        .filter(|p| p.exists())
        .map(Path::to_path_buf)
        .collect()
}

/// Restricts the filesystem to: the system paths and `read_only` (read, execute), the workspace
/// and `writable`,
/// `/tmp` and `/dev/shm` (everything), a few device files, `/proc` (read), and listing `/`.
/// With network off, no TCP at all; through the proxy, connecting to the proxy port only (and
/// binding nothing). Returns the ABI in force.
fn landlock(spec: &ExecSpec) -> Result<u32, StepError> {
    let fail = at("landlock");
    let ro = existing(
        SYSTEM_PATHS
            .iter()
            .map(Path::new)
            .chain(spec.read_only.iter().map(PathBuf::as_path)),
    );
    let rw = existing(
        [
            spec.workspace.as_path(),
            Path::new("/tmp"),
            Path::new("/dev/shm"),
        ]
        .into_iter()
        .chain(spec.writable.iter().map(PathBuf::as_path)),
    );
    let dev_rw = existing(["/dev/null", "/dev/zero", "/dev/full"].map(Path::new));
    let dev_ro = existing(["/dev/random", "/dev/urandom"].map(Path::new));
    let proxy_port = (spec.network == NetworkAccess::Proxy)
        .then(|| NetPort::new(PROXY_PORT, AccessNet::ConnectTcp));
    let status = Ruleset::default()
        .set_compatibility(CompatLevel::HardRequirement)
        .handle_access(AccessFs::from_all(REQUIRED_ABI))
        .map_err(|e| {
            StepError::new(
                "landlock",
                format!(
                    "{e} (Landlock ABI {} or newer is required)",
                    REQUIRED_ABI as u32
                ),
            )
        })?
        .set_compatibility(CompatLevel::BestEffort)
        .handle_access(AccessFs::from_all(WANTED_ABI))
        .map_err(fail)?
        .handle_access(AccessNet::from_all(WANTED_ABI))
        .map_err(at("landlock"))?
        .scope(Scope::from_all(WANTED_ABI))
        .map_err(at("landlock"))?
        .create()
        .map_err(at("landlock"))?
        .add_rules(path_beneath_rules(&ro, AccessFs::from_read(WANTED_ABI)))
        .map_err(at("landlock"))?
        .add_rules(path_beneath_rules(&rw, AccessFs::from_all(WANTED_ABI)))
        .map_err(at("landlock"))?
        .add_rules(path_beneath_rules(
            &dev_rw,
            AccessFs::ReadFile | AccessFs::WriteFile,
        ))
        .map_err(at("landlock"))?
        .add_rules(path_beneath_rules(&dev_ro, AccessFs::ReadFile))
        .map_err(at("landlock"))?
        .add_rules(path_beneath_rules(
            ["/proc"],
            AccessFs::ReadFile | AccessFs::ReadDir,
        ))
        .map_err(at("landlock"))?
        .add_rules(path_beneath_rules(["/"], AccessFs::ReadDir))
        .map_err(at("landlock"))?
        .add_rules(proxy_port.map(Ok::<_, landlock::RulesetError>))
        .map_err(at("landlock"))?
        .restrict_self()
        .map_err(at("landlock"))?;
    if status.ruleset == RulesetStatus::NotEnforced || !status.no_new_privs {
        return Err(StepError::new(
            "landlock",
            format!(
                "the kernel did not enforce the ruleset ({:?})",
                status.ruleset
            ),
        ));
    }
    match status.landlock {
        LandlockStatus::Available { effective_abi, .. } => Ok(effective_abi as u32),
        LandlockStatus::NotEnabled | LandlockStatus::NotImplemented => Err(StepError::new(
            "landlock",
            "Landlock is not enabled in this kernel",
        )),
    }
}
