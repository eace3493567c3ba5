//! A real `ssh-agent` for forwarding tests (the console's and the agent's): in the foreground,
//! holding one generated ed25519 key.

use std::io::BufRead;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

pub struct LocalAgent {
    _dir: tempfile::TempDir,
    child: Child,
    pub socket: PathBuf,
    /// `ssh-ed25519 AAAA…` without the comment.
    pub public_key: String,
}

impl LocalAgent {
    pub fn start() -> LocalAgent {
        let dir = tempfile::tempdir().unwrap();
        let key = dir.path().join("id_ed25519");
        let status = Command::new("ssh-keygen")
            .args(["-q", "-t", "ed25519", "-N", "", "-C", "forward-test", "-f"])
            .arg(&key)
            .status()
            .expect("ssh-keygen (openssh-client) installed");
        assert!(status.success(), "ssh-keygen failed");
        let socket = dir.path().join("agent.sock");
        let mut child = Command::new("ssh-agent")
            .arg("-D")
            .arg("-a")
            .arg(&socket)
            .stdout(Stdio::piped())
            .spawn()
            .expect("ssh-agent (openssh-client) installed");
        // It prints its environment line once the socket is listening.
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert!(line.starts_with("SSH_AUTH_SOCK="), "{line}");
        let added = Command::new("ssh-add")
            .arg(&key)
            .env("SSH_AUTH_SOCK", &socket)
            .stderr(Stdio::null())
            .status()
            .unwrap();
        assert!(added.success(), "ssh-add failed");
        let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let public_key = public.split(' ').take(2).collect::<Vec<_>>().join(" ");
        LocalAgent {
            _dir: dir,
            child,
            socket,
            public_key,
        }
    }
}

impl Drop for LocalAgent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
