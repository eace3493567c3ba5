//! A host program copied into a sandbox with its shared libraries and run through their
//! loader, so it works in any image (the tiny one has no libc at all).

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use super::api::Api;
use super::process::run_ok;
use super::server::API_KEY;

/// Upload `data` to `path` in the sandbox whose data plane is `dataplane`.
pub fn upload(api: &Api, dataplane: &str, path: &str, data: Vec<u8>) {
    let form = reqwest::blocking::multipart::Form::new().part(
        "file",
        reqwest::blocking::multipart::Part::bytes(data).file_name("f"),
    );
    let resp = api
        .raw()
        .post(format!("{dataplane}/upload"))
        .query(&[("path", path)])
        .header("X-Api-Key", API_KEY)
        .multipart(form)
        .send()
        .unwrap();
    assert!(
        resp.status().is_success(),
        "upload {path}: {}",
        resp.status()
    );
}

/// Copy the host program `binary` and the libraries `ldd` names for it into `dir` of the
/// sandbox; returns the command line that runs it there (append its arguments).
pub fn install(api: &Api, sandbox: &Value, binary: &str, dir: &str) -> String {
    let dataplane = sandbox["dataplane_url"].as_str().unwrap();
    let binary = std::fs::canonicalize(binary).unwrap();
    let ldd = run_ok(Command::new("ldd").arg(&binary));
    let mut loader = None;
    for line in ldd.lines().map(str::trim) {
        let (name, path) = match line.split_once(" => ") {
            Some((name, rest)) => (name.to_string(), rest.split(" (").next().unwrap_or(rest)),
            None if line.starts_with('/') => {
                let path = line.split(" (").next().unwrap_or(line);
                let name = file_name(Path::new(path));
                loader = Some(name.clone());
                (name, path)
            }
            None => continue, // linux-vdso
        };
        upload(
            api,
            dataplane,
            &format!("{dir}/{name}"),
            std::fs::read(path).unwrap(),
        );
    }
    let loader = loader.expect("ldd names the dynamic loader");
    let program = file_name(&binary);
    upload(
        api,
        dataplane,
        &format!("{dir}/{program}"),
        std::fs::read(&binary).unwrap(),
    );
    let chmod = api.exec(sandbox, &format!("chmod 755 {dir}/{loader}"));
    assert_eq!(chmod.exit_code, 0, "{}", chmod.stderr);
    format!("{dir}/{loader} --library-path {dir} {dir}/{program}")
}

fn file_name(path: &Path) -> String {
    path.file_name().unwrap().to_str().unwrap().to_string()
}
