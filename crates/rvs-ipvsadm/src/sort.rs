//! The order of ipvsadm's listings.
//!
//! ipvsadm sorts services by (fwmark, family, protocol, address, port) and real servers by
//! (address, port), but it compares 32-bit fields by subtracting them into an `int`. So
//! two addresses more than 2^31 apart compare the "wrong" way round: `172.16.0.1` and
//! `192.168.0.1` both list before `10.0.0.1`. Scripts that diff listings see that order,
//! so it is reproduced here.
//!
//! Over addresses spread around the whole 32-bit circle that comparison is not a total
//! order. `slice::sort_by` may panic on such a comparator, so a plain merge sort is used:
//! it always terminates, and whenever the comparison is consistent (any set of addresses
//! within a 2^31 span, i.e. every ordinary table) its result is the one order there is,
//! the same as ipvsadm's.

use rvs_core::snapshot::{DestInfo, ServiceInfo};
use rvs_core::{Protocol, ServiceKey};
use std::cmp::Ordering;
use std::net::IpAddr;

/// `a - b` as C computes it into an `int`.
fn c_diff(a: u32, b: u32) -> i32 {
    a.wrapping_sub(b) as i32
}

fn words(addr: &IpAddr) -> [u32; 4] {
    match addr {
        IpAddr::V4(a) => [u32::from(*a), 0, 0, 0],
        IpAddr::V6(a) => {
            let o = a.octets();
            std::array::from_fn(|i| {
                u32::from_be_bytes([o[4 * i], o[4 * i + 1], o[4 * i + 2], o[4 * i + 3]])
            })
        }
    }
}

/// Address comparison: four words when the left one is IPv6, else the first word only.
fn addr_diff(a: &IpAddr, b: &IpAddr) -> i32 {
    let (wa, wb) = (words(a), words(b));
    let n = if a.is_ipv6() { 4 } else { 1 };
    (0..n)
        .map(|i| c_diff(wa[i], wb[i]))
        .find(|&d| d != 0)
        .unwrap_or(0)
}

fn to_ordering(d: i32) -> Ordering {
    d.cmp(&0)
}

/// Fields of a service as the kernel reports them: fwmark services carry address 0,
/// port 0 and the protocol ipvsadm gave them (TCP).
fn service_fields(key: &ServiceKey) -> (u32, u16, u8, IpAddr, u16) {
    match *key {
        ServiceKey::Addr { proto, addr, port } => {
            (0, key.family().af(), proto.number(), addr, port)
        }
        ServiceKey::Fwmark { mark, family } => {
            let zero = match family {
                rvs_core::Family::V4 => IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED),
                rvs_core::Family::V6 => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
            };
            (mark, family.af(), Protocol::Tcp.number(), zero, 0)
        }
    }
}

pub fn cmp_services(a: &ServiceKey, b: &ServiceKey) -> Ordering {
    let (fa, afa, pa, aa, porta) = service_fields(a);
    let (fb, afb, pb, ab, portb) = service_fields(b);
    let d = [
        c_diff(fa, fb),
        i32::from(afa) - i32::from(afb),
        i32::from(pa) - i32::from(pb),
        addr_diff(&aa, &ab),
        i32::from(porta) - i32::from(portb),
    ];
    to_ordering(d.into_iter().find(|&x| x != 0).unwrap_or(0))
}

pub fn cmp_dests(a: &DestInfo, b: &DestInfo) -> Ordering {
    let d = addr_diff(&a.cfg.addr, &b.cfg.addr);
    if d != 0 {
        return to_ordering(d);
    }
    a.cfg.port.cmp(&b.cfg.port)
}

/// Stable merge sort that tolerates an inconsistent comparator.
pub fn merge_sort<T: Clone>(items: &mut [T], cmp: &impl Fn(&T, &T) -> Ordering) {
    if items.len() < 2 {
        return;
    }
    let mid = items.len() / 2;
    merge_sort(&mut items[..mid], cmp);
    merge_sort(&mut items[mid..], cmp);
    let mut merged = Vec::with_capacity(items.len());
    let (mut i, mut j) = (0, mid);
    while i < mid && j < items.len() {
        if cmp(&items[j], &items[i]) == Ordering::Less {
            merged.push(items[j].clone());
            j += 1;
        } else {
            merged.push(items[i].clone());
            i += 1;
        }
    }
    merged.extend_from_slice(&items[i..mid]);
    merged.extend_from_slice(&items[j..]);
    items.clone_from_slice(&merged);
}

/// Services (and their servers) in ipvsadm's listing order, or as given with `--nosort`.
pub fn sorted_services(services: &[ServiceInfo], nosort: bool) -> Vec<ServiceInfo> {
    let mut out = services.to_vec();
    if !nosort {
        merge_sort(&mut out, &|a: &ServiceInfo, b: &ServiceInfo| {
            cmp_services(&a.cfg.key, &b.cfg.key)
        });
        for s in &mut out {
            merge_sort(&mut s.dests, &cmp_dests);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(addr: &str, port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: addr.parse().unwrap(),
            port,
        }
    }

    #[test]
    fn addresses_more_than_half_the_space_apart_sort_like_ipvsadm() {
        let mut keys = vec![
            key("10.0.0.1", 80),
            key("192.168.0.1", 80),
            key("172.16.0.1", 80),
        ];
        merge_sort(&mut keys, &cmp_services);
        assert_eq!(
            keys,
            [
                key("172.16.0.1", 80),
                key("192.168.0.1", 80),
                key("10.0.0.1", 80)
            ]
        );
    }

    #[test]
    fn close_addresses_sort_numerically_then_by_port() {
        let mut keys = vec![
            key("10.0.0.2", 80),
            key("10.0.0.1", 443),
            key("10.0.0.1", 80),
        ];
        merge_sort(&mut keys, &cmp_services);
        assert_eq!(
            keys,
            [
                key("10.0.0.1", 80),
                key("10.0.0.1", 443),
                key("10.0.0.2", 80)
            ]
        );
    }

    #[test]
    fn merge_sort_survives_a_cyclic_comparator() {
        let mut v: Vec<u32> = vec![0, 0x6000_0000, 0xc000_0000, 0x3000_0000, 0x9000_0000];
        merge_sort(&mut v, &|a: &u32, b: &u32| to_ordering(c_diff(*a, *b)));
        assert_eq!(v.len(), 5);
    }
}
