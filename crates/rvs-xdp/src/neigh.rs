//! Neighbour resolution for the next hops XDP sends to. `bpf_fib_lookup` only reads the
//! kernel's neighbour table; when a next hop is missing the program drops the packet
//! (reason `no_neigh`) and queues the address. rvsd drains the queue and makes the kernel
//! resolve each address by sending it one UDP datagram (discard port): ARP / neighbour
//! discovery runs as for any local traffic. Real servers are resolved up front too.

use crate::abi::{self, Plain};
use crate::encode::ip_of;
use crate::loader::Director;
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// Makes the kernel resolve `addr`'s next hop.
pub fn resolve(addr: IpAddr) {
    let bind: SocketAddr = match addr {
        IpAddr::V4(_) => "0.0.0.0:0".parse().expect("literal"),
        IpAddr::V6(_) => "[::]:0".parse().expect("literal"),
    };
    if let Ok(s) = UdpSocket::bind(bind) {
        let _ = s.send_to(b"rvs", SocketAddr::new(addr, 9));
    }
}

/// Drains the queue of unresolved next hops and resolves each once.
pub fn drain(dir: &Director) -> usize {
    let mut seen = HashSet::new();
    let mut k = abi::VipKey::default();
    while let Ok(true) = dir.maps.neigh_req.pop(k.as_bytes_mut()) {
        let addr = ip_of(k.family as u8, &k.addr);
        if seen.insert(addr) {
            resolve(addr);
        }
    }
    seen.len()
}
