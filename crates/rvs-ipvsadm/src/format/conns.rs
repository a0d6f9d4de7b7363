//! `-Lc` / `-Lnc`: the connection table, in the order rvsd reports it (ipvsadm prints
//! `/proc/net/ip_vs_conn` unsorted too).

use crate::command::Format;
use crate::names::{addr_port, Resolver};
use rvs_core::snapshot::ConnInfo;
use rvs_core::Protocol;

/// The kernel's `ip_vs_proto_name`, which fills the protocol column.
pub fn proto_name(proto: u8) -> String {
    match proto {
        0 => "IP".into(),
        1 => "ICMP".into(),
        58 => "ICMPv6".into(),
        p => match Protocol::from_number(p) {
            Some(known) => known.name().into(),
            None => format!("IP_{p}"),
        },
    }
}

/// Time left as `MM:SS` (minutes are not capped at 99).
pub fn expire(ms: u64) -> String {
    let secs = ms / 1000;
    format!("{:02}:{:02}", secs / 60, secs % 60)
}

pub fn list_conns(conns: &[ConnInfo], format: &Format, names: &dyn Resolver) -> String {
    let mut out = String::from("IPVS connection entries\n");
    if format.persistent_conn {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {:<18} {:<16} {}\n",
            "state", "source", "virtual", "destination", "pe name", "pe_data"
        ));
    } else {
        out.push_str(&format!(
            "pro expire {:<11} {:<18} {:<18} {}\n",
            "state", "source", "virtual", "destination"
        ));
    }
    for c in conns {
        let proto = Protocol::from_number(c.proto);
        let name = |addr, port| addr_port(addr, port, proto, format.numeric, names);
        let (src, virt, dst) = (
            name(c.caddr, c.cport),
            name(c.vaddr, c.vport),
            name(c.daddr, c.dport),
        );
        let head = format!(
            "{:<3} {:<6} {:<11} {src:<18} {virt:<18}",
            proto_name(c.proto),
            expire(c.expires_ms),
            c.state
        );
        match (&c.pe_name, &c.pe_data) {
            (Some(pe), Some(data)) if format.persistent_conn => {
                out.push_str(&format!("{head} {dst:<16} {pe:<18} {data}\n"))
            }
            _ => out.push_str(&format!("{head} {dst}\n")),
        }
    }
    out
}
