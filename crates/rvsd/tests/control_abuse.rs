//! rvsd's control socket under abuse (issue 10), against the real daemon: idle clients
//! that would starve rvsadm, bodies announced and never sent, requests trickled in, and
//! `--socket` paths that are not ours.

use rvs_api::{Client, Reply, Request};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
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

fn rvsd(socket: &Path, extra: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_rvsd"));
    c.args(["--dataplane", "none", "--threads", "2", "--socket"])
        .arg(socket)
        .args(extra)
        .stderr(Stdio::null());
    c
}

fn start(dir: &Path) -> Rvsd {
    let socket = dir.join("rvsd.sock");
    let child = rvsd(&socket, &[]).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Client::connect(&socket).is_err() {
        assert!(Instant::now() < deadline, "rvsd did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    Rvsd { child, socket }
}

/// rvsadm's way in: connect and ask, within its own timeout.
fn serves(socket: &Path) -> bool {
    match Client::connect_timeout(socket, Duration::from_secs(5)) {
        Ok(mut c) => matches!(c.call(&Request::Info), Ok(Reply::Info(_))),
        Err(_) => false,
    }
}

#[test]
fn a_fresh_client_is_served_past_a_hundred_idle_ones() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let idle: Vec<UnixStream> = (0..100)
        .map(|_| UnixStream::connect(&d.socket).unwrap())
        .collect();
    let t = Instant::now();
    for _ in 0..10 {
        assert!(serves(&d.socket), "a fresh client was not served");
    }
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    drop(idle);
}

fn vm_size_kib(pid: u32) -> u64 {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = s.lines().find(|l| l.starts_with("VmSize:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn announced_bodies_cost_nothing_until_they_arrive() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    assert!(serves(&d.socket));
    let before = vm_size_kib(d.child.id());
    // 60 clients each announce 16 MiB (the largest request) and send one byte.
    let stalled: Vec<UnixStream> = (0..60)
        .map(|_| {
            let mut s = UnixStream::connect(&d.socket).unwrap();
            s.write_all(&(16u32 << 20).to_be_bytes()).unwrap();
            s.write_all(b"{").unwrap();
            s
        })
        .collect();
    assert!(serves(&d.socket));
    let grown_mib = vm_size_kib(d.child.id()).saturating_sub(before) / 1024;
    // Buffers at the announced size would be 960 MiB of address space.
    assert!(grown_mib < 256, "rvsd grew by {grown_mib} MiB");
    drop(stalled);
}

#[test]
fn a_request_trickled_in_is_closed_at_the_request_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let d = start(dir.path());
    let mut s = UnixStream::connect(&d.socket).unwrap();
    s.write_all(&100u32.to_be_bytes()).unwrap();
    s.set_read_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let t = Instant::now();
    let mut b = [0u8; 16];
    loop {
        // A byte every half second keeps the connection busy but never finishes it.
        let _ = s.write_all(b" ");
        match s.read(&mut b) {
            Ok(0) => break,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(_) => break,
            Ok(_) => {}
        }
        assert!(t.elapsed() < Duration::from_secs(15), "never closed");
    }
    // REQUEST_TIMEOUT is 10 s.
    assert!(t.elapsed() >= Duration::from_secs(9), "{:?}", t.elapsed());
    assert!(serves(&d.socket));
}

#[test]
fn socket_path_that_is_a_file_is_refused_and_kept() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("important.txt");
    std::fs::write(&file, "do not delete").unwrap();
    let out = rvsd(&file, &[]).stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("exists and is a regular file, not a socket: refusing to replace it"),
        "{err}"
    );
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "do not delete");
}

#[test]
fn a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rvsd.sock");
    drop(std::os::unix::net::UnixListener::bind(&socket).unwrap());
    // A child another test forks at that moment holds the listener until it execs: wait
    // until nothing listens any more.
    let deadline = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&socket).is_ok() {
        assert!(
            Instant::now() < deadline,
            "the dropped listener still accepts"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(socket.exists());
    let d = start(dir.path());
    assert!(serves(&d.socket));
}

#[test]
fn a_failed_start_leaves_no_socket() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rvsd.sock");
    let out = rvsd(&socket, &["-f", "/nonexistent/keepalived.conf"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!socket.exists(), "a failed start left its socket");
}
