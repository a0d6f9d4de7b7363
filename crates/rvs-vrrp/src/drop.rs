//! Why a received packet never reached the state machine. Every reason has a stable
//! name: it is the counter key shown by `rvsadm --status` (`vrrp.<instance>.drop.<name>`)
//! and the word logged (rate-limited) when one is dropped.

use std::fmt;

/// A named reason to discard a received packet (RFC 3768 §7.1, RFC 5798 §7.1, and the
/// extra checks keepalived makes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DropReason {
    /// The IPv4 header is unusable (version, header length, total length).
    IpHeader,
    /// TTL / Hop Limit is not 255 (first rule of §7.1; not checked in unicast mode).
    Ttl,
    /// Shorter than the 8-byte VRRP header.
    TooShort,
    /// Version is neither 2 nor 3, or not the instance's.
    Version,
    /// Type is not 1, ADVERTISEMENT (RFC 5798 §5.2.2: other types are discarded).
    Type,
    /// The length does not match Count IP Addrs (plus the 8 authentication bytes in v2).
    Length,
    /// The checksum does not verify.
    Checksum,
    /// No instance has this VRID on the interface ("MUST verify that the VRID is
    /// configured on the receiving interface").
    UnknownVrid,
    /// Count IP Addrs is not the number of configured virtual addresses (keepalived
    /// drops these).
    AddrCount,
    /// A configured virtual address is missing from the advert (the RFC's "MAY verify";
    /// keepalived does unless `skip_check_adv_addr`).
    AddrList,
    /// v2: Auth Type unknown or not the configured one.
    AuthType,
    /// v2: the simple password (`auth_type PASS`) does not match.
    AuthFailure,
    /// v2: Adver Int differs from the local one ("MUST verify", RFC 3768 §7.1).
    Interval,
    /// The source is one of our own addresses (our advert looped back).
    OwnAdvert,
    /// The source is not a configured unicast peer (`vrrp_check_unicast_src`).
    NotUnicastPeer,
}

impl DropReason {
    pub const ALL: [DropReason; 15] = [
        DropReason::IpHeader,
        DropReason::Ttl,
        DropReason::TooShort,
        DropReason::Version,
        DropReason::Type,
        DropReason::Length,
        DropReason::Checksum,
        DropReason::UnknownVrid,
        DropReason::AddrCount,
        DropReason::AddrList,
        DropReason::AuthType,
        DropReason::AuthFailure,
        DropReason::Interval,
        DropReason::OwnAdvert,
        DropReason::NotUnicastPeer,
    ];

    /// The stable counter name.
    pub fn name(self) -> &'static str {
        match self {
            DropReason::IpHeader => "ip_header",
            DropReason::Ttl => "ttl",
            DropReason::TooShort => "too_short",
            DropReason::Version => "version",
            DropReason::Type => "type",
            DropReason::Length => "length",
            DropReason::Checksum => "checksum",
            DropReason::UnknownVrid => "unknown_vrid",
            DropReason::AddrCount => "addr_count",
            DropReason::AddrList => "addr_list",
            DropReason::AuthType => "auth_type",
            DropReason::AuthFailure => "auth_failure",
            DropReason::Interval => "interval",
            DropReason::OwnAdvert => "own_advert",
            DropReason::NotUnicastPeer => "not_unicast_peer",
        }
    }

    /// Position in [`Self::ALL`] (for counter arrays).
    pub fn index(self) -> usize {
        DropReason::ALL
            .iter()
            .position(|r| *r == self)
            .unwrap_or_default()
    }
}

impl fmt::Display for DropReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Counts per reason.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DropCounters([u64; DropReason::ALL.len()]);

impl DropCounters {
    pub fn add(&mut self, r: DropReason) {
        self.0[r.index()] += 1;
    }

    pub fn get(&self, r: DropReason) -> u64 {
        self.0[r.index()]
    }

    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// The non-zero counters, by name.
    pub fn nonzero(&self) -> impl Iterator<Item = (DropReason, u64)> + '_ {
        DropReason::ALL
            .iter()
            .map(|r| (*r, self.get(*r)))
            .filter(|(_, n)| *n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_indexes_dense() {
        let mut names: Vec<_> = DropReason::ALL.iter().map(|r| r.name()).collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), DropReason::ALL.len());
        for (i, r) in DropReason::ALL.iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
