//! A running `rvsd -f` given hostile keepalived.conf files on SIGHUP (issue 10): each
//! reload is refused, the running configuration stays, the daemon keeps answering, and
//! SIGTERM still stops it at once. Before the lexer's bounds an include of a FIFO wedged
//! the reload (and with it SIGTERM), and 150,000 nested blocks aborted the daemon.

use rvs_api::{Client, Reply, Request};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Rvsd {
    child: Child,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn wait_for(what: &str, secs: u64, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn start(dir: &Path, conf: &Path) -> Rvsd {
    let socket = dir.join("rvsd.sock");
    let log = dir.join("rvsd.log");
    let child = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--dataplane", "none", "--threads", "2", "--socket"])
        .arg(&socket)
        .arg("-f")
        .arg(conf)
        .env("RUST_LOG", "info")
        .stderr(Stdio::from(std::fs::File::create(&log).unwrap()))
        .spawn()
        .unwrap();
    wait_for("rvsd's socket", 20, || socket.exists());
    Rvsd { child, socket, log }
}

fn log_text(d: &Rvsd) -> String {
    let mut s = String::new();
    let _ = std::fs::File::open(&d.log).and_then(|mut f| f.read_to_string(&mut s));
    s
}

fn services(d: &Rvsd) -> Reply {
    let mut c =
        Client::connect(&d.socket).unwrap_or_else(|e| panic!("{e}; rvsd's log:\n{}", log_text(d)));
    c.call(&Request::ListServices { key: None }).unwrap()
}

fn signal(d: &Rvsd, sig: i32) {
    // SAFETY: signalling our own child.
    assert_eq!(unsafe { libc::kill(d.child.id() as i32, sig) }, 0);
}

const GOOD: &str = "virtual_server 127.0.77.1 80 {\n protocol TCP\n lb_kind DR\n lb_algo rr\n \
                    real_server 127.0.77.2 80 {\n  weight 3\n }\n}\n";

#[test]
fn hostile_reloads_are_refused_and_sigterm_still_stops_the_daemon() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("keepalived.conf");
    std::fs::write(&conf, GOOD).unwrap();
    let fifo = dir.path().join("pipe.conf");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path of our temporary directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);

    let mut d = start(dir.path(), &conf);
    // The socket exists before the configuration is applied: wait for its service.
    let ready = |d: &Rvsd| {
        Client::connect(&d.socket)
            .ok()
            .and_then(|mut c| c.call(&Request::ListServices { key: None }).ok())
            .is_some_and(|r| matches!(&r, Reply::Services(s) if s.len() == 1))
    };
    wait_for("the configuration to be applied", 20, || ready(&d));
    let before = services(&d);

    let n = 150_000;
    let hostile = [
        (
            GOOD.to_string() + "include pipe.conf\n",
            "not a regular file (a FIFO)",
        ),
        (
            GOOD.to_string() + "include keepalived.conf\ninclude keepalived.conf\n",
            "include cycle",
        ),
        (
            GOOD.to_string() + &"a {\n".repeat(n) + &"}\n".repeat(n),
            "blocks nested deeper than 64 levels",
        ),
        (
            GOOD.replace("weight 3", "weight 5") + "include /dev/zero\n",
            "a character device",
        ),
    ];
    for (i, (text, why)) in hostile.iter().enumerate() {
        std::fs::write(&conf, text).unwrap();
        signal(&d, libc::SIGHUP);
        wait_for(&format!("reload {i} to be refused ({why})"), 20, || {
            log_text(&d).matches("reload refused").count() > i
        });
        assert!(log_text(&d).contains(why), "{why}:\n{}", log_text(&d));
        assert!(
            d.child.try_wait().unwrap().is_none(),
            "rvsd died on reload {i}"
        );
        // Nothing of it applied (the weight change of the last one included).
        assert_eq!(services(&d), before, "reload {i} changed the table");
    }

    signal(&d, libc::SIGTERM);
    let t = Instant::now();
    wait_for("rvsd to exit on SIGTERM", 5, || {
        d.child.try_wait().unwrap().is_some()
    });
    assert!(t.elapsed() < Duration::from_secs(5));
    assert!(!d.socket.exists());
}
