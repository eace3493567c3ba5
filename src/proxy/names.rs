//! One sandbox's synthetic addresses. The DNS stub answers each name the sandbox asks for
//! with an address of 198.18.0.0/15 (RFC 2544's benchmarking range, never routed on the
//! internet), and the proxy maps each connection to such an address back to that name, so
//! a connection is judged by the hostname the sandbox asked for, not by an address.
//!
//! 198.18.0.0/24 is left out because the sandbox's own interface has 198.18.0.1, and
//! 198.19.255.255 because it is the broadcast address of the /15, which a socket cannot
//! connect to. A name keeps its address while the pool lives. When every address is taken,
//! the address handed out least recently goes to the new name; by then the old name's
//! answer has long expired (its TTL is a minute), so a connection to it counts as the new
//! name.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, Ipv4Addr};

/// The sandbox's own address on its interface.
pub const SANDBOX_ADDRESS: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 1);

/// The first pool address, as an integer (198.18.1.0).
const FIRST: u32 = u32::from_be_bytes([198, 18, 1, 0]);
/// One past the last pool address (198.19.255.255, the /15's broadcast, is left out).
const END: u32 = u32::from_be_bytes([198, 19, 255, 255]);

/// What the pool knows about one handed-out address.
#[derive(Debug)]
struct Slot {
    name: String,
    /// When the address was last handed out (the pool's own clock); its key in `by_age`.
    stamp: u64,
}

/// Names ↔ addresses of one sandbox.
///
/// Memory is bounded by the capacity: each address has at most one name, one entry in
/// `by_name` and one in `by_age`. Every operation is a few hash or B-tree look-ups.
#[derive(Debug)]
pub struct NamePool {
    by_name: HashMap<String, u32>,
    by_address: HashMap<u32, Slot>,
    /// Handed-out addresses keyed by their last stamp, least recent first.
    by_age: BTreeMap<u64, u32>,
    /// Ticks once per hand-out, so stamps are unique.
    clock: u64,
    /// The next address never handed out yet.
    next: u32,
    /// One past the last address this pool may use.
    end: u32,
}

impl Default for NamePool {
    fn default() -> Self {
        NamePool::new()
    }
}

impl NamePool {
    /// A pool over the whole range.
    pub fn new() -> NamePool {
        NamePool::with_capacity_for_tests(END - FIRST)
    }

    /// A pool of only `capacity` addresses (at least 1, at most the whole range), so tests
    /// can reach recycling quickly.
    pub fn with_capacity_for_tests(capacity: u32) -> NamePool {
        NamePool {
            by_name: HashMap::new(),
            by_address: HashMap::new(),
            by_age: BTreeMap::new(),
            clock: 0,
            next: FIRST,
            end: FIRST + capacity.clamp(1, END - FIRST),
        }
    }

    /// The address of `name` (normalised: lowercase, trailing dot removed), allocated on
    /// first use. The same name always gets the same address while the pool lives, unless
    /// the pool filled up and recycled it; then the least recently handed-out address is
    /// reused.
    pub fn address_for(&mut self, name: &str) -> Ipv4Addr {
        let name = normalise(name);
        let addr = match self.by_name.get(&name) {
            Some(&addr) => addr,
            None => {
                let addr = self.free_address();
                self.by_name.insert(name.clone(), addr);
                addr
            }
        };
        self.touch(addr, name);
        Ipv4Addr::from(addr)
    }

    /// The name behind a pool address, if any.
    pub fn name_of(&self, addr: Ipv4Addr) -> Option<&str> {
        self.by_address
            .get(&u32::from(addr))
            .map(|slot| slot.name.as_str())
    }

    /// Whether `addr` lies in the pool's range (198.18.0.0/15), where only the stub's
    /// answers (and the sandbox's own address) live.
    pub fn in_pool(addr: IpAddr) -> bool {
        match addr {
            IpAddr::V4(v4) => {
                let [a, b, _, _] = v4.octets();
                a == 198 && (b & 0xfe) == 18
            }
            IpAddr::V6(_) => false,
        }
    }

    /// An address with no name: a fresh one while any is left, else the least recently
    /// handed-out one, taken from its old name.
    fn free_address(&mut self) -> u32 {
        if self.next < self.end {
            self.next += 1;
            return self.next - 1;
        }
        // The pool is full, so `by_age` holds every address and is never empty here.
        let Some((_, oldest)) = self.by_age.pop_first() else {
            return FIRST;
        };
        if let Some(slot) = self.by_address.remove(&oldest) {
            self.by_name.remove(&slot.name);
        }
        oldest
    }

    /// Records that `addr` was just handed out for `name`.
    fn touch(&mut self, addr: u32, name: String) {
        self.clock += 1;
        let stamp = self.clock;
        if let Some(old) = self.by_address.insert(addr, Slot { name, stamp }) {
            self.by_age.remove(&old.stamp);
        }
        self.by_age.insert(stamp, addr);
    }
}

/// Lowercase, without one trailing dot: `Example.COM.` and `example.com` are one name.
fn normalise(name: &str) -> String {
    name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase()
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
        assert_eq!(pool.name_of(SANDBOX_ADDRESS), None);
    }

    #[test]
    fn the_range_is_the_slash_15() {
        for inside in ["198.18.0.1", "198.18.1.0", "198.19.255.255"] {
            assert!(NamePool::in_pool(inside.parse().unwrap()), "{inside}");
        }
        for outside in [
            "198.17.255.255",
            "198.20.0.0",
            "10.0.0.1",
            "::1",
            "::ffff:198.18.1.0",
        ] {
            assert!(!NamePool::in_pool(outside.parse().unwrap()), "{outside}");
        }
        assert!(NamePool::in_pool(IpAddr::V4(SANDBOX_ADDRESS)));
    }

    #[test]
    fn the_whole_pool_stays_out_of_the_reserved_slash_24_and_broadcast() {
        let pool = NamePool::new();
        assert_eq!(pool.end - pool.next, (1 << 17) - 256 - 1);
        assert_eq!(
            Ipv4Addr::from(pool.end - 1),
            Ipv4Addr::new(198, 19, 255, 254)
        );
    }

    #[test]
    fn a_full_pool_recycles_the_least_recently_handed_out_address() {
        let mut pool = NamePool::with_capacity_for_tests(2);
        let a = pool.address_for("a.test");
        let b = pool.address_for("b.test");
        // Asking for a.test again makes b.test the least recently handed out.
        assert_eq!(pool.address_for("a.test"), a);
        let c = pool.address_for("c.test");
        assert_eq!(c, b);
        assert_eq!(pool.name_of(b), Some("c.test"));
        assert_eq!(pool.name_of(a), Some("a.test"));
        let again = pool.address_for("b.test");
        assert_eq!(again, a, "b.test gets the now least recent address");
        assert_eq!(pool.name_of(a), Some("b.test"));
        assert_eq!(pool.by_name.len(), 2);
        assert_eq!(pool.by_address.len(), 2);
        assert_eq!(pool.by_age.len(), 2);
    }

    #[test]
    fn memory_stays_bounded_under_churn() {
        let mut pool = NamePool::with_capacity_for_tests(8);
        for i in 0..1000 {
            let name = format!("n{}.test", i % 13);
            let addr = pool.address_for(&name);
            assert_eq!(pool.name_of(addr), Some(name.as_str()));
        }
        assert_eq!(pool.by_name.len(), 8);
        assert_eq!(pool.by_address.len(), 8);
        assert_eq!(pool.by_age.len(), 8);
    }
}
