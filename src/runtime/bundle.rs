//! The OCI runtime config (`bundle/config.json`) of a sandbox, generated with `oci-spec`:
//! its own namespaces (a user namespace among them, mapping its ids onto its host range), a
//! reduced capability set, `no_new_privileges`, seccomp, masked kernel paths, cgroup limits,
//! and the agent as the container process. Every path runc is given is in the sandbox's
//! [`RuncView`].

use std::path::PathBuf;

use oci_spec::runtime::{
    Capabilities, Linux, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxCpuBuilder,
    LinuxDeviceCgroupBuilder, LinuxIdMappingBuilder, LinuxMemoryBuilder, LinuxNamespaceBuilder,
    LinuxNamespaceType, LinuxPidsBuilder, LinuxResources, LinuxResourcesBuilder, Mount,
    MountBuilder, PosixRlimitBuilder, PosixRlimitType, Process, ProcessBuilder, RootBuilder, Spec,
    SpecBuilder, UserBuilder,
};

use super::agent_files::AGENT_MOUNT;
use super::id_range::{IdRange, RANGE_SIZE};
use super::runc_view::RuncView;
use super::{RuntimeError, SandboxSpec, hardening, layout::SandboxLayout};

const DEFAULT_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// The cgroup CPU period; the quota is `cpu_millicores * 100` µs of it.
pub const CPU_PERIOD_US: u64 = 100_000;

/// Pseudo-terminals one sandbox may have open at once (its `/dev/pts` instance's `max`).
/// Every sandbox draws from one pool on the host: `kernel.pty.max` (4096 by default) less
/// the `kernel.pty.reserve` (1024) kept for the host's own `/dev/pts`. Without a cap a
/// single sandbox opening `/dev/ptmx` in a loop takes the whole pool, and no other
/// sandbox can open a console. 128 leaves room for many consoles and terminal panes.
pub const PTYS_PER_SANDBOX: u32 = 128;

/// Everything `config` needs besides the sandbox spec.
pub struct BundleInputs<'a> {
    pub spec: &'a SandboxSpec,
    pub layout: &'a SandboxLayout,
    pub view: &'a RuncView,
    pub range: IdRange,
    pub agent_args: &'a [String],
}

/// Builds the OCI config of one sandbox.
pub fn config(inputs: &BundleInputs<'_>) -> Result<Spec, RuntimeError> {
    SpecBuilder::default()
        .version("1.0.2")
        .root(
            RootBuilder::default()
                .path(inputs.view.rootfs.clone())
                .readonly(false)
                .build()
                .map_err(invalid)?,
        )
        .hostname(inputs.spec.hostname.clone())
        .mounts(mounts(inputs).map_err(invalid)?)
        .process(process(inputs)?)
        .linux(linux(inputs.spec, inputs.range)?)
        .build()
        .map_err(invalid)
}

fn invalid(e: oci_spec::OciSpecError) -> RuntimeError {
    RuntimeError::Bundle(e.to_string())
}

/// The agent as root, with the reduced capability set and no way to gain privileges.
fn process(inputs: &BundleInputs<'_>) -> Result<Process, RuntimeError> {
    let spec = inputs.spec;
    let capabilities = hardening::CAPABILITIES
        .iter()
        .copied()
        .collect::<Capabilities>();
    ProcessBuilder::default()
        .terminal(false)
        .user(
            UserBuilder::default()
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(invalid)?,
        )
        .args(inputs.agent_args.to_vec())
        .env(environment(spec))
        .cwd(spec.cwd.clone().unwrap_or_else(|| "/".to_string()))
        .capabilities(
            LinuxCapabilitiesBuilder::default()
                .bounding(capabilities.clone())
                .effective(capabilities.clone())
                .permitted(capabilities)
                .inheritable(Capabilities::new())
                .ambient(Capabilities::new())
                .build()
                .map_err(invalid)?,
        )
        .no_new_privileges(true)
        .rlimits(vec![nofile_limit().map_err(invalid)?])
        .build()
        .map_err(invalid)
}

/// Namespaces, cgroup and its limits, seccomp and the kernel paths hidden or read-only.
fn linux(spec: &SandboxSpec, range: IdRange) -> Result<Linux, RuntimeError> {
    let namespaces = [
        LinuxNamespaceType::User,
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Mount,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Network,
        LinuxNamespaceType::Cgroup,
    ]
    .into_iter()
    .map(|typ| LinuxNamespaceBuilder::default().typ(typ).build())
    .collect::<Result<Vec<_>, _>>()
    .map_err(invalid)?;
    let mapping = LinuxIdMappingBuilder::default()
        .container_id(0u32)
        .host_id(range.first)
        .size(RANGE_SIZE)
        .build()
        .map_err(invalid)?;
    LinuxBuilder::default()
        .namespaces(namespaces)
        .uid_mappings(vec![mapping])
        .gid_mappings(vec![mapping])
        .cgroups_path(PathBuf::from(cgroup_path(&super::layout::container_id(
            &spec.id,
        ))))
        .resources(resources(spec).map_err(invalid)?)
        .seccomp(hardening::seccomp_profile()?)
        .masked_paths(
            hardening::MASKED_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
        .readonly_paths(
            hardening::READONLY_PATHS
                .iter()
                .map(|p| p.to_string())
                .collect::<Vec<_>>(),
        )
        .build()
        .map_err(invalid)
}

/// Cgroup limits: no devices beyond runc's standard set, the CPU quota, memory and pids.
fn resources(spec: &SandboxSpec) -> Result<LinuxResources, oci_spec::OciSpecError> {
    LinuxResourcesBuilder::default()
        // Deny every device; runc then allows its standard set (null, zero, tty, random, …).
        .devices(vec![
            LinuxDeviceCgroupBuilder::default()
                .allow(false)
                .access("rwm")
                .build()?,
        ])
        .cpu(
            LinuxCpuBuilder::default()
                .quota(spec.cpu_millicores * 100)
                .period(CPU_PERIOD_US)
                .build()?,
        )
        // No swap limit: memsw accounting is often disabled and runc fails if it is.
        .memory(
            LinuxMemoryBuilder::default()
                .limit(spec.mem_bytes)
                .build()?,
        )
        .pids(LinuxPidsBuilder::default().limit(spec.pids_limit).build()?)
        .build()
}

/// The container's cgroup, relative to each controller's root (`/langsmith/ls-<id>`).
pub fn cgroup_path(container: &str) -> String {
    format!("/langsmith/{container}")
}

/// Writes the config to `bundle/config.json`.
pub fn write(inputs: &BundleInputs<'_>) -> Result<(), RuntimeError> {
    let path = inputs.layout.bundle.join("config.json");
    config(inputs)?
        .save(&path)
        .map_err(|e| RuntimeError::Bundle(format!("write {}: {e}", path.display())))
}

/// The image environment plus the variables every process expects.
fn environment(spec: &SandboxSpec) -> Vec<String> {
    let mut env: Vec<String> = spec
        .env
        .iter()
        .filter(|entry| !entry.starts_with("HOSTNAME="))
        .cloned()
        .collect();
    let has = |env: &[String], key: &str| env.iter().any(|e| e.starts_with(&format!("{key}=")));
    if !has(&env, "PATH") {
        env.push(DEFAULT_PATH.to_string());
    }
    if !has(&env, "HOME") {
        env.push("HOME=/root".to_string());
    }
    env.push(format!("HOSTNAME={}", spec.hostname));
    env
}

/// NOFILE at the current hard limit: raising it further needs CAP_SYS_RESOURCE, which the
/// server may not have, and runc would fail the start.
fn nofile_limit() -> Result<oci_spec::runtime::PosixRlimit, oci_spec::OciSpecError> {
    let mut limit = libc::rlimit {
        rlim_cur: 1024,
        rlim_max: 1024,
    };
    // SAFETY: getrlimit only writes the struct we pass; on failure it stays at 1024.
    unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    let hard = limit.rlim_max;
    PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .soft(hard)
        .hard(hard)
        .build()
}

fn mounts(inputs: &BundleInputs<'_>) -> Result<Vec<Mount>, oci_spec::OciSpecError> {
    let mount = |destination: &str, typ: &str, source: &str, options: &[&str]| {
        MountBuilder::default()
            .destination(destination)
            .typ(typ)
            .source(source)
            .options(options.iter().map(|o| o.to_string()).collect::<Vec<_>>())
            .build()
    };
    let agent_dir = inputs.view.agent.to_string_lossy();
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
                &format!("max={PTYS_PER_SANDBOX}"),
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", "ro"],
        )?,
        mount(
            "/sys/fs/cgroup",
            "cgroup",
            "cgroup",
            &["nosuid", "noexec", "nodev", "relatime", "ro"],
        )?,
        mount(
            AGENT_MOUNT,
            "bind",
            &agent_dir,
            &["rbind", "ro", "nosuid", "nodev"],
        )?,
        // The DNS stub is the only resolver a sandbox can reach; read-only, so a mistake
        // inside cannot lose it (pointing elsewhere would only reach nothing).
        mount(
            "/etc/resolv.conf",
            "bind",
            &inputs.view.resolv_conf.to_string_lossy(),
            &["bind", "ro", "nosuid", "nodev", "noexec"],
        )?,
    ];
    // The egress CA, for the agent to add to the trust store (its key stays on the host).
    if inputs.spec.egress_ca_pem.is_some() {
        mounts.push(mount(
            crate::api::trust::EGRESS_CA,
            "bind",
            &inputs.view.egress_ca.to_string_lossy(),
            &["bind", "ro", "nosuid", "nodev", "noexec"],
        )?);
    }
    Ok(mounts)
}
