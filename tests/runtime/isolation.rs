//! What a process inside a sandbox can see and do: only its own processes, only loopback,
//! a disk that fills at capacity, a memory limit enforced by the OOM killer, a reduced
//! capability set, no_new_privs and seccomp, and a root that is nobody on the host.

use super::fixture::{Fixture, MIB};
use langsmith::runtime::ContainerState;

/// CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID SETUID SETPCAP NET_BIND_SERVICE SYS_CHROOT
/// AUDIT_WRITE SETFCAP: Docker's default set without NET_RAW and MKNOD.
const EXPECTED_CAPS: &str = "00000000a00405fb";

#[tokio::test]
async fn a_sandbox_sees_only_itself_and_stays_within_its_limits() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let id = &fixture.id("iso");
    let mut spec = fixture.spec(id);
    spec.mem_bytes = 64 * MIB;
    spec.fs_capacity_bytes = 32 * MIB;
    runtime.start(&spec).await.expect("start");

    // Processes: the agent as PID 1, and the `ps` we run; nothing of the host.
    let ps = fixture.exec_ok(id, "ps -o pid,args");
    let processes: Vec<&str> = ps.lines().skip(1).map(str::trim).collect();
    assert!(
        processes
            .iter()
            .all(|p| p.contains("langsmith agent") || p.contains("ps -o")),
        "{ps}"
    );
    assert!(
        processes
            .iter()
            .any(|p| p.starts_with("1 ") && p.contains("langsmith agent")),
        "{ps}"
    );
    let cmdline = fixture.exec_ok(id, "tr '\\0' ' ' < /proc/1/cmdline");
    assert!(
        cmdline.contains("/.langsmith/bin/langsmith agent --listen-fd 3"),
        "{cmdline}"
    );

    // Network: only `lo`, and the host's loopback is out of reach.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dial = fixture.exec(id, &format!("nc 127.0.0.1 {port} < /dev/null"));
    assert!(!dial.status.success(), "connected to the host's loopback");
    listener.set_nonblocking(true).unwrap();
    let accepted = listener.accept();
    assert!(
        matches!(&accepted, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "{accepted:?}"
    );
    let devices = fixture.exec_ok(id, "cat /proc/net/dev");
    let interfaces: Vec<&str> = devices
        .lines()
        .skip(2)
        .filter_map(|l| l.split(':').next())
        .map(str::trim)
        .collect();
    assert_eq!(interfaces, vec!["lo"]);

    // Disk: the upper layer is full at its capacity.
    let fill = fixture.exec(id, "dd if=/dev/zero of=/big bs=1M count=64");
    assert!(!fill.status.success(), "wrote 64 MiB into a 32 MiB sandbox");
    assert!(
        String::from_utf8_lossy(&fill.stderr).contains("No space left"),
        "{fill:?}"
    );
    fixture.exec_ok(id, "rm /big");

    // Memory: a process holding 200 MB in a 64 MiB sandbox is OOM-killed; the sandbox lives on.
    let hog = fixture.exec(
        id,
        "x=$(head -c 200000000 /dev/zero | tr '\\0' a); echo kept ${#x}",
    );
    assert!(!hog.status.success(), "{hog:?}");
    let oom = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/memory/langsmith/ls-{id}/memory.oom_control"
    ))
    .unwrap();
    let kills: u64 = oom
        .lines()
        .find_map(|l| l.strip_prefix("oom_kill "))
        .and_then(|n| n.trim().parse().ok())
        .unwrap_or(0);
    assert!(kills >= 1, "no OOM kill recorded: {oom}");
    assert_eq!(runtime.state(id).await, ContainerState::Running);
    assert_eq!(fixture.healthz(id).await, Ok(200));

    // CPU: 1000 millicores is one period's worth of quota.
    let quota = std::fs::read_to_string(format!(
        "/sys/fs/cgroup/cpu/langsmith/ls-{id}/cpu.cfs_quota_us"
    ))
    .unwrap();
    assert_eq!(quota.trim(), "100000");

    // Privileges of the agent: reduced capabilities, no_new_privs, a seccomp filter.
    let status = fixture.exec_ok(id, "cat /proc/1/status");
    for expected in [
        format!("CapEff:\t{EXPECTED_CAPS}"),
        format!("CapBnd:\t{EXPECTED_CAPS}"),
        "CapInh:\t0000000000000000".to_string(),
        "NoNewPrivs:\t1".to_string(),
        "Seccomp:\t2".to_string(),
    ] {
        assert!(status.contains(&expected), "{expected} not in\n{status}");
    }
    let unshare = fixture.exec(id, "unshare -U true");
    assert!(!unshare.status.success(), "created a user namespace");
    assert!(
        String::from_utf8_lossy(&unshare.stderr).contains("Operation not permitted"),
        "{unshare:?}"
    );
    assert_eq!(
        fixture.exec_ok(id, "head -c 16 /proc/kcore | wc -c").trim(),
        "0"
    );
    let sysctl = fixture.exec(id, "echo 3 > /proc/sys/vm/drop_caches");
    assert!(!sysctl.status.success(), "/proc/sys is writable");
    let sysfs = fixture.exec(id, "mkdir /sys/fs/escape");
    assert!(!sysfs.status.success(), "/sys is writable");

    runtime.destroy(id).await.expect("destroy");
    fixture.assert_no_trace(id).await;
    fixture.assert_snapshot_released();
}

#[tokio::test]
async fn sandboxes_from_one_snapshot_do_not_see_each_other() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let (first, second) = (&fixture.id("first"), &fixture.id("second"));
    let (first_spec, second_spec) = (fixture.spec(first), fixture.spec(second));
    let (a, b) = tokio::join!(runtime.start(&first_spec), runtime.start(&second_spec));
    a.expect("first starts");
    b.expect("second starts");
    let mut listed = runtime.list().await;
    listed.sort();
    assert_eq!(listed, vec![first.to_string(), second.to_string()]);

    fixture.exec_ok(first, "echo mine > /root/private");
    assert_eq!(fixture.exec_ok(second, "ls /root"), "");
    let ps = fixture.exec_ok(second, "ps -o pid,args");
    let agents = ps
        .lines()
        .filter(|l| l.contains("/.langsmith/bin/langsmith agent"))
        .count();
    // The agent is PID 1 (the reaper) plus the data-plane server it forks; the
    // neighbour's two would make four.
    assert_eq!(agents, 2, "{ps}");

    runtime.destroy(first).await.expect("destroy first");
    fixture.assert_no_trace(first).await;
    assert_eq!(runtime.state(second).await, ContainerState::Running);
    assert_eq!(fixture.healthz(second).await, Ok(200));
    assert_eq!(fixture.exec_ok(second, "echo still here"), "still here\n");

    runtime.destroy(second).await.expect("destroy second");
    fixture.assert_no_trace(second).await;
    fixture.assert_snapshot_released();
}

#[tokio::test]
async fn a_sandbox_cannot_redirect_its_agent_socket() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let sly = &fixture.id("sly");
    runtime.start(&fixture.spec(sly)).await.expect("start");

    // The socket's path is on the host only: the sandbox has no way to it.
    let inside = fixture.exec_ok(sly, "ls -a /.langsmith");
    assert_eq!(inside, ".\n..\nbin\n", "{inside}");
    // Nor does its mount table name the sandbox's host directory (the overlay's layers are
    // given relative to it; resolv.conf and the CA come from a tmpfs of their own).
    let mounts = fixture.exec_ok(sly, "cat /proc/self/mountinfo");
    assert!(
        !mounts.contains(sly.as_str()) && !mounts.contains("/sandboxes/"),
        "{mounts}"
    );
    assert!(
        mounts.contains("lowerdir=lower,upperdir=upperfs/upper"),
        "{mounts}"
    );
    // A socket on the host that the sandbox would like the server to talk to instead,
    // planted where the socket used to be: the server still reaches the agent.
    let host_socket = runtime.root().join("host.sock");
    let host_listener = std::os::unix::net::UnixListener::bind(&host_socket).unwrap();
    fixture.exec_ok(
        sly,
        &format!(
            "mkdir -p /.langsmith/run && ln -s {} /.langsmith/run/agent.sock",
            host_socket.display()
        ),
    );
    assert_eq!(fixture.healthz(sly).await, Ok(200));
    host_listener.set_nonblocking(true).unwrap();
    assert!(
        host_listener.accept().is_err(),
        "the server connected to the planted socket"
    );

    runtime.destroy(sly).await.expect("destroy");
    fixture.assert_no_trace(sly).await;
}

/// The `Uid:` line of a host process: real, effective, saved and file-system uid.
fn host_uids(pid: &str) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().unwrap())
        .collect()
}

#[tokio::test]
async fn root_in_a_sandbox_is_nobody_on_the_host() {
    let fixture = Fixture::new();
    let runtime = &fixture.runtime;
    let (one, two) = (&fixture.id("userns-one"), &fixture.id("userns-two"));
    runtime.start(&fixture.spec(one)).await.expect("start");
    runtime.start(&fixture.spec(two)).await.expect("start");

    // Root inside, and files keep the owners the image gave them.
    assert_eq!(fixture.exec_ok(one, "id -u; id -g"), "0\n0\n");
    assert_eq!(fixture.exec_ok(one, "stat -c %u:%g /bin/busybox"), "0:0\n");
    // An id far above every host account on the host, and another for the neighbour.
    let pid = |id: &str| {
        std::fs::read_to_string(fixture.sandbox_dir(id).join("bundle/container.pid")).unwrap()
    };
    let (uids_one, uids_two) = (host_uids(pid(one).trim()), host_uids(pid(two).trim()));
    assert!(uids_one.iter().all(|&uid| uid >= 1 << 30), "{uids_one:?}");
    assert!(uids_two.iter().all(|&uid| uid >= 1 << 30), "{uids_two:?}");
    assert_ne!(uids_one[0], uids_two[0], "the two sandboxes share host ids");

    // chown works, and what the sandbox writes is stored with its own ids, not the host's.
    fixture.exec_ok(
        one,
        "touch /root/owned && chown 1000:1000 /root/owned && \
         cp /bin/busybox /root/suid && chmod 4755 /root/suid",
    );
    assert_eq!(
        fixture.exec_ok(one, "stat -c %u:%g /root/owned"),
        "1000:1000\n"
    );
    let dir = fixture.sandbox_dir(one);
    let stored =
        |name: &str| std::fs::metadata(dir.join("upper-raw/upper/root").join(name)).unwrap();
    use std::os::unix::fs::MetadataExt;
    assert_eq!((stored("owned").uid(), stored("owned").gid()), (1000, 1000));
    let suid = stored("suid");
    assert_eq!((suid.uid(), suid.mode() & 0o7777), (0, 0o4755));

    // Every host mount of the sandbox's files is nosuid and nodev, so that set-user-ID
    // file is inert wherever the host could reach it; the overlay itself is not mounted
    // on the host once the sandbox runs.
    let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    let dir_text = dir.to_string_lossy().to_string();
    let view = runtime.view_dir(one).to_string_lossy().to_string();
    let mut seen = 0;
    for line in mountinfo.lines() {
        let fields: Vec<&str> = line.split(' ').collect();
        let (mount_point, options) = (fields[4], fields[5]);
        assert!(
            !mount_point.starts_with(&view),
            "runc's view is mounted on the host: {line}"
        );
        if mount_point.starts_with(&dir_text) {
            seen += 1;
            let options: Vec<&str> = options.split(',').collect();
            assert!(
                options.contains(&"nosuid") && options.contains(&"nodev"),
                "{line}"
            );
        }
    }
    assert!(seen >= 6, "{mountinfo}");

    for id in [one, two] {
        runtime.destroy(id).await.expect("destroy");
        fixture.assert_no_trace(id).await;
    }
    fixture.assert_snapshot_released();
}
