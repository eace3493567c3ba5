//! Where the tunnel's time goes: CPU seconds of each process on the path, read from
//! `/proc/PID/stat` (user + system, all threads) and, for the sandbox as a whole (agent and
//! the sink, including processes that already exited), from its cgroup's `cpu.stat`.

use std::path::PathBuf;

/// The processes a tunnelled byte passes through.
pub struct TunnelPath {
    pub tunnel_cli: u32,
    pub server: u32,
    agents: Vec<u32>,
    sandbox_cgroup: PathBuf,
}

/// CPU seconds so far, per part of the path.
#[derive(Clone, Copy)]
pub struct CpuSeconds {
    client: f64,
    tunnel_cli: f64,
    server: f64,
    agent: f64,
    sandbox: f64,
}

impl TunnelPath {
    /// Finds the sandbox's agent processes (the only sandbox of this run) and its cgroup.
    pub fn find(tunnel_cli: u32, server: u32) -> TunnelPath {
        let agents: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                args.iter().any(|a| *a == b"agent") && args.iter().any(|a| *a == b"--socket")
            })
            .collect();
        assert!(!agents.is_empty(), "no agent process found");
        let cgroup = std::fs::read_to_string(format!("/proc/{}/cgroup", agents[0])).unwrap();
        let path = cgroup
            .lines()
            .find_map(|l| l.strip_prefix("0::"))
            .expect("a cgroup v2 path");
        TunnelPath {
            tunnel_cli,
            server,
            agents,
            sandbox_cgroup: PathBuf::from(format!("/sys/fs/cgroup{path}")),
        }
    }

    pub fn now(&self) -> CpuSeconds {
        let usage = std::fs::read_to_string(self.sandbox_cgroup.join("cpu.stat")).unwrap();
        let usec: f64 = usage
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .expect("usage_usec in cpu.stat");
        CpuSeconds {
            client: process_seconds("self"),
            tunnel_cli: process_seconds(&self.tunnel_cli.to_string()),
            server: process_seconds(&self.server.to_string()),
            agent: self
                .agents
                .iter()
                .map(|p| process_seconds(&p.to_string()))
                .sum(),
            sandbox: usec / 1e6,
        }
    }
}

impl CpuSeconds {
    /// One line: the CPU seconds each part spent between `before` and `self`, over `wall`.
    pub fn report_since(&self, before: &CpuSeconds, wall: f64) -> String {
        let agent = self.agent - before.agent;
        let sink = (self.sandbox - before.sandbox - agent).max(0.0);
        format!(
            "CPU s over {wall:.2} s wall: bench client {:.2}, tunnel CLI {:.2}, server {:.2}, \
             agent {agent:.2}, sink in sandbox {sink:.2}",
            self.client - before.client,
            self.tunnel_cli - before.tunnel_cli,
            self.server - before.server,
        )
    }
}

/// utime + stime of `/proc/PID`, in seconds.
fn process_seconds(pid: &str) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may hold spaces) start after the last ')'.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map(|(_, rest)| rest.split_whitespace().collect())
        .unwrap_or_default();
    let ticks: f64 = [11, 12] // utime and stime: fields 14 and 15 of stat(5)
        .iter()
        .filter_map(|i| fields.get(*i)?.parse::<f64>().ok())
        .sum();
    ticks / unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64
}
