//! `type: "aws"` rules: requests to AWS endpoints re-signed with SigV4 (`aws-sigv4`, the AWS
//! SDK's own signer) under the real static keys, which never enter the sandbox. The sandbox
//! signs with placeholder keys; its signature is discarded.
//!
//! Region and service come from the credential scope of the sandbox's own signature
//! (`Credential=AKID/DATE/REGION/SERVICE/aws4_request`), exactly as its SDK chose them; an
//! unsigned request gets them from the endpoint's name (`SERVICE.REGION.amazonaws.com`, or
//! `SERVICE.amazonaws.com` for a global one in `us-east-1`). The proxy sets no region of its
//! own. The payload hash is the request's `x-amz-content-sha256` when it has one (S3), else
//! the body is read (up to [`MAX_BUFFERED`], and [`SIGNING_BUDGET`] across a sandbox's
//! requests) and hashed. Chunk-signed uploads (`STREAMING-…`) cannot be re-signed: each
//! chunk's signature chains to the sandbox's.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use http::{HeaderMap, Request};

/// The largest body read to hash it for a signature.
pub const MAX_BUFFERED: usize = 32 << 20;
/// The bytes of bodies read to sign them that one sandbox's requests may hold at once.
pub const SIGNING_BUDGET: usize = 2 * MAX_BUFFERED;

/// Headers of the sandbox's own signature, dropped before signing.
const DROPPED: [&str; 3] = ["authorization", "x-amz-date", "x-amz-security-token"];

/// Real static keys. Never printed.
pub struct AwsCredentials {
    pub access_key_id: String,
    pub secret_access_key: String,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AwsCredentials(…)")
    }
}

/// What the request says of its payload hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Payload {
    /// `x-amz-content-sha256` holds the hash.
    Hash(String),
    /// `UNSIGNED-PAYLOAD`.
    Unsigned,
    /// Nothing: the body must be read and hashed.
    ReadBody,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    #[error(
        "a chunk-signed upload (x-amz-content-sha256: {0}) cannot be re-signed by the proxy; \
         configure the client for UNSIGNED-PAYLOAD or a plain payload hash"
    )]
    Streaming(String),
    #[error(
        "the request names no region or service: sign it (with any keys) or use an endpoint \
         such as SERVICE.REGION.amazonaws.com"
    )]
    NoScope,
    #[error("signing: {0}")]
    Signer(String),
}

/// The payload hash the request declares.
pub fn payload(headers: &HeaderMap) -> Result<Payload, SignError> {
    let Some(value) = headers
        .get("x-amz-content-sha256")
        .and_then(|v| v.to_str().ok())
    else {
        return Ok(Payload::ReadBody);
    };
    if value == "UNSIGNED-PAYLOAD" {
        Ok(Payload::Unsigned)
    } else if value.starts_with("STREAMING-") {
        Err(SignError::Streaming(value.to_string()))
    } else {
        Ok(Payload::Hash(value.to_string()))
    }
}

/// `(region, service)` of a request to `host`.
pub fn scope(headers: &HeaderMap, host: &str) -> Result<(String, String), SignError> {
    let from_signature = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|auth| auth.split("Credential=").nth(1))
        .and_then(|credential| {
            let credential = credential.split([',', ' ']).next()?;
            // AKID/DATE/REGION/SERVICE/aws4_request
            let parts: Vec<&str> = credential.split('/').collect();
            (parts.len() == 5 && parts[4] == "aws4_request")
                .then(|| (parts[2].to_string(), parts[3].to_string()))
        });
    if let Some(scope) = from_signature {
        return Ok(scope);
    }
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    let labels = host
        .strip_suffix(".amazonaws.com")
        .or_else(|| host.strip_suffix(".amazonaws.com.cn"))
        .ok_or(SignError::NoScope)?;
    match labels.split('.').collect::<Vec<_>>()[..] {
        [service] => Ok(("us-east-1".into(), service.into())),
        [service, region] => Ok((region.into(), service.into())),
        _ => Err(SignError::NoScope),
    }
}

/// Sign `request` (whose headers include `host`) for `url`, the absolute URL it goes to,
/// replacing any signature it carries.
pub fn sign_request<B>(
    request: &mut Request<B>,
    url: &str,
    credentials: &AwsCredentials,
    (region, service): (&str, &str),
    body: SignableBody<'_>,
) -> Result<(), SignError> {
    for name in DROPPED {
        request.headers_mut().remove(name);
    }
    let identity = Credentials::new(
        credentials.access_key_id.clone(),
        credentials.secret_access_key.clone(),
        None,
        None,
        "langsmith egress proxy",
    )
    .into();
    let mut settings = SigningSettings::default();
    if service == "s3" {
        // S3 signs the path as sent, neither normalised nor encoded twice (as its SDKs do).
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        settings.percent_encoding_mode = PercentEncodingMode::Single;
    }
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(SystemTime::now())
        .settings(settings)
        .build()
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into();
    let headers: Vec<(&str, &str)> = request
        .headers()
        .iter()
        .filter_map(|(name, value)| Some((name.as_str(), value.to_str().ok()?)))
        .collect();
    let signable = SignableRequest::new(request.method().as_str(), url, headers.into_iter(), body)
        .map_err(|e| SignError::Signer(e.to_string()))?;
    let (instructions, _) = sign(signable, &params)
        .map_err(|e| SignError::Signer(e.to_string()))?
        .into_parts();
    instructions.apply_to_request_http1x(request);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.parse().unwrap(), v.parse().unwrap()))
            .collect()
    }

    #[test]
    fn the_scope_is_the_sandboxs_own_or_the_endpoints() {
        let signed = headers(&[(
            "authorization",
            "AWS4-HMAC-SHA256 Credential=PLACEHOLDER/20260101/eu-west-3/bedrock/aws4_request, \
             SignedHeaders=host;x-amz-date, Signature=00",
        )]);
        assert_eq!(
            scope(&signed, "bedrock-runtime.eu-west-3.amazonaws.com").unwrap(),
            ("eu-west-3".into(), "bedrock".into())
        );
        let none = HeaderMap::new();
        assert_eq!(
            scope(&none, "sqs.ap-south-1.amazonaws.com").unwrap(),
            ("ap-south-1".into(), "sqs".into())
        );
        assert_eq!(
            scope(&none, "sts.amazonaws.com").unwrap(),
            ("us-east-1".into(), "sts".into())
        );
        assert_eq!(scope(&none, "a.b.c.amazonaws.com"), Err(SignError::NoScope));
    }

    #[test]
    fn the_payload_hash_is_taken_from_the_request_unless_chunk_signed() {
        let hash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            payload(&headers(&[("x-amz-content-sha256", hash)])),
            Ok(Payload::Hash(hash.into()))
        );
        assert_eq!(
            payload(&headers(&[("x-amz-content-sha256", "UNSIGNED-PAYLOAD")])),
            Ok(Payload::Unsigned)
        );
        assert!(matches!(
            payload(&headers(&[(
                "x-amz-content-sha256",
                "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
            )])),
            Err(SignError::Streaming(_))
        ));
        assert_eq!(payload(&HeaderMap::new()), Ok(Payload::ReadBody));
    }

    #[test]
    fn a_signature_replaces_the_sandboxs_and_carries_the_real_key_id() {
        let mut request = Request::builder()
            .method("GET")
            .uri("/bucket/key")
            .header("host", "s3.us-east-1.amazonaws.com")
            .header("authorization", "AWS4-HMAC-SHA256 Credential=PLACEHOLDER/x")
            .header("x-amz-security-token", "placeholder-token")
            .body(())
            .unwrap();
        let credentials = AwsCredentials {
            access_key_id: "AKIDREAL".into(),
            secret_access_key: "real-secret".into(),
        };
        sign_request(
            &mut request,
            "https://s3.us-east-1.amazonaws.com/bucket/key",
            &credentials,
            ("us-east-1", "s3"),
            SignableBody::UnsignedPayload,
        )
        .unwrap();
        let auth = request.headers()["authorization"].to_str().unwrap();
        assert!(
            auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDREAL/"),
            "{auth}"
        );
        assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
        assert!(request.headers().contains_key("x-amz-date"));
        assert!(!request.headers().contains_key("x-amz-security-token"));
        assert!(!format!("{credentials:?}").contains("real-secret"));
    }
}
