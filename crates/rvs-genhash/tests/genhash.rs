//! rvs-genhash prints what keepalived's genhash prints for the same URL: the MD5 of the
//! body, in hex, on one line (compared with the real genhash when it is installed).

use std::io::{Read, Write};
use std::net::TcpListener;
use std::process::Command;

/// A server answering every connection with `body` (HTTP/1.0, Content-Length).
fn serve(body: &'static [u8], conns: usize) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(conns) {
            let mut s = s.unwrap();
            let mut req = [0u8; 2048];
            let _ = s.read(&mut req);
            let _ = write!(
                s,
                "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            let _ = s.write_all(body);
        }
    });
    addr
}

fn run(prog: &str, addr: std::net::SocketAddr) -> (bool, String) {
    let out = Command::new(prog)
        .args([
            "-s",
            &addr.ip().to_string(),
            "-p",
            &addr.port().to_string(),
            "-u",
            "/health",
        ])
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
    )
}

const BODY: &[u8] = b"<html><body>all good</body></html>\n";

#[test]
fn the_digest_is_the_md5_of_the_body() {
    let addr = serve(BODY, 1);
    let (ok, out) = run(env!("CARGO_BIN_EXE_rvs-genhash"), addr);
    assert!(ok);
    // md5 of BODY, computed by `md5sum`
    assert_eq!(out, format!("{}\n", md5sum(BODY)));
}

fn md5sum(b: &[u8]) -> String {
    let mut c = Command::new("md5sum")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin.take().unwrap().write_all(b).unwrap();
    let out = c.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn same_output_as_keepalived_s_genhash() {
    if !rvs_testkit::require_command("genhash comparison", "genhash") {
        return;
    }
    let addr = serve(BODY, 2);
    let ours = run(env!("CARGO_BIN_EXE_rvs-genhash"), addr);
    let theirs = run("genhash", addr);
    assert_eq!(ours.1, theirs.1);
    assert!(ours.0);
}

#[test]
fn a_failure_says_why_and_exits_1() {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    drop(l);
    let out = Command::new(env!("CARGO_BIN_EXE_rvs-genhash"))
        .args(["-s", "127.0.0.1", "-p", &addr.port().to_string(), "-u", "/"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("refused"));
}
