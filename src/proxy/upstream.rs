//! The proxy's side of a connection: finding the real address of the name a sandbox asked
//! for and dialling it, directly or through the operator's own forward proxy.
//!
//! A sandbox must not reach the host or its neighbours through the proxy, so every address
//! a name resolves to (and every literal IP) is checked: loopback, private, link-local
//! (cloud metadata), carrier-grade NAT, benchmark, multicast and unspecified ranges are
//! refused unless the server was started with `--allow-private-cidr` covering them.
//! Names are resolved by the host's own resolver (`getaddrinfo`: `/etc/hosts`, then DNS),
//! after `--resolve` pins.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a dial (resolution, connect, a forward proxy's answer) may take.
const DIAL_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a connection goes, as the sandbox addressed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Host(String),
    Ip(IpAddr),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Host(h) => f.write_str(h),
            Target::Ip(IpAddr::V6(ip)) => write!(f, "[{ip}]"),
            Target::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// One `--resolve` pin: `NAME=IP` (every port) or `NAME:PORT=IP:PORT` (that port only, sent
/// to another port: local upstreams need not own 80 or 443). `NAME` may be a literal IP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pin {
    pub name: String,
    pub port: Option<u16>,
    pub address: IpAddr,
    pub to_port: Option<u16>,
}

impl std::str::FromStr for Pin {
    type Err = String;

    fn from_str(text: &str) -> Result<Pin, String> {
        let bad = || format!("--resolve {text:?}: expected NAME=IP or NAME:PORT=IP:PORT");
        let (from, to) = text.split_once('=').ok_or_else(bad)?;
        let (name, port) = match from.rsplit_once(':') {
            Some((name, port)) => (name, Some(port.parse::<u16>().map_err(|_| bad())?)),
            None => (from, None),
        };
        if name.is_empty() || port == Some(0) {
            return Err(bad());
        }
        let (address, to_port) = match to.parse::<IpAddr>() {
            Ok(ip) => (ip, None),
            Err(_) => {
                let addr = to.parse::<SocketAddr>().map_err(|_| bad())?;
                (addr.ip(), Some(addr.port()))
            }
        };
        if port.is_some() != to_port.is_some() {
            return Err(bad());
        }
        // `[::1]:80=…` names an IPv6 literal: kept as the address prints, without brackets.
        let name = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        Ok(Pin {
            name: name.trim_end_matches('.').to_ascii_lowercase(),
            port,
            address,
            to_port,
        })
    }
}

/// How the proxy reaches the outside.
#[derive(Debug, Clone, Default)]
pub struct UpstreamConfig {
    /// `--resolve` pins, by name.
    pub pins: HashMap<String, Vec<Pin>>,
    /// `--allow-private-cidr`: ranges admitted although private.
    pub allowed_private: Vec<IpNet>,
    /// `--upstream-proxy host:port`: every connection goes through its `CONNECT`.
    pub forward_proxy: Option<String>,
}

/// Why a dial did not happen.
#[derive(Debug, thiserror::Error)]
pub enum DialError {
    #[error("{target} resolves only to non-public addresses ({address})")]
    Forbidden { target: String, address: IpAddr },
    #[error("{target} does not resolve: {reason}")]
    Unresolved { target: String, reason: String },
    #[error("connecting to {target}: {reason}")]
    Connect { target: String, reason: String },
    #[error("the upstream proxy refused CONNECT {target}: {status}")]
    ProxyRefused { target: String, status: String },
}

impl UpstreamConfig {
    pub fn add_pin(&mut self, pin: Pin) {
        self.pins.entry(pin.name.clone()).or_default().push(pin);
    }

    /// Whether the proxy may connect to `ip`.
    pub fn admits(&self, ip: IpAddr) -> bool {
        !is_non_public(ip) || self.allowed_private.iter().any(|net| net.contains(&ip))
    }

    /// A connection to `target:port`, with the bytes a forward proxy sent beyond its answer.
    pub async fn dial(&self, target: &Target, port: u16) -> Result<TcpStream, DialError> {
        match tokio::time::timeout(DIAL_TIMEOUT, self.dial_now(target, port)).await {
            Ok(result) => result,
            Err(_) => Err(DialError::Connect {
                target: format!("{target}:{port}"),
                reason: "timed out".into(),
            }),
        }
    }

    async fn dial_now(&self, target: &Target, port: u16) -> Result<TcpStream, DialError> {
        let name = format!("{target}:{port}");
        if let Some(proxy) = &self.forward_proxy {
            // The forward proxy resolves names itself; a literal IP is checked here, so the
            // operator's proxy is never asked for an address a sandbox may not reach.
            if let Target::Ip(ip) = target
                && !self.admits(*ip)
            {
                return Err(DialError::Forbidden {
                    target: name,
                    address: *ip,
                });
            }
            return connect_through(proxy, &name).await;
        }
        let candidates = self.addresses(target, port).await?;
        let admitted: Vec<SocketAddr> = candidates
            .iter()
            .copied()
            .filter(|a| self.admits(a.ip()))
            .collect();
        if admitted.is_empty() {
            return Err(DialError::Forbidden {
                target: name,
                address: candidates[0].ip(),
            });
        }
        let mut last = String::new();
        for addr in admitted {
            match TcpStream::connect(addr).await {
                Ok(stream) => {
                    let _ = stream.set_nodelay(true);
                    return Ok(stream);
                }
                Err(e) => last = e.to_string(),
            }
        }
        Err(DialError::Connect {
            target: name,
            reason: last,
        })
    }

    /// The addresses to try, never empty.
    async fn addresses(&self, target: &Target, port: u16) -> Result<Vec<SocketAddr>, DialError> {
        // A pin may name a literal IP too (`192.0.2.1:80=127.0.0.1:8080`), so tests and
        // air-gapped hosts can stand a local server in for any address.
        let key = match target {
            Target::Ip(ip) => ip.to_string(),
            Target::Host(host) => host.clone(),
        };
        if let Some(pins) = self.pins.get(&key) {
            let exact = pins.iter().find(|p| p.port == Some(port));
            let any = pins.iter().find(|p| p.port.is_none());
            if let Some(pin) = exact.or(any) {
                return Ok(vec![SocketAddr::new(
                    pin.address,
                    pin.to_port.unwrap_or(port),
                )]);
            }
        }
        let host = match target {
            Target::Ip(ip) => return Ok(vec![SocketAddr::new(*ip, port)]),
            Target::Host(host) => host,
        };
        let unresolved = |reason: String| DialError::Unresolved {
            target: host.clone(),
            reason,
        };
        let found: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map_err(|e| unresolved(e.to_string()))?
            .collect();
        if found.is_empty() {
            return Err(unresolved("no addresses".into()));
        }
        Ok(found)
    }
}

/// `CONNECT target` through the forward proxy at `proxy` (`host:port`).
async fn connect_through(proxy: &str, target: &str) -> Result<TcpStream, DialError> {
    let failed = |reason: String| DialError::Connect {
        target: format!("{target} via {proxy}"),
        reason,
    };
    let mut stream = TcpStream::connect(proxy)
        .await
        .map_err(|e| failed(e.to_string()))?;
    let _ = stream.set_nodelay(true);
    let request = format!("CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .await
        .map_err(|e| failed(e.to_string()))?;
    // Read the answer byte by byte: nothing beyond its head may be consumed here, since the
    // tunnel's first bytes belong to the sandbox's connection.
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 16 * 1024 {
            return Err(failed("the proxy's answer is too long".into()));
        }
        let byte = stream.read_u8().await.map_err(|e| failed(e.to_string()))?;
        head.push(byte);
    }
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut response = httparse::Response::new(&mut headers);
    match response.parse(&head) {
        Ok(httparse::Status::Complete(_))
            if response.code.is_some_and(|c| (200..300).contains(&c)) =>
        {
            Ok(stream)
        }
        Ok(_) => Err(DialError::ProxyRefused {
            target: target.to_string(),
            status: format!(
                "{} {}",
                response.code.unwrap_or(0),
                response.reason.unwrap_or("")
            ),
        }),
        Err(e) => Err(failed(format!("malformed answer: {e}"))),
    }
}

/// Addresses a sandbox may only reach when the operator allowed them: everything that is
/// not the public internet.
pub fn is_non_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => non_public_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return non_public_v4(v4);
            }
            let first = v6.segments()[0];
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (first & 0xfe00) == 0xfc00 // unique local (fd00:ec2::254 is AWS metadata)
                || (first & 0xffc0) == 0xfe80 // link-local
                || v6.segments()[..6] == [0x64, 0xff9b, 0, 0, 0, 0] // NAT64 of anything
                || v6 == Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, 1)
        }
    }
}

fn non_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local() // 169.254.0.0/16: cloud metadata lives at 169.254.169.254
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        || a == 0
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, and the DNS stub's pool
        || a >= 240
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_take_both_forms_and_refuse_others() {
        let pin: Pin = "API.test.=127.0.0.1".parse().unwrap();
        assert_eq!(pin.name, "api.test");
        assert_eq!((pin.port, pin.to_port), (None, None));
        let pin: Pin = "api.test:443=127.0.0.2:8443".parse().unwrap();
        assert_eq!((pin.port, pin.to_port), (Some(443), Some(8443)));
        let pin: Pin = "v6.test:80=[::1]:8080".parse().unwrap();
        assert_eq!(pin.address, "::1".parse::<IpAddr>().unwrap());
        let pin: Pin = "192.0.2.1:80=127.0.0.1:8080".parse().unwrap();
        assert_eq!((pin.name.as_str(), pin.port), ("192.0.2.1", Some(80)));
        let pin: Pin = "[2001:db8::1]:80=127.0.0.1:8080".parse().unwrap();
        assert_eq!(pin.name, "2001:db8::1");
        for bad in [
            "api.test",
            "=1.2.3.4",
            "api.test=nowhere",
            "api.test:443=127.0.0.1",
            "api.test=127.0.0.1:80",
            "api.test:0=127.0.0.1:1",
        ] {
            assert!(bad.parse::<Pin>().is_err(), "{bad}");
        }
    }

    #[test]
    fn only_public_addresses_are_admitted_by_default() {
        let config = UpstreamConfig::default();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "198.18.0.7",
            "255.255.255.255",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(!config.admits(ip.parse().unwrap()), "{ip}");
        }
        for ip in ["8.8.8.8", "1.1.1.1", "2606:4700::1111"] {
            assert!(config.admits(ip.parse().unwrap()), "{ip}");
        }
        let opened = UpstreamConfig {
            allowed_private: vec!["127.0.0.0/8".parse().unwrap()],
            ..Default::default()
        };
        assert!(opened.admits("127.0.0.9".parse().unwrap()));
        assert!(!opened.admits("10.0.0.1".parse().unwrap()));
    }
}
