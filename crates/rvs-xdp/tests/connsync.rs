//! Connection sync in the XDP director, through BPF_PROG_TEST_RUN on the real object:
//!
//! * master: the packet path offers exactly what the Rust model offers for the same
//!   packets (`ip_vs_sync_conn_needed`: third packet, every 50th, state changes,
//!   templates with their children), through the ring buffer;
//! * backup: received entries (`RVS_CTL_INSTALL`, `ip_vs_proc_conn`) are counted on their
//!   server, listed, and forward the flow's next packets to the master's real server
//!   (NAT replies too); updates, stale updates and entries rvs cannot serve behave as the
//!   kernel's backup, or are refused with their reason.

mod common;

use common::packet::*;
use common::*;
use rvs_core::sync::flags;
use rvs_core::{
    DestConfig, Dir, Forward, Netmask, Packet, ServiceConfig, SyncEntry, SyncInstall, SyncScope,
    SyncSkip, Table, TcpFlags,
};
use rvs_dataplane::{DataPlane, SyncSink};
use rvs_xdp::Build;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn rig(name: &str, build: Build) -> Option<Rig> {
    root_or_skip(name).then(|| Rig::new(name, build))
}

fn seg(sport: u16, dport: u16, flags: u8) -> L4 {
    L4::Tcp {
        sport,
        dport,
        flags,
        payload: vec![],
    }
}

fn client(src: &str, dst: &str, l4: &L4) -> Vec<u8> {
    frame(D0_MAC, GW_MAC, &ip_packet(ip(src), ip(dst), l4))
}

/// A sink that collects what the plane's ring reader hands over.
fn collector() -> (SyncSink, Arc<Mutex<Vec<SyncEntry>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let sink: SyncSink = Arc::new(move |es: &[SyncEntry]| g.lock().unwrap().extend_from_slice(es));
    (sink, got)
}

/// Waits until the reader has handed over everything the ring received.
fn drained(rig: &Rig, got: &Arc<Mutex<Vec<SyncEntry>>>) -> Vec<SyncEntry> {
    let end = Instant::now() + Duration::from_secs(5);
    loop {
        let (events, lost) = rvs_xdp::connsync::ring_counts(rig.plane.director()).unwrap();
        assert_eq!(lost, 0);
        let n = got.lock().unwrap().len() as u64;
        if n == events {
            return std::mem::take(&mut *got.lock().unwrap());
        }
        assert!(
            Instant::now() < end,
            "the reader handed over {n} of {events} entries"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The fields both sides must agree on (the model has no ring, the ring no model ids).
fn view(e: &SyncEntry) -> (u8, String, u16, String, u16, String, u16, u32, u16, u32) {
    (
        e.proto,
        e.caddr.to_string(),
        e.cport,
        e.vaddr.to_string(),
        e.vport,
        e.daddr.to_string(),
        e.dport,
        e.flags,
        e.state,
        e.timeout,
    )
}

fn services(t: &mut Table) {
    let mut p = ServiceConfig::new(tcp("10.0.0.100", 80)).with_scheduler("rr");
    p.persistence = Some(300);
    p.netmask = Netmask(24);
    t.add_service(p).unwrap();
    t.add_dest(
        &tcp("10.0.0.100", 80),
        DestConfig::new(ip("10.0.0.11"), 80).with_forward(Forward::Route),
    )
    .unwrap();
    t.add_service(ServiceConfig::new(tcp("10.0.0.100", 443)).with_scheduler("rr"))
        .unwrap();
    t.add_dest(
        &tcp("10.0.0.100", 443),
        DestConfig::new(ip("10.1.0.21"), 8443).with_forward(Forward::Masq),
    )
    .unwrap();
    t.add_service(ServiceConfig::new(udp("10.0.0.100", 53)).with_scheduler("rr"))
        .unwrap();
    t.add_dest(
        &udp("10.0.0.100", 53),
        DestConfig::new(ip("10.0.0.12"), 53).with_forward(Forward::Route),
    )
    .unwrap();
}

#[test]
fn the_packet_path_offers_what_the_model_offers() {
    let Some(mut rig) = rig("sync-master", Build::Production) else {
        return;
    };
    services(&mut rig.table);
    rig.table.set_sync_master(Some(SyncScope::All));
    rig.sync();
    let (sink, got) = collector();
    rig.plane.set_sync_sink(Some(sink));

    let mut model = Table::new();
    services(&mut model);
    model.set_sync_master(Some(SyncScope::All));

    // (client, cport, vport, tcp flags or None for UDP, count)
    let flows: [(&str, u16, u16, Option<u8>, u32); 4] = [
        ("10.9.0.7", 40000, 80, Some(SYN), 1),
        ("10.9.0.7", 40000, 80, Some(ACK), 60),
        ("10.9.0.7", 40000, 80, Some(FIN | ACK), 1),
        ("10.9.0.9", 41000, 443, Some(SYN), 1),
    ];
    let mut steps: Vec<(&str, u16, u16, Option<u8>)> = Vec::new();
    for (c, cp, vp, f, n) in flows {
        for _ in 0..n {
            steps.push((c, cp, vp, f));
        }
    }
    for _ in 0..55 {
        steps.push(("10.9.0.9", 41000, 443, Some(ACK)));
    }
    for _ in 0..55 {
        steps.push(("10.9.0.8", 5353, 53, None));
    }
    let mut want = Vec::new();
    for (i, (c, cp, vp, f)) in steps.iter().enumerate() {
        let (l4, pkt) = match f {
            Some(fl) => (
                seg(*cp, *vp, *fl),
                Packet::tcp(
                    ip(c),
                    *cp,
                    ip("10.0.0.100"),
                    *vp,
                    TcpFlags::from_byte(*fl),
                    40,
                ),
            ),
            None => (
                L4::Udp {
                    sport: *cp,
                    dport: *vp,
                    payload: vec![0; 12],
                    csum: true,
                },
                Packet::udp(ip(c), *cp, ip("10.0.0.100"), *vp, 40),
            ),
        };
        let (verdict, _) = rig.run(&client(c, "10.0.0.100", &l4));
        assert!(
            verdict == XDP_TX || verdict == XDP_REDIRECT,
            "step {i}: verdict {verdict}"
        );
        let _ = model.process(i as u64, &pkt, Dir::In);
        want.extend(model.take_sync_out().0);
    }
    let have = drained(&rig, &got);
    // the scenario exercises every rule: templates, the threshold and the period, a
    // closing state, UDP
    let count = |f: &dyn Fn(&SyncEntry) -> bool| want.iter().filter(|e| f(e)).count();
    assert!(count(&|e| e.is_template()) >= 4, "{want:?}");
    assert!(
        count(&|e| !e.is_template() && e.proto == 6 && e.state == 1) >= 3,
        "{want:?}"
    );
    assert_eq!(count(&|e| e.state == 4), 1, "FIN_WAIT at once");
    assert_eq!(
        count(&|e| e.proto == 17),
        2,
        "UDP on the 3rd and 53rd datagram"
    );
    let want: Vec<_> = want.iter().map(view).collect();
    let have: Vec<_> = have.iter().map(view).collect();
    assert_eq!(have, want);
    rig.plane.set_sync_sink(None);
}

#[test]
fn nothing_is_offered_without_a_master() {
    let Some(mut rig) = rig("sync-off", Build::Production) else {
        return;
    };
    services(&mut rig.table);
    rig.sync();
    for fl in [SYN, ACK, ACK, ACK, ACK] {
        rig.run(&client("10.9.0.7", "10.0.0.100", &seg(40000, 80, fl)));
    }
    assert_eq!(
        rvs_xdp::connsync::ring_counts(rig.plane.director()).unwrap(),
        (0, 0)
    );
}

fn received(client: &str, cport: u16, vport: u16, server: &str, dport: u16) -> SyncEntry {
    SyncEntry {
        proto: 6,
        caddr: ip(client),
        cport,
        vaddr: ip("10.0.0.100"),
        vport,
        daddr: ip(server),
        dport,
        fwmark: 0,
        flags: flags::DROUTE | flags::NOOUTPUT | flags::SYNC,
        state: 1,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
    }
}

fn install(rig: &mut Rig, es: &[SyncEntry]) -> Vec<Result<SyncInstall, SyncSkip>> {
    rig.plane.install_synced(&mut rig.table, 0, es)
}

#[test]
fn received_entries_forward_their_flows_to_the_masters_servers() {
    let Some(mut rig) = rig("sync-backup", Build::Production) else {
        return;
    };
    let dr = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&dr, "10.0.0.11", 80, Forward::Route, 1);
    rig.dest(&dr, "10.0.0.12", 80, Forward::Route, 1);
    let nat = rig.service(tcp("10.0.0.100", 443), "rr");
    rig.dest(&nat, "10.1.0.21", 8443, Forward::Masq, 1);

    let dr_flow = received("10.9.0.7", 40000, 80, "10.0.0.11", 80);
    let mut nat_flow = received("10.9.0.8", 41000, 443, "10.1.0.21", 8443);
    nat_flow.flags = flags::MASQ | flags::SYNC;
    assert_eq!(
        install(&mut rig, &[dr_flow.clone(), nat_flow]),
        vec![Ok(SyncInstall::Created), Ok(SyncInstall::Created)]
    );
    assert_eq!(rig.counts(&dr, "10.0.0.11", 80), (1, 0, 0, false));
    assert_eq!(rig.counts(&nat, "10.1.0.21", 8443), (1, 0, 0, false));
    let l = rig.plane.connections(&rig.table).unwrap();
    let c = l.iter().find(|c| c.cport == 40000).unwrap();
    assert_eq!(
        (c.state.as_str(), c.daddr),
        ("ESTABLISHED", ip("10.0.0.11"))
    );
    assert!(
        c.expires_ms > 899_000 && c.expires_ms <= 900_000,
        "{}",
        c.expires_ms
    );

    // After the failover the flow's next segment goes to .11, though rr would start at .12.
    let ack = client("10.9.0.7", "10.0.0.100", &seg(40000, 80, ACK));
    let (v, out) = rig.run(&ack);
    assert_eq!(v, XDP_TX);
    assert_eq!(out, remac(&ack, rs_mac(0x11), D0_MAC));
    assert_eq!(rig.conn_count(), 2, "no new entry was made");

    // The NAT flow: the client's segment is rewritten to the server, its reply back to the VIP.
    let (v, out) = rig.run(&client("10.9.0.8", "10.0.0.100", &seg(41000, 443, ACK)));
    assert_eq!(v, XDP_REDIRECT, "to the server side");
    let ipo = 14;
    assert_eq!(
        &out[ipo + 16..ipo + 20],
        &[10, 1, 0, 21],
        "destination rewritten"
    );
    let reply = frame(
        D1_MAC,
        rs1_mac(0x21),
        &ip_packet(ip("10.1.0.21"), ip("10.9.0.8"), &seg(8443, 41000, ACK)),
    );
    let (v, out) = rig.run_on(&reply, rig.if1);
    assert_eq!(v, XDP_REDIRECT, "back to the client side");
    assert_eq!(
        &out[ipo + 12..ipo + 16],
        &[10, 0, 0, 100],
        "source rewritten to the VIP"
    );

    // An update: the connection closes on the master (inactive, FIN_WAIT, 120 s).
    let mut fin = dr_flow.clone();
    fin.state = 4;
    fin.flags |= flags::INACTIVE;
    fin.timeout = 120;
    assert_eq!(install(&mut rig, &[fin]), vec![Ok(SyncInstall::Updated)]);
    assert_eq!(rig.counts(&dr, "10.0.0.11", 80), (0, 1, 0, false));
    let l = rig.plane.connections(&rig.table).unwrap();
    let c = l.iter().find(|c| c.cport == 40000).unwrap();
    assert_eq!(c.state, "FIN_WAIT");
    assert!(c.expires_ms <= 120_000);

    // The master's expiry notice of a connection it replaced: stale, nothing moves.
    let mut stale = received("10.9.0.7", 40000, 80, "10.0.0.12", 80);
    stale.flags |= flags::INACTIVE;
    assert_eq!(install(&mut rig, &[stale]), vec![Ok(SyncInstall::Stale)]);
    // ... while an active one moves the connection.
    let moved = received("10.9.0.7", 40000, 80, "10.0.0.12", 80);
    assert_eq!(install(&mut rig, &[moved]), vec![Ok(SyncInstall::Created)]);
    assert_eq!(rig.counts(&dr, "10.0.0.11", 80), (0, 0, 0, false));
    assert_eq!(rig.counts(&dr, "10.0.0.12", 80), (1, 0, 0, false));

    // What rvs cannot take: no such service, no such server, SCTP, sip, a bad state.
    let no_svc = received("10.9.0.7", 1, 81, "10.0.0.11", 80);
    let no_dest = received("10.9.0.7", 2, 80, "10.0.0.99", 80);
    let mut sctp = received("10.9.0.7", 3, 80, "10.0.0.11", 80);
    sctp.proto = 132;
    let mut bad = received("10.9.0.7", 4, 80, "10.0.0.11", 80);
    bad.state = 11;
    assert_eq!(
        install(&mut rig, &[no_svc, no_dest, sctp, bad]),
        vec![
            Err(SyncSkip::NoService),
            Err(SyncSkip::NoDest),
            Err(SyncSkip::Unsupported),
            Err(SyncSkip::State)
        ]
    );
    assert_eq!(rig.conn_count(), 2);
}

#[test]
fn a_received_template_keeps_new_connections_of_its_clients_on_their_server() {
    let Some(mut rig) = rig("sync-template", Build::Production) else {
        return;
    };
    let mut cfg = ServiceConfig::new(tcp("10.0.0.100", 80)).with_scheduler("rr");
    cfg.persistence = Some(300);
    cfg.netmask = Netmask(24);
    let k = rig.service_cfg(cfg);
    rig.dest(&k, "10.0.0.11", 80, Forward::Route, 1);
    rig.dest(&k, "10.0.0.12", 80, Forward::Route, 1);
    let tpl = SyncEntry {
        caddr: ip("10.9.0.0"),
        cport: 0,
        flags: flags::TEMPLATE | flags::INACTIVE | flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        timeout: 300,
        ..received("10.9.0.0", 0, 80, "10.0.0.11", 80)
    };
    assert_eq!(install(&mut rig, &[tpl]), vec![Ok(SyncInstall::Created)]);
    assert_eq!(rig.counts(&k, "10.0.0.11", 80), (0, 0, 1, false));
    for cport in 50000..50006 {
        let syn = client("10.9.0.55", "10.0.0.100", &seg(cport, 80, SYN));
        let (v, out) = rig.run(&syn);
        assert_eq!(v, XDP_TX);
        assert_eq!(
            out,
            remac(&syn, rs_mac(0x11), D0_MAC),
            "client port {cport}"
        );
    }
    let l = rig.plane.connections(&rig.table).unwrap();
    let t = l.iter().find(|c| c.template).unwrap();
    assert_eq!(t.state, "ASSURED");
}

/// The sweeper reads the tables whole only every few seconds; an entry a backup installs
/// with a shorter timeout still expires on time.
#[test]
fn installed_entries_expire_on_time_between_full_reads() {
    let Some(mut rig) = rig("sync-expiry", Build::Test) else {
        return;
    };
    let dr = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&dr, "10.0.0.11", 80, Forward::Route, 1);
    const S: u64 = 1_000_000_000;
    let t0 = 1_000 * S;
    let dir = rig.plane.director();
    rvs_xdp::testenv::set_now(dir, t0).unwrap();
    // a full read now: the next one is 10 s away
    assert!(rig.plane.inner().sweep_tick(t0).unwrap().scanned);
    rvs_xdp::testenv::set_now(rig.plane.director(), t0 + S).unwrap();
    let mut e = received("10.9.0.7", 40000, 80, "10.0.0.11", 80);
    e.state = 5; // TIME_WAIT
    e.timeout = 3;
    assert_eq!(install(&mut rig, &[e]), vec![Ok(SyncInstall::Created)]);
    let sw = |t: u64| {
        rvs_xdp::testenv::set_now(rig.plane.director(), t0 + t).unwrap();
        rig.plane.inner().sweep_tick(t0 + t).unwrap()
    };
    assert_eq!(sw(3 * S).expired, 0, "not due yet");
    let s = sw(4 * S + S / 2);
    assert!(!s.scanned, "between full reads");
    assert_eq!(s.expired, 1, "due at 4 s, expired at the next tick");
    assert_eq!(rig.conn_count(), 0);
}
