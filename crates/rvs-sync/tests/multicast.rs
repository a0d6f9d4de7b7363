//! A master and a backup on the two ends of a veth pair in a network namespace this test
//! creates (deleted by name on drop): what the master is offered arrives at the backup's
//! installer, over as many ports as `sync_ports` says; a wrong syncid, malformed
//! datagrams and an unknown interface are refused with their reasons. Root only (outside
//! CI a missing privilege skips).

use rvs_core::{Errno, SyncDaemonConfig, SyncEntry, SyncInstall, SyncParams, SyncSkip};
use rvs_sync::{Installer, SyncDaemons};
use rvs_testkit::netns::{in_ns, Lab};
use std::net::{IpAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn lab() -> Option<(Lab, String)> {
    if !rvs_testkit::require_root("sync multicast test") {
        return None;
    }
    let mut lab = Lab::new();
    let ns = lab.add_ns("sync").expect("namespace");
    lab.exec(
        "sync",
        &[
            "ip", "link", "add", "sa", "type", "veth", "peer", "name", "sb",
        ],
    )
    .expect("veth");
    for (i, a) in [("sa", "10.88.0.1/24"), ("sb", "10.88.0.2/24")] {
        lab.exec("sync", &["ip", "addr", "add", a, "dev", i])
            .unwrap();
        lab.exec("sync", &["ip", "link", "set", i, "up"]).unwrap();
    }
    // Master and backup share the namespace: what arrives on sb comes from an address of
    // our own, which the kernel drops as a martian unless told otherwise.
    for k in [
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.sb.rp_filter=0",
        "net.ipv4.conf.sb.accept_local=1",
    ] {
        lab.exec("sync", &["sysctl", "-qw", k]).unwrap();
    }
    Some((lab, ns))
}

fn entry(i: u32) -> SyncEntry {
    SyncEntry {
        proto: 6,
        caddr: IpAddr::from([10, 9, (i >> 8) as u8, i as u8]),
        cport: 1024 + (i % 50000) as u16,
        vaddr: "10.0.0.1".parse().unwrap(),
        vport: 80,
        daddr: "192.168.1.2".parse().unwrap(),
        dport: 80,
        fwmark: 0,
        flags: 0x83,
        state: 1,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
    }
}

fn daemon(master: bool, ifn: &str, syncid: u8) -> SyncDaemonConfig {
    SyncDaemonConfig {
        master,
        mcast_ifn: ifn.into(),
        syncid,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    }
}

/// An installer that records what it gets and says "created".
fn recorder() -> (Installer, Arc<Mutex<Vec<SyncEntry>>>) {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let inst: Installer = Arc::new(move |es: Vec<SyncEntry>| {
        let n = es.len();
        g.lock().unwrap().extend(es);
        vec![Ok(SyncInstall::Created); n]
    });
    (inst, got)
}

fn wait_until(within: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + within;
    while Instant::now() < end {
        if cond() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    cond()
}

fn fact(d: &SyncDaemons, name: &str) -> u64 {
    d.facts()
        .into_iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.parse().unwrap())
        .unwrap_or_else(|| panic!("no fact {name}"))
}

#[test]
fn offered_entries_reach_the_backup_over_every_port() {
    let Some((_lab, ns)) = lab() else { return };
    in_ns(&ns, || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _g = rt.enter();
        let params = SyncParams {
            ports: 4,
            ..SyncParams::default()
        };
        let (inst, got) = recorder();
        let mut ds = SyncDaemons::new();
        let m = ds
            .start(&daemon(true, "sa", 5), &params, inst.clone())
            .unwrap();
        assert_eq!(
            (m.sync_maxlen, m.mcast_port, m.mcast_ttl),
            (1472, 8848, 1),
            "the kernel's defaults"
        );
        let mut backups = SyncDaemons::new();
        backups
            .start(&daemon(false, "sb", 5), &params, inst)
            .unwrap();
        let entries: Vec<SyncEntry> = (0..2000).map(entry).collect();
        ds.master().unwrap().offer(&entries);
        // Full messages go at once; the last partial one per port within 2 s.
        assert!(
            wait_until(Duration::from_secs(5), || got.lock().unwrap().len() == 2000),
            "received {} of 2000",
            got.lock().unwrap().len()
        );
        let mut g = got.lock().unwrap().clone();
        g.sort_by_key(|e| (e.caddr, e.cport));
        let mut want: Vec<SyncEntry> = entries
            .into_iter()
            .map(|mut e| {
                e.flags |= 0x20; // SYNC
                e
            })
            .collect();
        want.sort_by_key(|e| (e.caddr, e.cport));
        assert_eq!(g, want);
        assert_eq!(fact(&ds, "sync.master.sent_entries"), 2000);
        assert_eq!(fact(&backups, "sync.backup.received_entries"), 2000);
        assert_eq!(fact(&backups, "sync.backup.installed.created"), 2000);
        // 40 entries fill a 1472-byte message; each of the four ports sends its last
        // message partly filled.
        let msgs = fact(&ds, "sync.master.sent_messages");
        assert!((50..=54).contains(&msgs), "{msgs} messages");
    });
}

#[test]
fn wrong_syncid_and_malformed_datagrams_are_counted_and_install_nothing() {
    let Some((_lab, ns)) = lab() else { return };
    in_ns(&ns, || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _g = rt.enter();
        let params = SyncParams::default();
        let (inst, got) = recorder();
        let mut backups = SyncDaemons::new();
        backups
            .start(&daemon(false, "sb", 9), &params, inst.clone())
            .unwrap();
        let mut masters = SyncDaemons::new();
        masters
            .start(&daemon(true, "sa", 8), &params, inst)
            .unwrap();
        masters.master().unwrap().offer(&[entry(1)]);
        assert!(wait_until(Duration::from_secs(5), || fact(
            &backups,
            "sync.backup.dropped.syncid"
        ) == 1));
        // Raw datagrams from a socket of our own, out of sa to the group.
        let s = UdpSocket::bind("10.88.0.1:0").unwrap();
        s.set_multicast_loop_v4(false).unwrap();
        let good = rvs_sync::wire::encode(1, 9, 1472, &[entry(2), entry(3)]).remove(0);
        let mut short = good.clone();
        short.truncate(30);
        let mut count = good.clone();
        count[4] = 7;
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("too_short", vec![0, 9]),
            ("bad_size", short),
            ("truncated", count),
            ("unknown_version", {
                let mut m = good.clone();
                m[5] = 3;
                m
            }),
        ];
        for (_, d) in &cases {
            s.send_to(d, "224.0.0.81:8848").unwrap();
        }
        // an oversized datagram (beyond the backup's maxlen of 1472)
        s.send_to(&vec![0u8; 4000], "224.0.0.81:8848").unwrap();
        s.send_to(&good, "224.0.0.81:8848").unwrap();
        assert!(wait_until(Duration::from_secs(5), || got
            .lock()
            .unwrap()
            .len()
            == 2));
        for (reason, _) in &cases {
            assert_eq!(
                fact(&backups, &format!("sync.backup.dropped.{reason}")),
                1,
                "{reason}"
            );
        }
        assert_eq!(fact(&backups, "sync.backup.dropped.too_long"), 1);
        // nothing of the dropped ones came through
        assert_eq!(got.lock().unwrap().len(), 2);
    });
}

#[test]
fn an_installers_refusals_are_counted_by_reason() {
    let Some((_lab, ns)) = lab() else { return };
    in_ns(&ns, || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _g = rt.enter();
        let params = SyncParams::default();
        let inst: Installer = Arc::new(|es: Vec<SyncEntry>| {
            es.iter()
                .map(|e| {
                    if e.vport == 80 {
                        Err(SyncSkip::NoService)
                    } else {
                        Ok(SyncInstall::Updated)
                    }
                })
                .collect()
        });
        let mut ds = SyncDaemons::new();
        ds.start(&daemon(false, "sb", 0), &params, inst.clone())
            .unwrap();
        ds.start(&daemon(true, "sa", 0), &params, inst).unwrap();
        let mut other = entry(7);
        other.vport = 443;
        ds.master().unwrap().offer(&[entry(1), other]);
        // master on sa, backup on sb of the same namespace: the veth carries it across
        assert!(wait_until(Duration::from_secs(5), || fact(
            &ds,
            "sync.backup.skipped.no_service"
        ) == 1));
        assert!(wait_until(Duration::from_secs(1), || fact(
            &ds,
            "sync.backup.installed.updated"
        ) == 1));
    });
}

#[test]
fn an_unknown_interface_is_enodev_and_a_second_master_eexist() {
    let Some((_lab, ns)) = lab() else { return };
    in_ns(&ns, || {
        let rt = tokio::runtime::Runtime::new().unwrap();
        let _g = rt.enter();
        let (inst, _) = recorder();
        let mut ds = SyncDaemons::new();
        let e = ds
            .start(
                &daemon(true, "nosuch0", 0),
                &SyncParams::default(),
                inst.clone(),
            )
            .unwrap_err();
        assert_eq!(e.errno, Errno::NoDevice);
        assert!(ds.master().is_none());
        ds.start(&daemon(true, "sa", 0), &SyncParams::default(), inst.clone())
            .unwrap();
        let e = ds
            .start(&daemon(true, "sb", 0), &SyncParams::default(), inst.clone())
            .unwrap_err();
        assert_eq!(e.errno, Errno::Exists);
        // a backup may run beside the master; its maxlen follows the MTU (1500 -> 1472)
        let b = ds
            .start(&daemon(false, "sb", 0), &SyncParams::default(), inst)
            .unwrap();
        assert_eq!(b.sync_maxlen, 1472);
        assert!(ds.stop(true));
        assert!(!ds.stop(true));
    });
}
