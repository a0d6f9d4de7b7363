//! What the XDP end-to-end labs share: scratch directories and bpffs pins removed on
//! drop, commands in a lab namespace, veth/bridge plumbing the XDP director needs on
//! veths (full checksums, XDP_PASS peers), deterministic payloads, a UDP echo, and rvsd
//! as a process.

#![allow(dead_code)]

use rvs_testkit::netns::Lab;
use std::net::{SocketAddr, UdpSocket};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub const RVSD: &str = env!("CARGO_BIN_EXE_rvsd");

pub fn prerequisites(what: &str) -> bool {
    rvs_testkit::require_root(what)
        && rvs_testkit::require_command(what, "nginx")
        && rvs_testkit::require_command(what, "curl")
        && rvs_testkit::require_command(what, "ethtool")
}

/// A binary of another package (rvsadm, rvs-rs, rvs-lab) from rvsd's target directory, (re)built
/// first so it is current: cargo test builds only this package's binaries.
pub fn tool(name: &str) -> PathBuf {
    static BUILT: std::sync::Once = std::sync::Once::new();
    let dir = Path::new(RVSD).parent().expect("target dir");
    BUILT.call_once(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let st = Command::new(cargo)
            .args([
                "build",
                "--quiet",
                "-p",
                "rvsadm",
                "-p",
                "rvs-rs",
                "-p",
                "rvs-testkit",
            ])
            .status()
            .expect("running cargo build for rvsadm, rvs-rs and rvs-lab");
        assert!(st.success(), "building rvsadm, rvs-rs and rvs-lab failed");
    });
    let bin = dir.join(name);
    assert!(bin.is_file(), "{name} missing in {}", dir.display());
    bin
}

/// rvsd (this package's, carrying this very data plane) and rvsadm.
pub fn daemon_bins() -> (PathBuf, PathBuf) {
    (PathBuf::from(RVSD), tool("rvsadm"))
}

pub static N: AtomicU32 = AtomicU32::new(0);

/// A scratch directory, removed on drop.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!(
            "rvs-e2e-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&p).expect("scratch dir");
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A bpffs directory removed (unpinned) on drop, whatever the test left in it.
pub struct Pins(pub PathBuf);

impl Pins {
    pub fn new(name: &str) -> Pins {
        Pins(PathBuf::from(format!(
            "/sys/fs/bpf/rvs-test-e2e-{}-{}-{name}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        )))
    }
}

impl Drop for Pins {
    fn drop(&mut self) {
        let _ = rvs_xdp::loader::unpin_all(&self.0);
    }
}

/// A command that runs in namespace `ns` by joining only its network namespace. `ip netns
/// exec` would also give it a private mount namespace with a fresh /sys, hiding the
/// bpffs at /sys/fs/bpf: pins made there would vanish with the process.
pub fn netns_command(lab: &Lab, ns: &str, program: &Path) -> Command {
    use std::os::fd::AsRawFd;
    use std::os::unix::process::CommandExt;
    let path = format!("/run/netns/{}", lab.ns(ns));
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let mut cmd = Command::new(program);
    // SAFETY: setns is async-signal-safe; the fd stays open in the parent until spawn.
    unsafe {
        let fd = f.as_raw_fd();
        cmd.pre_exec(move || {
            if libc::setns(fd, libc::CLONE_NEWNET) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    // keep the namespace file open as long as the command
    std::mem::forget(f);
    cmd
}

pub fn sh(lab: &Lab, ns: &str, cmd: &str) -> String {
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    lab.exec(ns, &argv)
        .unwrap_or_else(|e| panic!("[{ns}] {cmd}: {e}"))
}

/// Polls `f` every 50 ms for at most `secs`.
pub fn wait_for(secs: u64, what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if f() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("timed out waiting for {what}");
}

/// veth offloads: a veth hands its peer TCP/UDP checksums as "partial" (to be completed
/// by a NIC that never comes), also for segments it splits from a GRO/GSO aggregate. XDP
/// forwards frames, not skbs, so such a frame would reach the next host with an unfinished
/// checksum. Real NICs deliver complete checksums; on the test veths every sender (hosts
/// and bridge ports) computes them itself.
pub fn full_checksums(lab: &Lab, ns: &str, ifname: &str) {
    sh(lab, ns, &format!("ethtool -K {ifname} tx off"));
}

/// A host in namespace `ns` on the bridge in namespace "sw".
pub fn bridge_port(lab: &Lab, ns: &str, ifname: &str, addr: &str, port: &str) {
    lab.veth(ns, ifname, addr, "sw", port, "").expect("veth");
    full_checksums(lab, ns, ifname);
    full_checksums(lab, "sw", port);
    sh(lab, "sw", &format!("ip link set {port} master br0"));
}

/// A veth delivers frames another veth's native XDP program sends into it only when it
/// runs XDP itself: the peers of the director's interfaces get an XDP_PASS program.
pub fn xdp_peer(lab: &Lab, ns: &str, ifname: &str, dir: &Path) {
    let obj = dir.join("xdp_pass.o");
    if !obj.exists() {
        std::fs::write(&obj, rvs_xdp::object::pass()).expect("xdp_pass.o");
    }
    let o = obj.display().to_string();
    lab.exec(
        ns,
        &[
            "ip", "link", "set", "dev", ifname, "xdp", "obj", &o, "sec", "xdp",
        ],
    )
    .unwrap_or_else(|e| panic!("[{ns}] XDP_PASS on {ifname}: {e}"));
}

pub fn new_bridge(lab: &mut Lab) {
    lab.add_ns("sw").expect("netns");
    sh(lab, "sw", "ip link add br0 type bridge");
    sh(lab, "sw", "ip link set br0 up");
}

/// Deterministic bytes for the large file.
pub fn big_file(len: usize) -> Vec<u8> {
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// nginx in a namespace, serving `name` at / and a large file at /big.bin.
pub fn nginx(lab: &Lab, ns: &str, dir: &Path, name: &str, ports: &[u16], big: &[u8]) -> Child {
    let www = dir.join("www");
    std::fs::create_dir_all(&www).expect("www");
    std::fs::create_dir_all(dir.join("tmp")).expect("tmp");
    std::fs::write(www.join("index.html"), format!("{name}\n")).expect("index");
    std::fs::write(www.join("big.bin"), big).expect("big");
    let listens: String = ports.iter().map(|p| format!("listen {p}; ")).collect();
    let d = dir.display();
    let conf = format!(
        "user root; worker_processes 1; daemon off; pid {d}/nginx.pid; error_log {d}/error.log;\n\
         events {{ worker_connections 256; }}\n\
         http {{ access_log off; keepalive_timeout 120s; client_body_temp_path {d}/tmp; proxy_temp_path {d}/tmp;\n\
         fastcgi_temp_path {d}/tmp; uwsgi_temp_path {d}/tmp; scgi_temp_path {d}/tmp;\n\
         server {{ {listens} root {d}/www; }} }}\n"
    );
    let cf = dir.join("nginx.conf");
    std::fs::write(&cf, conf).expect("nginx.conf");
    let child = lab
        .command(ns, "nginx")
        .arg("-p")
        .arg(dir)
        .arg("-c")
        .arg(&cf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("nginx");
    for p in ports {
        let url = format!("http://127.0.0.1:{p}/");
        wait_for(10, &format!("nginx {name}:{p}"), || {
            lab.exec(ns, &["curl", "-s", "--max-time", "1", &url])
                .is_ok_and(|b| b.trim() == name)
        });
    }
    child
}

/// A UDP server on a thread inside a namespace: answers `NAME:payload`.
pub struct UdpEcho {
    stop: Arc<AtomicBool>,
    handle: Option<std::thread::JoinHandle<()>>,
}

impl UdpEcho {
    pub fn start(lab: &Lab, ns: &str, bind: &str, name: &str) -> UdpEcho {
        let path = format!("/run/netns/{}", lab.ns(ns));
        let bind: SocketAddr = bind.parse().expect("bind");
        let name = name.to_string();
        let stop = Arc::new(AtomicBool::new(false));
        let s2 = stop.clone();
        let (tx, rx) = std::sync::mpsc::channel();
        let handle = std::thread::spawn(move || {
            enter_path(&path);
            let sock = UdpSocket::bind(bind).expect("udp bind");
            sock.set_read_timeout(Some(Duration::from_millis(100)))
                .expect("timeout");
            tx.send(()).expect("ready");
            let mut buf = [0u8; 2048];
            while !s2.load(Ordering::Relaxed) {
                if let Ok((n, from)) = sock.recv_from(&mut buf) {
                    let mut r = format!("{name}:").into_bytes();
                    r.extend_from_slice(&buf[..n]);
                    let _ = sock.send_to(&r, from);
                }
            }
        });
        rx.recv_timeout(Duration::from_secs(5))
            .expect("udp server ready");
        UdpEcho {
            stop,
            handle: Some(handle),
        }
    }
}

impl Drop for UdpEcho {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

pub fn enter_path(path: &str) {
    use std::os::fd::AsRawFd;
    let f = std::fs::File::open(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns on an open namespace fd, for this thread only.
    assert_eq!(unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) }, 0);
}

/// Runs `f` on a thread inside namespace `ns` and returns its result.
pub fn in_ns<T: Send + 'static>(lab: &Lab, ns: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let path = format!("/run/netns/{}", lab.ns(ns));
    std::thread::spawn(move || {
        enter_path(&path);
        f()
    })
    .join()
    .expect("thread in namespace")
}

/// One UDP request from the client namespace; the answer.
pub fn udp_ask(lab: &Lab, ns: &str, to: &str, sport: u16, payload: &str) -> String {
    let to: SocketAddr = to.parse().expect("addr");
    let payload = payload.to_string();
    in_ns(lab, ns, move || {
        let bind: SocketAddr = if to.is_ipv4() {
            format!("0.0.0.0:{sport}")
        } else {
            format!("[::]:{sport}")
        }
        .parse()
        .expect("bind");
        let s = UdpSocket::bind(bind).expect("client bind");
        s.set_read_timeout(Some(Duration::from_secs(3)))
            .expect("timeout");
        s.connect(to).expect("connect");
        s.send(payload.as_bytes()).expect("send");
        let mut buf = [0u8; 2048];
        let n = s.recv(&mut buf).expect("udp answer");
        String::from_utf8_lossy(&buf[..n]).into_owned()
    })
}

pub fn curl(lab: &Lab, ns: &str, url: &str) -> String {
    lab.exec(ns, &["curl", "-s", "--max-time", "10", url])
        .unwrap_or_else(|e| panic!("curl {url}: {e}"))
        .trim()
        .to_string()
}

/// A running rvsd in the director namespace.
pub struct Rvsd {
    pub child: Child,
    pub socket: PathBuf,
    pub log: PathBuf,
    pub rvsadm: PathBuf,
}

impl Rvsd {
    /// rvsd with the XDP data plane on `ifaces`, its pins in `pins`.
    pub fn start(
        lab: &Lab,
        ns: &str,
        dir: &Path,
        pins: &Path,
        ifaces: &[&str],
        extra: &[&str],
    ) -> Rvsd {
        let mut args: Vec<String> = vec!["--dataplane".into(), "xdp".into()];
        for i in ifaces {
            args.extend(["--interface".to_string(), i.to_string()]);
        }
        args.extend([
            "--xdp-pin-dir".to_string(),
            pins.display().to_string(),
            "--xdp-conn-max".to_string(),
            "65536".to_string(),
        ]);
        args.extend(extra.iter().map(|a| a.to_string()));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        Self::start_args(lab, ns, dir, &args)
    }

    /// rvsd with these arguments (besides its socket).
    pub fn start_args(lab: &Lab, ns: &str, dir: &Path, args: &[&str]) -> Rvsd {
        let (rvsd, rvsadm) = daemon_bins();
        let socket = dir.join("rvsd.sock");
        let log = dir.join(format!("rvsd-{}.log", N.fetch_add(1, Ordering::Relaxed)));
        let mut cmd = netns_command(lab, ns, &rvsd);
        cmd.arg("--socket").arg(&socket).args(args);
        let f = std::fs::File::create(&log).expect("log");
        let child = cmd
            .env("RUST_LOG", "info,rvs_xdp=debug")
            .stdout(f.try_clone().expect("log"))
            .stderr(f)
            .spawn()
            .expect("rvsd");
        let mut r = Rvsd {
            child,
            socket,
            log,
            rvsadm,
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(st)) = r.child.try_wait() {
                panic!("rvsd exited ({st}): {}", r.log_text());
            }
            if std::os::unix::net::UnixStream::connect(&r.socket).is_ok() {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "rvsd did not come up: {}",
                r.log_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        r
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Panics with rvsd's log if it has exited.
    pub fn running(&mut self) {
        if let Ok(Some(st)) = self.child.try_wait() {
            panic!("rvsd exited ({st}): {}", self.log_text());
        }
    }

    /// `rvsadm --status`: the facts by name.
    pub fn facts(&self) -> std::collections::HashMap<String, String> {
        self.adm("--status")
            .lines()
            .filter_map(|l| l.split_once(": "))
            .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
            .collect()
    }

    /// A numeric fact of `rvsadm --status`.
    pub fn fact(&self, name: &str) -> u64 {
        let f = self.facts();
        let v = f
            .get(name)
            .unwrap_or_else(|| panic!("no fact {name} in {f:?}"));
        v.parse()
            .unwrap_or_else(|_| panic!("fact {name} is not a number: {v}"))
    }

    pub fn adm(&self, args: &str) -> String {
        let o = Command::new(&self.rvsadm)
            .arg("--socket")
            .arg(&self.socket)
            .args(args.split_whitespace())
            .output()
            .expect("rvsadm");
        assert!(
            o.status.success(),
            "rvsadm {args}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
        String::from_utf8_lossy(&o.stdout).into_owned()
    }

    /// SIGTERM and wait (bounded).
    pub fn stop(mut self) {
        // SAFETY: signalling our own child.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            // SAFETY: signalling our own child.
            unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
            for _ in 0..200 {
                if let Ok(Some(_)) = self.child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One L2 segment (bridge in "sw"): client 10.30.0.2, director 10.30.0.1 (+ VIP
/// 10.30.0.100), servers 10.30.0.11-13 with the VIP on lo.
pub fn segment_topology(lab: &mut Lab, dir: &Path) {
    for ns in ["c", "d", "r1", "r2", "r3"] {
        lab.add_ns(ns).expect("netns");
    }
    new_bridge(lab);
    bridge_port(lab, "c", "eth0", "10.30.0.2/24", "sc");
    bridge_port(lab, "d", "d0", "10.30.0.1/24", "sd");
    xdp_peer(lab, "sw", "sd", dir);
    sh(lab, "d", "ip addr add 10.30.0.100/32 dev d0");
    for (i, r) in ["r1", "r2", "r3"].iter().enumerate() {
        bridge_port(
            lab,
            r,
            "eth0",
            &format!("10.30.0.1{}/24", i + 1),
            &format!("s{r}"),
        );
    }
}

pub fn rvs_rs(lab: &Lab, ns: &str, args: &str) -> String {
    let o = netns_command(lab, ns, &tool("rvs-rs"))
        .args(args.split_whitespace())
        .output()
        .expect("rvs-rs");
    assert!(
        o.status.success(),
        "[{ns}] rvs-rs {args}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// NAT topology: client 10.10.0.2 -- d0 10.10.0.1 [director] d1 10.20.0.1 -- bridge --
/// servers 10.20.0.11-13 (default route via the director). VIP 10.10.0.100 on d0.
pub fn nat_topology(lab: &mut Lab, dir: &Path) {
    for ns in ["c", "d", "r1", "r2", "r3"] {
        lab.add_ns(ns).expect("netns");
    }
    new_bridge(lab);
    lab.veth("c", "eth0", "10.10.0.2/24", "d", "d0", "10.10.0.1/24")
        .expect("veth");
    xdp_peer(lab, "c", "eth0", dir);
    full_checksums(lab, "c", "eth0");
    full_checksums(lab, "d", "d0");
    sh(lab, "c", "ip route add default via 10.10.0.1");
    sh(lab, "d", "ip addr add 10.10.0.100/32 dev d0");
    lab.veth("d", "d1", "10.20.0.1/24", "sw", "sd1", "")
        .expect("veth");
    sh(lab, "sw", "ip link set sd1 master br0");
    xdp_peer(lab, "sw", "sd1", dir);
    full_checksums(lab, "sw", "sd1");
    full_checksums(lab, "d", "d1");
    for (i, r) in ["r1", "r2", "r3"].iter().enumerate() {
        bridge_port(
            lab,
            r,
            "eth0",
            &format!("10.20.0.1{}/24", i + 1),
            &format!("s{r}"),
        );
        sh(lab, r, "ip route add default via 10.20.0.1");
    }
}

/// A download with curl from namespace `ns` into `out` (60 s at most); its bytes.
pub fn download(lab: &Lab, ns: &str, url: &str, out: &Path) -> Vec<u8> {
    let o = out.display().to_string();
    lab.exec(ns, &["curl", "-s", "--max-time", "60", "-o", &o, url])
        .unwrap_or_else(|e| panic!("download {url}: {e}"));
    std::fs::read(out).unwrap_or_else(|e| panic!("{}: {e}", out.display()))
}
