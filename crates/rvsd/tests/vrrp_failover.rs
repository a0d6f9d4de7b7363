//! Two rvsd directors with VRRP on one L2 segment (network namespaces), a client sending
//! HTTP to the VIP all along, a real server behind the proxy data plane:
//!
//! * kill -9 of the master: the backup owns the VIP within Master_Down_Interval (+ a
//!   margin) and the client gets answers again (RFC 5798 §6.4.2 Master_Down_Timer);
//! * the master comes back with its higher priority and takes the VIP back (seed 003
//!   "主LVS启动，自动上位"; RFC 5798 §6.4.2 preemption);
//! * SIGTERM of the master: priority 0 makes the backup take over after Skew_Time
//!   (RFC 5798 §6.4.3 Shutdown, §6.4.2 "Priority 0");
//! * bad packets injected on the segment change no state and are counted;
//! * SIGHUP reloads instances.
//!
//! The client-visible gaps are printed (`cargo test -p rvsd --test vrrp_failover --
//! --nocapture`).

mod vrrp_lab;

use rvs_vrrp::ipv4;
use rvs_vrrp::net::sock::VrrpSocket;
use rvs_vrrp::packet::{pass_data, Advert, Family, Version, AUTH_PASS, MCAST_V4};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};
use vrrp_lab::*;

/// d2 (priority 100, 1 s) Master_Down_Interval: 3 s + 156/256 s.
const D2_MASTER_DOWN: Duration = Duration::from_micros(3_609_375);
/// d1 (priority 150) Master_Down_Interval: 3 s + 106/256 s.
const D1_MASTER_DOWN: Duration = Duration::from_micros(3_414_062);
/// d2's Skew_Time.
const D2_SKEW: Duration = Duration::from_micros(609_375);
/// Scheduling, netlink and polling slack allowed on top of protocol times.
const MARGIN: Duration = Duration::from_millis(1200);

fn wait_master(lab: &VrrpLab, d: &Rvsd, node: &str, within: Duration) -> Duration {
    wait_until(within, &format!("{node} MASTER with the VIP"), || {
        d.state("VI_1").as_deref() == Some("MASTER") && lab.has_vip(node)
    })
}

/// d1 (150) master, d2 (100) backup, the client answered.
fn steady(lab: &VrrpLab) -> (Rvsd, Rvsd) {
    let d1 = lab.rvsd("d1", &conf("MASTER", 150, 2, "1", true));
    let d2 = lab.rvsd("d2", &conf("BACKUP", 100, 2, "1", true));
    wait_master(lab, &d1, "d1", D1_MASTER_DOWN + Duration::from_secs(3));
    wait_until(Duration::from_secs(3), "d2 BACKUP", || {
        d2.state("VI_1").as_deref() == Some("BACKUP")
            && d2
                .fact("vrrp.VI_1.master")
                .is_some_and(|m| m.starts_with(addr("d1")))
    });
    assert!(!lab.has_vip("d2"));
    (d1, d2)
}

#[test]
fn rfc5798_6_4_2_kill_9_master_backup_takes_over_and_master_comes_back() {
    if !prerequisites("VRRP failover lab", &[]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    let (mut d1, d2) = steady(&lab);
    let client = lab.client();
    client.wait_successes(5, Duration::from_secs(5));

    // (a) kill -9: no priority 0; the backup waits out Master_Down_Interval, counted
    // from the last advert it heard.
    let killed = Instant::now();
    d1.kill9();
    wait_master(&lab, &d2, "d2", D2_MASTER_DOWN + MARGIN);
    let took = killed.elapsed();
    client.wait_successes(5, Duration::from_secs(5));
    let gap = client.gap_after(killed);
    eprintln!(
        "kill -9 of the master: d2 owned the VIP after {took:?}; client-visible gap {gap:?} \
         (Master_Down_Interval {D2_MASTER_DOWN:?})"
    );
    assert!(took <= D2_MASTER_DOWN + MARGIN);
    assert!(
        gap <= D2_MASTER_DOWN + Duration::from_secs(2),
        "gap {gap:?}"
    );
    assert_eq!(d2.counter("vrrp.VI_1.priority_zero_rx"), 0);

    // (b) seed 003: the master starts again and, with its higher priority, takes the
    // VIP back after its own Master_Down_Interval (d2's lower-priority adverts are
    // discarded).
    let restarted = Instant::now();
    let d1 = lab.rvsd("d1", &conf("MASTER", 150, 2, "1", true));
    wait_master(&lab, &d1, "d1", D1_MASTER_DOWN + Duration::from_secs(2));
    let back = restarted.elapsed();
    wait_until(
        Duration::from_secs(2),
        "d2 back to BACKUP without the VIP",
        || d2.state("VI_1").as_deref() == Some("BACKUP") && !lab.has_vip("d2"),
    );
    client.wait_successes(5, Duration::from_secs(5));
    let gap = client.gap_after(restarted);
    eprintln!("master restarted: took the VIP back after {back:?}; client-visible gap {gap:?}");
    assert!(
        back >= D1_MASTER_DOWN - Duration::from_millis(200),
        "preempted too early: {back:?}"
    );
    assert_eq!(d2.counter("vrrp.VI_1.released_master"), 1);
    assert_eq!(d1.counter("vrrp.VI_1.drops"), 0);
    client.stop();
}

#[test]
fn rfc5798_6_4_3_sigterm_sends_priority_zero_and_backup_takes_over_after_skew_time() {
    if !prerequisites("VRRP failover lab", &[]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    let (mut d1, d2) = steady(&lab);
    let client = lab.client();
    client.wait_successes(5, Duration::from_secs(5));
    // Let an advert go by so the backup's timer is fresh: a takeover faster than
    // Master_Down_Interval can then only come from priority 0.
    let rx = d2.counter("vrrp.VI_1.adverts_rx");
    wait_until(Duration::from_secs(3), "an advert", || {
        d2.counter("vrrp.VI_1.adverts_rx") > rx
    });

    let stopped = Instant::now();
    d1.term();
    wait_master(&lab, &d2, "d2", Duration::from_secs(3));
    let took = stopped.elapsed();
    client.wait_successes(5, Duration::from_secs(5));
    let gap = client.gap_after(stopped);
    eprintln!(
        "SIGTERM of the master: d2 owned the VIP after {took:?}; client-visible gap {gap:?} \
         (Skew_Time {D2_SKEW:?}, Master_Down_Interval {D2_MASTER_DOWN:?})"
    );
    assert!(took <= D2_SKEW + MARGIN, "took {took:?}");
    assert!(took < D2_MASTER_DOWN / 2);
    assert_eq!(d2.counter("vrrp.VI_1.priority_zero_rx"), 1);
    assert!(!lab.has_vip("d1"), "a stopped master removes its VIP");
    client.stop();
}

/// A valid advert from `src` for VI_1, as d1/d2 are configured (v2, PASS 1111).
fn advert(priority: u8) -> Advert {
    Advert {
        version: Version::V2,
        vrid: 51,
        priority,
        interval: 1,
        addrs: vec![IpAddr::V4(VIP.parse().unwrap())],
        auth_type: AUTH_PASS,
        auth_data: pass_data(b"1111"),
    }
}

/// An IPv4 packet carrying `payload` from `src` to 224.0.0.18 with `ttl`.
fn packet(src: Ipv4Addr, ttl: u8, payload: &[u8]) -> Vec<u8> {
    let h = ipv4::Header {
        tos: ipv4::TOS_INTERNETWORK_CONTROL,
        id: 7,
        ttl,
        protocol: 112,
        src,
        dst: MCAST_V4,
    };
    ipv4::build(&h, payload)
}

/// Sends raw IPv4 packets out of the client's eth0.
fn inject(lab: &VrrpLab, packets: Vec<Vec<u8>>) {
    in_ns(&lab.ns_name("c"), move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let name = std::ffi::CString::new("eth0").unwrap();
            // SAFETY: if_nametoindex reads a NUL-terminated name.
            let idx = unsafe { libc::if_nametoindex(name.as_ptr()) };
            let s = VrrpSocket::open(Family::V4, "eth0", idx, None).unwrap();
            for p in packets {
                s.send_v4(&p, MCAST_V4).unwrap();
            }
        });
    });
}

#[test]
fn rfc5798_7_1_bad_adverts_on_the_wire_change_nothing_and_are_counted() {
    if !prerequisites("VRRP failover lab", &[]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    let (d1, d2) = steady(&lab);
    let fake: Ipv4Addr = "10.77.0.99".parse().unwrap();
    let src = IpAddr::V4(fake);
    let dst = IpAddr::V4(MCAST_V4);
    // Each would make d1 yield (priority 255) if it were accepted.
    let good = advert(255).encode(src, dst);
    let mut bad_sum = good.clone();
    bad_sum[6] ^= 0x5a;
    let mut bad_pass = advert(255);
    bad_pass.auth_data = pass_data(b"2222");
    let mut no_auth = advert(255);
    no_auth.auth_type = 0;
    no_auth.auth_data = [0; 8];
    let mut v3 = advert(255);
    v3.version = Version::V3;
    v3.interval = 100;
    let mut slow = advert(255);
    slow.interval = 2;
    let mut foreign = advert(255);
    foreign.vrid = 52;
    let mut other_vip = advert(255);
    other_vip.addrs = vec![IpAddr::V4("10.77.0.101".parse().unwrap())];
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("checksum", packet(fake, 255, &bad_sum)),
        ("ttl", packet(fake, 64, &good)),
        (
            "auth_failure",
            packet(fake, 255, &bad_pass.encode(src, dst)),
        ),
        ("auth_type", packet(fake, 255, &no_auth.encode(src, dst))),
        ("version", packet(fake, 255, &v3.encode(src, dst))),
        ("interval", packet(fake, 255, &slow.encode(src, dst))),
        ("addr_list", packet(fake, 255, &other_vip.encode(src, dst))),
        ("length", packet(fake, 255, &good[..good.len() - 4])),
        ("too_short", packet(fake, 255, &good[..5])),
    ];
    let before: Vec<u64> = cases
        .iter()
        .map(|(r, _)| d1.counter(&format!("vrrp.VI_1.drop.{r}")))
        .collect();
    let unknown = d1.counter("vrrp.drop.unknown_vrid");
    let rounds = 5;
    for _ in 0..rounds {
        let mut all: Vec<Vec<u8>> = cases.iter().map(|(_, p)| p.clone()).collect();
        all.push(packet(fake, 255, &foreign.encode(src, dst)));
        inject(&lab, all);
        std::thread::sleep(Duration::from_millis(300));
    }
    // Counted on both directors, by reason…
    for (node, d) in [("d1", &d1), ("d2", &d2)] {
        wait_until(
            Duration::from_secs(3),
            &format!("{node} drop counters"),
            || {
                cases
                    .iter()
                    .all(|(r, _)| d.counter(&format!("vrrp.VI_1.drop.{r}")) >= rounds)
                    && d.counter("vrrp.drop.unknown_vrid") >= rounds
            },
        );
    }
    for ((r, _), b) in cases.iter().zip(&before) {
        assert_eq!(
            d1.counter(&format!("vrrp.VI_1.drop.{r}")) - b,
            rounds,
            "{r}"
        );
    }
    assert_eq!(d1.counter("vrrp.drop.unknown_vrid") - unknown, rounds);
    // …and nothing moved.
    assert_eq!(d1.state("VI_1").as_deref(), Some("MASTER"));
    assert_eq!(d2.state("VI_1").as_deref(), Some("BACKUP"));
    assert!(lab.has_vip("d1") && !lab.has_vip("d2"));
    assert_eq!(d1.counter("vrrp.VI_1.released_master"), 0);

    // The same path with a valid priority-255 advert does make the master yield: the
    // drops above were the checks at work, not a deaf socket.
    inject(&lab, vec![packet(fake, 255, &good)]);
    wait_until(
        Duration::from_secs(2),
        "d1 yields to a valid advert",
        || d1.state("VI_1").as_deref() == Some("BACKUP") && !lab.has_vip("d1"),
    );
    assert_eq!(
        d1.fact("vrrp.VI_1.master").as_deref(),
        Some("10.77.0.99 (priority 255)")
    );
}

#[test]
fn sighup_reload_updates_priority_and_removes_instances() {
    if !prerequisites("VRRP failover lab", &[]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    let (d1, d2) = steady(&lab);
    // d2 now outranks d1: it keeps its state (BACKUP) and preempts as the RFC says.
    std::fs::write(lab.path("d2.conf"), conf("BACKUP", 200, 2, "1", true)).unwrap();
    d2.hup();
    wait_until(Duration::from_secs(2), "d2 priority 200", || {
        d2.fact("vrrp.VI_1.priority").as_deref() == Some("200")
    });
    wait_master(&lab, &d2, "d2", D2_MASTER_DOWN + MARGIN);
    wait_until(Duration::from_secs(2), "d1 BACKUP", || {
        d1.state("VI_1").as_deref() == Some("BACKUP") && !lab.has_vip("d1")
    });
    // Removing the instance from d2's configuration stops it like a shutdown: priority 0,
    // so d1 takes over after its Skew_Time.
    let services_only = conf("BACKUP", 200, 2, "1", true);
    let services_only = services_only[services_only.find("virtual_server").unwrap()..].to_string();
    std::fs::write(lab.path("d2.conf"), services_only).unwrap();
    let reloaded = Instant::now();
    d2.hup();
    wait_master(&lab, &d1, "d1", Duration::from_secs(3));
    let took = reloaded.elapsed();
    eprintln!("instance deleted by reload: d1 took over after {took:?}");
    assert!(took < D1_MASTER_DOWN, "took {took:?}");
    assert!(d2.state("VI_1").is_none());
    assert!(!lab.has_vip("d2"));
    assert!(reloaded.elapsed() < Duration::from_secs(3));
}

#[test]
fn keepalived_track_script_fault_and_notify_scripts_with_keepalived_arguments() {
    if !prerequisites("VRRP failover lab", &[]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    let ok = lab.path("ok");
    std::fs::write(&ok, "").unwrap();
    let notify_log = lab.path("notify.txt");
    let notify = lab.path("notify.sh");
    std::fs::write(
        &notify,
        format!("#!/bin/sh\necho \"$@\" >> {}\n", notify_log.display()),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&notify, std::fs::Permissions::from_mode(0o755)).unwrap();
    let tracked = conf("MASTER", 150, 2, "1", true).replace(
        "vrrp_instance VI_1 {\n",
        &format!(
            "vrrp_script chk {{\n    script \"/usr/bin/test -e {}\"\n    interval 0.2\n}}\n\
             vrrp_instance VI_1 {{\n    track_script {{\n        chk\n    }}\n\
             \x20   notify {}\n",
            ok.display(),
            notify.display()
        ),
    );
    let mut d1 = lab.rvsd("d1", &tracked);
    let d2 = lab.rvsd("d2", &conf("BACKUP", 100, 2, "1", true));
    wait_master(&lab, &d1, "d1", D1_MASTER_DOWN + Duration::from_secs(3));
    let log = || std::fs::read_to_string(&notify_log).unwrap_or_default();
    wait_until(Duration::from_secs(2), "notify MASTER", || {
        log().contains("INSTANCE VI_1 MASTER 150")
    });
    assert!(log().starts_with("INSTANCE VI_1 BACKUP 150\n"), "{}", log());

    // The tracked script fails: FAULT, priority 0, the backup takes over at once.
    let failed = Instant::now();
    std::fs::remove_file(&ok).unwrap();
    wait_master(&lab, &d2, "d2", Duration::from_secs(2));
    eprintln!(
        "track_script failure: d2 master after {:?}",
        failed.elapsed()
    );
    assert_eq!(d1.state("VI_1").as_deref(), Some("FAULT"));
    assert!(!lab.has_vip("d1"));
    assert_eq!(d2.counter("vrrp.VI_1.priority_zero_rx"), 1);
    wait_until(Duration::from_secs(2), "notify FAULT", || {
        log().contains("INSTANCE VI_1 FAULT 150")
    });
    // It succeeds again: BACKUP, then d1 preempts with its higher priority.
    std::fs::write(&ok, "").unwrap();
    wait_master(&lab, &d1, "d1", D1_MASTER_DOWN + Duration::from_secs(2));
    // SIGTERM: notify STOP.
    d1.term();
    wait_until(Duration::from_secs(2), "notify STOP", || {
        log().contains("INSTANCE VI_1 STOP 150")
    });
    let lines: Vec<String> = log().lines().map(str::to_string).collect();
    assert_eq!(
        lines,
        [
            "INSTANCE VI_1 BACKUP 150",
            "INSTANCE VI_1 MASTER 150",
            "INSTANCE VI_1 FAULT 150",
            "INSTANCE VI_1 BACKUP 150",
            "INSTANCE VI_1 MASTER 150",
            "INSTANCE VI_1 STOP 150",
        ]
    );
}

/// Sends `sig` to rvsd and reads the dump file it writes.
fn dump(lab: &VrrpLab, d: &Rvsd, node: &str, sig: i32, file: &str) -> String {
    let path = lab.dump_dir(node).join(file);
    let _ = std::fs::remove_file(&path);
    // SAFETY: signalling the rvsd this test started.
    unsafe { libc::kill(d.pid().unwrap() as i32, sig) };
    wait_until(Duration::from_secs(5), file, || path.exists());
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn keepalived_dumps_show_the_state_of_master_and_backup() {
    if !prerequisites("VRRP dumps", &[]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    let (d1, d2) = steady(&lab);

    let data = dump(&lab, &d1, "d1", libc::SIGUSR1, "keepalived.data");
    for line in [
        " VRRP Instance = VI_1",
        "   State = MASTER",
        "   Interface = eth0",
    ] {
        assert!(data.lines().any(|l| l == line), "{line:?} not in:\n{data}");
    }
    let data = dump(&lab, &d2, "d2", libc::SIGUSR1, "keepalived.data");
    assert!(data.lines().any(|l| l == "   State = BACKUP"), "{data}");
    assert!(
        data.lines()
            .any(|l| l == format!("   Master router = {}", addr("d1"))),
        "{data}"
    );

    let stats = dump(&lab, &d1, "d1", libc::SIGUSR2, "keepalived.stats");
    let sent: u64 = stats
        .lines()
        .skip_while(|l| *l != "  Advertisements:")
        .find_map(|l| l.strip_prefix("    Sent: "))
        .unwrap_or_else(|| panic!("{stats}"))
        .parse()
        .unwrap();
    assert!(sent > 0, "{stats}");
    assert!(stats.contains("  Became master: 1"), "{stats}");

    let json = dump(&lab, &d2, "d2", libc::SIGRTMIN() + 2, "keepalived.json");
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    assert_eq!(v[0]["data"]["iname"], "VI_1");
    assert_eq!(v[0]["data"]["state"], 1, "{v}");
    assert!(v[0]["stats"]["advert_rcvd"].as_u64().unwrap() > 0, "{v}");
}
