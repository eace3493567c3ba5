//! Service URLs and download links: minting them (`POST …/boxes/{name}/service-url`,
//! `…/download-url`), listing the ports a sandbox shares (`GET …/service-urls`) and
//! withdrawing those grants (`DELETE …/service-urls[?port=N]`). Control-plane calls like any
//! other; the links they answer are used without credentials, by whoever holds them.

use reqwest::Method;

use super::{Client, ClientError, NO_BODY, REQUEST_TIMEOUT, segment};
use crate::api::service::{
    DownloadUrl, DownloadUrlRequest, ServiceGrant, ServiceGrantList, ServiceUrl, ServiceUrlRequest,
};

/// Most pages one listing follows: a bound against a server that never stops paging.
const MAX_GRANT_PAGES: usize = 100;

impl Client {
    /// `POST /boxes/{name}/service-url`: a token link (default) or a login grant (`access`).
    pub async fn service_url(
        &self,
        name: &str,
        req: &ServiceUrlRequest,
    ) -> Result<ServiceUrl, ClientError> {
        let path = format!("/boxes/{}/service-url", segment(name));
        self.json(Method::POST, &path, Some(req), REQUEST_TIMEOUT)
            .await
    }

    /// `POST /boxes/{name}/download-url`: a link to one file of the sandbox.
    pub async fn download_url(
        &self,
        name: &str,
        req: &DownloadUrlRequest,
    ) -> Result<DownloadUrl, ClientError> {
        let path = format!("/boxes/{}/download-url", segment(name));
        self.json(Method::POST, &path, Some(req), REQUEST_TIMEOUT)
            .await
    }

    /// `GET /boxes/{name}/service-urls`, every page: the ports the sandbox shares and how
    /// (live token grants and login grants).
    pub async fn service_grants(&self, name: &str) -> Result<Vec<ServiceGrant>, ClientError> {
        let base = format!("/boxes/{}/service-urls", segment(name));
        let mut grants = Vec::new();
        let mut cursor: Option<String> = None;
        for _ in 0..MAX_GRANT_PAGES {
            let path = match &cursor {
                Some(c) => format!("{base}?cursor={}", segment(c)),
                None => base.clone(),
            };
            let page: ServiceGrantList = self
                .json(Method::GET, &path, NO_BODY, REQUEST_TIMEOUT)
                .await?;
            grants.extend(page.items);
            match page.next_cursor.filter(|c| !c.is_empty()) {
                Some(next) if cursor.as_ref() != Some(&next) => cursor = Some(next),
                _ => return Ok(grants),
            }
        }
        Err(ClientError::Protocol(format!(
            "listing service URLs: more than {MAX_GRANT_PAGES} pages"
        )))
    }

    /// `DELETE /boxes/{name}/service-urls[?port=N]`: stop sharing one port, or every port.
    /// Login links stop at once; tokens already minted stay valid until they expire.
    pub async fn delete_service_grants(
        &self,
        name: &str,
        port: Option<u16>,
    ) -> Result<(), ClientError> {
        let mut path = format!("/boxes/{}/service-urls", segment(name));
        if let Some(port) = port {
            path.push_str(&format!("?port={port}"));
        }
        self.send(Method::DELETE, &path, NO_BODY, REQUEST_TIMEOUT)
            .await
            .map(drop)
    }
}
