//! The Prometheus text exposition (format 0.0.4).
//!
//! node_exporter's IPVS collector names and labels come first, so dashboards and alerts
//! written for kernel IPVS keep working: `node_ipvs_{connections,incoming_packets,
//! outgoing_packets,incoming_bytes,outgoing_bytes}_total` (global) and
//! `node_ipvs_backend_{connections_active,connections_inactive,weight}` with the labels
//! `local_address, local_port, remote_address, remote_port, proto, local_mark` holding
//! what node_exporter reads from /proc/net/ip_vs (proto `TCP`/`UDP`/`SCTP`/`FWM`; for a
//! fwmark service an empty address, port 0 and the mark as 8 hex digits).
//!
//! rvs's own follow under `rvs_`: per-backend traffic counters, checker states, data-plane
//! drop reasons (`xdp.reason.*` facts), VRRP states and counters (`vrrp.*` facts), and every
//! numeric `sync.*` fact of the connection-sync daemon as `rvs_sync_*`, and the other
//! numeric `xdp.*` facts (the sync ring, the fwmark hook) as `rvs_xdp_*`; a fleet
//! director's announcing (`announce.*` facts) as `rvs_announce_drained` and
//! `rvs_announce_vip{vip}` (1 announced, 0 withdrawn).

use crate::View;
use rvs_core::{Protocol, ServiceKey};
use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

/// node_exporter's backend labels: (local_address, local_port, proto, local_mark).
fn service_labels(k: &ServiceKey) -> (String, u16, &'static str, String) {
    match k {
        ServiceKey::Addr { proto, addr, port } => (
            addr.to_string(),
            *port,
            match proto {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            },
            String::new(),
        ),
        ServiceKey::Fwmark { mark, .. } => (String::new(), 0, "FWM", format!("{mark:08X}")),
    }
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn backend_labels(k: &ServiceKey, addr: IpAddr, port: u16) -> String {
    let (la, lp, proto, mark) = service_labels(k);
    format!(
        "local_address=\"{}\",local_port=\"{lp}\",remote_address=\"{addr}\",remote_port=\"{port}\",proto=\"{proto}\",local_mark=\"{}\"",
        escape(&la),
        escape(&mark)
    )
}

struct Out(String);

impl Out {
    fn head(&mut self, name: &str, kind: &str, help: &str) {
        let _ = writeln!(self.0, "# HELP {name} {help}\n# TYPE {name} {kind}");
    }
    /// A gauge of one unlabelled sample.
    fn gauge(&mut self, name: &str, help: &str, v: impl std::fmt::Display) {
        self.head(name, "gauge", help);
        self.line(name, "", v);
    }

    fn line(&mut self, name: &str, labels: &str, v: impl std::fmt::Display) {
        if labels.is_empty() {
            let _ = writeln!(self.0, "{name} {v}");
        } else {
            let _ = writeln!(self.0, "{name}{{{labels}}} {v}");
        }
    }
}

/// A fact name made a metric name: every character outside `[a-zA-Z0-9_]` becomes `_`.
pub fn metric_name(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

fn vrrp_state_number(s: &str) -> Option<u8> {
    Some(match s {
        "INIT" => 0,
        "BACKUP" => 1,
        "MASTER" => 2,
        "FAULT" => 3,
        _ => return None,
    })
}

/// The whole exposition.
pub fn render(v: &View) -> String {
    let mut o = Out(String::new());
    let (g, _) = &v.global;
    for (name, help, val) in [
        (
            "node_ipvs_connections_total",
            "The total number of connections made.",
            g.conns,
        ),
        (
            "node_ipvs_incoming_packets_total",
            "The total number of incoming packets.",
            g.inpkts,
        ),
        (
            "node_ipvs_outgoing_packets_total",
            "The total number of outgoing packets.",
            g.outpkts,
        ),
        (
            "node_ipvs_incoming_bytes_total",
            "The total amount of incoming data.",
            g.inbytes,
        ),
        (
            "node_ipvs_outgoing_bytes_total",
            "The total amount of outgoing data.",
            g.outbytes,
        ),
    ] {
        o.head(name, "counter", help);
        o.line(name, "", val);
    }

    // one row per (service, real server), summed over equal label sets as node_exporter does
    let mut rows: BTreeMap<String, (u64, u64, u64, rvs_core::Counters)> = BTreeMap::new();
    for s in &v.services {
        for d in &s.dests {
            let e = rows
                .entry(backend_labels(&s.cfg.key, d.cfg.addr, d.cfg.port))
                .or_default();
            e.0 += u64::from(d.activeconns);
            e.1 += u64::from(d.inactconns);
            e.2 += u64::from(d.cfg.weight);
            e.3.conns += d.stats.conns;
            e.3.inpkts += d.stats.inpkts;
            e.3.outpkts += d.stats.outpkts;
            e.3.inbytes += d.stats.inbytes;
            e.3.outbytes += d.stats.outbytes;
        }
    }
    o.head(
        "node_ipvs_backend_connections_active",
        "gauge",
        "The current active connections by local and remote address.",
    );
    for (l, r) in &rows {
        o.line("node_ipvs_backend_connections_active", l, r.0);
    }
    o.head(
        "node_ipvs_backend_connections_inactive",
        "gauge",
        "The current inactive connections by local and remote address.",
    );
    for (l, r) in &rows {
        o.line("node_ipvs_backend_connections_inactive", l, r.1);
    }
    o.head(
        "node_ipvs_backend_weight",
        "gauge",
        "The current backend weight by local and remote address.",
    );
    for (l, r) in &rows {
        o.line("node_ipvs_backend_weight", l, r.2);
    }
    type Pick = fn(&rvs_core::Counters) -> u64;
    let traffic: [(&str, &str, Pick); 5] = [
        (
            "rvs_backend_connections_total",
            "Connections scheduled to the real server.",
            |c| c.conns,
        ),
        (
            "rvs_backend_incoming_packets_total",
            "Packets from clients to the real server.",
            |c| c.inpkts,
        ),
        (
            "rvs_backend_outgoing_packets_total",
            "Packets from the real server to clients.",
            |c| c.outpkts,
        ),
        (
            "rvs_backend_incoming_bytes_total",
            "Bytes from clients to the real server.",
            |c| c.inbytes,
        ),
        (
            "rvs_backend_outgoing_bytes_total",
            "Bytes from the real server to clients.",
            |c| c.outbytes,
        ),
    ];
    for (name, help, pick) in traffic {
        o.head(name, "counter", help);
        for (l, r) in &rows {
            o.line(name, l, pick(&r.3));
        }
    }

    o.head(
        "rvs_info",
        "gauge",
        "rvsd's version and data plane (always 1).",
    );
    o.line(
        "rvs_info",
        &format!(
            "version=\"{}\",dataplane=\"{}\"",
            escape(&v.status.version),
            escape(&v.status.dataplane)
        ),
        1,
    );
    o.head(
        "rvs_virtual_services",
        "gauge",
        "Virtual services in the table.",
    );
    o.line("rvs_virtual_services", "", v.services.len());

    o.head(
        "rvs_checker_up",
        "gauge",
        "1 while the health checker of a real server passes, 0 while it fails.",
    );
    for c in &v.status.checkers {
        let l = format!(
            "{},checker=\"{}\"",
            backend_labels(&c.service, c.addr, c.port),
            escape(&c.kind)
        );
        o.line("rvs_checker_up", &l, u8::from(c.up));
    }
    o.head(
        "rvs_checker_failures",
        "gauge",
        "Consecutive failed checks of a real server's health checker.",
    );
    for c in &v.status.checkers {
        let l = format!(
            "{},checker=\"{}\"",
            backend_labels(&c.service, c.addr, c.port),
            escape(&c.kind)
        );
        o.line("rvs_checker_failures", &l, c.failures);
    }

    facts(&mut o, &v.status.facts);
    o.0
}

fn facts(o: &mut Out, facts: &[(String, String)]) {
    let mut drops = Vec::new();
    let mut vrrp_state = Vec::new();
    let mut vrrp_num: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    let mut sync: BTreeMap<String, String> = BTreeMap::new();
    let mut xdp_other: BTreeMap<String, String> = BTreeMap::new();
    let mut xdp_conns = None;
    let mut announce_vips = Vec::new();
    let mut drained = None;
    for (k, val) in facts {
        let numeric = val.parse::<f64>().is_ok();
        if let Some(reason) = k.strip_prefix("xdp.reason.") {
            if numeric {
                drops.push((reason.to_string(), val.clone()));
            }
        } else if k == "xdp.connections" && numeric {
            xdp_conns = Some(val.clone());
        } else if let Some(rest) = k.strip_prefix("xdp.") {
            // the sync ring's and the fwmark hook's counters
            if numeric {
                xdp_other.insert(format!("rvs_xdp_{}", metric_name(rest)), val.clone());
            }
        } else if let Some(vip) = k.strip_prefix("announce.vip.") {
            let up = if val == "announced" { "1" } else { "0" };
            announce_vips.push((format!("vip=\"{}\"", escape(vip)), up));
        } else if k == "announce.drained" {
            drained = Some(if val == "yes" { "1" } else { "0" });
        } else if let Some(rest) = k.strip_prefix("sync.") {
            if numeric {
                sync.insert(format!("rvs_sync_{}", metric_name(rest)), val.clone());
            }
        } else if let Some(rest) = k.strip_prefix("vrrp.") {
            // vrrp.<instance>.<what>, or vrrp.drop.<reason> for unattributed packets
            if let Some(reason) = rest.strip_prefix("drop.") {
                if numeric {
                    vrrp_num
                        .entry("rvs_vrrp_unattributed_drops_total".into())
                        .or_default()
                        .push((format!("reason=\"{}\"", escape(reason)), val.clone()));
                }
                continue;
            }
            let Some((inst, what)) = rest.split_once('.') else {
                continue;
            };
            let il = format!("instance=\"{}\"", escape(inst));
            if what == "state" {
                if let Some(n) = vrrp_state_number(val) {
                    vrrp_state.push((il, n, val.clone()));
                }
            } else if let Some(reason) = what.strip_prefix("drop.") {
                if numeric {
                    vrrp_num
                        .entry("rvs_vrrp_drops_total".into())
                        .or_default()
                        .push((format!("{il},reason=\"{}\"", escape(reason)), val.clone()));
                }
            } else if numeric && what != "drops" {
                vrrp_num
                    .entry(format!("rvs_vrrp_{}", metric_name(what)))
                    .or_default()
                    .push((il, val.clone()));
            }
        }
    }
    o.head(
        "rvs_drop_packets_total",
        "counter",
        "Packets the XDP data plane dropped or passed up, by named reason.",
    );
    for (r, n) in drops {
        o.line(
            "rvs_drop_packets_total",
            &format!("reason=\"{}\"", escape(&r)),
            n,
        );
    }
    if let Some(n) = xdp_conns {
        o.gauge(
            "rvs_xdp_connections",
            "Entries of the XDP connection table.",
            n,
        );
    }
    o.head(
        "rvs_vrrp_state",
        "gauge",
        "VRRP state of an instance as keepalived numbers it: 0 INIT, 1 BACKUP, 2 MASTER, 3 FAULT.",
    );
    for (l, n, name) in &vrrp_state {
        o.line(
            "rvs_vrrp_state",
            &format!("{l},state=\"{}\"", escape(name)),
            n,
        );
    }
    for (name, rows) in vrrp_num {
        o.head(
            &name,
            "gauge",
            "VRRP instance value (rvsadm --status vrrp.* fact).",
        );
        for (l, n) in rows {
            o.line(&name, &l, n);
        }
    }
    for (name, n) in sync {
        o.head(
            &name,
            "gauge",
            "Connection synchronisation (rvsadm --status sync.* fact).",
        );
        o.line(&name, "", n);
    }
    if let Some(d) = drained {
        o.gauge(
            "rvs_announce_drained",
            "1 while the director is drained (rvsadm --drain): it announces no address.",
            d,
        );
        o.head(
            "rvs_announce_vip",
            "gauge",
            "1 while the virtual address is announced to the fleet's router, 0 while withdrawn.",
        );
        for (l, up) in &announce_vips {
            o.line("rvs_announce_vip", l, up);
        }
    }
    for (name, n) in xdp_other {
        o.head(
            &name,
            "gauge",
            "XDP data plane: the sync ring, the fwmark hook (rvsadm --status xdp.* fact).",
        );
        o.line(&name, "", n);
    }
}
