//! `--timeout`, `--daemon` and the rvs `--status` extension.

use rvs_api::{StatusReply, TimeoutsReply};
use rvs_core::SyncDaemonConfig;
use std::net::{IpAddr, Ipv4Addr};

/// `Timeout (tcp tcpfin udp): 900 120 300`.
pub fn timeouts(t: &TimeoutsReply) -> String {
    format!(
        "Timeout (tcp tcpfin udp): {} {} {}\n",
        t.tcp, t.tcpfin, t.udp
    )
}

/// The kernel's multicast defaults (`IP_VS_SYNC_GROUP`, `IP_VS_SYNC_PORT`, TTL 1).
const DEFAULT_GROUP: IpAddr = IpAddr::V4(Ipv4Addr::new(224, 0, 0, 81));
const DEFAULT_PORT: u16 = 8848;
const DEFAULT_TTL: u8 = 1;

/// A daemon's settings as the kernel reports them: values left unset at start are shown
/// with the defaults the kernel applies (the message size is what fits a 1500-byte MTU).
pub fn effective_daemon(d: &SyncDaemonConfig) -> SyncDaemonConfig {
    let group = d.mcast_group.unwrap_or(DEFAULT_GROUP);
    let maxlen = match (d.sync_maxlen, group) {
        (0, IpAddr::V4(_)) => 1500 - 20 - 8,
        (0, IpAddr::V6(_)) => 1500 - 40 - 8,
        (n, _) => n,
    };
    SyncDaemonConfig {
        master: d.master,
        mcast_ifn: d.mcast_ifn.clone(),
        syncid: d.syncid,
        sync_maxlen: maxlen,
        mcast_group: Some(group),
        mcast_port: if d.mcast_port == 0 {
            DEFAULT_PORT
        } else {
            d.mcast_port
        },
        mcast_ttl: if d.mcast_ttl == 0 {
            DEFAULT_TTL
        } else {
            d.mcast_ttl
        },
    }
}

/// Daemons in kernel order: the master first, then the backup.
pub fn daemons_in_order(daemons: &[SyncDaemonConfig]) -> Vec<SyncDaemonConfig> {
    [true, false]
        .iter()
        .filter_map(|&master| daemons.iter().find(|d| d.master == master))
        .map(effective_daemon)
        .collect()
}

/// `master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)`.
pub fn daemons(daemons: &[SyncDaemonConfig]) -> String {
    let mut out = String::new();
    for d in daemons_in_order(daemons) {
        let role = if d.master { "master" } else { "backup" };
        out.push_str(&format!(
            "{role} sync daemon (mcast={}, syncid={}",
            d.mcast_ifn, d.syncid
        ));
        if d.sync_maxlen != 0 {
            out.push_str(&format!(", maxlen={}", d.sync_maxlen));
        }
        if let Some(g) = d.mcast_group {
            out.push_str(&format!(", group={g}"));
        }
        if d.mcast_port != 0 {
            out.push_str(&format!(", port={}", d.mcast_port));
        }
        if d.mcast_ttl != 0 {
            out.push_str(&format!(", ttl={}", d.mcast_ttl));
        }
        out.push_str(")\n");
    }
    out
}

/// `rvsadm --status` (rvs extension): daemon version, data plane, checkers, facts.
pub fn status(s: &StatusReply) -> String {
    let mut out = format!("rvsd {}\nData plane: {}\n", s.version, s.dataplane);
    let up = s.checkers.iter().filter(|c| c.up).count();
    out.push_str(&format!(
        "Health checkers: {} ({} up, {} down)\n",
        s.checkers.len(),
        up,
        s.checkers.len() - up
    ));
    for c in &s.checkers {
        let server = rvs_core::SockAddr(c.addr, c.port);
        out.push_str(&format!(
            "  {} -> {server} {} {}",
            c.service,
            c.kind,
            if c.up { "UP" } else { "DOWN" }
        ));
        if c.failures > 0 {
            out.push_str(&format!(" failures={}", c.failures));
        }
        if let Some(e) = &c.last_error {
            out.push_str(&format!(" last_error=\"{e}\""));
        }
        out.push('\n');
    }
    for (k, v) in &s.facts {
        out.push_str(&format!("{k}: {v}\n"));
    }
    out
}
