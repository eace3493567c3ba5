//! A sandbox's network: loopback, and a way out that leads only to the host's egress proxy.
//!
//! runc gives each sandbox a network namespace of its own. Once its PID 1 runs, [`configure`]
//! enters that namespace from a host thread and
//!
//! 1. adds `eth0` (one end of a veth pair whose other end, `eth0p`, stays in the same
//!    namespace, so nothing sent there leaves it) with [`SANDBOX_ADDRESS`] and the default
//!    route, so `connect()` to any address gets as far as netfilter (over rtnetlink, see
//!    `links`);
//! 2. loads a netfilter table (with `nft`) that redirects every outgoing TCP connection not
//!    bound for loopback to [`PROXY_PORT`] on `127.0.0.1`, and drops every other packet that
//!    is not loopback traffic (UDP, ICMP, all of IPv6 but `lo`);
//! 3. opens, still inside the namespace, the proxy's listening socket and the DNS stub's UDP
//!    socket on [`STUB_ADDRESS`]:53, and hands both back to the server.
//!
//! The sockets live in the sandbox's namespace but belong to the server: the proxy runs on
//! the host, and the original destination of each connection is read with
//! `SO_ORIGINAL_DST`. The sandbox has no `CAP_NET_ADMIN`, so it can change neither routes,
//! interfaces nor the tables, and no interface of its namespace reaches the host or another
//! sandbox: every byte that leaves goes through the proxy's decision.
//!
//! Configuring is idempotent (the interface is added once; the tables are replaced), so a
//! restarted server takes a running sandbox's network over again.

use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, UdpSocket};
use std::path::Path;
use std::process::{Command, Stdio};

use super::namespace_thread::{self, EnterError, Namespace};
use super::{RuntimeError, links};

/// The sandbox's own address on `eth0`. The DNS stub's pool of synthetic addresses
/// (198.18.0.0/15) leaves 198.18.0.0/24 out for it.
pub const SANDBOX_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// Where redirected connections arrive, on the namespace's `127.0.0.1`. Port 1 (tcpmux) is
/// one no program in a sandbox listens on.
pub const PROXY_PORT: u16 = 1;
/// The DNS stub's address inside the sandbox (its `/etc/resolv.conf` names it).
pub const STUB_ADDRESS: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 53);

/// The text of the sandbox's `/etc/resolv.conf`.
pub fn resolv_conf() -> String {
    format!("nameserver {STUB_ADDRESS}\noptions ndots:0\n")
}

/// The sandbox's netfilter table, in `nft`'s language: outgoing TCP not bound for loopback
/// is redirected to the proxy, loopback stays, everything else out is dropped (UDP, ICMP and
/// all of IPv6 but `lo`). One `inet` table covers both address families, so one process
/// loads it in one transaction. Its first two lines make loading it again (a restarted
/// server taking a running sandbox over) replace the table instead of adding its rules twice:
/// declaring an existing table is a no-op, and the delete empties the name for the new one.
fn ruleset() -> String {
    format!(
        "table inet {TABLE}
delete table inet {TABLE}
table inet {TABLE} {{
    chain redirect_out {{
        type nat hook output priority -100; policy accept;
        oifname \"lo\" return
        ip daddr 127.0.0.0/8 return
        meta nfproto ipv4 meta l4proto tcp redirect to :{PROXY_PORT}
    }}
    chain filter_out {{
        type filter hook output priority 0; policy drop;
        oifname \"lo\" accept
        ip daddr 127.0.0.0/8 accept
    }}
    chain filter_forward {{
        type filter hook forward priority 0; policy drop;
    }}
}}
"
    )
}

/// The name of the sandbox's table in its namespace.
const TABLE: &str = "langsmith";

/// The proxy's and the DNS stub's sockets, opened inside one sandbox's namespace.
#[derive(Debug)]
pub struct EgressSockets {
    pub proxy: TcpListener,
    pub dns: UdpSocket,
}

/// Configure the network namespace of process `pid` (the sandbox's PID 1) and open the
/// egress sockets in it. Blocking: runs `nft`, so call it off the
/// async workers.
pub fn configure(pid: u32) -> Result<EgressSockets, RuntimeError> {
    let ns_path = format!("/proc/{pid}/ns/net");
    let ns = std::fs::File::open(&ns_path).map_err(RuntimeError::io("open", &ns_path))?;
    // The server's other threads stay in the host's namespace, and so do the tools it runs
    // later: only the thread made for this enters the sandbox's.
    let configured = namespace_thread::spawn(
        "network-setup",
        Namespace::Network,
        ns.into(),
        configure_here,
    )
    .and_then(|pending| pending.wait_blocking());
    match configured {
        Ok(done) => done,
        Err(EnterError::Enter(errno)) => {
            Err(RuntimeError::io("enter the network namespace of", &ns_path)(errno.into()))
        }
        Err(EnterError::Thread(e)) => Err(RuntimeError::io("start a thread for", &ns_path)(e)),
        // Only a mount namespace needs it; answered for completeness.
        Err(EnterError::Unshare(errno)) => Err(RuntimeError::io(
            "unshare the filesystem attributes to enter",
            &ns_path,
        )(errno.into())),
        Err(EnterError::Panicked) => Err(RuntimeError::panicked("configuring the sandbox network")),
    }
}

/// The steps of [`configure`], in the calling thread's (the sandbox's) namespace.
fn configure_here() -> Result<EgressSockets, RuntimeError> {
    // The table loads in its own process while this thread sets up the interfaces: `nft`
    // mostly waits for the kernel to commit it. Nothing leaves the namespace in the
    // meantime: no interface in it leads out.
    let started = start_with_input("nft", &["-f", "-"], &ruleset());
    // `if_nametoindex` asks the calling thread's namespace, unlike /sys.
    let links = match nix::net::if_::if_nametoindex(links::INTERFACE) {
        Ok(_) => Ok(()),
        // A panic becomes an error here, so the tool started above is still waited for.
        Err(_) => {
            std::panic::catch_unwind(|| links::add_eth0(SANDBOX_ADDRESS)).unwrap_or_else(|_| {
                Err(RuntimeError::panicked(
                    "setting up the sandbox's interfaces",
                ))
            })
        }
    };
    // The tool is waited for even when the links failed, so no zombie is left behind.
    let tables = started.and_then(Tool::finish);
    links?;
    tables?;
    let proxy_addr = SocketAddr::from((Ipv4Addr::LOCALHOST, PROXY_PORT));
    let proxy = TcpListener::bind(proxy_addr)
        .map_err(|e| RuntimeError::io("listen on", Path::new("127.0.0.1:1 in the sandbox"))(e))?;
    let dns = UdpSocket::bind((STUB_ADDRESS, 53))
        .map_err(|e| RuntimeError::io("bind", Path::new("127.0.0.53:53 in the sandbox"))(e))?;
    for nonblocking in [proxy.set_nonblocking(true), dns.set_nonblocking(true)] {
        nonblocking.map_err(RuntimeError::io("configure", "an egress socket"))?;
    }
    Ok(EgressSockets { proxy, dns })
}

/// A tool started by [`start_with_input`], its input written.
struct Tool {
    child: std::process::Child,
    command: String,
}

/// Start `program args` and write `input` to its stdin, closing it.
fn start_with_input(program: &str, args: &[&str], input: &str) -> Result<Tool, RuntimeError> {
    let command = format!("{program} {}", args.join(" "));
    let child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| failed(&command, "not started".into(), e.to_string()))?;
    let mut tool = Tool { child, command };
    if let Some(mut stdin) = tool.child.stdin.take()
        && let Err(e) = stdin.write_all(input.as_bytes())
    {
        // Reaped, so no zombie is left behind; its own failure matters less than this one.
        let _ = tool.child.kill();
        let _ = tool.child.wait();
        return Err(failed(
            &tool.command,
            "input not written".into(),
            e.to_string(),
        ));
    }
    Ok(tool)
}

impl Tool {
    /// Wait for the tool; its output becomes the error when it fails.
    fn finish(self) -> Result<(), RuntimeError> {
        let output = self
            .child
            .wait_with_output()
            .map_err(|e| failed(&self.command, "not awaited".into(), e.to_string()))?;
        if output.status.success() {
            return Ok(());
        }
        Err(super::host::failure_of(self.command, &output))
    }
}

fn failed(command: &str, status: String, output: String) -> RuntimeError {
    RuntimeError::Command {
        command: command.to_string(),
        status,
        output,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::in_a_new_network_namespace;
    use std::io::Read;
    use std::net::{SocketAddrV4, TcpStream};
    use std::time::Duration;

    /// What a sandbox's namespace does with an outgoing connection once configured twice (as
    /// a restarted server does): where it arrived, by its original destination, and the
    /// table as `nft` lists it. `None` (the test is skipped) without root.
    fn configured_twice_then_connect(to: SocketAddrV4) -> Option<(SocketAddrV4, String)> {
        in_a_new_network_namespace(move || {
            drop(configure_here().unwrap());
            let sockets = configure_here().unwrap();
            sockets.proxy.set_nonblocking(false).unwrap();
            // The destination is one no interface has (the DNS stub's pool): routed to eth0,
            // whose peer is in this namespace, it would go nowhere without the redirect.
            let mut client = TcpStream::connect_timeout(&to.into(), Duration::from_secs(10))
                .expect("the redirect leads to the proxy's socket");
            let (accepted, _) = sockets.proxy.accept().unwrap();
            let original =
                nix::sys::socket::getsockopt(&accepted, nix::sys::socket::sockopt::OriginalDst)
                    .unwrap();
            let original = SocketAddrV4::new(
                Ipv4Addr::from(u32::from_be(original.sin_addr.s_addr)),
                u16::from_be(original.sin_port),
            );
            drop(accepted);
            let mut rest = Vec::new();
            let _ = client.read_to_end(&mut rest);
            let listed = Command::new("nft")
                .args(["list", "table", "inet", TABLE])
                .output()
                .unwrap();
            assert!(listed.status.success(), "{listed:?}");
            (original, String::from_utf8(listed.stdout).unwrap())
        })
    }

    #[test]
    fn tcp_out_reaches_the_proxy_with_its_destination_and_a_reload_replaces_the_table() {
        let to = SocketAddrV4::new(Ipv4Addr::new(198, 18, 7, 9), 8080);
        let Some((original, table)) = configured_twice_then_connect(to) else {
            return;
        };
        assert_eq!(original, to);
        assert_eq!(table.matches("redirect to :1").count(), 1, "{table}");
        assert_eq!(table.matches("policy drop").count(), 2, "{table}");
    }
}
