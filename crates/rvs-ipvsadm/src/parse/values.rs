//! Values of single options: addresses, timeouts, multicast groups, scheduler flags,
//! and the fixed-size buffers ipvsadm copies names into.

use crate::error::CliError;
use crate::names::{inet_aton, truncate_bytes, Resolver};
use crate::numbers::number_in;
use rvs_core::config::{DEFAULT_SCHEDULER, MAX_TIMEOUT};
use rvs_core::{Protocol, SchedFlags};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `IP_VS_SCHEDNAME_MAXLEN - 1`: longer scheduler names are cut, as `strncpy` does.
pub(super) const SCHED_NAME_MAX: usize = 15;
/// `IP_VS_PENAME_MAXLEN`.
pub(super) const PE_NAME_MAX: usize = 16;
/// `IP_VS_IFNAME_MAXLEN - 1`.
pub(super) const IFNAME_MAX: usize = 15;
/// ipvsadm keeps the `-b` argument in a 128-byte buffer.
pub(super) const SCHED_FLAGS_ARG_MAX: usize = 127;

pub(super) fn parse_timeout(s: &str, min: i64) -> Result<u32, CliError> {
    number_in(s, min, i64::from(MAX_TIMEOUT))
        .map(|n| n as u32)
        .ok_or_else(|| CliError::fail(format!("invalid timeout value `{s}' specified")))
}

/// ipvsadm's `parse_service`: `host[:port]`, `[v6]:port` or a bare IPv6 address.
/// `proto` (the service's protocol so far) selects the `/etc/services` column for port
/// names. Returns the address and the port if one was given.
pub(super) fn parse_endpoint(
    text: &str,
    proto: Option<Protocol>,
    names: &dyn Resolver,
) -> Option<(IpAddr, Option<u16>)> {
    if text.bytes().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let mut inner = text;
    let mut port_text = None;
    if let Some(rest) = text.strip_prefix('[') {
        let close = rest.find(']')?;
        port_text = Some(rest[close + 1..].strip_prefix(':')?);
        inner = &rest[..close];
    }
    let addr = if let Ok(v6) = inner.parse::<Ipv6Addr>() {
        IpAddr::V6(v6)
    } else {
        // Not IPv6: the port follows the last ':' of the (bracketed) text; a port after
        // the brackets is ignored, as ipvsadm does.
        let host = match inner.rfind(':') {
            Some(i) => {
                port_text = Some(&inner[i + 1..]);
                &inner[..i]
            }
            None => {
                port_text = None;
                inner
            }
        };
        IpAddr::V4(inet_aton(host).or_else(|| names.host_addr(host))?)
    };
    let port = match port_text {
        None => None,
        Some(p) => Some(match number_in(p, 0, 65535) {
            Some(n) => n as u16,
            None => names.service_port(p, proto?)?,
        }),
    };
    Some((addr, port))
}

pub(super) fn parse_mcast_group(v: &str) -> Result<IpAddr, CliError> {
    if v.contains(':') {
        match v.parse::<Ipv6Addr>() {
            Ok(a) if a.is_multicast() => Ok(IpAddr::V6(a)),
            _ => Err(CliError::fail(format!("invalid IPv6 mcast-group `{v}'"))),
        }
    } else {
        match v.parse::<Ipv4Addr>() {
            Ok(a) if a.is_multicast() => Ok(IpAddr::V4(a)),
            _ => Err(CliError::fail(format!("invalid IPv4 mcast-group `{v}'"))),
        }
    }
}

/// ipvsadm's `parse_sched_flags`: a comma list of flag names for `scheduler` (or wlc).
pub(super) fn parse_sched_flags(scheduler: &str, arg: &str) -> Result<u32, CliError> {
    let sched = match scheduler {
        "" => DEFAULT_SCHEDULER,
        s => s,
    };
    let mut flags = 0;
    let mut any = false;
    for flag in arg.split(',').filter(|f| !f.is_empty()) {
        any = true;
        let (bit, only_for) = match flag {
            "flag-1" => (SchedFlags::SCHED1, None),
            "flag-2" => (SchedFlags::SCHED2, None),
            "flag-3" => (SchedFlags::SCHED3, None),
            "sh-fallback" => (SchedFlags::SCHED1, Some("sh")),
            "sh-port" => (SchedFlags::SCHED2, Some("sh")),
            "mh-fallback" => (SchedFlags::SCHED1, Some("mh")),
            "mh-port" => (SchedFlags::SCHED2, Some("mh")),
            _ => return Err(CliError::fail(format!("invalid scheduler flag `{flag}'"))),
        };
        if only_for.is_some_and(|s| s != sched) {
            return Err(CliError::fail(format!(
                "incompatible scheduler flag `{flag}'"
            )));
        }
        flags |= bit;
    }
    if !any {
        // ipvsadm crashes on a list of only commas; refuse it instead.
        return Err(CliError::fail(format!("invalid scheduler flag `{arg}'")));
    }
    Ok(flags)
}

pub(super) fn cut(s: &str, max: usize) -> String {
    let mut s = s.to_string();
    truncate_bytes(&mut s, max);
    s
}

pub(super) fn fail(msg: &str) -> CliError {
    CliError::fail(msg)
}
