//! A fleet: three XDP directors behind a router that spreads flows with L4-hash ECMP
//! (`fib_multipath_hash_policy=1`), each announcing the VIP to it with BGP through a real
//! BIRD 2 (`rvsd --announce-interface`, BIRD's `protocol direct`), in network namespaces
//! this test creates (deleted by name on drop; BIRD and rvsd killed by pid).
//!
//! ```text
//!  c 10.90.0.2 ── e0 [rt: BIRD, ECMP] e1 10.91.0.254 ── br0 ── d1 d2 d3 (rvsd + BIRD, XDP on eth0)
//!                                                           └─ r1 r2 r3 (DR: VIP on lo; TUN: rvs-rs decap)
//! ```
//!
//! Every director has the same keepalived.conf: mh with `mh-port` for a DR service, a TUN
//! service and a UDP service on one VIP, an rr service beside them, `sloppy_tcp=1`. What
//! must hold, with many long-lived TCP flows open through it:
//! * a director that stops (rvsd ends), is drained (`rvsadm --drain`) or loses its quorum
//!   (its health checks fail) is withdrawn from the router, and comes back when it can
//!   serve again;
//! * each time, every flow goes on: none is reset and none changes real server — the
//!   flows the router moves to another director find the same server there without any
//!   state (mh picks the same server everywhere, sloppy_tcp opens entries mid-flow);
//! * bringing the removed director back changes the real server of at most 1 % of the
//!   other flows (mh: none);
//! * changing one real server's weight moves about as many flows as Maglev must;
//! * a director killed with SIGKILL is withdrawn too (the kernel deletes its interface),
//!   and with connection sync on every director (master and backup each) the rr flows it
//!   carried keep their servers on the others.
//!
//! The figures are printed (`--nocapture`) and recorded in docs/fleet.md.

mod xdp_lab;

use rvs_testkit::netns::Lab;
use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use xdp_lab::*;

const VIP: &str = "10.92.0.100";
const CLIENT: &str = "10.90.0.2";
const DIRECTORS: [&str; 3] = ["d1", "d2", "d3"];
const SERVERS: [&str; 3] = ["r1", "r2", "r3"];
/// The TUN interface each rvsd holds its announced addresses on.
const ANNOUNCE_IF: &str = "rvs-vip";
/// Ports: DR over TCP, TUN over TCP, DR over UDP.
const DR: u16 = 9000;
const TUN: u16 = 9001;
const UDP: u16 = 9002;
/// DR over TCP scheduled with rr: a flow keeps its server on another director only
/// through connection sync (the kill test's directors sync, each master and backup).
const RR: u16 = 9003;
/// The ESTABLISHED timeout of the directors (`lvs_timeouts tcp`), seconds.
const TCP_TIMEOUT: u64 = 900;
/// Long-lived TCP flows per TCP service.
const FLOWS: usize = 180;
/// UDP flows (source ports) for the weight change.
const UDP_FLOWS: u16 = 1500;

fn director_ip(d: &str) -> String {
    format!("10.91.0.{}", &d[1..])
}

fn server_ip(r: &str) -> String {
    format!("10.91.0.1{}", &r[1..])
}

/// The directors' keepalived.conf, the same on every director. The DR service's servers
/// are health-checked (`inhibit_on_failure` keeps a failed server in the list with weight
/// 0, so every director keeps the same server order and the same Maglev table). With
/// `sync`, every director runs a sync master and backup (`lvs_sync_daemon` without a VRRP
/// instance), so each holds the others' connections.
fn keepalived_conf(sync: bool) -> String {
    let sync = if sync {
        " lvs_sync_daemon eth0 id 42\n"
    } else {
        ""
    };
    let mut s =
        format!("global_defs {{\n lvs_timeouts tcp {TCP_TIMEOUT} tcpfin 120 udp 3\n{sync}}}\n");
    for (port, kind, proto) in [
        (DR, "DR", "TCP"),
        (TUN, "TUN", "TCP"),
        (UDP, "DR", "UDP"),
        (RR, "DR", "TCP"),
    ] {
        let algo = if port == RR { "rr" } else { "mh\n mh-port" };
        s.push_str(&format!(
            "virtual_server {VIP} {port} {{\n lb_algo {algo}\n lb_kind {kind}\n protocol {proto}\n delay_loop 1\n"
        ));
        for r in SERVERS {
            s.push_str(&format!(
                " real_server {} {port} {{\n  weight 1\n",
                server_ip(r)
            ));
            if port == DR {
                s.push_str(
                    "  inhibit_on_failure\n  TCP_CHECK {\n   connect_timeout 1\n   retry 0\n  }\n",
                );
            }
            s.push_str(" }\n");
        }
        s.push_str("}\n");
    }
    s
}

/// BGP timers for a lab: sessions come up and notice a dead peer in seconds.
const BGP_TIMERS: &str = "hold time 3; keepalive time 1; connect delay time 1; connect retry time 1; error wait time 1, 2;";

fn router_bird_conf() -> String {
    let mut s = String::from(
        "router id 10.91.0.254;\n\
         protocol device { scan time 10; }\n\
         # equal routes from the directors become one multipath route\n\
         protocol kernel { ipv4 { import none; export all; }; merge paths on; }\n",
    );
    for d in DIRECTORS {
        s.push_str(&format!(
            "protocol bgp {d} {{ local 10.91.0.254 as 65000; neighbor {} as 65001; {BGP_TIMERS} ipv4 {{ import all; export none; }}; }}\n",
            director_ip(d)
        ));
    }
    s
}

fn director_bird_conf(d: &str) -> String {
    let me = director_ip(d);
    format!(
        "router id {me};\n\
         protocol device {{ scan time 10; }}\n\
         # the addresses rvsd holds on its announcing interface\n\
         protocol direct {{ ipv4; interface \"{ANNOUNCE_IF}\"; }}\n\
         protocol bgp uplink {{ local {me} as 65001; neighbor 10.91.0.254 as 65000; {BGP_TIMERS}\n\
           ipv4 {{ import none; export where source = RTS_DEVICE; }}; }}\n"
    )
}

/// BIRD in a lab namespace, with its configuration and control socket in a scratch
/// directory; killed by pid on drop.
struct Bird {
    child: Child,
    log: PathBuf,
}

impl Bird {
    fn start(lab: &Lab, ns: &str, dir: &Path, conf: &str) -> Bird {
        let cf = dir.join(format!("bird-{ns}.conf"));
        std::fs::write(&cf, conf).expect("bird.conf");
        let log = dir.join(format!("bird-{ns}.log"));
        let out = std::fs::File::create(&log).expect("bird log");
        let child = netns_command(lab, ns, Path::new("bird"))
            .arg("-f")
            .arg("-c")
            .arg(&cf)
            .arg("-s")
            .arg(dir.join(format!("bird-{ns}.ctl")))
            .arg("-P")
            .arg(dir.join(format!("bird-{ns}.pid")))
            .stdout(out.try_clone().expect("log"))
            .stderr(out)
            .spawn()
            .expect("bird");
        Bird { child, log }
    }

    fn running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!(
                "bird exited ({st}): {}",
                std::fs::read_to_string(&self.log).unwrap_or_default()
            );
        }
    }
}

impl Drop for Bird {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn topology(lab: &mut Lab, dir: &Path) {
    new_bridge(lab);
    for ns in ["c", "rt"].iter().chain(&DIRECTORS).chain(&SERVERS) {
        lab.add_ns(ns).expect("netns");
    }
    lab.veth(
        "c",
        "eth0",
        &format!("{CLIENT}/24"),
        "rt",
        "e0",
        "10.90.0.1/24",
    )
    .expect("veth");
    full_checksums(lab, "c", "eth0");
    full_checksums(lab, "rt", "e0");
    sh(lab, "c", "ip route add default via 10.90.0.1");
    bridge_port(lab, "rt", "e1", "10.91.0.254/24", "prt");
    for k in [
        "net.ipv4.ip_forward=1",
        // ECMP over the 5-tuple, not the addresses only: one client's flows spread
        "net.ipv4.fib_multipath_hash_policy=1",
    ] {
        sh(lab, "rt", &format!("sysctl -qw {k}"));
    }
    for d in DIRECTORS {
        let p = format!("p{d}");
        bridge_port(lab, d, "eth0", &format!("{}/24", director_ip(d)), &p);
        xdp_peer(lab, "sw", &p, dir);
    }
    for r in SERVERS {
        bridge_port(
            lab,
            r,
            "eth0",
            &format!("{}/24", server_ip(r)),
            &format!("p{r}"),
        );
        sh(lab, r, "ip route add default via 10.91.0.254");
    }
}

/// The directors the router sends the VIP to now (its multipath route's next hops).
fn next_hops(lab: &Lab) -> BTreeSet<String> {
    let out = lab
        .exec("rt", &["ip", "-4", "route", "show", VIP])
        .unwrap_or_default();
    out.split_whitespace()
        .collect::<Vec<_>>()
        .windows(2)
        .filter(|w| w[0] == "via")
        .filter_map(|w| DIRECTORS.iter().find(|d| director_ip(d) == w[1]))
        .map(|d| d.to_string())
        .collect()
}

fn wait_next_hops(fl: &Fleet, want: &[&str], what: &str) -> Duration {
    let want: BTreeSet<String> = want.iter().map(|s| s.to_string()).collect();
    let t = Instant::now();
    while next_hops(&fl.lab) != want {
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}: the router has {:?}\n{}",
            next_hops(&fl.lab),
            fl.diagnostics()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    t.elapsed()
}

/// TCP servers: every byte a client sends is answered with the server's name and a
/// newline. Threads inside the namespaces, stopped on drop.
struct Servers {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Servers {
    fn start(lab: &Lab) -> Servers {
        let stop = Arc::new(AtomicBool::new(false));
        let mut threads = Vec::new();
        for r in SERVERS {
            for port in [DR, TUN, RR] {
                let path = format!("/run/netns/{}", lab.ns(r));
                let stop = stop.clone();
                let (tx, rx) = std::sync::mpsc::channel();
                threads.push(std::thread::spawn(move || {
                    enter_path(&path);
                    // all addresses: the VIP on lo for traffic, eth0 for health checks
                    let l = TcpListener::bind(("0.0.0.0", port)).expect("bind");
                    l.set_nonblocking(true).expect("nonblocking");
                    tx.send(()).expect("ready");
                    while !stop.load(Ordering::Relaxed) {
                        match l.accept() {
                            Ok((s, _)) => {
                                let st = stop.clone();
                                std::thread::spawn(move || answer(s, r, &st));
                            }
                            Err(_) => std::thread::sleep(Duration::from_millis(5)),
                        }
                    }
                }));
                rx.recv_timeout(Duration::from_secs(5))
                    .expect("server ready");
            }
        }
        Servers { stop, threads }
    }
}

fn answer(mut s: TcpStream, name: &str, stop: &AtomicBool) {
    let _ = s.set_nonblocking(false);
    let _ = s.set_read_timeout(Some(Duration::from_millis(200)));
    let mut b = [0u8; 1];
    while !stop.load(Ordering::Relaxed) {
        match s.read(&mut b) {
            Ok(0) => return,
            Ok(_) => {
                if s.write_all(format!("{name}\n").as_bytes()).is_err() {
                    return;
                }
            }
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(_) => return,
        }
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

/// The client's long-lived TCP flows.
struct Flow {
    stream: TcpStream,
    sport: u16,
    dport: u16,
    /// The real server that answered first.
    server: String,
}

/// Asks once on the connection: the server's name, or what went wrong.
fn ask(s: &mut TcpStream) -> Result<String, String> {
    s.write_all(b"?").map_err(|e| format!("write: {e}"))?;
    let mut line = Vec::new();
    let mut b = [0u8; 16];
    let deadline = Instant::now() + Duration::from_secs(3);
    while !line.ends_with(b"\n") {
        if Instant::now() > deadline {
            return Err("no answer within 3 s".into());
        }
        match s.read(&mut b) {
            Ok(0) => return Err("closed".into()),
            Ok(n) => line.extend_from_slice(&b[..n]),
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                ) => {}
            Err(e) => return Err(format!("read: {e}")),
        }
    }
    Ok(String::from_utf8_lossy(&line).trim().to_string())
}

fn open_flows(lab: &Lab, port: u16, n: usize) -> Vec<Flow> {
    let to: SocketAddr = format!("{VIP}:{port}").parse().expect("addr");
    in_ns(lab, "c", move || {
        (0..n)
            .map(|i| {
                let mut stream = TcpStream::connect_timeout(&to, Duration::from_secs(3))
                    .unwrap_or_else(|e| panic!("flow {i} to {to}: {e}"));
                stream
                    .set_read_timeout(Some(Duration::from_millis(100)))
                    .expect("timeout");
                let sport = stream.local_addr().expect("local").port();
                let server = ask(&mut stream).unwrap_or_else(|e| panic!("flow {i}: {e}"));
                Flow {
                    stream,
                    sport,
                    dport: port,
                    server,
                }
            })
            .collect()
    })
}

/// One request on every flow: the flows that failed (reset, closed, silent) and those
/// that answered from another real server than at first.
#[derive(Debug, Default)]
struct Round {
    failed: Vec<(u16, String)>,
    changed: Vec<(u16, String, String)>,
}

fn round(flows: &mut [Flow]) -> Round {
    let mut r = Round::default();
    for f in flows.iter_mut() {
        match ask(&mut f.stream) {
            Ok(s) if s == f.server => {}
            Ok(s) => r.changed.push((f.sport, f.server.clone(), s)),
            Err(e) => r.failed.push((f.sport, e)),
        }
    }
    r
}

/// The director that carried each flow's last packet: of the directors running, the one
/// whose entry for it was refreshed last (the entry's timer is re-armed by each packet;
/// the others, if any, are older). The router's choice cannot be asked from outside:
/// with policy 1 it hashes a forwarded packet's L4 hash when it has one (here the
/// client socket's `sk_txhash`, on a real router the NIC's RSS hash), which `ip route
/// get` does not see.
/// The client's flows a director has entries for, as (client port, virtual port).
fn entries(r: &Rvsd) -> BTreeSet<(u16, u16)> {
    conns(r)
        .iter()
        .filter(|e| e.caddr.to_string() == CLIENT)
        .map(|e| (e.cport, e.vport))
        .collect()
}

fn conns(r: &Rvsd) -> Vec<rvs_core::ConnInfo> {
    let mut c = rvs_api::Client::connect(&r.socket).expect("control socket");
    match c.call(&rvs_api::Request::ListConns).expect("list") {
        rvs_api::Reply::Conns(conns) => conns,
        other => panic!("no connection list: {other:?}"),
    }
}

fn carriers(fl: &Fleet, flows: &[Flow]) -> Vec<String> {
    // when each entry last saw a packet, on one clock: the time of the reply less the
    // part of the ESTABLISHED timeout already run down (the timeout itself, the same for
    // every entry, left out)
    let t0 = Instant::now();
    let mut last: BTreeMap<(u16, u16), (Duration, String)> = BTreeMap::new();
    for (d, r) in &fl.rvsd {
        let conns = conns(r);
        let at = t0.elapsed();
        for e in conns.iter().filter(|e| e.caddr.to_string() == CLIENT) {
            let seen = at + Duration::from_millis(e.expires_ms);
            let k = (e.cport, e.vport);
            if last.get(&k).is_none_or(|(t, _)| seen > *t) {
                last.insert(k, (seen, d.clone()));
            }
        }
    }
    flows
        .iter()
        .map(|f| {
            last.get(&(f.sport, f.dport))
                .map_or_else(|| "none".to_string(), |(_, d)| d.clone())
        })
        .collect()
}

/// A round after a pause (so that the round's packets are the newest on any director),
/// and who carried each flow.
fn round_on(fl: &Fleet, flows: &mut [Flow]) -> (Round, Vec<String>) {
    std::thread::sleep(Duration::from_millis(300));
    let r = round(flows);
    let c = carriers(fl, flows);
    (r, c)
}

fn shares(of: &[String]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for d in of {
        *m.entry(d.clone()).or_insert(0) += 1;
    }
    m
}

/// One datagram from each source port in `ports`: the real server that answered.
fn udp_picks(lab: &Lab, ports: std::ops::Range<u16>) -> Vec<String> {
    let to: SocketAddr = format!("{VIP}:{UDP}").parse().expect("addr");
    in_ns(lab, "c", move || {
        ports
            .map(|p| {
                let s = UdpSocket::bind(("0.0.0.0", p)).expect("bind");
                s.set_read_timeout(Some(Duration::from_millis(300)))
                    .expect("timeout");
                s.connect(to).expect("connect");
                let mut buf = [0u8; 64];
                // a datagram lost to a neighbour resolution is asked again
                for _ in 0..5 {
                    s.send(b"?").expect("send");
                    if let Ok(n) = s.recv(&mut buf) {
                        let a = String::from_utf8_lossy(&buf[..n]).into_owned();
                        return a.split(':').next().unwrap_or_default().to_string();
                    }
                }
                panic!("no UDP answer for source port {p}");
            })
            .collect()
    })
}

/// The Maglev lookup table rvs-core builds for these weights (server order as in the
/// keepalived.conf), as server names slot by slot.
fn maglev_table(weights: &[u32; 3]) -> Vec<Option<String>> {
    use rvs_core::{Change, DestConfig, Forward, Protocol, SchedFlags, ServiceConfig, ServiceKey};
    let key = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: VIP.parse().unwrap(),
        port: UDP,
    };
    let mut t = rvs_core::Table::new();
    let mut cfg = ServiceConfig::new(key).with_scheduler("mh");
    cfg.sched_flags = SchedFlags(SchedFlags::SCHED2);
    t.apply(&Change::AddService(cfg)).expect("service");
    for (r, w) in SERVERS.iter().zip(weights) {
        let dest = DestConfig::new(server_ip(r).parse().unwrap(), UDP)
            .with_forward(Forward::Route)
            .with_weight(*w);
        t.apply(&Change::AddDest { svc: key, dest }).expect("dest");
    }
    let id = t.service_id(&key).expect("id");
    let names: BTreeMap<_, String> = t
        .dests_of(id)
        .iter()
        .map(|(did, d)| {
            let r = SERVERS
                .iter()
                .find(|r| server_ip(r) == d.cfg.addr.to_string())
                .expect("server");
            (did, r.to_string())
        })
        .collect();
    t.service(id)
        .and_then(|s| s.lookup_table())
        .expect("mh has a lookup table")
        .into_iter()
        .map(|slot| slot.and_then(|d| names.get(&d).cloned()))
        .collect()
}

fn moved_fraction<T: PartialEq>(a: &[T], b: &[T]) -> f64 {
    a.iter().zip(b).filter(|(x, y)| x != y).count() as f64 / a.len() as f64
}

/// The fewest flows any scheme must move when the weights change: the shares servers
/// gain.
fn minimum_movement(before: &[u32; 3], after: &[u32; 3]) -> f64 {
    let (sb, sa) = (
        before.iter().sum::<u32>() as f64,
        after.iter().sum::<u32>() as f64,
    );
    before
        .iter()
        .zip(after)
        .map(|(b, a)| (*a as f64 / sa - *b as f64 / sb).max(0.0))
        .sum()
}

struct Fleet {
    rvsd: BTreeMap<String, Rvsd>,
    birds: Vec<Bird>,
    _servers: Servers,
    _udp: Vec<UdpEcho>,
    dirs: BTreeMap<String, PathBuf>,
    pins: BTreeMap<String, Pins>,
    _rs_pins: Vec<Pins>,
    conf: PathBuf,
    tmp: Scratch,
    lab: Lab,
}

impl Fleet {
    fn start_rvsd(&mut self, d: &str) {
        let conf = self.conf.display().to_string();
        let r = Rvsd::start(
            &self.lab,
            d,
            &self.dirs[d],
            &self.pins[d].0,
            &["eth0"],
            &[
                "-f",
                &conf,
                "--announce-interface",
                ANNOUNCE_IF,
                "--sysctl",
                "sloppy_tcp=1",
            ],
        );
        self.rvsd.insert(d.to_string(), r);
    }

    /// What BIRD and the kernels say, and every log.
    fn diagnostics(&self) -> String {
        let mut s = String::new();
        for ns in ["rt"].iter().chain(&DIRECTORS) {
            let ctl = self.tmp.0.join(format!("bird-{ns}.ctl"));
            let ctl = ctl.display().to_string();
            for cmd in [
                vec!["birdc", "-s", &ctl, "show", "protocols"],
                vec!["birdc", "-s", &ctl, "show", "route"],
                vec!["ip", "addr"],
                vec!["ip", "route"],
            ] {
                s.push_str(&format!(
                    "--- [{ns}] {}\n{}\n",
                    cmd.join(" "),
                    self.lab.exec(ns, &cmd).unwrap_or_else(|e| e.to_string())
                ));
            }
        }
        s + &self.logs()
    }

    fn logs(&self) -> String {
        let mut s = String::new();
        for (d, r) in &self.rvsd {
            s.push_str(&format!("--- {d} rvsd\n{}\n", r.log_text()));
        }
        for b in &self.birds {
            s.push_str(&format!(
                "--- {}\n{}\n",
                b.log.display(),
                std::fs::read_to_string(&b.log).unwrap_or_default()
            ));
        }
        s
    }
}

fn fleet(name: &str, sync: bool) -> Option<Fleet> {
    if !prerequisites(name)
        || !rvs_testkit::require_command(name, "bird")
        || !rvs_testkit::require_command(name, "nft")
    {
        return None;
    }
    let mut lab = Lab::new();
    let tmp = Scratch::new(name);
    topology(&mut lab, &tmp.0);
    let mut rs_pins = Vec::new();
    let mut udp = Vec::new();
    for r in SERVERS {
        // the VIP on lo (DR and TUN) and tc decapsulation of IPIP (TUN)
        let p = Pins::new(&format!("decap-{r}"));
        rvs_rs(
            &lab,
            r,
            &format!(
                "--state {} tun start --vip {VIP} --interface eth0 --pin-dir {}",
                tmp.0.join(format!("{r}.state")).display(),
                p.0.display()
            ),
        );
        rs_pins.push(p);
        udp.push(UdpEcho::start(&lab, r, &format!("{VIP}:{UDP}"), r));
    }
    let servers = Servers::start(&lab);
    let conf = tmp.0.join("keepalived.conf");
    std::fs::write(&conf, keepalived_conf(sync)).expect("keepalived.conf");
    let mut birds = vec![Bird::start(&lab, "rt", &tmp.0, &router_bird_conf())];
    let mut dirs = BTreeMap::new();
    let mut pins = BTreeMap::new();
    for d in DIRECTORS {
        birds.push(Bird::start(&lab, d, &tmp.0, &director_bird_conf(d)));
        let dir = tmp.0.join(d);
        std::fs::create_dir_all(&dir).expect("dir");
        dirs.insert(d.to_string(), dir);
        pins.insert(d.to_string(), Pins::new(d));
    }
    let mut f = Fleet {
        rvsd: BTreeMap::new(),
        birds,
        _servers: servers,
        _udp: udp,
        dirs,
        pins,
        _rs_pins: rs_pins,
        conf,
        tmp,
        lab,
    };
    for d in DIRECTORS {
        f.start_rvsd(d);
    }
    for b in &mut f.birds {
        b.running();
    }
    let t = wait_next_hops(
        &f,
        &DIRECTORS,
        "the router to learn the VIP from every director",
    );
    eprintln!("fleet: the VIP has 3 next hops on the router {t:?} after the directors started");
    Some(f)
}

fn fact(r: &Rvsd, name: &str) -> String {
    r.facts().get(name).cloned().unwrap_or_default()
}

/// Every flow answered by its first real server.
fn assert_unbroken(what: &str, r: &Round, fleet: &Fleet) {
    assert!(
        r.failed.is_empty() && r.changed.is_empty(),
        "{what}: {} flows failed {:?}, {} changed real server {:?}\n{}",
        r.failed.len(),
        r.failed.iter().take(5).collect::<Vec<_>>(),
        r.changed.len(),
        r.changed.iter().take(5).collect::<Vec<_>>(),
        fleet.diagnostics()
    );
}

#[test]
fn directors_leave_and_join_the_ecmp_fleet_without_breaking_a_flow() {
    let Some(mut fl) = fleet("fleet", false) else {
        return;
    };
    let mut flows = open_flows(&fl.lab, DR, FLOWS);
    flows.extend(open_flows(&fl.lab, TUN, FLOWS));
    let n = flows.len();
    let (r, before) = round_on(&fl, &mut flows);
    assert_unbroken("at rest", &r, &fl);
    let share = shares(&before);
    eprintln!("fleet: {n} flows (DR and TUN) over the directors: {share:?}");
    // the router spreads the flows: every director carries between 1/6 and 1/2 of them
    for d in DIRECTORS {
        let c = share.get(d).copied().unwrap_or(0);
        assert!(
            c * 6 >= n && c * 2 <= n,
            "{d} carries {c} of {n} flows: {share:?}"
        );
    }
    // and keeps each flow on one director: none is listed by two (a DR and a TUN flow
    // may share a source port: a flow is its ports)
    let listed: usize = DIRECTORS
        .iter()
        .map(|d| {
            let mine = entries(&fl.rvsd[*d]);
            flows
                .iter()
                .filter(|f| mine.contains(&(f.sport, f.dport)))
                .count()
        })
        .sum();
    assert_eq!(listed, n, "every flow is listed by exactly one director");

    // 1. rvsd on d3 stops: its TUN interface goes, BIRD withdraws the VIP.
    let t = Instant::now();
    fl.rvsd.remove("d3").expect("d3").stop();
    wait_next_hops(&fl, &["d1", "d2"], "the router to drop d3");
    let withdraw = t.elapsed();
    let (r, after_stop) = round_on(&fl, &mut flows);
    assert_unbroken("d3 stopped", &r, &fl);
    let from_d3 = before.iter().filter(|d| *d == "d3").count();
    let rehashed = before
        .iter()
        .zip(&after_stop)
        .filter(|(b, a)| *b != "d3" && b != a)
        .count();
    // d3's flows went on through d1/d2, which opened entries for them mid-flow
    for (b, a) in before.iter().zip(&after_stop) {
        assert!(a == "d1" || a == "d2", "a flow of {b} went to {a}");
    }
    eprintln!(
        "fleet: rvsd on d3 stopped -> withdrawn from the router in {withdraw:?}; the {from_d3} flows of d3 moved to d1/d2, and the router's hash-threshold ECMP moved {rehashed} of the other {} between d1 and d2; flows reset: {}, flows that changed real server: {}",
        n - from_d3,
        r.failed.len(),
        r.changed.len()
    );

    // 2. d3 comes back (rvsd restarts, adopts its pinned maps, announces again).
    let t = Instant::now();
    fl.start_rvsd("d3");
    let back = t.elapsed();
    wait_next_hops(&fl, &DIRECTORS, "the router to take d3 back");
    let announce = t.elapsed();
    let (r, after_back) = round_on(&fl, &mut flows);
    let to_d3 = after_back.iter().filter(|d| *d == "d3").count();
    let stayed = after_stop
        .iter()
        .zip(&after_back)
        .filter(|(s, b)| s == b)
        .count();
    eprintln!(
        "fleet: d3 back -> rvsd ready in {back:?}, announced on the router after {announce:?}; {to_d3} flows went to d3 and {} others changed director; flows reset: {}, flows that changed real server: {}",
        n - stayed - to_d3,
        r.failed.len(),
        r.changed.len()
    );
    // at most 1 % of the flows change real server (mh: none); none is reset
    assert!(
        r.changed.len() * 100 <= n,
        "d3 back: {} of {n} flows changed real server",
        r.changed.len()
    );
    assert_unbroken("d3 back", &r, &fl);
    assert!(to_d3 * 6 >= n, "d3 carries {to_d3} of {n} flows again");
    assert_eq!(
        fact(&fl.rvsd["d3"], &format!("announce.vip.{VIP}")),
        "announced"
    );

    // 3. The operator drains d1, then undrains it.
    fl.rvsd["d1"].adm("--drain");
    let drained = wait_next_hops(&fl, &["d2", "d3"], "the router to drop drained d1");
    assert_eq!(fact(&fl.rvsd["d1"], "announce.drained"), "yes");
    assert_eq!(
        fact(&fl.rvsd["d1"], &format!("announce.vip.{VIP}")),
        "withdrawn (drained)"
    );
    let (r, c) = round_on(&fl, &mut flows);
    assert_unbroken("d1 drained", &r, &fl);
    assert!(
        !c.iter().any(|d| d == "d1"),
        "d1 still carries flows while drained"
    );
    fl.rvsd["d1"].adm("--undrain");
    let undrained = wait_next_hops(&fl, &DIRECTORS, "the router to take d1 back");
    assert_unbroken("d1 undrained", &round(&mut flows), &fl);
    eprintln!(
        "fleet: rvsadm --drain on d1 -> withdrawn in {drained:?}; --undrain -> announced in {undrained:?}; no flow reset or moved to another real server"
    );

    // 4. d2 loses its quorum: its health checks to the DR servers are dropped on the way
    // (the servers stay up for the other directors).
    let nft = |args: &[&str]| {
        fl.lab
            .exec("d2", &[&["nft"], args].concat())
            .unwrap_or_else(|e| panic!("nft {args:?}: {e}"))
    };
    nft(&["add", "table", "inet", "fleet"]);
    nft(&[
        "add", "chain", "inet", "fleet", "out", "{", "type", "filter", "hook", "output",
        "priority", "0", ";", "}",
    ]);
    nft(&[
        "add",
        "rule",
        "inet",
        "fleet",
        "out",
        "tcp",
        "dport",
        &DR.to_string(),
        "drop",
    ]);
    let lost = wait_next_hops(&fl, &["d1", "d3"], "the router to drop d2 without quorum");
    let why = fact(&fl.rvsd["d2"], &format!("announce.vip.{VIP}"));
    assert_eq!(
        why,
        format!("withdrawn (TCP {VIP}:{DR}: quorum lost)"),
        "{}",
        fl.rvsd["d2"].adm("--status")
    );
    let (r, c) = round_on(&fl, &mut flows);
    assert_unbroken("d2 without quorum", &r, &fl);
    assert!(
        !c.iter().any(|d| d == "d2"),
        "d2 still carries flows without its quorum"
    );
    nft(&["delete", "table", "inet", "fleet"]);
    let regained = wait_next_hops(
        &fl,
        &DIRECTORS,
        "the router to take d2 back with its quorum",
    );
    assert_unbroken("d2 with its quorum again", &round(&mut flows), &fl);
    eprintln!(
        "fleet: d2's health checks dropped -> quorum lost and withdrawn after {lost:?}; checks pass again -> announced after {regained:?}; no flow reset or moved to another real server"
    );
    for (d, r) in fl.rvsd.iter_mut() {
        r.running();
        let _ = d;
    }
    drop(flows);

    // 5. One real server's weight changes: r1 1 -> 2, on every director. Each UDP flow
    // (a source port) is asked before and after, with the directors' entries expired in
    // between (udp timeout 3 s): the picks are the Maglev table's, not remembered ones.
    let ports = 20000..20000 + UDP_FLOWS;
    let p1 = udp_picks(&fl.lab, ports.clone());
    for d in DIRECTORS {
        fl.rvsd[d].adm(&format!(
            "-e -u {VIP}:{UDP} -r {}:{UDP} -g -w 2",
            server_ip("r1")
        ));
    }
    wait_for(30, "the UDP entries to expire on every director", || {
        DIRECTORS
            .iter()
            .all(|d| !fl.rvsd[*d].adm("-Lnc").contains(&format!("{VIP}:{UDP} ")))
    });
    let p2 = udp_picks(&fl.lab, ports);
    let measured = moved_fraction(&p1, &p2);
    let (wb, wa) = ([1, 1, 1], [2, 1, 1]);
    let table = moved_fraction(&maglev_table(&wb), &maglev_table(&wa));
    let minimum = minimum_movement(&wb, &wa);
    let to_r1 = p1
        .iter()
        .zip(&p2)
        .filter(|(a, b)| a != b && *b == "r1")
        .count() as f64
        / p1.len() as f64;
    let r1_share = p2.iter().filter(|s| *s == "r1").count() as f64 / p2.len() as f64;
    eprintln!(
        "fleet: weight of r1 1 -> 2: {:.1} % of {UDP_FLOWS} UDP flows changed real server ({:.1} % to r1), r1 now has {:.1} %; the Maglev table moved {:.1} % of its slots; the minimum is {:.1} %",
        measured * 100.0,
        to_r1 * 100.0,
        r1_share * 100.0,
        table * 100.0,
        minimum * 100.0
    );
    // Maglev itself stays within a quarter above the minimum here, and the directors
    // follow their table: the flows move as the slots do (sampling: ±4 points).
    assert!(
        table >= minimum && table <= minimum * 1.25,
        "the Maglev table moved {table}, the minimum is {minimum}"
    );
    assert!(
        (measured - table).abs() <= 0.04,
        "{measured} of the flows moved, the table moved {table}"
    );
    assert!(
        (r1_share - 0.5).abs() <= 0.05,
        "r1 has {r1_share} of the flows with half the weight"
    );
    let _ = &fl.tmp;
}

/// A director that dies without a word (SIGKILL: no shutdown code runs) is withdrawn all
/// the same: the kernel deletes its TUN interface with the process. The directors sync
/// their connections, so flows of a scheduler that is not mh (rr) keep their server on
/// the directors that take them over.
#[test]
fn a_killed_director_is_withdrawn_by_the_kernel_and_synced_flows_go_on() {
    let Some(mut fl) = fleet("fleet-kill", true) else {
        return;
    };
    let mut rr = open_flows(&fl.lab, RR, 90);
    let n = rr.len();
    // the 3rd inbound packet of an established entry sends it (sync_threshold 3 50)
    assert_unbroken("rr flows", &round(&mut rr), &fl);
    let (r, carried) = round_on(&fl, &mut rr);
    assert_unbroken("rr flows", &r, &fl);
    let on_d2 = carried.iter().filter(|d| *d == "d2").count();
    assert!(on_d2 * 6 >= n, "d2 carries {on_d2} of {n} rr flows");
    let want: BTreeSet<(u16, u16)> = rr.iter().map(|f| (f.sport, f.dport)).collect();
    let t = Instant::now();
    wait_for(10, "every director to hold every rr flow (sync)", || {
        DIRECTORS
            .iter()
            .all(|d| entries(&fl.rvsd[*d]).is_superset(&want))
    });
    let synced = t.elapsed();
    let mut d2 = fl.rvsd.remove("d2").expect("d2");
    let t = Instant::now();
    d2.child.kill().expect("SIGKILL rvsd");
    let _ = d2.child.wait();
    let gone = wait_next_hops(&fl, &["d1", "d3"], "the router to drop the killed d2");
    eprintln!(
        "fleet: rvsd on d2 killed (SIGKILL) -> withdrawn from the router in {:?}",
        gone.max(t.elapsed())
    );
    assert!(
        fl.lab
            .exec("d2", &["ip", "link", "show", ANNOUNCE_IF])
            .is_err(),
        "the announcing interface outlived rvsd"
    );
    let mut flows = open_flows(&fl.lab, DR, 30);
    assert_unbroken("after the kill", &round(&mut flows), &fl);
    let (r, after) = round_on(&fl, &mut rr);
    assert_unbroken("rr flows after the kill", &r, &fl);
    assert!(after.iter().all(|d| d != "d2"));
    eprintln!(
        "fleet: connection sync between the directors: {n} rr flows on every director {synced:?} after the second round; d2 killed: its {on_d2} rr flows went on through d1/d3 to the same servers, none reset"
    );
    drop(d2);

    // A second rvsd cannot take a live one's interface: refused by name, nothing started.
    let sock = fl.tmp.0.join("second.sock");
    let o = netns_command(&fl.lab, "d1", Path::new(RVSD))
        .args([
            "--dataplane",
            "none",
            "--state-file",
            "none",
            "--announce-interface",
            ANNOUNCE_IF,
        ])
        .arg("--socket")
        .arg(&sock)
        .output()
        .expect("second rvsd");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success(),
        "a second rvsd announcing on {ANNOUNCE_IF} started"
    );
    assert!(
        err.contains(&format!("--announce-interface {ANNOUNCE_IF}:"))
            && err.contains("another rvsd"),
        "{err}"
    );
    assert_eq!(
        fact(&fl.rvsd["d1"], &format!("announce.vip.{VIP}")),
        "announced"
    );
    assert_eq!(next_hops(&fl.lab).len(), 2);
}

/// The interface as the speaker sees it, without a speaker: rvsd driven by rvsadm alone
/// (no keepalived.conf), IPv4 and IPv6, no data plane needed for the rule.
#[test]
fn the_interface_holds_the_vips_that_can_be_served() {
    if !rvs_testkit::require_root("fleet announce interface") {
        return;
    }
    let mut lab = Lab::new();
    lab.add_ns("d").expect("netns");
    let tmp = Scratch::new("announce");
    let state = tmp.0.join("state").display().to_string();
    let r = Rvsd::start_args(
        &lab,
        "d",
        &tmp.0,
        &[
            "--dataplane",
            "none",
            "--state-file",
            &state,
            "--announce-interface",
            ANNOUNCE_IF,
        ],
    );
    let addrs = || {
        lab.exec("d", &["ip", "-o", "addr", "show", "dev", ANNOUNCE_IF])
            .unwrap_or_default()
    };
    let wait = |want: &[&str], gone: &[&str], what: &str| {
        wait_for(5, what, || {
            let a = addrs();
            want.iter().all(|w| a.contains(&format!(" {w} ")))
                && gone.iter().all(|g| !a.contains(&format!(" {g}/")))
        })
    };
    let (v4, v6) = ("10.92.0.100", "2001:db8:92::100");
    r.adm(&format!("-A -t {v4}:80 -s mh"));
    r.adm(&format!("-A -t [{v6}]:80 -s mh"));
    // the loop has judged both (its verdict is in --status) and added neither
    let withdrawn = format!("withdrawn (TCP {v4}:80: no real server with a weight above 0)");
    wait_for(5, "the verdicts", || {
        fact(&r, &format!("announce.vip.{v4}")) == withdrawn
            && fact(&r, &format!("announce.vip.{v6}")).starts_with("withdrawn (")
    });
    assert!(
        !addrs().contains(v4) && !addrs().contains(v6),
        "{}",
        addrs()
    );
    r.adm(&format!("-a -t {v4}:80 -r 10.91.0.11:80 -g -w 1"));
    r.adm(&format!("-a -t [{v6}]:80 -r [2001:db8:91::11]:80 -g -w 1"));
    wait(
        &[&format!("{v4}/32"), &format!("{v6}/128")],
        &[],
        "both VIPs announced",
    );
    // a second service on the address without a server takes the address away
    r.adm(&format!("-A -u {v4}:53 -s mh"));
    wait(&[&format!("{v6}/128")], &[v4], "the IPv4 VIP withdrawn");
    r.adm(&format!("-a -u {v4}:53 -r 10.91.0.11:53 -g -w 1"));
    wait(&[&format!("{v4}/32")], &[], "the IPv4 VIP back");
    // weight 0 is no server to announce for
    r.adm(&format!("-e -t [{v6}]:80 -r [2001:db8:91::11]:80 -g -w 0"));
    wait(&[&format!("{v4}/32")], &[v6], "the IPv6 VIP withdrawn");
    r.adm("--drain");
    wait(&[], &[v4, v6], "everything withdrawn by the drain");
    assert_eq!(
        fact(&r, &format!("announce.vip.{v4}")),
        "withdrawn (drained)"
    );
    r.adm("--undrain");
    wait(
        &[&format!("{v4}/32")],
        &[v6],
        "the IPv4 VIP back after the drain",
    );
    r.stop();
    assert!(
        lab.exec("d", &["ip", "link", "show", ANNOUNCE_IF]).is_err(),
        "the interface outlived rvsd"
    );
}
