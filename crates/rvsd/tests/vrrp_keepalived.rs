//! rvsd and keepalived 2.x as VRRP peers on one segment (network namespaces), in both
//! roles, VRRPv2 with `auth_type PASS` as in the seeds and VRRPv3 with a learned
//! interval: each accepts the other's adverts (drop counters stay at zero), priority 0
//! is understood both ways, and preemption works both ways.
//!
//! keepalived runs VRRP only (`--vrrp`), in the foreground, with its own pid files; there
//! is no IPVS here, so the keepalived director answers HTTP itself (`ka`) while it holds
//! the VIP, and the rvsd one through its proxy and the real server (`rs1`).

mod vrrp_lab;

use std::time::{Duration, Instant};
use vrrp_lab::*;

const MARGIN: Duration = Duration::from_millis(1200);
/// Priority 100 at 1 s: Skew_Time and Master_Down_Interval.
const SKEW_100: Duration = Duration::from_micros(609_375);
const DOWN_100: Duration = Duration::from_micros(3_609_375);
/// Priority 150 at 1 s.
const DOWN_150: Duration = Duration::from_micros(3_414_062);

fn ka_master(lab: &VrrpLab, node: &str, within: Duration) -> Duration {
    wait_until(
        within,
        &format!("keepalived in {node} holding the VIP"),
        || lab.has_vip(node),
    )
}

fn rvsd_master(lab: &VrrpLab, d: &Rvsd, node: &str, within: Duration) -> Duration {
    wait_until(
        within,
        &format!("rvsd in {node} MASTER with the VIP"),
        || d.state("VI_1").as_deref() == Some("MASTER") && lab.has_vip(node),
    )
}

#[test]
fn keepalived_v2_pass_as_backup_of_rvsd_preemption_both_ways() {
    if !prerequisites("VRRP keepalived interop", &["keepalived"]) {
        return;
    }
    let _serial = serial();
    let mut lab = VrrpLab::new();
    lab.serve_local("d2", "ka");
    let d1 = lab.rvsd("d1", &conf("MASTER", 150, 2, "1", true));
    let mut ka = lab.keepalived("d2", &conf("BACKUP", 100, 2, "1", false));
    rvsd_master(&lab, &d1, "d1", DOWN_150 + Duration::from_secs(3));
    let client = lab.client();
    client.wait_answers_from("rs1", 5, Duration::from_secs(5));
    // keepalived accepts rvsd's adverts: it stays backup well past its Master_Down.
    std::thread::sleep(DOWN_100 + Duration::from_millis(500));
    assert!(
        !lab.has_vip("d2"),
        "keepalived took the VIP: it rejects rvsd's adverts"
    );
    assert!(ka.log_text().contains("Entering BACKUP STATE"));
    assert_eq!(d1.state("VI_1").as_deref(), Some("MASTER"));

    // rvsd stops: keepalived takes over after Skew_Time on rvsd's priority 0.
    let mut d1 = d1;
    let stopped = Instant::now();
    d1.term();
    ka_master(&lab, "d2", SKEW_100 + MARGIN);
    let took = stopped.elapsed();
    client.wait_answers_from("ka", 3, Duration::from_secs(5));
    let gap = client.gap_after(stopped);
    eprintln!("rvsd SIGTERM, keepalived backup: VIP moved after {took:?}, client gap {gap:?}");
    assert!(ka
        .log_text()
        .contains("Backup received priority 0 advertisement"));
    assert!(took < DOWN_100 / 2, "not a priority-0 takeover: {took:?}");

    // rvsd comes back with the higher priority and preempts keepalived.
    let restarted = Instant::now();
    let d1 = lab.rvsd("d1", &conf("MASTER", 150, 2, "1", true));
    rvsd_master(&lab, &d1, "d1", DOWN_150 + Duration::from_secs(2));
    let back = restarted.elapsed();
    wait_until(
        Duration::from_secs(2),
        "keepalived releases the VIP",
        || !lab.has_vip("d2"),
    );
    client.wait_answers_from("rs1", 3, Duration::from_secs(5));
    let gap = client.gap_after(restarted);
    eprintln!("rvsd restarted: preempted keepalived after {back:?}, client gap {gap:?}");
    assert!(ka
        .log_text()
        .contains("received advert from 10.77.0.1 with higher priority 150"));
    // keepalived's adverts (heard while rvsd was a backup) passed every check.
    assert!(d1.counter("vrrp.VI_1.adverts_rx") >= 1);
    assert_eq!(d1.counter("vrrp.VI_1.drops"), 0, "{:?}", d1.facts());
    client.stop();
    ka.term();
}

#[test]
fn keepalived_v2_pass_as_master_of_rvsd_preemption_both_ways() {
    if !prerequisites("VRRP keepalived interop", &["keepalived"]) {
        return;
    }
    let _serial = serial();
    let mut lab = VrrpLab::new();
    lab.serve_local("d1", "ka");
    let mut ka = lab.keepalived("d1", &conf("MASTER", 150, 2, "1", false));
    let d2 = lab.rvsd("d2", &conf("BACKUP", 100, 2, "1", true));
    ka_master(&lab, "d1", DOWN_150 + Duration::from_secs(3));
    wait_until(Duration::from_secs(3), "rvsd hears keepalived", || {
        d2.fact("vrrp.VI_1.master").as_deref() == Some("10.77.0.1 (priority 150)")
    });
    let client = lab.client();
    client.wait_answers_from("ka", 5, Duration::from_secs(5));
    std::thread::sleep(DOWN_100 + Duration::from_millis(500));
    assert_eq!(d2.state("VI_1").as_deref(), Some("BACKUP"));
    assert!(!lab.has_vip("d2"));
    assert_eq!(d2.counter("vrrp.VI_1.drops"), 0, "{:?}", d2.facts());

    // keepalived stops: its priority 0 makes rvsd take over after Skew_Time.
    let stopped = Instant::now();
    ka.signal_term();
    rvsd_master(&lab, &d2, "d2", SKEW_100 + MARGIN);
    let took = stopped.elapsed();
    ka.term();
    client.wait_answers_from("rs1", 3, Duration::from_secs(5));
    let gap = client.gap_after(stopped);
    eprintln!("keepalived SIGTERM, rvsd backup: rvsd master after {took:?}, client gap {gap:?}");
    assert_eq!(d2.counter("vrrp.VI_1.priority_zero_rx"), 1);
    assert!(took < DOWN_100 / 2, "not a priority-0 takeover: {took:?}");

    // keepalived comes back with the higher priority: it preempts rvsd (it accepts
    // rvsd's adverts, discards them as lower priority, and times out).
    let mut ka = lab.keepalived("d1", &conf("MASTER", 150, 2, "1", false));
    let restarted = Instant::now();
    ka_master(&lab, "d1", DOWN_150 + Duration::from_secs(3));
    wait_until(Duration::from_secs(2), "rvsd yields", || {
        d2.state("VI_1").as_deref() == Some("BACKUP") && !lab.has_vip("d2")
    });
    client.wait_answers_from("ka", 3, Duration::from_secs(5));
    eprintln!(
        "keepalived restarted: preempted rvsd, client gap {:?}",
        client.gap_after(restarted)
    );
    assert_eq!(d2.counter("vrrp.VI_1.released_master"), 1);

    // keepalived killed outright: rvsd waits Master_Down_Interval.
    let killed = Instant::now();
    ka.kill9(&lab.lab, "d1");
    rvsd_master(&lab, &d2, "d2", DOWN_100 + MARGIN);
    let took = killed.elapsed();
    eprintln!("keepalived kill -9: rvsd master after {took:?}");
    assert_eq!(d2.counter("vrrp.VI_1.drops"), 0, "{:?}", d2.facts());
    client.stop();
}

#[test]
fn keepalived_v3_peer_rvsd_learns_master_adver_interval_and_both_preempt() {
    if !prerequisites("VRRP keepalived interop", &["keepalived"]) {
        return;
    }
    let _serial = serial();
    let mut lab = VrrpLab::new();
    lab.serve_local("d1", "ka");
    // keepalived advertises every 0.5 s; rvsd is configured with 1 s and learns 0.5 s
    // (RFC 5798 §6.4.2), so its Master_Down_Interval is 3 × 0.5 + (156 × 50 × 625 / 16) µs.
    let learned_down = Duration::from_micros(1_804_687);
    let mut ka = lab.keepalived("d1", &conf("MASTER", 150, 3, "0.5", false));
    let d2 = lab.rvsd("d2", &conf("BACKUP", 100, 3, "1", true));
    ka_master(&lab, "d1", Duration::from_secs(5));
    wait_until(Duration::from_secs(3), "rvsd hears keepalived v3", || {
        d2.fact("vrrp.VI_1.master").as_deref() == Some("10.77.0.1 (priority 150)")
    });
    assert_eq!(d2.counter("vrrp.VI_1.drops"), 0, "{:?}", d2.facts());

    let killed = Instant::now();
    ka.kill9(&lab.lab, "d1");
    rvsd_master(&lab, &d2, "d2", learned_down + MARGIN);
    let took = killed.elapsed();
    eprintln!(
        "v3: keepalived kill -9, rvsd master after {took:?} (learned Master_Down {learned_down:?})"
    );
    assert!(
        took < DOWN_100,
        "the learned 0.5 s interval was not used: {took:?}"
    );

    // keepalived v3 accepts rvsd's v3 adverts (pseudo-header checksum) and preempts.
    // (The killed keepalived left its VIP behind: wait for the new one's MASTER line.)
    let masters = ka.log_text().matches("Entering MASTER STATE").count();
    let mut ka = lab.keepalived("d1", &conf("MASTER", 150, 3, "0.5", false));
    wait_until(Duration::from_secs(8), "keepalived v3 MASTER again", || {
        ka.log_text().matches("Entering MASTER STATE").count() > masters
    });
    wait_until(
        Duration::from_secs(2),
        "rvsd yields to keepalived v3",
        || d2.state("VI_1").as_deref() == Some("BACKUP") && !lab.has_vip("d2"),
    );
    let log = ka.log_text();
    assert!(!log.contains("Invalid VRRPv3 checksum"), "{log}");
    // And the other way: a lower-priority keepalived v3 accepts rvsd as its master.
    ka.term();
    rvsd_master(&lab, &d2, "d2", SKEW_100 + MARGIN);
    let mut lower = lab.keepalived("d1", &conf("BACKUP", 50, 3, "0.5", false));
    std::thread::sleep(Duration::from_secs(3));
    assert!(!lab.has_vip("d1"), "keepalived v3 rejected rvsd's adverts");
    assert_eq!(d2.state("VI_1").as_deref(), Some("MASTER"));
    let log = lower.log_text();
    assert!(!log.contains("Invalid VRRPv3 checksum"), "{log}");
    lower.term();
}

#[test]
fn keepalived_v3_ipv6_peer_and_unsolicited_na_moves_the_clients_neighbour_entry() {
    if !prerequisites("VRRP keepalived interop", &["keepalived", "ping"]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    ipv6(&lab);
    let mut ka = lab.keepalived("d1", &conf6("MASTER", 150));
    let d2 = lab.rvsd("d2", &conf6("BACKUP", 100));
    wait_until(
        DOWN_150 + Duration::from_secs(3),
        "keepalived holding the IPv6 VIP",
        || lab.has_vip6("d1"),
    );
    wait_until(
        Duration::from_secs(3),
        "rvsd hears keepalived over IPv6",
        || {
            d2.fact("vrrp.VI_6.master")
                .is_some_and(|m| m.starts_with("fe80::"))
        },
    );
    // The client resolves the VIP to keepalived's MAC.
    lab.lab
        .exec("c", &["ping", "-6", "-c", "1", "-W", "2", VIP6])
        .unwrap();
    assert_eq!(lab.client_neighbour(VIP6), Some(lab.mac("d1")));

    // keepalived killed: rvsd takes over; its unsolicited NA (Override) rewrites the
    // client's entry without any traffic from the client (RFC 4861 §7.2.6).
    let killed = Instant::now();
    ka.kill9(&lab.lab, "d1");
    wait_until(DOWN_100 + MARGIN, "rvsd MASTER with the IPv6 VIP", || {
        d2.state("VI_6").as_deref() == Some("MASTER") && lab.has_vip6("d2")
    });
    let took = killed.elapsed();
    let d2_mac = lab.mac("d2");
    wait_until(
        Duration::from_secs(1),
        "the client's neighbour entry moved",
        || lab.client_neighbour(VIP6).as_deref() == Some(d2_mac.as_str()),
    );
    eprintln!(
        "IPv6 v3: keepalived kill -9, rvsd master after {took:?}, NA moved the neighbour entry"
    );
    assert!(d2.counter("vrrp.VI_6.garp_sent") >= 5);
    assert_eq!(d2.counter("vrrp.VI_6.drops"), 0, "{:?}", d2.facts());
    lab.lab
        .exec("c", &["ping", "-6", "-c", "1", "-W", "2", VIP6])
        .unwrap();

    // A lower-priority keepalived accepts rvsd's IPv6 adverts (the kernel verifies their
    // checksum for keepalived) and stays backup.
    let mut lower = lab.keepalived("d1", &conf6("BACKUP", 50));
    std::thread::sleep(DOWN_100 + Duration::from_millis(500));
    assert!(
        !lab.has_vip6("d1"),
        "keepalived rejected rvsd's IPv6 adverts"
    );
    assert_eq!(d2.state("VI_6").as_deref(), Some("MASTER"));
    lower.term();
}

#[test]
fn keepalived_v3_unicast_peers_checksum_over_the_unicast_destination() {
    if !prerequisites("VRRP keepalived interop", &["keepalived"]) {
        return;
    }
    let _serial = serial();
    let lab = VrrpLab::new();
    // keepalived_unicast: adverts go to the peer, not the group, and the VRRPv3 IPv4
    // pseudo-header covers that unicast destination (keepalived ≥ 1.3.6).
    let unicast = |state: &str, prio: u8, me: &str, peer: &str| {
        format!(
            "vrrp_instance VI_1 {{\n state {state}\n interface eth0\n virtual_router_id 51\n\
             \x20priority {prio}\n advert_int 1\n version 3\n unicast_src_ip {me}\n\
             \x20unicast_peer {{\n  {peer}\n }}\n virtual_ipaddress {{\n  {VIP}\n }}\n}}\n"
        )
    };
    let mut ka = lab.keepalived("d1", &unicast("MASTER", 150, addr("d1"), addr("d2")));
    let d2 = lab.rvsd("d2", &unicast("BACKUP", 100, addr("d2"), addr("d1")));
    ka_master(&lab, "d1", DOWN_150 + Duration::from_secs(3));
    wait_until(
        Duration::from_secs(3),
        "rvsd hears keepalived's unicast adverts",
        || d2.fact("vrrp.VI_1.master").as_deref() == Some("10.77.0.1 (priority 150)"),
    );
    std::thread::sleep(DOWN_100 + Duration::from_millis(500));
    assert_eq!(d2.state("VI_1").as_deref(), Some("BACKUP"));
    assert_eq!(d2.counter("vrrp.VI_1.drops"), 0, "{:?}", d2.facts());

    let stopped = Instant::now();
    ka.signal_term();
    rvsd_master(&lab, &d2, "d2", SKEW_100 + MARGIN);
    eprintln!(
        "unicast v3: keepalived SIGTERM, rvsd master after {:?}",
        stopped.elapsed()
    );
    ka.term();
    // keepalived back as a lower-priority backup: it accepts rvsd's unicast adverts.
    let mut lower = lab.keepalived("d1", &unicast("BACKUP", 50, addr("d1"), addr("d2")));
    std::thread::sleep(DOWN_100 + Duration::from_millis(500));
    assert!(
        !lab.has_vip("d1"),
        "keepalived rejected rvsd's unicast adverts"
    );
    let log = lower.log_text();
    assert!(!log.contains("Invalid VRRPv3 checksum"), "{log}");
    lower.term();
}
