//! rvsadm when rvsd is there but does not serve it (issue 10): a daemon that never
//! answers is given up after `$RVS_TIMEOUT` seconds with one line and exit status 2, and
//! a user the socket refuses is told "Permission denied (you must be root)", as ipvsadm
//! says for EPERM, not that rvsd is not running.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixListener;
use std::os::unix::process::CommandExt;
use std::process::Command;
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_rvsadm");

#[test]
fn a_daemon_that_never_answers_is_given_up_after_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("mute.sock");
    let listener = UnixListener::bind(&socket).unwrap();
    // Accepts, reads the request, never answers.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    let t = Instant::now();
    let out = Command::new(BIN)
        .args(["--socket", socket.to_str().unwrap(), "-Ln"])
        .env("RVS_TIMEOUT", "1")
        .output()
        .unwrap();
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "rvsadm: lost rvsd at {}: Connection timed out (no reply within 1 s)\n",
            socket.display()
        )
    );
}

#[test]
fn a_user_the_socket_refuses_is_told_permission_denied() {
    if !rvs_testkit::require_root("rvsadm as an unprivileged user") {
        return;
    }
    // A world-readable place for the binary (the build directory may not be) and a
    // root-only socket like rvsd's, in a directory everyone may enter.
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.path().join("rvsadm");
    std::fs::copy(BIN, &bin).unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    let socket = dir.path().join("rvsd.sock");
    let _listener = UnixListener::bind(&socket).unwrap();
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o600)).unwrap();
    let out = Command::new(&bin)
        .args(["--socket", socket.to_str().unwrap(), "-Ln"])
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "rvsadm: cannot reach rvsd at {}: Permission denied (you must be root)\n",
            socket.display()
        )
    );
}
