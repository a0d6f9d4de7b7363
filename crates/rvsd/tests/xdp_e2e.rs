//! End to end in network namespaces this test creates (deleted by name on drop): a
//! client, a director running `rvsd --dataplane xdp` as a process (configured with the
//! `rvsadm` binary), and three real servers running nginx (and a UDP echo), for NAT (two
//! interfaces), DR (one L2 segment, replies bypassing the director) and TUN (servers
//! decapsulating with `rvs-rs tun`). Traffic is real TCP (HTTP, a large file compared
//! byte for byte) and UDP. Under `CI=true` a missing prerequisite fails instead of
//! skipping. Every wait is bounded.

mod xdp_lab;

use rvs_testkit::netns::Lab;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};
use xdp_lab::*;

fn rx_bytes(lab: &Lab, ns: &str, iface: &str) -> u64 {
    sh(
        lab,
        ns,
        &format!("cat /sys/class/net/{iface}/statistics/rx_bytes"),
    )
    .trim()
    .parse()
    .expect("counter")
}

/// Counts which server answered each of `n` fresh HTTP requests.
fn tally(lab: &Lab, ns: &str, url: &str, n: usize) -> std::collections::BTreeMap<String, usize> {
    let mut m = std::collections::BTreeMap::new();
    for _ in 0..n {
        *m.entry(curl(lab, ns, url)).or_insert(0) += 1;
    }
    m
}

fn counts(pairs: &[(&str, usize)]) -> std::collections::BTreeMap<String, usize> {
    pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
}

#[test]
fn nat_two_interfaces_tcp_udp_weights_removal_and_a_large_file() {
    if !prerequisites("e2e NAT") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("nat");
    nat_topology(&mut lab, &tmp.0);
    let pins = Pins::new("nat");
    let big = big_file(8 << 20);
    let mut servers = Vec::new();
    let mut udp = Vec::new();
    for (i, r) in ["r1", "r2", "r3"].iter().enumerate() {
        let d = tmp.0.join(r);
        servers.push(nginx(&lab, r, &d, r, &[80], &big));
        udp.push(UdpEcho::start(
            &lab,
            r,
            &format!("10.20.0.1{}:5353", i + 1),
            r,
        ));
    }
    let rvsd = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["d0", "d1"],
        &["--xdp-detach-on-exit"],
    );
    rvsd.adm("-A -t 10.10.0.100:80 -s rr");
    rvsd.adm("-A -u 10.10.0.100:53 -s rr");
    for i in 1..=3 {
        rvsd.adm(&format!("-a -t 10.10.0.100:80 -r 10.20.0.1{i}:80 -m -w 1"));
        rvsd.adm(&format!(
            "-a -u 10.10.0.100:53 -r 10.20.0.1{i}:5353 -m -w 1"
        ));
    }
    let url = "http://10.10.0.100/";
    assert_eq!(
        tally(&lab, "c", url, 12),
        counts(&[("r1", 4), ("r2", 4), ("r3", 4)]),
        "rr over three servers"
    );
    let mut by_server = std::collections::BTreeMap::new();
    for p in 0..6 {
        let a = udp_ask(&lab, "c", "10.10.0.100:53", 20000 + p, "ping");
        let (name, rest) = a.split_once(':').expect("NAME:payload");
        assert_eq!(rest, "ping");
        *by_server.entry(name.to_string()).or_insert(0) += 1;
    }
    assert_eq!(
        by_server,
        counts(&[("r1", 2), ("r2", 2), ("r3", 2)]),
        "udp rr"
    );

    // quiesce r1: new connections avoid it; remove r2: only r3 is left
    rvsd.adm("-e -t 10.10.0.100:80 -r 10.20.0.11:80 -m -w 0");
    let t = tally(&lab, "c", url, 6);
    assert!(
        !t.contains_key("r1"),
        "a weight-0 server gets no new connection: {t:?}"
    );
    rvsd.adm("-d -t 10.10.0.100:80 -r 10.20.0.12:80");
    assert_eq!(tally(&lab, "c", url, 4), counts(&[("r3", 4)]));

    // a large file, byte for byte, through NAT both ways
    let got = download(
        &lab,
        "c",
        "http://10.10.0.100/big.bin",
        &tmp.0.join("big.out"),
    );
    assert_eq!(got.len(), big.len(), "size of the large file");
    assert!(got == big, "the large file arrived corrupted");

    // listings come from BPF: connections and per-server counters
    let conns = rvsd.adm("-Lnc");
    assert!(
        conns.contains("10.10.0.2:") && conns.contains("10.20.0.13:80"),
        "-Lnc: {conns}"
    );
    assert!(
        conns.contains("TIME_WAIT") || conns.contains("CLOSE") || conns.contains("FIN_WAIT"),
        "-Lnc: {conns}"
    );
    let listing = rvsd.adm("-Ln");
    let r3 = listing
        .lines()
        .find(|l| l.contains("10.20.0.13:80"))
        .expect("r3 listed");
    let inact: u32 = r3
        .split_whitespace()
        .last()
        .expect("InActConn")
        .parse()
        .expect("number");
    assert!(
        inact >= 1,
        "-Ln shows BPF's inactive connections: {listing}"
    );
    wait_for(10, "per-server stats from BPF", || {
        let s = rvsd.adm("-Ln --stats");
        s.lines()
            .find(|l| l.contains("10.20.0.13:80"))
            .and_then(|l| {
                l.split_whitespace()
                    .nth(2)
                    .and_then(|c| c.parse::<u64>().ok())
            })
            .is_some_and(|conns| conns >= 7)
    });
    let status = rvsd.adm("--status");
    assert!(
        status.contains("xdp.reason.forwarded"),
        "--status: {status}"
    );
    rvsd.stop();
    drop(udp);
}

/// The real servers of every service as the XDP program sees them: the pinned
/// `rvs_services` lists and `rvs_dests` values, by service port, sorted.
fn bpf_service_lists(pins: &Path) -> std::collections::BTreeMap<u16, Vec<(SocketAddr, u32)>> {
    use rvs_xdp::abi::{self, Plain};
    use rvs_xdp::sys::RawMap;
    use std::os::fd::AsFd;
    let open = |name: &str, key: usize, value: usize| {
        let m = aya::maps::MapData::from_pin(pins.join(name))
            .unwrap_or_else(|e| panic!("pinned {name}: {e}"));
        RawMap::new(m.fd().as_fd(), key, value, false).expect(name)
    };
    let services = open(
        "rvs_services",
        size_of::<abi::SvcKey>(),
        size_of::<abi::Service>(),
    );
    let dests = open("rvs_dests", 4, size_of::<abi::Dest>());
    let mut out = std::collections::BTreeMap::new();
    for (_, v) in services.dump(0).expect("dump rvs_services") {
        let svc = abi::Service::from_bytes(&v);
        let mut list: Vec<(SocketAddr, u32)> = svc.dests[..usize::from(svc.n_dests)]
            .iter()
            .map(|slot| {
                let mut d = abi::Dest::default();
                let found = dests
                    .lookup(&u32::from(*slot).to_ne_bytes(), d.as_bytes_mut(), 0)
                    .expect("lookup rvs_dests");
                assert!(found, "service lists dest slot {slot}, which has no value");
                let addr = rvs_xdp::encode::ip_of(d.family, &d.addr);
                (SocketAddr::new(addr, u16::from_be(d.port)), d.weight)
            })
            .collect();
        list.sort();
        out.insert(u16::from_be(svc.port), list);
    }
    out
}

/// keepalived.conf's health checks driving the XDP plane: `rvsd -f` with a TCP_CHECK per
/// real server; a real server whose service stops leaves the service's list in the BPF
/// maps (and gets no new connection), and is back in it with its weight once it answers
/// again. The verdict walks checker → pool → rvsd's writer → `Table::apply` → the plane's
/// reconcile. The plane also refuses what it cannot serve, with its message.
#[test]
fn health_checks_move_real_servers_in_and_out_of_the_bpf_service_list() {
    if !prerequisites("e2e health checks on XDP") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("health");
    nat_topology(&mut lab, &tmp.0);
    let pins = Pins::new("health");
    let names = ["r1", "r2", "r3"];
    let mut servers: Vec<Child> = names
        .iter()
        .map(|r| nginx(&lab, r, &tmp.0.join(r), r, &[80], b"x"))
        .collect();
    let mut conf = String::from(
        "virtual_server 10.10.0.100 80 {\n protocol TCP\n lb_kind NAT\n lb_algo rr\n delay_loop 0.3\n",
    );
    for i in 1..=3 {
        conf.push_str(&format!(
            " real_server 10.20.0.1{i} 80 {{\n  weight {i}\n  TCP_CHECK {{\n   connect_timeout 0.5\n   retry 1\n   delay_before_retry 0.2\n  }}\n }}\n"
        ));
    }
    conf.push_str("}\n");
    let file = tmp.0.join("keepalived.conf");
    std::fs::write(&file, conf).expect("keepalived.conf");
    let file = file.display().to_string();
    let rvsd = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["d0", "d1"],
        &["--xdp-detach-on-exit", "-f", &file],
    );
    let rs = |i: u8| -> SocketAddr { format!("10.20.0.1{i}:80").parse().unwrap() };
    let all = vec![(rs(1), 1), (rs(2), 2), (rs(3), 3)];
    // The socket accepts before the plane is loaded; an answer means it is.
    rvsd.adm("-Ln");
    let mut rvsd = rvsd;
    // The servers of the service in the maps (rvsd still running: with
    // --xdp-detach-on-exit an rvsd that stopped takes its pins with it).
    let list = |rvsd: &mut Rvsd| {
        rvsd.running();
        bpf_service_lists(&pins.0).remove(&80).unwrap_or_default()
    };
    wait_for(10, "the three servers in the BPF service list", || {
        list(&mut rvsd) == all
    });
    let url = "http://10.10.0.100/";
    assert_eq!(
        tally(&lab, "c", url, 6).len(),
        3,
        "every server answers while all are up"
    );

    // r2's nginx stops: its checker fails twice (retry 1), the server leaves the list.
    let r2 = tmp.0.join("r2");
    let (conf_r2, dir_r2) = (
        r2.join("nginx.conf").display().to_string(),
        r2.display().to_string(),
    );
    lab.exec(
        "r2",
        &["nginx", "-p", &dir_r2, "-c", &conf_r2, "-s", "stop"],
    )
    .expect("nginx -s stop");
    wait_for(10, "r2's nginx gone", || {
        servers[1].try_wait().ok().flatten().is_some()
    });
    wait_for(10, "r2 out of the BPF service list", || {
        list(&mut rvsd) == [(rs(1), 1), (rs(3), 3)]
    });
    let t = tally(&lab, "c", url, 8);
    assert!(
        !t.contains_key("r2"),
        "no new connection to a down server: {t:?}"
    );
    let status = rvsd.adm("--status");
    assert!(status.contains("DOWN"), "--status: {status}");

    // r2 answers again: one success brings it back with its weight.
    servers[1] = nginx(&lab, "r2", &r2, "r2", &[80], b"x");
    wait_for(10, "r2 back in the BPF service list", || {
        list(&mut rvsd) == all
    });
    wait_for(10, "r2 answering through the VIP", || {
        tally(&lab, "c", url, 6).contains_key("r2")
    });

    // What XDP does not serve is refused before it reaches the table.
    let o = Command::new(&rvsd.rvsadm)
        .arg("--socket")
        .arg(&rvsd.socket)
        .args(["-A", "--sctp-service", "10.10.0.100:80", "-s", "rr"])
        .output()
        .expect("rvsadm");
    assert_eq!(
        (
            o.status.code(),
            String::from_utf8_lossy(&o.stderr).into_owned()
        ),
        (
            Some(255),
            "the xdp data plane does not serve SCTP services\n".to_string()
        )
    );
    assert_eq!(
        bpf_service_lists(&pins.0).len(),
        1,
        "nothing else reached the maps"
    );
    rvsd.stop();
}

#[test]
fn dr_on_one_segment_replies_bypass_the_director() {
    if !prerequisites("e2e DR") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("dr");
    segment_topology(&mut lab, &tmp.0);
    let pins = Pins::new("dr");
    let big = big_file(16 << 20);
    let mut servers = Vec::new();
    let mut udp = Vec::new();
    for r in ["r1", "r2", "r3"] {
        let state = tmp.0.join(format!("{r}.state"));
        rvs_rs(
            &lab,
            r,
            &format!("--state {} dr start --vip 10.30.0.100", state.display()),
        );
        assert_eq!(
            sh(&lab, r, "sysctl -n net.ipv4.conf.all.arp_ignore").trim(),
            "1"
        );
        servers.push(nginx(&lab, r, &tmp.0.join(r), r, &[80], &big));
        udp.push(UdpEcho::start(&lab, r, "10.30.0.100:53", r));
    }
    let rvsd = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["d0"],
        &["--xdp-detach-on-exit"],
    );
    rvsd.adm("-A -t 10.30.0.100:80 -s wrr");
    rvsd.adm("-A -u 10.30.0.100:53 -s rr");
    for (i, w) in [(1, 2), (2, 1), (3, 1)] {
        rvsd.adm(&format!(
            "-a -t 10.30.0.100:80 -r 10.30.0.1{i}:80 -g -w {w}"
        ));
        rvsd.adm(&format!("-a -u 10.30.0.100:53 -r 10.30.0.1{i}:53 -g -w 1"));
    }
    assert_eq!(
        tally(&lab, "c", "http://10.30.0.100/", 8),
        counts(&[("r1", 4), ("r2", 2), ("r3", 2)]),
        "wrr 2:1:1"
    );
    for p in 0..3 {
        let a = udp_ask(&lab, "c", "10.30.0.100:53", 21000 + p, "q");
        assert!(a.ends_with(":q"), "udp answer {a}");
    }
    // the download's bytes flow server -> client directly: the director sees only the
    // client's half (requests and ACKs)
    let before = rx_bytes(&lab, "d", "d0");
    let got = download(
        &lab,
        "c",
        "http://10.30.0.100/big.bin",
        &tmp.0.join("big.out"),
    );
    let rx = rx_bytes(&lab, "d", "d0") - before;
    assert!(got == big, "the large file arrived corrupted");
    assert!(
        rx < (big.len() / 8) as u64,
        "the director received {rx} bytes for a {} byte download",
        big.len()
    );

    rvsd.stop();
    for r in ["r1", "r2", "r3"] {
        let state = tmp.0.join(format!("{r}.state"));
        rvs_rs(&lab, r, &format!("--state {} stop", state.display()));
        assert_eq!(
            sh(&lab, r, "sysctl -n net.ipv4.conf.all.arp_ignore").trim(),
            "0",
            "undone exactly"
        );
        assert!(
            !sh(&lab, r, "ip addr show dev lo").contains("10.30.0.100"),
            "VIP removed from lo"
        );
    }
    drop(udp);
}

#[test]
fn tun_ipip_and_gue_to_decapsulating_servers() {
    if !prerequisites("e2e TUN") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("tun");
    segment_topology(&mut lab, &tmp.0);
    let pins = Pins::new("tun");
    let big = big_file(8 << 20);
    let mut servers = Vec::new();
    let mut rs_pins = Vec::new();
    for r in ["r1", "r2", "r3"] {
        let state = tmp.0.join(format!("{r}.state"));
        let p = Pins::new(&format!("decap-{r}"));
        rvs_rs(
            &lab,
            r,
            &format!(
                "--state {} tun start --vip 10.30.0.100 --interface eth0 --gue-port 6080 --pin-dir {}",
                state.display(),
                p.0.display()
            ),
        );
        rs_pins.push(p);
        servers.push(nginx(&lab, r, &tmp.0.join(r), r, &[80, 8080], &big));
    }
    let rvsd = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["d0"],
        &["--xdp-detach-on-exit"],
    );
    rvsd.adm("-A -t 10.30.0.100:80 -s rr");
    rvsd.adm("-A -t 10.30.0.100:8080 -s rr");
    for i in 1..=3 {
        rvsd.adm(&format!("-a -t 10.30.0.100:80 -r 10.30.0.1{i}:80 -i -w 1"));
        rvsd.adm(&format!(
            "-a -t 10.30.0.100:8080 -r 10.30.0.1{i}:8080 -i --tun-type gue --tun-port 6080 -w 1"
        ));
    }
    assert_eq!(
        tally(&lab, "c", "http://10.30.0.100/", 6),
        counts(&[("r1", 2), ("r2", 2), ("r3", 2)]),
        "ipip"
    );
    assert_eq!(
        tally(&lab, "c", "http://10.30.0.100:8080/", 3),
        counts(&[("r1", 1), ("r2", 1), ("r3", 1)]),
        "gue"
    );
    let got = download(
        &lab,
        "c",
        "http://10.30.0.100/big.bin",
        &tmp.0.join("big.out"),
    );
    assert!(got == big, "the large file arrived corrupted");
    let (mut ipip, mut gue) = (0, 0);
    for p in &rs_pins {
        let (a, b, _) = rvs_rs::decap_stats(&p.0).expect("decap stats");
        ipip += a;
        gue += b;
    }
    assert!(ipip >= 6 && gue >= 3, "decapsulated ipip {ipip}, gue {gue}");
    rvsd.stop();
    for r in ["r1", "r2", "r3"] {
        let state = tmp.0.join(format!("{r}.state"));
        rvs_rs(&lab, r, &format!("--state {} stop", state.display()));
    }
    for p in &rs_pins {
        assert!(!p.0.exists(), "decap pins removed by rvs-rs stop");
    }
}

/// Sends a keep-alive HTTP/1.1 request on an open connection; the body.
fn keepalive_get(s: &mut TcpStream) -> String {
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\n\r\n")
        .expect("request");
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n = s.read(&mut chunk).expect("response");
        assert!(n > 0, "connection closed");
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let len: usize = head
                .lines()
                .find_map(|l| {
                    l.to_ascii_lowercase()
                        .strip_prefix("content-length:")
                        .map(|v| v.trim().parse().expect("length"))
                })
                .expect("content-length");
            if body.len() >= len {
                return body[..len].trim().to_string();
            }
        }
        assert!(Instant::now() < deadline, "slow response");
    }
}

#[test]
fn restarting_rvsd_adopts_pinned_state_and_keeps_established_flows() {
    if !prerequisites("e2e restart") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("restart");
    nat_topology(&mut lab, &tmp.0);
    let pins = Pins::new("restart");
    let mut servers = Vec::new();
    for r in ["r1", "r2", "r3"] {
        servers.push(nginx(&lab, r, &tmp.0.join(r), r, &[80], b"x"));
    }
    let rules = tmp.0.join("rules");
    let mut text = String::from("-A -t 10.10.0.100:80 -s rr\n");
    for i in 1..=3 {
        text.push_str(&format!(
            "-a -t 10.10.0.100:80 -r 10.20.0.1{i}:80 -m -w 1\n"
        ));
    }
    std::fs::write(&rules, text).expect("rules");
    let restore = format!("--restore={}", rules.display());
    let first = Rvsd::start(&lab, "d", &tmp.0, &pins.0, &["d0", "d1"], &[&restore]);
    // the socket listens before --restore is applied: wait for the rules
    wait_for(10, "the restored rules", || {
        first.adm("-Ln").contains("10.20.0.13:80")
    });

    // a long-lived connection from the client, held across the restart
    let path = format!("/run/netns/{}", lab.ns("c"));
    let (to_client, from_test) = std::sync::mpsc::channel::<()>();
    let (to_test, from_client) = std::sync::mpsc::channel::<String>();
    let client = std::thread::spawn(move || {
        enter_path(&path);
        let mut s = TcpStream::connect_timeout(
            &"10.10.0.100:80".parse().expect("addr"),
            Duration::from_secs(5),
        )
        .expect("connect to the VIP");
        s.set_read_timeout(Some(Duration::from_secs(5)))
            .expect("timeout");
        for i in 0..3 {
            if i > 0 && from_test.recv_timeout(Duration::from_secs(60)).is_err() {
                return;
            }
            to_test.send(keepalive_get(&mut s)).expect("report");
        }
    });
    let name = from_client
        .recv_timeout(Duration::from_secs(10))
        .expect("first answer");
    assert!(name.starts_with('r'), "served by a real server: {name}");
    let conns_before = first.adm("-Lnc");
    let listing_before = first.adm("-Ln");

    // rvsd goes away: the pinned program keeps forwarding the flow meanwhile
    first.stop();
    to_client.send(()).expect("go");
    let during = from_client
        .recv_timeout(Duration::from_secs(10))
        .expect("answer while rvsd is down");
    assert_eq!(during, name, "same server while rvsd is down");

    let second = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["d0", "d1"],
        &[&restore, "--xdp-detach-on-exit"],
    );
    wait_for(10, "the restored rules", || {
        second.adm("-Ln").contains("10.20.0.13:80")
    });
    assert!(
        second.log_text().contains("adopted"),
        "the new rvsd adopted the pins: {}",
        second.log_text()
    );
    to_client.send(()).expect("go");
    let after = from_client
        .recv_timeout(Duration::from_secs(10))
        .expect("answer after the restart");
    assert_eq!(after, name, "same server after the restart");
    client.join().expect("client thread");
    let conns_after = second.adm("-Lnc");
    assert!(
        conns_before.contains("10.10.0.2:") && conns_after.contains("10.10.0.2:"),
        "the entry survived: before {conns_before} after {conns_after}"
    );
    // the adopted real servers kept their slots: the (now closed, TIME_WAIT) connection is
    // still counted on its server
    let listing = second.adm("-Ln");
    let counted: u32 = listing
        .lines()
        .filter(|l| l.contains("-> 10.20.0.1"))
        .map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            w[4].parse::<u32>().expect("ActiveConn") + w[5].parse::<u32>().expect("InActConn")
        })
        .sum();
    assert_eq!(
        counted, 1,
        "the connection is still counted: {listing}\nbefore: {listing_before}"
    );
    second.stop();
}
