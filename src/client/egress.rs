//! The egress log of a sandbox: the decisions the local backend's egress proxy made on the
//! connections the sandbox opened (`GET …/boxes/{name}/egress-log?offset=N`). LangSmith
//! itself has no such route; there the call fails with its 404.

use reqwest::Method;

use super::{Client, ClientError, NO_BODY, REQUEST_TIMEOUT, segment};
use crate::api::egress::EgressLogPage;

impl Client {
    /// The entries from byte `offset` of the log on (0: from the start), and the offset to
    /// ask from next time for only what came since.
    pub async fn egress_log(&self, name: &str, offset: u64) -> Result<EgressLogPage, ClientError> {
        let path = format!("/boxes/{}/egress-log?offset={offset}", segment(name));
        self.json(Method::GET, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
    }
}
