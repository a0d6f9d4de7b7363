//! Packet fixtures (BPF_PROG_TEST_RUN) for sources no client can have and for VLAN-tagged
//! frames (issue 10). Before `RVS_R_MARTIAN`, a SYN from 127.0.0.1, 0.0.0.0, a multicast
//! or broadcast address, ::1, ff02::1 or the VIP itself was scheduled and forwarded to a
//! real server; VLAN-tagged frames were counted as "not IP".

mod common;

use common::packet::*;
use common::*;
use rvs_core::Forward;
use rvs_xdp::abi::*;
use rvs_xdp::Build;

fn syn(src: &str, dst: &str) -> Vec<u8> {
    let l4 = L4::Tcp {
        sport: 40000,
        dport: 80,
        flags: SYN,
        payload: vec![],
    };
    frame(D0_MAC, GW_MAC, &ip_packet(ip(src), ip(dst), &l4))
}

fn datagram(src: &str, dst: &str) -> Vec<u8> {
    let l4 = L4::Udp {
        sport: 5353,
        dport: 53,
        payload: b"query".to_vec(),
        csum: true,
    };
    frame(D0_MAC, GW_MAC, &ip_packet(ip(src), ip(dst), &l4))
}

/// A fixture: name, input frame, verdict, output frame, the one code it counts.
type Case = (String, Vec<u8>, u32, Vec<u8>, i32);

/// Runs each case and checks that exactly its code's counter moved by one; collects every
/// failure.
fn check(rig: &Rig, cases: Vec<Case>) {
    let mut failures = Vec::new();
    for (name, input, verdict, want, code) in cases {
        let before = reason_map(&rig.reasons());
        let (v, out) = rig.run(&input);
        let after = reason_map(&rig.reasons());
        if v != verdict {
            failures.push(format!("{name}: verdict {v}, expected {verdict}"));
        }
        if out != want {
            failures.push(format!("{name}: output frame differs"));
        }
        for (c, n) in &after {
            let delta = n - before.get(c).copied().unwrap_or(0);
            let expect = u64::from(*c == code);
            if delta != expect {
                failures.push(format!(
                    "{name}: counter {} moved by {delta}, expected {expect}",
                    rvs_xdp::stats::reason_name(*c)
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn new_flows_from_impossible_sources_are_dropped_as_martians() {
    if !root_or_skip("martian fixtures") {
        return;
    }
    let mut rig = Rig::new("martian", Build::Production);
    let t = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&t, "10.0.0.11", 80, Forward::Route, 1);
    let other = rig.service(tcp("10.0.0.101", 80), "rr");
    rig.dest(&other, "10.0.0.11", 80, Forward::Route, 1);
    let u = rig.service(udp("10.0.0.100", 53), "rr");
    rig.dest(&u, "10.0.0.12", 53, Forward::Route, 1);
    let t6 = rig.service(tcp("fd00::100", 80), "rr");
    rig.dest(&t6, "fd00::11", 80, Forward::Route, 1);

    let mut cases = Vec::new();
    let drop = |name: &str, f: Vec<u8>| (name.to_string(), f.clone(), XDP_DROP, f, RVS_R_MARTIAN);
    for src in [
        "0.0.0.0",
        "0.1.2.3",
        "127.0.0.1",
        "127.255.255.254",
        "224.0.0.1",
        "239.255.255.250",
        "240.0.0.1",
        "255.255.255.255",
        "10.0.0.100", // the VIP itself: a land attack
        "10.0.0.101", // another VIP of the director
    ] {
        cases.push(drop(&format!("syn from {src}"), syn(src, "10.0.0.100")));
    }
    cases.push(drop(
        "udp from loopback",
        datagram("127.0.0.1", "10.0.0.100"),
    ));
    for src in [
        "::",
        "::1",
        "ff02::1",
        "ff05::1:3",
        "::ffff:10.9.0.1",
        "fd00::100",
    ] {
        cases.push(drop(&format!("syn from {src}"), syn(src, "fd00::100")));
    }
    // Ordinary sources next to the edges still open flows.
    let fwd = |name: &str, f: Vec<u8>, mac: u8| {
        let out = remac(&f, rs_mac(mac), D0_MAC);
        (name.to_string(), f, XDP_TX, out, RVS_R_FORWARDED)
    };
    cases.push(fwd("syn from 1.0.0.1", syn("1.0.0.1", "10.0.0.100"), 0x11));
    cases.push(fwd(
        "syn from 126.255.255.255",
        syn("126.255.255.255", "10.0.0.100"),
        0x11,
    ));
    cases.push(fwd(
        "syn from 223.255.255.254",
        syn("223.255.255.254", "10.0.0.100"),
        0x11,
    ));
    cases.push(fwd(
        "syn from 10.0.0.102",
        syn("10.0.0.102", "10.0.0.100"),
        0x11,
    ));
    cases.push(fwd("syn from ::2", syn("::2", "fd00::100"), 0x11));
    cases.push(fwd("syn from fe80::1", syn("fe80::1", "fd00::100"), 0x11));
    cases.push(fwd(
        "syn from 2001:db8::1",
        syn("2001:db8::1", "fd00::100"),
        0x11,
    ));
    // Not to a VIP: the stack's business, as before.
    let f = syn("127.0.0.1", "10.0.0.200");
    cases.push((
        "martian to a non-vip".into(),
        f.clone(),
        XDP_PASS,
        f,
        RVS_R_NOT_VIP,
    ));
    check(&rig, cases);
    assert_eq!(
        rig.conn_count(),
        7,
        "only the ordinary sources made entries"
    );
}

#[test]
fn vlan_tagged_frames_pass_to_the_stack_with_their_own_reason() {
    if !root_or_skip("vlan fixtures") {
        return;
    }
    let mut rig = Rig::new("vlan", Build::Production);
    let t = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&t, "10.0.0.11", 80, Forward::Route, 1);
    let inner = ip_packet(
        ip("10.9.0.1"),
        ip("10.0.0.100"),
        &L4::Tcp {
            sport: 40000,
            dport: 80,
            flags: SYN,
            payload: vec![],
        },
    );
    let mut q = eth(D0_MAC, GW_MAC, 0x8100);
    q.extend_from_slice(&[0, 10, 0x08, 0x00]);
    q.extend_from_slice(&inner);
    // 802.1ad outer tag, 802.1Q inner tag (QinQ).
    let mut qinq = eth(D0_MAC, GW_MAC, 0x88a8);
    qinq.extend_from_slice(&[0, 20, 0x81, 0x00, 0, 10, 0x08, 0x00]);
    qinq.extend_from_slice(&inner);
    check(
        &rig,
        vec![
            ("802.1Q".into(), q.clone(), XDP_PASS, q, RVS_R_VLAN),
            ("802.1ad".into(), qinq.clone(), XDP_PASS, qinq, RVS_R_VLAN),
        ],
    );
    assert_eq!(rig.conn_count(), 0);
}
