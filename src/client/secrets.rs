//! Workspace secrets (`{endpoint}/workspaces/current/secrets`, where the LangSmith SDK's
//! `Client` finds them): list the keys, set one value, delete one. Values are only ever sent.

use reqwest::Method;

use super::{Client, ClientError, NO_BODY, REQUEST_TIMEOUT, segment};
use crate::api::secrets::{PutSecret, SecretConfigInput, SecretInfo};

/// The API area secrets live in.
const WORKSPACE: &str = "/workspaces/current";

impl Client {
    /// Every secret's key (and its hosts with `include_configs`), by key.
    pub async fn secrets(&self, include_configs: bool) -> Result<Vec<SecretInfo>, ClientError> {
        let path = if include_configs {
            "/secrets?include_configs=true"
        } else {
            "/secrets"
        };
        self.json_in(WORKSPACE, Method::GET, path, NO_BODY, REQUEST_TIMEOUT)
            .await
    }

    /// Create or update `key`: a new `value` (required to create), new hosts (`configs`,
    /// replacing the old ones), or both.
    pub async fn set_secret(
        &self,
        key: &str,
        value: Option<String>,
        configs: Option<Vec<SecretConfigInput>>,
    ) -> Result<SecretInfo, ClientError> {
        let path = format!("/secrets/{}", segment(key));
        let body = PutSecret { value, configs };
        self.json_in(WORKSPACE, Method::PUT, &path, Some(&body), REQUEST_TIMEOUT)
            .await
    }

    /// Delete `key` (a key that does not exist is no error).
    pub async fn delete_secret(&self, key: &str) -> Result<(), ClientError> {
        let path = format!("/secrets/{}", segment(key));
        self.send_in(WORKSPACE, Method::DELETE, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }
}
