//! Snapshot calls: build from an image, capture from a sandbox, get, list, delete, wait.

use std::time::{Duration, Instant};

use reqwest::Method;

use super::sandbox::POLL_INTERVAL;
use super::{Client, ClientError, NO_BODY, REQUEST_TIMEOUT, go_duration, segment};
use crate::api::{
    CaptureSnapshotRequest, CreateSnapshotRequest, Snapshot, SnapshotList, snapshot_status,
};

impl Client {
    /// `POST /snapshots`: start building a snapshot from an image (answers while `building`).
    pub async fn build_snapshot(
        &self,
        req: &CreateSnapshotRequest,
    ) -> Result<Snapshot, ClientError> {
        self.json(Method::POST, "/snapshots", Some(req), REQUEST_TIMEOUT)
            .await
    }

    /// `POST /boxes/{name}/snapshot`: capture a sandbox's filesystem as a new snapshot.
    pub async fn capture_snapshot(
        &self,
        sandbox: &str,
        req: &CaptureSnapshotRequest,
    ) -> Result<Snapshot, ClientError> {
        let path = format!("/boxes/{}/snapshot", segment(sandbox));
        self.json(Method::POST, &path, Some(req), REQUEST_TIMEOUT)
            .await
    }

    /// `GET /snapshots/{id}`.
    pub async fn get_snapshot(&self, id: &str) -> Result<Snapshot, ClientError> {
        let path = format!("/snapshots/{}", segment(id));
        self.json(Method::GET, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
    }

    /// `GET /snapshots`: the first page (`snapshots`, else `items`).
    pub async fn list_snapshots(&self) -> Result<Vec<Snapshot>, ClientError> {
        let list: SnapshotList = self
            .json(Method::GET, "/snapshots", NO_BODY, REQUEST_TIMEOUT)
            .await?;
        Ok(if list.snapshots.is_empty() {
            list.items
        } else {
            list.snapshots
        })
    }

    /// `DELETE /snapshots/{id}` (the answer body is ignored).
    pub async fn delete_snapshot(&self, id: &str) -> Result<(), ClientError> {
        let path = format!("/snapshots/{}", segment(id));
        self.send(Method::DELETE, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// Poll `GET /snapshots/{id}` every 2 s until `ready`; `failed` is terminal. GET errors are
    /// reported as `getting snapshot: …`; `timeout_secs == 0` fails at once, as in the LangSmith CLI.
    pub async fn wait_snapshot(
        &self,
        id: &str,
        timeout_secs: u64,
    ) -> Result<Snapshot, ClientError> {
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        while Instant::now() < deadline {
            let snap = self
                .get_snapshot(id)
                .await
                .map_err(|e| e.context("getting snapshot"))?;
            match snap.status.as_str() {
                snapshot_status::READY => return Ok(snap),
                snapshot_status::FAILED => {
                    let why = snap.status_message.as_deref().filter(|m| !m.is_empty());
                    return Err(ClientError::Failed(format!(
                        "snapshot build failed: {}",
                        why.unwrap_or("unknown error")
                    )));
                }
                _ => tokio::time::sleep(POLL_INTERVAL.min(deadline - Instant::now())).await,
            }
        }
        Err(ClientError::Timeout(format!(
            "timed out after {} waiting for snapshot",
            go_duration(timeout_secs)
        )))
    }
}
