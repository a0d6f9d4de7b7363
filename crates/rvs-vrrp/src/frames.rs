//! The link-layer announcements a new master sends for its addresses, byte for byte as
//! keepalived sends them (`vrrp_arp.c`, `vrrp_ndisc.c`), to go out of an `AF_PACKET`
//! socket.
//!
//! * IPv4, gratuitous ARP (RFC 5798 §6.4.1, RFC 5227 §3): Ethernet broadcast, an ARP
//!   *request* with sender = target = the virtual address, target hardware address all
//!   ones, sender hardware address the interface's MAC (keepalived uses no virtual MAC by
//!   default).
//! * IPv6, unsolicited Neighbor Advertisement (RFC 4861 §4.4, §7.2.6): to all-nodes
//!   `ff02::1` from the virtual address, Hop Limit 255, Override set, Router set only if
//!   the interface forwards, with a Target Link-Layer Address option.

use crate::checksum::{pseudo_header, Sum};
use std::net::{Ipv4Addr, Ipv6Addr};

pub const ETH_P_ARP: u16 = 0x0806;
pub const ETH_P_IPV6: u16 = 0x86dd;
const BROADCAST: [u8; 6] = [0xff; 6];
/// 33:33 + the low 32 bits of ff02::1 (RFC 2464 §7).
const ALL_NODES_MAC: [u8; 6] = [0x33, 0x33, 0, 0, 0, 1];
const ALL_NODES: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1);
const ICMPV6: u8 = 58;
const ND_NEIGHBOR_ADVERT: u8 = 136;
const ND_OPT_TARGET_LL_ADDR: u8 = 2;
const NA_ROUTER: u8 = 0x80;
const NA_OVERRIDE: u8 = 0x20;

fn ethernet(dst: [u8; 6], src: [u8; 6], ethertype: u16) -> Vec<u8> {
    let mut f = Vec::with_capacity(90);
    f.extend_from_slice(&dst);
    f.extend_from_slice(&src);
    f.extend_from_slice(&ethertype.to_be_bytes());
    f
}

/// A gratuitous ARP for `vip` from `mac` (a 42-byte frame; the driver pads it).
pub fn gratuitous_arp(mac: [u8; 6], vip: Ipv4Addr) -> Vec<u8> {
    let mut f = ethernet(BROADCAST, mac, ETH_P_ARP);
    f.extend_from_slice(&1u16.to_be_bytes()); // hardware type: Ethernet
    f.extend_from_slice(&0x0800u16.to_be_bytes()); // protocol type: IPv4
    f.extend_from_slice(&[6, 4]); // address lengths
    f.extend_from_slice(&1u16.to_be_bytes()); // op: request
    f.extend_from_slice(&mac);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&BROADCAST);
    f.extend_from_slice(&vip.octets());
    f
}

/// An unsolicited Neighbor Advertisement for `vip` from `mac`.
pub fn unsolicited_na(mac: [u8; 6], vip: Ipv6Addr, router: bool) -> Vec<u8> {
    let mut icmp = Vec::with_capacity(32);
    icmp.extend_from_slice(&[ND_NEIGHBOR_ADVERT, 0, 0, 0]);
    let flags = NA_OVERRIDE | if router { NA_ROUTER } else { 0 };
    icmp.extend_from_slice(&[flags, 0, 0, 0]);
    icmp.extend_from_slice(&vip.octets());
    icmp.extend_from_slice(&[ND_OPT_TARGET_LL_ADDR, 1]);
    icmp.extend_from_slice(&mac);
    let sum: Sum = pseudo_header(vip.into(), ALL_NODES.into(), ICMPV6, icmp.len()).feed(&icmp);
    icmp[2..4].copy_from_slice(&sum.finish().to_be_bytes());

    let mut f = ethernet(ALL_NODES_MAC, mac, ETH_P_IPV6);
    f.extend_from_slice(&[0x60, 0, 0, 0]);
    f.extend_from_slice(&(icmp.len() as u16).to_be_bytes());
    f.extend_from_slice(&[ICMPV6, 255]);
    f.extend_from_slice(&vip.octets());
    f.extend_from_slice(&ALL_NODES.octets());
    f.extend_from_slice(&icmp);
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    const MAC: [u8; 6] = [2, 0, 0, 0, 0, 0x0a];

    #[test]
    fn rfc5798_6_4_1_gratuitous_arp_is_byte_for_byte_keepalived_s() {
        // Captured from keepalived 2.2.7 taking over 192.168.0.38 on 02:00:00:00:00:0a.
        let want = hex(
            "ffffffffffff02000000000a0806000108000604000102000000000ac0a80026ffffffffffffc0a80026",
        );
        assert_eq!(gratuitous_arp(MAC, Ipv4Addr::new(192, 168, 0, 38)), want);
    }

    #[test]
    fn rfc4861_4_4_unsolicited_na_is_byte_for_byte_keepalived_s() {
        // Captured from keepalived 2.2.7 taking over fe80::60 (interface not forwarding).
        let want = hex(concat!(
            "33330000000102000000000a86dd6000000000203afffe800000000000000000000000000060",
            "ff020000000000000000000000000001880056d420000000fe800000000000000000000000000060",
            "020102000000000a"
        ));
        assert_eq!(
            unsolicited_na(MAC, "fe80::60".parse().unwrap(), false),
            want
        );
        let r = unsolicited_na(MAC, "fe80::60".parse().unwrap(), true);
        assert_eq!(r[14 + 40 + 4], NA_ROUTER | NA_OVERRIDE);
    }
}
