//! `type: "gcp"` rules: OAuth access tokens of a service account, minted by the host with
//! the key file (a JWT assertion signed with the account's key, RS256, exchanged at the
//! key's `token_uri`), cached until shortly before they expire, and set as the bearer of
//! every request to a Google API. The key never enters the sandbox; neither does a token.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use tokio::sync::Mutex;

/// How long before its expiry a token is replaced.
const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// What a token is asked to live (Google's maximum).
const LIFETIME_S: u64 = 3600;
const DEFAULT_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";

/// The parts of a service account key file the token exchange needs.
#[derive(Deserialize)]
struct KeyFile {
    client_email: String,
    private_key: String,
    #[serde(default)]
    token_uri: Option<String>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: String,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct TokenAnswer {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

/// Why a key file is unusable or a token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    // Neither carries the parser's own words: serde and the PEM reader may quote the
    // text they stopped at, which is part of the key.
    #[error(
        "the service account key is not a key file (a JSON object with client_email and \
         private_key, as the cloud console downloads it)"
    )]
    KeyFile,
    #[error("the service account's private_key is not an RSA private key in PEM form")]
    Key,
    #[error("asking {uri} for a token: {reason}")]
    Exchange { uri: String, reason: String },
}

/// The tokens of one service account for some scopes.
pub struct TokenSource {
    client_email: String,
    key: jsonwebtoken::EncodingKey,
    token_uri: String,
    scopes: Vec<String>,
    cached: Mutex<Option<(String, Instant)>>,
}

/// Never the key nor a token.
impl std::fmt::Debug for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TokenSource({})", self.client_email)
    }
}

impl TokenSource {
    /// The source for the key file `key_json` (checked now, so a bad key is refused when the
    /// configuration is applied rather than on the sandbox's first request).
    pub fn new(key_json: &str, scopes: Vec<String>) -> Result<TokenSource, TokenError> {
        let file: KeyFile = serde_json::from_str(key_json).map_err(|_| TokenError::KeyFile)?;
        let key = jsonwebtoken::EncodingKey::from_rsa_pem(file.private_key.as_bytes())
            .map_err(|_| TokenError::Key)?;
        Ok(TokenSource {
            client_email: file.client_email,
            key,
            token_uri: file
                .token_uri
                .unwrap_or_else(|| DEFAULT_TOKEN_URI.to_string()),
            scopes,
            cached: Mutex::new(None),
        })
    }

    /// A valid access token: the cached one, or a new one from the token endpoint.
    pub async fn token(&self, http: &reqwest::Client) -> Result<String, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some((token, expires)) = cached.as_ref()
            && Instant::now() + REFRESH_MARGIN < *expires
        {
            return Ok(token.clone());
        }
        let (token, lifetime) = self.exchange(http).await?;
        *cached = Some((token.clone(), Instant::now() + lifetime));
        Ok(token)
    }

    async fn exchange(&self, http: &reqwest::Client) -> Result<(String, Duration), TokenError> {
        let failed = |reason: String| TokenError::Exchange {
            uri: self.token_uri.clone(),
            reason,
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let claims = Claims {
            iss: &self.client_email,
            scope: self.scopes.join(" "),
            aud: &self.token_uri,
            iat: now,
            exp: now + LIFETIME_S,
        };
        let assertion = jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
            &claims,
            &self.key,
        )
        .map_err(|_| failed("signing the assertion with the account's key failed".into()))?;
        let encode = |v: &str| {
            percent_encoding::utf8_percent_encode(v, percent_encoding::NON_ALPHANUMERIC).to_string()
        };
        let form = format!(
            "grant_type={}&assertion={}",
            encode("urn:ietf:params:oauth:grant-type:jwt-bearer"),
            encode(&assertion)
        );
        let response = http
            .post(&self.token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
            .await
            .map_err(|e| failed(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            // The endpoint's error text says what is wrong with the account; it holds no
            // secret (the assertion is never echoed).
            let text = response.text().await.unwrap_or_default();
            return Err(failed(format!("{status}: {}", text.trim())));
        }
        // A fixed message: the parser's would quote the answer, which may hold a token.
        let answer: TokenAnswer = response.json().await.map_err(|_| {
            failed("the answer is not a token (JSON with access_token and expires_in)".into())
        })?;
        let lifetime = Duration::from_secs(answer.expires_in.unwrap_or(LIFETIME_S));
        Ok((answer.access_token, lifetime))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_key_file_is_refused_without_quoting_it() {
        for key_json in [
            r#""MARK-not-a-key-file""#,
            r#"{"client_email": "a@b.test", "private_key": "MARK-not-pem"}"#,
            r#"{"client_email": 7, "private_key": "MARK"}"#,
        ] {
            let refused = TokenSource::new(key_json, vec![]).unwrap_err().to_string();
            assert!(!refused.contains("MARK"), "{refused}");
            assert!(refused.contains("service account"), "{refused}");
        }
    }
}
