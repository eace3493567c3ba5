//! A captured tree (what a sandbox's files become in a snapshot) written as ext4 keeps its
//! owners, setuid bits and hard links. Owning files by another user needs root.

use std::os::unix::fs::PermissionsExt;

use langsmith::server::images::make_ext4;

use super::build::{MIB, debugfs};

#[tokio::test]
async fn captured_trees_keep_owners_modes_and_links() {
    let scratch = tempfile::tempdir().unwrap();
    let tree = scratch.path().join("tree");
    std::fs::create_dir(&tree).unwrap();
    let tool = tree.join("tool");
    std::fs::write(&tool, "#!/bin/sh\n").unwrap();
    // chown clears setuid, so the mode goes on last.
    std::os::unix::fs::chown(&tool, Some(1000), Some(1000)).unwrap();
    std::fs::set_permissions(&tool, std::fs::Permissions::from_mode(0o4755)).unwrap();
    std::fs::hard_link(&tool, tree.join("tool-again")).unwrap();
    let image = scratch.path().join("captured.ext4");

    let used = make_ext4(&tree, 16 * MIB, &image).await.unwrap();
    assert!(used > 0 && used < 16 * MIB, "{used}");
    let stat = debugfs(&image, "stat /tool");
    assert!(stat.contains("Mode:  04755"), "{stat}");
    assert!(stat.contains("User:  1000"), "{stat}");
    assert!(stat.contains("Links: 2"), "{stat}");
}
