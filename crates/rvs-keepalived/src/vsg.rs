//! `virtual_server_group NAME { IP [PORT] | IP-RANGE [PORT] | IP/LEN [PORT] | fwmark N
//! [inet|inet6] … }` (`check_data.c alloc_vsg_entry`). Every address of a range becomes a
//! service of its own in the table, all sharing the group's real servers and checkers.

use crate::diag::{Diags, Pos};
use crate::tree::Node;
use crate::value;
use rvs_core::Family;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Most services one range may expand to.
pub const MAX_RANGE: u128 = 65_536;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServerGroup {
    pub pos: Pos,
    pub name: String,
    pub entries: Vec<VsgEntry>,
}

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VsgEntry {
    /// `first..=last` (a single address has first == last); port 0 = none.
    Range {
        first: IpAddr,
        last: IpAddr,
        port: u16,
    },
    Fwmark {
        mark: u32,
        family: Option<Family>,
    },
}

impl VsgEntry {
    /// The addresses of a range entry.
    pub fn addresses(&self) -> Vec<IpAddr> {
        match *self {
            VsgEntry::Range { first, last, .. } => match (first, last) {
                (IpAddr::V4(a), IpAddr::V4(b)) => (u32::from(a)..=u32::from(b))
                    .map(|v| IpAddr::V4(Ipv4Addr::from(v)))
                    .collect(),
                (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a)..=u128::from(b))
                    .map(|v| IpAddr::V6(Ipv6Addr::from(v)))
                    .collect(),
                _ => Vec::new(),
            },
            VsgEntry::Fwmark { .. } => Vec::new(),
        }
    }
}

pub fn parse(d: &mut Diags, n: &Node) -> Option<VirtualServerGroup> {
    let name = value::arg(d, n, 1)?.text.clone();
    if !value::need_block(d, n) {
        return None;
    }
    let mut entries = Vec::new();
    for c in n.children() {
        if c.name() == "fwmark" {
            let Some(mark) = value::uint(d, c, 1, 0, u32::MAX.into()) else {
                continue;
            };
            let mark = mark as u32;
            let family = match value::opt_arg(c, 2).map(|t| (t.text.as_str(), &t.pos)) {
                None => None,
                Some(("inet", _)) => Some(Family::V4),
                Some(("inet6", _)) => Some(Family::V6),
                Some((other, pos)) => {
                    d.error(
                        pos,
                        format!("fwmark family '{other}' unknown (inet or inet6)"),
                    );
                    continue;
                }
            };
            entries.push(VsgEntry::Fwmark { mark, family });
            continue;
        }
        let port = match value::opt_arg(c, 1) {
            Some(t) => match value::port_tok(d, "virtual_server_group", t) {
                Some(p) => p,
                None => continue,
            },
            None => 0,
        };
        match parse_range(&c.kw.text) {
            Ok((first, last)) => entries.push(VsgEntry::Range { first, last, port }),
            Err(msg) => d.error(c.pos(), format!("{msg} in virtual_server_group {name}")),
        }
    }
    if entries.is_empty() {
        d.warn(
            n.pos(),
            format!("virtual_server_group {name} has no entries"),
        );
    }
    Some(VirtualServerGroup {
        pos: n.pos().clone(),
        name,
        entries,
    })
}

/// `a.b.c.d`, `a.b.c.d-e`, `a.b.c.d-w.x.y.z`, `x::a-b` (last group, hex), `addr/len`.
pub fn parse_range(s: &str) -> Result<(IpAddr, IpAddr), String> {
    let bad = || format!("invalid address or range '{s}'");
    if let Some((addr, len)) = s.split_once('/') {
        let a: IpAddr = addr.parse().map_err(|_| bad())?;
        let len: u32 = len.parse().map_err(|_| bad())?;
        return match a {
            IpAddr::V4(v) if len <= 32 => {
                let host = if len == 32 { 0 } else { u32::MAX >> len };
                let base = u32::from(v);
                if base & host != 0 {
                    return Err(format!("address mask bits not empty in '{s}'"));
                }
                check_size(u128::from(host) + 1, s)?;
                Ok((a, IpAddr::V4(Ipv4Addr::from(base | host))))
            }
            IpAddr::V6(v) if len <= 128 => {
                let host = if len == 128 { 0 } else { u128::MAX >> len };
                let base = u128::from(v);
                if base & host != 0 {
                    return Err(format!("address mask bits not empty in '{s}'"));
                }
                check_size(host.saturating_add(1), s)?;
                Ok((a, IpAddr::V6(Ipv6Addr::from(base | host))))
            }
            _ => Err(bad()),
        };
    }
    let Some((start, end)) = s.split_once('-') else {
        let a: IpAddr = s.parse().map_err(|_| bad())?;
        return Ok((a, a));
    };
    let first: IpAddr = start.parse().map_err(|_| bad())?;
    let last = if let Ok(full) = end.parse::<IpAddr>() {
        full
    } else {
        match first {
            IpAddr::V4(v) => {
                let o: u8 = end.parse().map_err(|_| bad())?;
                let mut b = v.octets();
                b[3] = o;
                IpAddr::V4(Ipv4Addr::from(b))
            }
            IpAddr::V6(v) => {
                let g = u16::from_str_radix(end, 16).map_err(|_| bad())?;
                let mut segs = v.segments();
                segs[7] = g;
                IpAddr::V6(Ipv6Addr::from(segs))
            }
        }
    };
    let size = match (first, last) {
        (IpAddr::V4(a), IpAddr::V4(b)) if u32::from(b) >= u32::from(a) => {
            u128::from(u32::from(b) - u32::from(a)) + 1
        }
        (IpAddr::V6(a), IpAddr::V6(b)) if u128::from(b) >= u128::from(a) => {
            (u128::from(b) - u128::from(a)).saturating_add(1)
        }
        _ => return Err(format!("range end is before its start in '{s}'")),
    };
    check_size(size, s)?;
    Ok((first, last))
}

fn check_size(n: u128, s: &str) -> Result<(), String> {
    if n > MAX_RANGE {
        return Err(format!("range '{s}' has more than {MAX_RANGE} addresses"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn range_forms() {
        assert_eq!(
            parse_range("10.0.0.1-3").unwrap(),
            (ip("10.0.0.1"), ip("10.0.0.3"))
        );
        assert_eq!(
            parse_range("10.0.0.0/30").unwrap(),
            (ip("10.0.0.0"), ip("10.0.0.3"))
        );
        assert_eq!(
            parse_range("2001:db8::1-a").unwrap(),
            (ip("2001:db8::1"), ip("2001:db8::a"))
        );
        assert!(parse_range("10.0.0.1/30").is_err());
        assert!(parse_range("10.0.0.5-3").is_err());
        assert!(parse_range("10.0.0.0/8").is_err());
        let e = VsgEntry::Range {
            first: ip("10.0.0.1"),
            last: ip("10.0.0.3"),
            port: 80,
        };
        assert_eq!(e.addresses().len(), 3);
    }
}
