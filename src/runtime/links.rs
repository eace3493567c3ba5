//! The interfaces and route of a sandbox's network namespace, set over rtnetlink from the
//! calling thread (which must be in that namespace): what `ip -batch` did, without starting
//! a process for it on every create.
//!
//! After [`add_eth0`]: `lo` and `eth0` are up, `eth0` (one end of a veth pair whose other
//! end, `eth0p`, is up in the same namespace) has `address/32`, and the default route leads
//! out of `eth0`, so `connect()` to any address gets as far as netfilter.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use rtnetlink::packet_route::route::RouteScope;
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::RuntimeError;

/// The sandbox's interface; its veth peer is `eth0p`.
pub const INTERFACE: &str = "eth0";
const PEER: &str = "eth0p";

/// Sets up `lo`, `eth0` and the default route in the calling thread's network namespace.
/// Blocking: it runs its own small event loop, since the netlink socket belongs to the
/// namespace the thread that opens it is in.
pub fn add_eth0(address: Ipv4Addr) -> Result<(), RuntimeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(failed("start the event loop to set up"))?;
    runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(failed("open a netlink socket to set up"))?;
        let connection = tokio::spawn(connection);
        let outcome = configure(&handle, address).await;
        connection.abort();
        outcome
    })
}

async fn configure(handle: &Handle, address: Ipv4Addr) -> Result<(), RuntimeError> {
    let link = handle.link();
    link.set(LinkUnspec::new_with_name("lo").up().build())
        .execute()
        .await
        .map_err(netlink("bring up lo in"))?;
    link.add(LinkVeth::new(INTERFACE, PEER).build())
        .execute()
        .await
        .map_err(netlink("add eth0 to"))?;
    let index = nix::net::if_::if_nametoindex(INTERFACE)
        .map_err(|errno| failed("find eth0 in")(errno.into()))?;
    handle
        .address()
        .add(index, IpAddr::V4(address), 32)
        .execute()
        .await
        .map_err(netlink("address eth0 in"))?;
    for (name, doing) in [(PEER, "bring up eth0p in"), (INTERFACE, "bring up eth0 in")] {
        link.set(LinkUnspec::new_with_name(name).up().build())
            .execute()
            .await
            .map_err(netlink(doing))?;
    }
    // Scope link, as `ip route add default dev eth0` makes it: no gateway, the device alone.
    let default_route = RouteMessageBuilder::<Ipv4Addr>::new()
        .output_interface(index)
        .scope(RouteScope::Link)
        .build();
    handle
        .route()
        .add(default_route)
        .execute()
        .await
        .map_err(netlink("add the default route to"))
}

/// An I/O failure while setting up the sandbox's network.
fn failed(what: &'static str) -> impl FnOnce(io::Error) -> RuntimeError {
    move |error| RuntimeError::io(what, "the sandbox network")(error)
}

/// A request the kernel refused (its errno kept) or a reply that made no sense.
fn netlink(what: &'static str) -> impl FnOnce(rtnetlink::Error) -> RuntimeError {
    move |error| {
        let error = match error {
            rtnetlink::Error::NetlinkError(message) => message.to_io(),
            other => io::Error::other(other.to_string()),
        };
        failed(what)(error)
    }
}
