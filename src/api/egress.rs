//! The egress log of a sandbox (`GET …/boxes/{name}/egress-log?offset=N`), a local-backend
//! extension: one entry per decision the egress proxy made on a connection the sandbox
//! opened.

use serde::{Deserialize, Serialize};

/// One decision. `bytes_*` are counted when an allowed connection ends (zero for a denied
/// one and for a request); `rule` is the `access_control` entry (or default) that decided,
/// `reason` what else did (a forged SNI, a literal IP, a refused address).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EgressEntry {
    pub time: String,
    pub sandbox_id: String,
    pub host: String,
    pub port: u16,
    pub decision: Decision,
    pub rule: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub bytes_sent: u64,
    pub bytes_received: u64,
    /// On a connection the proxy opened for header rules, one entry per request: the request
    /// line without its query (`GET /v1/models`)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request: Option<String>,
    /// …the header rule whose headers were set on it (its name, never a value)…
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_rule: Option<String>,
    /// …and the status the upstream answered (or the proxy, when it could not ask).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Decision {
    Allowed,
    Denied,
    /// Allowed, but the upstream could not be resolved or reached.
    Failed,
}

/// A page of the log: ask again with `next_offset` for what came since.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EgressLogPage {
    pub entries: Vec<EgressEntry>,
    pub next_offset: u64,
}
