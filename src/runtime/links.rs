//! The interfaces and route of a sandbox's network namespace, set over rtnetlink from the
//! calling thread (which must be in that namespace): what `ip -batch` did, without starting
//! a process for it on every create.
//!
//! After [`add_eth0`]: `lo` and `eth0` are up, `eth0` (one end of a veth pair whose other
//! end, `eth0p`, is up in the same namespace) has `address/32`, and the default route leads
//! out of `eth0`, so `connect()` to any address gets as far as netfilter. The route is read
//! back before it returns.

use std::io;
use std::net::{IpAddr, Ipv4Addr};

use futures_util::TryStreamExt;
use rtnetlink::packet_route::route::{RouteAttribute, RouteScope};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};

use super::RuntimeError;

/// The sandbox's interface; its veth peer is `eth0p`.
pub const INTERFACE: &str = "eth0";
const PEER: &str = "eth0p";

/// Sets up `lo`, `eth0` and the default route in the calling thread's network namespace.
/// Blocking: it runs its own small event loop, since the netlink socket belongs to the
/// namespace the thread that opens it is in.
pub fn add_eth0(address: Ipv4Addr) -> Result<(), RuntimeError> {
    with_netlink(async |handle| configure(handle, address).await)
}

/// Runs `work` with a netlink connection opened in the calling thread's network namespace,
/// on an event loop of its own that ends with it.
fn with_netlink<T>(
    work: impl AsyncFnOnce(&Handle) -> Result<T, RuntimeError>,
) -> Result<T, RuntimeError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_io()
        .build()
        .map_err(failed("start the event loop to set up"))?;
    runtime.block_on(async {
        let (connection, handle, _) =
            rtnetlink::new_connection().map_err(failed("open a netlink socket to set up"))?;
        let connection = tokio::spawn(connection);
        let outcome = work(&handle).await;
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
        .map_err(netlink("add the default route to"))?;
    read_back_default_route(handle, index).await
}

/// Checks that the kernel holds the default route through `eth0`. A netlink connection that
/// failed part-way ends its pending requests' replies without an error, which would look
/// like success; the route is the last request made, and reading it back proves every
/// request before it was answered.
async fn read_back_default_route(handle: &Handle, index: u32) -> Result<(), RuntimeError> {
    let mut routes = handle
        .route()
        .get(RouteMessageBuilder::<Ipv4Addr>::new().build())
        .execute();
    while let Some(route) = routes
        .try_next()
        .await
        .map_err(netlink("read back the routes of"))?
    {
        let through_eth0 = route.attributes.contains(&RouteAttribute::Oif(index));
        if route.header.destination_prefix_length == 0 && through_eth0 {
            return Ok(());
        }
    }
    Err(failed("find the default route it added to")(
        io::Error::new(io::ErrorKind::NotFound, "the kernel does not list it"),
    ))
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::test_support::in_a_new_network_namespace;

    #[test]
    fn the_interfaces_and_the_default_route_are_set_and_read_back() {
        let Some(interfaces) = in_a_new_network_namespace(|| {
            add_eth0(Ipv4Addr::new(198, 18, 0, 1)).unwrap();
            // (name, up, IPv4 address) of each interface the calling thread's namespace has.
            nix::ifaddrs::getifaddrs()
                .unwrap()
                .map(|entry| {
                    let up = entry.flags.contains(nix::net::if_::InterfaceFlags::IFF_UP);
                    let v4 = entry
                        .address
                        .and_then(|a| a.as_sockaddr_in().map(|a| a.ip()));
                    (entry.interface_name, up, v4)
                })
                .collect::<Vec<_>>()
        }) else {
            return;
        };
        for name in ["lo", INTERFACE, PEER] {
            assert!(
                interfaces.iter().any(|(n, up, _)| n == name && *up),
                "{name} is not up: {interfaces:?}"
            );
        }
        let eth0: Vec<_> = interfaces
            .iter()
            .filter_map(|(n, _, v4)| (n == INTERFACE).then_some(*v4).flatten())
            .collect();
        assert_eq!(eth0, [Ipv4Addr::new(198, 18, 0, 1)], "{interfaces:?}");
    }

    #[test]
    fn a_namespace_without_the_route_fails_the_read_back() {
        let Some(outcome) = in_a_new_network_namespace(|| {
            let lo = nix::net::if_::if_nametoindex("lo").unwrap();
            with_netlink(async |handle| read_back_default_route(handle, lo).await)
        }) else {
            return;
        };
        let error = outcome.unwrap_err().to_string();
        assert!(error.contains("default route"), "{error}");
    }

    #[test]
    fn setting_up_twice_fails_on_the_existing_interface() {
        let Some(second) = in_a_new_network_namespace(|| {
            add_eth0(Ipv4Addr::new(198, 18, 0, 1)).unwrap();
            add_eth0(Ipv4Addr::new(198, 18, 0, 1))
        }) else {
            return;
        };
        let error = second.unwrap_err().to_string();
        assert!(error.contains("add eth0"), "{error}");
        assert!(error.contains("exists"), "{error}");
    }
}
