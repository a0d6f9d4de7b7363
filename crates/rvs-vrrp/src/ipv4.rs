//! The IPv4 header of an advertisement. keepalived sends VRRP over a raw socket with
//! `IP_HDRINCL` and builds the header itself (TOS 0xc0 "internetwork control", TTL 255,
//! no fragmentation); rvs does the same, so the source address is exactly the one the
//! VRRPv3 pseudo-header covered. Receiving on a raw IPv4 socket yields the header too:
//! that is where the TTL check of RFC 5798 §7.1 gets its TTL.

use crate::checksum;
use crate::drop::DropReason;
use std::net::Ipv4Addr;

/// IPv4 header without options.
pub const HEADER_LEN: usize = 20;
/// keepalived's TOS: precedence 6, internetwork control.
pub const TOS_INTERNETWORK_CONTROL: u8 = 0xc0;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Header {
    pub tos: u8,
    pub id: u16,
    pub ttl: u8,
    pub protocol: u8,
    pub src: Ipv4Addr,
    pub dst: Ipv4Addr,
}

/// Header followed by `payload`, header checksum filled in (the kernel would fill it
/// too, and the total length).
pub fn build(h: &Header, payload: &[u8]) -> Vec<u8> {
    let total = (HEADER_LEN + payload.len()) as u16;
    let mut b = Vec::with_capacity(total.into());
    b.push(0x45);
    b.push(h.tos);
    b.extend_from_slice(&total.to_be_bytes());
    b.extend_from_slice(&h.id.to_be_bytes());
    b.extend_from_slice(&[0, 0]); // flags, fragment offset
    b.push(h.ttl);
    b.push(h.protocol);
    b.extend_from_slice(&[0, 0]);
    b.extend_from_slice(&h.src.octets());
    b.extend_from_slice(&h.dst.octets());
    let c = checksum::internet(&b);
    b[10..12].copy_from_slice(&c.to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// The header of a received packet and its payload (options skipped; bytes beyond the
/// total length, if any, ignored).
///
/// # Errors
/// [`DropReason::IpHeader`] when the header is not a well-formed IPv4 header.
pub fn parse(buf: &[u8]) -> Result<(Header, &[u8]), DropReason> {
    if buf.len() < HEADER_LEN || buf[0] >> 4 != 4 {
        return Err(DropReason::IpHeader);
    }
    let ihl = usize::from(buf[0] & 0x0f) * 4;
    let total = usize::from(u16::from_be_bytes([buf[2], buf[3]]));
    if ihl < HEADER_LEN || total < ihl || total > buf.len() {
        return Err(DropReason::IpHeader);
    }
    let h = Header {
        tos: buf[1],
        id: u16::from_be_bytes([buf[4], buf[5]]),
        ttl: buf[8],
        protocol: buf[9],
        src: Ipv4Addr::new(buf[12], buf[13], buf[14], buf[15]),
        dst: Ipv4Addr::new(buf[16], buf[17], buf[18], buf[19]),
    };
    Ok((h, &buf[ihl..total]))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The IPv4 header keepalived 2.2.7 put on its first advert (from 10.9.0.1).
    const KEEPALIVED_HEADER: [u8; 20] = [
        0x45, 0xc0, 0x00, 0x28, 0x00, 0x01, 0x00, 0x00, 0xff, 0x70, 0xd0, 0x88, 0x0a, 0x09, 0x00,
        0x01, 0xe0, 0x00, 0x00, 0x12,
    ];

    #[test]
    fn builds_the_header_keepalived_sends() {
        let h = Header {
            tos: TOS_INTERNETWORK_CONTROL,
            id: 1,
            ttl: 255,
            protocol: 112,
            src: Ipv4Addr::new(10, 9, 0, 1),
            dst: Ipv4Addr::new(224, 0, 0, 18),
        };
        let b = build(&h, &[0u8; 20]);
        assert_eq!(b[..20], KEEPALIVED_HEADER);
        let (back, payload) = parse(&b).unwrap();
        assert_eq!(back, h);
        assert_eq!(payload.len(), 20);
    }

    #[test]
    fn rejects_truncated_and_bad_headers() {
        let mut b = KEEPALIVED_HEADER.to_vec();
        b.extend_from_slice(&[0u8; 20]);
        assert!(parse(&b[..19]).is_err());
        assert!(parse(&b[..30]).is_err(), "total length beyond the buffer");
        let mut v6 = b.clone();
        v6[0] = 0x65;
        assert!(parse(&v6).is_err());
        let mut short_ihl = b.clone();
        short_ihl[0] = 0x44;
        assert!(parse(&short_ihl).is_err());
        // Trailing bytes beyond the total length are not payload.
        b.extend_from_slice(&[9, 9]);
        assert_eq!(parse(&b).unwrap().1.len(), 20);
    }
}
