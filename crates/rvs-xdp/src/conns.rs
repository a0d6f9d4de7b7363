//! The BPF connection table as `ipvsadm -Lc` shows it.

use crate::abi::{self, Plain};
use crate::encode::ip_of;
use crate::error::{map_err, Result};
use crate::loader::Director;
use crate::sweep::{entries, Entry};
use rvs_core::{ConnInfo, TcpState};
use std::collections::HashMap;
use std::net::IpAddr;

/// The state column: TCP state names, `UDP`, and `NONE`/`ASSURED` for templates.
pub fn state_name(c: &abi::Conn) -> &'static str {
    if c.flags() & abi::RVS_CF_TEMPLATE != 0 {
        return if c.flags() & abi::RVS_CF_ASSURED != 0 {
            "ASSURED"
        } else {
            "NONE"
        };
    }
    match c.state() {
        abi::RVS_ST_UDP => "UDP",
        s if (s as usize) < TcpState::ALL.len() => TcpState::ALL[s as usize].name(),
        _ => "NONE",
    }
}

fn addrs(e: &Entry) -> (IpAddr, u16, IpAddr, u16, u8) {
    if e.family == abi::RVS_AF_INET {
        let k = e.key4();
        let mut c = [0u8; 16];
        let mut v = [0u8; 16];
        c[..4].copy_from_slice(&k.caddr);
        v[..4].copy_from_slice(&k.vaddr);
        (
            ip_of(e.family, &c),
            u16::from_be(k.cport),
            ip_of(e.family, &v),
            u16::from_be(k.vport),
            k.proto,
        )
    } else {
        let k = &e.key;
        (
            ip_of(e.family, &k.caddr),
            u16::from_be(k.cport),
            ip_of(e.family, &k.vaddr),
            u16::from_be(k.vport),
            k.proto,
        )
    }
}

/// Every live entry and template, with the time left at `now_ns`.
pub fn list(dir: &Director, now_ns: u64) -> Result<Vec<ConnInfo>> {
    let mut dests: HashMap<u16, abi::Dest> = HashMap::new();
    let mut out = Vec::new();
    for e in entries(dir)? {
        if e.conn.flags() & abi::RVS_CF_DEAD != 0 {
            continue;
        }
        let d = match dests.get(&e.conn.dest) {
            Some(d) => *d,
            None => {
                let mut d = abi::Dest::default();
                dir.maps
                    .dests
                    .lookup(&(e.conn.dest as u32).to_ne_bytes(), d.as_bytes_mut(), 0)
                    .map_err(map_err("rvs_dests"))?;
                dests.insert(e.conn.dest, d);
                d
            }
        };
        let (caddr, cport, vaddr, vport, proto) = addrs(&e);
        let template = e.is_template();
        out.push(ConnInfo {
            proto,
            caddr,
            cport,
            vaddr,
            vport,
            daddr: if d.family == 0 {
                vaddr
            } else {
                ip_of(d.family, &d.addr)
            },
            dport: u16::from_be(e.conn.dport),
            state: state_name(&e.conn).to_string(),
            expires_ms: e.due_ns().saturating_sub(now_ns) / 1_000_000,
            template,
            fwmark: if template { 0 } else { e.conn.aux },
            pe_name: None,
            pe_data: None,
        });
    }
    Ok(out)
}
