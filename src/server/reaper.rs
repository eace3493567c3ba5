//! The reaper: a background task that stops `ready` sandboxes idle for their
//! `idle_ttl_seconds` and deletes `stopped` ones whose `delete_after_stop_seconds` have passed
//! since `stopped_at` (`spec/control-plane.md` §3.2). It also discards the writable layer of
//! `persistent: false` sandboxes once they stop.
//!
//! TTLs are whole minutes; the reaper counts `Features::ttl_unit_seconds` per minute (60 in
//! production; the hidden `LANGSMITH_SERVER_TTL_UNIT_SECONDS=1` makes tests' 60 s pass in 1 s).

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::lifecycle;
use super::state::{AppState, now};
use crate::api::{Sandbox, status};

/// Start the reaper; the caller aborts it when the server stops.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    // A tick well under one TTL unit, so deadlines are met within a fraction of a minute.
    let tick = Duration::from_millis((state.features.ttl_unit_seconds * 1000 / 4).clamp(250, 5000));
    // Activity from before this server started is unknown: nothing counts as idle for
    // longer than the server has been up.
    let started = Utc::now();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(tick);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            interval.tick().await;
            sweep(&state, started).await;
        }
    })
}

/// A TTL in seconds as the reaper's wall-clock duration.
fn scaled(state: &AppState, seconds: i64) -> chrono::Duration {
    let unit = state.features.ttl_unit_seconds as i64;
    chrono::Duration::milliseconds(seconds.max(0) * unit * 1000 / 60)
}

fn parse(ts: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(ts)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

async fn sweep(state: &AppState, started: DateTime<Utc>) {
    let sandboxes = match state.store.sandboxes() {
        Ok(all) => all,
        Err(e) => {
            tracing::warn!("reaper: reading sandboxes: {e}");
            return;
        }
    };
    let now = Utc::now();
    for sb in sandboxes {
        if sb.status == status::READY && idle_expired(state, &sb, started, now) {
            stop_idle(state, &sb).await;
        } else if sb.status == status::STOPPED && delete_due(state, &sb, now) {
            delete_stopped(state, &sb).await;
        }
    }
}

/// Idle since the latest of its last data-plane activity, its last recorded change (a boot
/// records `ready`, so a restarted sandbox gets a full TTL) and the server's start.
fn idle_expired(
    state: &AppState,
    sb: &Sandbox,
    started: DateTime<Utc>,
    now: DateTime<Utc>,
) -> bool {
    let ttl = sb.idle_ttl_seconds.unwrap_or(0);
    if ttl <= 0 {
        return false;
    }
    let since = [
        state.activity.last_active(&sb.id),
        parse(&sb.updated_at),
        Some(started),
    ]
    .into_iter()
    .flatten()
    .max();
    since.is_some_and(|t| now - t >= scaled(state, ttl))
}

fn delete_due(state: &AppState, sb: &Sandbox, now: DateTime<Utc>) -> bool {
    let after = sb.delete_after_stop_seconds.unwrap_or(0);
    if after <= 0 {
        return false;
    }
    let stopped = sb.stopped_at.as_deref().and_then(parse);
    stopped.is_some_and(|t| now - t >= scaled(state, after))
}

async fn stop_idle(state: &AppState, sb: &Sandbox) {
    tracing::info!(
        "stopping sandbox {}: idle for its idle_ttl_seconds",
        sb.name
    );
    match lifecycle::spawn_stop(state.clone(), sb.id.clone()).await {
        Ok(Ok(())) => discard_if_ephemeral(state, &sb.id).await,
        // Changed state meanwhile (deleted, stopped by hand): nothing to do.
        Ok(Err(e)) => tracing::debug!("reaper: not stopping {}: {e}", sb.name),
        Err(e) => tracing::warn!("reaper: stopping {}: {e}", sb.name),
    }
}

async fn delete_stopped(state: &AppState, sb: &Sandbox) {
    {
        let lock = state.sandbox_lock(&sb.id);
        let _guard = lock.lock().await;
        // Re-check under the lock: a start or a new deadline may have come in.
        let Ok(Some(mut current)) = state.store.sandbox_by_id(&sb.id) else {
            return;
        };
        if current.status != status::STOPPED || !delete_due(state, &current, Utc::now()) {
            return;
        }
        tracing::info!(
            "deleting sandbox {}: delete_after_stop_seconds passed",
            sb.name
        );
        current.status = status::DELETING.into();
        current.updated_at = now();
        if let Err(e) = state.store.update_sandbox(&current) {
            tracing::warn!("reaper: marking {} deleting: {e}", sb.name);
            return;
        }
    }
    match lifecycle::spawn_destroy(state.clone(), sb.id.clone()).await {
        Ok(Ok(())) => state.activity.forget(&sb.id),
        Ok(Err(e)) => tracing::warn!("reaper: deleting {}: {e}", sb.name),
        Err(e) => tracing::warn!("reaper: deleting {}: {e}", sb.name),
    }
}

/// After a stop, a `persistent: false` sandbox loses its writable layer, so its next start
/// begins from the snapshot again. Done under the sandbox's lock, and only while it is
/// still stopped, so a start that already began is never pulled from under.
pub async fn discard_if_ephemeral(state: &AppState, id: &str) {
    let lock = state.sandbox_lock(id);
    let _guard = lock.lock().await;
    let Ok(Some(sb)) = state.store.sandbox_by_id(id) else {
        return;
    };
    if sb.persistent != Some(false) || sb.status != status::STOPPED {
        return;
    }
    let upper = state.runtime.upper_image(id);
    match tokio::fs::remove_file(&upper).await {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => tracing::warn!("discarding the files of sandbox {}: {e}", sb.name),
    }
}
