//! rvsd's proxy at its open-file limit (issue: "thousands of half-open connections don't
//! exhaust file descriptors silently"). The proxy keeps a budget of descriptors under the
//! process limit: once the relays have spent it, accepting waits — clients stay in the
//! listen backlog rather than being accepted and dropped for want of a socket to the real
//! server — with one log line and the `proxy.conn_limit` counter; the relays keep working,
//! the daemon still answers its control socket, and the clients that waited are served as
//! soon as descriptors are free. Loopback only; the low limit is set on rvsd alone.

use rvs_api::{Client, Reply, Request};
use std::io::{Read, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// rvsd's open-file limit in this test (soft and hard: it cannot raise it).
const LIMIT: libc::rlim_t = 96;

struct Rvsd {
    child: Child,
    dir: PathBuf,
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

impl Rvsd {
    fn socket(&self) -> PathBuf {
        self.dir.join("rvsd.sock")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rvsd.log")).unwrap_or_default()
    }

    fn fact(&self, name: &str) -> Option<u64> {
        let mut c = Client::connect(&self.socket()).ok()?;
        match c.call(&Request::Status).ok()? {
            Reply::Status(s) => s
                .facts
                .iter()
                .find(|(k, _)| k == name)
                .and_then(|(_, v)| v.parse().ok()),
            _ => None,
        }
    }
}

/// An echo server that keeps every connection until the test ends (a thread each; the
/// test opens a few dozen).
fn echo_server() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming() {
            let Ok(mut s) = s else { return };
            std::thread::spawn(move || {
                let mut buf = [0u8; 256];
                while let Ok(n) = s.read(&mut buf) {
                    if n == 0 || s.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < limit, "timed out after {limit:?}: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Sends a line through the VIP and reads it back (bounded by the stream's timeouts).
fn echoes(s: &mut TcpStream, msg: &[u8]) -> bool {
    let mut back = vec![0u8; msg.len()];
    s.write_all(msg).is_ok() && s.read_exact(&mut back).is_ok() && back == msg
}

fn connect(vip: SocketAddr) -> TcpStream {
    let s = TcpStream::connect_timeout(&vip, Duration::from_secs(2)).expect("connect to the VIP");
    s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    s
}

fn start(dir: &Path, rules: &str) -> Rvsd {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("rules"), rules).unwrap();
    let log = std::fs::File::create(dir.join("rvsd.log")).unwrap();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvsd"));
    cmd.args(["--dataplane", "proxy", "--proxy-workers", "1", "--socket"])
        .arg(dir.join("rvsd.sock"))
        .arg("--restore")
        .arg(dir.join("rules"))
        .env("RUST_LOG", "warn")
        .env_remove("RVS_SOCKET")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log);
    // SAFETY: setrlimit(2) between fork and exec, on a valid struct; nothing is allocated.
    unsafe {
        cmd.pre_exec(|| {
            let rl = libc::rlimit {
                rlim_cur: LIMIT,
                rlim_max: LIMIT,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rl) == 0 {
                Ok(())
            } else {
                Err(std::io::Error::last_os_error())
            }
        });
    }
    let child = cmd.spawn().expect("start rvsd");
    Rvsd {
        child,
        dir: dir.to_path_buf(),
    }
}

#[test]
fn at_the_open_file_limit_clients_wait_and_are_served_when_descriptors_free() {
    let pid = std::process::id();
    let vip = SocketAddr::new(
        Ipv4Addr::new(127, 77, (pid % 250) as u8, 1).into(),
        30_000 + (pid % 20_000) as u16,
    );
    let backend = echo_server();
    let dir = std::env::temp_dir().join(format!("rvsd-fd-limit-{pid}"));
    let rvsd = start(
        &dir,
        &format!("-A -t {vip} -s rr\n-a -t {vip} -r {backend} -m -w 1\n"),
    );
    wait_for("rvsd forwards", Duration::from_secs(10), || {
        TcpStream::connect_timeout(&vip, Duration::from_millis(200))
            .ok()
            .is_some_and(|mut s| {
                s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                echoes(&mut s, b"ready\n")
            })
    });
    wait_for("the probe's relay is gone", Duration::from_secs(5), || {
        rvsd.fact("proxy.relays") == Some(0)
    });
    let budget = rvsd.fact("proxy.fd_budget").expect("proxy.fd_budget") as usize;
    let free = rvsd
        .fact("proxy.fd_budget_free")
        .expect("proxy.fd_budget_free") as usize;
    assert!(
        budget < LIMIT as usize && free >= 4,
        "a budget under the limit of {LIMIT}: {budget}, {free} free"
    );

    // Four clients more than the budget's relays (those the free descriptors allow, and
    // the one whose pair the pending accept already holds): the kernel completes their
    // handshakes in the listen backlog, rvsd relays as many as it has descriptors for.
    let relays = free / 2 + 1;
    eprintln!("open-file limit {LIMIT}: budget {budget}, {free} free, room for {relays} relays");
    let mut clients: Vec<TcpStream> = (0..relays + 4).map(|_| connect(vip)).collect();
    for (i, c) in clients.iter_mut().enumerate().take(relays) {
        assert!(
            echoes(c, b"relayed\n"),
            "client {i} of {relays} within the budget"
        );
    }
    wait_for(
        "proxy.conn_limit counts up",
        Duration::from_secs(10),
        || rvsd.fact("proxy.conn_limit").unwrap_or(0) > 0,
    );
    assert_eq!(rvsd.fact("proxy.relays"), Some(relays as u64));
    assert_eq!(rvsd.fact("proxy.fd_exhausted"), Some(0), "no accept failed");
    assert_eq!(rvsd.fact("proxy.gave_up"), Some(0), "no client was dropped");
    let log = rvsd.log();
    assert_eq!(
        log.matches("connection limit reached").count(),
        1,
        "one clear log line: {log}"
    );

    // What is relayed keeps working; the waiting clients are served once relays end.
    assert!(
        echoes(&mut clients[0], b"still here\n"),
        "a relayed connection"
    );
    let mut waiting = clients.split_off(relays);
    drop(clients);
    for (i, c) in waiting.iter_mut().enumerate() {
        c.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        assert!(
            echoes(c, b"served after the wait\n"),
            "waiting client {i}; rvsd log: {}",
            rvsd.log()
        );
    }
}
