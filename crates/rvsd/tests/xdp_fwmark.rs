//! fwmark services on the XDP data plane, end to end in network namespaces this test
//! creates (deleted by name on drop): marks set the way LVS users set them, by nftables
//! in the mangle priority of PREROUTING on the director, and `rvsadm -A -f MARK`. The
//! first packet of each connection goes through the netfilter program and back into the
//! director (docs/xdp.md, "fwmark services"); the rest of the connection never leaves XDP.
//! Under `CI=true` a missing prerequisite fails instead of skipping. Every wait is bounded.

mod xdp_lab;

use rvs_testkit::netns::Lab;
use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;
use xdp_lab::*;

fn prerequisites_fwmark(what: &str) -> bool {
    prerequisites(what) && rvs_testkit::require_command(what, "nft")
}

/// nftables rules in the director's namespace, as an operator writes them.
fn nft(lab: &Lab, ns: &str, dir: &std::path::Path, rules: &str) {
    let f = dir.join(format!("{ns}.nft"));
    std::fs::write(&f, rules).expect("rules");
    sh(lab, ns, &format!("nft -f {}", f.display()));
}

/// The answering server of a request from `src` to `url` (on failure, what rvsd says).
fn curl_from(lab: &Lab, rvsd: &Rvsd, src: &str, url: &str) -> String {
    lab.exec(
        "c",
        &["curl", "-s", "--max-time", "10", "--interface", src, url],
    )
    .unwrap_or_else(|e| {
        panic!(
            "curl {url} from {src}: {e}\n{:?}\n{}",
            rvsd.facts(),
            rvsd.log_text()
        )
    })
    .trim()
    .to_string()
}

/// DR on one segment: HTTP and HTTPS grouped under one persistent mark (seed 001's
/// example), DNS under another, non-persistent mark.
#[test]
fn dr_marks_group_ports_under_one_persistent_service() {
    if !prerequisites_fwmark("fwmark DR") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("fwm-dr");
    segment_topology(&mut lab, &tmp.0);
    sh(&lab, "c", "ip addr add 10.30.0.3/24 dev eth0");
    sh(&lab, "c", "ip addr add 10.30.0.4/24 dev eth0");
    sh(&lab, "c", "ip -6 addr add fd30::2/64 dev eth0 nodad");
    sh(&lab, "d", "ip -6 addr add fd30::1/64 dev d0 nodad");
    sh(&lab, "d", "ip -6 addr add fd30::100/128 dev d0 nodad");
    for i in 1..=3 {
        sh(
            &lab,
            &format!("r{i}"),
            &format!("ip -6 addr add fd30::1{i}/64 dev eth0 nodad"),
        );
    }
    let pins = Pins::new("fwm-dr");
    let big = big_file(4 << 20);
    let mut servers = Vec::new();
    let mut udp = Vec::new();
    for r in ["r1", "r2", "r3"] {
        let state = tmp.0.join(format!("{r}.state"));
        rvs_rs(
            &lab,
            r,
            &format!(
                "--state {} dr start --vip 10.30.0.100 --vip fd30::100",
                state.display()
            ),
        );
        servers.push(nginx(&lab, r, &tmp.0.join(r), r, &[80, 443, 8080], &big));
        udp.push(UdpEcho::start(&lab, r, "10.30.0.100:53", r));
        udp.push(UdpEcho::start(&lab, r, "[fd30::100]:53", r));
    }
    nft(
        &lab,
        "d",
        &tmp.0,
        "table ip lvs {\n\
         \tchain pre {\n\
         \t\ttype filter hook prerouting priority mangle; policy accept;\n\
         \t\tip daddr 10.30.0.100 tcp dport { 80, 443 } meta mark set 1\n\
         \t\tip daddr 10.30.0.100 udp dport 53 meta mark set 2\n\
         \t}\n\
         }\n\
         table ip6 lvs6 {\n\
         \tchain pre {\n\
         \t\ttype filter hook prerouting priority mangle; policy accept;\n\
         \t\tip6 daddr fd30::100 udp dport 53 meta mark set 3\n\
         \t}\n\
         }\n",
    );
    let rvsd = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["d0"],
        &["--xdp-detach-on-exit"],
    );
    let facts = rvsd.facts();
    assert!(
        facts
            .get("xdp.fwmark")
            .is_some_and(|v| v.starts_with("served")),
        "{facts:?}\n{}",
        rvsd.log_text()
    );
    rvsd.adm("-A -f 1 -s rr -p 300");
    rvsd.adm("-A -f 2 -s rr");
    rvsd.adm("-A -f 3 -6 -s rr");
    rvsd.adm("-A -t 10.30.0.100:8080 -s rr");
    for i in 1..=3 {
        rvsd.adm(&format!("-a -f 1 -r 10.30.0.1{i} -g"));
        rvsd.adm(&format!("-a -f 2 -r 10.30.0.1{i} -g"));
        rvsd.adm(&format!("-a -f 3 -6 -r fd30::1{i} -g"));
        rvsd.adm(&format!("-a -t 10.30.0.100:8080 -r 10.30.0.1{i}:8080 -g"));
    }

    // each client address sticks to one server for both ports; rr gives the three
    // clients three different servers
    let mut chosen = BTreeSet::new();
    for src in ["10.30.0.2", "10.30.0.3", "10.30.0.4"] {
        let first = curl_from(&lab, &rvsd, src, "http://10.30.0.100:80/");
        assert!(first.starts_with('r'), "answer {first:?}");
        for url in ["http://10.30.0.100:443/", "http://10.30.0.100:80/"] {
            assert_eq!(curl_from(&lab, &rvsd, src, url), first, "{src} -> {url}");
        }
        chosen.insert(first);
    }
    assert_eq!(
        chosen.len(),
        3,
        "rr over the persistent clients: {chosen:?}"
    );

    // UDP under mark 2, not persistent: rr, one datagram per flow
    let mut answered = BTreeSet::new();
    for p in 0..3 {
        let a = udp_ask(&lab, "c", "10.30.0.100:53", 22000 + p, "q");
        answered.insert(a.split(':').next().unwrap_or_default().to_string());
    }
    assert_eq!(answered.len(), 3, "rr over UDP: {answered:?}");
    // and over IPv6 (the netfilter program's other hook)
    let mut answered6 = BTreeSet::new();
    for p in 0..3 {
        let a = udp_ask(&lab, "c", "[fd30::100]:53", 23000 + p, "q6");
        assert!(a.ends_with(":q6"), "{a}");
        answered6.insert(a.split(':').next().unwrap_or_default().to_string());
    }
    assert_eq!(answered6.len(), 3, "rr over UDP/IPv6: {answered6:?}");

    // what the detour costs a connection: its handshake, to a fwmark service and to an
    // address service of the same servers; a first packet lost on the way would show as the
    // client's SYN retransmission (1 s)
    let (fwm, addr) = in_ns(&lab, "c", || {
        let connect = |port: u16| {
            let mut t: Vec<Duration> = (0..30)
                .map(|_| {
                    let t0 = std::time::Instant::now();
                    let s = TcpStream::connect(("10.30.0.100", port)).expect("connect");
                    let d = t0.elapsed();
                    drop(s);
                    d
                })
                .collect();
            t.sort();
            t
        };
        (connect(443), connect(8080))
    });
    eprintln!(
        "handshake (median, max of 30): fwmark {:?}, {:?}; address service {:?}, {:?}",
        fwm[15], fwm[29], addr[15], addr[29]
    );
    assert!(
        fwm[29] < Duration::from_millis(500),
        "a marked first packet was lost: {fwm:?}"
    );
    // FWM 1 by the end: 9 requests, these 30 handshakes, the download below
    let marked_conns = 9 + 30 + 1;

    // only first packets leave XDP: a 4 MiB download is one more diversion
    let before = rvsd.fact("xdp.fwmark.diverted");
    let got = download(
        &lab,
        "c",
        "http://10.30.0.100:443/big.bin",
        &tmp.0.join("big.out"),
    );
    assert!(got == big, "corrupted");
    assert_eq!(rvsd.fact("xdp.fwmark.diverted") - before, 1);
    let diverted = rvsd.fact("xdp.fwmark.diverted");
    assert_eq!(rvsd.fact("xdp.fwmark.reruns"), diverted);
    assert_eq!(rvsd.fact("xdp.fwmark.sent"), diverted);
    assert_eq!(rvsd.fact("xdp.fwmark.failed"), 0);
    assert_eq!(rvsd.fact("xdp.fwmark.ring_full"), 0);

    // the listing counts the connections against the fwmark services (the counters are
    // collected every second)
    let conns = |svc: &str| -> u64 {
        let stats = rvsd.adm("-Ln --stats");
        let line = stats
            .lines()
            .find(|l| l.starts_with(&format!("{svc} ")))
            .unwrap_or_else(|| panic!("{svc} in {stats}"))
            .to_string();
        line[svc.len()..]
            .split_whitespace()
            .next()
            .unwrap()
            .parse()
            .unwrap()
    };
    wait_for(10, "the connections counted", || {
        conns("FWM  1") >= marked_conns && conns("FWM  2") >= 3 && conns("FWM  3 IPv6") >= 3
    });
    assert_eq!(
        (conns("FWM  1"), conns("FWM  2"), conns("FWM  3 IPv6")),
        (marked_conns, 3, 3)
    );
    let lnc = rvsd.adm("-Lnc");
    assert!(lnc.contains("10.30.0.100:443"), "{lnc}");

    rvsd.stop();
    drop(udp);
}

/// NAT with two interfaces: the reply path of a connection a mark scheduled.
#[test]
fn nat_transfer_of_a_marked_connection() {
    if !prerequisites_fwmark("fwmark NAT") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("fwm-nat");
    nat_topology(&mut lab, &tmp.0);
    let pins = Pins::new("fwm-nat");
    let big = big_file(4 << 20);
    let mut servers = Vec::new();
    for r in ["r1", "r2", "r3"] {
        servers.push(nginx(&lab, r, &tmp.0.join(r), r, &[8080], &big));
    }
    nft(
        &lab,
        "d",
        &tmp.0,
        "table ip lvs {\n\
         \tchain pre {\n\
         \t\ttype filter hook prerouting priority mangle; policy accept;\n\
         \t\tip daddr 10.10.0.100 tcp dport 80 meta mark set 7\n\
         \t}\n\
         }\n",
    );
    let rvsd = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["d0", "d1"],
        &["--xdp-detach-on-exit"],
    );
    rvsd.adm("-A -f 7 -s wrr");
    for (i, w) in [(1, 2), (2, 1), (3, 1)] {
        rvsd.adm(&format!("-a -f 7 -r 10.20.0.1{i}:8080 -m -w {w}"));
    }
    let mut seen = std::collections::BTreeMap::new();
    for _ in 0..8 {
        *seen
            .entry(curl(&lab, "c", "http://10.10.0.100/"))
            .or_insert(0) += 1;
    }
    let want: std::collections::BTreeMap<String, i32> = [
        ("r1".to_string(), 4),
        ("r2".to_string(), 2),
        ("r3".to_string(), 2),
    ]
    .into();
    assert_eq!(seen, want, "wrr 2:1:1");

    // a long transfer on one connection, every byte checked, with keep-alive requests
    let big2 = big.clone();
    let got = in_ns(&lab, "c", move || {
        let mut s = TcpStream::connect("10.10.0.100:80").expect("connect");
        s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
        s.write_all(b"GET /big.bin HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut buf = Vec::new();
        s.read_to_end(&mut buf).expect("read");
        let at = buf
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("headers")
            + 4;
        buf[at..] == big2[..]
    });
    assert!(got, "the transfer arrived corrupted");
    assert_eq!(rvsd.fact("xdp.fwmark.diverted"), 9);
    assert_eq!(rvsd.fact("xdp.fwmark.sent"), 9);
    assert_eq!(rvsd.fact("xdp.fwmark.failed"), 0);
    rvsd.stop();
}
