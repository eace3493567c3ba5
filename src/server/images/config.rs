//! The image config: the part of an OCI / Docker image config blob that says how processes
//! in a sandbox booted from the image run (environment, working directory, user, command).

use serde::{Deserialize, Serialize};

use super::ImageError;

/// What sandboxes booted from the image run with (from the image config).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    pub env: Vec<String>,
    pub working_dir: Option<String>,
    pub user: Option<String>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
}

/// The config blob: `{"config": {"Env": [...], ...}, "rootfs": ..., ...}`. Both OCI and
/// Docker use these capitalised keys; every field may be absent or null.
#[derive(Deserialize)]
struct ConfigBlob {
    #[serde(default)]
    config: Option<RunConfig>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RunConfig {
    #[serde(default)]
    env: Option<Vec<String>>,
    #[serde(default)]
    working_dir: Option<String>,
    #[serde(default)]
    user: Option<String>,
    #[serde(default)]
    entrypoint: Option<Vec<String>>,
    #[serde(default)]
    cmd: Option<Vec<String>>,
}

/// Parse a config blob; empty strings mean "not set" as they do for Docker.
pub fn parse(blob: &[u8]) -> Result<ImageConfig, ImageError> {
    let parsed: ConfigBlob = serde_json::from_slice(blob)
        .map_err(|e| ImageError::Config(format!("the config blob is not valid JSON: {e}")))?;
    let Some(run) = parsed.config else {
        return Ok(ImageConfig::default());
    };
    let non_empty = |s: Option<String>| s.filter(|s| !s.is_empty());
    Ok(ImageConfig {
        env: run.env.unwrap_or_default(),
        working_dir: non_empty(run.working_dir),
        user: non_empty(run.user),
        entrypoint: run.entrypoint.unwrap_or_default(),
        cmd: run.cmd.unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docker_style_config_is_read() {
        let blob = br#"{"architecture":"amd64","os":"linux","config":{
            "Env":["PATH=/usr/local/bin:/usr/bin","LANG=C.UTF-8"],
            "WorkingDir":"/app","User":"1000:1000",
            "Entrypoint":null,"Cmd":["python3"],"Labels":{"a":"b"}},
            "rootfs":{"type":"layers","diff_ids":[]}}"#;
        let config = parse(blob).unwrap();
        assert_eq!(config.env.len(), 2);
        assert_eq!(config.working_dir.as_deref(), Some("/app"));
        assert_eq!(config.user.as_deref(), Some("1000:1000"));
        assert!(config.entrypoint.is_empty());
        assert_eq!(config.cmd, vec!["python3"]);
    }

    #[test]
    fn missing_and_empty_fields_are_unset() {
        assert_eq!(parse(br#"{"os":"linux"}"#).unwrap(), ImageConfig::default());
        let config = parse(br#"{"config":{"WorkingDir":"","User":""}}"#).unwrap();
        assert_eq!(config, ImageConfig::default());
        assert!(
            parse(b"not json")
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
    }
}
