//! Sandbox ("box") lifecycle calls: create, get, list, update, delete, status, start, stop, wait.

use std::time::{Duration, Instant};

use reqwest::Method;

use super::{Client, ClientError, NO_BODY, REQUEST_TIMEOUT, go_duration, segment};
use crate::api::{
    CreateSandboxRequest, Sandbox, SandboxList, StatusResponse, UpdateSandboxRequest, status,
};

/// Interval between status polls of [`Client::wait_sandbox`].
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);

impl Client {
    /// `POST /boxes`. With `wait_for_ready` the server holds the answer until the sandbox is
    /// ready, so the request may take `timeout` seconds: allow that plus 30 s of slack.
    pub async fn create_sandbox(&self, req: &CreateSandboxRequest) -> Result<Sandbox, ClientError> {
        let wait = if req.wait_for_ready == Some(true) {
            Duration::from_secs(req.timeout.unwrap_or(30).max(0) as u64)
        } else {
            Duration::ZERO
        };
        self.json(Method::POST, "/boxes", Some(req), wait + REQUEST_TIMEOUT)
            .await
    }

    /// `GET /boxes/{name}`.
    pub async fn get_sandbox(&self, name: &str) -> Result<Sandbox, ClientError> {
        let path = format!("/boxes/{}", segment(name));
        self.json(Method::GET, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
    }

    /// `GET /boxes`: the first page, as the LangSmith CLI shows it (`sandboxes`, else `items`).
    pub async fn list_sandboxes(&self) -> Result<Vec<Sandbox>, ClientError> {
        let list: SandboxList = self
            .json(Method::GET, "/boxes", NO_BODY, REQUEST_TIMEOUT)
            .await?;
        Ok(if list.sandboxes.is_empty() {
            list.items
        } else {
            list.sandboxes
        })
    }

    /// `PATCH /boxes/{name}`.
    pub async fn update_sandbox(
        &self,
        name: &str,
        req: &UpdateSandboxRequest,
    ) -> Result<Sandbox, ClientError> {
        let path = format!("/boxes/{}", segment(name));
        self.json(Method::PATCH, &path, Some(req), REQUEST_TIMEOUT)
            .await
    }

    /// `DELETE /boxes/{name}` (the answer body is ignored).
    pub async fn delete_sandbox(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/boxes/{}", segment(name));
        self.send(Method::DELETE, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// `GET /boxes/{name}/status`.
    pub async fn sandbox_status(&self, name: &str) -> Result<StatusResponse, ClientError> {
        let path = format!("/boxes/{}/status", segment(name));
        self.json(Method::GET, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
    }

    /// `POST /boxes/{name}/start` (the answer body is ignored).
    pub async fn start_sandbox(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/boxes/{}/start", segment(name));
        self.send(Method::POST, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// `POST /boxes/{name}/stop` (the answer body is ignored).
    pub async fn stop_sandbox(&self, name: &str) -> Result<(), ClientError> {
        let path = format!("/boxes/{}/stop", segment(name));
        self.send(Method::POST, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }

    /// Poll `GET /boxes/{name}/status` every 2 s until `ready`.
    ///
    /// Only `failed` is terminal. The LangSmith CLI also gave up on `stopped`, but right after `start`
    /// the status can still read `stopped`, so later CLI generations dropped that and so do we.
    /// A request error aborts with the raw cause (no context), as in the LangSmith CLI.
    pub async fn wait_sandbox(
        &self,
        name: &str,
        timeout_secs: u64,
    ) -> Result<StatusResponse, ClientError> {
        let deadline = Instant::now() + Duration::from_secs(timeout_secs);
        while Instant::now() < deadline {
            let st = self.sandbox_status(name).await?;
            match st.status.as_str() {
                status::READY => return Ok(st),
                status::FAILED => {
                    return Err(ClientError::Failed(format!(
                        "sandbox entered {} state",
                        st.status
                    )));
                }
                _ => tokio::time::sleep(POLL_INTERVAL.min(deadline - Instant::now())).await,
            }
        }
        Err(ClientError::Timeout(format!(
            "timed out after {} waiting for sandbox",
            go_duration(timeout_secs)
        )))
    }
}
