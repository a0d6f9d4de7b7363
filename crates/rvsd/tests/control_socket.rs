//! rvsd's control socket under bad input: every malformed or oversized request gets an
//! error reply (or a closed connection) and the daemon keeps serving.

use rvs_api::{read_frame, write_frame, Client, Reply, Request, MAX_REPLY};
use rvs_core::Change;
use std::io::Write;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Rvsd {
    child: Child,
    socket: PathBuf,
    _dir: TempDir,
}

struct TempDir(PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start(extra: &[&str]) -> Rvsd {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("rvsd-test-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("sub/rvsd.sock");
    let child = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--dataplane", "none", "--socket"])
        .arg(&socket)
        .args(extra)
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !socket.exists() {
        assert!(Instant::now() < deadline, "rvsd did not create its socket");
        std::thread::sleep(Duration::from_millis(10));
    }
    Rvsd {
        child,
        socket,
        _dir: TempDir(dir),
    }
}

fn connect(p: &Path) -> UnixStream {
    let s = UnixStream::connect(p).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    s
}

fn reply(s: &mut UnixStream) -> Reply {
    serde_json::from_slice(&read_frame(s, MAX_REPLY).unwrap()).unwrap()
}

fn is_protocol_error(r: &Reply, needle: &str) -> bool {
    matches!(r, Reply::Error(e) if e.errno.is_none() && e.message.contains(needle))
}

/// A fresh client still gets an answer (within the read timeout, so a wedged daemon fails
/// the test instead of hanging it).
fn still_serves(p: &Path) {
    let mut s = connect(p);
    write_frame(&mut s, &serde_json::to_vec(&Request::Info).unwrap()).unwrap();
    assert!(matches!(reply(&mut s), Reply::Info(_)));
}

#[test]
fn socket_is_private_to_root() {
    let d = start(&[]);
    let mode = std::fs::metadata(&d.socket).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
}

#[test]
fn malformed_json_gets_an_error_and_the_connection_goes_on() {
    let d = start(&[]);
    let mut s = connect(&d.socket);
    write_frame(&mut s, b"{not json").unwrap();
    assert!(is_protocol_error(&reply(&mut s), "malformed request"));
    write_frame(&mut s, br#"{"AddService": {"bogus": 1}}"#).unwrap();
    assert!(is_protocol_error(&reply(&mut s), "malformed request"));
    // Same connection, valid request.
    write_frame(&mut s, &serde_json::to_vec(&Request::Info).unwrap()).unwrap();
    assert!(matches!(reply(&mut s), Reply::Info(_)));
}

#[test]
fn oversized_frame_is_refused_without_reading_it() {
    let d = start(&[]);
    let mut s = connect(&d.socket);
    // Announce 1 GiB, send nothing more: rvsd must answer, not allocate and wait.
    s.write_all(&(1u32 << 30).to_be_bytes()).unwrap();
    assert!(is_protocol_error(&reply(&mut s), "exceeds the limit"));
    still_serves(&d.socket);
}

#[test]
fn truncated_and_silent_clients_do_not_wedge_the_daemon() {
    let d = start(&[]);
    // A frame header promising 100 bytes, 3 delivered, connection held open.
    let mut half = connect(&d.socket);
    half.write_all(&100u32.to_be_bytes()).unwrap();
    half.write_all(b"{\"I").unwrap();
    // Many idle connections.
    let idle: Vec<UnixStream> = (0..40).map(|_| connect(&d.socket)).collect();
    still_serves(&d.socket);
    drop(half);
    drop(idle);
    still_serves(&d.socket);
}

#[test]
fn a_rejected_request_changes_nothing() {
    let d = start(&[]);
    let mut c = Client::connect(&d.socket).unwrap();
    let key = rvs_core::ServiceKey::Addr {
        proto: rvs_core::Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    };
    let cfg = rvs_core::ServiceConfig::new(key).with_scheduler("rr");
    assert_eq!(
        c.call(&Request::Change(Change::AddService(cfg.clone())))
            .unwrap(),
        Reply::Ok
    );
    let before = c.call(&Request::ListServices { key: None }).unwrap();
    let bad = [
        Request::Change(Change::AddService(cfg.clone())),
        Request::Change(Change::AddService(
            rvs_core::ServiceConfig::new(key).with_scheduler("nope"),
        )),
        Request::Change(Change::EditService(cfg.clone().with_scheduler("nope"))),
        Request::Change(Change::AddDest {
            svc: key,
            dest: rvs_core::DestConfig::new("224.0.0.1".parse().unwrap(), 80),
        }),
        Request::Change(Change::DelDest {
            svc: key,
            addr: "10.9.9.9".parse().unwrap(),
            port: 80,
        }),
        Request::Batch(vec![Request::Batch(vec![])]),
    ];
    for r in bad {
        let rep = c.call(&r).unwrap();
        let failed = match &rep {
            Reply::Error(_) => true,
            Reply::Batch(items) => items.iter().all(|i| matches!(i, Reply::Error(_))),
            _ => false,
        };
        assert!(failed, "{r:?} → {rep:?}");
    }
    assert_eq!(
        c.call(&Request::ListServices { key: None }).unwrap(),
        before
    );
}

#[test]
fn restore_file_loads_at_start_and_bad_files_stop_the_start() {
    let dir = std::env::temp_dir().join(format!("rvsd-restore-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let _guard = TempDir(dir.clone());
    let good = dir.join("good.rules");
    std::fs::write(
        &good,
        "-A -t 172.16.254.200:80 -s wrr\n-a -t 172.16.254.200:80 -r 192.168.0.18:80 -m -w 1\n",
    )
    .unwrap();
    let d = start(&["--restore", good.to_str().unwrap()]);
    let mut c = Client::connect(&d.socket).unwrap();
    match c.call(&Request::ListServices { key: None }).unwrap() {
        Reply::Services(s) => {
            assert_eq!(s.len(), 1);
            assert_eq!(s[0].cfg.scheduler, "wrr");
            assert_eq!(s[0].dests.len(), 1);
        }
        r => panic!("{r:?}"),
    }
    drop(d);

    let bad = dir.join("bad.rules");
    std::fs::write(
        &bad,
        "-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2:80 -w 70000\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--dataplane", "none", "--socket"])
        .arg(dir.join("bad.sock"))
        .arg("--restore")
        .arg(&bad)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.rules:2: "), "{err}");
    assert!(!dir.join("bad.sock").exists(), "no socket left behind");
}

#[test]
fn sigterm_stops_cleanly_and_removes_the_socket() {
    let mut d = start(&[]);
    // SAFETY: signalling our own child.
    unsafe {
        libc::kill(d.child.id() as i32, libc::SIGTERM);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = d.child.try_wait().unwrap() {
            assert!(status.success());
            break;
        }
        assert!(Instant::now() < deadline, "rvsd did not exit on SIGTERM");
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!d.socket.exists());
}
