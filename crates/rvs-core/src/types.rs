//! Value types shared by the whole model: protocols, service keys, forwarding methods,
//! scheduler flags, tunnel settings. Numeric values follow `include/uapi/linux/ip_vs.h`
//! so they can travel unchanged to the BPF ABI and the sync protocol.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Address family of a service or real server.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Family {
    V4,
    V6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// Full-length prefix: /32 or /128.
    pub fn max_prefix(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// `AF_INET` / `AF_INET6`, the order the kernel (and ipvsadm's sort) uses.
    pub fn af(self) -> u16 {
        match self {
            Family::V4 => 2,
            Family::V6 => 10,
        }
    }
}

/// Transport protocol of a virtual service (IPPROTO_* numbers).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Protocol {
    Tcp,
    Udp,
    Sctp,
}

impl Protocol {
    pub fn number(self) -> u8 {
        match self {
            Protocol::Tcp => 6,
            Protocol::Udp => 17,
            Protocol::Sctp => 132,
        }
    }

    pub fn from_number(n: u8) -> Option<Protocol> {
        match n {
            6 => Some(Protocol::Tcp),
            17 => Some(Protocol::Udp),
            132 => Some(Protocol::Sctp),
            _ => None,
        }
    }

    /// Upper-case name as ipvsadm prints it (`TCP`, `UDP`, `SCTP`).
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "TCP",
            Protocol::Udp => "UDP",
            Protocol::Sctp => "SCTP",
        }
    }
}

/// Identity of a virtual service: (protocol, VIP, port) or a firewall mark.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceKey {
    Addr {
        proto: Protocol,
        addr: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: Family,
    },
}

impl ServiceKey {
    pub fn family(&self) -> Family {
        match self {
            ServiceKey::Addr { addr, .. } => Family::of(addr),
            ServiceKey::Fwmark { family, .. } => *family,
        }
    }

    pub fn port(&self) -> u16 {
        match self {
            ServiceKey::Addr { port, .. } => *port,
            ServiceKey::Fwmark { .. } => 0,
        }
    }

    pub fn is_fwmark(&self) -> bool {
        matches!(self, ServiceKey::Fwmark { .. })
    }

    pub fn protocol(&self) -> Option<Protocol> {
        match self {
            ServiceKey::Addr { proto, .. } => Some(*proto),
            ServiceKey::Fwmark { .. } => None,
        }
    }

    /// Sort key of ipvsadm's listing: (fwmark, af, protocol, address, port).
    pub fn sort_key(&self) -> (u32, u16, u8, IpAddr, u16) {
        match *self {
            ServiceKey::Addr { proto, addr, port } => {
                (0, Family::of(&addr).af(), proto.number(), addr, port)
            }
            ServiceKey::Fwmark { mark, family } => {
                (mark, family.af(), 0, IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
            }
        }
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServiceKey::Addr { proto, addr, port } => {
                write!(f, "{} {}", proto.name(), SockAddr(*addr, *port))
            }
            ServiceKey::Fwmark { mark, family } => match family {
                Family::V4 => write!(f, "FWM {mark}"),
                Family::V6 => write!(f, "FWM {mark} IPv6"),
            },
        }
    }
}

/// `a.b.c.d:port` or `[v6]:port`, the way ipvsadm prints numeric endpoints.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SockAddr(pub IpAddr, pub u16);

impl fmt::Display for SockAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            IpAddr::V4(a) => write!(f, "{a}:{}", self.1),
            IpAddr::V6(a) => write!(f, "[{a}]:{}", self.1),
        }
    }
}

/// Packet forwarding method of a real server (`IP_VS_CONN_F_*` values).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Forward {
    /// `-m`: NAT, addresses rewritten both ways (0).
    Masq,
    /// Local node (1): shown by ipvsadm as `Local`, saved as `-g`.
    Local,
    /// `-i`: IPIP / GUE / GRE tunnel (2).
    Tunnel,
    /// `-g`: direct routing, the ipvsadm default (3).
    Route,
}

impl Forward {
    pub fn code(self) -> u32 {
        match self {
            Forward::Masq => 0,
            Forward::Local => 1,
            Forward::Tunnel => 2,
            Forward::Route => 3,
        }
    }

    /// Column text of `ipvsadm -L`.
    pub fn name(self) -> &'static str {
        match self {
            Forward::Masq => "Masq",
            Forward::Local => "Local",
            Forward::Tunnel => "Tunnel",
            Forward::Route => "Route",
        }
    }
}

/// Tunnel encapsulation of a `-i` real server (`--tun-type`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TunnelType {
    #[default]
    Ipip,
    Gue,
    Gre,
}

/// Tunnel checksum options (`--tun-nocsum`, `--tun-csum`, `--tun-remcsum`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub enum TunnelCsum {
    #[default]
    NoCsum,
    Csum,
    RemCsum,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct TunnelConfig {
    pub kind: TunnelType,
    /// UDP destination port, GUE only.
    pub port: u16,
    pub csum: TunnelCsum,
}

/// Service scheduler flags (`-b`), bit values of `IP_VS_SVC_F_SCHED1..3`.
/// `sh-fallback`/`mh-fallback` are SCHED1, `sh-port`/`mh-port` are SCHED2.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct SchedFlags(pub u32);

impl SchedFlags {
    pub const SCHED1: u32 = 0x0008;
    pub const SCHED2: u32 = 0x0010;
    pub const SCHED3: u32 = 0x0020;

    pub fn fallback(self) -> bool {
        self.0 & Self::SCHED1 != 0
    }

    pub fn port(self) -> bool {
        self.0 & Self::SCHED2 != 0
    }
}

/// Client-address mask of a persistent service (`-M`), as a prefix length.
/// IPv4 dotted masks must be contiguous (the kernel hashes `addr & mask`, ipvsadm prints
/// the dotted form back).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Netmask(pub u8);

impl Netmask {
    pub fn apply(self, addr: IpAddr) -> IpAddr {
        match addr {
            IpAddr::V4(a) => {
                let bits = u32::from(a);
                let mask = if self.0 >= 32 {
                    u32::MAX
                } else if self.0 == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.0)
                };
                IpAddr::V4(Ipv4Addr::from(bits & mask))
            }
            IpAddr::V6(a) => {
                let bits = u128::from(a);
                let mask = if self.0 >= 128 {
                    u128::MAX
                } else if self.0 == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.0)
                };
                IpAddr::V6(Ipv6Addr::from(bits & mask))
            }
        }
    }

    /// The IPv4 dotted form (`255.255.255.0`).
    pub fn dotted(self) -> Ipv4Addr {
        let m = if self.0 == 0 {
            0
        } else {
            u32::MAX << (32 - self.0.min(32))
        };
        Ipv4Addr::from(m)
    }

    /// Parse a dotted IPv4 mask; `None` if it is not contiguous.
    pub fn from_dotted(mask: Ipv4Addr) -> Option<Netmask> {
        let m = u32::from(mask);
        let ones = m.leading_ones();
        if m.checked_shl(ones).unwrap_or(0) == 0 {
            Some(Netmask(ones as u8))
        } else {
            None
        }
    }
}

/// Timestamps in the model are milliseconds on a monotonic clock supplied by the caller.
pub type Millis = u64;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netmask_dotted_round_trip_and_rejects_holes() {
        let m = Netmask::from_dotted("255.255.255.0".parse().unwrap()).unwrap();
        assert_eq!(m, Netmask(24));
        assert_eq!(m.dotted(), "255.255.255.0".parse::<Ipv4Addr>().unwrap());
        assert_eq!(Netmask::from_dotted("255.0.255.0".parse().unwrap()), None);
        assert_eq!(
            Netmask::from_dotted("0.0.0.0".parse().unwrap()),
            Some(Netmask(0))
        );
        assert_eq!(
            Netmask(24).apply("10.1.2.3".parse().unwrap()),
            "10.1.2.0".parse::<IpAddr>().unwrap()
        );
    }

    #[test]
    fn sockaddr_formats_like_ipvsadm() {
        assert_eq!(
            SockAddr("10.0.0.1".parse().unwrap(), 80).to_string(),
            "10.0.0.1:80"
        );
        assert_eq!(
            SockAddr("2001:db8::1".parse().unwrap(), 443).to_string(),
            "[2001:db8::1]:443"
        );
    }
}
