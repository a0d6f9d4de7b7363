//! Hitless failover: two XDP directors with VRRP between them and keepalived's
//! `lvs_sync_daemon`, in network namespaces this test creates (deleted by name on drop).
//!
//! Segment A (bridge br0): the client, both directors' eth0, the DR real servers r1 and r2
//! (the VIP on their loopback). Segment B (br1): both directors' eth1 and the NAT real
//! servers r3 and r4, whose default route is a second VRRP address. The master syncs its
//! connection table to the backup. Mid-transfer the master's links go down, as when a
//! machine dies: the backup takes the addresses over and forwards every flow to the same
//! real server. Then the old master comes back and takes over again (preemption).
//!
//! What must hold: long transfers through DR and NAT end byte-exact without a reset,
//! across both moves (and one started on the backup survives the move back); persistent
//! clients keep their real server; the backup lists the master's entries in `rvsadm -Lnc`
//! before the failover. The client-visible gaps are printed (docs/sync.md records them).

mod xdp_lab;

use rvs_testkit::netns::Lab;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use xdp_lab::*;

const VIP: &str = "10.70.1.100";
const GW: &str = "10.70.2.254";

/// The directors' keepalived.conf: VRRP, `lvs_sync_daemon` when `sync`, the services
/// (the DR transfer service scheduled by `sched`).
fn conf(priority: u8, sync: bool, sched: &str) -> String {
    let state = if priority > 100 { "MASTER" } else { "BACKUP" };
    let rs = |addr: &str, port: u16| format!("  real_server {addr} {port} {{\n   weight 1\n  }}\n");
    let vs = |port: u16, kind: &str, persist: bool, servers: &[(&str, u16)]| {
        let algo = if port == 9000 { sched } else { "rr" };
        let mut s = format!(
            "virtual_server {VIP} {port} {{\n lb_algo {algo}\n lb_kind {kind}\n protocol TCP\n"
        );
        if persist {
            s.push_str(" persistence_timeout 300\n");
        }
        for (a, p) in servers {
            s.push_str(&rs(a, *p));
        }
        s.push_str("}\n");
        s
    };
    let global = if sync {
        "global_defs {\n lvs_sync_daemon eth0 VI_1\n}\n"
    } else {
        ""
    };
    format!(
        "{global}\
         vrrp_instance VI_1 {{\n state {state}\n interface eth0\n virtual_router_id 51\n \
         priority {priority}\n advert_int 1\n virtual_ipaddress {{\n  {VIP}/24 dev eth0\n  \
         {GW}/24 dev eth1\n }}\n}}\n{}{}{}{}",
        vs(80, "DR", true, &[("10.70.1.11", 80), ("10.70.1.12", 80)]),
        vs(
            9000,
            "DR",
            false,
            &[("10.70.1.11", 9000), ("10.70.1.12", 9000)]
        ),
        vs(
            8080,
            "NAT",
            false,
            &[("10.70.2.13", 9000), ("10.70.2.14", 9000)]
        ),
        vs(8081, "NAT", true, &[("10.70.2.13", 80), ("10.70.2.14", 80)]),
    )
}

fn topology(lab: &mut Lab, dir: &Path) {
    lab.add_ns("sw").expect("netns");
    for br in ["br0", "br1"] {
        sh(lab, "sw", &format!("ip link add {br} type bridge"));
        sh(lab, "sw", &format!("ip link set {br} up"));
    }
    for ns in ["c", "d1", "d2", "r1", "r2", "r3", "r4"] {
        lab.add_ns(ns).expect("netns");
    }
    let port =
        |lab: &Lab, ns: &str, ifname: &str, addr: &str, p: &str, br: &str, director: bool| {
            lab.veth(ns, ifname, addr, "sw", p, "").expect("veth");
            full_checksums(lab, ns, ifname);
            full_checksums(lab, "sw", p);
            sh(lab, "sw", &format!("ip link set {p} master {br}"));
            if director {
                xdp_peer(lab, "sw", p, dir);
            }
        };
    port(lab, "c", "eth0", "10.70.1.50/24", "pc", "br0", false);
    for (i, d) in ["d1", "d2"].iter().enumerate() {
        port(
            lab,
            d,
            "eth0",
            &format!("10.70.1.{}/24", i + 1),
            &format!("p{d}a"),
            "br0",
            true,
        );
        port(
            lab,
            d,
            "eth1",
            &format!("10.70.2.{}/24", i + 1),
            &format!("p{d}b"),
            "br1",
            true,
        );
    }
    for (i, r) in ["r1", "r2"].iter().enumerate() {
        port(
            lab,
            r,
            "eth0",
            &format!("10.70.1.1{}/24", i + 1),
            &format!("p{r}"),
            "br0",
            false,
        );
        // LVS/DR: the VIP on lo, never answered for on the wire
        sh(lab, r, &format!("ip addr add {VIP}/32 dev lo"));
        for k in [
            "net.ipv4.conf.all.arp_ignore=1",
            "net.ipv4.conf.all.arp_announce=2",
        ] {
            sh(lab, r, &format!("sysctl -qw {k}"));
        }
    }
    for (i, r) in ["r3", "r4"].iter().enumerate() {
        port(
            lab,
            r,
            "eth0",
            &format!("10.70.2.1{}/24", i + 3),
            &format!("p{r}"),
            "br1",
            false,
        );
        sh(lab, r, &format!("ip route add default via {GW}"));
    }
}

/// Deterministic payload bytes: the n-th byte of every stream.
fn byte_at(n: u64) -> u8 {
    let mut x = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xD1B5_4A32_D192_ED03;
    x ^= x >> 29;
    x = x.wrapping_mul(0xBF58_476D_1CE4_E5B9);
    (x >> 32) as u8
}

/// Servers on threads inside their namespaces, stopped on drop.
struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Servers {
    fn new() -> Servers {
        Servers {
            stop: Arc::new(AtomicBool::new(false)),
            threads: Vec::new(),
        }
    }

    fn listen(
        &mut self,
        lab: &Lab,
        ns: &str,
        addr: &str,
        serve: fn(TcpStream, &'static str, &AtomicBool),
        name: &'static str,
    ) {
        let path = format!("/run/netns/{}", lab.ns(ns));
        let addr: SocketAddr = addr.parse().unwrap();
        let stop = self.stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        self.threads.push(std::thread::spawn(move || {
            enter_path(&path);
            let l = TcpListener::bind(addr).expect("bind");
            l.set_nonblocking(true).unwrap();
            tx.send(()).unwrap();
            while !stop.load(Ordering::Relaxed) {
                match l.accept() {
                    Ok((s, _)) => {
                        s.set_nonblocking(false).unwrap();
                        let st = stop.clone();
                        std::thread::spawn(move || serve(s, name, &st));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(5)),
                }
            }
        }));
        rx.recv_timeout(Duration::from_secs(5))
            .expect("server ready");
    }
}

impl Drop for Servers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Answers with its name and closes.
fn name_server(mut s: TcpStream, name: &'static str, _stop: &AtomicBool) {
    let _ = s.write_all(format!("{name}\n").as_bytes());
}

/// Streams deterministic bytes in frames ([len u32][bytes]) every 10 ms until the client
/// sends a byte, then an end frame (length 0) with the total and closes.
fn stream_server(mut s: TcpStream, _name: &'static str, stop: &AtomicBool) {
    s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
    let mut sent = 0u64;
    let mut probe = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut probe) {
            Ok(0) => return,
            Ok(_) => {
                let mut end = 0u32.to_be_bytes().to_vec();
                end.extend_from_slice(&sent.to_be_bytes());
                let _ = s.write_all(&end);
                return;
            }
            Err(_) => {}
        }
        let chunk: Vec<u8> = (sent..sent + 4096).map(byte_at).collect();
        let mut frame = (chunk.len() as u32).to_be_bytes().to_vec();
        frame.extend_from_slice(&chunk);
        if s.write_all(&frame).is_err() {
            return;
        }
        sent += chunk.len() as u64;
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// A long transfer from the client: reads and checks every byte until told to finish.
struct Transfer {
    finish: Arc<AtomicBool>,
    received: Arc<AtomicU64>,
    /// The longest wait for data (the flow's client-visible gap).
    longest_gap: Arc<Mutex<Duration>>,
    handle: Option<std::thread::JoinHandle<Result<u64, String>>>,
}

impl Transfer {
    fn start(lab: &Lab, to: &str) -> Transfer {
        let path = format!("/run/netns/{}", lab.ns("c"));
        let to: SocketAddr = to.parse().unwrap();
        let finish = Arc::new(AtomicBool::new(false));
        let received = Arc::new(AtomicU64::new(0));
        let longest_gap = Arc::new(Mutex::new(Duration::ZERO));
        let (f, r, g) = (finish.clone(), received.clone(), longest_gap.clone());
        let handle = std::thread::spawn(move || -> Result<u64, String> {
            enter_path(&path);
            let mut s = TcpStream::connect_timeout(&to, Duration::from_secs(3))
                .map_err(|e| format!("connect {to}: {e}"))?;
            s.set_read_timeout(Some(Duration::from_millis(100)))
                .unwrap();
            let mut buf: Vec<u8> = Vec::new();
            let mut got = 0u64;
            let mut last = Instant::now();
            let mut asked = false;
            let mut tmp = [0u8; 65536];
            loop {
                if f.load(Ordering::Relaxed) && !asked {
                    s.write_all(b"E")
                        .map_err(|e| format!("asking for the end: {e}"))?;
                    asked = true;
                }
                match s.read(&mut tmp) {
                    Ok(0) => return Err(format!("closed after {got} bytes without an end frame")),
                    Ok(n) => {
                        let now = Instant::now();
                        let mut gap = g.lock().unwrap();
                        *gap = (*gap).max(now - last);
                        last = now;
                        buf.extend_from_slice(&tmp[..n]);
                    }
                    Err(e)
                        if matches!(
                            e.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ) =>
                    {
                        if last.elapsed() > Duration::from_secs(30) {
                            return Err(format!("no data for 30 s after {got} bytes"));
                        }
                        continue;
                    }
                    Err(e) => return Err(format!("after {got} bytes: {e}")),
                }
                // frames
                loop {
                    if buf.len() < 4 {
                        break;
                    }
                    let len = u32::from_be_bytes(buf[..4].try_into().unwrap()) as usize;
                    if len == 0 {
                        if buf.len() < 12 {
                            break;
                        }
                        let total = u64::from_be_bytes(buf[4..12].try_into().unwrap());
                        if total != got {
                            return Err(format!("server sent {total} bytes, {got} arrived"));
                        }
                        return Ok(got);
                    }
                    if buf.len() < 4 + len {
                        break;
                    }
                    for (i, b) in buf[4..4 + len].iter().enumerate() {
                        if *b != byte_at(got + i as u64) {
                            return Err(format!("byte {} differs", got + i as u64));
                        }
                    }
                    got += len as u64;
                    r.store(got, Ordering::Relaxed);
                    buf.drain(..4 + len);
                }
            }
        });
        Transfer {
            finish,
            received,
            longest_gap,
            handle: Some(handle),
        }
    }

    fn received(&self) -> u64 {
        self.received.load(Ordering::Relaxed)
    }

    /// Asks for the end and waits for it; the bytes checked.
    fn finish(mut self) -> Result<u64, String> {
        self.finish.store(true, Ordering::Relaxed);
        self.handle.take().unwrap().join().expect("transfer thread")
    }
}

/// When a probe started and who answered it.
type Probes = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

/// Short connections to a persistent service every 100 ms: who answered, when.
struct Prober {
    stop: Arc<AtomicBool>,
    log: Probes,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl Prober {
    fn start(lab: &Lab, to: &str) -> Prober {
        let path = format!("/run/netns/{}", lab.ns("c"));
        let to: SocketAddr = to.parse().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let log = Arc::new(Mutex::new(Vec::new()));
        let (s, l) = (stop.clone(), log.clone());
        let handle = std::thread::spawn(move || {
            enter_path(&path);
            while !s.load(Ordering::Relaxed) {
                let t = Instant::now();
                let answer = TcpStream::connect_timeout(&to, Duration::from_millis(300))
                    .ok()
                    .and_then(|mut c| {
                        c.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
                        let mut out = String::new();
                        c.read_to_string(&mut out).ok()?;
                        Some(out.trim().to_string()).filter(|x| !x.is_empty())
                    });
                l.lock().unwrap().push((t, answer));
                std::thread::sleep(Duration::from_millis(100));
            }
        });
        Prober {
            stop,
            log,
            handle: Some(handle),
        }
    }

    fn answers(&self) -> Vec<String> {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, a)| a.clone())
            .collect()
    }

    /// The longest time without an answer, from a failed probe to the next answer.
    fn longest_gap(&self) -> Duration {
        let l = self.log.lock().unwrap();
        let mut worst = Duration::ZERO;
        let mut down: Option<Instant> = None;
        for (t, a) in l.iter() {
            match (a, down) {
                (None, None) => down = Some(*t),
                (Some(_), Some(d)) => {
                    worst = worst.max(*t - d);
                    down = None;
                }
                _ => {}
            }
        }
        worst
    }

    fn wait_answers(&self, n: usize, within: Duration) {
        let base = self.answers().len();
        wait_for(within.as_secs(), "persistent client answers", || {
            self.answers().len() >= base + n
        });
    }

    fn stop(mut self) -> Self {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
        self
    }
}

fn has_vip(lab: &Lab, node: &str) -> bool {
    lab.exec(node, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
        .is_ok_and(|o| o.contains(&format!(" {VIP}/")))
}

fn links(lab: &Lab, node: &str, up: bool) {
    for i in ["eth0", "eth1"] {
        sh(
            lab,
            node,
            &format!("ip link set {i} {}", if up { "up" } else { "down" }),
        );
    }
}

/// Both directors running, d1 the VRRP master; fields drop in order (rvsd first, the
/// namespaces last).
struct Directors {
    d1: Rvsd,
    d2: Rvsd,
    _servers: Servers,
    _pins: (Pins, Pins),
    _tmp: Scratch,
    lab: Lab,
}

fn directors(name: &str, sync: bool, sched: &str, extra: &[&str]) -> Option<Directors> {
    if !prerequisites(name) {
        return None;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new(name);
    topology(&mut lab, &tmp.0);
    let mut servers = Servers::new();
    for r in ["r1", "r2"] {
        servers.listen(&lab, r, &format!("{VIP}:80"), name_server, leak(r));
        servers.listen(&lab, r, &format!("{VIP}:9000"), stream_server, leak(r));
    }
    for (r, addr) in [("r3", "10.70.2.13"), ("r4", "10.70.2.14")] {
        servers.listen(&lab, r, &format!("{addr}:80"), name_server, leak(r));
        servers.listen(&lab, r, &format!("{addr}:9000"), stream_server, leak(r));
    }
    let pins = (Pins::new("d1"), Pins::new("d2"));
    let start = |node: &str, prio: u8, pins: &Pins| {
        let f = tmp.0.join(format!("{node}.conf"));
        std::fs::write(&f, conf(prio, sync, sched)).unwrap();
        let f = f.display().to_string();
        let dir = tmp.0.join(node);
        std::fs::create_dir_all(&dir).unwrap();
        let mut args = vec!["-f", f.as_str()];
        args.extend_from_slice(extra);
        Rvsd::start(&lab, node, &dir, &pins.0, &["eth0", "eth1"], &args)
    };
    let d1 = start("d1", 150, &pins.0);
    let d2 = start("d2", 100, &pins.1);
    wait_for(15, "d1 to become master", || has_vip(&lab, "d1"));
    assert!(!has_vip(&lab, "d2"));
    Some(Directors {
        d1,
        d2,
        _servers: servers,
        _pins: pins,
        _tmp: tmp,
        lab,
    })
}

fn leak(s: &str) -> &'static str {
    Box::leak(s.to_string().into_boxed_str())
}

#[test]
fn flows_survive_failover_and_the_move_back_byte_exact() {
    let Some(ds) = directors("sync failover", true, "rr", &[]) else {
        return;
    };
    let (lab, d1, d2) = (&ds.lab, &ds.d1, &ds.d2);
    let dr = Transfer::start(lab, &format!("{VIP}:9000"));
    let nat = Transfer::start(lab, &format!("{VIP}:8080"));
    let p_dr = Prober::start(lab, &format!("{VIP}:80"));
    let p_nat = Prober::start(lab, &format!("{VIP}:8081"));
    wait_for(10, "traffic", || {
        dr.received() > 200_000 && nat.received() > 200_000
    });
    // The backup lists the master's connections and templates before anything fails.
    let synced = |d: &Rvsd| {
        let l = d.adm("-Lnc");
        l.contains(":9000 ") && l.contains(":8080 ") && l.matches("10.70.1.50:0 ").count() >= 2
    };
    let t0 = Instant::now();
    while !synced(d2) {
        assert!(
            t0.elapsed() < Duration::from_secs(10),
            "the backup does not hold the master's entries\n--- d1 -Lnc\n{}\n--- d2 -Lnc\n{}\n--- d1 status\n{}\n--- d2 status\n{}\n--- d1 log\n{}\n--- d2 log\n{}",
            d1.adm("-Lnc"),
            d2.adm("-Lnc"),
            d1.adm("--status"),
            d2.adm("--status"),
            d1.log_text(),
            d2.log_text()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let backup_list = d2.adm("-Lnc");
    assert!(backup_list.contains("ESTABLISHED"), "{backup_list}");
    p_dr.wait_answers(5, Duration::from_secs(5));
    p_nat.wait_answers(5, Duration::from_secs(5));

    // The master dies.
    let died = Instant::now();
    let at_death = (dr.received(), nat.received());
    links(lab, "d1", false);
    wait_for(15, "d2 to take over", || has_vip(lab, "d2"));
    let takeover = died.elapsed();
    p_dr.wait_answers(5, Duration::from_secs(15));
    p_nat.wait_answers(5, Duration::from_secs(15));
    wait_for(20, "the transfers to go on through d2", || {
        dr.received() > at_death.0 + 200_000 && nat.received() > at_death.1 + 200_000
    });
    // A flow that only d2 has seen, to cross the move back.
    let late = Transfer::start(lab, &format!("{VIP}:9000"));
    wait_for(10, "the late transfer", || late.received() > 100_000);
    // d1 must hold it before it takes over again: it syncs as a backup meanwhile.
    let back = Instant::now();
    links(lab, "d1", true);
    wait_for(20, "d1 to take the addresses back", || {
        has_vip(lab, "d1") && !has_vip(lab, "d2")
    });
    let at_back = (dr.received(), nat.received(), late.received());
    wait_for(20, "the transfers to go on through d1", || {
        dr.received() > at_back.0 + 200_000
            && nat.received() > at_back.1 + 200_000
            && late.received() > at_back.2 + 200_000
    });
    let gaps = (
        *dr.longest_gap.lock().unwrap(),
        *nat.longest_gap.lock().unwrap(),
        *late.longest_gap.lock().unwrap(),
    );
    let p_dr = p_dr.stop();
    let p_nat = p_nat.stop();
    let r_dr = dr.finish();
    let r_nat = nat.finish();
    let r_late = late.finish();
    eprintln!(
        "failover: VIP on d2 after {takeover:?}; move back took {:?}; longest data gaps: DR {:?}, NAT {:?}, late DR {:?}; persistent probes' longest outage: DR {:?}, NAT {:?}",
        back.elapsed(),
        gaps.0,
        gaps.1,
        gaps.2,
        p_dr.longest_gap(),
        p_nat.longest_gap()
    );
    for (what, r) in [("DR", &r_dr), ("NAT", &r_nat), ("late DR", &r_late)] {
        match r {
            Ok(n) => assert!(*n > 600_000, "{what}: only {n} bytes"),
            Err(e) => panic!(
                "{what} transfer: {e}\n--- d1 log\n{}\n--- d2 log\n{}",
                d1.log_text(),
                d2.log_text()
            ),
        }
    }
    for (what, p) in [("DR", &p_dr), ("NAT", &p_nat)] {
        let a = p.answers();
        assert!(a.len() > 20, "{what}: {} answers", a.len());
        assert!(
            a.iter().all(|x| *x == a[0]),
            "{what}: the persistent client changed server: {a:?}"
        );
    }
}

/// Without connection sync: both directors schedule the DR service with mh (the same
/// real server for a flow on both) and open entries for mid-flow segments (`sloppy_tcp`),
/// so the new master picks up a transfer it never saw, to the same server. Without
/// sloppy_tcp its first segment would find no entry and the new master's stack would
/// reset the connection.
#[test]
fn mh_and_sloppy_tcp_take_over_dr_flows_without_state() {
    let Some(ds) = directors(
        "stateless takeover",
        false,
        "mh",
        &["--sysctl", "sloppy_tcp=1"],
    ) else {
        return;
    };
    let (lab, d2) = (&ds.lab, &ds.d2);
    let dr = Transfer::start(lab, &format!("{VIP}:9000"));
    wait_for(10, "traffic", || dr.received() > 200_000);
    assert!(
        !d2.adm("-Lnc").contains(":9000 "),
        "no sync: d2 knows nothing"
    );
    links(lab, "d1", false);
    wait_for(15, "d2 to take over", || has_vip(lab, "d2"));
    let at = dr.received();
    wait_for(20, "the transfer to go on through d2", || {
        dr.received() > at + 200_000
    });
    let l = d2.adm("-Lnc");
    assert!(l.contains(":9000 "), "d2 made an entry mid-flow:\n{l}");
    match dr.finish() {
        Ok(n) => assert!(n > 400_000, "{n} bytes"),
        Err(e) => panic!("DR transfer: {e}\n--- d2 log\n{}", d2.log_text()),
    }
}
