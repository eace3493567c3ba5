//! What a sandbox's processes are denied: every capability outside a minimal set, the kernel
//! paths Docker masks or makes read-only, and — through a seccomp filter that allows by
//! default — the syscalls a root process in a container has no business making (kernel
//! modules, kexec, tracing other processes, mounting, new namespaces, clock changes, …).
//! Capabilities already stop most of those; the filter is the second wall in case a
//! capability check has a hole.

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArg, LinuxSeccompOperator,
    LinuxSyscall,
};

use super::RuntimeError;

/// Docker's default capabilities minus NET_RAW and MKNOD.
pub const CAPABILITIES: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Setfcap,
    Capability::AuditWrite,
];

pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/asound",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

pub const READONLY_PATHS: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Refused with EPERM whatever their arguments. Names unknown to the kernel/libseccomp on an
/// architecture are skipped by runc.
const DENIED: &[&str] = &[
    // kernel code and kernel state
    "kexec_load",
    "kexec_file_load",
    "init_module",
    "finit_module",
    "delete_module",
    "create_module",
    "get_kernel_syms",
    "query_module",
    "bpf",
    "perf_event_open",
    "lookup_dcookie",
    "syslog",
    "acct",
    "swapon",
    "swapoff",
    "reboot",
    "quotactl",
    "nfsservctl",
    "_sysctl",
    "sysfs",
    "uselib",
    "ustat",
    "vhangup",
    "iopl",
    "ioperm",
    "vm86",
    "vm86old",
    // keyrings are not namespaced
    "keyctl",
    "add_key",
    "request_key",
    // file handles bypass the mount namespace
    "open_by_handle_at",
    "name_to_handle_at",
    // clocks are shared with the host
    "settimeofday",
    "stime",
    "clock_settime",
    "clock_settime64",
    "clock_adjtime",
    "clock_adjtime64",
    "adjtimex",
    // mounts and namespaces (the old and the new mount API)
    "mount",
    "umount",
    "umount2",
    "pivot_root",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "move_mount",
    "open_tree",
    "mount_setattr",
    "setns",
    "unshare",
    // looking into or steering other processes and NUMA placement
    "ptrace",
    "kcmp",
    "process_vm_readv",
    "process_vm_writev",
    "userfaultfd",
    "fanotify_init",
    "move_pages",
    "mbind",
    "migrate_pages",
    "set_mempolicy",
    // a large, frequently vulnerable kernel surface
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
];

/// clone(2) flags that create namespaces; `clone` with any of them is refused.
/// (CLONE_NEWTIME is omitted: for clone(2) that bit is part of the exit-signal byte.)
const NAMESPACE_FLAGS: &[u64] = &[
    0x0002_0000, // CLONE_NEWNS
    0x0200_0000, // CLONE_NEWCGROUP
    0x0400_0000, // CLONE_NEWUTS
    0x0800_0000, // CLONE_NEWIPC
    0x1000_0000, // CLONE_NEWUSER
    0x2000_0000, // CLONE_NEWPID
    0x4000_0000, // CLONE_NEWNET
];

const EPERM: u32 = libc::EPERM as u32;
const ENOSYS: u32 = libc::ENOSYS as u32;

/// Builds the filter for the architectures of this host (native plus its compat modes, so a
/// 32-bit syscall cannot slip past a rule written for the 64-bit table).
pub fn seccomp_profile() -> Result<LinuxSeccomp, RuntimeError> {
    let build = |e: oci_spec::OciSpecError| RuntimeError::Bundle(format!("seccomp: {e}"));
    let mut syscalls = vec![deny(DENIED, EPERM, None).map_err(build)?];

    // clone3 takes its flags in a struct seccomp cannot read: answer ENOSYS so libc falls back
    // to clone(2), whose flags we can check.
    syscalls.push(deny(&["clone3"], ENOSYS, None).map_err(build)?);

    // runc turns several conditions on the same argument into one rule each, i.e. "any of".
    let namespace_conditions = NAMESPACE_FLAGS
        .iter()
        .map(|&flag| {
            oci_spec::runtime::LinuxSeccompArgBuilder::default()
                .index(0usize)
                .value(flag)
                .value_two(flag)
                .op(LinuxSeccompOperator::ScmpCmpMaskedEq)
                .build()
        })
        .collect::<Result<Vec<LinuxSeccompArg>, _>>()
        .map_err(build)?;
    syscalls.push(deny(&["clone"], EPERM, Some(namespace_conditions)).map_err(build)?);

    oci_spec::runtime::LinuxSeccompBuilder::default()
        .default_action(LinuxSeccompAction::ScmpActAllow)
        .architectures(architectures())
        .syscalls(syscalls)
        .build()
        .map_err(build)
}

fn deny(
    names: &[&str],
    errno: u32,
    args: Option<Vec<LinuxSeccompArg>>,
) -> Result<LinuxSyscall, oci_spec::OciSpecError> {
    let mut builder = oci_spec::runtime::LinuxSyscallBuilder::default()
        .names(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
        .action(LinuxSeccompAction::ScmpActErrno)
        .errno_ret(errno);
    if let Some(args) = args {
        builder = builder.args(args);
    }
    builder.build()
}

fn architectures() -> Vec<Arch> {
    if cfg!(target_arch = "x86_64") {
        vec![Arch::ScmpArchX86_64, Arch::ScmpArchX86, Arch::ScmpArchX32]
    } else if cfg!(target_arch = "aarch64") {
        vec![Arch::ScmpArchAarch64, Arch::ScmpArchArm]
    } else {
        vec![Arch::ScmpArchNative]
    }
}
