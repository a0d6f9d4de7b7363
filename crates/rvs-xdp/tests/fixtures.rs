//! Packet fixtures through BPF_PROG_TEST_RUN, Katran style: each fixture is {name, input
//! frame, expected verdict, expected output frame (compared whole), expected outcome
//! counters}. The director is the production object; the network around it (addresses,
//! MACs, neighbours, routes) is a namespace of its own (tests/common). Expected frames are
//! built from scratch with full checksums, so the incremental checksum updates in BPF are
//! checked against an independent computation.

mod common;

use common::packet::*;
use common::*;
use rvs_core::{DestConfig, Forward, ServiceConfig, TunnelConfig, TunnelType};
use rvs_xdp::abi::*;
use rvs_xdp::Build;
use std::collections::HashMap;

/// What the output frame must be.
enum Out {
    /// The input, untouched (PASS/DROP).
    Same,
    Frame(Vec<u8>),
}

struct Fx {
    name: &'static str,
    input: Vec<u8>,
    /// Ingress interface: 0 = d0 (clients, servers on a stick), 1 = d1 (servers).
    on: u8,
    verdict: u32,
    out: Out,
    /// Outcome codes and how many packets each must gain; every other code must stay.
    counters: Vec<(i32, u64)>,
}

fn fx(name: &'static str, input: Vec<u8>, verdict: u32, out: Out, counters: &[(i32, u64)]) -> Fx {
    Fx {
        name,
        input,
        on: 0,
        verdict,
        out,
        counters: counters.to_vec(),
    }
}

fn on1(mut f: Fx) -> Fx {
    f.on = 1;
    f
}

/// Runs fixtures in order on one rig; collects every failure before panicking.
fn run_all(rig: &Rig, fixtures: Vec<Fx>) {
    let mut failures = Vec::new();
    eprintln!("fixtures: {}", fixtures.len());
    for f in fixtures {
        let before = reason_map(&rig.reasons());
        let ifindex = if f.on == 0 { rig.if0 } else { rig.if1 };
        let (verdict, out) = rig.run_on(&f.input, ifindex);
        let after = reason_map(&rig.reasons());
        if verdict != f.verdict {
            failures.push(format!(
                "{}: verdict {verdict}, expected {}",
                f.name, f.verdict
            ));
        }
        let want = match &f.out {
            Out::Same => &f.input,
            Out::Frame(b) => b,
        };
        if &out != want {
            failures.push(format!(
                "{}: output frame differs\n  got  {}\n  want {}",
                f.name,
                hex(&out),
                hex(want)
            ));
        }
        let want_c: HashMap<i32, u64> = f.counters.iter().copied().collect();
        for (code, now) in &after {
            let delta = now - before.get(code).copied().unwrap_or(0);
            let expect = want_c.get(code).copied().unwrap_or(0);
            if delta != expect {
                failures.push(format!(
                    "{}: counter {} went up by {delta}, expected {expect}",
                    f.name,
                    rvs_xdp::stats::reason_name(*code)
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} fixture failure(s):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn tcp_seg(sport: u16, dport: u16, flags: u8) -> L4 {
    L4::Tcp {
        sport,
        dport,
        flags,
        payload: vec![],
    }
}

fn udp_seg(sport: u16, dport: u16, payload: &[u8]) -> L4 {
    L4::Udp {
        sport,
        dport,
        payload: payload.to_vec(),
        csum: true,
    }
}

/// A frame from the clients' gateway to the director.
fn client_frame(src: &str, dst: &str, l4: &L4) -> Vec<u8> {
    frame(D0_MAC, GW_MAC, &ip_packet(ip(src), ip(dst), l4))
}

const FWD: i32 = RVS_R_FORWARDED;

fn rig(name: &str) -> Option<Rig> {
    root_or_skip(name).then(|| Rig::new(name, Build::Production))
}

#[test]
fn dr_ipv4_tcp_and_udp_keep_the_packet_and_change_the_macs() {
    let Some(mut rig) = rig("dr4") else { return };
    let t = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&t, "10.0.0.11", 80, Forward::Route, 1);
    let u = rig.service(udp("10.0.0.100", 53), "rr");
    rig.dest(&u, "10.0.0.12", 53, Forward::Route, 1);

    let syn = client_frame("10.9.0.1", "10.0.0.100", &tcp_seg(40000, 80, SYN));
    let ack = client_frame("10.9.0.1", "10.0.0.100", &tcp_seg(40000, 80, ACK));
    let fin = client_frame("10.9.0.1", "10.0.0.100", &tcp_seg(40000, 80, FIN | ACK));
    let dgram = client_frame("10.9.0.2", "10.0.0.100", &udp_seg(5353, 53, b"query"));
    // NOP NOP NOP EOL: carried through untouched
    let opts = V4Opts {
        options: vec![1, 1, 1, 0],
        ..Default::default()
    };
    let with_options = frame(
        D0_MAC,
        GW_MAC,
        &ipv4(
            ip("10.9.0.3"),
            ip("10.0.0.100"),
            6,
            &tcp_seg(40001, 80, SYN).bytes(ip("10.9.0.3"), ip("10.0.0.100")),
            &opts,
        ),
    );
    run_all(
        &rig,
        vec![
            fx(
                "syn opens a flow",
                syn.clone(),
                XDP_TX,
                Out::Frame(remac(&syn, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "ack of the flow",
                ack.clone(),
                XDP_TX,
                Out::Frame(remac(&ack, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "fin of the flow",
                fin.clone(),
                XDP_TX,
                Out::Frame(remac(&fin, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "udp datagram",
                dgram.clone(),
                XDP_TX,
                Out::Frame(remac(&dgram, rs_mac(0x12), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "ip options are carried",
                with_options.clone(),
                XDP_TX,
                Out::Frame(remac(&with_options, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
        ],
    );
    // SYN_RECV -> ESTABLISHED -> FIN_WAIT (input-only table): inactive; plus the options flow
    assert_eq!(rig.counts(&t, "10.0.0.11", 80), (1, 1, 0, false));
    assert_eq!(rig.counts(&u, "10.0.0.12", 53), (0, 1, 0, false));
    let sid = rig.table.service_id(&t).unwrap();
    let id = rig.table.find_dest(sid, ip("10.0.0.11"), 80).unwrap();
    let slot = rig.plane.inner().state().dest_slot(id).unwrap();
    let s = rvs_xdp::stats::dest_stats(rig.plane.director(), slot).unwrap();
    assert_eq!((s.conns, s.inpkts), (2, 4));
    assert_eq!(
        s.inbytes,
        (40 * 3 + 44) as u64,
        "IP lengths, as IPVS counts them"
    );
}

#[test]
fn dr_ipv6_tcp_and_udp() {
    let Some(mut rig) = rig("dr6") else { return };
    let t = rig.service(tcp("fd00::100", 80), "wlc");
    rig.dest(&t, "fd00::11", 80, Forward::Route, 1);
    let u = rig.service(udp("fd00::100", 53), "wlc");
    rig.dest(&u, "fd00::12", 53, Forward::Route, 1);
    let syn = client_frame("2001:db8:9::1", "fd00::100", &tcp_seg(40000, 80, SYN));
    let ack = client_frame("2001:db8:9::1", "fd00::100", &tcp_seg(40000, 80, ACK));
    let dgram = client_frame("2001:db8:9::2", "fd00::100", &udp_seg(5353, 53, b"q"));
    // hop-by-hop options header (PadN) before TCP: skipped by the parser
    let seg = tcp_seg(40002, 80, SYN).bytes(ip("2001:db8:9::3"), ip("fd00::100"));
    let mut hbh = vec![6u8, 0, 1, 4, 0, 0, 0, 0];
    hbh.extend_from_slice(&seg);
    let ext = frame(
        D0_MAC,
        GW_MAC,
        &ipv6(ip("2001:db8:9::3"), ip("fd00::100"), 0, &hbh, 64, 0),
    );
    run_all(
        &rig,
        vec![
            fx(
                "v6 syn",
                syn.clone(),
                XDP_TX,
                Out::Frame(remac(&syn, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "v6 ack",
                ack.clone(),
                XDP_TX,
                Out::Frame(remac(&ack, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "v6 udp",
                dgram.clone(),
                XDP_TX,
                Out::Frame(remac(&dgram, rs_mac(0x12), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "v6 hop-by-hop header",
                ext.clone(),
                XDP_TX,
                Out::Frame(remac(&ext, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
        ],
    );
    assert_eq!(rig.counts(&t, "fd00::11", 80), (2, 0, 0, false));
}

/// NAT through two interfaces: clients on d0, the real server on d1 (port 80 -> 8080).
fn nat_rig(name: &str) -> Option<(Rig, rvs_core::ServiceKey, rvs_core::ServiceKey)> {
    let mut rig = rig(name)?;
    let t = rig.service(tcp("10.0.0.101", 80), "rr");
    rig.dest(&t, "10.1.0.21", 8080, Forward::Masq, 1);
    let u = rig.service(udp("10.0.0.101", 53), "rr");
    rig.dest(&u, "10.1.0.21", 5353, Forward::Masq, 1);
    Some((rig, t, u))
}

#[test]
fn nat_ipv4_rewrites_both_ways_with_port_mapping() {
    let Some((rig, t, _)) = nat_rig("nat4") else {
        return;
    };
    let c = ip("10.9.0.1");
    let (vip, rip) = (ip("10.0.0.101"), ip("10.1.0.21"));
    let syn = frame(D0_MAC, GW_MAC, &ip_packet(c, vip, &tcp_seg(40000, 80, SYN)));
    let syn_out = frame(
        rs1_mac(0x21),
        D1_MAC,
        &ip_packet(c, rip, &tcp_seg(40000, 8080, SYN)),
    );
    let synack = frame(
        D1_MAC,
        rs1_mac(0x21),
        &ip_packet(rip, c, &tcp_seg(8080, 40000, SYN | ACK)),
    );
    let synack_out = frame(
        GW_MAC,
        D0_MAC,
        &ip_packet(vip, c, &tcp_seg(80, 40000, SYN | ACK)),
    );
    let data = L4::Tcp {
        sport: 40000,
        dport: 80,
        flags: PSH | ACK,
        payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
    };
    let data_in = frame(D0_MAC, GW_MAC, &ip_packet(c, vip, &data));
    let data_out_l4 = L4::Tcp {
        sport: 40000,
        dport: 8080,
        flags: PSH | ACK,
        payload: b"GET / HTTP/1.0\r\n\r\n".to_vec(),
    };
    let data_out = frame(rs1_mac(0x21), D1_MAC, &ip_packet(c, rip, &data_out_l4));
    let udp_in = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(c, vip, &udp_seg(7000, 53, b"abc")),
    );
    let udp_out = frame(
        rs1_mac(0x21),
        D1_MAC,
        &ip_packet(c, rip, &udp_seg(7000, 5353, b"abc")),
    );
    let nocsum = L4::Udp {
        sport: 7001,
        dport: 53,
        payload: b"zero".to_vec(),
        csum: false,
    };
    let nocsum_in = frame(D0_MAC, GW_MAC, &ip_packet(c, vip, &nocsum));
    let nocsum_out_l4 = L4::Udp {
        sport: 7001,
        dport: 5353,
        payload: b"zero".to_vec(),
        csum: false,
    };
    let nocsum_out = frame(rs1_mac(0x21), D1_MAC, &ip_packet(c, rip, &nocsum_out_l4));
    let reply = frame(
        D1_MAC,
        rs1_mac(0x21),
        &ip_packet(rip, c, &udp_seg(5353, 7000, b"answer")),
    );
    let reply_out = frame(
        GW_MAC,
        D0_MAC,
        &ip_packet(vip, c, &udp_seg(53, 7000, b"answer")),
    );
    run_all(
        &rig,
        vec![
            fx(
                "nat syn to the server's port",
                syn,
                XDP_REDIRECT,
                Out::Frame(syn_out),
                &[(FWD, 1)],
            ),
            on1(fx(
                "nat syn-ack back as the vip",
                synack,
                XDP_REDIRECT,
                Out::Frame(synack_out),
                &[(RVS_R_NAT_REPLY, 1)],
            )),
            fx(
                "nat data with payload",
                data_in,
                XDP_REDIRECT,
                Out::Frame(data_out),
                &[(FWD, 1)],
            ),
            fx(
                "nat udp",
                udp_in,
                XDP_REDIRECT,
                Out::Frame(udp_out),
                &[(FWD, 1)],
            ),
            fx(
                "nat udp without checksum keeps none",
                nocsum_in,
                XDP_REDIRECT,
                Out::Frame(nocsum_out),
                &[(FWD, 1)],
            ),
            on1(fx(
                "nat udp reply",
                reply,
                XDP_REDIRECT,
                Out::Frame(reply_out),
                &[(RVS_R_NAT_REPLY, 1)],
            )),
        ],
    );
    // NAT sees both halves: SYN (SYN_RECV) then the server's SYN-ACK keeps it active
    assert_eq!(rig.counts(&t, "10.1.0.21", 8080).0, 1);
}

#[test]
fn nat_ipv6_and_nat_on_a_stick() {
    let Some(mut rig) = rig("nat6") else { return };
    let t = rig.service(tcp("fd00::101", 443), "wrr");
    rig.dest(&t, "fd01::21", 8443, Forward::Masq, 1);
    let s = rig.service(udp("10.0.0.105", 53), "rr");
    rig.dest(&s, "10.0.0.12", 53, Forward::Masq, 1);
    let c = ip("2001:db8:9::7");
    let (vip, rip) = (ip("fd00::101"), ip("fd01::21"));
    let syn = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(c, vip, &tcp_seg(33333, 443, SYN)),
    );
    let syn_out = frame(
        rs1_mac(0x21),
        D1_MAC,
        &ip_packet(c, rip, &tcp_seg(33333, 8443, SYN)),
    );
    let rep = frame(
        D1_MAC,
        rs1_mac(0x21),
        &ip_packet(rip, c, &tcp_seg(8443, 33333, SYN | ACK)),
    );
    let rep_out = frame(
        GW_MAC,
        D0_MAC,
        &ip_packet(vip, c, &tcp_seg(443, 33333, SYN | ACK)),
    );
    let u6 = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(c, vip, &udp_seg(1000, 443, b"x")),
    );
    // a UDP packet to a TCP-only port: no service
    let c4 = ip("10.9.0.9");
    let (vip4, rip4) = (ip("10.0.0.105"), ip("10.0.0.12"));
    let q = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(c4, vip4, &udp_seg(9999, 53, b"q")),
    );
    let q_out = frame(
        rs_mac(0x12),
        D0_MAC,
        &ip_packet(c4, rip4, &udp_seg(9999, 53, b"q")),
    );
    let a = frame(
        D0_MAC,
        rs_mac(0x12),
        &ip_packet(rip4, c4, &udp_seg(53, 9999, b"a")),
    );
    let a_out = frame(
        GW_MAC,
        D0_MAC,
        &ip_packet(vip4, c4, &udp_seg(53, 9999, b"a")),
    );
    run_all(
        &rig,
        vec![
            fx(
                "nat v6 syn",
                syn,
                XDP_REDIRECT,
                Out::Frame(syn_out),
                &[(FWD, 1)],
            ),
            on1(fx(
                "nat v6 reply",
                rep,
                XDP_REDIRECT,
                Out::Frame(rep_out),
                &[(RVS_R_NAT_REPLY, 1)],
            )),
            fx(
                "udp to a tcp service port",
                u6,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_NO_SERVICE, 1)],
            ),
            fx(
                "nat on a stick: in",
                q,
                XDP_TX,
                Out::Frame(q_out),
                &[(FWD, 1)],
            ),
            fx(
                "nat on a stick: reply",
                a,
                XDP_TX,
                Out::Frame(a_out),
                &[(RVS_R_NAT_REPLY, 1)],
            ),
        ],
    );
}

fn tun_dest(addr: &str, port: u16, kind: TunnelType, tport: u16) -> DestConfig {
    let mut d = DestConfig::new(ip(addr), port).with_forward(Forward::Tunnel);
    d.tunnel = TunnelConfig {
        kind,
        port: tport,
        ..Default::default()
    };
    d
}

#[test]
fn tun_encapsulates_ipip_ip6ip6_gue_gre_and_mixed_families() {
    let Some(mut rig) = rig("tun") else { return };
    let a = rig.service(tcp("10.0.0.102", 80), "rr");
    rig.dest_cfg(&a, tun_dest("10.0.0.13", 80, TunnelType::Ipip, 0));
    let b = rig.service(tcp("fd00::102", 80), "rr");
    rig.dest_cfg(&b, tun_dest("fd00::13", 80, TunnelType::Ipip, 0));
    let g = rig.service(udp("10.0.0.103", 53), "rr");
    rig.dest_cfg(&g, tun_dest("10.0.0.13", 53, TunnelType::Gue, 6080));
    let m = rig.service(tcp("10.0.0.104", 80), "rr");
    rig.dest_cfg(&m, tun_dest("fd00::13", 80, TunnelType::Ipip, 0));
    let r = rig.service(tcp("10.0.0.106", 80), "rr");
    rig.dest_cfg(&r, tun_dest("10.0.0.13", 80, TunnelType::Gre, 0));

    let dip4 = ip("10.0.0.254");
    let dip6 = ip("fd00::fe");
    let in4 = ip_packet(ip("10.9.0.1"), ip("10.0.0.102"), &tcp_seg(40000, 80, SYN));
    let out4 = frame(
        rs_mac(0x13),
        D0_MAC,
        &tunnel_v4(dip4, ip("10.0.0.13"), 4, &in4, true),
    );
    let in6 = ip_packet(
        ip("2001:db8:9::1"),
        ip("fd00::102"),
        &tcp_seg(40000, 80, SYN),
    );
    let out6 = frame(
        rs_mac(0x13),
        D0_MAC,
        &tunnel_v6(dip6, ip("fd00::13"), 41, &in6),
    );
    let ing = ip_packet(ip("10.9.0.2"), ip("10.0.0.103"), &udp_seg(5000, 53, b"gue"));
    let sport = gue_sport(ip("10.9.0.2"), 5000, 53);
    let outg = frame(
        rs_mac(0x13),
        D0_MAC,
        &tunnel_v4_around(
            dip4,
            ip("10.0.0.13"),
            17,
            &gue(sport, 6080, &ing),
            &ing,
            true,
        ),
    );
    let inm = ip_packet(ip("10.9.0.3"), ip("10.0.0.104"), &tcp_seg(40000, 80, SYN));
    let outm = frame(
        rs_mac(0x13),
        D0_MAC,
        &tunnel_v6(dip6, ip("fd00::13"), 4, &inm),
    );
    let inr = ip_packet(ip("10.9.0.4"), ip("10.0.0.106"), &tcp_seg(40000, 80, SYN));
    let mut gre = vec![0u8, 0, 0x08, 0x00];
    gre.extend_from_slice(&inr);
    let outr = frame(
        rs_mac(0x13),
        D0_MAC,
        &tunnel_v4_around(dip4, ip("10.0.0.13"), 47, &gre, &inr, true),
    );
    run_all(
        &rig,
        vec![
            fx(
                "ipip",
                frame(D0_MAC, GW_MAC, &in4),
                XDP_TX,
                Out::Frame(out4),
                &[(FWD, 1)],
            ),
            fx(
                "ip6ip6",
                frame(D0_MAC, GW_MAC, &in6),
                XDP_TX,
                Out::Frame(out6),
                &[(FWD, 1)],
            ),
            fx(
                "gue",
                frame(D0_MAC, GW_MAC, &ing),
                XDP_TX,
                Out::Frame(outg),
                &[(FWD, 1)],
            ),
            fx(
                "ipv4 in ipv6",
                frame(D0_MAC, GW_MAC, &inm),
                XDP_TX,
                Out::Frame(outm),
                &[(FWD, 1)],
            ),
            fx(
                "gre",
                frame(D0_MAC, GW_MAC, &inr),
                XDP_TX,
                Out::Frame(outr),
                &[(FWD, 1)],
            ),
        ],
    );
}

#[test]
fn tun_too_big_sends_frag_needed_or_drops_without_df() {
    let Some(mut rig) = rig("tunmtu") else { return };
    let a = rig.service(udp("10.0.0.102", 53), "rr");
    rig.dest_cfg(&a, tun_dest("10.0.0.13", 53, TunnelType::Ipip, 0));
    let b = rig.service(udp("fd00::102", 53), "rr");
    rig.dest_cfg(&b, tun_dest("fd00::13", 53, TunnelType::Ipip, 0));
    let big = vec![0x55u8; 1500 - 28];
    let c4 = ip("10.9.0.1");
    let p4 = ip_packet(c4, ip("10.0.0.102"), &udp_seg(4000, 53, &big));
    let icmp4 = frame(
        GW_MAC,
        D0_MAC,
        &director_icmp(ip("10.0.0.102"), c4, 3, 4, 1480, &quote_of(&p4)),
    );
    let nodf = V4Opts {
        df: false,
        ..Default::default()
    };
    let p4n = ipv4(
        c4,
        ip("10.0.0.102"),
        17,
        &udp_seg(4001, 53, &big).bytes(c4, ip("10.0.0.102")),
        &nodf,
    );
    let c6 = ip("2001:db8:9::1");
    let p6 = ip_packet(c6, ip("fd00::102"), &udp_seg(4000, 53, &big[..1500 - 48]));
    let icmp6 = frame(
        GW_MAC,
        D0_MAC,
        &director_icmp(ip("fd00::102"), c6, 2, 0, 1460, &quote_of(&p6)),
    );
    run_all(
        &rig,
        vec![
            fx(
                "ipv4 DF: frag needed, mtu minus 20",
                frame(D0_MAC, GW_MAC, &p4),
                XDP_TX,
                Out::Frame(icmp4),
                &[(RVS_R_FRAG_NEEDED, 1), (RVS_R_ICMP_SENT, 1)],
            ),
            fx(
                "ipv4 without DF: dropped",
                frame(D0_MAC, GW_MAC, &p4n),
                XDP_DROP,
                Out::Same,
                &[(RVS_R_TOO_BIG, 1)],
            ),
            fx(
                "ipv6: packet too big, mtu minus 40",
                frame(D0_MAC, GW_MAC, &p6),
                XDP_TX,
                Out::Frame(icmp6),
                &[(RVS_R_FRAG_NEEDED, 1), (RVS_R_ICMP_SENT, 1)],
            ),
        ],
    );
}

/// GRO/GSO aggregates (generic mode): a packet larger than the MTU of the interface it came
/// in on cannot have arrived as one frame, so no ICMP is due. XDP_TX can send it (the
/// driver segments it); a redirect to another interface cannot (the kernel would drop it
/// silently), nor can a tunnel: those drop as `oversize`.
#[test]
fn aggregates_leave_only_by_their_own_interface() {
    let Some(mut rig) = rig("aggr") else { return };
    for mtu in [
        ["ip", "link", "set", "d0", "mtu", "1280"],
        ["ip", "link", "set", "d1", "mtu", "1300"],
    ] {
        rig.lab.exec("d", &mtu).expect("set mtu");
    }
    let stick = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&stick, "10.0.0.11", 80, Forward::Route, 1);
    let other = rig.service(tcp("10.0.0.101", 80), "rr");
    rig.dest(&other, "10.1.0.21", 80, Forward::Route, 1);
    let tun = rig.service(tcp("10.0.0.102", 80), "rr");
    rig.dest_cfg(&tun, tun_dest("10.0.0.13", 80, TunnelType::Ipip, 0));
    let nat = rig.service(tcp("10.0.0.103", 80), "rr");
    rig.dest(&nat, "10.1.0.21", 8080, Forward::Masq, 1);
    let big = |dst: &str| {
        let l4 = L4::Tcp {
            sport: 40000,
            dport: 80,
            flags: SYN,
            payload: vec![0x5a; 1400 - 40],
        };
        client_frame("10.9.0.1", dst, &l4)
    };
    let on_stick = big("10.0.0.100");
    let to_d1 = big("10.0.0.101");
    let to_tun = big("10.0.0.102");
    let to_nat = big("10.0.0.103");
    run_all(
        &rig,
        vec![
            fx(
                "DR aggregate on the same interface: sent as it is",
                on_stick.clone(),
                XDP_TX,
                Out::Frame(remac(&on_stick, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
            fx(
                "DR aggregate to another interface: oversize",
                to_d1,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_OVERSIZE, 1)],
            ),
            fx(
                "tunnelled aggregate: oversize",
                to_tun,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_OVERSIZE, 1)],
            ),
            fx(
                "NAT aggregate to another interface: oversize before any rewrite",
                to_nat,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_OVERSIZE, 1)],
            ),
        ],
    );
}

#[test]
fn no_eligible_server_answers_port_unreachable() {
    let Some(mut rig) = rig("unreach") else {
        return;
    };
    let a = rig.service(tcp("10.0.0.100", 80), "wlc");
    rig.dest(&a, "10.0.0.11", 80, Forward::Route, 0);
    let b = rig.service(udp("fd00::100", 53), "wlc");
    rig.dest(&b, "fd00::11", 53, Forward::Route, 0);
    let c4 = ip("10.9.0.1");
    let p4 = ip_packet(c4, ip("10.0.0.100"), &tcp_seg(40000, 80, SYN));
    let r4 = frame(
        GW_MAC,
        D0_MAC,
        &director_icmp(ip("10.0.0.100"), c4, 3, 3, 0, &quote_of(&p4)),
    );
    let c6 = ip("2001:db8:9::1");
    let p6 = ip_packet(c6, ip("fd00::100"), &udp_seg(4000, 53, b"dns?"));
    let r6 = frame(
        GW_MAC,
        D0_MAC,
        &director_icmp(ip("fd00::100"), c6, 1, 4, 0, &quote_of(&p6)),
    );
    run_all(
        &rig,
        vec![
            fx(
                "ipv4: port unreachable",
                frame(D0_MAC, GW_MAC, &p4),
                XDP_TX,
                Out::Frame(r4),
                &[(RVS_R_NO_DEST, 1), (RVS_R_ICMP_SENT, 1)],
            ),
            fx(
                "ipv6: port unreachable",
                frame(D0_MAC, GW_MAC, &p6),
                XDP_TX,
                Out::Frame(r6),
                &[(RVS_R_NO_DEST, 1), (RVS_R_ICMP_SENT, 1)],
            ),
        ],
    );
    assert_eq!(rig.conn_count(), 0, "nothing is tracked");
}

/// A client-side error quoting the server's reply VIP:vport -> client:cport.
fn client_icmp(router: &str, vip: &str, client: &str, vport: u16, cport: u16, v6: bool) -> Vec<u8> {
    let reply = ip_packet(ip(vip), ip(client), &tcp_seg(vport, cport, ACK));
    let (t, c, info) = if v6 { (2, 0, 1280) } else { (3, 4, 1400) };
    icmp_error(ip(router), ip(vip), t, c, info, &quote_of(&reply))
}

#[test]
fn icmp_errors_follow_their_flow_in_every_mode() {
    let Some(mut rig) = rig("icmp") else { return };
    let dr = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&dr, "10.0.0.11", 80, Forward::Route, 1);
    let dr6 = rig.service(tcp("fd00::100", 80), "rr");
    rig.dest(&dr6, "fd00::11", 80, Forward::Route, 1);
    let nat = rig.service(tcp("10.0.0.101", 80), "rr");
    rig.dest(&nat, "10.1.0.21", 8080, Forward::Masq, 1);
    let nat6 = rig.service(tcp("fd00::101", 80), "rr");
    rig.dest(&nat6, "fd01::21", 8080, Forward::Masq, 1);
    let tun = rig.service(tcp("10.0.0.102", 80), "rr");
    rig.dest_cfg(&tun, tun_dest("10.0.0.13", 80, TunnelType::Ipip, 0));
    // open the flows
    for (c, v) in [
        ("10.9.0.1", "10.0.0.100"),
        ("10.9.0.1", "10.0.0.101"),
        ("10.9.0.1", "10.0.0.102"),
        ("2001:db8:9::1", "fd00::100"),
        ("2001:db8:9::1", "fd00::101"),
    ] {
        let (verdict, _) = rig.run(&client_frame(c, v, &tcp_seg(40000, 80, SYN)));
        assert!(
            verdict == XDP_TX || verdict == XDP_REDIRECT,
            "flow {c} -> {v}"
        );
    }
    let e_dr = client_icmp("10.9.255.1", "10.0.0.100", "10.9.0.1", 80, 40000, false);
    let e_dr6 = client_icmp(
        "2001:db8:9::ff",
        "fd00::100",
        "2001:db8:9::1",
        80,
        40000,
        true,
    );
    let e_tun = client_icmp("10.9.255.1", "10.0.0.102", "10.9.0.1", 80, 40000, false);
    let e_nat = client_icmp("10.9.255.1", "10.0.0.101", "10.9.0.1", 80, 40000, false);
    // NAT: outer destination and quoted source become the real server
    let q = ip_packet(ip("10.1.0.21"), ip("10.9.0.1"), &tcp_seg(8080, 40000, ACK));
    let e_nat_out = icmp_error(ip("10.9.255.1"), ip("10.1.0.21"), 3, 4, 1400, &quote_of(&q));
    let e_nat6 = client_icmp(
        "2001:db8:9::ff",
        "fd00::101",
        "2001:db8:9::1",
        80,
        40000,
        true,
    );
    let q6 = ip_packet(
        ip("fd01::21"),
        ip("2001:db8:9::1"),
        &tcp_seg(8080, 40000, ACK),
    );
    let e_nat6_out = icmp_error(
        ip("2001:db8:9::ff"),
        ip("fd01::21"),
        2,
        0,
        1280,
        &quote_of(&q6),
    );
    // a NAT server's error about the flow: back to the client as from the VIP
    let sent = ip_packet(ip("10.9.0.1"), ip("10.1.0.21"), &tcp_seg(40000, 8080, ACK));
    let rs_err = icmp_error(ip("10.1.0.21"), ip("10.9.0.1"), 3, 3, 0, &quote_of(&sent));
    let seen = ip_packet(ip("10.9.0.1"), ip("10.0.0.101"), &tcp_seg(40000, 80, ACK));
    let rs_err_out = icmp_error(ip("10.0.0.101"), ip("10.9.0.1"), 3, 3, 0, &quote_of(&seen));
    let stray = client_icmp("10.9.255.1", "10.0.0.100", "10.9.0.77", 80, 1234, false);
    let icmp_fwd = &[(RVS_R_ICMP_FORWARDED, 1)];
    run_all(
        &rig,
        vec![
            fx(
                "dr: to the server, as is",
                frame(D0_MAC, GW_MAC, &e_dr),
                XDP_TX,
                Out::Frame(frame(rs_mac(0x11), D0_MAC, &e_dr)),
                icmp_fwd,
            ),
            fx(
                "dr v6: packet too big to the server",
                frame(D0_MAC, GW_MAC, &e_dr6),
                XDP_TX,
                Out::Frame(frame(rs_mac(0x11), D0_MAC, &e_dr6)),
                icmp_fwd,
            ),
            fx(
                "tun: encapsulated to the server",
                frame(D0_MAC, GW_MAC, &e_tun),
                XDP_TX,
                Out::Frame(frame(
                    rs_mac(0x13),
                    D0_MAC,
                    &tunnel_v4(ip("10.0.0.254"), ip("10.0.0.13"), 4, &e_tun, false),
                )),
                icmp_fwd,
            ),
            fx(
                "nat: rewritten to the server",
                frame(D0_MAC, GW_MAC, &e_nat),
                XDP_REDIRECT,
                Out::Frame(frame(rs1_mac(0x21), D1_MAC, &e_nat_out)),
                icmp_fwd,
            ),
            fx(
                "nat v6: rewritten, pseudo-header too",
                frame(D0_MAC, GW_MAC, &e_nat6),
                XDP_REDIRECT,
                Out::Frame(frame(rs1_mac(0x21), D1_MAC, &e_nat6_out)),
                icmp_fwd,
            ),
            on1(fx(
                "nat server error: back as the vip",
                frame(D1_MAC, rs1_mac(0x21), &rs_err),
                XDP_REDIRECT,
                Out::Frame(frame(GW_MAC, D0_MAC, &rs_err_out)),
                icmp_fwd,
            )),
            fx(
                "error about no flow",
                frame(D0_MAC, GW_MAC, &stray),
                XDP_PASS,
                Out::Same,
                &[(RVS_R_ICMP_NO_CONN, 1)],
            ),
        ],
    );
}

#[test]
fn malformed_and_foreign_packets_get_a_named_reason() {
    let Some(mut rig) = rig("malformed") else {
        return;
    };
    let a = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&a, "10.0.0.11", 80, Forward::Route, 1);
    let b = rig.service(tcp("fd00::100", 80), "rr");
    rig.dest(&b, "fd00::11", 80, Forward::Route, 1);
    let c = ip("10.9.0.1");
    let vip = ip("10.0.0.100");
    let good = ip_packet(c, vip, &tcp_seg(40000, 80, SYN));

    let eth_only = eth(D0_MAC, GW_MAC, ETH_IP);
    let short_ip = frame(D0_MAC, GW_MAC, &good[..12]);
    let mut bad_version = frame(D0_MAC, GW_MAC, &good);
    bad_version[14] = 0x55;
    let mut bad_ihl = frame(D0_MAC, GW_MAC, &good);
    bad_ihl[14] = 0x44;
    let mut long_len = frame(D0_MAC, GW_MAC, &good);
    long_len[16..18].copy_from_slice(&200u16.to_be_bytes());
    let cut_tcp = {
        let seg = tcp_seg(40000, 80, SYN).bytes(c, vip);
        frame(
            D0_MAC,
            GW_MAC,
            &ipv4(c, vip, 6, &seg[..10], &V4Opts::default()),
        )
    };
    let mut arp = eth([0xff; 6], GW_MAC, 0x0806);
    arp.extend_from_slice(&[0u8; 28]);
    let mut vlan = eth(D0_MAC, GW_MAC, 0x8100);
    vlan.extend_from_slice(&[0, 10, 0x08, 0x00]);
    vlan.extend_from_slice(&good);
    let seg = tcp_seg(40000, 80, SYN).bytes(c, vip);
    let mf = frame(
        D0_MAC,
        GW_MAC,
        &ipv4(
            c,
            vip,
            6,
            &seg,
            &V4Opts {
                df: false,
                mf: true,
                ..Default::default()
            },
        ),
    );
    let later = frame(
        D0_MAC,
        GW_MAC,
        &ipv4(
            c,
            vip,
            6,
            &seg[..16],
            &V4Opts {
                df: false,
                frag_off: 185,
                ..Default::default()
            },
        ),
    );
    let foreign_frag = frame(
        D0_MAC,
        GW_MAC,
        &ipv4(
            c,
            ip("10.0.0.200"),
            6,
            &seg,
            &V4Opts {
                df: false,
                mf: true,
                ..Default::default()
            },
        ),
    );
    let c6 = ip("2001:db8:9::1");
    let seg6 = tcp_seg(40000, 80, SYN).bytes(c6, ip("fd00::100"));
    let mut fraghdr = vec![6u8, 0, 0, 1, 0, 0, 0, 9];
    fraghdr.extend_from_slice(&seg6);
    let frag6 = frame(
        D0_MAC,
        GW_MAC,
        &ipv6(c6, ip("fd00::100"), 44, &fraghdr, 64, 0),
    );
    let mut many = Vec::new();
    for i in 0..5 {
        many.extend_from_slice(&[if i == 4 { 6 } else { 60 }, 0, 1, 4, 0, 0, 0, 0]);
    }
    many.extend_from_slice(&seg6);
    let deep_ext = frame(D0_MAC, GW_MAC, &ipv6(c6, ip("fd00::100"), 60, &many, 64, 0));
    let gre = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(
            c,
            vip,
            &L4::Raw {
                proto: 47,
                bytes: vec![0, 0, 8, 0],
            },
        ),
    );
    let echo = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(
            c,
            vip,
            &L4::Raw {
                proto: 1,
                bytes: vec![8, 0, 0xf7, 0xff, 0, 0, 0, 0],
            },
        ),
    );
    let other = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(c, ip("10.0.0.200"), &tcp_seg(40000, 80, SYN)),
    );
    let port81 = frame(D0_MAC, GW_MAC, &ip_packet(c, vip, &tcp_seg(40000, 81, SYN)));
    let stray_ack = frame(D0_MAC, GW_MAC, &ip_packet(c, vip, &tcp_seg(40009, 80, ACK)));
    let rst = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(c, vip, &tcp_seg(40010, 80, SYN | RST)),
    );
    run_all(
        &rig,
        vec![
            fx(
                "ethernet header only",
                eth_only,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_TRUNCATED, 1)],
            ),
            fx(
                "ipv4 header cut short",
                short_ip,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_TRUNCATED, 1)],
            ),
            fx(
                "ip version 5",
                bad_version,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_BAD_IP, 1)],
            ),
            fx("ihl 4", bad_ihl, XDP_DROP, Out::Same, &[(RVS_R_BAD_IP, 1)]),
            fx(
                "total length beyond the frame",
                long_len,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_BAD_IP, 1)],
            ),
            fx(
                "tcp header cut short",
                cut_tcp,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_TRUNCATED, 1)],
            ),
            fx("arp", arp, XDP_PASS, Out::Same, &[(RVS_R_NOT_IP, 1)]),
            fx("vlan tag", vlan, XDP_PASS, Out::Same, &[(RVS_R_VLAN, 1)]),
            fx(
                "first fragment to a vip",
                mf,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_FRAGMENT, 1)],
            ),
            fx(
                "later fragment to a vip",
                later,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_FRAGMENT, 1)],
            ),
            fx(
                "fragment to another host",
                foreign_frag,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_NOT_VIP, 1)],
            ),
            fx(
                "ipv6 fragment to a vip",
                frag6,
                XDP_DROP,
                Out::Same,
                &[(RVS_R_FRAGMENT, 1)],
            ),
            fx(
                "ipv6 extension headers beyond the parser",
                deep_ext,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_IPV6_EXT, 1)],
            ),
            fx(
                "gre to a vip",
                gre,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_UNKNOWN_PROTO, 1)],
            ),
            fx(
                "ping to a vip",
                echo,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_UNKNOWN_PROTO, 1)],
            ),
            fx(
                "to another host",
                other,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_NOT_VIP, 1)],
            ),
            fx(
                "vip, port without service",
                port81,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_NO_SERVICE, 1)],
            ),
            fx(
                "ack without a flow",
                stray_ack,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_NO_CONN, 1)],
            ),
            fx(
                "syn+rst opens nothing",
                rst,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_NO_CONN, 1)],
            ),
        ],
    );
    assert_eq!(rig.conn_count(), 0);
}

#[test]
fn unusable_next_hops_and_methods_drop_with_reasons() {
    let Some(mut rig) = rig("nexthop") else {
        return;
    };
    let a = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&a, "10.0.0.14", 80, Forward::Route, 1); // no neighbour entry
    let b = rig.service(tcp("10.0.0.100", 81), "rr");
    rig.dest(&b, "10.5.0.5", 81, Forward::Route, 1); // behind a router: not DR-able
    let c = rig.service(tcp("10.0.0.100", 82), "rr");
    rig.dest(&c, "192.0.2.1", 82, Forward::Masq, 1); // no route at all
    let d = rig.service(tcp("10.0.0.100", 83), "rr");
    rig.dest(&d, "10.0.0.254", 83, Forward::Local, 1);
    let mut e = ServiceConfig::new(tcp("10.0.0.100", 84))
        .with_scheduler("rr")
        .with_persistence(60);
    e.pe = Some("sip".into());
    let e = rig.service_cfg(e);
    rig.dest(&e, "10.0.0.11", 84, Forward::Route, 1);
    let s = |port| client_frame("10.9.0.1", "10.0.0.100", &tcp_seg(40000, port, SYN));
    run_all(
        &rig,
        vec![
            fx(
                "next hop unresolved",
                s(80),
                XDP_DROP,
                Out::Same,
                &[(RVS_R_NO_NEIGH, 1)],
            ),
            fx(
                "dr server behind a router",
                s(81),
                XDP_DROP,
                Out::Same,
                &[(RVS_R_DR_NOT_ONLINK, 1)],
            ),
            fx(
                "no route to the server",
                s(82),
                XDP_DROP,
                Out::Same,
                &[(RVS_R_FIB, 1)],
            ),
            fx(
                "local server: the host handles it",
                s(83),
                XDP_PASS,
                Out::Same,
                &[(RVS_R_LOCAL, 1)],
            ),
            fx(
                "sip persistence engine",
                s(84),
                XDP_DROP,
                Out::Same,
                &[(RVS_R_NO_PE_DATA, 1)],
            ),
        ],
    );
    // the unresolved next hop was queued for rvsd to resolve
    let mut k = VipKey::default();
    use rvs_xdp::abi::Plain;
    assert!(rig
        .plane
        .director()
        .maps
        .neigh_req
        .pop(k.as_bytes_mut())
        .unwrap());
    assert_eq!(
        rvs_xdp::encode::ip_of(k.family as u8, &k.addr),
        ip("10.0.0.14")
    );
    // forwarding off on the ingress interface: the FIB is not consulted
    rig.lab
        .exec("d", &["sysctl", "-qw", "net.ipv4.conf.d0.forwarding=0"])
        .unwrap();
    // (port 82's server had no route: nothing was cached for it, the FIB is asked again)
    let f = fx(
        "forwarding disabled",
        client_frame("10.9.0.2", "10.0.0.100", &tcp_seg(40000, 82, SYN)),
        XDP_DROP,
        Out::Same,
        &[(RVS_R_FWD_DISABLED, 1)],
    );
    run_all(&rig, vec![f]);
}

#[test]
fn deleted_server_drops_its_flows_or_reschedules_them_with_expire_nodest_conn() {
    let Some(mut rig) = rig("nodest") else { return };
    let a = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&a, "10.0.0.11", 80, Forward::Route, 1);
    rig.dest(&a, "10.0.0.12", 80, Forward::Route, 1);
    let syn = client_frame("10.9.0.1", "10.0.0.100", &tcp_seg(40000, 80, SYN));
    let ack = client_frame("10.9.0.1", "10.0.0.100", &tcp_seg(40000, 80, ACK));
    let (_, out) = rig.run(&syn);
    assert_eq!(&out[..6], &rs_mac(0x12), "rr: the newest server first");
    rig.table.del_dest(&a, ip("10.0.0.12"), 80).unwrap();
    rig.sync();
    run_all(
        &rig,
        vec![fx(
            "flow of a deleted server",
            ack.clone(),
            XDP_DROP,
            Out::Same,
            &[(RVS_R_DEST_UNAVAILABLE, 1)],
        )],
    );
    rig.table.sysctl.expire_nodest_conn = true;
    rig.sync();
    run_all(
        &rig,
        vec![
            fx(
                "expire_nodest_conn: non-SYN finds nothing",
                ack,
                XDP_PASS,
                Out::Same,
                &[(RVS_R_NO_CONN, 1)],
            ),
            fx(
                "and a SYN is scheduled again",
                syn.clone(),
                XDP_TX,
                Out::Frame(remac(&syn, rs_mac(0x11), D0_MAC)),
                &[(FWD, 1)],
            ),
        ],
    );
    assert_eq!(rig.counts(&a, "10.0.0.11", 80), (1, 0, 0, false));
}

#[test]
fn full_connection_table_refuses_new_flows_and_keeps_the_old_ones() {
    if !root_or_skip("tablefull") {
        return;
    }
    let mut rig = Rig::with_conn_max("tablefull", Build::Production, 4);
    let a = rig.service(udp("10.0.0.100", 53), "rr");
    rig.dest(&a, "10.0.0.11", 53, Forward::Route, 1);
    let q = |port| client_frame("10.9.0.1", "10.0.0.100", &udp_seg(port, 53, b"q"));
    let mut fixtures = Vec::new();
    for (i, p) in [1001u16, 1002, 1003, 1004].into_iter().enumerate() {
        let names = ["flow 1", "flow 2", "flow 3", "flow 4"];
        fixtures.push(fx(
            names[i],
            q(p),
            XDP_TX,
            Out::Frame(remac(&q(p), rs_mac(0x11), D0_MAC)),
            &[(FWD, 1)],
        ));
    }
    fixtures.push(fx(
        "flow 5: table full",
        q(1005),
        XDP_DROP,
        Out::Same,
        &[(RVS_R_CONN_TABLE_FULL, 1)],
    ));
    fixtures.push(fx(
        "flow 1 still forwarded",
        q(1001),
        XDP_TX,
        Out::Frame(remac(&q(1001), rs_mac(0x11), D0_MAC)),
        &[(FWD, 1)],
    ));
    run_all(&rig, fixtures);
    assert_eq!(
        rig.counts(&a, "10.0.0.11", 53),
        (0, 4, 0, false),
        "the refused flow is not counted"
    );
}

/// A unicast frame for another host's MAC is left to the stack, which drops it (as the
/// kernel drops PACKET_OTHERHOST frames before IPVS): on a segment where frames are
/// flooded, a second director must not forward them too. Broadcast and multicast MACs and
/// interfaces rvsd did not register are not checked.
#[test]
fn frames_for_another_mac_are_left_to_the_stack() {
    let Some(mut rig) = rig("other-host") else {
        return;
    };
    let t = rig.service(tcp("10.0.0.100", 80), "rr");
    rig.dest(&t, "10.0.0.11", 80, Forward::Route, 1);
    let syn = |cport: u16| client_frame("10.9.0.1", "10.0.0.100", &tcp_seg(cport, 80, SYN));
    let other: Mac = [2, 0, 0, 0, 0, 0x99];
    // not registered yet: forwarded whatever the MAC (the test rig attaches nothing)
    let (v, _) = rig.run(&remac(&syn(40000), other, GW_MAC));
    assert_eq!(v, XDP_TX);
    rig.plane
        .inner()
        .state()
        .set_interfaces(vec![(rig.if0, D0_MAC)]);
    rig.sync();
    let before = reason_map(&rig.reasons());
    let f = remac(&syn(40001), other, GW_MAC);
    let (v, out) = rig.run(&f);
    assert_eq!((v, out), (XDP_PASS, f));
    let after = reason_map(&rig.reasons());
    let got = |c: i32| after.get(&c).copied().unwrap_or(0) - before.get(&c).copied().unwrap_or(0);
    assert_eq!(got(RVS_R_OTHER_HOST), 1);
    assert_eq!(got(RVS_R_FORWARDED), 0);
    // its own MAC, and the broadcast MAC, are served
    let (v, _) = rig.run(&syn(40002));
    assert_eq!(v, XDP_TX);
    let (v, _) = rig.run(&remac(&syn(40003), [0xff; 6], GW_MAC));
    assert_eq!(v, XDP_TX);
    // the other interface is not registered: not checked
    let (v, _) = rig.run_on(&remac(&syn(40004), other, GW_MAC), rig.if1);
    assert_ne!(v, XDP_PASS);
}
