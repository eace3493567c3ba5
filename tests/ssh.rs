//! `langsmith sandbox ssh-setup`, then real OpenSSH (`ssh`, `scp`, `rsync`, `sftp`, `ssh -L`)
//! into sandboxes of the default snapshot through the `ProxyCommand` it writes, which runs
//! `langsmith sandbox tunnel --stdio` and finds its API key in the CLI's credentials file.
//!
//! `HOME` is a temporary directory for the CLI and for OpenSSH; OpenSSH takes `~` from the
//! password database rather than `$HOME`, so every OpenSSH command is given `-F
//! $HOME/.ssh/config` (which itself names absolute paths only). The environment of OpenSSH
//! holds no API key and no endpoint: the ProxyCommand must find both on its own.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::common::api::Api;
use crate::common::cli::{Cli, CliOutput};
use crate::common::image;
use crate::common::process::{die_with_parent, free_port, run_ok, wait_for};
use crate::common::server::{API_KEY, TestServer};

/// A home directory with an ed25519 key pair in `.ssh`.
struct Home {
    dir: tempfile::TempDir,
}

impl Home {
    fn new() -> Home {
        let dir = tempfile::tempdir().unwrap();
        let ssh = dir.path().join(".ssh");
        std::fs::create_dir(&ssh).unwrap();
        run_ok(
            Command::new("ssh-keygen")
                .args([
                    "-q",
                    "-t",
                    "ed25519",
                    "-N",
                    "",
                    "-C",
                    "test@ssh-setup",
                    "-f",
                ])
                .arg(ssh.join("id_ed25519")),
        );
        Home { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn file(&self, rel: &str) -> PathBuf {
        self.path().join(rel)
    }

    fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.file(rel)).unwrap()
    }

    /// `langsmith sandbox ssh-setup NAME` with this home.
    fn ssh_setup(&self, server: &TestServer, name: &str) -> CliOutput {
        Cli::new(server)
            .env("HOME", self.path())
            .env_remove("XDG_CONFIG_HOME")
            .args(&["sandbox", "ssh-setup", name])
            .run()
    }

    /// An OpenSSH program with this home's config, never prompting, and no credentials of
    /// the test's own environment.
    fn openssh(&self, program: &str) -> Command {
        let mut cmd = Command::new(program);
        self.openssh_env(&mut cmd);
        cmd.arg("-F").arg(self.file(".ssh/config"));
        cmd.args(["-o", "BatchMode=yes"]);
        // OpenSSH finds default keys through the passwd entry, not $HOME, and the block names
        // no IdentityFile (as GA's), so the test home's key is named here.
        cmd.arg("-o").arg(format!(
            "IdentityFile={}",
            self.file(".ssh/id_ed25519").display()
        ));
        cmd
    }

    fn openssh_env(&self, cmd: &mut Command) {
        cmd.env("HOME", self.path())
            .env_remove("XDG_CONFIG_HOME")
            .env_remove("LANGSMITH_API_KEY")
            .env_remove("LANGSMITH_ENDPOINT")
            .env_remove("LANGSMITH_STATE_DIR")
            .env_remove("SSH_AUTH_SOCK")
            .stdin(Stdio::null());
        die_with_parent(cmd);
    }

    /// `ssh sandbox-NAME COMMAND`, its stdout.
    fn ssh(&self, name: &str, command: &str) -> String {
        run_ok(
            self.openssh("ssh")
                .arg(format!("sandbox-{name}"))
                .arg(command),
        )
    }
}

/// The lines ssh-setup prints on success, after the line about the config.
fn connect_lines(home: &Home, name: &str) -> String {
    format!(
        "Key uploaded ({}). Connect with:\n  ssh sandbox-{name}\n",
        home.file(".ssh/id_ed25519.pub").display()
    )
}

fn sha256_file(path: &Path) -> String {
    hex::encode(Sha256::digest(std::fs::read(path).unwrap()))
}

/// 1 MiB of bytes that are not all alike.
fn sample_bytes() -> Vec<u8> {
    (0..1u32 << 20)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect()
}

#[test]
fn ssh_setup_then_openssh_into_default_sandboxes() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let home = Home::new();
    let sb = api.default_sandbox("alpha");

    // First run: the block is written, nothing on stdout, no warning.
    let out = home.ssh_setup(&server, "alpha");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(out.stdout, "");
    let config_path = home.file(".ssh/config");
    assert_eq!(
        out.stderr,
        format!(
            "Wrote SSH config for sandbox-alpha to {}\n{}",
            config_path.display(),
            connect_lines(&home, "alpha")
        )
    );
    let config = home.read(".ssh/config");
    assert!(!config.contains(API_KEY), "{config}");
    assert!(config.contains("Host sandbox-alpha\n"), "{config}");
    assert!(
        config.contains(&format!("--api-url '{}'", server.url)),
        "{config}"
    );
    assert_eq!(
        std::fs::metadata(&config_path).unwrap().mode() & 0o777,
        0o600
    );
    // The key is kept where the ProxyCommand finds it, readable by its owner only.
    let credentials = home.file(".config/langsmith/credentials.json");
    assert_eq!(
        std::fs::metadata(&credentials).unwrap().mode() & 0o777,
        0o600
    );
    let kept: Value =
        serde_json::from_str(&home.read(".config/langsmith/credentials.json")).unwrap();
    assert_eq!(kept[&server.url]["api_key"], API_KEY);
    // The uploaded key and the host key.
    let authorized = api.exec(&sb, "cat /root/.ssh/authorized_keys");
    assert_eq!(authorized.stdout, home.read(".ssh/id_ed25519.pub").trim());
    let known = home.read(".ssh/known_hosts_sandboxes");
    assert!(known.starts_with("sandbox-alpha ssh-ed25519 "), "{known}");

    // Again: unchanged, still one block.
    let again = home.ssh_setup(&server, "alpha");
    assert_eq!(again.code, 0, "{}", again.stderr);
    assert_eq!(
        again.stderr,
        format!(
            "SSH config for sandbox-alpha already exists in {}\n{}",
            config_path.display(),
            connect_lines(&home, "alpha")
        )
    );
    assert_eq!(home.read(".ssh/config"), config);
    assert_eq!(
        home.read(".ssh/config")
            .matches("Host sandbox-alpha")
            .count(),
        1
    );

    // ssh
    assert_eq!(home.ssh("alpha", "uname"), "Linux\n");

    // scp both ways (OpenSSH's scp speaks SFTP)
    let local = home.file("up.bin");
    std::fs::write(&local, sample_bytes()).unwrap();
    run_ok(
        home.openssh("scp")
            .arg(&local)
            .arg("sandbox-alpha:/tmp/up.bin"),
    );
    let remote_sum = home.ssh("alpha", "sha256sum /tmp/up.bin");
    assert!(remote_sum.starts_with(&sha256_file(&local)), "{remote_sum}");
    let back = home.file("back.bin");
    run_ok(
        home.openssh("scp")
            .arg("sandbox-alpha:/tmp/up.bin")
            .arg(&back),
    );
    assert_eq!(sha256_file(&back), sha256_file(&local));

    // rsync over ssh
    let tree = home.file("tree");
    std::fs::create_dir_all(tree.join("sub")).unwrap();
    std::fs::write(tree.join("a.txt"), "alpha\n").unwrap();
    std::fs::write(tree.join("sub/b.txt"), "beta\n").unwrap();
    let mut rsync = Command::new("rsync");
    home.openssh_env(&mut rsync);
    rsync
        .arg("-a")
        .arg("-e")
        .arg(format!(
            "ssh -F '{}' -o BatchMode=yes -o IdentityFile='{}'",
            config_path.display(),
            home.file(".ssh/id_ed25519").display()
        ))
        .arg(format!("{}/", tree.display()))
        .arg("sandbox-alpha:/tmp/tree/");
    run_ok(&mut rsync);
    assert_eq!(
        home.ssh("alpha", "cat /tmp/tree/a.txt /tmp/tree/sub/b.txt"),
        "alpha\nbeta\n"
    );

    // sftp in batch mode
    let batch = home.file("batch");
    let fetched = home.file("fetched.bin");
    std::fs::write(
        &batch,
        format!(
            "put {} /tmp/sftp.bin\nget /tmp/sftp.bin {}\n",
            local.display(),
            fetched.display()
        ),
    )
    .unwrap();
    run_ok(
        home.openssh("sftp")
            .arg("-b")
            .arg(&batch)
            .arg("sandbox-alpha"),
    );
    assert_eq!(sha256_file(&fetched), sha256_file(&local));

    // ssh -L to a web server inside the sandbox
    let started = api.exec(
        &sb,
        "mkdir -p /tmp/www && echo 'hello through ssh -L' > /tmp/www/index.html && \
         cd /tmp/www && nohup python3 -m http.server 8080 --bind 127.0.0.1 \
         >/dev/null 2>&1 </dev/null &",
    );
    assert_eq!(started.exit_code, 0, "{started:?}");
    wait_for(
        "the web server in the sandbox",
        Duration::from_secs(30),
        || {
            (api.exec(&sb, "curl -sf http://127.0.0.1:8080/ >/dev/null")
                .exit_code
                == 0)
                .then_some(())
        },
    );
    let port = free_port();
    let mut forward = home.openssh("ssh");
    forward
        .args(["-N", "-o", "ExitOnForwardFailure=yes", "-L"])
        .arg(format!("127.0.0.1:{port}:127.0.0.1:8080"))
        .arg("sandbox-alpha")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut forward = forward.spawn().unwrap();
    let http = reqwest::blocking::Client::builder()
        .no_proxy()
        .build()
        .unwrap();
    let body = wait_for("the forwarded port", Duration::from_secs(30), || {
        if let Ok(Some(status)) = forward.try_wait() {
            let mut err = String::new();
            forward
                .stderr
                .take()
                .unwrap()
                .read_to_string(&mut err)
                .unwrap();
            panic!("ssh -L exited ({status}): {err}");
        }
        http.get(format!("http://127.0.0.1:{port}/"))
            .send()
            .ok()
            .and_then(|r| r.text().ok())
    });
    assert_eq!(body, "hello through ssh -L\n");
    forward.kill().unwrap();
    forward.wait().unwrap();

    // A second sandbox of the same snapshot has host keys of its own.
    api.default_sandbox("beta");
    let out = home.ssh_setup(&server, "beta");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        home.ssh("beta", "hostname -s >/dev/null && echo ok"),
        "ok\n"
    );
    let known = home.read(".ssh/known_hosts_sandboxes");
    let key_of = |alias: &str| {
        known
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{alias} ")))
            .unwrap_or_else(|| panic!("no {alias} in {known}"))
            .to_string()
    };
    assert_ne!(key_of("sandbox-alpha"), key_of("sandbox-beta"));
    assert_eq!(home.read(".ssh/config").matches("# Added by:").count(), 2);

    // Its host key survives a stop and start (kept in the sandbox's own layer), and sshd is
    // started again by the boot hook.
    for (action, status) in [("stop", "stopped"), ("start", "ready")] {
        let r = api.call(
            "POST",
            &format!("/api/v2/sandboxes/boxes/alpha/{action}"),
            None,
        );
        assert!(r.status < 300, "{action}: {:?}", r.body);
        wait_for(&format!("alpha {status}"), Duration::from_secs(120), || {
            let r = api.call("GET", "/api/v2/sandboxes/boxes/alpha", None);
            (r.body["status"] == status).then_some(())
        });
    }
    assert_eq!(home.ssh("alpha", "echo back"), "back\n");

    // Through the local backend (no endpoint, no key; its state directory moved): the block is
    // updated to name that directory, and ssh finds the backend's own key there.
    let key_file = server.state_dir.join("api-key");
    std::fs::write(&key_file, API_KEY).unwrap();
    std::fs::set_permissions(&key_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    let local = Cli::bare()
        .env("HOME", home.path())
        .env_remove("XDG_CONFIG_HOME")
        .env_remove("LANGSMITH_ENDPOINT")
        .env_remove("LANGSMITH_API_KEY")
        .env_remove("LANGSMITH_WORKSPACE_ID")
        .env("LANGSMITH_STATE_DIR", &server.state_dir)
        .args(&["sandbox", "ssh-setup", "alpha"])
        .run();
    assert_eq!(local.code, 0, "{}", local.stderr);
    assert_eq!(
        local.stderr,
        format!(
            "Using the local sandbox backend at {} (state in {})\n\
             Updated SSH config for sandbox-alpha in {}\n{}",
            server.url,
            server.state_dir.display(),
            config_path.display(),
            connect_lines(&home, "alpha")
        )
    );
    let config = home.read(".ssh/config");
    let state = server.state_dir.display();
    assert!(
        config.contains(&format!("ProxyCommand env LANGSMITH_STATE_DIR='{state}' ")),
        "{config}"
    );
    assert_eq!(config.matches("Host sandbox-alpha").count(), 1, "{config}");
    // The ProxyCommand's stderr reaches the user's terminal: it stays silent.
    let through_local = home
        .openssh("ssh")
        .arg("sandbox-alpha")
        .arg("echo local")
        .output()
        .unwrap();
    assert!(through_local.status.success(), "{through_local:?}");
    assert_eq!(String::from_utf8_lossy(&through_local.stdout), "local\n");
    let noise = String::from_utf8_lossy(&through_local.stderr);
    assert!(!noise.contains("local sandbox backend"), "{noise}");

    for name in ["alpha", "beta"] {
        api.delete_sandbox(name);
    }
}

#[test]
fn a_sandbox_without_sshd_gets_the_warning_and_still_a_block() {
    let server = TestServer::start();
    let api = Api::new(&server);
    let home = Home::new();
    let snapshot = api.ready_snapshot("tiny", image::tiny(), 64 << 20);
    let sb = api.ready_sandbox("bare", &snapshot, json!({}));
    // Tunnels and sshd dial 127.0.0.1 in the sandbox's own network namespace: runc must have
    // brought its loopback up (IFF_UP is bit 0 of the flags).
    let flags = api.exec(&sb, "cat /sys/class/net/lo/flags").stdout;
    let flags = u32::from_str_radix(flags.trim().trim_start_matches("0x"), 16).unwrap();
    assert_eq!(flags & 1, 1, "lo is down: {flags:#x}");
    let out = home.ssh_setup(&server, "bare");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        out.stderr,
        format!(
            "Warning: sshd does not appear to be running in the sandbox. SSH connections will \
             likely not work.\nWarning: could not fetch host key: exit code 1\n\
             Wrote SSH config for sandbox-bare to {}\n{}",
            home.file(".ssh/config").display(),
            connect_lines(&home, "bare")
        )
    );
    assert!(!home.file(".ssh/known_hosts_sandboxes").exists());

    // The host key comes from inside the sandbox: text that is not one public key line
    // would add entries (a wildcard, a CA) to the user's known hosts, so it is refused.
    let forged = "mkdir -p /etc/ssh && printf '%s\\n' 'ssh-ed25519 AAAA' \
                  '* ssh-ed25519 BBBB' > /etc/ssh/ssh_host_ed25519_key.pub";
    assert_eq!(api.exec(&sb, forged).exit_code, 0);
    let out = home.ssh_setup(&server, "bare");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(
        home.read(".ssh/known_hosts_sandboxes"),
        "sandbox-bare ssh-ed25519 AAAA\n",
        "only the first line is kept"
    );
    let forged =
        "printf '%s\\n' '@cert-authority * ssh-ed25519 AAAA' > /etc/ssh/ssh_host_ed25519_key.pub";
    assert_eq!(api.exec(&sb, forged).exit_code, 0);
    let out = home.ssh_setup(&server, "bare");
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert!(
        out.stderr.contains("Warning: could not write known host: the sandbox's ssh host key is not a public key line"),
        "{}",
        out.stderr
    );
    assert_eq!(
        home.read(".ssh/known_hosts_sandboxes"),
        "sandbox-bare ssh-ed25519 AAAA\n"
    );

    // A name that is not one plain word never reaches the ssh config.
    let config = home.read(".ssh/config");
    let out = home.ssh_setup(&server, "bare\nHost *");
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(
        out.stderr.contains("cannot be used as an ssh host alias"),
        "{}",
        out.stderr
    );
    assert_eq!(home.read(".ssh/config"), config);
    api.delete_sandbox("bare");
}
