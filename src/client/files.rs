//! Data-plane file transfer: `POST {dp}/upload?path=` (multipart part `file`) and
//! `GET {dp}/download?path=`, bytes in and out.

use reqwest::multipart::{Form, Part};

use super::{Client, ClientError};

/// `{dp}` without a trailing `/`, followed by `path`.
pub fn dataplane_url(dataplane: &str, path: &str) -> String {
    format!("{}{path}", dataplane.trim_end_matches('/'))
}

impl Client {
    /// Write `data` to `path` inside the sandbox (replaces the file).
    pub async fn upload(
        &self,
        dataplane: &str,
        path: &str,
        data: Vec<u8>,
    ) -> Result<(), ClientError> {
        let file_name = path.rsplit('/').next().unwrap_or(path).to_string();
        let form = Form::new().part("file", Part::bytes(data).file_name(file_name));
        let url = dataplane_url(dataplane, "/upload");
        let resp = self
            .http_for(&url)?
            .post(url)
            .query(&[("path", path)])
            .header("X-Api-Key", self.api_key())
            .multipart(form)
            .send()
            .await?;
        check(resp).await.map(drop)
    }

    /// Read the whole file at `path` inside the sandbox.
    pub async fn download(&self, dataplane: &str, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = dataplane_url(dataplane, "/download");
        let resp = self
            .http_for(&url)?
            .get(url)
            .query(&[("path", path)])
            .header("X-Api-Key", self.api_key())
            .send()
            .await?;
        Ok(check(resp).await?.to_vec())
    }
}

/// The body of a 2xx answer, or the typed HTTP error.
async fn check(resp: reqwest::Response) -> Result<bytes::Bytes, ClientError> {
    let status = resp.status().as_u16();
    let body = resp.bytes().await?;
    if status >= 400 {
        return Err(ClientError::from_response(
            status,
            &String::from_utf8_lossy(&body),
        ));
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    #[test]
    fn dataplane_paths_join_without_double_slash() {
        assert_eq!(
            super::dataplane_url("http://h/sb/", "/upload"),
            "http://h/sb/upload"
        );
        assert_eq!(
            super::dataplane_url("http://h/sb", "/upload"),
            "http://h/sb/upload"
        );
    }
}
