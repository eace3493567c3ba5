//! The reaper: a background task that stops `ready` sandboxes idle for their
//! `idle_ttl_seconds` and deletes `stopped` ones whose `delete_after_stop_seconds` have passed
//! since `stopped_at`. It also discards the writable layer of
//! `persistent: false` sandboxes once they stop. And it lets warm sandboxes go once no
//! create has asked for their kind in a while.
//!
//! Each sweep asks the store for the sandboxes whose deadline has passed (an index lookup;
//! deadlines are kept by the store, see [`super::ttl`]) and checks each against what only
//! memory knows: its data-plane activity and when this server started.

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::task::JoinHandle;

use super::lifecycle;
use super::state::{AppState, now};
use super::store::StoreError;
use super::ttl::{self, TtlClock};
use crate::api::{Sandbox, status};

/// How long warm sandboxes are kept for a kind of create no create has asked for since:
/// a minute (one TTL unit, so tests that shrink the unit see it pass). Long enough for a
/// user working in bursts; short enough that a server whose sandboxes were all deleted soon
/// holds nothing.
fn warm_keep(ttl: TtlClock) -> Duration {
    Duration::from_secs(ttl.unit_seconds())
}

/// Start the reaper; the caller aborts it when the server stops.
pub fn spawn(state: AppState) -> JoinHandle<()> {
    // A tick well under one TTL unit, so deadlines are met within a fraction of a minute.
    let unit = state.features.ttl.unit_seconds();
    let tick = Duration::from_millis((unit * 1000 / 4).clamp(250, 5000));
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

async fn sweep(state: &AppState, started: DateTime<Utc>) {
    state.warm.expire(warm_keep(state.features.ttl));
    let now = Utc::now();
    let due = match state.store.due_sandboxes(now).await {
        Ok(due) => due,
        Err(e) => {
            tracing::warn!("reaper: reading sandboxes: {e}");
            return;
        }
    };
    for sb in due {
        if sb.status == status::READY && idle_expired(state, &sb, started, now) {
            stop_idle(state, &sb).await;
        } else if sb.status == status::STOPPED && delete_due(state.features.ttl, &sb, now) {
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
        ttl::parse(&sb.updated_at),
        Some(started),
    ]
    .into_iter()
    .flatten()
    .max();
    since.is_some_and(|t| now - t >= state.features.ttl.scaled(ttl))
}

fn delete_due(clock: TtlClock, sb: &Sandbox, now: DateTime<Utc>) -> bool {
    clock.delete_at(sb).is_some_and(|at| at <= now)
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
    // Re-checked in the same step as the change: a start or a new deadline may have come in.
    let clock = state.features.ttl;
    let marked = state
        .store
        .modify_sandbox(&sb.id, move |current| {
            let due = current.status == status::STOPPED && delete_due(clock, current, Utc::now());
            if due {
                current.status = status::DELETING.into();
                current.updated_at = now();
            }
            Ok::<_, StoreError>(due)
        })
        .await;
    match marked {
        Ok(Some((_, true))) => tracing::info!(
            "deleting sandbox {}: delete_after_stop_seconds passed",
            sb.name
        ),
        Ok(_) => return,
        Err(e) => {
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
/// still stopped, so a boot (which takes the same lock) never has its files pulled from under.
pub async fn discard_if_ephemeral(state: &AppState, id: &str) {
    let _guard = state.locks.lock(id).await;
    let Ok(Some(sb)) = state.store.sandbox_by_id(id).await else {
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
