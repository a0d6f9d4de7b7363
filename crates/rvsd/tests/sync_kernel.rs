//! Connection sync against the real kernel: kernel IPVS in user-mode Linux
//! (`rvs_testkit::uml`) on the same lab segment as rvsd.
//!
//! * a kernel sync master (NAT director inside UML, with a client and a real server of its
//!   own) and an rvs backup: the kernel's `ipvsadm -Lnc` and the backup's `rvsadm -Lnc`
//!   list the same connections and templates, in the same states, with the same time left
//!   (within the sync delay), on the XDP plane and on the table's model;
//! * an rvs master (XDP DR director with real traffic) and a kernel backup: the kernel
//!   installs what rvs sends, as rvs lists it.
//!
//! Root, the UML host tools and the Debian archive (first run) are needed; outside CI a
//! missing prerequisite skips the test with the reason.

mod xdp_lab;

use rvs_testkit::netns::Lab;
use rvs_testkit::uml::{self, Uml};
use std::collections::BTreeSet;
use std::time::{Duration, Instant};
use xdp_lab::*;

/// One `-Lnc` line without its expiry: (protocol, state, source, virtual, destination).
type Entry = (String, String, String, String, String);

/// The entries of an `ipvsadm -Lnc` listing, with their seconds left.
fn entries(listing: &str) -> Vec<(Entry, u64)> {
    listing
        .lines()
        .skip(2)
        .filter_map(|l| {
            let w: Vec<&str> = l.split_whitespace().collect();
            if w.len() != 6 {
                return None;
            }
            let (m, s) = w[1].split_once(':')?;
            let left = m.parse::<u64>().ok()? * 60 + s.parse::<u64>().ok()?;
            Some((
                (
                    w[0].to_string(),
                    w[2].to_string(),
                    w[3].to_string(),
                    w[4].to_string(),
                    w[5].to_string(),
                ),
                left,
            ))
        })
        .collect()
}

fn set(listing: &str) -> BTreeSet<Entry> {
    entries(listing).into_iter().map(|(e, _)| e).collect()
}

fn lab_script(lab_bin: &str, body: &str) -> String {
    format!("#!/bin/sh\nLAB={lab_bin}\n{body}\n")
}

/// A segment: the bridge, the namespace UML runs in (its NIC on the bridge) and the
/// given hosts, each with eth0 on the bridge and an address.
fn segment(lab: &mut Lab, dir: &std::path::Path, hosts: &[(&str, &str, bool)]) {
    lab.add_ns("sw").expect("netns");
    sh(lab, "sw", "ip link add br0 type bridge");
    sh(lab, "sw", "ip link set br0 up");
    lab.add_ns("k").expect("netns");
    lab.veth("k", "u0", "", "sw", "pk", "").expect("veth");
    full_checksums(lab, "sw", "pk");
    sh(lab, "sw", "ip link set pk master br0");
    for (ns, addr, director) in hosts {
        lab.add_ns(ns).expect("netns");
        let port = format!("p{ns}");
        lab.veth(ns, "eth0", addr, "sw", &port, "").expect("veth");
        full_checksums(lab, ns, "eth0");
        full_checksums(lab, "sw", &port);
        sh(lab, "sw", &format!("ip link set {port} master br0"));
        if *director {
            xdp_peer(lab, "sw", &port, dir);
        }
    }
}

const KERNEL_MASTER: &str = r#"
set -e
ip link set vec0 up
ip addr add 10.61.0.1/24 dev vec0
ip netns add cl; ip netns add rs
ip link add c0 type veth peer name c1 netns cl
ip addr add 10.63.0.1/24 dev c0; ip link set c0 up
ip -n cl addr add 10.63.0.2/24 dev c1; ip -n cl link set c1 up; ip -n cl link set lo up
ip -n cl route add default via 10.63.0.1
ip link add r0 type veth peer name r1 netns rs
ip addr add 10.62.0.1/24 dev r0; ip link set r0 up
ip -n rs addr add 10.62.0.2/24 dev r1; ip -n rs link set r1 up; ip -n rs link set lo up
ip -n rs route add default via 10.62.0.1
sysctl -qw net.ipv4.ip_forward=1
ip addr add 10.61.1.100/32 dev lo
ipvsadm -A -t 10.61.1.100:80 -s rr
ipvsadm -a -t 10.61.1.100:80 -r 10.62.0.2:8080 -m
ipvsadm -A -t 10.61.1.100:81 -s rr -p 300
ipvsadm -a -t 10.61.1.100:81 -r 10.62.0.2:8080 -m
ipvsadm -A -u 10.61.1.100:53 -s rr
ipvsadm -a -u 10.61.1.100:53 -r 10.62.0.2:5353 -m
ip netns exec rs $LAB sink --listen 10.62.0.2:8080 &
ip netns exec rs $LAB sink --listen 10.62.0.2:5353 --udp &
ipvsadm --start-daemon master --mcast-interface vec0 --syncid 9
i=0; while [ ! -e $OUT/go ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
sleep 0.3
for p in 41000 41001 41002 41003; do
  ip netns exec cl $LAB hold --target 10.61.1.100:80 --bind 10.63.0.2:$p --packets 5 --hold-ms 60000 &
done
ip netns exec cl $LAB hold --target 10.61.1.100:81 --bind 10.63.0.2:41010 --packets 5 --hold-ms 60000 &
ip netns exec cl $LAB hold --target 10.61.1.100:53 --bind 10.63.0.2:41020 --packets 5 --udp &
sleep 3
ipvsadm -Lnc > $OUT/kernel.txt
touch $OUT/ready
i=0; while [ ! -e $OUT/done ] && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done
"#;

const RULES_NAT: &str = "-A -t 10.61.1.100:80 -s rr\n-a -t 10.61.1.100:80 -r 10.62.0.2:8080 -m\n\
    -A -t 10.61.1.100:81 -s rr -p 300\n-a -t 10.61.1.100:81 -r 10.62.0.2:8080 -m\n\
    -A -u 10.61.1.100:53 -s rr\n-a -u 10.61.1.100:53 -r 10.62.0.2:5353 -m\n";

fn kernel_master_rvs_backup(plane: &str) {
    let what = format!("kernel sync master, rvs backup ({plane})");
    if !prerequisites(&what) || !uml::available(&what) {
        return;
    }
    let kernel = Uml::get().expect("user-mode Linux");
    let mut lab = Lab::new();
    let tmp = Scratch::new("sync-kernel-master");
    segment(&mut lab, &tmp.0, &[("d", "10.61.0.2/24", true)]);
    let pins = Pins::new("kmaster");
    let rules = tmp.0.join("rules");
    std::fs::write(&rules, RULES_NAT).unwrap();
    let rules = rules.display().to_string();
    let d = match plane {
        "xdp" => Rvsd::start(
            &lab,
            "d",
            &tmp.0,
            &pins.0,
            &["eth0"],
            &["--restore", &rules],
        ),
        _ => Rvsd::start_args(
            &lab,
            "d",
            &tmp.0,
            &["--dataplane", plane, "--restore", &rules],
        ),
    };
    d.adm("--start-daemon backup --mcast-interface eth0 --syncid 9");
    let out = tmp.0.join("uml");
    let script = lab_script(&tool("rvs-lab").display().to_string(), KERNEL_MASTER);
    let mut run = kernel
        .spawn(Some(&lab.ns("k")), &["u0"], &script, &out)
        .expect("boot");
    std::fs::write(out.join("go"), "").unwrap();
    run.wait_file("ready", Duration::from_secs(60))
        .expect("the kernel's traffic");
    let theirs = std::fs::read_to_string(out.join("kernel.txt")).unwrap();
    let want = set(&theirs);
    assert_eq!(
        want.len(),
        7,
        "4 + 1 TCP connections, 1 template, 1 UDP flow in the kernel:\n{theirs}"
    );
    let t0 = Instant::now();
    let mut ours = d.adm("-Lnc");
    while set(&ours) != want && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        ours = d.adm("-Lnc");
    }
    std::fs::write(out.join("done"), "").unwrap();
    assert_eq!(
        set(&ours),
        want,
        "kernel master:\n{theirs}\nrvs backup ({plane}):\n{ours}\n{}",
        d.adm("--status")
    );
    // The time left agrees within the sync delay (2 s flush, seconds rounding).
    let left: std::collections::BTreeMap<Entry, u64> = entries(&theirs).into_iter().collect();
    for (e, l) in entries(&ours) {
        let k = left[&e];
        assert!(
            l.abs_diff(k) <= 5,
            "{e:?}: {l} s left here, {k} s in the kernel"
        );
    }
    let r = run
        .wait(Duration::from_secs(60))
        .expect("the scenario ends");
    assert_eq!(r.rc, 0, "{}", r.stderr);
}

#[test]
fn a_kernel_masters_entries_appear_in_an_xdp_backup() {
    kernel_master_rvs_backup("xdp");
}

#[test]
fn a_kernel_masters_entries_appear_in_the_tables_backup() {
    kernel_master_rvs_backup("none");
}

const KERNEL_BACKUP: &str = r#"
set -e
ip link set vec0 up
ip addr add 10.64.0.200/24 dev vec0
ipvsadm -A -t 10.64.0.100:80 -s rr
ipvsadm -a -t 10.64.0.100:80 -r 10.64.0.11:80 -g
ipvsadm -A -t 10.64.0.100:81 -s rr -p 300
ipvsadm -a -t 10.64.0.100:81 -r 10.64.0.11:81 -g
ipvsadm -A -u 10.64.0.100:53 -s rr
ipvsadm -a -u 10.64.0.100:53 -r 10.64.0.11:53 -g
ipvsadm --start-daemon backup --mcast-interface vec0 --syncid 4
touch $OUT/ready
i=0; while [ ! -e $OUT/done ] && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done
ipvsadm -Lnc > $OUT/kernel.txt
"#;

#[test]
fn an_xdp_masters_entries_appear_in_a_kernel_backup() {
    let what = "rvs sync master, kernel backup";
    if !prerequisites(what) || !uml::available(what) {
        return;
    }
    let kernel = Uml::get().expect("user-mode Linux");
    let mut lab = Lab::new();
    let tmp = Scratch::new("sync-kernel-backup");
    segment(
        &mut lab,
        &tmp.0,
        &[
            ("c", "10.64.0.50/24", false),
            ("d", "10.64.0.1/24", true),
            ("r", "10.64.0.11/24", false),
        ],
    );
    sh(&lab, "r", "ip addr add 10.64.0.100/32 dev lo");
    sh(&lab, "r", "sysctl -qw net.ipv4.conf.all.arp_ignore=1");
    sh(&lab, "r", "sysctl -qw net.ipv4.conf.all.arp_announce=2");
    sh(&lab, "d", "ip addr add 10.64.0.100/32 dev eth0");
    let lab_bin = tool("rvs-lab");
    let mut sinks = Vec::new();
    for (addr, udp) in [
        ("0.0.0.0:80", false),
        ("0.0.0.0:81", false),
        ("0.0.0.0:53", true),
    ] {
        let mut c = netns_command(&lab, "r", &lab_bin);
        c.args(["sink", "--listen", addr]);
        if udp {
            c.arg("--udp");
        }
        sinks.push(KillOnDrop(c.spawn().expect("sink")));
    }
    let pins = Pins::new("kbackup");
    let rules = tmp.0.join("rules");
    std::fs::write(
        &rules,
        "-A -t 10.64.0.100:80 -s rr\n-a -t 10.64.0.100:80 -r 10.64.0.11:80 -g\n\
         -A -t 10.64.0.100:81 -s rr -p 300\n-a -t 10.64.0.100:81 -r 10.64.0.11:81 -g\n\
         -A -u 10.64.0.100:53 -s rr\n-a -u 10.64.0.100:53 -r 10.64.0.11:53 -g\n",
    )
    .unwrap();
    let rules = rules.display().to_string();
    let d = Rvsd::start(
        &lab,
        "d",
        &tmp.0,
        &pins.0,
        &["eth0"],
        &["--restore", &rules],
    );
    d.adm("--start-daemon master --mcast-interface eth0 --syncid 4");
    let out = tmp.0.join("uml");
    let mut run = kernel
        .spawn(Some(&lab.ns("k")), &["u0"], KERNEL_BACKUP, &out)
        .expect("boot");
    run.wait_file("ready", Duration::from_secs(60))
        .expect("the kernel's backup");
    let mut clients = Vec::new();
    for (port, cport, udp) in [
        (80, 42000, false),
        (80, 42001, false),
        (80, 42002, false),
        (81, 42010, false),
        (53, 42020, true),
    ] {
        let mut c = netns_command(&lab, "c", &lab_bin);
        c.args(["hold", "--target", &format!("10.64.0.100:{port}")])
            .args(["--bind", &format!("10.64.0.50:{cport}")])
            .args(["--packets", "5", "--hold-ms", "60000"]);
        if udp {
            c.arg("--udp");
        }
        clients.push(KillOnDrop(c.spawn().expect("client")));
    }
    // Synced on the third packet, sent within the 2 s flush.
    let t0 = Instant::now();
    let mut ours = d.adm("-Lnc");
    while set(&ours).len() < 6 && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(100));
        ours = d.adm("-Lnc");
    }
    assert_eq!(set(&ours).len(), 6, "rvs master:\n{ours}");
    std::thread::sleep(Duration::from_secs(3));
    ours = d.adm("-Lnc");
    std::fs::write(out.join("done"), "").unwrap();
    let r = run
        .wait(Duration::from_secs(60))
        .expect("the scenario ends");
    assert_eq!(r.rc, 0, "{}", r.stderr);
    let theirs = std::fs::read_to_string(out.join("kernel.txt")).unwrap();
    assert_eq!(
        set(&theirs),
        set(&ours),
        "rvs master:\n{ours}\nkernel backup:\n{theirs}\n{}",
        d.adm("--status")
    );
}

/// A child process killed when the test is done with it.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
