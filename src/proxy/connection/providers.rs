//! Provider rules on the requests of an opened connection: a gcp rule's bearer token, an
//! aws rule's SigV4 signature. Each replaces whatever credential the sandbox sent.

use aws_sigv4::http_request::SignableBody;
use http::header::{AUTHORIZATION, HOST};
use http::{HeaderValue, Request, StatusCode};
use http_body_util::{BodyExt, Full};

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

/// Apply the provider rule that covers `host` (if one does) to `req`: the rule's name (none
/// when no rule covers it), and the request to send or why there is none. `target` is
/// `(host, authority, path_and_query)`.
pub(super) async fn apply(
    injection: &Injection,
    token_http: &reqwest::Client,
    mut req: Request<OutBody>,
    target: (&str, &str, &str),
) -> (Option<String>, Result<Request<OutBody>, Refused>) {
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
        Some((rule, keys)) => (Some(rule.to_string()), sign_aws(req, keys, target).await),
        None => (None, Ok(req)),
    }
}

/// `req` signed by an aws rule with `keys`: the body read and hashed when the request does
/// not declare its hash.
async fn sign_aws(
    mut req: Request<OutBody>,
    keys: &AwsCredentials,
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
    let sign = |req: &mut Request<OutBody>, body| {
        sigv4::sign_request(req, &url, keys, scope, body)
            .map_err(|e| refused(StatusCode::BAD_GATEWAY, format!("aws rule: {e}")))
    };
    match payload {
        sigv4::Payload::Hash(hash) => sign(&mut req, SignableBody::Precomputed(hash))?,
        sigv4::Payload::Unsigned => sign(&mut req, SignableBody::UnsignedPayload)?,
        sigv4::Payload::ReadBody => {
            let (parts, body) = req.into_parts();
            let limited = http_body_util::Limited::new(body, sigv4::MAX_BUFFERED);
            let bytes = limited.collect().await.map_err(|e| {
                refused(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    format!(
                        "aws rule: reading the body to sign it: {e} (bodies over {} MiB need \
                         an x-amz-content-sha256 header)",
                        sigv4::MAX_BUFFERED >> 20
                    ),
                )
            })?;
            let bytes = bytes.to_bytes();
            let mut head = Request::from_parts(parts, ());
            sigv4::sign_request(&mut head, &url, keys, scope, SignableBody::Bytes(&bytes))
                .map_err(|e| refused(StatusCode::BAD_GATEWAY, format!("aws rule: {e}")))?;
            let (parts, ()) = head.into_parts();
            let body = Full::new(bytes).map_err(|never| match never {}).boxed();
            req = Request::from_parts(parts, body);
        }
    }
    Ok(req)
}
