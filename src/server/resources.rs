//! Resource requests (CPU, memory, rootfs capacity): defaults and validation.
//!
//! The cloud ties memory to CPU (4 GiB per vCPU, ±50 %). The local backend instead checks
//! requests against what this machine can give, so the user document's own examples
//! (`--vcpus 2 --memory 1gb`, `--vcpus 4 --memory 1gb`) work.

use super::error::ApiError;
use super::state::AppState;
use super::validate;
use crate::api::{CreateSandboxRequest, Sandbox, Snapshot, UpdateSandboxRequest};

/// CPU when the request names none: one vCPU.
const DEFAULT_MILLICORES: i64 = 1000;
/// Memory when the request names none (capped at the host's memory).
const DEFAULT_MEM_BYTES: i64 = 1 << 30;
/// Below this the agent and a shell cannot run reliably.
const MIN_MEM_BYTES: i64 = 64 << 20;
/// A CPU quota above the host's CPU count is allowed (it means "all of them", and keeps the
/// documented `--vcpus 4` working on a small machine) but not absurd values.
const MAX_VCPUS: i64 = 256;

#[derive(Debug, Clone, Copy)]
pub struct Resources {
    pub cpu_millicores: i64,
    pub mem_bytes: i64,
    pub fs_capacity_bytes: i64,
}

impl Resources {
    /// Whole vCPUs reported back (`cpu_millicores` rounded up).
    pub fn vcpus(&self) -> i64 {
        (self.cpu_millicores + 999) / 1000
    }
}

pub fn for_create(
    state: &AppState,
    req: &CreateSandboxRequest,
    snapshot: &Snapshot,
) -> Result<Resources, ApiError> {
    let cpu = cpu_request(req.cpu_millicores, req.vcpus)?.unwrap_or(DEFAULT_MILLICORES);
    let mem = req
        .mem_bytes
        .unwrap_or(DEFAULT_MEM_BYTES.min(state.host.mem_bytes / 2));
    check_memory(state, mem)?;
    let fs = req.fs_capacity_bytes.unwrap_or(snapshot.fs_capacity_bytes);
    check_rootfs(fs, snapshot.fs_capacity_bytes, "the snapshot's capacity")?;
    Ok(Resources {
        cpu_millicores: cpu,
        mem_bytes: mem,
        fs_capacity_bytes: fs,
    })
}

/// Apply the resource fields of a PATCH; they take effect at the sandbox's next start.
pub fn apply_update(
    state: &AppState,
    req: &UpdateSandboxRequest,
    sb: &mut Sandbox,
) -> Result<(), ApiError> {
    if let Some(cpu) = cpu_request(req.cpu_millicores, req.vcpus)? {
        sb.cpu_millicores = Some(cpu);
        sb.vcpus = Some((cpu + 999) / 1000);
    }
    if let Some(mem) = req.mem_bytes {
        check_memory(state, mem)?;
        sb.mem_bytes = Some(mem);
    }
    if let Some(fs) = req.fs_capacity_bytes {
        // The writable layer can grow but never shrink under files already written.
        check_rootfs(
            fs,
            sb.fs_capacity_bytes.unwrap_or(0),
            "the sandbox's current capacity",
        )?;
        sb.fs_capacity_bytes = Some(fs);
    }
    Ok(())
}

/// `cpu_millicores` takes precedence over `vcpus`.
fn cpu_request(millicores: Option<i64>, vcpus: Option<i64>) -> Result<Option<i64>, ApiError> {
    if let Some(m) = millicores {
        if !(100..=MAX_VCPUS * 1000).contains(&m) {
            return Err(ApiError::validation(
                "cpu_millicores",
                format!(
                    "cpu_millicores must be between 100 and {}, got {m}",
                    MAX_VCPUS * 1000
                ),
            ));
        }
        return Ok(Some(m));
    }
    match vcpus {
        Some(v) if !(1..=MAX_VCPUS).contains(&v) => Err(ApiError::validation(
            "vcpus",
            format!("vcpus must be between 1 and {MAX_VCPUS}, got {v}"),
        )),
        Some(v) => Ok(Some(v * 1000)),
        None => Ok(None),
    }
}

fn check_memory(state: &AppState, mem: i64) -> Result<(), ApiError> {
    if mem < MIN_MEM_BYTES {
        return Err(ApiError::validation(
            "mem_bytes",
            format!("mem_bytes must be at least 64 MiB ({MIN_MEM_BYTES} bytes), got {mem}"),
        ));
    }
    if mem > state.host.mem_bytes {
        return Err(ApiError::validation(
            "mem_bytes",
            format!(
                "mem_bytes {mem} exceeds this machine's memory ({} bytes); ask for less",
                state.host.mem_bytes
            ),
        ));
    }
    Ok(())
}

fn check_rootfs(fs: i64, minimum: i64, what: &str) -> Result<(), ApiError> {
    validate::capacity("fs_capacity_bytes", fs)?;
    if fs < minimum {
        return Err(ApiError::validation(
            "fs_capacity_bytes",
            format!(
                "fs_capacity_bytes {fs} is smaller than {what} ({minimum} bytes); ask for at least that"
            ),
        ));
    }
    Ok(())
}
