//! The default snapshot `system/default:latest`, which a create naming no snapshot boots.
//!
//! It is built on first use and then cached like any snapshot: by default a Debian root
//! filesystem with Python and common tools made from Debian packages (`mmdebstrap`), or,
//! with `--default-image`, from an image. One build at a time: every create that arrives
//! while it runs waits on the same build. The Debian one ships OpenSSH's server (`sshd`); its
//! record carries an id of its recipe, and a cached default of another recipe is rebuilt.

mod sshd;

use std::path::Path;

use futures_util::FutureExt;
use futures_util::future::{BoxFuture, Shared};
use tokio::task::JoinHandle;

use super::builder;
use super::error::ApiError;
use super::images::{self, BuiltImage, ImageConfig};
use super::lifecycle;
use super::snapshots::{self, DEFAULT_CAPACITY, DEFAULT_TAG};
use super::state::{AppState, now};
use super::store::{SnapshotRecord, StoreError};
use crate::api::{Snapshot, snapshot_status, status};

pub const NAME: &str = "system/default";

/// Debian packages of the default snapshot, on top of `minbase` (plus [`sshd::PACKAGES`]).
const DEBIAN_PACKAGES: &str = "python3,python-is-python3,python3-requests,ca-certificates,bash,coreutils,procps,iproute2,curl,git,less,nano";
const DEBIAN_SUITE: &str = "bookworm";
/// The host's own apt sources (deb822) if it has them, so the build uses the same mirror.
const HOST_SOURCES: &str = "/etc/apt/sources.list.d/debian.sources";
const FALLBACK_MIRROR: &str = "http://deb.debian.org/debian";
const DEBIAN_PATH: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What the default snapshot is built from.
#[derive(Debug, Clone)]
pub enum DefaultSource {
    /// Debian packages via `mmdebstrap`.
    Debian,
    /// An image reference, as `POST /snapshots` takes.
    Image(String),
}

/// A build anyone can wait on; resolves when the snapshot record is final.
pub type PendingBuild = Shared<BoxFuture<'static, ()>>;

/// The default snapshot's build in flight (snapshot id and its completion). An async mutex:
/// a create holds it across its store lookups, so two creates never start two builds.
#[derive(Default)]
pub struct DefaultBuilds {
    inflight: tokio::sync::Mutex<Option<(String, PendingBuild)>>,
}

/// The default snapshot, and the build to wait for if it is not ready yet (starting the
/// build if nobody has).
pub async fn ensure(state: &AppState) -> Result<(SnapshotRecord, Option<PendingBuild>), ApiError> {
    let mut inflight = state.default_builds.inflight.lock().await;
    if let Some((id, pending)) = inflight.as_ref()
        && let Some(rec) = state.store.snapshot(id).await?
        && rec.snapshot.status == snapshot_status::BUILDING
    {
        return Ok((rec, Some(pending.clone())));
    }
    let source = state.features.default_source.clone();
    match snapshots::resolve(state, &format!("{NAME}:{DEFAULT_TAG}")).await {
        Ok(rec) if rec.snapshot.status == snapshot_status::READY && is_current(&rec, &source) => {
            return Ok((rec, None));
        }
        Ok(_) | Err(ApiError::NotFound(_)) => {}
        Err(e) => return Err(e),
    }
    let ts = now();
    let rec = SnapshotRecord {
        snapshot: Snapshot {
            id: uuid::Uuid::new_v4().to_string(),
            name: NAME.into(),
            status: snapshot_status::BUILDING.into(),
            fs_capacity_bytes: DEFAULT_CAPACITY,
            docker_image: match &source {
                DefaultSource::Image(image) => Some(image.clone()),
                DefaultSource::Debian => None,
            },
            created_at: ts.clone(),
            updated_at: ts,
            ..Default::default()
        },
        pending_tag: Some(DEFAULT_TAG.into()),
        recipe: match &source {
            DefaultSource::Debian => Some(debian_recipe()),
            DefaultSource::Image(_) => None,
        },
        ..Default::default()
    };
    state.store.put_snapshot(&rec).await?;
    let id = rec.snapshot.id.clone();
    tracing::info!("building the default snapshot {NAME} ({id}) on first use");
    let handle: JoinHandle<()> = match source {
        DefaultSource::Image(image) => {
            builder::spawn_build(state.clone(), id.clone(), image, None, None)
        }
        DefaultSource::Debian => {
            let state = state.clone();
            let id = id.clone();
            tokio::spawn(async move {
                let result = build_debian(&state, &id).await;
                if let Err(e) = builder::finish(&state, &id, result).await {
                    tracing::error!("recording the default snapshot build: {e}");
                }
            })
        }
    };
    let pending = handle.map(|_| ()).boxed().shared();
    *inflight = Some((id, pending.clone()));
    Ok((rec, Some(pending)))
}

/// The id of what the Debian default is made from: packages, suite and the sshd set-up.
fn debian_recipe() -> String {
    sshd::recipe_id(&[DEBIAN_PACKAGES, sshd::PACKAGES, DEBIAN_SUITE])
}

/// Whether a cached default still is what `source` makes. One built from an image counts as
/// current while the server builds from an image (its reference is the user's to change).
fn is_current(rec: &SnapshotRecord, source: &DefaultSource) -> bool {
    match source {
        DefaultSource::Debian => rec.recipe.as_deref() == Some(debian_recipe().as_str()),
        DefaultSource::Image(_) => true,
    }
}

/// Boot sandbox `id` once the default snapshot's build ends; if the build failed, the
/// sandbox fails with the build's reason.
pub fn boot_after(state: AppState, id: String, build: PendingBuild) -> JoinHandle<()> {
    tokio::spawn(async move {
        build.await;
        let snapshot_id = match state.store.sandbox_by_id(&id).await {
            Ok(Some(sb)) => sb.snapshot_id.unwrap_or_default(),
            _ => return,
        };
        let snap = state.store.snapshot(&snapshot_id).await.ok().flatten();
        if snap
            .as_ref()
            .is_some_and(|r| r.snapshot.status == snapshot_status::READY)
        {
            let _ = lifecycle::spawn_boot(state, id).await;
            return;
        }
        let reason = snap
            .and_then(|r| r.snapshot.status_message)
            .unwrap_or_else(|| "it was deleted while building".into());
        let failed = state
            .store
            .modify_sandbox(&id, move |sb| {
                if sb.status == status::PROVISIONING {
                    sb.status = status::FAILED.into();
                    sb.status_message =
                        Some(format!("the default snapshot failed to build: {reason}"));
                    sb.updated_at = now();
                }
                Ok::<_, StoreError>(())
            })
            .await;
        if let Err(e) = failed {
            tracing::error!("recording the failure of sandbox {id}: {e}");
        }
    })
}

/// `mmdebstrap` a Debian tree into scratch space, then write it as the snapshot image.
async fn build_debian(state: &AppState, id: &str) -> Result<BuiltImage, String> {
    let work = state.dirs.scratch().join(format!("build-{id}"));
    let tree = work.join("rootfs");
    let output = state.dirs.snapshot_image(id);
    let result = async {
        tokio::fs::create_dir_all(&work)
            .await
            .and(tokio::fs::create_dir_all(state.dirs.snapshot_dir(id)).await)
            .map_err(|e| format!("preparing the build directories: {e}"))?;
        run_mmdebstrap(&tree).await?;
        sshd::finish_tree(&tree).await?;
        let used_bytes = images::make_ext4(&tree, DEFAULT_CAPACITY as u64, &output)
            .await
            .map_err(|e| e.to_string())?;
        Ok(BuiltImage {
            digest: String::new(),
            config: ImageConfig {
                env: vec![DEBIAN_PATH.into(), "LANG=C.UTF-8".into()],
                working_dir: Some("/root".into()),
                ..Default::default()
            },
            used_bytes,
        })
    }
    .await;
    let _ = tokio::fs::remove_dir_all(&work).await;
    result
}

async fn run_mmdebstrap(tree: &Path) -> Result<(), String> {
    let mirror = if Path::new(HOST_SOURCES).exists() {
        HOST_SOURCES
    } else {
        FALLBACK_MIRROR
    };
    let out = tokio::process::Command::new("mmdebstrap")
        .args(["--variant=minbase", "--quiet", "--format=directory"])
        .arg(format!("--include={DEBIAN_PACKAGES},{}", sshd::PACKAGES))
        .arg(DEBIAN_SUITE)
        .arg(tree)
        .arg(mirror)
        .kill_on_drop(true)
        .output()
        .await
        .map_err(|e| {
            format!(
                "running mmdebstrap to build the default Debian snapshot: {e}; install it \
                 (apt-get install mmdebstrap) or start the server with --default-image IMAGE"
            )
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        let tail: Vec<&str> = stderr.lines().rev().take(8).collect();
        let tail: Vec<&str> = tail.into_iter().rev().collect();
        return Err(format!(
            "mmdebstrap failed ({}): {}",
            out.status,
            tail.join(" | ")
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cached_debian_default_of_another_recipe_is_rebuilt() {
        let mut rec = SnapshotRecord::default();
        assert!(
            !is_current(&rec, &DefaultSource::Debian),
            "built before recipes"
        );
        rec.recipe = Some("debian-0000000000000000".into());
        assert!(!is_current(&rec, &DefaultSource::Debian));
        rec.recipe = Some(debian_recipe());
        assert!(is_current(&rec, &DefaultSource::Debian));
        let from_image = SnapshotRecord::default();
        assert!(is_current(&from_image, &DefaultSource::Image("x".into())));
    }
}
