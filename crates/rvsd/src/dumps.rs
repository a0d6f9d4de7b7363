//! keepalived's state dumps, written on its signals (see [`crate::signals`]):
//!
//! | signal | file (in the dump directory, `/tmp` by default) | keepalived 2.2 writer |
//! |---|---|---|
//! | SIGUSR1 | `keepalived.data` (VRRP), `keepalived_check.data` (LVS + checkers) | `vrrp_print_data`, `print_check_data` |
//! | SIGUSR2 | `keepalived.stats` | `vrrp_print_stats` |
//! | SIGRTMIN+2 (36) | `keepalived.json` | `vrrp_print_json` |
//!
//! The VRRP files keep keepalived's line shapes where tools parse them (keepalived-exporter
//! reads ` VRRP Instance = `, `   State = `, `   Interface = `, `   Virtual Router ID = `,
//! `   Virtual IP (n):` from the data file, the indented `Key: n` counters of the stats file,
//! and the `data`/`stats` objects of the JSON array). Values rvs does not have (keepalived's
//! fd numbers, timers it does not keep) are left out rather than made up.

use rvs_api::CheckerStatus;
use rvs_core::{Forward, ServiceInfo, ServiceKey};
use rvs_keepalived::Config;
use rvs_vrrp::drop::DropReason;
use rvs_vrrp::status::InstanceStatus;
use rvs_vrrp::Status;
use serde_json::{json, Value};
use std::fmt::Write;
use std::io;
use std::path::{Path, PathBuf};

/// Where keepalived writes its dumps (`KA_TMP_DIR`).
pub const DEFAULT_DIR: &str = "/tmp";

/// What a dump is made of: read-only copies taken when the signal arrived.
#[derive(Default)]
pub struct Snapshot {
    pub vrrp: Status,
    pub config: Option<Config>,
    pub services: Vec<ServiceInfo>,
    pub checkers: Vec<CheckerStatus>,
}

fn instance_cfg<'a>(
    cfg: Option<&'a Config>,
    name: &str,
) -> Option<&'a rvs_keepalived::vrrp::VrrpInstance> {
    cfg?.vrrp_instances.iter().find(|i| i.name == name)
}

/// keepalived's numeric VRRP states (`VRRP_STATE_*`: INIT 0, BACKUP 1, MASTER 2, FAULT 3).
fn state_number(state: &str) -> u8 {
    match state {
        "BACKUP" => 1,
        "MASTER" => 2,
        "FAULT" => 3,
        _ => 0,
    }
}

fn vip_lines(i: &InstanceStatus, cfg: Option<&rvs_keepalived::vrrp::VrrpInstance>) -> Vec<String> {
    match cfg {
        Some(c) => c
            .virtual_ipaddress
            .iter()
            .map(|v| {
                let dev = v.dev.as_deref().unwrap_or(&i.interface);
                format!("{}/{} dev {dev} scope global", v.addr, v.prefix)
            })
            .collect(),
        None => i
            .vips
            .iter()
            .map(|a| {
                let len = if a.is_ipv4() { 32 } else { 128 };
                format!("{a}/{len} dev {} scope global", i.interface)
            })
            .collect(),
    }
}

/// `keepalived.data`: the VRRP topology.
pub fn vrrp_data(s: &Snapshot) -> String {
    let mut o = String::from("------< VRRP Topology >------\n");
    for i in &s.vrrp.instances {
        let c = instance_cfg(s.config.as_ref(), &i.name);
        let _ = writeln!(o, " VRRP Instance = {}", i.name);
        let _ = writeln!(o, "   VRRP Version = {}", i.version);
        let _ = writeln!(o, "   State = {}", i.state);
        if let Some(c) = c {
            let want = match c.initial_state() {
                rvs_keepalived::vrrp::VrrpState::Master => "MASTER",
                rvs_keepalived::vrrp::VrrpState::Backup => "BACKUP",
            };
            let _ = writeln!(o, "   Wantstate = {want}");
        }
        if let Some((addr, prio)) = i.master {
            let _ = writeln!(o, "   Master router = {addr}");
            let _ = writeln!(o, "   Master priority = {prio}");
        }
        let _ = writeln!(o, "   Interface = {}", i.interface);
        let _ = writeln!(o, "   Virtual Router ID = {}", i.vrid);
        let _ = writeln!(o, "   Priority = {}", i.priority);
        let _ = writeln!(o, "   Effective priority = {}", i.effective_priority);
        if let Some(c) = c {
            let adv = c.effective_advert_int();
            let _ = writeln!(o, "   Advert interval = {} milli-sec", adv.as_millis());
            let accept = c.accept.unwrap_or(!c.strict_mode.unwrap_or(false));
            let _ = writeln!(
                o,
                "   Accept = {}",
                if accept { "enabled" } else { "disabled" }
            );
            let _ = writeln!(
                o,
                "   Preempt = {}",
                if c.preempt { "enabled" } else { "disabled" }
            );
            if let Some(d) = c.preempt_delay {
                let _ = writeln!(o, "   Preempt delay = {} secs", d.as_secs());
            }
        }
        if let Some(g) = &i.group {
            let _ = writeln!(o, "   Sync group = {g}");
        }
        let vips = vip_lines(i, c);
        if !vips.is_empty() {
            let _ = writeln!(o, "   Virtual IP ({}):", vips.len());
            for v in vips {
                let _ = writeln!(o, "     {v}");
            }
        }
    }
    o
}

fn key_text(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr { proto, addr, port } => {
            let p = format!("{proto:?}").to_lowercase();
            match addr {
                std::net::IpAddr::V4(a) => format!("{a}:{p}:{port}"),
                std::net::IpAddr::V6(a) => format!("[{a}]:{p}:{port}"),
            }
        }
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

fn forward_text(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "NAT",
        Forward::Route | Forward::Local => "DR",
        Forward::Tunnel => "TUN",
    }
}

/// `keepalived_check.data`: the virtual servers as they are in the table, with each real
/// server's weight and the state of its checkers.
pub fn check_data(s: &Snapshot) -> String {
    let mut o = String::from("------< LVS Topology >------\n");
    for svc in &s.services {
        let _ = writeln!(o, " VS = {}", key_text(&svc.cfg.key));
        let _ = writeln!(o, "   lb_algo = {}", svc.cfg.scheduler);
        if let Some(p) = svc.cfg.persistence {
            let _ = writeln!(o, "   persistence timeout = {p}");
        }
        for d in &svc.dests {
            let rs = std::net::SocketAddr::new(d.cfg.addr, d.cfg.port);
            let _ = writeln!(o, "   RS = {rs}");
            let _ = writeln!(o, "     weight = {}", d.cfg.weight);
            let _ = writeln!(
                o,
                "     forwarding method = {}",
                forward_text(d.cfg.forward)
            );
            let _ = writeln!(o, "     active connections = {}", d.activeconns);
            let _ = writeln!(o, "     inactive connections = {}", d.inactconns);
        }
    }
    o.push_str("------< Health checkers >------\n");
    for c in &s.checkers {
        let rs = std::net::SocketAddr::new(c.addr, c.port);
        let _ = writeln!(o, " {rs}, VS {}", key_text(&c.service));
        let _ = writeln!(o, "   Keepalive method = {}", c.kind);
        let _ = writeln!(o, "   Is up = {}", if c.up { "yes" } else { "no" });
        let _ = writeln!(o, "   Failed checks = {}", c.failures);
        if let Some(e) = &c.last_error {
            let _ = writeln!(o, "   Last error = {e}");
        }
    }
    o
}

/// `keepalived.stats`: keepalived's counters per instance, in its layout.
pub fn vrrp_stats(s: &Snapshot) -> String {
    let mut o = String::new();
    for i in &s.vrrp.instances {
        let d = |r: DropReason| i.drops.get(r);
        let st = &i.stats;
        let _ = writeln!(o, "VRRP Instance: {}", i.name);
        let _ = writeln!(o, "  Advertisements:");
        let _ = writeln!(o, "    Received: {}", st.adverts_rx);
        let _ = writeln!(o, "    Sent: {}", st.adverts_tx);
        let _ = writeln!(o, "  Became master: {}", st.became_master);
        let _ = writeln!(o, "  Released master: {}", st.released_master);
        let _ = writeln!(o, "  Packet Errors:");
        let _ = writeln!(
            o,
            "    Length: {}",
            d(DropReason::Length) + d(DropReason::TooShort)
        );
        let _ = writeln!(o, "    TTL: {}", d(DropReason::Ttl));
        let _ = writeln!(o, "    Invalid Type: {}", d(DropReason::Type));
        let _ = writeln!(o, "    Advertisement Interval: {}", d(DropReason::Interval));
        let _ = writeln!(
            o,
            "    Address List: {}",
            d(DropReason::AddrList) + d(DropReason::AddrCount)
        );
        let _ = writeln!(o, "  Authentication Errors:");
        let _ = writeln!(o, "    Invalid Type: 0");
        let _ = writeln!(o, "    Type Mismatch: {}", d(DropReason::AuthType));
        let _ = writeln!(o, "    Failure: {}", d(DropReason::AuthFailure));
        let _ = writeln!(o, "  Priority Zero:");
        let _ = writeln!(o, "    Received: {}", st.priority_zero_rx);
        let _ = writeln!(o, "    Sent: {}", st.priority_zero_tx);
    }
    o
}

/// `keepalived.json`: keepalived's version-1 layout, an array of `{data, stats}`.
pub fn vrrp_json(s: &Snapshot) -> Value {
    let list: Vec<Value> = s
        .vrrp
        .instances
        .iter()
        .map(|i| {
            let c = instance_cfg(s.config.as_ref(), &i.name);
            let d = |r: DropReason| i.drops.get(r);
            let mut data = json!({
                "iname": i.name,
                "ifp_ifname": i.interface,
                "vrid": i.vrid,
                "base_priority": i.priority,
                "effective_priority": i.effective_priority,
                "master_priority": i.master.map(|(_, p)| p).unwrap_or(0),
                "vipset": i.state == "MASTER",
                "state": state_number(i.state),
                "version": i.version,
                "vips": vip_lines(i, c),
            });
            if let (Some(c), Some(m)) = (c, data.as_object_mut()) {
                let adv = c.effective_advert_int().as_secs_f64();
                m.insert(
                    "wantstate".into(),
                    json!(match c.initial_state() {
                        rvs_keepalived::vrrp::VrrpState::Master => 2,
                        rvs_keepalived::vrrp::VrrpState::Backup => 1,
                    }),
                );
                m.insert("adver_int".into(), json!(adv));
                m.insert("nopreempt".into(), json!(!c.preempt));
                m.insert(
                    "preempt_delay".into(),
                    json!(c.preempt_delay.map(|d| d.as_secs()).unwrap_or(0)),
                );
                m.insert(
                    "strict_mode".into(),
                    json!(u8::from(c.strict_mode.unwrap_or(false))),
                );
                m.insert(
                    "dont_track_primary".into(),
                    json!(u8::from(c.dont_track_primary)),
                );
            }
            json!({
                "data": data,
                "stats": {
                    "advert_rcvd": i.stats.adverts_rx,
                    "advert_sent": i.stats.adverts_tx,
                    "become_master": i.stats.became_master,
                    "release_master": i.stats.released_master,
                    "packet_len_err": d(DropReason::Length) + d(DropReason::TooShort),
                    "advert_interval_err": d(DropReason::Interval),
                    "ip_ttl_err": d(DropReason::Ttl),
                    "invalid_type_rcvd": d(DropReason::Type),
                    "addr_list_err": d(DropReason::AddrList) + d(DropReason::AddrCount),
                    "invalid_authtype": 0,
                    "authtype_mismatch": d(DropReason::AuthType),
                    "auth_failure": d(DropReason::AuthFailure),
                    "pri_zero_rcvd": i.stats.priority_zero_rx,
                    "pri_zero_sent": i.stats.priority_zero_tx,
                }
            })
        })
        .collect();
    Value::Array(list)
}

/// Writes `name` in `dir` atomically (a reader never sees half a dump), mode 0644.
pub fn write(dir: &Path, name: &str, text: &str) -> io::Result<PathBuf> {
    let path = dir.join(name);
    rvsd::state_file::write_atomic(&path, text.as_bytes(), 0o644)?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_vrrp::machine::MachineStats;

    fn snapshot() -> Snapshot {
        let mut drops = rvs_vrrp::drop::DropCounters::default();
        drops.add(DropReason::Ttl);
        drops.add(DropReason::AddrCount);
        Snapshot {
            vrrp: Status {
                instances: vec![InstanceStatus {
                    name: "VI_1".into(),
                    interface: "eth0".into(),
                    vrid: 51,
                    version: 2,
                    state: "BACKUP",
                    priority: 100,
                    effective_priority: 90,
                    master: Some(("10.0.0.2".parse().unwrap(), 150)),
                    vips: vec!["10.0.0.100".parse().unwrap()],
                    stats: MachineStats {
                        adverts_rx: 7,
                        adverts_tx: 3,
                        became_master: 1,
                        released_master: 1,
                        priority_zero_rx: 2,
                        priority_zero_tx: 0,
                    },
                    drops,
                    ..Default::default()
                }],
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// The lines keepalived-exporter's data parser keys on.
    #[test]
    fn data_file_has_keepalived_s_keys() {
        let t = vrrp_data(&snapshot());
        assert!(t.starts_with("------< VRRP Topology >------\n VRRP Instance = VI_1\n"));
        for line in [
            "   State = BACKUP",
            "   Interface = eth0",
            "   Virtual Router ID = 51",
            "   Master router = 10.0.0.2",
            "   Virtual IP (1):",
            "     10.0.0.100/32 dev eth0 scope global",
        ] {
            assert!(t.lines().any(|l| l == line), "{line:?} missing:\n{t}");
        }
    }

    #[test]
    fn stats_file_is_keepalived_s_layout() {
        let t = vrrp_stats(&snapshot());
        let want = "VRRP Instance: VI_1\n  Advertisements:\n    Received: 7\n    Sent: 3\n\
                    \x20 Became master: 1\n  Released master: 1\n  Packet Errors:\n    Length: 0\n\
                    \x20   TTL: 1\n    Invalid Type: 0\n    Advertisement Interval: 0\n    Address List: 1\n\
                    \x20 Authentication Errors:\n    Invalid Type: 0\n    Type Mismatch: 0\n    Failure: 0\n\
                    \x20 Priority Zero:\n    Received: 2\n    Sent: 0\n";
        assert_eq!(t, want);
    }

    #[test]
    fn json_is_an_array_of_data_and_stats() {
        let v = vrrp_json(&snapshot());
        let i = &v[0];
        assert_eq!(i["data"]["iname"], "VI_1");
        assert_eq!(i["data"]["state"], 1);
        assert_eq!(i["data"]["vrid"], 51);
        assert_eq!(i["data"]["vips"][0], "10.0.0.100/32 dev eth0 scope global");
        assert_eq!(i["stats"]["advert_rcvd"], 7);
        assert_eq!(i["stats"]["ip_ttl_err"], 1);
        assert_eq!(i["stats"]["pri_zero_rcvd"], 2);
    }
}
