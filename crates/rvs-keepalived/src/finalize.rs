//! What keepalived does once the file is read (`check_parser.c vs_end_handler`,
//! `check_data.c validate_check_config`, `vrrp_data.c`): defaults, corrections and
//! cross-references, each reported the way keepalived reports it.

use crate::config::Config;
use crate::diag::Diags;
use crate::lvs::{LvsMethod, VirtualServer, VsTarget};
use crate::vsg::VsgEntry;
use rvs_core::{Family, Forward, Protocol, SchedFlags};
use std::collections::HashSet;

pub fn run(d: &mut Diags, cfg: &mut Config) {
    let groups = cfg.virtual_server_groups.clone();
    let mut keep = Vec::new();
    let mut seen = HashSet::new();
    for mut vs in std::mem::take(&mut cfg.virtual_servers) {
        let group = match &vs.target {
            VsTarget::Group(name) => match groups.iter().find(|g| &g.name == name) {
                Some(g) => Some(g.entries.clone()),
                None => {
                    d.error(
                        &vs.pos,
                        format!("virtual_server group {name}: no such virtual_server_group"),
                    );
                    continue;
                }
            },
            _ => None,
        };
        if !seen.insert(vs.target.clone()) {
            d.error(&vs.pos, "this virtual_server is defined twice");
            continue;
        }
        if vs.real_servers.is_empty() {
            d.warn(
                &vs.pos,
                "virtual server has no real servers - ignored (as keepalived does)",
            );
            continue;
        }
        if finalize_vs(d, &mut vs, group.as_deref()) {
            keep.push(vs);
        }
    }
    cfg.virtual_servers = keep;
    vrrp(d, cfg);
}

/// The family of a virtual server's addresses (or of its fwmark).
fn family(vs: &VirtualServer, group: Option<&[VsgEntry]>) -> Result<Family, String> {
    match &vs.target {
        VsTarget::Addr { ip, .. } => Ok(Family::of(ip)),
        VsTarget::Group(name) => {
            let mut fams = HashSet::new();
            for e in group.unwrap_or(&[]) {
                match e {
                    VsgEntry::Range { first, .. } => {
                        fams.insert(Family::of(first));
                    }
                    VsgEntry::Fwmark {
                        family: Some(f), ..
                    } => {
                        fams.insert(*f);
                    }
                    VsgEntry::Fwmark { family: None, .. } => {}
                }
            }
            if let Some(f) = vs.ip_family {
                fams.insert(f);
            }
            match fams.len() {
                0 => Ok(Family::V4),
                1 => Ok(*fams.iter().next().expect("one element")),
                _ => Err(format!(
                    "virtual_server_group {name} mixes IPv4 and IPv6 - not supported by rvs"
                )),
            }
        }
        VsTarget::Fwmark(_) => {
            if let Some(f) = vs.ip_family {
                return Ok(f);
            }
            // Like keepalived: from a non-tunnelled server, else from tunnelled ones if
            // they agree, else IPv4.
            let method = |m: Option<LvsMethod>| m.or(vs.lvs_method).unwrap_or(LvsMethod::NAT);
            let direct = vs
                .real_servers
                .iter()
                .filter(|r| method(r.lvs_method).forward != Forward::Tunnel)
                .map(|r| Family::of(&r.addr))
                .chain(
                    vs.sorry_server
                        .iter()
                        .filter(|s| method(s.lvs_method).forward != Forward::Tunnel)
                        .map(|s| Family::of(&s.addr)),
                )
                .next();
            if let Some(f) = direct {
                return Ok(f);
            }
            let all: HashSet<Family> = vs
                .real_servers
                .iter()
                .map(|r| Family::of(&r.addr))
                .collect();
            Ok(if all.len() == 1 {
                *all.iter().next().expect("one element")
            } else {
                Family::V4
            })
        }
    }
}

/// Returns false if the virtual server must be dropped.
fn finalize_vs(d: &mut Diags, vs: &mut VirtualServer, group: Option<&[VsgEntry]>) -> bool {
    let fam = match family(vs, group) {
        Ok(f) => f,
        Err(e) => {
            d.error(&vs.pos, e);
            return false;
        }
    };
    vs.ip_family = Some(fam);
    let is_fwmark = match &vs.target {
        VsTarget::Fwmark(_) => true,
        VsTarget::Group(_) => !group
            .unwrap_or(&[])
            .iter()
            .any(|e| matches!(e, VsgEntry::Range { .. })),
        VsTarget::Addr { .. } => false,
    };
    let vs_port = match vs.target {
        VsTarget::Addr { port, .. } => port,
        _ => 0,
    };

    // Servers: family, forwarding method, duplicates, ports.
    let needs_default_method = vs.lvs_method.is_none()
        && (vs.real_servers.iter().any(|r| r.lvs_method.is_none())
            || vs
                .sorry_server
                .as_ref()
                .is_some_and(|s| s.lvs_method.is_none()));
    if needs_default_method {
        d.warn(
            &vs.pos,
            "no lb_kind/lvs_method set - using NAT (keepalived's default)",
        );
        vs.lvs_method = Some(LvsMethod::NAT);
    }
    let mut ok = true;
    for rs in &mut vs.real_servers {
        let m = rs.lvs_method.or(vs.lvs_method).unwrap_or(LvsMethod::NAT);
        if m.forward != Forward::Tunnel && Family::of(&rs.addr) != fam {
            d.error(
                &rs.pos,
                "address family of the real server does not match the virtual server's",
            );
            ok = false;
            continue;
        }
        fix_port(
            d,
            &rs.pos,
            &mut rs.port,
            m,
            is_fwmark,
            vs_port,
            group,
            "real server",
        );
    }
    if let Some(s) = &mut vs.sorry_server {
        let m = s.lvs_method.or(vs.lvs_method).unwrap_or(LvsMethod::NAT);
        if m.forward != Forward::Tunnel && Family::of(&s.addr) != fam {
            d.warn(
                &s.pos,
                "address family of the sorry server does not match - sorry server ignored",
            );
            vs.sorry_server = None;
        } else {
            let pos = s.pos.clone();
            fix_port(
                d,
                &pos,
                &mut s.port,
                m,
                is_fwmark,
                vs_port,
                group,
                "sorry server",
            );
        }
    }
    let mut seen = HashSet::new();
    vs.real_servers.retain(|rs| {
        let fresh = seen.insert((rs.addr, rs.port));
        if !fresh {
            d.warn(
                &rs.pos,
                format!(
                    "real server {} port {} is duplicated - second one removed",
                    rs.addr, rs.port
                ),
            );
        }
        fresh
    });

    // Protocol, ops, persistence.
    if is_fwmark {
        if vs.protocol.is_some() {
            d.warn(&vs.pos, "protocol specified for a fwmark service - ignored");
            vs.protocol = None;
        }
    } else {
        if vs.protocol.is_none() {
            d.warn(
                &vs.pos,
                "no protocol set - defaulting to UDP (as keepalived does)",
            );
            vs.protocol = Some(Protocol::Udp);
        }
        if vs.ops && vs.protocol != Some(Protocol::Udp) {
            d.warn(
                &vs.pos,
                "one-packet scheduling (ops) requires UDP - cleared",
            );
            vs.ops = false;
        }
        let zero_port = match &vs.target {
            VsTarget::Addr { port, .. } => *port == 0,
            _ => group
                .unwrap_or(&[])
                .iter()
                .any(|e| matches!(e, VsgEntry::Range { port: 0, .. })),
        };
        if zero_port && vs.persistence_timeout.is_none() {
            d.warn(
                &vs.pos,
                "a zero port is only valid for persistent services - persistence_timeout 360 set",
            );
            vs.persistence_timeout = Some(rvs_core::config::DEFAULT_PERSISTENCE);
        }
    }
    if vs.persistence_granularity.is_some() && vs.persistence_timeout.is_none() {
        vs.persistence_timeout = Some(rvs_core::config::DEFAULT_PERSISTENCE);
    }
    if let Some(m) = vs.persistence_granularity {
        if m.0 > fam.max_prefix() {
            d.error(
                &vs.pos,
                "persistence_granularity does not fit the address family",
            );
            ok = false;
        }
    }
    if let Some(pe) = &vs.persistence_engine {
        if pe != "sip" {
            d.error(
                &vs.pos,
                format!("persistence_engine '{pe}' is not supported (only sip)"),
            );
            ok = false;
        }
    }

    // Scheduler and its flags.
    if vs.lvs_sched.is_none() {
        d.warn(&vs.pos, "no lb_algo/lvs_sched set - using wlc");
        vs.lvs_sched = Some(rvs_core::config::DEFAULT_SCHEDULER.to_string());
    }
    let sched = vs.lvs_sched.clone().unwrap_or_default();
    for (w, pos) in std::mem::take(&mut vs.sched_flag_words) {
        let bit = match (w.as_str(), sched.as_str()) {
            ("flag-1", _) | ("sh-fallback", "sh") | ("mh-fallback", "mh") => SchedFlags::SCHED1,
            ("flag-2", _) | ("sh-port", "sh") | ("mh-port", "mh") => SchedFlags::SCHED2,
            ("flag-3", _) => SchedFlags::SCHED3,
            _ => {
                d.warn(
                    &pos,
                    format!("'{w}' does not apply to the {sched} scheduler - ignored"),
                );
                continue;
            }
        };
        vs.sched_flags.0 |= bit;
    }

    // Quorum against the total weight.
    let total: u64 = vs
        .real_servers
        .iter()
        .map(|r| u64::from(vs.weight_of(r)))
        .sum();
    if u64::from(vs.quorum) > total {
        d.warn(
            &vs.pos,
            format!(
                "quorum {} exceeds the total weight of real servers {total} - reduced",
                vs.quorum
            ),
        );
        vs.quorum = total as u32;
    }
    if vs.hysteresis >= vs.quorum && vs.hysteresis > 0 {
        let h = vs.quorum.saturating_sub(1);
        d.warn(
            &vs.pos,
            format!(
                "hysteresis {} >= quorum {} - set to {h}",
                vs.hysteresis, vs.quorum
            ),
        );
        vs.hysteresis = h;
    }
    ok
}

/// keepalived's port corrections: NAT keeps its port (none ⇒ the service's); other
/// methods must use the service's port (fwmark: none).
#[allow(clippy::too_many_arguments)]
fn fix_port(
    d: &mut Diags,
    pos: &crate::diag::Pos,
    port: &mut u16,
    m: LvsMethod,
    is_fwmark: bool,
    vs_port: u16,
    group: Option<&[VsgEntry]>,
    what: &str,
) {
    if let Some(entries) = group {
        if m.forward != Forward::Masq && *port != 0 {
            for e in entries {
                if let VsgEntry::Range { port: p, .. } = e {
                    if *p != *port {
                        d.warn(
                            pos,
                            format!("{what} port {port} does not match group port {p}"),
                        );
                    }
                }
            }
        }
        return;
    }
    if m.forward == Forward::Masq {
        if !is_fwmark && *port == 0 {
            *port = vs_port;
        }
        return;
    }
    if is_fwmark {
        if *port != 0 {
            d.warn(
                pos,
                format!("fwmark service: {what} port {port} cleared (only NAT maps ports)"),
            );
            *port = 0;
        }
    } else if *port == 0 {
        *port = vs_port;
    } else if *port != vs_port {
        d.warn(
            pos,
            format!("{what} port {port} differs from the service port {vs_port} - reset (only NAT maps ports)"),
        );
        *port = vs_port;
    }
}

fn vrrp(d: &mut Diags, cfg: &mut Config) {
    let mut names = HashSet::new();
    let mut vrids = HashSet::new();
    for v in &cfg.vrrp_instances {
        if !names.insert(v.name.clone()) {
            d.error(&v.pos, format!("vrrp_instance {} is defined twice", v.name));
        }
        let fams: HashSet<bool> = v
            .virtual_ipaddress
            .iter()
            .map(|a| a.addr.is_ipv6())
            .collect();
        if fams.len() > 1 {
            d.error(
                &v.pos,
                format!(
                    "vrrp_instance {}: IPv4 and IPv6 virtual addresses mixed",
                    v.name
                ),
            );
        }
        let ipv6 = fams.contains(&true);
        let iface = v
            .interface
            .clone()
            .or_else(|| cfg.global.vrrp.default_interface.clone());
        if iface.is_none() && v.unicast_peer.is_empty() {
            d.error(&v.pos, format!("vrrp_instance {} has no interface", v.name));
        }
        if !vrids.insert((iface, v.virtual_router_id, ipv6)) {
            d.error(
                &v.pos,
                format!(
                    "virtual_router_id {} is used twice on this interface",
                    v.virtual_router_id
                ),
            );
        }
        if !v.preempt && v.state == Some(crate::vrrp::VrrpState::Master) {
            d.warn(
                &v.pos,
                format!("vrrp_instance {}: nopreempt needs state BACKUP", v.name),
            );
        }
        for t in &v.track_script {
            if !cfg.vrrp_scripts.iter().any(|s| s.name == t.name) {
                d.warn(
                    &v.pos,
                    format!(
                        "vrrp_instance {}: track_script {} not found - ignored",
                        v.name, t.name
                    ),
                );
            }
        }
    }
    let mut member = HashSet::new();
    for g in &cfg.vrrp_sync_groups {
        for m in &g.group {
            if !names.contains(m) {
                d.warn(
                    &g.pos,
                    format!("vrrp_sync_group {}: instance {m} does not exist", g.name),
                );
            } else if !member.insert(m.clone()) {
                d.error(
                    &g.pos,
                    format!("vrrp_instance {m} is in more than one vrrp_sync_group"),
                );
            }
        }
    }
}
