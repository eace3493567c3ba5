//! Where the tunnel's time goes: CPU seconds of each process on the path, read from
//! `/proc/PID/stat` (user + system, all threads) and, for the sandbox as a whole (agent and
//! the sink, including processes that already exited), from its cgroup's `cpu.stat`.

/// The processes a tunnelled byte passes through.
pub struct TunnelPath {
    pub tunnel_cli: u32,
    pub server: u32,
    agents: Vec<u32>,
    /// The sandbox's cgroup below each hierarchy's root.
    container: String,
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
    /// Finds the agent processes of the sandbox with id `sandbox_id` and its cgroup.
    pub fn find(tunnel_cli: u32, server: u32, sandbox_id: &str) -> TunnelPath {
        let container = format!("/langsmith/ls-{sandbox_id}");
        let agents: Vec<u32> = std::fs::read_dir("/proc")
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .filter(|pid: &u32| {
                let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
                let cgroup = std::fs::read_to_string(format!("/proc/{pid}/cgroup"));
                args.iter().any(|a| *a == b"agent")
                    && cgroup.is_ok_and(|c| c.lines().any(|l| l.ends_with(&container)))
            })
            .collect();
        assert!(!agents.is_empty(), "no agent process in {container}");
        TunnelPath {
            tunnel_cli,
            server,
            agents,
            container,
        }
    }

    pub fn now(&self) -> CpuSeconds {
        let sandbox = sandbox_seconds(&self.container);
        CpuSeconds {
            client: process_seconds("self"),
            tunnel_cli: process_seconds(&self.tunnel_cli.to_string()),
            server: process_seconds(&self.server.to_string()),
            agent: self
                .agents
                .iter()
                .map(|p| process_seconds(&p.to_string()))
                .sum(),
            sandbox,
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

/// CPU seconds of a whole cgroup (exited processes included): `cpu.stat` under cgroup v2,
/// `cpuacct.usage` under v1.
pub fn sandbox_seconds(container: &str) -> f64 {
    if let Ok(stat) = std::fs::read_to_string(format!("/sys/fs/cgroup{container}/cpu.stat")) {
        let usec: f64 = stat
            .lines()
            .find_map(|l| l.strip_prefix("usage_usec "))
            .and_then(|v| v.trim().parse().ok())
            .expect("usage_usec in cpu.stat");
        return usec / 1e6;
    }
    let usage = format!("/sys/fs/cgroup/cpuacct{container}/cpuacct.usage");
    let nsec: f64 = std::fs::read_to_string(&usage)
        .unwrap_or_else(|e| panic!("{usage}: {e}"))
        .trim()
        .parse()
        .expect("nanoseconds in cpuacct.usage");
    nsec / 1e9
}

/// utime + stime of `/proc/PID`, in seconds.
pub fn process_seconds(pid: &str) -> f64 {
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
