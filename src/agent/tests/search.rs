//! `/glob` (and the errors and caps `/grep` shares with it) over a real tree in a temporary
//! directory.

use std::os::unix::fs::symlink;

use serde_json::{Value, json};

use super::TestAgent;

/// A small tree: sources at several depths, a binary file, and a link leading out of it.
pub(super) fn tree(agent: &TestAgent) -> String {
    let root = agent.path("tree");
    let write = |rel: &str, content: &[u8]| {
        let path = std::path::Path::new(&root).join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    };
    write("a.py", b"import os\n# TODO top\n");
    write("pkg/b.py", b"x = 1\r\n# TODO nested\r\n");
    write("pkg/deep/c.py", b"# todo lower case\n");
    write("pkg/notes.txt", b"TODO in text\n");
    write("blob.bin", b"TODO\0binary");
    std::fs::create_dir_all(agent.path("outside")).unwrap();
    std::fs::write(agent.path("outside/secret.py"), b"# TODO outside\n").unwrap();
    symlink(agent.path("outside"), format!("{root}/escape")).unwrap();
    root
}

pub(super) fn paths(answer: &Value) -> Vec<String> {
    let mut paths: Vec<String> = answer["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["path"].as_str().unwrap().to_string())
        .collect();
    paths.sort();
    paths
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glob_matches_relative_paths_and_never_leaves_the_root() {
    let agent = TestAgent::start().await;
    let root = tree(&agent);
    let (status, all_py) = agent
        .post_json("/glob", json!({"pattern": "**/*.py", "path": root}))
        .await;
    assert_eq!(status, 200, "{all_py}");
    let expected: Vec<String> = ["a.py", "pkg/b.py", "pkg/deep/c.py"]
        .iter()
        .map(|rel| format!("{root}/{rel}"))
        .collect();
    assert_eq!(
        paths(&all_py),
        expected,
        "links are not followed out of the root"
    );
    assert_eq!(all_py["truncated"], false);

    let (_, listing) = agent
        .post_json("/glob", json!({"pattern": "*", "path": format!("{root}/")}))
        .await;
    let names: Vec<String> = paths(&listing)
        .iter()
        .map(|p| p.rsplit('/').next().unwrap().to_string())
        .collect();
    assert_eq!(
        names,
        ["a.py", "blob.bin", "escape", "pkg"],
        "ls: immediate entries only"
    );
    let entries = listing["matches"].as_array().unwrap();
    let pkg = entries
        .iter()
        .find(|m| m["path"] == format!("{root}/pkg"))
        .unwrap();
    assert_eq!(pkg["is_dir"], true);
    let a = entries
        .iter()
        .find(|m| m["path"] == format!("{root}/a.py"))
        .unwrap();
    assert_eq!(
        (a["is_dir"].clone(), a["size_bytes"].clone()),
        (json!(false), json!(21))
    );
    let stamp = a["modified_at"].as_str().unwrap();
    assert!(
        chrono::DateTime::parse_from_rfc3339(stamp).is_ok() && stamp.ends_with('Z'),
        "{stamp}"
    );

    let (_, one_level) = agent
        .post_json("/glob", json!({"pattern": "pkg/?.py", "path": root}))
        .await;
    assert_eq!(
        paths(&one_level),
        [format!("{root}/pkg/b.py")],
        "`?` and `*` stay within a segment"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn glob_and_grep_cap_results_and_say_so() {
    let agent = TestAgent::start().await;
    let root = tree(&agent);
    let (_, capped) = agent
        .post_json("/glob", json!({"pattern": "**", "path": root, "limit": 2}))
        .await;
    assert_eq!(
        (
            capped["matches"].as_array().unwrap().len(),
            &capped["truncated"]
        ),
        (2, &json!(true))
    );
    let (_, capped) = agent
        .post_json(
            "/grep",
            json!({"pattern": "TODO", "path": root, "limit": 1}),
        )
        .await;
    assert_eq!(
        (
            capped["matches"].as_array().unwrap().len(),
            &capped["truncated"]
        ),
        (1, &json!(true))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_patterns_and_paths_get_clear_errors() {
    let agent = TestAgent::start().await;
    let root = tree(&agent);
    let cases = [
        (
            "/glob",
            json!({"pattern": "../*", "path": root}),
            400,
            "InvalidRequest",
            "`..`",
        ),
        (
            "/glob",
            json!({"pattern": "/etc/*", "path": root}),
            400,
            "InvalidRequest",
            "relative",
        ),
        (
            "/glob",
            json!({"pattern": "[a", "path": root}),
            400,
            "InvalidRequest",
            "not a valid glob",
        ),
        (
            "/glob",
            json!({"pattern": "*", "path": "relative/dir"}),
            400,
            "InvalidRequest",
            "absolute",
        ),
        (
            "/glob",
            json!({"pattern": "*", "path": format!("{root}/missing")}),
            404,
            "FileNotFound",
            "does not exist",
        ),
        (
            "/glob",
            json!({"pattern": "*", "path": format!("{root}/a.py")}),
            400,
            "ReadError",
            "not a directory",
        ),
        (
            "/glob",
            json!({"pattern": "*", "path": root, "limit": 0}),
            400,
            "InvalidRequest",
            "limit",
        ),
        (
            "/glob",
            json!({"path": root}),
            400,
            "InvalidRequest",
            "expected",
        ),
        (
            "/grep",
            json!({"pattern": "", "path": root}),
            400,
            "InvalidRequest",
            "empty",
        ),
        (
            "/grep",
            json!({"pattern": "x", "path": root, "glob": "../x"}),
            400,
            "InvalidRequest",
            "`..`",
        ),
        (
            "/grep",
            json!({"pattern": "x", "path": format!("{root}/missing")}),
            404,
            "FileNotFound",
            "does not exist",
        ),
    ];
    for (uri, body, status, kind, says) in cases {
        let (got, answer) = agent.post_json(uri, body.clone()).await;
        assert_eq!(got, status, "{uri} {body}: {answer}");
        assert_eq!(answer["detail"]["error"], kind, "{uri} {body}: {answer}");
        let message = answer["detail"]["message"].as_str().unwrap();
        assert!(message.contains(says), "{uri} {body}: {message}");
    }
}
