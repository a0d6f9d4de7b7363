//! rvsd as an operator runs it: keepalived's signals and dump files, PID files, systemd's
//! notify protocol (a fake notify socket), the table surviving a restart, and log lines
//! fit for a file or the journal. The proxy-less `--dataplane none` keeps these tests
//! unprivileged; the checkers probe loopback.

use rvs_api::{Client, Reply, Request};
use rvs_core::{DestConfig, Protocol, ServiceConfig, ServiceKey};
use std::collections::HashMap;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Rvsd {
    child: Option<Child>,
    dir: PathBuf,
    socket: PathBuf,
    log: PathBuf,
}

impl Drop for Rvsd {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn tempdir() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let d = std::env::temp_dir().join(format!("rvsd-ops-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn wait_for(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Rvsd {
    fn start_in(dir: PathBuf, extra: &[&str], env: &[(&str, &Path)]) -> Rvsd {
        let socket = dir.join("rvsd.sock");
        let log = dir.join("rvsd.log");
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvsd"));
        cmd.args(["--dataplane", "none", "--socket"])
            .arg(&socket)
            .arg("--dump-dir")
            .arg(&dir)
            .args(extra)
            .env_remove("NOTIFY_SOCKET")
            .env_remove("JOURNAL_STREAM")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let child = cmd.spawn().unwrap();
        let mut d = Rvsd {
            child: Some(child),
            dir,
            socket,
            log,
        };
        let s = d.socket.clone();
        wait_for("the control socket", Duration::from_secs(10), || {
            if let Some(st) = d.child.as_mut().unwrap().try_wait().unwrap() {
                panic!("rvsd exited {st}: {}", d.log_text());
            }
            s.exists()
        });
        d
    }

    /// Waits for the log's "rvsd ready": the socket answers before keepalived.conf is in
    /// the table (and before a restart has removed what the file no longer has).
    fn ready(&self) {
        wait_for("rvsd ready", Duration::from_secs(10), || {
            self.log_text().contains("rvsd ready")
        });
    }

    fn start(extra: &[&str]) -> Rvsd {
        Rvsd::start_in(tempdir(), extra, &[])
    }

    fn pid(&self) -> i32 {
        self.child.as_ref().unwrap().id() as i32
    }

    fn signal(&self, sig: i32) {
        // SAFETY: signalling our own child.
        assert_eq!(unsafe { libc::kill(self.pid(), sig) }, 0);
    }

    fn alive(&mut self) -> bool {
        self.child.as_mut().unwrap().try_wait().unwrap().is_none()
    }

    /// SIGTERM and wait: the exit status.
    fn stop(&mut self) -> std::process::ExitStatus {
        self.signal(libc::SIGTERM);
        let mut c = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "rvsd did not stop on SIGTERM");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn client(&self) -> Client {
        Client::connect(&self.socket).unwrap()
    }
}

fn key(port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "127.0.60.1".parse().unwrap(),
        port,
    }
}

fn services(c: &mut Client) -> Vec<rvs_core::ServiceInfo> {
    match c.call(&Request::ListServices { key: None }).unwrap() {
        Reply::Services(s) => s,
        r => panic!("{r:?}"),
    }
}

fn checker_conf(rs: std::net::SocketAddr) -> String {
    format!(
        "virtual_server 127.0.60.100 80 {{\n protocol TCP\n lb_kind NAT\n lb_algo rr\n delay_loop 0.2\n warmup 0\n\
         real_server {} {} {{\n  weight 2\n  TCP_CHECK {{\n   connect_timeout 0.3\n  }}\n }}\n}}\n",
        rs.ip(),
        rs.port()
    )
}

#[test]
fn keepalived_signals_write_their_dumps_and_kill_nothing() {
    let mut d = Rvsd::start(&[]);
    let json = libc::SIGRTMIN() + 2;
    for (sig, file) in [
        (libc::SIGUSR1, "keepalived.data"),
        (libc::SIGUSR1, "keepalived_check.data"),
        (libc::SIGUSR2, "keepalived.stats"),
        (json, "keepalived.json"),
    ] {
        d.signal(sig);
        let p = d.dir.join(file);
        wait_for(file, Duration::from_secs(5), || p.exists());
    }
    let j: serde_json::Value =
        serde_json::from_slice(&std::fs::read(d.dir.join("keepalived.json")).unwrap()).unwrap();
    assert!(j.is_array(), "{j}");
    let data = std::fs::read_to_string(d.dir.join("keepalived.data")).unwrap();
    assert!(data.starts_with("------< VRRP Topology >------"), "{data}");
    // signals whose default action ends a process
    for sig in [
        libc::SIGALRM,
        libc::SIGPIPE,
        libc::SIGPWR,
        libc::SIGIO,
        libc::SIGPROF,
        libc::SIGVTALRM,
        libc::SIGRTMIN(),
        libc::SIGRTMIN() + 5,
        libc::SIGRTMAX() - 1,
        libc::SIGRTMAX(),
    ] {
        d.signal(sig);
    }
    // still serving after all of them
    std::thread::sleep(Duration::from_millis(300));
    assert!(d.alive(), "rvsd died: {}", d.log_text());
    assert!(matches!(
        d.client().call(&Request::Info).unwrap(),
        Reply::Info(_)
    ));
    assert!(d.stop().success());
}

#[test]
fn signum_prints_keepalived_s_numbers() {
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--signum=JSON")
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "36");
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .arg("--signum=NOPE")
        .output()
        .unwrap();
    assert!(!out.status.success());
}

#[test]
fn pid_files_are_written_refuse_a_second_daemon_and_go_on_exit() {
    let l = std::net::TcpListener::bind("127.0.60.2:0").unwrap();
    let dir = tempdir();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(l.local_addr().unwrap())).unwrap();
    let main_pid = dir.join("run/keepalived.pid");
    let check_pid = dir.join("run/checkers.pid");
    let vrrp_pid = dir.join("run/vrrp.pid");
    let args = [
        "-n",
        "-f",
        conf.to_str().unwrap(),
        "-p",
        main_pid.to_str().unwrap(),
        "-c",
        check_pid.to_str().unwrap(),
        "-r",
        vrrp_pid.to_str().unwrap(),
    ];
    let mut d = Rvsd::start_in(dir.clone(), &args, &[]);
    wait_for("the PID files", Duration::from_secs(5), || {
        main_pid.exists() && check_pid.exists()
    });
    let me = d.pid().to_string();
    assert_eq!(std::fs::read_to_string(&main_pid).unwrap().trim(), me);
    assert_eq!(std::fs::read_to_string(&check_pid).unwrap().trim(), me);
    // no VRRP instance in the file: no VRRP PID file
    assert!(!vrrp_pid.exists());

    // a second daemon with the same PID file refuses to start
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--dataplane", "none", "--state-file", "none", "--socket"])
        .arg(dir.join("other.sock"))
        .arg("-p")
        .arg(&main_pid)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("is running"), "{err}");
    assert_eq!(std::fs::read_to_string(&main_pid).unwrap().trim(), me);

    assert!(d.stop().success());
    assert!(!main_pid.exists() && !check_pid.exists());
}

/// A fake `$NOTIFY_SOCKET`: what rvsd tells systemd, in order.
struct Notify {
    sock: UnixDatagram,
    path: PathBuf,
}

impl Notify {
    fn new(dir: &Path) -> Notify {
        let path = dir.join("notify.sock");
        let sock = UnixDatagram::bind(&path).unwrap();
        sock.set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        Notify { sock, path }
    }

    /// The next message that has `key`; fails after the timeout.
    fn expect(&self, key: &str) -> String {
        let mut buf = [0u8; 4096];
        loop {
            let n = self
                .sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no {key} from rvsd: {e}"));
            let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
            if msg.lines().any(|l| l == key) {
                return msg;
            }
        }
    }
}

#[test]
fn systemd_hears_ready_reloading_and_stopping() {
    let dir = tempdir();
    let n = Notify::new(&dir);
    let l = std::net::TcpListener::bind("127.0.60.3:0").unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(l.local_addr().unwrap())).unwrap();
    let mut d = Rvsd::start_in(
        dir.clone(),
        &["-f", conf.to_str().unwrap()],
        &[("NOTIFY_SOCKET", &n.path)],
    );
    let ready = n.expect("READY=1");
    // READY comes once the configuration is in the table
    assert!(ready.contains("STATUS="), "{ready}");
    assert_eq!(services(&mut d.client()).len(), 1);
    d.signal(libc::SIGHUP);
    let reloading = n.expect("RELOADING=1");
    assert!(reloading.contains("MONOTONIC_USEC="), "{reloading}");
    n.expect("READY=1");
    d.signal(libc::SIGTERM);
    n.expect("STOPPING=1");
    assert!(d.stop_after_term().success());
}

impl Rvsd {
    fn stop_after_term(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            assert!(Instant::now() < deadline, "rvsd did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

#[test]
fn rules_added_with_rvsadm_survive_a_restart() {
    let dir = tempdir();
    let mut a = Rvsd::start_in(dir.clone(), &[], &[]);
    let mut c = a.client();
    let k = key(80);
    assert_eq!(
        c.call(&Request::Change(rvs_core::Change::AddService(
            ServiceConfig::new(k).with_scheduler("wrr")
        )))
        .unwrap(),
        Reply::Ok
    );
    for (i, w) in [(11u8, 3u32), (12, 1)] {
        let mut dest = DestConfig::new(format!("127.0.61.{i}").parse().unwrap(), 8080);
        dest.weight = w;
        assert_eq!(
            c.call(&Request::Change(rvs_core::Change::AddDest { svc: k, dest }))
                .unwrap(),
            Reply::Ok
        );
    }
    let before = services(&mut c);
    // killed, not stopped: the state file was written at the change, not at exit
    let state = dir.join("rvsd.state");
    wait_for("the state file", Duration::from_secs(5), || {
        std::fs::read_to_string(&state).is_ok_and(|t| t.contains("127.0.61.12"))
    });
    let mut child = a.child.take().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    let _ = std::fs::remove_file(&a.socket);
    std::mem::forget(a); // keep the directory for the next rvsd

    let b = Rvsd::start_in(dir, &[], &[]);
    let after = services(&mut b.client());
    let cfgs = |l: &[rvs_core::ServiceInfo]| {
        l.iter()
            .map(|s| {
                (
                    s.cfg.clone(),
                    s.dests.iter().map(|d| d.cfg.clone()).collect::<Vec<_>>(),
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(cfgs(&after), cfgs(&before));
    assert!(b.log_text().contains("restored from the state file"));
}

#[test]
fn logs_are_plain_one_line_and_removals_are_warnings() {
    let l = std::net::TcpListener::bind("127.0.60.4:0").unwrap();
    let rs = l.local_addr().unwrap();
    let dir = tempdir();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(rs)).unwrap();
    let mut d = Rvsd::start_in(dir, &["-f", conf.to_str().unwrap()], &[]);
    d.ready();
    let mut c = d.client();
    let mut dest = DestConfig::new("127.0.61.20".parse().unwrap(), 80);
    dest.weight = 4;
    dest.forward = rvs_core::Forward::Masq;
    let svc = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "127.0.60.100".parse().unwrap(),
        port: 80,
    };
    assert_eq!(
        c.call(&Request::Change(rvs_core::Change::AddDest { svc, dest }))
            .unwrap(),
        Reply::Ok
    );
    // the real server dies: its checker removes it
    drop(l);
    wait_for("the removal", Duration::from_secs(10), || {
        d.log_text().contains("removing real server")
    });
    assert!(d.stop().success());
    let log = d.log_text();
    assert!(!log.contains('\x1b'), "ANSI escapes in a log file:\n{log}");
    let audit = log
        .lines()
        .find(|l| l.contains("admin:"))
        .unwrap_or_else(|| panic!("no audit line:\n{log}"));
    assert!(
        audit.contains("INFO")
            && audit.contains("admin: -a -t 127.0.60.100:80 -r 127.0.61.20:80 -m -w 4: ok (uid "),
        "{audit}"
    );
    assert!(!log.contains("AddDest"), "a Debug dump in the log:\n{log}");
    let removal = log
        .lines()
        .find(|l| l.contains("removing real server"))
        .unwrap();
    assert!(removal.contains("WARN"), "{removal}");
    assert!(removal.contains(&rs.to_string()), "{removal}");
}

#[test]
fn vrrp_only_loads_no_virtual_server_and_check_only_runs_no_vrrp() {
    let l = std::net::TcpListener::bind("127.0.60.5:0").unwrap();
    let dir = tempdir();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(l.local_addr().unwrap())).unwrap();
    let p = Rvsd::start_in(dir.clone(), &["-P", "-f", conf.to_str().unwrap()], &[]);
    assert!(services(&mut p.client()).is_empty());
    drop(p);
    let dir = tempdir();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(l.local_addr().unwrap())).unwrap();
    let c = Rvsd::start_in(dir, &["-C", "-f", conf.to_str().unwrap()], &[]);
    assert_eq!(services(&mut c.client()).len(), 1);
}

#[test]
fn unsupported_keepalived_options_are_refused_by_name() {
    for opt in ["-X", "-V", "--snmp"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
            .args(["--dataplane", "none", opt])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{opt}");
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("not supported"),
            "{opt}"
        );
    }
}

#[test]
fn fork_returns_once_the_daemon_is_ready() {
    let dir = tempdir();
    let socket = dir.join("rvsd.sock");
    let pid = dir.join("rvsd.pid");
    let st = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--dataplane", "none", "--fork", "-G", "--socket"])
        .arg(&socket)
        .arg("-p")
        .arg(&pid)
        .status()
        .unwrap();
    assert!(st.success());
    // ready means serving: no waiting needed
    assert!(socket.exists() && pid.exists());
    let n: i32 = std::fs::read_to_string(&pid)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the daemon this test started.
    assert_eq!(unsafe { libc::kill(n, libc::SIGTERM) }, 0);
    wait_for("the forked daemon to stop", Duration::from_secs(10), || {
        !pid.exists()
    });
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_restart_drops_virtual_servers_keepalived_conf_no_longer_has() {
    let l = std::net::TcpListener::bind("127.0.60.6:0").unwrap();
    let rs = l.local_addr().unwrap();
    let vs = |port: u16| {
        format!(
            "virtual_server 127.0.60.101 {port} {{\n protocol TCP\n lb_kind NAT\n lb_algo rr\n delay_loop 1\n\
             real_server {} {} {{\n  weight 1\n  TCP_CHECK {{\n   connect_timeout 0.3\n  }}\n }}\n}}\n",
            rs.ip(),
            rs.port()
        )
    };
    let dir = tempdir();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, format!("{}{}", vs(80), vs(81))).unwrap();
    let mut a = Rvsd::start_in(dir.clone(), &["-f", conf.to_str().unwrap()], &[]);
    a.ready();
    // one service of the operator's own, beside keepalived's
    assert_eq!(
        a.client()
            .call(&Request::Change(rvs_core::Change::AddService(
                ServiceConfig::new(key(90))
            )))
            .unwrap(),
        Reply::Ok
    );
    assert_eq!(services(&mut a.client()).len(), 3);
    assert!(a.stop().success());
    let child = a.child.take();
    drop(child);
    std::mem::forget(a);

    std::fs::write(&conf, vs(80)).unwrap();
    let b = Rvsd::start_in(dir, &["-f", conf.to_str().unwrap()], &[]);
    b.ready();
    let ports: Vec<u16> = services(&mut b.client())
        .iter()
        .filter_map(|s| match s.cfg.key {
            ServiceKey::Addr { port, .. } => Some(port),
            _ => None,
        })
        .collect();
    assert!(ports.contains(&80) && ports.contains(&90), "{ports:?}");
    assert!(
        !ports.contains(&81),
        "the removed virtual server came back: {ports:?}"
    );
}

#[test]
fn dump_conf_logs_the_loaded_configuration() {
    let l = std::net::TcpListener::bind("127.0.60.7:0").unwrap();
    let dir = tempdir();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(l.local_addr().unwrap())).unwrap();
    let d = Rvsd::start_in(dir, &["-d", "-f", conf.to_str().unwrap()], &[]);
    // the control socket answers before keepalived.conf is loaded and dumped: wait for
    // the line (bounded)
    let has = |log: &str| {
        log.lines()
            .any(|l| l.contains("config: -A -t 127.0.60.100:80 -s rr"))
    };
    let t0 = std::time::Instant::now();
    while !has(&d.log_text()) && t0.elapsed() < std::time::Duration::from_secs(10) {
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let log = d.log_text();
    assert!(has(&log), "{log}");
}

/// rvsd started by systemd: stderr is the journal stream (`$JOURNAL_STREAM`), and lines go
/// to journald with priorities. journald here is a datagram socket of the test's, mounted on
/// /run/systemd/journal/socket in a private mount namespace of rvsd's (`unshare -m`).
#[test]
fn under_systemd_lines_go_to_journald_with_priorities() {
    use std::os::unix::fs::MetadataExt;
    if !rvs_testkit::require_root("journald output")
        || !rvs_testkit::require_command("journald output", "unshare")
    {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.60.8:0").unwrap();
    let dir = tempdir();
    let journal = dir.join("journal.sock");
    let sock = UnixDatagram::bind(&journal).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(l.local_addr().unwrap())).unwrap();
    let log = dir.join("stderr.log");
    let stderr = std::fs::File::create(&log).unwrap();
    let m = stderr.metadata().unwrap();
    let script = "mount -t tmpfs tmpfs /run && mkdir -p /run/systemd/journal && \
                  touch /run/systemd/journal/socket && \
                  mount --bind \"$0\" /run/systemd/journal/socket && exec \"$@\"";
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(&journal)
        .arg(env!("CARGO_BIN_EXE_rvsd"))
        .args(["--dataplane", "none", "--state-file", "none", "--socket"])
        .arg(dir.join("rvsd.sock"))
        .arg("-f")
        .arg(&conf)
        .env("JOURNAL_STREAM", format!("{}:{}", m.dev(), m.ino()))
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(stderr)
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut next = |what: &str| -> HashMap<String, String> {
        loop {
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no journal entry with {what}: {e}"));
            let e = journal_fields(&buf[..n]);
            if e.get("MESSAGE").is_some_and(|m| m.contains(what)) {
                return e;
            }
        }
    };
    let ready = next("rvsd ready");
    assert_eq!(ready["PRIORITY"], "6", "{ready:?}");
    assert_eq!(ready["SYSLOG_IDENTIFIER"], "rvsd", "{ready:?}");
    // the real server dies: a warning
    drop(l);
    let down = next("removing real server");
    assert_eq!(down["PRIORITY"], "4", "{down:?}");
    // SAFETY: signalling the child this test started (exec'ed into rvsd).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    // nothing doubled on stderr
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "");
    let _ = std::fs::remove_dir_all(&dir);
}

/// `-S 3`: syslog's LOCAL3 facility, with keepalived's levels. /dev/log here is a datagram
/// socket of the test's, mounted in a private mount namespace of rvsd's over a /dev of its
/// own (`unshare -m`), so nothing of the host's /dev changes.
#[test]
fn log_facility_sends_syslog_lines_with_priorities() {
    if !rvs_testkit::require_root("syslog output")
        || !rvs_testkit::require_command("syslog output", "unshare")
    {
        return;
    }
    let l = std::net::TcpListener::bind("127.0.60.9:0").unwrap();
    let dir = tempdir();
    let devlog = dir.join("devlog.sock");
    let sock = UnixDatagram::bind(&devlog).unwrap();
    sock.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let conf = dir.join("keepalived.conf");
    std::fs::write(&conf, checker_conf(l.local_addr().unwrap())).unwrap();
    let script = "mount -t tmpfs tmpfs /dev && mknod -m 666 /dev/null c 1 3 && touch /dev/log && \
                  mount --bind \"$0\" /dev/log && exec \"$@\"";
    let mut child = Command::new("unshare")
        .args(["-m", "--propagation", "private", "sh", "-c", script])
        .arg(&devlog)
        .arg(env!("CARGO_BIN_EXE_rvsd"))
        .args([
            "-S",
            "3",
            "--dataplane",
            "none",
            "--state-file",
            "none",
            "--socket",
        ])
        .arg(dir.join("rvsd.sock"))
        .arg("-f")
        .arg(&conf)
        .env_remove("JOURNAL_STREAM")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut buf = vec![0u8; 65536];
    let mut next = |what: &str| -> String {
        loop {
            let n = sock
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("no syslog line with {what}: {e}"));
            let line = String::from_utf8_lossy(&buf[..n]).into_owned();
            if line.contains(what) {
                return line;
            }
        }
    };
    // <PRI> = facility * 8 + severity: LOCAL3 is 19; info 6, warning 4
    let ready = next("rvsd ready");
    assert!(ready.starts_with("<158>"), "{ready}");
    assert!(ready.contains("rvsd["), "{ready}");
    drop(l);
    let down = next("removing real server");
    assert!(down.starts_with("<156>"), "{down}");
    // SAFETY: signalling the child this test started (exec'ed into rvsd).
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    let _ = std::fs::remove_dir_all(&dir);
}

/// journald's native protocol: `KEY=value\n`, or `KEY\n` + a 64-bit little-endian length +
/// the value + `\n` (systemd's "Native Journal Protocol").
fn journal_fields(mut b: &[u8]) -> HashMap<String, String> {
    let mut out = HashMap::new();
    while !b.is_empty() {
        let nl = b.iter().position(|c| *c == b'\n').unwrap_or(b.len());
        let line = &b[..nl];
        if let Some(eq) = line.iter().position(|c| *c == b'=') {
            out.insert(
                String::from_utf8_lossy(&line[..eq]).into_owned(),
                String::from_utf8_lossy(&line[eq + 1..]).into_owned(),
            );
            b = &b[(nl + 1).min(b.len())..];
        } else {
            let key = String::from_utf8_lossy(line).into_owned();
            let rest = &b[nl + 1..];
            let len = u64::from_le_bytes(rest[..8].try_into().unwrap()) as usize;
            out.insert(key, String::from_utf8_lossy(&rest[8..8 + len]).into_owned());
            b = &rest[(8 + len + 1).min(rest.len())..];
        }
    }
    out
}
