//! The VRRP advertisement: encoding and decoding. Field names and sizes are per RFC 3768
//! §5.1 (VRRPv2) and RFC 5798 §5.1 (VRRPv3).
//!
//! ```text
//!  0                   1                   2                   3
//!  0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0 1
//! |Version| Type  | Virtual Rtr ID|   Priority    | Count IP Addrs|
//! v2: |   Auth Type   |   Adver Int   |          Checksum             |
//! v3: |(rsvd) |     Max Adver Int     |          Checksum             |
//! |                IP Address(es) (4 or 16 bytes each)            |
//! v2: |          Authentication Data (8 bytes)                        |
//! ```
//!
//! VRRPv2 is IPv4 only (RFC 3768); keepalived runs IPv6 instances as v3 only, and so do
//! we. Decoding checks what the bytes alone can tell (length, version, type, checksum);
//! what depends on the instance (VRID, authentication, interval, addresses) is
//! [`crate::validate`].

use crate::checksum::{self, pseudo_header, IPPROTO_VRRP};
use crate::drop::DropReason;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

/// The IPv4 multicast group of VRRP (RFC 5798 §5.1.1.2), keepalived `vrrp_mcast_group4`.
pub const MCAST_V4: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 18);
/// The IPv6 multicast group of VRRP (RFC 5798 §5.1.2.2), keepalived `vrrp_mcast_group6`.
pub const MCAST_V6: Ipv6Addr = Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 0x12);
/// TTL / Hop Limit of every advertisement (RFC 5798 §5.1.1.3, §5.1.2.3).
pub const TTL: u8 = 255;
/// The fixed part: version/type, VRID, priority, count, auth type/interval, checksum.
pub const HEADER_LEN: usize = 8;
/// VRRPv2 Authentication Data (RFC 3768 §5.3.10).
pub const AUTH_LEN: usize = 8;
/// Type 1, ADVERTISEMENT, the only one defined (RFC 5798 §5.2.2).
pub const TYPE_ADVERTISEMENT: u8 = 1;
/// Priority of the address owner (RFC 5798 §5.2.4).
pub const PRIORITY_OWNER: u8 = 255;
/// Priority announcing that the master stops (RFC 5798 §5.2.4).
pub const PRIORITY_STOP: u8 = 0;
/// Largest v3 Max Adver Int: a 12-bit field of centiseconds (RFC 5798 §5.2.7).
pub const MAX_V3_INTERVAL_CS: u16 = 0x0fff;

/// v2 Auth Type 0: no authentication (RFC 3768 §5.3.6).
pub const AUTH_NONE: u8 = 0;
/// v2 Auth Type 1: simple text password (RFC 2338 §5.3.6.1; reserved by RFC 3768, still
/// spoken by keepalived `auth_type PASS`).
pub const AUTH_PASS: u8 = 1;
/// v2 Auth Type 2: IP Authentication Header (RFC 2338; keepalived `auth_type AH`).
pub const AUTH_AH: u8 = 2;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// RFC 3768.
    V2 = 2,
    /// RFC 5798.
    V3 = 3,
}

/// The address family of an instance (all its virtual addresses are of one family).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(ip: &IpAddr) -> Family {
        if ip.is_ipv4() {
            Family::V4
        } else {
            Family::V6
        }
    }

    fn addr_len(self) -> usize {
        match self {
            Family::V4 => 4,
            Family::V6 => 16,
        }
    }

    /// The VRRP multicast group.
    pub fn group(self) -> IpAddr {
        match self {
            Family::V4 => IpAddr::V4(MCAST_V4),
            Family::V6 => IpAddr::V6(MCAST_V6),
        }
    }
}

/// One ADVERTISEMENT.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Advert {
    pub version: Version,
    /// Virtual Rtr ID, 1..255 (8 bits).
    pub vrid: u8,
    /// Priority (8 bits): 255 owner, 1..254 backup, 0 the master is leaving.
    pub priority: u8,
    /// v2: Adver Int, whole seconds (8 bits). v3: Max Adver Int, centiseconds (12 bits;
    /// the 4 reserved bits are sent as zero and ignored on receipt).
    pub interval: u16,
    /// IPvX Address(es); their number is Count IP Addrs (8 bits).
    pub addrs: Vec<IpAddr>,
    /// v2 only: Auth Type (8 bits). Zero in v3.
    pub auth_type: u8,
    /// v2 only: Authentication Data (64 bits); the password for `AUTH_PASS`, zero padded.
    pub auth_data: [u8; AUTH_LEN],
}

impl Advert {
    /// The advertisement interval the packet carries.
    pub fn interval(&self) -> Duration {
        match self.version {
            Version::V2 => Duration::from_secs(self.interval.into()),
            Version::V3 => Duration::from_millis(u64::from(self.interval) * 10),
        }
    }

    /// Wire length of the VRRP message.
    pub fn encoded_len(&self) -> usize {
        let fam = self.addrs.first().map_or(Family::V4, Family::of);
        wire_len(self.version, fam, self.addrs.len())
    }

    /// The message with its checksum. `src` and `dst` are the IP source and destination
    /// the packet is sent with: VRRPv3 covers them with its pseudo-header (IPv4 and IPv6,
    /// as keepalived); VRRPv2 ignores them.
    pub fn encode(&self, src: IpAddr, dst: IpAddr) -> Vec<u8> {
        let mut b = Vec::with_capacity(self.encoded_len());
        b.push(((self.version as u8) << 4) | TYPE_ADVERTISEMENT);
        b.push(self.vrid);
        b.push(self.priority);
        b.push(self.addrs.len() as u8);
        match self.version {
            Version::V2 => {
                b.push(self.auth_type);
                b.push(self.interval as u8);
            }
            Version::V3 => b.extend_from_slice(&(self.interval & MAX_V3_INTERVAL_CS).to_be_bytes()),
        }
        b.extend_from_slice(&[0, 0]);
        for a in &self.addrs {
            match a {
                IpAddr::V4(v) => b.extend_from_slice(&v.octets()),
                IpAddr::V6(v) => b.extend_from_slice(&v.octets()),
            }
        }
        if self.version == Version::V2 {
            b.extend_from_slice(&self.auth_data);
        }
        let sum = match self.version {
            Version::V2 => checksum::internet(&b),
            Version::V3 => pseudo_header(src, dst, IPPROTO_VRRP, b.len())
                .feed(&b)
                .finish(),
        };
        b[6..8].copy_from_slice(&sum.to_be_bytes());
        b
    }

    /// Decodes the VRRP message `buf` (the IP payload) received on a `family` socket from
    /// `src` to `dst`, verifying version, type, length and checksum.
    ///
    /// # Errors
    /// The [`DropReason`] of the first rule the packet breaks.
    pub fn decode(
        buf: &[u8],
        family: Family,
        src: IpAddr,
        dst: IpAddr,
    ) -> Result<Advert, DropReason> {
        if buf.len() < HEADER_LEN {
            return Err(DropReason::TooShort);
        }
        let version = match (buf[0] >> 4, family) {
            (2, Family::V4) => Version::V2,
            (3, _) => Version::V3,
            _ => return Err(DropReason::Version),
        };
        if buf[0] & 0x0f != TYPE_ADVERTISEMENT {
            return Err(DropReason::Type);
        }
        let count = usize::from(buf[3]);
        if buf.len() != wire_len(version, family, count) {
            return Err(DropReason::Length);
        }
        let ok = match version {
            Version::V2 => checksum::internet(buf) == 0,
            Version::V3 => {
                pseudo_header(src, dst, IPPROTO_VRRP, buf.len())
                    .feed(buf)
                    .finish()
                    == 0
            }
        };
        if !ok {
            return Err(DropReason::Checksum);
        }
        let alen = family.addr_len();
        let addrs = buf[HEADER_LEN..HEADER_LEN + count * alen]
            .chunks_exact(alen)
            .map(|c| match family {
                Family::V4 => IpAddr::V4(Ipv4Addr::new(c[0], c[1], c[2], c[3])),
                Family::V6 => {
                    let mut o = [0u8; 16];
                    o.copy_from_slice(c);
                    IpAddr::V6(Ipv6Addr::from(o))
                }
            })
            .collect();
        let (interval, auth_type, auth_data) = match version {
            Version::V2 => {
                let mut d = [0u8; AUTH_LEN];
                d.copy_from_slice(&buf[buf.len() - AUTH_LEN..]);
                (u16::from(buf[5]), buf[4], d)
            }
            Version::V3 => (
                u16::from_be_bytes([buf[4], buf[5]]) & MAX_V3_INTERVAL_CS,
                0,
                [0; AUTH_LEN],
            ),
        };
        Ok(Advert {
            version,
            vrid: buf[1],
            priority: buf[2],
            interval,
            addrs,
            auth_type,
            auth_data,
        })
    }
}

/// The VRID byte of a message long enough to have one (to count a drop against the
/// instance it was meant for).
pub fn peek_vrid(buf: &[u8]) -> Option<u8> {
    buf.get(1).copied()
}

/// Length of a message with `count` addresses.
pub fn wire_len(version: Version, family: Family, count: usize) -> usize {
    HEADER_LEN + count * family.addr_len() + if version == Version::V2 { AUTH_LEN } else { 0 }
}

/// The 8-byte Authentication Data of `auth_type PASS`: the password truncated to 8 bytes
/// and zero padded (keepalived).
pub fn pass_data(password: &[u8]) -> [u8; AUTH_LEN] {
    let mut d = [0u8; AUTH_LEN];
    let n = password.len().min(AUTH_LEN);
    d[..n].copy_from_slice(&password[..n]);
    d
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

    fn v4(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// Captured from keepalived 2.2.7 (seed 000's instance: VRID 51, priority 100,
    /// advert_int 1, auth PASS 1111, VIP 192.168.0.38) sent from 10.9.0.1.
    const KEEPALIVED_V2: &str = "2133640101015699c0a800263131313100000000";
    /// keepalived 2.2.7, `version 3`, VRID 52, priority 90, advert_int 0.5, two VIPs,
    /// from 10.9.0.1 to 224.0.0.18 (checksum with the IPv4 pseudo-header).
    const KEEPALIVED_V3_V4: &str = "31345a020032085ac0a80027c0a80028";
    /// keepalived 2.2.7, IPv6, VRID 60, priority 255, advert_int 1, VIPs fe80::60 and
    /// 2001:db8::60, from fe80::ff:fe00:a to ff02::12.
    const KEEPALIVED_V3_V6: &str =
        "313cff020064a52afe80000000000000000000000000006020010db8000000000000000000000060";

    #[test]
    fn rfc3768_5_1_decodes_keepalived_v2_with_pass_auth() {
        let b = hex(KEEPALIVED_V2);
        let a = Advert::decode(&b, Family::V4, v4("10.9.0.1"), v4("224.0.0.18")).unwrap();
        assert_eq!(a.version, Version::V2);
        assert_eq!((a.vrid, a.priority, a.interval), (51, 100, 1));
        assert_eq!(a.addrs, vec![v4("192.168.0.38")]);
        assert_eq!(a.auth_type, AUTH_PASS);
        assert_eq!(a.auth_data, pass_data(b"1111"));
        assert_eq!(a.interval(), Duration::from_secs(1));
    }

    #[test]
    fn rfc3768_5_1_encodes_byte_for_byte_as_keepalived() {
        let a = Advert {
            version: Version::V2,
            vrid: 51,
            priority: 100,
            interval: 1,
            addrs: vec![v4("192.168.0.38")],
            auth_type: AUTH_PASS,
            auth_data: pass_data(b"1111"),
        };
        // v2 ignores the addresses: the checksum covers the message only.
        assert_eq!(a.encode(v4("1.2.3.4"), v4("5.6.7.8")), hex(KEEPALIVED_V2));
    }

    #[test]
    fn rfc5798_5_2_8_v3_ipv4_checksum_uses_the_pseudo_header_like_keepalived() {
        let b = hex(KEEPALIVED_V3_V4);
        let (src, dst) = (v4("10.9.0.1"), v4("224.0.0.18"));
        let a = Advert::decode(&b, Family::V4, src, dst).unwrap();
        assert_eq!(
            (a.version, a.vrid, a.priority, a.interval),
            (Version::V3, 52, 90, 50)
        );
        assert_eq!(a.interval(), Duration::from_millis(500));
        assert_eq!(a.encode(src, dst), b);
        // The same bytes from another source fail: the pseudo-header is covered.
        assert_eq!(
            Advert::decode(&b, Family::V4, v4("10.9.0.2"), dst),
            Err(DropReason::Checksum)
        );
    }

    #[test]
    fn rfc5798_5_2_8_v3_ipv6_checksum_uses_the_rfc2460_pseudo_header() {
        let b = hex(KEEPALIVED_V3_V6);
        let src: IpAddr = "fe80::ff:fe00:a".parse().unwrap();
        let dst = IpAddr::V6(MCAST_V6);
        let a = Advert::decode(&b, Family::V6, src, dst).unwrap();
        assert_eq!((a.vrid, a.priority, a.interval), (60, 255, 100));
        assert_eq!(a.addrs[1], "2001:db8::60".parse::<IpAddr>().unwrap());
        assert_eq!(a.encode(src, dst), b);
    }

    #[test]
    fn rfc5798_5_2_7_reserved_bits_are_ignored_on_receipt() {
        let mut b = hex(KEEPALIVED_V3_V4);
        let (src, dst) = (v4("10.9.0.1"), v4("224.0.0.18"));
        b[4] |= 0xf0;
        // Fix the checksum for the modified word so only the reserved bits differ.
        b[6..8].copy_from_slice(&[0, 0]);
        let c = pseudo_header(src, dst, IPPROTO_VRRP, b.len())
            .feed(&b)
            .finish();
        b[6..8].copy_from_slice(&c.to_be_bytes());
        assert_eq!(
            Advert::decode(&b, Family::V4, src, dst).unwrap().interval,
            50
        );
    }

    #[test]
    fn rfc5798_7_1_malformed_messages_have_named_reasons() {
        let (src, dst) = (v4("10.9.0.1"), v4("224.0.0.18"));
        let good = hex(KEEPALIVED_V2);
        let dec = |b: &[u8]| Advert::decode(b, Family::V4, src, dst);
        assert_eq!(dec(&good[..7]), Err(DropReason::TooShort));
        let mut b = good.clone();
        b[0] = 0x41;
        assert_eq!(dec(&b), Err(DropReason::Version));
        let mut b = good.clone();
        b[0] = 0x22;
        assert_eq!(dec(&b), Err(DropReason::Type));
        assert_eq!(dec(&good[..good.len() - 1]), Err(DropReason::Length));
        let mut b = good.clone();
        b[3] = 2;
        assert_eq!(dec(&b), Err(DropReason::Length));
        let mut b = good.clone();
        b[7] ^= 1;
        assert_eq!(dec(&b), Err(DropReason::Checksum));
        // v2 is IPv4 only.
        assert_eq!(
            Advert::decode(&good, Family::V6, src, dst),
            Err(DropReason::Version)
        );
    }

    #[test]
    fn rfc3768_5_3_10_password_is_truncated_to_8_bytes_and_zero_padded() {
        assert_eq!(pass_data(b"1111"), *b"1111\0\0\0\0");
        assert_eq!(pass_data(b"0123456789"), *b"01234567");
    }
}
