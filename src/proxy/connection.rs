//! One connection a sandbox opened: where it was going, whether it may, and the splice (or,
//! for a host a header rule matches, the opened TLS of `intercept`).
//!
//! The order of the checks follows the spec's proxy behaviour:
//!
//! 1. The original destination (`SO_ORIGINAL_DST`). A synthetic address from the DNS stub
//!    stands for the name the sandbox looked up; any other address is a *literal IP*.
//! 2. The first bytes, on the ports reserved for them: on 443 the TLS ClientHello's SNI must
//!    be the name the sandbox looked up (no domain fronting; HTTPS to a literal IP has no
//!    name and is refused); on 80 the HTTP `Host` must be that name. Cleartext HTTP on 80 is
//!    the only way to a literal IP, judged by the IP and CIDR entries. Raw TCP to a literal
//!    IP is refused.
//! 3. `access_control`, then the upstream's own address check (no private, loopback,
//!    link-local or metadata address unless allowed by the operator).
//!
//! 4. A host a header rule may match: on 443 its TLS is opened (`intercept`), on 80 the
//!    connection is refused; any other port is spliced like the rest.
//!
//! A refusal answers `403` with a `text/plain` body naming the rule on cleartext HTTP and
//! resets everything else at once; an allowed upstream that cannot be resolved or reached
//! gets `502` on HTTP (a reset otherwise). Every decision goes to the egress log.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::access::Destination;
use super::egress_log::{Decision, EgressEntry};
use super::hub::{SandboxEgress, Shared};
use super::names::NamePool;
use super::sniff::{self, PEEK_LIMIT, Peek};
use super::upstream::{DialError, Target};

mod intercept;
mod providers;

/// How long a sandbox may take to send the first bytes the proxy needs on 80 and 443.
const PEEK_TIMEOUT: Duration = Duration::from_secs(10);

/// The rule a refused cleartext HTTP connection to a host a header rule matches names.
const CLEARTEXT_RULE: &str = "header rule over cleartext HTTP";

/// Why a connection was refused before `access_control` had its say.
struct Refusal {
    rule: &'static str,
    reason: String,
}

/// Handle one redirected connection to its end.
pub(super) async fn handle(shared: Arc<Shared>, sandbox: Arc<SandboxEgress>, client: TcpStream) {
    let _ = client.set_nodelay(true);
    let Some(original) = original_destination(&client) else {
        // Not redirected (e.g. a direct connection to the listener): nothing to judge.
        return reset(client);
    };
    let mut conn = Connection {
        shared,
        sandbox,
        client,
        port: original.port(),
        prefix: Vec::new(),
    };
    let target = match conn.target(original.ip()) {
        Ok(target) => target,
        Err(refusal) => {
            let shown = original.ip().to_string();
            return conn
                .refuse(&shown, refusal.rule, Some(refusal.reason))
                .await;
        }
    };
    if let Err(refusal) = conn.sniff(&target).await {
        return conn
            .refuse(&target.to_string(), refusal.rule, Some(refusal.reason))
            .await;
    }
    let policy = conn.sandbox.policy();
    let destination = match &target {
        Target::Host(host) => Destination::Host(host),
        Target::Ip(ip) => Destination::Ip(*ip),
    };
    let verdict = policy.access.decide(destination, conn.port);
    if !verdict.allowed {
        return conn.refuse(&target.to_string(), &verdict.rule, None).await;
    }
    // Hosts a header rule may match: their TLS is opened so the headers can be set, and
    // cleartext HTTP to them is refused rather than carrying a secret in clear. Other ports
    // are never parsed.
    if let Target::Host(host) = &target
        && policy.injection.may_match_host(host)
    {
        match conn.port {
            443 => {
                let opened = intercept::Opened::new(
                    conn.shared,
                    conn.sandbox,
                    host,
                    conn.port,
                    verdict.rule,
                );
                return opened.serve(conn.client, conn.prefix).await;
            }
            80 => {
                let reason = "a header rule matches this host: use HTTPS, so its headers are \
                              never sent in clear";
                return conn.refuse(host, CLEARTEXT_RULE, Some(reason.into())).await;
            }
            _ => {}
        }
    }
    conn.forward(target, verdict.rule).await;
}

/// The destination the sandbox asked for, from the conntrack entry of the redirect.
fn original_destination(client: &TcpStream) -> Option<SocketAddr> {
    let addr = nix::sys::socket::getsockopt(client, nix::sys::socket::sockopt::OriginalDst).ok()?;
    let ip = std::net::Ipv4Addr::from(u32::from_be(addr.sin_addr.s_addr));
    let original = SocketAddr::new(IpAddr::V4(ip), u16::from_be(addr.sin_port));
    // A connection straight to the listener was not redirected: it has no destination.
    (!ip.is_loopback()).then_some(original)
}

/// Close with a reset, so the sandbox's program fails at once instead of waiting.
fn reset(client: TcpStream) {
    let _ = socket2::SockRef::from(&client).set_linger(Some(Duration::ZERO));
    drop(client);
}

struct Connection {
    shared: Arc<Shared>,
    sandbox: Arc<SandboxEgress>,
    client: TcpStream,
    port: u16,
    /// Bytes read while sniffing, sent upstream first.
    prefix: Vec<u8>,
}

impl Connection {
    /// The name behind a synthetic address, or the literal IP.
    fn target(&self, ip: IpAddr) -> Result<Target, Refusal> {
        if !NamePool::in_pool(ip) {
            return Ok(Target::Ip(ip));
        }
        let IpAddr::V4(v4) = ip else {
            return Ok(Target::Ip(ip));
        };
        let names = self.sandbox.names.lock().unwrap_or_else(|p| p.into_inner());
        match names.name_of(v4) {
            Some(name) => Ok(Target::Host(name.to_string())),
            None => Err(Refusal {
                rule: "unknown address",
                reason: format!("{ip} was not handed out by the DNS stub"),
            }),
        }
    }

    /// Read what 80 and 443 must start with and check it against the target.
    async fn sniff(&mut self, target: &Target) -> Result<(), Refusal> {
        match (self.port, target) {
            (443, Target::Ip(_)) => Err(Refusal {
                rule: "literal IP",
                reason: "HTTPS needs a host name; connect by name".into(),
            }),
            (443, Target::Host(host)) => match self.peek(sniff::tls_server_name).await {
                Some(Some(sni)) if sni.eq_ignore_ascii_case(host) => Ok(()),
                Some(sni) => Err(Refusal {
                    rule: "SNI mismatch",
                    reason: format!(
                        "TLS server name {:?} is not the name looked up ({host})",
                        sni.unwrap_or_default()
                    ),
                }),
                None => Err(Refusal {
                    rule: "not TLS",
                    reason: "port 443 carries TLS only".into(),
                }),
            },
            (80, _) => match self.peek(sniff::http_host).await {
                Some(host_header) => match (target, host_header) {
                    (Target::Host(host), Some(header)) if !header.eq_ignore_ascii_case(host) => {
                        Err(Refusal {
                            rule: "Host mismatch",
                            reason: format!(
                                "HTTP Host {header:?} is not the name looked up ({host})"
                            ),
                        })
                    }
                    _ => Ok(()),
                },
                None => Err(Refusal {
                    rule: "not HTTP",
                    reason: "port 80 carries HTTP only".into(),
                }),
            },
            (_, Target::Ip(_)) => Err(Refusal {
                rule: "literal IP",
                reason: "raw TCP to a literal IP is not allowed; connect by name".into(),
            }),
            _ => Ok(()),
        }
    }

    /// Read into the prefix until `parse` decides; `None` when the bytes are not what the
    /// port carries (or never came).
    async fn peek<T>(&mut self, parse: fn(&[u8]) -> Peek<T>) -> Option<T> {
        let read = async {
            let mut buf = [0u8; 4096];
            loop {
                match parse(&self.prefix) {
                    Peek::Done(value) => return Some(value),
                    Peek::Invalid => return None,
                    Peek::NeedMore if self.prefix.len() >= PEEK_LIMIT => return None,
                    Peek::NeedMore => {}
                }
                let n = self.client.read(&mut buf).await.ok()?;
                if n == 0 {
                    return None;
                }
                self.prefix.extend_from_slice(&buf[..n]);
            }
        };
        tokio::time::timeout(PEEK_TIMEOUT, read)
            .await
            .ok()
            .flatten()
    }

    /// Refuse: a 403 on cleartext HTTP, a reset otherwise; logged.
    async fn refuse(self, host: &str, rule: &str, reason: Option<String>) {
        self.end_early(Decision::Denied, host, rule, reason).await
    }

    /// Log `decision` and end the connection without an upstream: on cleartext HTTP an
    /// answer (`403` for a refusal, `502` for a failed upstream) with a `text/plain` body
    /// naming the rule, a reset otherwise.
    async fn end_early(
        mut self,
        decision: Decision,
        host: &str,
        rule: &str,
        reason: Option<String>,
    ) {
        self.record(host, decision, rule, reason.clone(), 0, 0);
        if self.port == 80 && !self.prefix.is_empty() {
            let (status, what) = match decision {
                Decision::Failed => ("502 Bad Gateway", "upstream unreachable"),
                _ if rule == CLEARTEXT_RULE => {
                    ("403 Forbidden", "refused by the sandbox auth proxy")
                }
                _ => ("403 Forbidden", "blocked by sandbox access_control"),
            };
            let mut body = format!("{what}: {host}:{} ({rule})", self.port);
            if let Some(reason) = reason {
                body.push_str(&format!(": {reason}"));
            }
            body.push('\n');
            let answer = format!(
                "HTTP/1.1 {status}\r\nContent-Type: text/plain; charset=utf-8\r\n\
                 Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let _ = self.client.write_all(answer.as_bytes()).await;
            let _ = self.client.shutdown().await;
            return;
        }
        reset(self.client);
    }

    /// Dial the upstream and splice until both sides are done.
    async fn forward(mut self, target: Target, rule: String) {
        let host = target.to_string();
        let mut upstream = match self.shared.upstream.dial(&target, self.port).await {
            Ok(upstream) => upstream,
            Err(e @ DialError::Forbidden { .. }) => {
                return self
                    .refuse(&host, "non-public address", Some(e.to_string()))
                    .await;
            }
            Err(e) => {
                return self
                    .end_early(Decision::Failed, &host, &rule, Some(e.to_string()))
                    .await;
            }
        };
        if upstream.write_all(&self.prefix).await.is_err() {
            return reset(self.client);
        }
        // splice(2) through a pipe each way: the bytes never enter the proxy's memory.
        let copied = realm_io::bidi_zero_copy(&mut self.client, &mut upstream).await;
        let (sent, received) = match copied {
            Ok((sent, received)) => (sent + self.prefix.len() as u64, received),
            // A splice that ends in an error (a side reset mid-way) reports no counts; the
            // kernel's counters of the sandbox's socket still know what crossed it.
            Err(_) => socket_counters(&self.client).unwrap_or((self.prefix.len() as u64, 0)),
        };
        self.record(&host, Decision::Allowed, &rule, None, sent, received);
    }

    fn record(
        &self,
        host: &str,
        decision: Decision,
        rule: &str,
        reason: Option<String>,
        bytes_sent: u64,
        bytes_received: u64,
    ) {
        let mut entry = entry(&self.sandbox.id, host, self.port, decision, rule);
        entry.reason = reason;
        entry.bytes_sent = bytes_sent;
        entry.bytes_received = bytes_received;
        self.shared.log.record(&self.sandbox.id, entry);
    }
}

/// What the sandbox sent through `client` (bytes received on it) and what reached it (bytes
/// it acknowledged), from the kernel's `TCP_INFO`.
fn socket_counters(client: &TcpStream) -> Option<(u64, u64)> {
    use std::os::fd::AsRawFd;
    // SAFETY: zeroed plain-data struct; getsockopt writes at most `len` bytes into it.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    let status = unsafe {
        libc::getsockopt(
            client.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    (status == 0).then_some((info.tcpi_bytes_received, info.tcpi_bytes_acked))
}

/// An entry of the egress log, stamped now, with no reason, bytes or request.
pub(super) fn entry(
    sandbox_id: &str,
    host: &str,
    port: u16,
    decision: Decision,
    rule: &str,
) -> EgressEntry {
    EgressEntry {
        time: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        sandbox_id: sandbox_id.to_string(),
        host: host.to_string(),
        port,
        decision,
        rule: rule.to_string(),
        reason: None,
        bytes_sent: 0,
        bytes_received: 0,
        request: None,
        header_rule: None,
        status: None,
    }
}
