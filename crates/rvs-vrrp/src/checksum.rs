//! The Internet checksum (RFC 1071) and the pseudo-headers VRRPv3 adds to it.
//!
//! * VRRPv2 (RFC 3768 §5.3.8): over the VRRP message only.
//! * VRRPv3 (RFC 5798 §5.2.8): over the message plus a pseudo-header. For IPv6 it is the
//!   RFC 2460 §8.1 one (source, destination, 32-bit upper-layer length, three zero bytes,
//!   next header 112). For IPv4 the RFC is ambiguous; keepalived, tcpdump and Wireshark use
//!   the classic one (source, destination, zero, protocol 112, 16-bit length), and so do we.

use std::net::IpAddr;

/// IP protocol number of VRRP (RFC 5798 §5.1.1.3).
pub const IPPROTO_VRRP: u8 = 112;

/// One's-complement running sum of 16-bit big-endian words (an odd last byte is padded
/// with zero, RFC 1071 §4.1).
#[derive(Clone, Copy, Debug, Default)]
pub struct Sum(u32);

impl Sum {
    pub fn feed(mut self, bytes: &[u8]) -> Sum {
        let mut chunks = bytes.chunks_exact(2);
        for c in &mut chunks {
            self.0 += u32::from(u16::from_be_bytes([c[0], c[1]]));
            self.0 = (self.0 & 0xffff) + (self.0 >> 16);
        }
        if let [last] = chunks.remainder() {
            self.0 += u32::from(*last) << 8;
            self.0 = (self.0 & 0xffff) + (self.0 >> 16);
        }
        self
    }

    /// The checksum to put in the field: the complement of the folded sum.
    pub fn finish(self) -> u16 {
        let mut s = self.0;
        while s > 0xffff {
            s = (s & 0xffff) + (s >> 16);
        }
        !(s as u16)
    }
}

/// Checksum of `bytes` alone (VRRPv2, IPv4 header, ARP does not need one).
pub fn internet(bytes: &[u8]) -> u16 {
    Sum::default().feed(bytes).finish()
}

/// The sum of the pseudo-header for an upper-layer message of `len` bytes with protocol
/// `proto` between `src` and `dst` (both of one family; a mixed pair sums nothing, which
/// can only fail verification).
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: usize) -> Sum {
    match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => Sum::default()
            .feed(&s.octets())
            .feed(&d.octets())
            .feed(&[0, proto])
            .feed(&(len as u16).to_be_bytes()),
        (IpAddr::V6(s), IpAddr::V6(d)) => Sum::default()
            .feed(&s.octets())
            .feed(&d.octets())
            .feed(&(len as u32).to_be_bytes())
            .feed(&[0, 0, 0, proto]),
        _ => Sum::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc1071_worked_example() {
        // RFC 1071 §3: the words 0001 f203 f4f5 f6f7 sum to ddf2 (one's complement).
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(internet(&data), !0xddf2);
    }

    #[test]
    fn a_message_with_its_checksum_sums_to_zero() {
        let mut msg = vec![0x21, 0x33, 0x64, 0x01, 0x01, 0x01, 0, 0, 10, 0, 0, 1, 7];
        let c = internet(&msg);
        msg[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(internet(&msg), 0);
    }

    #[test]
    fn odd_length_pads_with_zero() {
        assert_eq!(internet(&[0xab]), internet(&[0xab, 0x00]));
    }
}
