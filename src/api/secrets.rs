//! Workspace secrets (`/api/v1/workspaces/current/secrets`): named values the egress auth
//! proxy may send to the hosts their `configs` name. Values go in and never come back out:
//! no response carries one.

use serde::{Deserialize, Serialize};

/// One secret as the API shows it: its key and, when asked for, where it may be sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretInfo {
    pub key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configs: Option<Vec<SecretConfig>>,
}

/// A host a secret may be sent to, and how.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretConfig {
    /// An exact host name or `*.domain` (subdomains only).
    pub host_pattern: String,
    /// The header the value goes in; `None`: the consumer decides.
    #[serde(default)]
    pub header_name: Option<String>,
    /// The header's value with `{value}` standing for the secret, e.g. `Bearer {value}`;
    /// `None`: the raw value.
    #[serde(default)]
    pub header_value_template: Option<String>,
    /// `DEFAULT` (a built-in host of a known provider key) or `CUSTOM` (set by a user).
    #[serde(default = "custom")]
    pub source: String,
}

fn custom() -> String {
    "CUSTOM".into()
}

/// Body of `PUT …/secrets/{key}`: `value` is required to create a secret and kept when
/// omitted on an update; `configs` replaces the hosts (omitted or empty: the defaults).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct PutSecret {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub configs: Option<Vec<SecretConfigInput>>,
}

/// A host entry as a request gives it (the server sets `source`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretConfigInput {
    pub host_pattern: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_value_template: Option<String>,
}

/// One item of the bulk `POST …/secrets`: set `value`, or delete the key when it is null.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SecretUpsert {
    pub key: String,
    pub value: Option<String>,
}
