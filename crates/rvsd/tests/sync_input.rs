//! Hostile sync input at a running rvsd backup (XDP plane, a connection table of 512
//! entries), from a peer on its segment in network namespaces this test creates: every
//! malformed message is dropped with its reason and counted; entries for services or
//! servers the backup does not have are skipped and counted; a flood of valid entries
//! fills the table up to its limit and no further; a burst of datagrams leaves rvsd
//! answering. What is installed is only ever what was valid.

mod xdp_lab;

use rvs_core::sync::flags;
use rvs_core::SyncEntry;
use rvs_sync::wire::encode;
use rvs_testkit::netns::Lab;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};
use xdp_lab::*;

const GROUP: &str = "224.0.0.81:8848";

fn entry(client: u32, server: &str) -> SyncEntry {
    SyncEntry {
        proto: 6,
        caddr: IpAddr::V4(Ipv4Addr::from(0x0a40_0000 + client)),
        cport: 1024 + (client % 60000) as u16,
        vaddr: "10.66.1.100".parse().unwrap(),
        vport: 80,
        daddr: server.parse().unwrap(),
        dport: 80,
        fwmark: 0,
        flags: flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
    }
}

fn facts(d: &Rvsd) -> HashMap<String, String> {
    d.adm("--status")
        .lines()
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

fn fact(d: &Rvsd, name: &str) -> u64 {
    facts(d)
        .get(name)
        .unwrap_or_else(|| panic!("no fact {name}"))
        .parse()
        .unwrap()
}

/// The peer's socket: multicast out of its eth0.
fn sender(lab: &Lab) -> UdpSocket {
    let path = format!("/run/netns/{}", lab.ns("p"));
    std::thread::spawn(move || {
        enter_path(&path);
        let s = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
        s.set_multicast_if_v4(&"10.66.0.1".parse().unwrap())
            .unwrap();
        s.bind(&"10.66.0.1:0".parse::<SocketAddr>().unwrap().into())
            .unwrap();
        UdpSocket::from(s)
    })
    .join()
    .unwrap()
}

#[test]
fn malformed_foreign_and_flooding_sync_input_is_refused_and_bounded() {
    if !prerequisites("hostile sync input") {
        return;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new("sync-input");
    lab.add_ns("d").unwrap();
    lab.add_ns("p").unwrap();
    lab.veth("p", "eth0", "10.66.0.1/24", "d", "eth0", "10.66.0.2/24")
        .unwrap();
    xdp_peer(&lab, "p", "eth0", &tmp.0);
    full_checksums(&lab, "p", "eth0");
    let rules = tmp.0.join("rules");
    std::fs::write(
        &rules,
        "-A -t 10.66.1.100:80 -s rr\n-a -t 10.66.1.100:80 -r 10.66.0.11:80 -g\n",
    )
    .unwrap();
    let pins = Pins::new("sync-input");
    let rules = rules.display().to_string();
    let d = Rvsd::start_args(
        &lab,
        "d",
        &tmp.0,
        &[
            "--dataplane",
            "xdp",
            "--interface",
            "eth0",
            "--xdp-pin-dir",
            &pins.0.display().to_string(),
            "--xdp-conn-max",
            "512",
            "--restore",
            &rules,
        ],
    );
    d.adm("--start-daemon backup --mcast-interface eth0 --syncid 3");
    let s = sender(&lab);
    let send = |m: &[u8]| {
        s.send_to(m, GROUP).unwrap();
    };
    let wait_fact = |name: &str, want: u64| {
        let t0 = Instant::now();
        while fact(&d, name) < want {
            assert!(
                t0.elapsed() < Duration::from_secs(10),
                "{name} stays at {} (want {want})",
                fact(&d, name)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };

    // Malformed messages, each dropped whole with its reason.
    let good = encode(
        1,
        3,
        1472,
        &[entry(1, "10.66.0.11"), entry(2, "10.66.0.11")],
    )
    .remove(0);
    let with = |f: &dyn Fn(&mut Vec<u8>)| {
        let mut m = good.clone();
        f(&mut m);
        m
    };
    let resize = |m: &mut Vec<u8>| {
        let n = m.len() as u16;
        m[2..4].copy_from_slice(&n.to_be_bytes());
    };
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("too_short", vec![0, 3, 0]),
        ("bad_size", with(&|m| m[3] ^= 4)),
        ("syncid", with(&|m| m[1] = 4)),
        ("unknown_version", with(&|m| m[5] = 9)),
        ("truncated", with(&|m| m[4] = 9)),
        (
            "trailing_bytes",
            with(&|m| {
                m.extend_from_slice(&[1, 2, 3, 4]);
                resize(m);
            }),
        ),
        ("entry_version", with(&|m| m[10] |= 0x30)),
        ("entry_type", with(&|m| m[8] = 7)),
        (
            "bad_option",
            with(&|m| {
                m.truncate(8 + 36);
                m[4] = 1;
                m.extend_from_slice(&[2, 0]);
                let sz = (36u16 + 2).to_be_bytes();
                m[10..12].copy_from_slice(&sz);
                resize(m);
            }),
        ),
    ];
    for (_, m) in &cases {
        send(m);
    }
    for (reason, _) in &cases {
        wait_fact(&format!("sync.backup.dropped.{reason}"), 1);
    }
    assert_eq!(
        fact(&d, "xdp.connections"),
        0,
        "nothing of a malformed message"
    );

    // Entries the backup has no service or server for, or does not serve (SCTP).
    let mut other_vip = entry(3, "10.66.0.11");
    other_vip.vaddr = "10.66.1.101".parse().unwrap();
    let other_server = entry(4, "10.66.0.99");
    let mut sctp = entry(5, "10.66.0.11");
    sctp.proto = 132;
    send(&encode(1, 3, 1472, &[other_vip, other_server, sctp]).remove(0));
    wait_fact("sync.backup.skipped.no_service", 1);
    wait_fact("sync.backup.skipped.no_dest", 1);
    wait_fact("sync.backup.skipped.unsupported", 1);
    assert_eq!(fact(&d, "xdp.connections"), 0);

    // A flood of valid entries: the table takes 512 and refuses the rest.
    let flood: Vec<SyncEntry> = (0..2000).map(|i| entry(100 + i, "10.66.0.11")).collect();
    for m in encode(1, 3, 1472, &flood) {
        send(&m);
        std::thread::sleep(Duration::from_micros(200));
    }
    let t0 = Instant::now();
    while fact(&d, "sync.backup.installed.created") + fact(&d, "sync.backup.skipped.table_full")
        < 2000
    {
        assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", facts(&d));
        std::thread::sleep(Duration::from_millis(50));
    }
    let created = fact(&d, "sync.backup.installed.created");
    assert!(
        (400..=512).contains(&created),
        "{created} created in a table of 512"
    );
    assert_eq!(fact(&d, "sync.backup.skipped.table_full"), 2000 - created);
    let listing = d.adm("-Lnc");
    let lines: Vec<&str> = listing.lines().skip(2).collect();
    assert_eq!(lines.len() as u64, created);
    // only what was valid: clients 10.64.0.100.. to the configured server
    assert!(lines
        .iter()
        .all(|l| l.contains("10.66.1.100:80") && l.contains("10.66.0.11:80")));

    // A burst of datagrams: bounded work, rvsd keeps answering, and every datagram the
    // kernel handed to the backup's socket (or dropped there) is counted. What the stack
    // drops before a socket (a full backlog) no socket sees.
    let junk = with(&|m| m[1] = 4);
    let udp0 = udp_counters(&lab);
    let before = fact(&d, "sync.backup.dropped.syncid");
    let t0 = Instant::now();
    for _ in 0..50_000 {
        let _ = s.send_to(&junk, GROUP);
    }
    let burst = t0.elapsed();
    let t1 = Instant::now();
    d.adm("-Ln");
    assert!(
        t1.elapsed() < Duration::from_secs(2),
        "rvsadm took {:?} during a burst",
        t1.elapsed()
    );
    // The kernel tells a socket its drop count with the next datagram it queues: one more,
    // once the backlog is through, carries the count of the burst's last drops.
    let t2 = Instant::now();
    let mut last_read = u64::MAX;
    loop {
        let (read, _) = udp_counters(&lab);
        if read == last_read {
            break;
        }
        last_read = read;
        std::thread::sleep(Duration::from_millis(200));
    }
    send(&junk);
    loop {
        let (read, overflow) = udp_counters(&lab);
        let (read, overflow) = (read - udp0.0, overflow - udp0.1);
        let counted = fact(&d, "sync.backup.dropped.syncid") - before;
        if counted == read && fact(&d, "sync.backup.dropped.socket_overflow") == overflow {
            assert!(read + overflow > 10_000, "{read} read, {overflow} dropped");
            eprintln!("burst of 50,000 sent in {burst:?}: {read} read and counted, {overflow} dropped at the socket and counted");
            break;
        }
        assert!(
            t2.elapsed() < Duration::from_secs(20),
            "{counted} counted, {read} read by the socket; {} overflow counted, {overflow} in the kernel",
            fact(&d, "sync.backup.dropped.socket_overflow")
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// UDP datagrams read by sockets and dropped at full socket buffers, in the director's
/// namespace (`/proc/net/snmp`: InDatagrams, RcvbufErrors).
fn udp_counters(lab: &Lab) -> (u64, u64) {
    let snmp = lab.exec("d", &["cat", "/proc/net/snmp"]).unwrap();
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let names: Vec<&str> = udp.next().unwrap().split_whitespace().collect();
    let values: Vec<&str> = udp.next().unwrap().split_whitespace().collect();
    let get = |n: &str| -> u64 {
        values[names.iter().position(|x| *x == n).unwrap()]
            .parse()
            .unwrap()
    };
    (get("InDatagrams"), get("RcvbufErrors"))
}
