//! A VRRP lab in network namespaces: one L2 segment (a bridge in its own namespace)
//! with two directors `d1` `d2` (rvsd processes with their own `-f` configuration and
//! control socket, or keepalived), a real server `rs` (a tiny HTTP server answering
//! `rs1`, run by this test process inside the namespace) and a client `c` that sends
//! HTTP requests to the VIP continuously and records what it saw.
//!
//! Everything carries the unique prefix of [`rvs_testkit::netns::Lab`] and is deleted by
//! name on drop (processes in the namespaces are killed first), also when a test fails.

#![allow(dead_code)]

use rvs_api::{Client, Reply, Request};
use rvs_testkit::netns::Lab;
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

pub const VIP: &str = "10.77.0.100";
pub const RS: &str = "10.77.0.11:8080";

/// Addresses on the segment.
pub fn addr(node: &str) -> &'static str {
    match node {
        "d1" => "10.77.0.1",
        "d2" => "10.77.0.2",
        "c" => "10.77.0.50",
        "rs" => "10.77.0.11",
        other => panic!("no node {other}"),
    }
}

/// The network tests of one binary run one at a time: they measure failover times.
pub fn serial() -> MutexGuard<'static, ()> {
    static M: Mutex<()> = Mutex::new(());
    M.lock().unwrap_or_else(|e| e.into_inner())
}

/// True when this test may run here (root, and the commands it needs).
pub fn prerequisites(what: &str, commands: &[&str]) -> bool {
    rvs_testkit::require_root(what)
        && rvs_testkit::require_command(what, "ip")
        && commands
            .iter()
            .all(|c| rvs_testkit::require_command(what, c))
}

/// Runs `f` on a thread that entered namespace `ns` (sockets it creates stay there).
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            enter(&path);
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    })
}

fn enter(path: &str) {
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    use std::os::fd::AsRawFd;
    // SAFETY: setns on a valid namespace descriptor; it only changes this thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
}

pub struct VrrpLab {
    pub lab: Lab,
    pub dir: tempfile::TempDir,
    stop: Arc<AtomicBool>,
    servers: Vec<std::thread::JoinHandle<()>>,
}

impl VrrpLab {
    /// The segment with `d1`, `d2`, `c` and `rs`, the real server answering.
    pub fn new() -> VrrpLab {
        let mut lab = Lab::new();
        lab.add_ns("sw").unwrap();
        lab.exec("sw", &["ip", "link", "add", "br0", "type", "bridge"])
            .unwrap();
        lab.exec("sw", &["ip", "link", "set", "br0", "up"]).unwrap();
        for node in ["d1", "d2", "c", "rs"] {
            lab.add_ns(node).unwrap();
            let port = format!("p{node}");
            let cidr = format!("{}/24", addr(node));
            lab.veth(node, "eth0", &cidr, "sw", &port, "").unwrap();
            lab.exec("sw", &["ip", "link", "set", &port, "master", "br0"])
                .unwrap();
        }
        let stop = Arc::new(AtomicBool::new(false));
        let listener = in_ns(&lab.ns("rs"), || TcpListener::bind(RS).unwrap());
        listener.set_nonblocking(true).unwrap();
        let s = stop.clone();
        let server = std::thread::spawn(move || serve(listener, "rs1", &s));
        VrrpLab {
            lab,
            dir: tempfile::tempdir().unwrap(),
            stop,
            servers: vec![server],
        }
    }

    /// An HTTP server on `node`'s port 80 (any address) answering `body`: what a
    /// keepalived director serves while it holds the VIP (there is no IPVS here).
    pub fn serve_local(&mut self, node: &str, body: &'static str) {
        let listener = in_ns(&self.lab.ns(node), || {
            TcpListener::bind("0.0.0.0:80").unwrap()
        });
        listener.set_nonblocking(true).unwrap();
        let s = self.stop.clone();
        self.servers
            .push(std::thread::spawn(move || serve(listener, body, &s)));
    }

    /// The full name of a lab namespace.
    pub fn ns_name(&self, node: &str) -> String {
        self.lab.ns(node)
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    /// Where rvsd in `node` writes keepalived's dumps (SIGUSR1, SIGUSR2, JSON).
    pub fn dump_dir(&self, node: &str) -> PathBuf {
        let d = self.path(&format!("{node}.dumps"));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    /// Starts rvsd in `node` with `conf` as its keepalived.conf, proxy data plane.
    pub fn rvsd(&self, node: &str, conf: &str) -> Rvsd {
        let file = self.path(&format!("{node}.conf"));
        std::fs::write(&file, conf).unwrap();
        let socket = self.path(&format!("{node}.sock"));
        let _ = std::fs::remove_file(&socket);
        let log = self.path(&format!("{node}.rvsd.log"));
        let err = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let child = self
            .lab
            .command(node, env!("CARGO_BIN_EXE_rvsd"))
            .args(["--dataplane", "proxy", "--threads", "2", "--socket"])
            .arg(&socket)
            .arg("-f")
            .arg(&file)
            .arg("--dump-dir")
            .arg(self.dump_dir(node))
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(err)
            .spawn()
            .unwrap();
        let r = Rvsd {
            child: Some(child),
            socket,
            log,
        };
        wait_until(Duration::from_secs(10), "rvsd control socket", || {
            r.socket.exists() && Client::connect(&r.socket).is_ok()
        });
        r
    }

    /// Starts keepalived (VRRP only, in the foreground, its own pid files) in `node`.
    pub fn keepalived(&self, node: &str, conf: &str) -> Keepalived {
        let file = self.path(&format!("{node}.keepalived.conf"));
        std::fs::write(&file, conf).unwrap();
        let log = self.path(&format!("{node}.keepalived.log"));
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap();
        let pid = |n: &str| self.path(&format!("{node}.{n}.pid"));
        let child = self
            .lab
            .command(node, "keepalived")
            .args(["-n", "-l", "-D", "--vrrp", "-f"])
            .arg(&file)
            .arg("-p")
            .arg(pid("keepalived"))
            .arg("-r")
            .arg(pid("vrrp"))
            .arg("-c")
            .arg(pid("checkers"))
            .stdin(Stdio::null())
            .stdout(out.try_clone().unwrap())
            .stderr(out)
            .spawn()
            .unwrap();
        Keepalived {
            child: Some(child),
            log,
            pid_files: ["keepalived", "vrrp", "checkers"]
                .iter()
                .map(|n| pid(n))
                .collect(),
        }
    }

    /// The VIP is configured on `node`'s interface.
    pub fn has_vip(&self, node: &str) -> bool {
        self.lab
            .exec(node, &["ip", "-4", "-o", "addr", "show", "dev", "eth0"])
            .is_ok_and(|o| o.contains(&format!(" {VIP}/")))
    }

    /// Starts the client: a request every 20 ms (new connection, 300 ms to connect,
    /// 1 s to answer) until [`ClientRun::stop`].
    pub fn client(&self) -> ClientRun {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let (s, out) = (stop.clone(), samples.clone());
        let ns = format!("/var/run/netns/{}", self.lab.ns("c"));
        let handle = std::thread::spawn(move || {
            enter(&ns);
            let target: SocketAddr = format!("{VIP}:80").parse().unwrap();
            while !s.load(Ordering::Relaxed) {
                let start = Instant::now();
                let body = fetch(target);
                out.lock().unwrap().push(Sample {
                    start,
                    end: Instant::now(),
                    body,
                });
                std::thread::sleep(Duration::from_millis(20));
            }
        });
        ClientRun {
            stop,
            samples,
            handle: Some(handle),
        }
    }
}

impl Drop for VrrpLab {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        for h in self.servers.drain(..) {
            let _ = h.join();
        }
        if std::thread::panicking() {
            // Leave the daemons' logs where a failing test can be understood.
            for e in std::fs::read_dir(self.dir.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let p = e.path();
                if p.extension().is_some_and(|x| x == "log") {
                    let text = std::fs::read_to_string(&p).unwrap_or_default();
                    let tail: Vec<&str> = text.lines().rev().take(40).collect();
                    eprintln!("==== {} (last lines)", p.display());
                    for l in tail.iter().rev() {
                        eprintln!("{l}");
                    }
                }
            }
        }
    }
}

/// A real server: answers every request with `body`.
fn serve(l: TcpListener, body: &'static str, stop: &AtomicBool) {
    while !stop.load(Ordering::Relaxed) {
        match l.accept() {
            Ok((mut s, _)) => {
                let _ = s.set_nonblocking(false);
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                std::thread::spawn(move || {
                    let mut buf = [0u8; 2048];
                    let mut head = Vec::new();
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf) {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}\n",
                        body.len() + 1
                    );
                    let _ = s.write_all(resp.as_bytes());
                });
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
}

fn fetch(target: SocketAddr) -> Option<String> {
    let mut s = TcpStream::connect_timeout(&target, Duration::from_millis(300)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(1))).ok()?;
    s.write_all(b"GET / HTTP/1.1\r\nHost: vip\r\nConnection: close\r\n\r\n")
        .ok()?;
    let mut resp = String::new();
    s.read_to_string(&mut resp).ok()?;
    let body = resp.split("\r\n\r\n").nth(1)?;
    Some(body.trim().to_string()).filter(|b| !b.is_empty())
}

pub struct Sample {
    pub start: Instant,
    pub end: Instant,
    pub body: Option<String>,
}

pub struct ClientRun {
    stop: Arc<AtomicBool>,
    samples: Arc<Mutex<Vec<Sample>>>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl ClientRun {
    /// Successful answers from `server` so far.
    pub fn answers_from(&self, server: &str) -> usize {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.body.as_deref() == Some(server))
            .count()
    }

    /// Waits for `n` more answers from `server`.
    pub fn wait_answers_from(&self, server: &str, n: usize, within: Duration) {
        let base = self.answers_from(server);
        wait_until(within, &format!("answers from {server}"), || {
            self.answers_from(server) >= base + n
        });
    }

    /// Successful answers so far.
    pub fn successes(&self) -> usize {
        self.samples
            .lock()
            .unwrap()
            .iter()
            .filter(|s| s.body.is_some())
            .count()
    }

    /// Waits for `n` more successes.
    pub fn wait_successes(&self, n: usize, within: Duration) {
        let base = self.successes();
        wait_until(within, "client answers", || self.successes() >= base + n);
    }

    /// The client-visible outage after `since`: from the start of the first failed
    /// request to the end of the first success after it (zero if nothing failed).
    pub fn gap_after(&self, since: Instant) -> Duration {
        let v = self.samples.lock().unwrap();
        let Some(fail) = v.iter().position(|s| s.start >= since && s.body.is_none()) else {
            return Duration::ZERO;
        };
        let back = v[fail..]
            .iter()
            .find(|s| s.body.is_some())
            .expect("the client never got an answer again");
        back.end - v[fail].start
    }

    pub fn stop(mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for ClientRun {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Polls `cond` every 10 ms until it holds; panics after `within`.
pub fn wait_until(within: Duration, what: &str, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < within,
            "timed out after {within:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

pub struct Rvsd {
    child: Option<Child>,
    pub socket: PathBuf,
    pub log: PathBuf,
}

impl Rvsd {
    pub fn facts(&self) -> HashMap<String, String> {
        let Ok(mut c) = Client::connect(&self.socket) else {
            return HashMap::new();
        };
        match c.call(&Request::Status) {
            Ok(Reply::Status(s)) => s.facts.into_iter().collect(),
            _ => HashMap::new(),
        }
    }

    pub fn fact(&self, name: &str) -> Option<String> {
        self.facts().remove(name)
    }

    /// `vrrp.<instance>.state`.
    pub fn state(&self, instance: &str) -> Option<String> {
        self.fact(&format!("vrrp.{instance}.state"))
    }

    pub fn counter(&self, name: &str) -> u64 {
        self.fact(name).and_then(|v| v.parse().ok()).unwrap_or(0)
    }

    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM and wait for the exit.
    pub fn term(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
            panic!("rvsd did not exit on SIGTERM");
        }
    }

    /// SIGHUP: reload the configuration file.
    pub fn hup(&self) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGHUP) };
        }
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        self.kill9();
    }
}

pub struct Keepalived {
    child: Option<Child>,
    pub log: PathBuf,
    /// Its pid files (main, VRRP child, checker child).
    pid_files: Vec<PathBuf>,
}

impl Keepalived {
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGTERM (keepalived sends priority 0) and wait for it and its children to exit.
    pub fn term(&mut self) {
        if let Some(mut c) = self.child.take() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = c.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends SIGTERM without waiting (keepalived sends priority 0 at once, then takes its
    /// time to exit; [`Self::term`] waits).
    pub fn signal_term(&self) {
        if let Some(c) = &self.child {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(c.id() as i32, libc::SIGTERM) };
        }
    }

    /// A crash: SIGKILL to every process of the namespace at once (keepalived's VRRP
    /// child would otherwise notice its parent's death and stop cleanly).
    pub fn kill9(&mut self, lab: &Lab, node: &str) {
        if let Ok(out) = Command::new("ip")
            .args(["netns", "pids", &lab.ns(node)])
            .output()
        {
            let pids: Vec<i32> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect();
            for &p in &pids {
                // SAFETY: killing processes of our own lab namespace.
                unsafe { libc::kill(p, libc::SIGKILL) };
            }
            // The VRRP child is reparented, and reaped by whoever adopts it: until then
            // it exists (as a zombie) and a new keepalived finding its pid file would say
            // "daemon is already running". Wait for them to be dead, then remove the
            // pid files as a rebooted machine would not have them either.
            wait_until(
                Duration::from_secs(5),
                "killed keepalived processes gone",
                || {
                    pids.iter().all(
                        |p| match std::fs::read_to_string(format!("/proc/{p}/stat")) {
                            Err(_) => true,
                            Ok(stat) => stat
                                .rsplit_once(')')
                                .is_some_and(|(_, rest)| rest.trim_start().starts_with(['Z', 'X'])),
                        },
                    )
                },
            );
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
        for f in &self.pid_files {
            let _ = std::fs::remove_file(f);
        }
    }
}

impl Drop for Keepalived {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// The keepalived.conf of a director: seed 000/003's instance on `eth0` with the lab's
/// VIP, and a `virtual_server` for it (NAT to the real server) when `with_service`.
pub fn conf(
    state: &str,
    priority: u8,
    version: u8,
    advert_int: &str,
    with_service: bool,
) -> String {
    let auth = if version == 2 {
        "    authentication {\n        auth_type PASS\n        auth_pass 1111\n    }\n"
    } else {
        ""
    };
    let mut s = format!(
        "vrrp_instance VI_1 {{\n    state {state}\n    interface eth0\n    virtual_router_id 51\n\
         \x20   priority {priority}\n    advert_int {advert_int}\n    version {version}\n{auth}\
         \x20   virtual_ipaddress {{\n        {VIP}\n    }}\n}}\n"
    );
    if with_service {
        let (ip, port) = RS.split_once(':').unwrap();
        s.push_str(&format!(
            "virtual_server {VIP} 80 {{\n    delay_loop 1\n    lb_algo rr\n    lb_kind NAT\n\
             \x20   protocol TCP\n    real_server {ip} {port} {{\n        weight 1\n\
             \x20       TCP_CHECK {{\n            connect_timeout 1\n        }}\n    }}\n}}\n"
        ));
    }
    s
}

/// The IPv6 flavour of [`conf`]: VRRPv3 for `VIP6`, VRRP only.
pub fn conf6(state: &str, priority: u8) -> String {
    format!(
        "vrrp_instance VI_6 {{\n    state {state}\n    interface eth0\n    virtual_router_id 61\n\
         \x20   priority {priority}\n    advert_int 1\n    virtual_ipaddress {{\n        {VIP6}/64\n    }}\n}}\n"
    )
}

pub const VIP6: &str = "fd00:77::100";

/// Gives every node an IPv6 address on the segment and waits until no address is
/// tentative any more (link-local ones included: they are the sources of IPv6 adverts).
pub fn ipv6(lab: &VrrpLab) {
    for (node, a) in [
        ("d1", "fd00:77::1"),
        ("d2", "fd00:77::2"),
        ("c", "fd00:77::50"),
    ] {
        lab.lab
            .exec(
                node,
                &[
                    "ip",
                    "-6",
                    "addr",
                    "add",
                    &format!("{a}/64"),
                    "dev",
                    "eth0",
                    "nodad",
                ],
            )
            .unwrap();
    }
    wait_until(Duration::from_secs(10), "IPv6 addresses out of DAD", || {
        ["d1", "d2", "c"].iter().all(|n| {
            lab.lab
                .exec(n, &["ip", "-6", "addr", "show", "dev", "eth0", "tentative"])
                .is_ok_and(|o| o.trim().is_empty())
        })
    });
}

impl VrrpLab {
    /// `VIP6` is configured on `node`.
    pub fn has_vip6(&self, node: &str) -> bool {
        self.lab
            .exec(node, &["ip", "-6", "-o", "addr", "show", "dev", "eth0"])
            .is_ok_and(|o| o.contains(&format!(" {VIP6}/")))
    }

    /// The MAC of `node`'s eth0.
    pub fn mac(&self, node: &str) -> String {
        self.lab
            .exec(node, &["cat", "/sys/class/net/eth0/address"])
            .unwrap()
            .trim()
            .to_string()
    }

    /// The link-layer address the client's neighbour table has for `ip`.
    pub fn client_neighbour(&self, ip: &str) -> Option<String> {
        let out = self.lab.exec("c", &["ip", "neigh", "show", ip]).ok()?;
        let mut words = out.split_whitespace();
        words.find(|w| *w == "lladdr")?;
        words.next().map(str::to_string)
    }
}

pub fn log_of(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_default()
}
