//! `/grep` over a real tree: literal matching, glob filters, binary files, the bounds on long
//! lines and special files, and files swapped between the walk and the open.

use std::os::unix::fs::symlink;
use std::path::Path;
use std::time::Duration;

use serde_json::json;

use super::search::{paths, tree};
use super::{TestAgent, release_fifo};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grep_finds_literal_lines_in_text_files_with_glob_filters() {
    let agent = TestAgent::start().await;
    let root = tree(&agent);
    let (status, all) = agent
        .post_json("/grep", json!({"pattern": "TODO", "path": root}))
        .await;
    assert_eq!(status, 200, "{all}");
    let mut found: Vec<(String, u64, String)> = all["matches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let rel = m["path"]
                .as_str()
                .unwrap()
                .strip_prefix(&format!("{root}/"))
                .unwrap()
                .to_string();
            (
                rel,
                m["line"].as_u64().unwrap(),
                m["text"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    found.sort();
    assert_eq!(
        found,
        [
            ("a.py".into(), 2, "# TODO top".into()),
            ("pkg/b.py".into(), 2, "# TODO nested".into()),
            ("pkg/notes.txt".into(), 1, "TODO in text".into()),
        ],
        "case-sensitive literal; binary files and links out of the root are skipped"
    );

    let (_, by_name) = agent
        .post_json(
            "/grep",
            json!({"pattern": "TODO", "path": root, "glob": "*.py"}),
        )
        .await;
    assert_eq!(
        paths(&by_name),
        [format!("{root}/a.py"), format!("{root}/pkg/b.py")]
    );
    let (_, by_path) = agent
        .post_json(
            "/grep",
            json!({"pattern": "TODO", "path": root, "glob": "pkg/*.py"}),
        )
        .await;
    assert_eq!(paths(&by_path), [format!("{root}/pkg/b.py")]);
    let (_, regex_chars) = agent
        .post_json("/grep", json!({"pattern": "x = 1", "path": root}))
        .await;
    assert_eq!(
        paths(&regex_chars),
        [format!("{root}/pkg/b.py")],
        "no regex: spaces and `=` are literal"
    );
    let (_, one_file) = agent
        .post_json(
            "/grep",
            json!({"pattern": "import", "path": format!("{root}/a.py")}),
        )
        .await;
    assert_eq!(
        one_file["matches"],
        json!([{"path": format!("{root}/a.py"), "line": 1, "text": "import os"}])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlong_lines_are_bounded_and_special_files_refused() {
    let agent = TestAgent::start().await;
    let dir = agent.path("long");
    std::fs::create_dir_all(&dir).unwrap();
    let mut content = b"NEEDLE first ".to_vec();
    content.resize(3 << 20, b'x'); // line 1: 3 MiB, the needle at its start
    content.extend_from_slice(b"NEEDLE hidden past the searched part\nNEEDLE line 2\n");
    std::fs::write(format!("{dir}/big.txt"), &content).unwrap();
    let (status, answer) = agent
        .post_json("/grep", json!({"pattern": "NEEDLE", "path": dir}))
        .await;
    assert_eq!(status, 200, "{answer}");
    let matches = answer["matches"].as_array().unwrap();
    let lines: Vec<u64> = matches
        .iter()
        .map(|m| m["line"].as_u64().unwrap())
        .collect();
    assert_eq!(
        lines,
        [1, 2],
        "the overlong line is counted once and the next one found"
    );
    let text = matches[0]["text"].as_str().unwrap();
    assert!(
        text.starts_with("NEEDLE first ") && text.len() == crate::agent::grep::MAX_TEXT,
        "{}",
        text.len()
    );
    assert_eq!(matches[1]["text"], "NEEDLE line 2");

    let fifo = agent.fifo("fifo");
    let (status, answer) = agent
        .post_json("/grep", json!({"pattern": "x", "path": fifo}))
        .await;
    assert_eq!(
        (status, &answer["detail"]["error"]),
        (400, &json!("InvalidRequest")),
        "{answer}"
    );
}

/// What a walk listed may be swapped before grep opens it: a regular file replaced by a FIFO,
/// by a link out of the root, or a directory on the way replaced by such a link. Opening each
/// walked file the way grep does neither waits for a FIFO's writer nor follows either link.
#[test]
fn a_walked_file_swapped_for_a_fifo_or_a_link_is_neither_waited_on_nor_followed() {
    use crate::agent::regular_file::{OpenError, open_beneath, open_dir};

    let dir = tempfile::tempdir().unwrap();
    let (root, outside) = (dir.path().join("root"), dir.path().join("outside"));
    std::fs::create_dir_all(&root).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(outside.join("secret.py"), b"# TODO outside\n").unwrap();
    std::fs::write(root.join("plain.py"), b"# TODO inside\n").unwrap();
    let fifo = root.join("a.py");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    symlink(outside.join("secret.py"), root.join("b.py")).unwrap();
    symlink(&outside, root.join("pkg")).unwrap();

    let (tx, rx) = std::sync::mpsc::channel();
    let walked_root = root.clone();
    std::thread::spawn(move || {
        let dir = open_dir(&walked_root).unwrap();
        let outcomes: Vec<Result<(), String>> = ["plain.py", "a.py", "b.py", "pkg/secret.py"]
            .iter()
            .map(|relative| match open_beneath(&dir, Path::new(relative)) {
                Ok(_) => Ok(()),
                Err(OpenError::Io(e)) => Err(format!("{:?}", e.raw_os_error())),
                Err(e) => Err(e.to_string()),
            })
            .collect();
        let _ = tx.send(outcomes);
    });
    // A generous bound on what must be immediate: the failure this test exists to catch is
    // a wait without end.
    let outcomes = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|_| {
            release_fifo(&fifo);
            panic!("opening a FIFO the walk took for a file waited for a writer");
        });
    let eloop = Err(format!("{:?}", Some(libc::ELOOP)));
    assert_eq!(
        outcomes,
        [
            Ok(()),
            Err("it is a FIFO, not a regular file".into()),
            eloop.clone(),
            eloop,
        ],
        "only the regular file beneath the root opens"
    );
}
