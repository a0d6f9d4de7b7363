//! Frames built by hand, every checksum computed in full (RFC 1071) — an independent check
//! of the incremental updates the BPF code does.

#![allow(dead_code)]

use std::net::IpAddr;

pub type Mac = [u8; 6];

pub const ETH_IP: u16 = 0x0800;
pub const ETH_IP6: u16 = 0x86dd;

pub fn csum(data: &[u8], seed: u32) -> u16 {
    let mut s = seed;
    for c in data.chunks(2) {
        let w = if c.len() == 2 {
            u16::from_be_bytes([c[0], c[1]])
        } else {
            u16::from_be_bytes([c[0], 0])
        };
        s += w as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

fn sum_words(data: &[u8]) -> u32 {
    data.chunks(2)
        .map(|c| {
            if c.len() == 2 {
                u16::from_be_bytes([c[0], c[1]]) as u32
            } else {
                (c[0] as u32) << 8
            }
        })
        .sum()
}

pub fn eth(dst: Mac, src: Mac, proto: u16) -> Vec<u8> {
    let mut v = Vec::with_capacity(14);
    v.extend_from_slice(&dst);
    v.extend_from_slice(&src);
    v.extend_from_slice(&proto.to_be_bytes());
    v
}

/// TCP flag bits.
pub const FIN: u8 = 0x01;
pub const SYN: u8 = 0x02;
pub const RST: u8 = 0x04;
pub const PSH: u8 = 0x08;
pub const ACK: u8 = 0x10;

/// A transport segment before its checksum.
#[derive(Clone, Debug)]
pub enum L4 {
    Tcp {
        sport: u16,
        dport: u16,
        flags: u8,
        payload: Vec<u8>,
    },
    /// `csum: false` sends a zero (absent) checksum (IPv4 only).
    Udp {
        sport: u16,
        dport: u16,
        payload: Vec<u8>,
        csum: bool,
    },
    /// Raw bytes with an IP protocol number.
    Raw { proto: u8, bytes: Vec<u8> },
}

impl L4 {
    pub fn proto(&self) -> u8 {
        match self {
            L4::Tcp { .. } => 6,
            L4::Udp { .. } => 17,
            L4::Raw { proto, .. } => *proto,
        }
    }

    /// The segment with its checksum for the given pseudo-header addresses.
    pub fn bytes(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut b = match self {
            L4::Tcp {
                sport,
                dport,
                flags,
                payload,
            } => {
                let mut b = Vec::new();
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&0x1000_0000u32.to_be_bytes()); // seq
                b.extend_from_slice(
                    &(if flags & ACK != 0 { 0x2000_0000u32 } else { 0 }).to_be_bytes(),
                );
                b.push(5 << 4);
                b.push(*flags);
                b.extend_from_slice(&64240u16.to_be_bytes());
                b.extend_from_slice(&[0, 0, 0, 0]); // csum, urg
                b.extend_from_slice(payload);
                b
            }
            L4::Udp {
                sport,
                dport,
                payload,
                ..
            } => {
                let mut b = Vec::new();
                b.extend_from_slice(&sport.to_be_bytes());
                b.extend_from_slice(&dport.to_be_bytes());
                b.extend_from_slice(&((8 + payload.len()) as u16).to_be_bytes());
                b.extend_from_slice(&[0, 0]);
                b.extend_from_slice(payload);
                b
            }
            L4::Raw { bytes, .. } => return bytes.clone(),
        };
        let off = match self {
            L4::Tcp { .. } => 16,
            _ => 6,
        };
        if let L4::Udp { csum: false, .. } = self {
            return b;
        }
        let c = l4_csum(src, dst, self.proto(), &b);
        let c = if c == 0 && self.proto() == 17 {
            0xffff
        } else {
            c
        };
        b[off..off + 2].copy_from_slice(&c.to_be_bytes());
        b
    }
}

/// Transport checksum with the pseudo-header.
pub fn l4_csum(src: IpAddr, dst: IpAddr, proto: u8, seg: &[u8]) -> u16 {
    let mut ph = Vec::new();
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            ph.extend_from_slice(&s.octets());
            ph.extend_from_slice(&d.octets());
            ph.extend_from_slice(&[0, proto]);
            ph.extend_from_slice(&(seg.len() as u16).to_be_bytes());
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            ph.extend_from_slice(&s.octets());
            ph.extend_from_slice(&d.octets());
            ph.extend_from_slice(&(seg.len() as u32).to_be_bytes());
            ph.extend_from_slice(&[0, 0, 0, proto]);
        }
        _ => panic!("mixed families"),
    }
    csum(seg, sum_words(&ph))
}

/// IPv4 header options/fields that fixtures vary.
#[derive(Clone, Debug)]
pub struct V4Opts {
    pub ttl: u8,
    pub tos: u8,
    pub id: u16,
    pub df: bool,
    pub mf: bool,
    pub frag_off: u16,
    pub options: Vec<u8>,
}

impl Default for V4Opts {
    fn default() -> Self {
        V4Opts {
            ttl: 64,
            tos: 0,
            id: 0x1234,
            df: true,
            mf: false,
            frag_off: 0,
            options: Vec::new(),
        }
    }
}

/// An IPv4 header (with options) followed by `payload`.
pub fn ipv4(src: IpAddr, dst: IpAddr, proto: u8, payload: &[u8], o: &V4Opts) -> Vec<u8> {
    let (IpAddr::V4(s), IpAddr::V4(d)) = (src, dst) else {
        panic!("ipv4 needs IPv4 addresses")
    };
    let hl = 20 + o.options.len();
    assert!(hl.is_multiple_of(4));
    let mut h = Vec::new();
    h.push(0x40 | (hl / 4) as u8);
    h.push(o.tos);
    h.extend_from_slice(&((hl + payload.len()) as u16).to_be_bytes());
    h.extend_from_slice(&o.id.to_be_bytes());
    let ff = (if o.df { 0x4000 } else { 0 }) | (if o.mf { 0x2000 } else { 0 }) | o.frag_off;
    h.extend_from_slice(&ff.to_be_bytes());
    h.push(o.ttl);
    h.push(proto);
    h.extend_from_slice(&[0, 0]);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    h.extend_from_slice(&o.options);
    let c = csum(&h, 0);
    h[10..12].copy_from_slice(&c.to_be_bytes());
    h.extend_from_slice(payload);
    h
}

/// An IPv6 header followed by `payload`; `nh` is the next header of the fixed header.
pub fn ipv6(src: IpAddr, dst: IpAddr, nh: u8, payload: &[u8], hop: u8, tclass: u8) -> Vec<u8> {
    let (IpAddr::V6(s), IpAddr::V6(d)) = (src, dst) else {
        panic!("ipv6 needs IPv6 addresses")
    };
    let mut h = Vec::new();
    h.extend_from_slice(&(0x6000_0000u32 | (tclass as u32) << 20).to_be_bytes());
    h.extend_from_slice(&(payload.len() as u16).to_be_bytes());
    h.push(nh);
    h.push(hop);
    h.extend_from_slice(&s.octets());
    h.extend_from_slice(&d.octets());
    h.extend_from_slice(payload);
    h
}

/// An IP packet of either family with a transport segment.
pub fn ip_packet(src: IpAddr, dst: IpAddr, l4: &L4) -> Vec<u8> {
    let seg = l4.bytes(src, dst);
    match src {
        IpAddr::V4(_) => ipv4(src, dst, l4.proto(), &seg, &V4Opts::default()),
        IpAddr::V6(_) => ipv6(src, dst, l4.proto(), &seg, 64, 0),
    }
}

pub fn ethertype(a: IpAddr) -> u16 {
    if a.is_ipv4() {
        ETH_IP
    } else {
        ETH_IP6
    }
}

/// A whole frame.
pub fn frame(dst: Mac, src: Mac, ip_packet: &[u8]) -> Vec<u8> {
    let proto = if ip_packet[0] >> 4 == 4 {
        ETH_IP
    } else {
        ETH_IP6
    };
    let mut f = eth(dst, src, proto);
    f.extend_from_slice(ip_packet);
    f
}

/// An ICMP (v4) or ICMPv6 error quoting `quote`, from `src` to `dst`.
pub fn icmp_error(src: IpAddr, dst: IpAddr, typ: u8, code: u8, info: u32, quote: &[u8]) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0];
    m.extend_from_slice(&info.to_be_bytes());
    m.extend_from_slice(quote);
    match src {
        IpAddr::V4(_) => {
            let c = csum(&m, 0);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            ipv4(
                src,
                dst,
                1,
                &m,
                &V4Opts {
                    df: false,
                    ..Default::default()
                },
            )
        }
        IpAddr::V6(_) => {
            let c = l4_csum(src, dst, 58, &m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            ipv6(src, dst, 58, &m, 64, 0)
        }
    }
}

/// Replaces bytes at an offset (for expected outputs).
pub fn patch(mut f: Vec<u8>, off: usize, bytes: &[u8]) -> Vec<u8> {
    f[off..off + bytes.len()].copy_from_slice(bytes);
    f
}

/// The frame with new MACs.
pub fn remac(f: &[u8], dst: Mac, src: Mac) -> Vec<u8> {
    let mut v = f.to_vec();
    v[0..6].copy_from_slice(&dst);
    v[6..12].copy_from_slice(&src);
    v
}

/// The ICMP error the director itself sends (port unreachable, frag needed): IPv4 TOS 0xc0,
/// ID 0, DF, TTL 64; ICMPv6 hop limit 64. `quote` is the offending IP header + 8 bytes.
pub fn director_icmp(
    src: IpAddr,
    dst: IpAddr,
    typ: u8,
    code: u8,
    info: u32,
    quote: &[u8],
) -> Vec<u8> {
    let mut m = vec![typ, code, 0, 0];
    m.extend_from_slice(&info.to_be_bytes());
    m.extend_from_slice(quote);
    match src {
        IpAddr::V4(_) => {
            let c = csum(&m, 0);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            ipv4(
                src,
                dst,
                1,
                &m,
                &V4Opts {
                    tos: 0xc0,
                    id: 0,
                    df: true,
                    ttl: 64,
                    ..Default::default()
                },
            )
        }
        IpAddr::V6(_) => {
            let c = l4_csum(src, dst, 58, &m);
            m[2..4].copy_from_slice(&c.to_be_bytes());
            ipv6(src, dst, 58, &m, 64, 0)
        }
    }
}

/// The first `ip header + 8` bytes of an IP packet (what an ICMP error quotes).
pub fn quote_of(ip_packet: &[u8]) -> Vec<u8> {
    let hl = if ip_packet[0] >> 4 == 4 {
        ((ip_packet[0] & 0xf) * 4) as usize
    } else {
        40
    };
    ip_packet[..(hl + 8).min(ip_packet.len())].to_vec()
}

/// The outer IPv4 header the director puts around a tunnelled packet: ID 0 with DF
/// (copied from the inner packet), TOS and TTL of the inner packet.
pub fn tunnel_v4(src: IpAddr, dst: IpAddr, proto: u8, inner: &[u8], df: bool) -> Vec<u8> {
    tunnel_v4_around(src, dst, proto, inner, inner, df)
}

/// As [`tunnel_v4`] with headers (UDP+GUE, GRE) between the outer header and `inner_ip`:
/// `payload` is what follows the outer header.
pub fn tunnel_v4_around(
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    payload: &[u8],
    inner_ip: &[u8],
    df: bool,
) -> Vec<u8> {
    let (tos, ttl) = inner_tos_ttl(inner_ip);
    // without DF the outer ID is the inner one (IPv4 inner packets)
    let id = if df {
        0
    } else {
        u16::from_be_bytes([inner_ip[4], inner_ip[5]])
    };
    ipv4(
        src,
        dst,
        proto,
        payload,
        &V4Opts {
            tos,
            ttl,
            id,
            df,
            ..Default::default()
        },
    )
}

pub fn tunnel_v6(src: IpAddr, dst: IpAddr, nh: u8, inner: &[u8]) -> Vec<u8> {
    let (tos, ttl) = inner_tos_ttl(inner);
    ipv6(src, dst, nh, inner, ttl, tos)
}

fn inner_tos_ttl(inner: &[u8]) -> (u8, u8) {
    if inner[0] >> 4 == 4 {
        (inner[1], inner[8])
    } else {
        (((inner[0] & 0xf) << 4) | (inner[1] >> 4), inner[7])
    }
}

/// The UDP source port of a GUE packet: a hash of the inner flow (see fwd.h tun_write).
pub fn gue_sport(saddr: IpAddr, sport: u16, dport: u16) -> u16 {
    let b = match saddr {
        IpAddr::V4(a) => {
            let mut b = [0u8; 16];
            b[..4].copy_from_slice(&a.octets());
            b
        }
        IpAddr::V6(a) => a.octets(),
    };
    let w0 = u32::from_ne_bytes([b[0], b[1], b[2], b[3]]);
    let w3 = u32::from_ne_bytes([b[12], b[13], b[14], b[15]]);
    let sp = u16::from_ne_bytes(sport.to_be_bytes()) as u32;
    let dp = u16::from_ne_bytes(dport.to_be_bytes()) as u32;
    let h = w0 ^ w3 ^ ((sp << 16) | dp);
    0xc000 | ((h ^ (h >> 16)) & 0x3fff) as u16
}

/// UDP + GUE header (version 0, no options) around an inner packet; checksum 0.
pub fn gue(sport: u16, dport: u16, inner: &[u8]) -> Vec<u8> {
    let mut v = Vec::new();
    v.extend_from_slice(&sport.to_be_bytes());
    v.extend_from_slice(&dport.to_be_bytes());
    v.extend_from_slice(&((8 + 4 + inner.len()) as u16).to_be_bytes());
    v.extend_from_slice(&[0, 0]);
    v.extend_from_slice(&[0, if inner[0] >> 4 == 4 { 4 } else { 41 }, 0, 0]);
    v.extend_from_slice(inner);
    v
}
