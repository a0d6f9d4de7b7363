//! What rvsd holds once started (issue 10): every thread keeps only what its data plane
//! needs, the proxy plane still binds a port below 1024 after the drop, and the proxy
//! plane runs as an unprivileged user given only CAP_NET_BIND_SERVICE.

use rvs_api::{Client, Reply, Request};
use rvs_core::Change;
use rvsd::privileges::{cap, threads_of, ThreadCaps};
use std::io::{Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Rvsd {
    child: Child,
    socket: PathBuf,
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(mut cmd: Command, socket: PathBuf) -> Rvsd {
    let child = cmd.stderr(Stdio::null()).spawn().unwrap();
    let d = Rvsd { child, socket };
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect(&d.socket).is_err() {
        assert!(Instant::now() < deadline, "rvsd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    d
}

fn rvsd_cmd(bin: &Path, socket: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(bin);
    c.args(["--threads", "2", "--socket"])
        .arg(socket)
        .args(extra);
    c
}

/// Waits until every thread of `pid` satisfies `ok`; returns them.
fn threads_become(pid: u32, ok: impl Fn(&ThreadCaps) -> bool) -> Vec<(u32, ThreadCaps)> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = threads_of(pid).unwrap();
        if t.len() > 1 && t.iter().all(|(_, c)| ok(c)) {
            return t;
        }
        assert!(
            Instant::now() < deadline,
            "threads never reached it: {t:#?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

const BIND: u64 = 1 << cap::NET_BIND_SERVICE;

/// A proxied TCP service on VIP:80 to a real server the test runs; true if a connection
/// to the VIP reaches it (so the proxy could bind port 80).
fn proxies_port_80(socket: &Path, vip: &str, rs: &str) -> bool {
    let real = std::net::TcpListener::bind(format!("{rs}:0")).unwrap();
    let rs_addr = real.local_addr().unwrap();
    let key = rvs_core::ServiceKey::Addr {
        proto: rvs_core::Protocol::Tcp,
        addr: vip.parse().unwrap(),
        port: 80,
    };
    let mut c = Client::connect(socket).unwrap();
    let cfg = rvs_core::ServiceConfig::new(key).with_scheduler("rr");
    assert_eq!(
        c.call(&Request::Change(Change::AddService(cfg))).unwrap(),
        Reply::Ok
    );
    let dest = rvs_core::DestConfig::new(rs_addr.ip(), rs_addr.port())
        .with_forward(rvs_core::Forward::Masq);
    assert_eq!(
        c.call(&Request::Change(Change::AddDest { svc: key, dest }))
            .unwrap(),
        Reply::Ok
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut s = loop {
        match std::net::TcpStream::connect((vip, 80)) {
            Ok(s) => break s,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("connecting to {vip}:80: {e}"),
        }
    };
    s.write_all(b"ping").unwrap();
    real.set_nonblocking(false).unwrap();
    let (mut got, _) = real.accept().unwrap();
    got.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut b = [0u8; 4];
    got.read_exact(&mut b).is_ok() && &b == b"ping"
}

#[test]
fn every_thread_of_a_root_proxy_keeps_only_net_bind_service() {
    if !rvs_testkit::require_root("dropping capabilities") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rvsd.sock");
    let bin = Path::new(env!("CARGO_BIN_EXE_rvsd"));
    let d = spawn(
        rvsd_cmd(
            bin,
            &socket,
            &["--dataplane", "proxy", "--proxy-workers", "2"],
        ),
        socket,
    );
    let threads = threads_become(d.child.id(), |t| t.permitted == BIND);
    for (tid, t) in &threads {
        assert_eq!(t.effective, BIND, "thread {tid}");
        assert_eq!(t.inheritable | t.ambient, 0, "thread {tid}");
        assert_eq!(
            t.bounding, BIND,
            "thread {tid}: the bounding set is cut too"
        );
        assert!(t.no_new_privs, "thread {tid}");
    }
    assert!(proxies_port_80(&d.socket, "127.0.93.1", "127.0.93.2"));
    // Threads the proxy started for the new service inherited the reduced sets.
    for (tid, t) in threads_of(d.child.id()).unwrap() {
        assert_eq!(t.permitted, BIND, "thread {tid}");
    }
}

#[test]
fn with_keepalived_the_bounding_set_stays_for_root_scripts() {
    if !rvs_testkit::require_root("dropping capabilities") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(&conf, "global_defs {\n router_id t\n}\n").unwrap();
    let socket = dir.path().join("rvsd.sock");
    let bin = Path::new(env!("CARGO_BIN_EXE_rvsd"));
    let d = spawn(
        rvsd_cmd(
            bin,
            &socket,
            &["--dataplane", "none", "-f", conf.to_str().unwrap()],
        ),
        socket,
    );
    let want = [
        cap::NET_RAW,
        cap::NET_ADMIN,
        cap::SETUID,
        cap::SETGID,
        cap::KILL,
    ]
    .iter()
    .fold(0u64, |m, c| m | 1 << c);
    let threads = threads_become(d.child.id(), |t| t.permitted == want);
    let full = threads_of(0).unwrap()[0].1.bounding;
    for (tid, t) in threads {
        assert_eq!(t.effective, want, "thread {tid}");
        assert_eq!(t.bounding, full, "thread {tid}");
        assert!(!t.no_new_privs);
    }
}

#[test]
fn the_proxy_plane_runs_unprivileged_with_net_bind_service_only() {
    if !rvs_testkit::require_root("starting rvsd as another user")
        || !rvs_testkit::require_command("unprivileged rvsd", "setpriv")
    {
        return;
    }
    // The binary where user nobody may execute it, a socket directory it may write.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    let bin = dir.path().join("rvsd");
    std::fs::copy(env!("CARGO_BIN_EXE_rvsd"), &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("rvsd.sock");
    let mut cmd = Command::new("setpriv");
    cmd.args([
        "--reuid=65534",
        "--regid=65534",
        "--clear-groups",
        "--inh-caps=-all,+net_bind_service",
        "--ambient-caps=+net_bind_service",
        "--bounding-set=-all,+net_bind_service",
    ])
    .arg(&bin)
    .args(["--threads", "2", "--dataplane", "proxy", "--socket"])
    .arg(&socket);
    let d = spawn(cmd, socket);
    let threads = threads_become(d.child.id(), |t| t.permitted == BIND && t.ambient == 0);
    assert!(threads.iter().all(|(_, t)| t.effective == BIND));
    assert!(proxies_port_80(&d.socket, "127.0.93.11", "127.0.93.12"));
}
