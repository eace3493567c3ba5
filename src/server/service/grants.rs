//! Who may use a port's service URL besides token holders: the login grants
//! (`restricted` / `workspace`), and the rule between them and tokens — while a login grant
//! is in place, minting a token is refused (409), and `access: "off"` removes the grant.
//!
//! The last token minted per port is recorded too, only so `GET …/service-urls` can list
//! it until it expires; tokens themselves are checked by signature, never against this.

use crate::api::service::{ServiceGrant, access};
use crate::server::error::ApiError;
use crate::server::state::{AppState, now};

fn is_login(grant: &ServiceGrant) -> bool {
    grant.access == access::RESTRICTED || grant.access == access::WORKSPACE
}

/// Record a minted token for `port`; with `replace_login` (`access: "off"`) a login grant
/// is removed first, without it a login grant refuses the token (409).
pub async fn record_token(
    state: &AppState,
    sandbox_id: &str,
    port: u16,
    expires_at: String,
    embed_origins: Vec<String>,
    replace_login: bool,
) -> Result<(), ApiError> {
    state
        .store
        .modify_grant(sandbox_id, port, move |stored| {
            if let Some(login) = stored.filter(is_login)
                && !replace_login
            {
                return Err(ApiError::Conflict(format!(
                    "port {port} is shared with LangSmith login ({}); tokens are refused while \
                     that grant is in place — pass access \"off\" to remove it and mint a token",
                    login.access
                )));
            }
            Ok(Some(ServiceGrant {
                port: port.into(),
                access: access::TOKEN.into(),
                created_at: now(),
                created_by: None,
                embed_origins: (!embed_origins.is_empty()).then_some(embed_origins),
                expires_at: Some(expires_at),
            }))
        })
        .await?;
    Ok(())
}

/// Put a login grant on `port`, replacing whatever was there (its origins list included).
pub async fn grant_login(
    state: &AppState,
    sandbox_id: &str,
    port: u16,
    access: String,
    embed_origins: Vec<String>,
) -> Result<(), ApiError> {
    state
        .store
        .modify_grant(sandbox_id, port, move |stored| {
            let created_at = stored
                .filter(|g| g.access == access)
                .map_or_else(now, |g| g.created_at);
            Ok::<_, ApiError>(Some(ServiceGrant {
                port: port.into(),
                access,
                created_at,
                created_by: None,
                embed_origins: Some(embed_origins),
                expires_at: None,
            }))
        })
        .await?;
    Ok(())
}

/// The login grant of `port`, if there is one.
pub async fn login_grant(
    state: &AppState,
    sandbox_id: &str,
    port: u16,
) -> Result<Option<ServiceGrant>, ApiError> {
    Ok(state.store.grant(sandbox_id, port).await?.filter(is_login))
}

/// The grants to list: login grants, and token grants that have not expired.
pub async fn listed(state: &AppState, sandbox_id: &str) -> Result<Vec<ServiceGrant>, ApiError> {
    let current = chrono::Utc::now();
    Ok(state
        .store
        .grants(sandbox_id)
        .await?
        .into_iter()
        .filter(|g| {
            is_login(g)
                || g.expires_at
                    .as_deref()
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .is_some_and(|t| t > current)
        })
        .collect())
}
