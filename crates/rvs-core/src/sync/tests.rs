//! The master's decision (`ip_vs_sync_conn_needed`), the sysctls' validation and the
//! backup's installation (`ip_vs_proc_conn`), each test pinning one rule of
//! `net/netfilter/ipvs/ip_vs_sync.c`.

use super::*;
use crate::config::{DestConfig, ServiceConfig};
use crate::packet::{Packet, Verdict};
use crate::state::{Dir, TcpFlags};
use crate::types::{Netmask, Protocol};

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp_view(state: TcpState) -> SyncView {
    SyncView {
        template: false,
        proto: 6,
        state: state as u16,
        controlled: false,
        timeout_ms: 900_000,
    }
}

/// The packet numbers (1..=n) on which an entry in `state` is sent.
fn sent_on(p: &SyncParams, v: SyncView, n: u32) -> Vec<u32> {
    let mut mark = SyncMark {
        old_state: v.state,
        end: 0,
    };
    (1..=n)
        .filter(|pkts| sync_needed(p, &v, &mut mark, *pkts, 1000 * *pkts as u64))
        .collect()
}

#[test]
fn established_entries_go_on_the_threshold_packet_then_every_period() {
    let p = SyncParams::default();
    assert_eq!(
        sent_on(&p, tcp_view(TcpState::Established), 160),
        vec![3, 53, 103, 153]
    );
}

#[test]
fn tcp_entries_outside_the_sync_states_are_never_sent() {
    let p = SyncParams::default();
    for s in [
        TcpState::None,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ] {
        assert!(sent_on(&p, tcp_view(s), 120).is_empty(), "{s:?}");
    }
}

#[test]
fn a_move_into_a_closing_state_is_sent_at_once_and_established_waits_for_the_threshold() {
    let p = SyncParams::default();
    let mut mark = SyncMark::default();
    // SYN_RECV on packet 1: not a sync state.
    assert!(!sync_needed(
        &p,
        &tcp_view(TcpState::SynRecv),
        &mut mark,
        1,
        0
    ));
    // ESTABLISHED on packet 2: a state change, but ESTABLISHED is not forced.
    assert!(!sync_needed(
        &p,
        &tcp_view(TcpState::Established),
        &mut mark,
        2,
        0
    ));
    assert!(sync_needed(
        &p,
        &tcp_view(TcpState::Established),
        &mut mark,
        3,
        0
    ));
    assert_eq!(mark.old_state, TcpState::Established as u16);
    // FIN_WAIT on packet 10: sent at once, whatever the count.
    assert!(sync_needed(
        &p,
        &tcp_view(TcpState::FinWait),
        &mut mark,
        10,
        0
    ));
    // ... and only once.
    assert!(!sync_needed(
        &p,
        &tcp_view(TcpState::FinWait),
        &mut mark,
        11,
        0
    ));
    assert!(sync_needed(
        &p,
        &tcp_view(TcpState::TimeWait),
        &mut mark,
        12,
        0
    ));
}

#[test]
fn templates_go_with_every_offer_unless_thinned_by_refresh_or_a_zero_period() {
    let tpl = SyncView {
        template: true,
        proto: 6,
        state: 0,
        controlled: false,
        timeout_ms: 300_000,
    };
    let p = SyncParams::default();
    assert_eq!(sent_on(&p, tpl, 10), (1..=10).collect::<Vec<_>>());
    let once = SyncParams {
        period: 0,
        ..SyncParams::default()
    };
    assert_eq!(sent_on(&once, tpl, 10), vec![3]);
}

#[test]
fn udp_has_one_state_and_follows_the_packet_rule() {
    let v = SyncView {
        template: false,
        proto: 17,
        state: 0,
        controlled: false,
        timeout_ms: 300_000,
    };
    assert_eq!(sent_on(&SyncParams::default(), v, 60), vec![3, 53]);
}

#[test]
fn persist_mode_sends_the_template_but_not_its_children() {
    let p = SyncParams {
        persist_mode: true,
        ..SyncParams::default()
    };
    let child = SyncView {
        controlled: true,
        ..tcp_view(TcpState::Established)
    };
    assert!(sent_on(&p, child, 60).is_empty());
    assert_eq!(
        sent_on(&p, tcp_view(TcpState::Established), 60),
        vec![3, 53]
    );
}

#[test]
fn refresh_period_resends_only_when_the_expiry_moved_enough_with_spaced_retries() {
    // refresh 20 s, timeout 900 s: min(20 s, max(450 s, 10 s)) = 20 s.
    let p = SyncParams {
        refresh_period: 20,
        retries: 2,
        period: 0,
        ..SyncParams::default()
    };
    let v = tcp_view(TcpState::Established);
    let mut mark = SyncMark {
        old_state: v.state,
        end: 0,
    };
    // The first sync: the expiry moved from 0 to 900 s.
    assert!(sync_needed(&p, &v, &mut mark, 1, 1_000));
    // 1 s later the expiry moved by 1 s < 20 s: a retry, but not before refresh/8 = 2.5 s.
    assert!(!sync_needed(&p, &v, &mut mark, 2, 2_000));
    assert!(sync_needed(&p, &v, &mut mark, 3, 4_000));
    assert_eq!(mark.end & 3, 1);
    assert!(sync_needed(&p, &v, &mut mark, 4, 7_000));
    assert_eq!(mark.end & 3, 2);
    // retries spent
    assert!(!sync_needed(&p, &v, &mut mark, 5, 10_000));
    // the expiry moved by 20 s or more: sent again
    assert!(sync_needed(&p, &v, &mut mark, 6, 30_000));
    assert_eq!(mark.end & 3, 0);
}

#[test]
fn sync_sysctls_are_validated_as_the_kernel_does() {
    let mut p = SyncParams::default();
    assert_eq!(p.get("sync_threshold").unwrap(), "3\t50");
    p.set("sync_threshold", "5 100").unwrap();
    assert_eq!((p.threshold, p.period), (5, 100));
    // threshold must be below the period (unless the period is 0)
    assert!(p.set("sync_threshold", "100 100").is_err());
    assert!(p.set("sync_threshold", "-1 10").is_err());
    assert_eq!((p.threshold, p.period), (5, 100));
    p.set("sync_threshold", "7 0").unwrap();
    assert!(p.set("sync_retries", "4").is_err());
    p.set("sync_retries", "3").unwrap();
    assert!(p.set("sync_version", "2").is_err());
    p.set("sync_version", "0").unwrap();
    assert!(p.set("sync_ports", "3").is_err());
    assert!(p.set("sync_ports", "128").is_err());
    p.set("sync_ports", "4").unwrap();
    assert_eq!(p.set("no_such", "1").unwrap_err().errno, Errno::NotFound);
    assert_eq!(p.ports, 4);
}

// ----- the backup side -----

const VIP: &str = "10.0.0.1";

fn dr_table(persistent: bool) -> (Table, ServiceKey) {
    let mut t = Table::new();
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(VIP),
        port: 80,
    };
    let mut cfg = ServiceConfig::new(key).with_scheduler("rr");
    if persistent {
        cfg.persistence = Some(300);
        cfg.netmask = Netmask(24);
    }
    t.add_service(cfg).unwrap();
    for a in ["192.168.1.1", "192.168.1.2"] {
        t.add_dest(&key, DestConfig::new(ip(a), 80)).unwrap();
    }
    (t, key)
}

fn entry(client: &str, cport: u16, server: &str, state: TcpState, inactive: bool) -> SyncEntry {
    SyncEntry {
        proto: 6,
        caddr: ip(client),
        cport,
        vaddr: ip(VIP),
        vport: 80,
        daddr: ip(server),
        dport: 80,
        fwmark: 0,
        flags: flags::DROUTE | flags::NOOUTPUT | if inactive { flags::INACTIVE } else { 0 },
        state: state as u16,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
    }
}

fn counts(t: &Table, key: &ServiceKey, addr: &str) -> (u32, u32, u32) {
    let sid = t.service_id(key).unwrap();
    let d = t.dest(t.find_dest(sid, ip(addr), 80).unwrap()).unwrap();
    (d.activeconns, d.inactconns, d.persistconns)
}

#[test]
fn a_received_connection_is_counted_and_forwarded_to_the_masters_server() {
    let (mut t, key) = dr_table(false);
    let e = entry(
        "10.9.0.7",
        40000,
        "192.168.1.2",
        TcpState::Established,
        false,
    );
    assert_eq!(t.install_synced(0, &e), Ok(SyncInstall::Created));
    assert_eq!(counts(&t, &key, "192.168.1.2"), (1, 0, 0));
    // Synced entries do not count as new connections in the traffic counters.
    let sid = t.service_id(&key).unwrap();
    assert_eq!(t.service(sid).unwrap().stats.shown().conns, 0);
    // After a failover the flow's next packet keeps its server (rr would pick .2 first
    // only by chance: take a second flow to show the scheduler is not asked).
    let pkt = Packet::tcp(ip("10.9.0.7"), 40000, ip(VIP), 80, TcpFlags::ACK, 52);
    match t.process(1000, &pkt, Dir::In) {
        Verdict::Forward(f) => {
            assert!(!f.created);
            assert_eq!(f.daddr, ip("192.168.1.2"));
        }
        v => panic!("{v:?}"),
    }
    let l = t.conn_snapshot(1000);
    assert_eq!(l.len(), 1);
    assert_eq!(l[0].state, "ESTABLISHED");
    assert_eq!(l[0].expires_ms, 900_000);
}

#[test]
fn updates_move_the_inactive_count_and_refresh_the_timer() {
    let (mut t, key) = dr_table(false);
    let e = entry(
        "10.9.0.7",
        40000,
        "192.168.1.2",
        TcpState::Established,
        false,
    );
    t.install_synced(0, &e).unwrap();
    let mut fin = entry("10.9.0.7", 40000, "192.168.1.2", TcpState::FinWait, true);
    fin.timeout = 120;
    assert_eq!(t.install_synced(5_000, &fin), Ok(SyncInstall::Updated));
    assert_eq!(counts(&t, &key, "192.168.1.2"), (0, 1, 0));
    let l = t.conn_snapshot(5_000);
    assert_eq!(
        (l[0].state.as_str(), l[0].expires_ms),
        ("FIN_WAIT", 120_000)
    );
    // it expires by that timer and uncounts itself
    t.expire(125_000);
    assert_eq!(counts(&t, &key, "192.168.1.2"), (0, 0, 0));
    assert!(t.conn_snapshot(125_000).is_empty());
}

#[test]
fn an_active_update_with_another_server_replaces_the_entry_an_inactive_one_is_stale() {
    let (mut t, key) = dr_table(false);
    t.install_synced(
        0,
        &entry(
            "10.9.0.7",
            40000,
            "192.168.1.1",
            TcpState::Established,
            false,
        ),
    )
    .unwrap();
    // the master's expiry notice of that old connection after it was replaced: ignored
    let stale = entry("10.9.0.7", 40000, "192.168.1.2", TcpState::TimeWait, true);
    assert_eq!(t.install_synced(1, &stale), Ok(SyncInstall::Stale));
    assert_eq!(counts(&t, &key, "192.168.1.1"), (1, 0, 0));
    // a live connection on another server: replaces it
    let moved = entry(
        "10.9.0.7",
        40000,
        "192.168.1.2",
        TcpState::Established,
        false,
    );
    assert_eq!(t.install_synced(2, &moved), Ok(SyncInstall::Created));
    assert_eq!(counts(&t, &key, "192.168.1.1"), (0, 0, 0));
    assert_eq!(counts(&t, &key, "192.168.1.2"), (1, 0, 0));
    assert_eq!(t.conn_snapshot(2).len(), 1);
}

#[test]
fn entries_without_service_server_or_valid_state_are_skipped_and_change_nothing() {
    let (mut t, _) = dr_table(false);
    let mut e = entry("10.9.0.7", 1, "192.168.1.2", TcpState::Established, false);
    e.vport = 81;
    assert_eq!(t.install_synced(0, &e), Err(SyncSkip::NoService));
    let e = entry("10.9.0.7", 1, "192.168.1.9", TcpState::Established, false);
    assert_eq!(t.install_synced(0, &e), Err(SyncSkip::NoDest));
    let mut e = entry("10.9.0.7", 1, "192.168.1.2", TcpState::Established, false);
    e.state = 11;
    assert_eq!(t.install_synced(0, &e), Err(SyncSkip::State));
    e.state = 1;
    e.proto = 47;
    assert_eq!(t.install_synced(0, &e), Err(SyncSkip::Protocol));
    assert!(t.conn_snapshot(0).is_empty());
}

#[test]
fn a_received_template_keeps_persistent_clients_on_their_server_after_failover() {
    let (mut t, key) = dr_table(true);
    let tpl = SyncEntry {
        proto: 6,
        caddr: ip("10.9.0.0"),
        cport: 0,
        vaddr: ip(VIP),
        vport: 80,
        daddr: ip("192.168.1.1"),
        dport: 80,
        fwmark: 0,
        flags: flags::TEMPLATE | flags::INACTIVE | flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        timeout: 300,
        seq: None,
        pe_name: None,
        pe_data: None,
    };
    assert_eq!(t.install_synced(0, &tpl), Ok(SyncInstall::Created));
    assert_eq!(counts(&t, &key, "192.168.1.1"), (0, 0, 1));
    // New connections of that client net go to .1, whatever rr would pick.
    for cport in 1000..1010 {
        let pkt = Packet::tcp(ip("10.9.0.99"), cport, ip(VIP), 80, TcpFlags::SYN, 60);
        match t.process(10, &pkt, Dir::In) {
            Verdict::Forward(f) => assert_eq!(f.daddr, ip("192.168.1.1")),
            v => panic!("{v:?}"),
        }
    }
    let l = t.conn_snapshot(10);
    let tl = l.iter().find(|c| c.template).unwrap();
    assert_eq!(tl.state, "ASSURED");
}

#[test]
fn version_0_entries_take_the_state_timeout_and_templates_three_minutes() {
    let (mut t, _) = dr_table(true);
    let mut e = entry("10.9.0.7", 40000, "192.168.1.2", TcpState::SynRecv, false);
    e.timeout = 0;
    t.install_synced(0, &e).unwrap();
    let mut tpl = entry("10.9.0.0", 0, "192.168.1.2", TcpState::None, false);
    tpl.flags |= flags::TEMPLATE;
    tpl.timeout = 0;
    t.install_synced(0, &tpl).unwrap();
    let l = t.conn_snapshot(0);
    let c = l.iter().find(|c| !c.template).unwrap();
    assert_eq!(c.expires_ms, 60_000);
    let tp = l.iter().find(|c| c.template).unwrap();
    assert_eq!(tp.expires_ms, 180_000);
}

// ----- the master side of the model -----

fn drive(t: &mut Table, client: &str, cport: u16, n: u32) {
    let mut flags = TcpFlags::SYN;
    for i in 0..n {
        let pkt = Packet::tcp(ip(client), cport, ip(VIP), 80, flags, 60);
        let _ = t.process(i as u64, &pkt, Dir::In);
        flags = TcpFlags::ACK;
    }
}

#[test]
fn the_model_master_sends_connections_on_the_third_packet_with_their_template() {
    let (mut t, _) = dr_table(true);
    t.set_sync_master(Some(SyncScope::All));
    drive(&mut t, "10.9.0.7", 40000, 2);
    let (out, _) = t.take_sync_out();
    // SYN_RECV then ESTABLISHED: only the template went (with every offer).
    assert!(out.iter().all(SyncEntry::is_template));
    assert_eq!(out.len(), 2);
    drive(&mut t, "10.9.0.7", 40000, 3);
    let (out, _) = t.take_sync_out();
    let conns: Vec<&SyncEntry> = out.iter().filter(|e| !e.is_template()).collect();
    assert_eq!(conns.len(), 1);
    let c = conns[0];
    assert_eq!(c.state, TcpState::Established as u16);
    assert_eq!(c.flags, flags::DROUTE | flags::NOOUTPUT);
    assert_eq!(c.timeout, 900);
    let tpl = out.iter().find(|e| e.is_template()).unwrap();
    assert_eq!((tpl.caddr, tpl.cport, tpl.state), (ip("10.9.0.0"), 0, 1));
    assert_eq!(
        tpl.flags,
        flags::TEMPLATE | flags::INACTIVE | flags::DROUTE | flags::NOOUTPUT
    );
    assert_eq!(tpl.timeout, 300);
}

#[test]
fn templates_only_scope_keeps_connections_home() {
    let (mut t, _) = dr_table(true);
    t.set_sync_master(Some(SyncScope::TemplatesOnly));
    drive(&mut t, "10.9.0.7", 40000, 60);
    let (out, _) = t.take_sync_out();
    assert!(!out.is_empty());
    assert!(out.iter().all(SyncEntry::is_template));
    // stopped: nothing more is collected
    t.set_sync_master(None);
    drive(&mut t, "10.9.0.8", 40000, 5);
    assert!(t.take_sync_out().0.is_empty());
}

#[test]
fn a_template_kept_alive_by_its_children_is_synced_when_rearmed() {
    let (mut t, _) = dr_table(true);
    drive(&mut t, "10.9.0.7", 40000, 3);
    t.set_sync_master(Some(SyncScope::All));
    // the template's 300 s run out while the connection lives (900 s)
    t.expire(301_000);
    let (out, _) = t.take_sync_out();
    assert_eq!(out.len(), 1);
    assert!(out[0].is_template());
    assert_eq!(out[0].timeout, 60);
}
