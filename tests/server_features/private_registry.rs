//! A real `docker-registry` on loopback that demands HTTP basic auth (bcrypt htpasswd),
//! holding the tiny test image pushed with credentials.

use std::process::{Child, Command};

use crate::common::image::build_tiny_layout;
use crate::common::process::run_ok;
use crate::common::registry::spawn;

pub struct PrivateRegistry {
    /// `127.0.0.1:PORT`
    pub host: String,
    child: Child,
    _dir: tempfile::TempDir,
}

impl PrivateRegistry {
    /// Start a registry that lets in only `user:password`, and push the tiny image to it
    /// as `private/tiny:1`.
    pub fn with_tiny_image(user: &str, password: &str) -> PrivateRegistry {
        let dir = tempfile::tempdir().unwrap();
        let hash = run_ok(Command::new("python3").args([
            "-c",
            "import crypt,sys; print(crypt.crypt(sys.argv[1], crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16)))",
            password,
        ]));
        let htpasswd = dir.path().join("htpasswd");
        std::fs::write(&htpasswd, format!("{user}:{}\n", hash.trim())).unwrap();
        let (child, host) = spawn(
            dir.path(),
            &format!(
                "auth:\n  htpasswd:\n    realm: test\n    path: {}\n",
                htpasswd.display()
            ),
        );
        let layout = dir.path().join("layout");
        let scratch = dir.path().join("scratch");
        std::fs::create_dir_all(&scratch).unwrap();
        build_tiny_layout(&layout, &scratch);
        run_ok(Command::new("skopeo").args([
            "copy",
            "--quiet",
            "--dest-tls-verify=false",
            &format!("--dest-creds={user}:{password}"),
            &format!("oci:{}:tiny", layout.display()),
            &format!("docker://{host}/private/tiny:1"),
        ]));
        PrivateRegistry {
            host,
            child,
            _dir: dir,
        }
    }
}

impl Drop for PrivateRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
