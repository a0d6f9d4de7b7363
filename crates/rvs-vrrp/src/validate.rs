//! The receive checks of RFC 3768 §7.1 / RFC 5798 §7.1, in the order keepalived applies
//! them, from the raw IP payload to an advert an instance may act on. Pure: the network
//! side hands in bytes and the addresses and TTL the socket reported.
//!
//! 1. TTL / Hop Limit is 255 (not in unicast mode, as keepalived).
//! 2. The message is long enough, its version is 2 or 3, its type ADVERTISEMENT, its
//!    length matches Count IP Addrs, its checksum verifies ([`Advert::decode`]).
//! 3. The VRID is configured on the interface.
//! 4. v2: Auth Type is the configured one, the password matches, Adver Int equals ours.
//! 5. The version is the instance's; Count IP Addrs and the addresses match the
//!    configuration (keepalived drops a mismatch; `skip_check_adv_addr` skips the list).
//! 6. Not sent by ourselves.

use crate::config::InstanceConfig;
use crate::drop::DropReason;
use crate::packet::{self, Advert, Family, Version, AUTH_AH, AUTH_NONE, AUTH_PASS};
use crate::timers;
use std::net::IpAddr;

/// What the socket told about a received packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RxMeta {
    pub src: IpAddr,
    pub dst: IpAddr,
    /// TTL (IPv4) or Hop Limit (IPv6); None when the socket did not report it.
    pub ttl: Option<u8>,
}

/// The checks that need the instance's configuration (step 4 and 5 above).
///
/// # Errors
/// The first rule `a` breaks.
pub fn check_instance(a: &Advert, cfg: &InstanceConfig) -> Result<(), DropReason> {
    if a.version != cfg.version {
        return Err(DropReason::Version);
    }
    if a.version == Version::V2 {
        if !matches!(a.auth_type, AUTH_NONE | AUTH_PASS | AUTH_AH) {
            return Err(DropReason::AuthType);
        }
        let want = if cfg.auth_pass.is_some() {
            AUTH_PASS
        } else {
            AUTH_NONE
        };
        if a.auth_type != want {
            return Err(DropReason::AuthType);
        }
        if let Some(pass) = cfg.auth_pass {
            if a.auth_data != pass {
                return Err(DropReason::AuthFailure);
            }
        }
        // RFC 3768 §7.1: MUST verify that the Adver Interval equals the local one
        // (keepalived drops, "to prevent concurrent VRID running").
        if a.interval != timers::interval_field(Version::V2, cfg.advert_int) {
            return Err(DropReason::Interval);
        }
    }
    if a.addrs.len() != cfg.vips.len() {
        return Err(DropReason::AddrCount);
    }
    if !cfg.skip_check_adv_addr && cfg.vips.iter().any(|v| !a.addrs.contains(&v.addr)) {
        return Err(DropReason::AddrList);
    }
    Ok(())
}

/// A packet's way from payload bytes to an instance.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict<I> {
    /// Valid for instance `I`.
    Accept(I, Advert),
    /// Dropped; counted against the instance its VRID names, if any.
    Drop(Option<I>, DropReason),
}

/// Runs every check on `payload` received on a `family` socket. `lookup` finds the
/// instance (and its configuration) of a VRID on this interface; `is_local` tells our own
/// addresses; `unicast` disables the TTL check.
pub fn receive<'c, I: Copy>(
    payload: &[u8],
    meta: &RxMeta,
    family: Family,
    unicast: bool,
    lookup: impl Fn(u8) -> Option<(I, &'c InstanceConfig)>,
    is_local: impl Fn(&IpAddr) -> bool,
) -> Verdict<I> {
    let target = packet::peek_vrid(payload).and_then(&lookup);
    let id = target.map(|(i, _)| i);
    if !unicast && meta.ttl.is_some_and(|t| t != packet::TTL) {
        return Verdict::Drop(id, DropReason::Ttl);
    }
    let advert = match Advert::decode(payload, family, meta.src, meta.dst) {
        Ok(a) => a,
        Err(r) => return Verdict::Drop(id, r),
    };
    let Some((id, cfg)) = target else {
        return Verdict::Drop(None, DropReason::UnknownVrid);
    };
    if let Err(r) = check_instance(&advert, cfg) {
        return Verdict::Drop(Some(id), r);
    }
    if is_local(&meta.src) {
        return Verdict::Drop(Some(id), DropReason::OwnAdvert);
    }
    Verdict::Accept(id, advert)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::pass_data;
    use std::time::Duration;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn cfg() -> InstanceConfig {
        let mut c = InstanceConfig::new("VI_1", 51, &[ip("192.168.0.38")]);
        c.auth_pass = Some(pass_data(b"1111"));
        c
    }

    fn advert(c: &InstanceConfig) -> Advert {
        Advert {
            version: c.version,
            vrid: c.vrid,
            priority: 100,
            interval: timers::interval_field(c.version, c.advert_int),
            addrs: c.advertised(),
            auth_type: if c.auth_pass.is_some() { AUTH_PASS } else { 0 },
            auth_data: c.auth_pass.unwrap_or_default(),
        }
    }

    const META: RxMeta = RxMeta {
        src: IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2)),
        dst: IpAddr::V4(packet::MCAST_V4),
        ttl: Some(255),
    };

    fn run(bytes: &[u8], meta: &RxMeta, c: &InstanceConfig, unicast: bool) -> Verdict<u8> {
        receive(
            bytes,
            meta,
            Family::V4,
            unicast,
            |vrid| (vrid == c.vrid).then_some((0u8, c)),
            |a| *a == ip("10.0.0.1"),
        )
    }

    #[test]
    fn rfc3768_7_1_a_good_advert_is_accepted() {
        let c = cfg();
        let b = advert(&c).encode(META.src, META.dst);
        assert!(matches!(run(&b, &META, &c, false), Verdict::Accept(0, _)));
    }

    #[test]
    fn rfc5798_7_1_ttl_other_than_255_is_dropped_except_in_unicast_mode() {
        let c = cfg();
        let b = advert(&c).encode(META.src, META.dst);
        let meta = RxMeta {
            ttl: Some(254),
            ..META
        };
        assert_eq!(
            run(&b, &meta, &c, false),
            Verdict::Drop(Some(0), DropReason::Ttl)
        );
        assert!(matches!(run(&b, &meta, &c, true), Verdict::Accept(..)));
    }

    #[test]
    fn rfc5798_7_1_foreign_vrid_is_dropped_uncounted_by_instances() {
        let c = cfg();
        let mut a = advert(&c);
        a.vrid = 52;
        let b = a.encode(META.src, META.dst);
        assert_eq!(
            run(&b, &META, &c, false),
            Verdict::Drop(None, DropReason::UnknownVrid)
        );
    }

    #[test]
    fn rfc3768_7_1_auth_and_interval_mismatches_are_dropped() {
        let c = cfg();
        let mut a = advert(&c);
        a.auth_data = pass_data(b"2222");
        let v = run(&a.encode(META.src, META.dst), &META, &c, false);
        assert_eq!(v, Verdict::Drop(Some(0), DropReason::AuthFailure));
        let mut a = advert(&c);
        a.auth_type = 0;
        let v = run(&a.encode(META.src, META.dst), &META, &c, false);
        assert_eq!(v, Verdict::Drop(Some(0), DropReason::AuthType));
        let mut a = advert(&c);
        a.auth_type = 7;
        let v = run(&a.encode(META.src, META.dst), &META, &c, false);
        assert_eq!(v, Verdict::Drop(Some(0), DropReason::AuthType));
        let mut a = advert(&c);
        a.interval = 2;
        let v = run(&a.encode(META.src, META.dst), &META, &c, false);
        assert_eq!(v, Verdict::Drop(Some(0), DropReason::Interval));
    }

    #[test]
    fn rfc5798_7_1_v3_interval_mismatch_is_accepted_for_learning() {
        let c = InstanceConfig::new("VI_3", 51, &[ip("192.168.0.38")]).with_version(Version::V3);
        let mut a = advert(&c);
        a.interval = 200;
        let v = run(&a.encode(META.src, META.dst), &META, &c, false);
        assert!(matches!(v, Verdict::Accept(..)));
        assert_eq!(c.advert_int, Duration::from_secs(1));
    }

    #[test]
    fn rfc5798_7_1_version_and_address_mismatches_are_dropped() {
        let c = cfg();
        let v3 = InstanceConfig::new("VI_1", 51, &[ip("192.168.0.38")]).with_version(Version::V3);
        let v = run(&advert(&v3).encode(META.src, META.dst), &META, &c, false);
        assert_eq!(v, Verdict::Drop(Some(0), DropReason::Version));
        let mut a = advert(&c);
        a.addrs = vec![ip("192.168.0.39")];
        let v = run(&a.encode(META.src, META.dst), &META, &c, false);
        assert_eq!(v, Verdict::Drop(Some(0), DropReason::AddrList));
        let mut skip = c.clone();
        skip.skip_check_adv_addr = true;
        assert!(matches!(
            run(&a.encode(META.src, META.dst), &META, &skip, false),
            Verdict::Accept(..)
        ));
        a.addrs.push(ip("192.168.0.38"));
        let v = run(&a.encode(META.src, META.dst), &META, &c, false);
        assert_eq!(v, Verdict::Drop(Some(0), DropReason::AddrCount));
    }

    #[test]
    fn rfc5798_7_1_checksum_errors_count_against_the_named_vrid() {
        let c = cfg();
        let mut b = advert(&c).encode(META.src, META.dst);
        b[6] ^= 0xff;
        assert_eq!(
            run(&b, &META, &c, false),
            Verdict::Drop(Some(0), DropReason::Checksum)
        );
    }

    #[test]
    fn our_own_looped_back_advert_is_dropped() {
        let c = cfg();
        let meta = RxMeta {
            src: ip("10.0.0.1"),
            ..META
        };
        let b = advert(&c).encode(meta.src, meta.dst);
        assert_eq!(
            run(&b, &meta, &c, false),
            Verdict::Drop(Some(0), DropReason::OwnAdvert)
        );
    }
}
