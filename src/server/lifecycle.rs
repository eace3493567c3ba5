//! Sandbox lifecycle work that outlives a request: boot, stop, destroy.
//!
//! Each operation runs in its own task (so a client hanging up never interrupts it half-way)
//! under the sandbox's lifecycle lock (so two runtime operations on one sandbox never
//! interleave), and persists the resulting status before anyone is told about it. Requests
//! that only change the record (rename, delete's `deleting`) do not take the lock; every
//! status written here is therefore a conditional change of the stored record, never a
//! write of a copy read before the runtime work.

use std::time::Duration;

use tokio::task::JoinHandle;

use super::error::ApiError;
use super::state::{AppState, now};
use super::store::StoreError;
use crate::api::{Sandbox, status};
use crate::phases::Phases;
use crate::proxy::rules::Rules;
use crate::runtime::network::EgressSockets;
use crate::runtime::{RuntimeError, SandboxSpec, Started};

/// A sandbox's process limit, scaled to its memory: one process per 512 KiB, between 128
/// and 4096. A fork bomb then runs into the pids limit while memory is still free, so its
/// processes can run to their end; were memory exhausted first, thousands of processes
/// would stall in reclaim and the OOM killer would take many minutes to clear them.
pub fn pids_limit(mem_bytes: i64) -> i64 {
    (mem_bytes / (512 << 10)).clamp(128, 4096)
}

/// Wake a sandbox for a data-plane request: its `dataplane_url` stays valid across stop and
/// start, and a request to a stopped sandbox resumes it.
/// A stopped sandbox is marked `provisioning` and booted; a boot already under way
/// (a concurrent wake or start) is waited for. Returns the record as it stands afterwards
/// (`ready`, or whatever stopped the boot) for the caller to judge.
pub async fn wake(state: &AppState, id: &str) -> Result<Sandbox, ApiError> {
    let missing = || ApiError::NotFound(format!("sandbox '{id}' not found"));
    // Under the lock, so a stop under way ends first and the sandbox it stopped is woken.
    let settled = state.locks.lock(id).await;
    let (sb, woken) = state
        .store
        .modify_sandbox(id, |sb| {
            let stopped = sb.status == status::STOPPED;
            if stopped {
                sb.status = status::PROVISIONING.into();
                sb.status_message = None;
                sb.updated_at = now();
            }
            Ok::<_, ApiError>(stopped)
        })
        .await?
        .ok_or_else(missing)?;
    drop(settled);
    if woken {
        tracing::info!("starting sandbox {} for a data-plane request", sb.name);
    }
    // The boot takes the sandbox's lock, so it runs after any boot already under way and
    // does nothing when that one has settled the status: awaiting it awaits both.
    let _ = spawn_boot(state.clone(), id.to_string()).await;
    state.store.sandbox_by_id(id).await?.ok_or_else(missing)
}

/// Boot the sandbox (which must be `provisioning`) and record `ready` or `failed`.
pub fn spawn_boot(state: AppState, id: String) -> JoinHandle<()> {
    tokio::spawn(async move {
        let mut phases = Phases::start("boot", &id);
        let _guard = state.locks.lock(&id).await;
        phases.mark("lock");
        // A warm sandbox this create adopted comes with its network set up.
        let prepared = state.warm.prepared_egress(&id);
        let Ok(Some(sb)) = state.store.sandbox_by_id(&id).await else {
            return;
        };
        if sb.status != status::PROVISIONING {
            return;
        }
        phases.mark("record");
        // The outcome becomes the record's status message, so it is kept as its text.
        let spec = spec_for(&state, &sb).await;
        phases.mark("spec");
        let outcome = match spec {
            Ok(spec) => {
                let started = start(&state, &spec, prepared.is_some()).await;
                phases.mark("container");
                match started {
                    // A warm sandbox's network is only good for the container it was set up
                    // in.
                    Ok(Started::Resumed) => attach_egress(&state, &sb, prepared).await,
                    Ok(Started::Launched) => attach_egress(&state, &sb, None).await,
                    Err(e) => Err(e.to_string()),
                }
            }
            Err(e) => Err(e.to_string()),
        };
        phases.mark("network");
        if outcome.is_err() {
            state.egress.detach(&id);
            // Leave nothing half-mounted behind a failed boot.
            if let Err(e) = state.runtime.stop(&id).await {
                tracing::warn!(sandbox = %id, "cleaning up after a failed boot: {e}");
            }
            phases.mark("cleanup");
        }
        // Recorded only if the sandbox is still provisioning: a delete that came in while
        // it booted waits for this lock and tears down what the boot made.
        let recorded = state
            .store
            .modify_sandbox(&id, move |sb| {
                if sb.status != status::PROVISIONING {
                    return Ok(None);
                }
                let failure = match outcome {
                    Ok(()) => {
                        sb.status = status::READY.into();
                        sb.status_message = None;
                        sb.stopped_at = None;
                        None
                    }
                    Err(message) => {
                        sb.status = status::FAILED.into();
                        sb.status_message = Some(super::host_facts::scrub(&message));
                        Some(message)
                    }
                };
                sb.updated_at = now();
                Ok::<_, StoreError>(failure)
            })
            .await;
        phases.mark("status");
        phases.finish();
        match recorded {
            Ok(Some((sb, Some(message)))) => {
                tracing::warn!("sandbox {} failed to start: {message}", sb.name)
            }
            Ok(Some((_, None))) => super::container_exit::watch(state.clone(), id.clone()),
            Ok(None) => {}
            Err(e) => tracing::error!("recording the boot of sandbox {id}: {e}"),
        }
    })
}

/// Starts the sandbox's container, or takes over the running warm one it was `adopted` from.
/// A warm sandbox that cannot take the create's settings (a memory limit below what it
/// already uses, say) is replaced by a fresh boot rather than failing the create.
async fn start(
    state: &AppState,
    spec: &SandboxSpec,
    adopted: bool,
) -> Result<Started, RuntimeError> {
    match state.runtime.start(spec).await {
        Err(e) if adopted => {
            tracing::warn!(sandbox = %spec.id, "taking over a warm sandbox failed ({e}); booting afresh");
            state.runtime.destroy(&spec.id).await?;
            state.runtime.start(spec).await
        }
        started => started,
    }
}

/// Stop the sandbox's container, keeping its filesystem, and record `stopped`. Only a
/// `ready` sandbox stops; the status is checked under the lock, so a concurrent start is
/// never overwritten, and a delete that comes in meanwhile keeps its `deleting`.
pub fn spawn_stop(state: AppState, id: String) -> JoinHandle<Result<(), ApiError>> {
    tokio::spawn(async move {
        let _guard = state.locks.lock(&id).await;
        let sb = state
            .store
            .sandbox_by_id(&id)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("sandbox {id} not found")))?;
        if sb.status != status::READY {
            return Err(ApiError::Conflict(format!(
                "sandbox '{}' cannot be stopped: it is {} (only ready sandboxes stop)",
                sb.name, sb.status
            )));
        }
        state.egress.detach(&id);
        state.runtime.stop(&id).await?;
        state
            .store
            .modify_sandbox(&id, |sb| {
                if sb.status == status::READY {
                    let ts = now();
                    sb.status = status::STOPPED.into();
                    sb.status_message = None;
                    sb.stopped_at = Some(ts.clone());
                    sb.updated_at = ts;
                }
                Ok::<_, ApiError>(())
            })
            .await?;
        Ok(())
    })
}

/// Destroy the sandbox (container, mounts, files) and forget it.
pub fn spawn_destroy(state: AppState, id: String) -> JoinHandle<Result<(), ApiError>> {
    tokio::spawn(async move {
        let mut attempt = 0;
        loop {
            match destroy_once(&state, &id).await {
                Ok(()) => return Ok(()),
                Err(e) if attempt < DESTROY_RETRIES.len() => {
                    // A mount still busy for a moment (a process of the sandbox exiting)
                    // is the usual cause: try again shortly rather than at the next restart.
                    tokio::time::sleep(DESTROY_RETRIES[attempt]).await;
                    attempt += 1;
                    tracing::info!("deleting sandbox {id}: {e}; retrying");
                }
                Err(e) => return Err(e),
            }
        }
    })
}

/// Waits before each retry of a failed teardown; after the last, the next server start
/// tries again (`recovery`).
const DESTROY_RETRIES: [Duration; 3] = [
    Duration::from_secs(1),
    Duration::from_secs(10),
    Duration::from_secs(60),
];

async fn destroy_once(state: &AppState, id: &str) -> Result<(), ApiError> {
    let _guard = state.locks.lock(id).await;
    state.egress.detach(id);
    if let Err(e) = state.runtime.destroy(id).await {
        tracing::warn!("deleting sandbox {id}: {e}");
        let why = super::host_facts::scrub(&format!("deleting failed: {e}"));
        let _ = state
            .store
            .modify_sandbox(id, move |sb| {
                sb.status_message = Some(why);
                Ok::<_, StoreError>(())
            })
            .await;
        return Err(e.into());
    }
    state.store.delete_sandbox(id).await?;
    state.egress.log().forget(id);
    state.services.release(id);
    state.activity.forget(id);
    Ok(())
}

/// Set up the running sandbox's network (unless `prepared` already holds its sockets) and
/// hand its sockets to the egress proxy, judged by the sandbox's `proxy_config`, resolved
/// now (so a rotated secret applies from here on). Also takes a running sandbox over after
/// a restart.
pub async fn attach_egress(
    state: &AppState,
    sb: &Sandbox,
    prepared: Option<EgressSockets>,
) -> Result<(), String> {
    let policy = super::proxy_config::policy(state, sb.proxy_config.as_ref())
        .await
        .map_err(|e| format!("applying proxy_config: {e}"))?;
    let sockets = match prepared {
        Some(sockets) => sockets,
        None => state
            .runtime
            .open_egress(&sb.id)
            .await
            .map_err(|e| format!("setting up the sandbox network: {e}"))?,
    };
    state
        .egress
        .attach(&sb.id, sockets.proxy, sockets.dns, policy)
        .map_err(|e| format!("serving the sandbox network: {e}"))
}

/// What the runtime needs to run this sandbox: its snapshot, resources and environment.
pub async fn spec_for(state: &AppState, sb: &Sandbox) -> Result<SandboxSpec, ApiError> {
    let snapshot_id = sb.snapshot_id.clone().unwrap_or_default();
    let snap =
        state.store.snapshot(&snapshot_id).await?.ok_or_else(|| {
            ApiError::NotFound(format!("snapshot {snapshot_id} no longer exists"))
        })?;
    // Lowest to highest: the image's ENV, the CA-bundle variables naming the trust store
    // that holds the egress CA, the enabled proxy rules' placeholders (a later rule wins),
    // the sandbox's own env_vars.
    let mut env = snap.image_env.clone();
    set_env(&mut env, &trust_variables());
    // A configuration stored before a rule form was refused must not keep the sandbox from
    // booting: its rules then set no variables, and the log says why.
    let rules = Rules::from_proxy_config(sb.proxy_config.as_ref()).unwrap_or_else(|e| {
        tracing::warn!(
            "sandbox {}: proxy rules ignored ({}: {})",
            sb.name,
            e.field,
            e.message
        );
        Rules::default()
    });
    for rule in rules.rules.iter().filter(|r| r.enabled) {
        if rule.aws.is_some() {
            set_env(&mut env, &aws_placeholders());
        }
        if rule.gcp.is_some() {
            set_env(&mut env, &gcp_placeholders());
        }
        set_env(&mut env, &rule.env_vars);
    }
    if let Some(vars) = sb.run_config.as_ref().and_then(|r| r.env_vars.as_ref()) {
        set_env(&mut env, vars);
    }
    Ok(SandboxSpec {
        id: sb.id.clone(),
        hostname: sb.name.clone(),
        snapshot_image: state.dirs.snapshot_image(&snap.snapshot.id),
        cpu_millicores: sb.cpu_millicores.unwrap_or(1000),
        mem_bytes: sb.mem_bytes.unwrap_or(1 << 30),
        fs_capacity_bytes: sb
            .fs_capacity_bytes
            .unwrap_or(snap.snapshot.fs_capacity_bytes),
        pids_limit: pids_limit(sb.mem_bytes.unwrap_or(1 << 30)),
        env,
        cwd: sb
            .run_config
            .as_ref()
            .and_then(|r| r.work_dir.clone())
            .or(snap.image_workdir.clone()),
        egress_ca_pem: Some(state.ca.cert_pem().to_string()),
    })
}

/// The CA-bundle variables of tools with their own bundles, pointed at the trust store the
/// agent gives the egress CA (Node's takes the extra CA alone).
fn trust_variables() -> std::collections::BTreeMap<String, String> {
    use crate::api::trust;
    let mut vars: std::collections::BTreeMap<String, String> = trust::BUNDLE_VARIABLES
        .iter()
        .map(|name| (name.to_string(), trust::TRUST_STORE.to_string()))
        .collect();
    vars.insert(
        trust::NODE_EXTRA_CA_CERTS.to_string(),
        trust::EGRESS_CA.to_string(),
    );
    vars
}

/// What an enabled aws rule gives the sandbox: placeholder keys for SDKs that want some
/// (the proxy replaces their signature), no instance metadata lookups, and the trust store
/// holding the egress CA. Its own `env_vars` come on top (`AWS_REGION`, say).
fn aws_placeholders() -> std::collections::BTreeMap<String, String> {
    [
        ("AWS_ACCESS_KEY_ID", "AKIALANGSMITHPROXY00"),
        (
            "AWS_SECRET_ACCESS_KEY",
            "placeholder-the-egress-proxy-signs",
        ),
        ("AWS_EC2_METADATA_DISABLED", "true"),
        ("AWS_CA_BUNDLE", crate::api::trust::TRUST_STORE),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// What an enabled gcp rule gives the sandbox: a placeholder token for `gcloud` (the proxy
/// sets the real one) and the trust store holding the egress CA.
fn gcp_placeholders() -> std::collections::BTreeMap<String, String> {
    [
        (
            "CLOUDSDK_AUTH_ACCESS_TOKEN",
            "placeholder-the-egress-proxy-sets-the-token",
        ),
        (
            "CLOUDSDK_CORE_CUSTOM_CA_CERTS_FILE",
            crate::api::trust::TRUST_STORE,
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

/// Set each of `vars` in `env` (`NAME=value` entries), replacing what was there.
fn set_env<'a>(env: &mut Vec<String>, vars: impl IntoIterator<Item = (&'a String, &'a String)>) {
    for (name, value) in vars {
        env.retain(|kv| kv.split_once('=').map(|(k, _)| k) != Some(name.as_str()));
        env.push(format!("{name}={value}"));
    }
}

#[cfg(test)]
mod tests {
    use super::pids_limit;

    #[test]
    fn the_pids_limit_scales_with_memory_within_bounds() {
        assert_eq!(pids_limit(256 << 20), 512);
        assert_eq!(pids_limit(1 << 30), 2048);
        assert_eq!(pids_limit(16 << 20), 128);
        assert_eq!(pids_limit(64 << 30), 4096);
    }
}
