//! One sandbox's synthetic addresses: the DNS stub answers each name with an address of
//! 198.18.0.0/15 (RFC 2544's benchmarking range, never routed on the internet) and the
//! proxy maps a connection to such an address back to the name the sandbox asked for.
//!
//! 198.18.0.0/24 is left out: the sandbox's own interface has 198.18.0.1. A name keeps its
//! address while the pool lives; when every address is taken, the one handed out longest
//! ago is given to the new name (a connection to it then counts as the new name — the old
//! name's answer expired long before, its TTL being a minute).

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, Ipv4Addr};

/// The sandbox's own address on `eth0`.
pub const SANDBOX_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);
/// First and one past the last pool address, as integers.
const FIRST: u32 = u32::from_be_bytes([198, 18, 1, 0]);
const END: u32 = u32::from_be_bytes([198, 20, 0, 0]);

/// Names ↔ addresses of one sandbox.
#[derive(Debug)]
pub struct NamePool {
    by_name: HashMap<String, u32>,
    by_address: HashMap<u32, String>,
    /// Addresses in the order they were handed out, oldest first.
    order: VecDeque<u32>,
    next: u32,
    end: u32,
}

impl Default for NamePool {
    fn default() -> Self {
        NamePool::new()
    }
}

impl NamePool {
    pub fn new() -> NamePool {
        NamePool::with_size(END - FIRST)
    }

    /// A pool of `size` addresses (small ones let tests reach recycling).
    fn with_size(size: u32) -> NamePool {
        NamePool {
            by_name: HashMap::new(),
            by_address: HashMap::new(),
            order: VecDeque::new(),
            next: FIRST,
            end: FIRST + size.min(END - FIRST),
        }
    }

    /// The address of `name` (lowercased, trailing dot removed), allocated on first use.
    pub fn address_for(&mut self, name: &str) -> Ipv4Addr {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        if let Some(addr) = self.by_name.get(&name) {
            return Ipv4Addr::from(*addr);
        }
        let addr = if self.next < self.end {
            self.next += 1;
            self.next - 1
        } else {
            // Full: recycle the address handed out longest ago.
            let oldest = self.order.pop_front().unwrap_or(FIRST);
            if let Some(old) = self.by_address.remove(&oldest) {
                self.by_name.remove(&old);
            }
            oldest
        };
        self.order.push_back(addr);
        self.by_address.insert(addr, name.clone());
        self.by_name.insert(name, addr);
        Ipv4Addr::from(addr)
    }

    /// The name behind a pool address, if any.
    pub fn name_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.by_address.get(&u32::from(addr)).map(String::as_str)
    }

    /// Whether `addr` lies in 198.18.0.0/15, where only the stub's answers live.
    pub fn in_pool(addr: IpAddr) -> bool {
        matches!(addr, IpAddr::V4(v4) if v4.octets()[0] == 198 && (v4.octets()[1] & 0xfe) == 18)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_keep_their_address_and_map_back() {
        let mut pool = NamePool::new();
        let a = pool.address_for("Example.COM.");
        assert_eq!(a, Ipv4Addr::new(198, 18, 1, 0));
        assert_eq!(pool.address_for("example.com"), a);
        let b = pool.address_for("other.test");
        assert_ne!(a, b);
        assert_eq!(pool.name_of(a), Some("example.com"));
        assert_eq!(pool.name_of(b), Some("other.test"));
        assert_eq!(pool.name_of(Ipv4Addr::new(198, 19, 9, 9)), None);
        assert!(NamePool::in_pool(IpAddr::V4(a)));
        assert!(NamePool::in_pool("198.19.255.255".parse().unwrap()));
        assert!(!NamePool::in_pool("198.20.0.0".parse().unwrap()));
        assert!(!NamePool::in_pool("::1".parse().unwrap()));
    }

    #[test]
    fn a_full_pool_recycles_the_oldest_address() {
        let mut pool = NamePool::with_size(2);
        let a = pool.address_for("a.test");
        let b = pool.address_for("b.test");
        let c = pool.address_for("c.test");
        assert_eq!(c, a);
        assert_eq!(pool.name_of(a), Some("c.test"));
        assert_eq!(pool.name_of(b), Some("b.test"));
        assert_ne!(pool.address_for("a.test"), c, "a.test gets a fresh one");
    }
}
