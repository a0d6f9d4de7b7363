//! Table and packet-path tests: each pins one rule of semantics.md / schedulers.md.

use super::*;
use crate::config::{DestConfig, ServiceConfig};
use crate::packet::{DropReason, Packet, Verdict};
use crate::state::{Dir, TcpFlags};
use crate::types::{Forward, Netmask, Protocol, ServiceKey};
use std::net::IpAddr;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn tcp_key(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

fn udp_key(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip(addr),
        port,
    }
}

const VIP: &str = "10.0.0.1";

fn syn(client: &str, cport: u16) -> Packet {
    Packet::tcp(ip(client), cport, ip(VIP), 80, TcpFlags::SYN, 60)
}

fn seg(client: &str, cport: u16, flags: TcpFlags) -> Packet {
    Packet::tcp(ip(client), cport, ip(VIP), 80, flags, 52)
}

/// A table with one TCP service on VIP:80 and the given servers added in order (so the
/// last one is first in list order).
fn table_with(sched: &str, servers: &[(&str, u32)]) -> (Table, ServiceKey) {
    let mut t = Table::new();
    let key = tcp_key(VIP, 80);
    t.add_service(ServiceConfig::new(key).with_scheduler(sched))
        .unwrap();
    for (addr, w) in servers {
        t.add_dest(
            &key,
            DestConfig::new(ip(addr), 80)
                .with_weight(*w)
                .with_forward(Forward::Masq),
        )
        .unwrap();
    }
    (t, key)
}

fn picked(v: Verdict) -> IpAddr {
    match v {
        Verdict::Forward(f) => f.daddr,
        other => panic!("expected a forward, got {other:?}"),
    }
}

fn counts(t: &Table, key: &ServiceKey, addr: &str) -> (u32, u32, u32) {
    let sid = t.service_id(key).unwrap();
    let id = t.find_dest(sid, ip(addr), 80).unwrap();
    let d = t.dest(id).unwrap();
    (d.activeconns, d.inactconns, d.persistconns)
}

#[test]
fn duplicate_service_is_eexist_and_changes_nothing() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1)]);
    let e = t.add_service(ServiceConfig::new(key)).unwrap_err();
    assert_eq!(e.errno, Errno::Exists);
    assert_eq!(t.num_services(), 1);
    assert_eq!(t.dests_of(t.service_id(&key).unwrap()).len(), 1);
}

#[test]
fn unknown_scheduler_is_enoent() {
    let mut t = Table::new();
    let e = t
        .add_service(ServiceConfig::new(tcp_key(VIP, 80)).with_scheduler("foo"))
        .unwrap_err();
    assert_eq!(e.errno, Errno::NotFound);
    assert_eq!(t.num_services(), 0);
}

#[test]
fn server_errors_use_the_kernel_errnos() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1)]);
    let other = tcp_key("10.9.9.9", 80);
    let d = DestConfig::new(ip("192.168.1.2"), 80);
    assert_eq!(
        t.add_dest(&other, d.clone()).unwrap_err().errno,
        Errno::NoService
    );
    assert_eq!(
        t.add_dest(&key, DestConfig::new(ip("192.168.1.1"), 80))
            .unwrap_err()
            .errno,
        Errno::Exists
    );
    assert_eq!(
        t.edit_dest(&key, d.clone()).unwrap_err().errno,
        Errno::NotFound
    );
    assert_eq!(
        t.del_dest(&key, ip("192.168.1.9"), 80).unwrap_err().errno,
        Errno::NotFound
    );
    assert_eq!(
        t.add_dest(&key, d.clone().with_thresholds(5, 10))
            .unwrap_err()
            .errno,
        Errno::Range
    );
    assert_eq!(
        t.add_dest(&key, DestConfig::new(ip("224.0.0.1"), 80))
            .unwrap_err()
            .errno,
        Errno::Invalid
    );
    assert_eq!(
        t.add_dest(&key, DestConfig::new(ip("2001:db8::1"), 80))
            .unwrap_err()
            .errno,
        Errno::AfNotSupported
    );
    // A tunnel may cross families.
    t.add_dest(
        &key,
        DestConfig::new(ip("2001:db8::1"), 80).with_forward(Forward::Tunnel),
    )
    .unwrap();
    assert_eq!(t.dests_of(t.service_id(&key).unwrap()).len(), 2);
}

#[test]
fn dest_list_is_newest_first() {
    let (t, key) = table_with(
        "rr",
        &[("192.168.1.1", 1), ("192.168.1.2", 1), ("192.168.1.3", 1)],
    );
    let order: Vec<IpAddr> = t
        .dests_of(t.service_id(&key).unwrap())
        .iter()
        .map(|(_, d)| d.cfg.addr)
        .collect();
    assert_eq!(
        order,
        vec![ip("192.168.1.3"), ip("192.168.1.2"), ip("192.168.1.1")]
    );
}

#[test]
fn syn_opens_an_active_entry_and_non_syn_without_entry_passes() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1)]);
    assert_eq!(
        t.process(0, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In),
        Verdict::Pass
    );
    let v = t.process(0, &syn("1.1.1.1", 1000), Dir::In);
    assert_eq!(picked(v), ip("192.168.1.1"));
    // SYN_RECV is active.
    assert_eq!(counts(&t, &key, "192.168.1.1"), (1, 0, 0));
    let c = t.conns().iter().next().unwrap().1;
    assert_eq!(c.state.name(), "SYN_RECV");
    assert_eq!(c.expires, 60_000);
}

#[test]
fn nat_entry_walks_the_full_state_machine_and_counts_both_directions() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1)]);
    let rs = ip("192.168.1.1");
    t.process(0, &syn("1.1.1.1", 1000), Dir::In);
    let reply = |flags| Packet::tcp(rs, 80, ip("1.1.1.1"), 1000, flags, 100);
    match t.process(10, &reply(TcpFlags::SYN_ACK), Dir::Out) {
        Verdict::Reply(f) => {
            assert_eq!((f.vaddr, f.vport), (ip(VIP), 80));
        }
        v => panic!("{v:?}"),
    }
    t.process(20, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In);
    let c = t.conns().iter().next().unwrap().1;
    assert_eq!(c.state.name(), "ESTABLISHED");
    assert_eq!(c.expires, 20 + 900_000);
    // client FIN → CLOSE_WAIT (inactive), server FIN → TIME_WAIT
    t.process(30, &seg("1.1.1.1", 1000, TcpFlags::FIN_ACK), Dir::In);
    assert_eq!(counts(&t, &key, "192.168.1.1"), (0, 1, 0));
    t.process(40, &reply(TcpFlags::FIN_ACK), Dir::Out);
    let c = t.conns().iter().next().unwrap().1;
    assert_eq!(c.state.name(), "TIME_WAIT");
    let sid = t.service_id(&key).unwrap();
    let st = t.service(sid).unwrap().stats.shown();
    assert_eq!((st.conns, st.inpkts, st.outpkts), (1, 3, 2));
    assert_eq!((st.inbytes, st.outbytes), (60 + 52 + 52, 200));
    // TIME_WAIT lasts 120 s; then the entry goes and the counters return to zero.
    assert!(t.expire(40 + 119_999).is_empty());
    assert_eq!(t.expire(40 + 120_000).len(), 1);
    assert_eq!(counts(&t, &key, "192.168.1.1"), (0, 0, 0));
    assert!(t.conns().is_empty());
}

#[test]
fn dr_entry_uses_the_input_only_table_and_sees_no_replies() {
    let mut t = Table::new();
    let key = tcp_key(VIP, 80);
    t.add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    t.add_dest(&key, DestConfig::new(ip("192.168.1.1"), 80))
        .unwrap();
    let f = match t.process(0, &syn("1.1.1.1", 1000), Dir::In) {
        Verdict::Forward(f) => f,
        v => panic!("{v:?}"),
    };
    assert_eq!(f.method, Forward::Route);
    t.process(1, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In);
    // Client FIN in the INPUT-ONLY table goes to FIN_WAIT, not CLOSE_WAIT.
    t.process(2, &seg("1.1.1.1", 1000, TcpFlags::FIN_ACK), Dir::In);
    assert_eq!(t.conns().iter().next().unwrap().1.state.name(), "FIN_WAIT");
    // A reply of a DR entry is not the director's business.
    let r = Packet::tcp(
        ip("192.168.1.1"),
        80,
        ip("1.1.1.1"),
        1000,
        TcpFlags::ACK,
        52,
    );
    assert_eq!(t.process(3, &r, Dir::Out), Verdict::Pass);
}

#[test]
fn no_eligible_server_is_unreachable() {
    let (mut t, _) = table_with("wlc", &[("192.168.1.1", 0)]);
    assert_eq!(
        t.process(0, &syn("1.1.1.1", 1), Dir::In),
        Verdict::Unreachable
    );
    assert_eq!(t.stats.shown().conns, 0);
}

#[test]
fn port_mapping_rewrites_to_the_server_port() {
    let mut t = Table::new();
    let key = tcp_key("172.16.132.18", 80);
    t.add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    t.add_dest(
        &key,
        DestConfig::new(ip("192.168.99.130"), 888).with_forward(Forward::Masq),
    )
    .unwrap();
    let p = Packet::tcp(
        ip("1.1.1.1"),
        5555,
        ip("172.16.132.18"),
        80,
        TcpFlags::SYN,
        60,
    );
    match t.process(0, &p, Dir::In) {
        Verdict::Forward(f) => assert_eq!((f.daddr, f.dport), (ip("192.168.99.130"), 888)),
        v => panic!("{v:?}"),
    }
}

#[test]
fn port_zero_service_catches_every_port_and_keeps_it() {
    let mut t = Table::new();
    let key = tcp_key(VIP, 0);
    t.add_service(
        ServiceConfig::new(key)
            .with_scheduler("rr")
            .with_persistence(60),
    )
    .unwrap();
    t.add_dest(&key, DestConfig::new(ip("192.168.1.1"), 0))
        .unwrap();
    let p = Packet::tcp(ip("1.1.1.1"), 5555, ip(VIP), 443, TcpFlags::SYN, 60);
    match t.process(0, &p, Dir::In) {
        Verdict::Forward(f) => assert_eq!(f.dport, 443),
        v => panic!("{v:?}"),
    }
}

#[test]
fn upper_threshold_sets_overload_and_hysteresis_clears_it() {
    // u=4, no lower threshold: set at 4 connections, cleared when 4·T < 3·4, i.e. T ≤ 2.
    let mut t = Table::new();
    let key = tcp_key(VIP, 80);
    t.add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    t.add_dest(
        &key,
        DestConfig::new(ip("192.168.1.1"), 80).with_thresholds(4, 0),
    )
    .unwrap();
    let sid = t.service_id(&key).unwrap();
    let did = t.find_dest(sid, ip("192.168.1.1"), 80).unwrap();
    for p in 0..4 {
        assert!(matches!(
            t.process(0, &syn("1.1.1.1", p), Dir::In),
            Verdict::Forward(_)
        ));
    }
    assert!(t.dest(did).unwrap().overloaded);
    assert_eq!(
        t.process(0, &syn("1.1.1.1", 99), Dir::In),
        Verdict::Unreachable
    );
    // ACK establishes, RST then puts an entry in CLOSE (10 s); they expire one at a time.
    // (RST on SYN_RECV would keep SYN_RECV: the IN rst cell of SR is SR.)
    for p in 0..4u16 {
        t.process(1 + p as u64, &seg("1.1.1.1", p, TcpFlags::ACK), Dir::In);
        t.process(1 + p as u64, &seg("1.1.1.1", p, TcpFlags::RST), Dir::In);
    }
    t.expire(10_001); // first entry gone: T = 3, 12 < 12 false → still OVERLOAD
    assert!(t.dest(did).unwrap().overloaded);
    t.expire(10_002); // T = 2: 8 < 12 → cleared
    assert!(!t.dest(did).unwrap().overloaded);
}

#[test]
fn lower_threshold_clears_overload_only_below_it() {
    let mut t = Table::new();
    let key = tcp_key(VIP, 80);
    t.add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    t.add_dest(
        &key,
        DestConfig::new(ip("192.168.1.1"), 80).with_thresholds(3, 1),
    )
    .unwrap();
    let sid = t.service_id(&key).unwrap();
    let did = t.find_dest(sid, ip("192.168.1.1"), 80).unwrap();
    for p in 0..3 {
        t.process(0, &syn("1.1.1.1", p), Dir::In);
    }
    assert!(t.dest(did).unwrap().overloaded);
    for p in 0..3u16 {
        t.process(1 + p as u64, &seg("1.1.1.1", p, TcpFlags::ACK), Dir::In);
        t.process(1 + p as u64, &seg("1.1.1.1", p, TcpFlags::RST), Dir::In);
    }
    t.expire(10_002); // T = 1, not < 1
    assert!(t.dest(did).unwrap().overloaded);
    t.expire(10_003); // T = 0
    assert!(!t.dest(did).unwrap().overloaded);
}

#[test]
fn raising_or_removing_the_upper_threshold_clears_overload() {
    let mut t = Table::new();
    let key = tcp_key(VIP, 80);
    t.add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    let cfg = DestConfig::new(ip("192.168.1.1"), 80).with_thresholds(1, 0);
    t.add_dest(&key, cfg.clone()).unwrap();
    t.process(0, &syn("1.1.1.1", 1), Dir::In);
    let sid = t.service_id(&key).unwrap();
    let did = t.find_dest(sid, ip("192.168.1.1"), 80).unwrap();
    assert!(t.dest(did).unwrap().overloaded);
    t.edit_dest(&key, cfg.clone().with_thresholds(1, 0))
        .unwrap();
    assert!(
        t.dest(did).unwrap().overloaded,
        "same threshold keeps the flag"
    );
    t.edit_dest(&key, cfg.with_thresholds(5, 0)).unwrap();
    assert!(!t.dest(did).unwrap().overloaded);
}

fn persistent_table(timeout: u32, mask: u8) -> (Table, ServiceKey) {
    let mut t = Table::new();
    let key = tcp_key(VIP, 80);
    let mut cfg = ServiceConfig::new(key)
        .with_scheduler("rr")
        .with_persistence(timeout);
    cfg.netmask = Netmask(mask);
    t.add_service(cfg).unwrap();
    for a in ["192.168.1.1", "192.168.1.2", "192.168.1.3"] {
        t.add_dest(&key, DestConfig::new(ip(a), 80)).unwrap();
    }
    (t, key)
}

#[test]
fn persistence_keeps_a_client_on_its_server_until_the_template_expires() {
    let (mut t, key) = persistent_table(360, 32);
    let first = picked(t.process(0, &syn("1.1.1.1", 1000), Dir::In));
    for p in 1001..1010 {
        assert_eq!(picked(t.process(1000, &syn("1.1.1.1", p), Dir::In)), first);
    }
    // Another client moves the rr cursor on.
    let other = picked(t.process(1000, &syn("2.2.2.2", 1), Dir::In));
    assert_ne!(other, first);
    // persistconns counts the templates.
    let c = counts(&t, &key, &first.to_string());
    assert_eq!(c.2, 1);
    // Templates are listed with client port 0 and state NONE.
    let tpl = t
        .conn_snapshot(1000)
        .into_iter()
        .find(|c| c.template && c.daddr == first)
        .unwrap();
    assert_eq!(
        (tpl.cport, tpl.state.as_str(), tpl.expires_ms),
        (0, "NONE", 360_000)
    );
}

#[test]
fn template_outlives_its_timeout_while_children_live_then_expires() {
    let (mut t, _key) = persistent_table(10, 32);
    let first = picked(t.process(0, &syn("1.1.1.1", 1000), Dir::In));
    t.process(1, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In); // ESTABLISHED, 900 s
                                                                 // At 10 s the template's timer fires, but its child lives: re-armed 60 s.
    t.expire(10_001);
    assert_eq!(t.conns().len(), 2);
    assert_eq!(
        picked(t.process(20_000, &syn("1.1.1.1", 1001), Dir::In)),
        first
    );
    // The template is assured since its child reached ESTABLISHED.
    let tpl = t
        .conn_snapshot(20_000)
        .into_iter()
        .find(|c| c.template)
        .unwrap();
    assert_eq!(tpl.state, "ASSURED");
    // Kill both children (RST → CLOSE 10 s), then everything goes.
    t.process(20_001, &seg("1.1.1.1", 1001, TcpFlags::ACK), Dir::In);
    t.process(20_001, &seg("1.1.1.1", 1000, TcpFlags::RST), Dir::In);
    t.process(20_001, &seg("1.1.1.1", 1001, TcpFlags::RST), Dir::In);
    t.expire(20_001 + 10_000);
    assert_eq!(t.conns().len(), 1, "template waits for its own timer");
    t.expire(200_000);
    assert!(t.conns().is_empty());
}

#[test]
fn persistence_netmask_groups_clients_of_one_network() {
    let (mut t, _) = persistent_table(360, 24);
    let a = picked(t.process(
        0,
        &Packet::tcp(ip("1.1.1.1"), 1, ip(VIP), 80, TcpFlags::SYN, 60),
        Dir::In,
    ));
    let b = picked(t.process(
        0,
        &Packet::tcp(ip("1.1.1.200"), 1, ip(VIP), 80, TcpFlags::SYN, 60),
        Dir::In,
    ));
    let c = picked(t.process(
        0,
        &Packet::tcp(ip("1.1.2.1"), 1, ip(VIP), 80, TcpFlags::SYN, 60),
        Dir::In,
    ));
    assert_eq!(a, b);
    assert_ne!(a, c);
}

#[test]
fn template_to_a_deleted_server_is_replaced() {
    let (mut t, key) = persistent_table(360, 32);
    let first = picked(t.process(0, &syn("1.1.1.1", 1000), Dir::In));
    t.del_dest(&key, first, 80).unwrap();
    let second = picked(t.process(1, &syn("1.1.1.1", 1001), Dir::In));
    assert_ne!(first, second);
    assert_eq!(picked(t.process(2, &syn("1.1.1.1", 1002), Dir::In)), second);
}

#[test]
fn quiesced_server_keeps_its_persistent_clients_unless_expire_quiescent_template() {
    let (mut t, key) = persistent_table(360, 32);
    let first = picked(t.process(0, &syn("1.1.1.1", 1000), Dir::In));
    t.set_weight(&key, first, 80, 0).unwrap();
    assert_eq!(picked(t.process(1, &syn("1.1.1.1", 1001), Dir::In)), first);
    t.sysctl.expire_quiescent_template = true;
    assert_ne!(picked(t.process(2, &syn("1.1.1.1", 1002), Dir::In)), first);
}

#[test]
fn fwmark_template_spans_ports_and_protocols() {
    let mut t = Table::new();
    let key = ServiceKey::Fwmark {
        mark: 7,
        family: crate::types::Family::V4,
    };
    t.add_service(
        ServiceConfig::new(key)
            .with_scheduler("rr")
            .with_persistence(100),
    )
    .unwrap();
    for a in ["192.168.1.1", "192.168.1.2"] {
        t.add_dest(&key, DestConfig::new(ip(a), 0)).unwrap();
    }
    let mut p80 = Packet::tcp(ip("1.1.1.1"), 1, ip(VIP), 80, TcpFlags::SYN, 60);
    p80.fwmark = 7;
    let mut p53 = Packet::udp(ip("1.1.1.1"), 2, ip("10.0.0.2"), 53, 60);
    p53.fwmark = 7;
    let a = picked(t.process(0, &p80, Dir::In));
    let b = picked(t.process(0, &p53, Dir::In));
    assert_eq!(a, b);
    let tpl = t.conn_snapshot(0).into_iter().find(|c| c.template).unwrap();
    assert_eq!((tpl.proto, tpl.vaddr, tpl.vport), (0, ip("0.0.0.7"), 0));
    // Without the mark the packet is not for the service.
    p80.fwmark = 0;
    p80.sport = 9;
    assert_eq!(t.process(0, &p80, Dir::In), Verdict::Pass);
}

#[test]
fn deleted_server_drops_its_packets_and_is_revived_with_its_counters() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1), ("192.168.1.2", 1)]);
    let a = picked(t.process(0, &syn("1.1.1.1", 1000), Dir::In));
    t.del_dest(&key, a, 80).unwrap();
    assert_eq!(
        t.process(1, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In),
        Verdict::Drop(DropReason::DestUnavailable)
    );
    // Re-adding revives the same server object: its active connection is still counted.
    t.add_dest(&key, DestConfig::new(a, 80).with_forward(Forward::Masq))
        .unwrap();
    assert_eq!(counts(&t, &key, &a.to_string()).0, 1);
    assert!(matches!(
        t.process(2, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In),
        Verdict::Forward(_)
    ));
}

#[test]
fn expire_nodest_conn_reschedules_packets_of_a_deleted_server() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1), ("192.168.1.2", 1)]);
    t.sysctl.expire_nodest_conn = true;
    let a = picked(t.process(0, &syn("1.1.1.1", 1000), Dir::In));
    t.del_dest(&key, a, 80).unwrap();
    // Only a SYN can open a new entry; the ACK passes after the old entry is expired.
    assert_eq!(
        t.process(1, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In),
        Verdict::Pass
    );
    let b = picked(t.process(2, &syn("1.1.1.1", 1000), Dir::In));
    assert_ne!(a, b);
}

#[test]
fn trashed_server_is_freed_after_the_trash_period() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1)]);
    let sid = t.service_id(&key).unwrap();
    let id = t.find_dest(sid, ip("192.168.1.1"), 80).unwrap();
    t.del_dest(&key, ip("192.168.1.1"), 80).unwrap();
    t.tick(0);
    assert!(t.dest(id).is_some());
    t.tick(DEST_TRASH_PERIOD_MS);
    assert!(t.dest(id).is_none());
}

#[test]
fn syn_on_a_time_wait_entry_reschedules() {
    let (mut t, _) = table_with("rr", &[("192.168.1.1", 1), ("192.168.1.2", 1)]);
    let a = picked(t.process(0, &syn("1.1.1.1", 1000), Dir::In));
    t.process(1, &seg("1.1.1.1", 1000, TcpFlags::ACK), Dir::In);
    t.process(1, &seg("1.1.1.1", 1000, TcpFlags::RST), Dir::In); // CLOSE
    let b = picked(t.process(2, &syn("1.1.1.1", 1000), Dir::In));
    assert_ne!(
        a, b,
        "conn_reuse_mode=1 re-schedules a SYN that hits a CLOSE entry"
    );
    assert_eq!(t.conns().len(), 1);
}

#[test]
fn udp_entries_are_inactive_and_live_for_the_udp_timeout() {
    let mut t = Table::new();
    let key = udp_key(VIP, 53);
    t.add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    t.add_dest(&key, DestConfig::new(ip("192.168.1.1"), 53))
        .unwrap();
    let p = Packet::udp(ip("1.1.1.1"), 4000, ip(VIP), 53, 80);
    t.process(0, &p, Dir::In);
    t.process(5_000, &p, Dir::In);
    let c = t.conn_snapshot(5_000);
    assert_eq!((c[0].state.as_str(), c[0].expires_ms), ("UDP", 300_000));
    let sid = t.service_id(&key).unwrap();
    let d = t.dests_of(sid).iter().next().unwrap().1;
    assert_eq!((d.activeconns, d.inactconns), (0, 1));
    t.set_timeouts(0, 0, 10);
    t.process(6_000, &p, Dir::In);
    assert_eq!(t.conn_snapshot(6_000)[0].expires_ms, 10_000);
}

#[test]
fn one_packet_scheduling_keeps_no_entry() {
    let mut t = Table::new();
    let key = udp_key(VIP, 53);
    let mut cfg = ServiceConfig::new(key).with_scheduler("rr");
    cfg.ops = true;
    t.add_service(cfg).unwrap();
    t.add_dest(&key, DestConfig::new(ip("192.168.1.1"), 53))
        .unwrap();
    t.add_dest(&key, DestConfig::new(ip("192.168.1.2"), 53))
        .unwrap();
    let p = Packet::udp(ip("1.1.1.1"), 4000, ip(VIP), 53, 80);
    let a = picked(t.process(0, &p, Dir::In));
    let b = picked(t.process(0, &p, Dir::In));
    assert_ne!(a, b, "each datagram is scheduled on its own");
    assert!(t.conns().is_empty());
    assert_eq!(t.stats.shown().conns, 2);
}

#[test]
fn edit_service_rebinds_the_scheduler_only_when_it_changes() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1), ("192.168.1.2", 1)]);
    let a = picked(t.process(0, &syn("1.1.1.1", 1), Dir::In));
    // Same scheduler: the rr cursor is kept, so the next pick is the other server.
    t.edit_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    let b = picked(t.process(0, &syn("1.1.1.1", 2), Dir::In));
    assert_ne!(a, b);
    t.edit_service(ServiceConfig::new(key).with_scheduler("nope"))
        .unwrap_err();
    assert_eq!(
        t.service(t.service_id(&key).unwrap()).unwrap().sched_kind(),
        SchedKind::Rr
    );
}

#[test]
fn zero_clears_shown_counters_of_one_service_or_all() {
    let (mut t, key) = table_with("rr", &[("192.168.1.1", 1)]);
    t.process(0, &syn("1.1.1.1", 1), Dir::In);
    assert_eq!(
        t.zero(Some(&tcp_key("9.9.9.9", 1))).unwrap_err().errno,
        Errno::NoService
    );
    t.zero(Some(&key)).unwrap();
    let s = t.snapshot();
    assert_eq!(s[0].stats.conns, 0);
    assert_eq!(s[0].dests[0].stats.conns, 0);
    assert_eq!(
        t.stats.shown().conns,
        1,
        "-Z of one service keeps the global counters"
    );
    t.zero(None).unwrap();
    assert_eq!(t.stats.shown().conns, 0);
}

#[test]
fn flush_removes_services_but_entries_drain_by_their_timers() {
    let (mut t, _) = table_with("rr", &[("192.168.1.1", 1)]);
    t.process(0, &syn("1.1.1.1", 1), Dir::In);
    t.flush();
    assert_eq!(t.num_services(), 0);
    assert_eq!(t.conns().len(), 1);
    t.expire(60_000);
    assert!(t.conns().is_empty());
}

#[test]
fn sync_daemon_master_and_backup_once_each() {
    let mut t = Table::new();
    let cfg = SyncDaemonConfig {
        master: true,
        mcast_ifn: "eth0".into(),
        syncid: 1,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 8848,
        mcast_ttl: 1,
    };
    t.start_daemon(cfg.clone()).unwrap();
    assert_eq!(
        t.start_daemon(cfg.clone()).unwrap_err().errno,
        Errno::Exists
    );
    t.start_daemon(SyncDaemonConfig {
        master: false,
        ..cfg
    })
    .unwrap();
    t.stop_daemon(true).unwrap();
    assert_eq!(t.stop_daemon(true).unwrap_err().errno, Errno::NoService);
    assert_eq!(t.daemons().len(), 1);
}

/// The least-loaded schedulers keep an ordered index from 32 servers on; it must make the
/// very decisions of the kernel's scan. Two tables get the same random traffic (new
/// connections, handshakes, FINs, RSTs, expiry, weight and threshold edits): one indexed,
/// one forced to scan; every pick must agree.
#[test]
fn indexed_least_load_schedulers_decide_as_the_scan_in_lockstep() {
    use crate::sched::Random;
    use crate::sched::XorShift;
    for sched in ["lc", "wlc", "sed", "nq", "fo", "ovf"] {
        let build = |force_scan: bool| {
            let mut t = Table::new();
            if force_scan {
                t.scan_only();
            }
            let key = tcp_key(VIP, 80);
            t.add_service(ServiceConfig::new(key).with_scheduler(sched))
                .unwrap();
            for i in 0..48u32 {
                let w = [1, 2, 3, 0, 5, 2, 1, 4][i as usize % 8];
                let u = if i % 5 == 0 { 3 } else { 0 };
                let addr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, i as u8 + 1));
                t.add_dest(
                    &key,
                    DestConfig::new(addr, 80)
                        .with_weight(w)
                        .with_thresholds(u, 0),
                )
                .unwrap();
            }
            t
        };
        let key = tcp_key(VIP, 80);
        let (mut a, mut b) = (build(false), build(true));
        let mut rng = XorShift::new(7);
        let mut open: Vec<u16> = Vec::new();
        let mut now = 0;
        for step in 0..4000u32 {
            now += 1 + rng.below(40) as u64;
            let roll = rng.below(100);
            let pkt = if roll < 45 || open.is_empty() {
                let port = 1000 + (step % 60000) as u16;
                open.push(port);
                syn("1.2.3.4", port)
            } else if roll < 97 {
                let i = rng.below(open.len() as u32) as usize;
                let port = open[i];
                let flags = match rng.below(3) {
                    0 => TcpFlags::ACK,
                    1 => TcpFlags::FIN_ACK,
                    _ => {
                        open.swap_remove(i);
                        TcpFlags::RST
                    }
                };
                seg("1.2.3.4", port, flags)
            } else {
                // An admin edit on both tables.
                let i = rng.below(48) as u8 + 1;
                let addr = IpAddr::V4(std::net::Ipv4Addr::new(192, 168, 1, i));
                let w = rng.below(6);
                for t in [&mut a, &mut b] {
                    let sid = t.service_id(&key).unwrap();
                    let id = t.find_dest(sid, addr, 80).unwrap();
                    let mut cfg = t.dest(id).unwrap().cfg.clone();
                    cfg.weight = w;
                    cfg.u_threshold = if w.is_multiple_of(2) { 0 } else { 4 };
                    t.edit_dest(&key, cfg).unwrap();
                }
                continue;
            };
            let va = a.process(now, &pkt, Dir::In);
            let vb = b.process(now, &pkt, Dir::In);
            let target = |v: Verdict| match v {
                Verdict::Forward(f) => Some(f.daddr),
                _ => None,
            };
            assert_eq!(target(va), target(vb), "{sched} step {step}");
            a.expire(now);
            b.expire(now);
        }
        let sid = a.service_id(&key).unwrap();
        let total: u32 = a.dests_of(sid).iter().map(|(_, d)| d.activeconns).sum();
        assert!(total > 0, "{sched}: the run kept connections open");
    }
}
