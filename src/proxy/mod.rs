//! The egress proxy: every TCP connection a sandbox opens to the outside ends here, on the
//! host, and is judged by the sandbox's `access_control` before anything is dialled.
//!
//! How a connection gets here (set up by `runtime::network` in each sandbox's own network
//! namespace, which the sandbox cannot change: it has no `CAP_NET_ADMIN`): the namespace has
//! loopback and one interface with a default route whose packets go nowhere, and its
//! netfilter tables redirect every outgoing TCP connection to a listening socket the server
//! opened *inside* that namespace; all other traffic except loopback is dropped. The DNS
//! stub's UDP socket is opened there the same way. The server's tasks hold these sockets,
//! so the proxy runs outside the sandbox although its sockets sit in the sandbox's namespace,
//! and no route from the sandbox reaches the host or another sandbox at all.
//!
//! * `access` — `access_control` parsed, validated (422 naming the entry) and decided.
//! * `ca` — the server's egress CA and the leaf certificates it mints per host name.
//! * `rules` — the header rules of `proxy_config` (and its other fields), parsed and
//!   validated; `{NAME}` templates of workspace secrets.
//! * `names` — the per-sandbox pool of synthetic addresses (198.18.0.0/15) the DNS stub
//!   hands out, and the name behind each, so connections are judged by hostname.
//! * `dns_stub` — answers the sandbox's DNS queries from the pool.
//! * `sniff` — the TLS SNI and the HTTP `Host` read from a connection's first bytes.
//! * `upstream` — resolving and dialling the real destination (`--resolve`,
//!   `--allow-private-cidr`, `--upstream-proxy`), refusing non-public addresses.
//! * `connection` — one connection: original destination, checks, decision, splice; and
//!   `connection::intercept`, the TLS opened for a host a header rule may match.
//! * `injection` — a sandbox's header rules with their values resolved, set on requests.
//! * `sigv4` — aws rules: requests to AWS endpoints re-signed with the real keys.
//! * `gcp_token` — gcp rules: a service account's OAuth tokens, minted and cached.
//! * `tls` — the two TLS ends of an opened connection (minted leaf; verified upstream).
//! * `origin` — the real host of an opened connection as an HTTP/1.1 or HTTP/2 client.
//! * `replay` — a sandbox's stream with the peeked bytes put back, counting both ways.
//! * `hub` — [`Egress`]: the one task serving every sandbox's sockets, and the policies.
//! * `egress_log` — the per-sandbox log of decisions.

pub mod access;
pub mod ca;
mod connection;
pub mod dns_stub;
pub mod egress_log;
pub mod gcp_token;
mod hub;
pub mod injection;
pub mod names;
mod origin;
mod replay;
pub mod rules;
pub mod sigv4;
pub mod sniff;
pub mod tls;
pub mod upstream;

pub use hub::{Egress, Policy};
