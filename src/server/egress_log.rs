//! `GET …/boxes/{name}/egress-log?offset=N`: the egress proxy's decisions for a sandbox.
//!
//! The answer is `{"entries": [...], "next_offset": N}`; asking again with `next_offset`
//! returns only what came since (`langsmith sandbox egress-log --follow` does so). The log
//! is a local-backend extension: LangSmith itself has no such route.

use axum::Json;
use axum::extract::{Path, Query, State};
use serde::Deserialize;

use super::boxes::find;
use super::error::ApiError;
use super::state::AppState;
use crate::api::egress::EgressLogPage;

#[derive(Debug, Deserialize)]
pub struct LogQuery {
    #[serde(default)]
    offset: u64,
}

pub async fn egress_log(
    State(state): State<AppState>,
    Path(name): Path<String>,
    Query(query): Query<LogQuery>,
) -> Result<Json<EgressLogPage>, ApiError> {
    let sb = find(&state, &name).await?;
    let log = state.egress.log().clone();
    let (entries, next_offset) =
        tokio::task::spawn_blocking(move || log.read(&sb.id, query.offset))
            .await
            .map_err(|e| ApiError::Internal(format!("reading the egress log: {e}")))?
            .map_err(|e| ApiError::Internal(format!("reading the egress log: {e}")))?;
    Ok(Json(EgressLogPage {
        entries,
        next_offset,
    }))
}
