//! Provider rules on the requests of an opened connection: a gcp rule's bearer token, an
//! aws rule's SigV4 signature. Each replaces whatever credential the sandbox sent.

use std::sync::Arc;

use aws_sigv4::http_request::SignableBody;
use http::header::{AUTHORIZATION, CONTENT_LENGTH, HOST};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::proxy::injection::Injection;
use crate::proxy::origin::OutBody;
use crate::proxy::sigv4::{self, AwsCredentials};

/// Why a request was not sent: the status to answer and the reason (also logged).
pub(super) struct Refused {
    pub status: StatusCode,
    pub reason: String,
}

fn refused(status: StatusCode, reason: String) -> Refused {
    Refused { status, reason }
}

/// What a request's provider rule may use: the sandbox's rules, the server's client for
/// token endpoints, and the sandbox's budget of bytes buffered to sign (see [`sign_aws`]).
pub(super) struct Providers<'a> {
    pub injection: &'a Injection,
    pub token_http: &'a reqwest::Client,
    pub signing_budget: &'a Arc<Semaphore>,
}

/// Apply the provider rule that covers `host` (if one does) to `req`: the rule's name (none
/// when no rule covers it), and the request to send or why there is none. `target` is
/// `(host, authority, path_and_query)`.
pub(super) async fn apply(
    providers: Providers<'_>,
    mut req: Request<OutBody>,
    target: (&str, &str, &str),
) -> (Option<String>, Result<Request<OutBody>, Refused>) {
    let Providers {
        injection,
        token_http,
        signing_budget,
    } = providers;
    let host = target.0;
    if let Some((rule, tokens)) = injection.gcp_for(host) {
        let applied = match tokens.token(token_http).await {
            Ok(token) => match HeaderValue::from_str(&format!("Bearer {token}")) {
                Ok(mut value) => {
                    value.set_sensitive(true);
                    req.headers_mut().insert(AUTHORIZATION, value);
                    Ok(req)
                }
                Err(_) => Err(refused(
                    StatusCode::BAD_GATEWAY,
                    "gcp rule: the token endpoint answered a token that cannot be a header".into(),
                )),
            },
            Err(e) => Err(refused(StatusCode::BAD_GATEWAY, format!("gcp rule: {e}"))),
        };
        return (Some(rule.to_string()), applied);
    }
    match injection.aws_for(host) {
        Some((rule, keys)) => (
            Some(rule.to_string()),
            sign_aws(req, keys, signing_budget, target).await,
        ),
        None => (None, Ok(req)),
    }
}

/// `req` signed by an aws rule with `keys`. A request that does not declare its payload
/// hash has its body read whole and hashed (on a blocking thread, not an async worker).
/// Those bodies are held, until sent, under the sandbox's `budget` of bytes: a request
/// waits for room rather than let one sandbox's many streams hold gigabytes.
async fn sign_aws(
    mut req: Request<OutBody>,
    keys: &AwsCredentials,
    budget: &Arc<Semaphore>,
    (host, authority, path_and_query): (&str, &str, &str),
) -> Result<Request<OutBody>, Refused> {
    let bad = |e: sigv4::SignError| refused(StatusCode::BAD_REQUEST, format!("aws rule: {e}"));
    let scope = sigv4::scope(req.headers(), host).map_err(bad)?;
    let payload = sigv4::payload(req.headers()).map_err(bad)?;
    if let Ok(value) = authority.parse() {
        req.headers_mut().insert(HOST, value);
    }
    let url = format!("https://{authority}{path_and_query}");
    let scope = (scope.0.as_str(), scope.1.as_str());
    let body = match payload {
        sigv4::Payload::Hash(hash) => SignableBody::Precomputed(hash),
        sigv4::Payload::Unsigned => SignableBody::UnsignedPayload,
        sigv4::Payload::ReadBody => {
            let too_large = || {
                refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "aws rule: the body is over {} MiB, too large to read and sign (send \
                         an x-amz-content-sha256 header with its hash, or UNSIGNED-PAYLOAD)",
                        sigv4::MAX_BUFFERED >> 20
                    ),
                )
            };
            let declared = req
                .headers()
                .get(CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
            let reserved = match declared {
                Some(length) if length > sigv4::MAX_BUFFERED => return Err(too_large()),
                Some(length) => length,
                None => sigv4::MAX_BUFFERED,
            };
            let permit = budget
                .clone()
                .acquire_many_owned(reserved as u32)
                .await
                .map_err(|_| refused(StatusCode::SERVICE_UNAVAILABLE, "shutting down".into()))?;
            let (parts, body) = req.into_parts();
            let bytes = http_body_util::Limited::new(body, reserved)
                .collect()
                .await
                .map_err(|_| too_large())?
                .to_bytes();
            let hashed = bytes.clone();
            let hash = tokio::task::spawn_blocking(move || hex::encode(Sha256::digest(&hashed)))
                .await
                .map_err(|e| refused(StatusCode::BAD_GATEWAY, format!("aws rule: {e}")))?;
            // The body owns the permit, so its bytes count against the budget until sent.
            let body = Full::new(bytes)
                .map_err(|never| match never {})
                .map_frame(move |frame| {
                    let _held = &permit;
                    frame
                })
                .boxed();
            req = Request::from_parts(parts, body);
            SignableBody::Precomputed(hash)
        }
    };
    sigv4::sign_request(&mut req, &url, keys, scope, body)
        .map_err(|e| refused(StatusCode::BAD_GATEWAY, format!("aws rule: {e}")))?;
    Ok(req)
}
