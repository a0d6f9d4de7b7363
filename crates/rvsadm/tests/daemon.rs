//! rvsadm against a real rvsd (`--dataplane none`, on a private socket; the proxy plane
//! where what a plane refuses is the point), driven only through the rvsadm binary, as an
//! operator or a script would.
//!
//! rvsd must be built first (`cargo build -p rvsd`); it is looked up next to the rvsadm
//! binary under test. A missing rvsd fails these tests with that instruction, it does not
//! skip them.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const RVSADM: &str = env!("CARGO_BIN_EXE_rvsadm");

fn rvsd_binary() -> PathBuf {
    let dir = Path::new(RVSADM).parent().expect("binary directory");
    let rvsd = dir.join("rvsd");
    assert!(
        rvsd.is_file(),
        "rvsd is not built at {} -- run `cargo build -p rvsd` first",
        rvsd.display()
    );
    rvsd
}

/// A running rvsd on its own socket; stopped (SIGTERM, then SIGKILL) when dropped.
struct Daemon {
    child: Child,
    dir: PathBuf,
    socket: PathBuf,
}

static NEXT: AtomicUsize = AtomicUsize::new(0);

impl Daemon {
    fn start() -> Daemon {
        Self::start_with(&[])
    }

    /// An rvsd run inside a network namespace (`ip netns exec`).
    fn start_in(ns: &str) -> Daemon {
        Self::start_cmd(
            {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(rvsd_binary());
                c
            },
            "none",
            &[],
        )
    }

    fn start_with(extra: &[&str]) -> Daemon {
        Self::start_on("none", extra)
    }

    /// An rvsd with the data plane `plane`.
    fn start_on(plane: &str, extra: &[&str]) -> Daemon {
        Self::start_cmd(Command::new(rvsd_binary()), plane, extra)
    }

    fn start_cmd(mut cmd: Command, plane: &str, extra: &[&str]) -> Daemon {
        let dir = std::env::temp_dir().join(format!(
            "rvsadm-daemon-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        let socket = dir.join("rvsd.sock");
        let log = std::fs::File::create(dir.join("rvsd.log")).unwrap();
        let child = cmd
            .arg("--socket")
            .arg(&socket)
            .args(["--dataplane", plane])
            .args(extra)
            .env_remove("RVS_SOCKET")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start rvsd");
        let mut d = Daemon { child, dir, socket };
        d.wait_ready();
        d
    }

    /// Bounded wait (200 tries, 10 s) for the socket to accept connections.
    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("rvsd exited early ({status}): {}", self.log());
            }
            if UnixStream::connect(&self.socket).is_ok() {
                return;
            }
            if Instant::now() > deadline {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "rvsd did not open {}: {}",
            self.socket.display(),
            self.log()
        );
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("rvsd.log")).unwrap_or_default()
    }

    fn run(&self, args: &[&str], stdin: &str) -> (i32, String, String) {
        let mut child = Command::new(RVSADM)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run rvsadm");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        let o: Output = child.wait_with_output().unwrap();
        (
            o.status.code().expect("rvsadm exited normally"),
            String::from_utf8(o.stdout).unwrap(),
            String::from_utf8(o.stderr).unwrap(),
        )
    }

    /// Runs a command that must succeed silently.
    fn ok(&self, args: &[&str]) {
        let (code, out, err) = self.run(args, "");
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (0, "", ""),
            "rvsadm {args:?}"
        );
    }

    /// Runs a command that must succeed; returns its stdout.
    fn out(&self, args: &[&str]) -> String {
        let (code, out, err) = self.run(args, "");
        assert_eq!((code, err.as_str()), (0, ""), "rvsadm {args:?}");
        out
    }

    /// A command refused by the table: ipvsadm's message and status.
    fn refused(&self, args: &[&str], status: i32, message: &str) {
        let (code, out, err) = self.run(args, "");
        assert_eq!(
            (code, out.as_str(), err.as_str()),
            (status, "", &*format!("{message}\n")),
            "rvsadm {args:?}"
        );
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let pid = self.child.id() as libc::pid_t;
        // SAFETY: signalling our own child by its pid.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                let _ = std::fs::remove_dir_all(&self.dir);
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const TITLE: &str = "IP Virtual Server version 1.2.1 (size=4096)\n\
Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n";

#[test]
fn seed_nat_script_lists_like_ipvsadm() {
    let d = Daemon::start();
    d.ok(&["-C"]);
    d.ok(&["-A", "-t", "172.16.254.200:80", "-s", "wrr"]);
    d.ok(&[
        "-a",
        "-t",
        "172.16.254.200:80",
        "-r",
        "192.168.0.18:80",
        "-m",
        "-w",
        "1",
    ]);
    d.ok(&[
        "-a",
        "-t",
        "172.16.254.200:80",
        "-r",
        "192.168.0.28:80",
        "-m",
        "-w",
        "1",
    ]);
    let want = format!(
        "{TITLE}TCP  172.16.254.200:80 wrr\n  \
         -> 192.168.0.18:80              Masq    1      0          0         \n  \
         -> 192.168.0.28:80              Masq    1      0          0         \n"
    );
    assert_eq!(d.out(&["-ln"]), want);
}

#[test]
fn seed_port_mapping_example_matches_the_document() {
    let d = Daemon::start();
    d.ok(&["-A", "-t", "172.16.132.18:80", "-s", "rr"]);
    d.ok(&[
        "-a",
        "-t",
        "172.16.132.18:80",
        "-r",
        "192.168.99.130:888",
        "-m",
    ]);
    d.ok(&[
        "-a",
        "-t",
        "172.16.132.18:80",
        "-r",
        "192.168.99.140:888",
        "-m",
    ]);
    let want = format!(
        "{TITLE}TCP  172.16.132.18:80 rr\n  \
         -> 192.168.99.130:888           Masq    1      0          0         \n  \
         -> 192.168.99.140:888           Masq    1      0          0         \n"
    );
    assert_eq!(d.out(&["-Ln"]), want);
}

#[test]
fn seed_dr_script_lists_like_ipvsadm() {
    let d = Daemon::start();
    d.ok(&["-C"]);
    d.ok(&["-A", "-t", "192.168.0.38:80", "-s", "wrr"]);
    d.ok(&[
        "-a",
        "-t",
        "192.168.0.38:80",
        "-r",
        "192.168.0.18:80",
        "-g",
        "-w",
        "3",
    ]);
    d.ok(&[
        "-a",
        "-t",
        "192.168.0.38:80",
        "-r",
        "192.168.0.28:80",
        "-g",
        "-w",
        "1",
    ]);
    let want = format!(
        "{TITLE}TCP  192.168.0.38:80 wrr\n  \
         -> 192.168.0.18:80              Route   3      0          0         \n  \
         -> 192.168.0.28:80              Route   1      0          0         \n"
    );
    assert_eq!(d.out(&["-Ln"]), want);
    // One service alone: no version line.
    let one = d.out(&["-Ln", "-t", "192.168.0.38:80"]);
    assert_eq!(one, want[TITLE.lines().next().unwrap().len() + 1..]);
}

#[test]
fn table_errors_use_ipvsadm_messages_and_statuses() {
    let d = Daemon::start();
    d.ok(&["-A", "-t", "10.0.0.1:80"]);
    d.refused(&["-A", "-t", "10.0.0.1:80"], 255, "Service already exists");
    d.refused(&["-E", "-t", "10.0.0.2:80"], 255, "No such service");
    d.refused(&["-D", "-t", "10.0.0.2:80"], 255, "No such service");
    d.refused(
        &["-a", "-t", "10.0.0.2:80", "-r", "10.1.0.1"],
        255,
        "Service not defined",
    );
    d.ok(&["-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1"]);
    d.refused(
        &["-a", "-t", "10.0.0.1:80", "-r", "10.1.0.1"],
        255,
        "Destination already exists",
    );
    d.refused(
        &["-e", "-t", "10.0.0.1:80", "-r", "10.1.0.9"],
        255,
        "No such destination",
    );
    d.refused(
        &["-d", "-t", "10.0.0.1:80", "-r", "10.1.0.9"],
        255,
        "No such destination",
    );
    d.refused(&["-Z", "-t", "10.0.0.2:80"], 255, "No such service");
    d.refused(&["-L", "-t", "10.0.0.2:80"], 1, "No such service");
    d.ok(&["-d", "-t", "10.0.0.1:80", "-r", "10.1.0.1"]);
    d.ok(&["-D", "-t", "10.0.0.1:80"]);
    assert_eq!(d.out(&["-Ln"]), TITLE);
}

/// A data plane refuses what it cannot serve before it reaches the table: one message per
/// case (the plane and what it does not serve), exit status 255 as for a change the kernel
/// refuses, nothing changed. The proxy forwards full NAT on one address and port.
#[test]
fn the_proxy_plane_refuses_what_it_cannot_serve() {
    let d = Daemon::start_on("proxy", &["--proxy-workers", "1"]);
    let vip = "127.0.93.1:8093";
    d.ok(&["-A", "-t", vip, "-s", "rr"]);
    let refusals: [(&[&str], &str); 7] = [
        (
            &["-a", "-t", vip, "-r", "127.0.93.2:80"],
            "direct routing (-g, DR)",
        ),
        (
            &["-a", "-t", vip, "-r", "127.0.93.2:80", "-g"],
            "direct routing (-g, DR)",
        ),
        (
            &["-a", "-t", vip, "-r", "127.0.93.2:80", "-i"],
            "tunnelling (-i, TUN)",
        ),
        (&["-A", "-f", "7", "-s", "rr"], "fwmark services"),
        (
            &["-A", "--sctp-service", "127.0.93.1:8093"],
            "SCTP services",
        ),
        (
            &["-A", "-t", "127.0.93.1:0", "-p"],
            "port-0 (all ports) services",
        ),
        (
            &["-A", "-u", "127.0.93.1:5060", "-p", "--pe", "sip"],
            "the SIP persistence engine",
        ),
    ];
    for (args, what) in refusals {
        d.refused(
            args,
            255,
            &format!("the proxy data plane does not serve {what}"),
        );
    }
    d.ok(&["-a", "-t", vip, "-r", "127.0.93.2:80", "-m"]);
    d.refused(
        &["-e", "-t", vip, "-r", "127.0.93.2:80", "-g"],
        255,
        "the proxy data plane does not serve direct routing (-g, DR)",
    );
    let want = format!(
        "{TITLE}TCP  127.0.93.1:8093 rr
  \
         -> 127.0.93.2:80                Masq    1      0          0         \n"
    );
    assert_eq!(d.out(&["-Ln"]), want);
    // A rules file: the refused line says why, the others apply.
    let (code, _, err) = d.run(
        &["-R"],
        "-A -u 127.0.93.1:8053 -s rr\n-a -u 127.0.93.1:8053 -r 127.0.93.3:53 -g\n-a -u 127.0.93.1:8053 -r 127.0.93.4:53 -m\n",
    );
    assert_eq!(
        (code, err.as_str()),
        (
            0,
            "the proxy data plane does not serve direct routing (-g, DR)\n"
        )
    );
    assert!(d.out(&["-Ln"]).contains("127.0.93.4:53"));
}

/// A table with most of what ipvsadm can express.
const RULES: &str = "\
-A -t 10.0.0.1:80 -s wrr -p 360 -M 255.255.255.0
-a -t 10.0.0.1:80 -r 192.168.1.10:80 -g -w 3
-a -t 10.0.0.1:80 -r 192.168.1.11:80 -g -w 0
-A -u 10.0.0.1:53 -s sh -b sh-fallback,sh-port
-a -u 10.0.0.1:53 -r 192.168.1.20:53 -i -w 1 --tun-type gue --tun-port 6080 --tun-csum
-a -u 10.0.0.1:53 -r 192.168.1.21:53 -i -w 1 --tun-type gre --tun-nocsum
-a -u 10.0.0.1:53 -r 192.168.1.22:53 -i -w 1 --tun-type ipip
-A -t 172.16.132.18:80 -s rr
-a -t 172.16.132.18:80 -r 192.168.99.130:888 -m -w 1 -x 200 -y 100
-A -f 7 -s mh -b mh-port
-a -f 7 -r 192.168.7.1:0 -g -w 1
-A -f 8 -6 -s lc -p 90 -M 64
-a -f 8 -6 -r [2001:db8::10]:0 -g -w 2
-A -t [2001:db8::1]:443 -s wlc
-a -t [2001:db8::1]:443 -r [2001:db8::20]:8443 -m -w 5
-A -u 10.0.0.2:5060 -s rr -o
";

#[test]
fn save_clear_restore_reproduces_the_table() {
    let d = Daemon::start();
    let (code, out, err) = d.run(&["-R"], RULES);
    assert_eq!((code, out.as_str(), err.as_str()), (0, "", ""));
    let saved = d.out(&["-Sn"]);
    let listed = d.out(&["-Ln", "--thresholds"]);
    // Every rule came back (the order is ipvsadm's sort order, not the file's).
    let mut got: Vec<&str> = saved.lines().collect();
    let mut want: Vec<&str> = RULES.lines().collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);

    d.ok(&["-C"]);
    assert_eq!(d.out(&["-Sn"]), "");
    let (code, _, err) = d.run(&["-R"], &saved);
    assert_eq!((code, err.as_str()), (0, ""));
    assert_eq!(d.out(&["-Sn"]), saved);
    assert_eq!(d.out(&["-Ln", "--thresholds"]), listed);
}

#[test]
fn restore_reports_failing_lines_and_exits_like_ipvsadm() {
    let d = Daemon::start();
    d.ok(&["-A", "-t", "10.0.0.1:80"]);
    let rules = "-A -t 10.0.0.1:80\n-A -t 10.0.0.2:80\n";
    let (code, _, err) = d.run(&["-R"], rules);
    // The last line succeeded: ipvsadm's restore exits 0 then.
    assert_eq!((code, err.as_str()), (0, "Service already exists\n"));
    let (code, _, err) = d.run(&["-R"], "-A -t 10.0.0.3:80\n-A -t 10.0.0.1:80\n");
    assert_eq!((code, err.as_str()), (255, "Service already exists\n"));
    // A bad line anywhere: nothing applied.
    let before = d.out(&["-Sn"]);
    let (code, _, err) = d.run(&["-R"], "-C\n-A -t 10.0.0.9:80 -s rr -s rr\n");
    assert_eq!(
        (code, err.as_str()),
        (2, "line 2: multiple 'scheduler' options specified\n")
    );
    assert_eq!(d.out(&["-Sn"]), before);
}

#[test]
fn stats_and_zero() {
    let d = Daemon::start();
    d.ok(&["-A", "-t", "10.0.0.1:80"]);
    d.ok(&["-a", "-t", "10.0.0.1:80", "-r", "192.168.1.10:80"]);
    let want = concat!(
        "IP Virtual Server version 1.2.1 (size=4096)\n",
        "Prot LocalAddress:Port               Conns   InPkts  OutPkts  InBytes OutBytes\n",
        "  -> RemoteAddress:Port\n",
        "TCP  10.0.0.1:80                         0        0        0        0        0\n",
        "  -> 192.168.1.10:80                     0        0        0        0        0\n",
    );
    assert_eq!(d.out(&["-L", "-n", "--stats"]), want);
    let rate = d.out(&["-Ln", "--rate", "--exact"]);
    assert!(
        rate.contains(
            "  -> 192.168.1.10:80                     0        0        0        0        0\n"
        ),
        "{rate}"
    );
    d.ok(&["-Z"]);
    d.ok(&["-Z", "-t", "10.0.0.1:80"]);
    assert_eq!(d.out(&["-L", "-n", "--stats"]), want);
}

#[test]
fn set_and_list_timeouts() {
    let d = Daemon::start();
    d.ok(&["--set", "900", "120", "300"]);
    assert_eq!(
        d.out(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 900 120 300\n"
    );
    d.ok(&["--set", "3600", "0", "0"]);
    assert_eq!(
        d.out(&["-L", "--timeout"]),
        "Timeout (tcp tcpfin udp): 3600 120 300\n"
    );
    let json = d.out(&["-L", "--timeout", "--json"]);
    assert!(json.contains("\"tcp\": 3600"), "{json}");
}

#[test]
fn sync_daemon_on_an_interface_that_does_not_exist_is_refused_as_the_kernel_does() {
    let d = Daemon::start();
    d.refused(
        &[
            "--start-daemon",
            "master",
            "--mcast-interface",
            "rvsnosuch0",
        ],
        255,
        "No such device",
    );
    assert_eq!(d.out(&["-L", "--daemon"]), "");
}

#[test]
fn sync_daemons() {
    // eth0 (ipvsadm's default interface) and eth1 exist in a namespace of this test
    if !rvs_testkit::require_root("sync daemons need interfaces") {
        return;
    }
    let mut lab = rvs_testkit::netns::Lab::new();
    let ns = lab.add_ns("sync").expect("namespace");
    lab.exec(
        "sync",
        &[
            "ip", "link", "add", "eth0", "type", "veth", "peer", "name", "eth1",
        ],
    )
    .unwrap();
    for i in ["eth0", "eth1"] {
        lab.exec("sync", &["ip", "link", "set", i, "up"]).unwrap();
    }
    let d = Daemon::start_in(&ns);
    assert_eq!(d.out(&["-L", "--daemon"]), "");
    d.ok(&["--start-daemon", "master", "--syncid", "5"]);
    assert_eq!(
        d.out(&["-L", "--daemon"]),
        "master sync daemon (mcast=eth0, syncid=5, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n"
    );
    d.refused(&["--start-daemon", "master"], 255, "Daemon has already run");
    d.ok(&[
        "--start-daemon",
        "backup",
        "--mcast-interface",
        "eth1",
        "--mcast-port",
        "9000",
    ]);
    let both = d.out(&["-L", "--daemon"]);
    assert_eq!(both.lines().count(), 2);
    assert!(
        both.lines()
            .nth(1)
            .unwrap()
            .starts_with("backup sync daemon (mcast=eth1, syncid=0, "),
        "{both}"
    );
    d.ok(&["--stop-daemon", "master"]);
    d.refused(&["--stop-daemon", "master"], 255, "No daemon is running");
    d.ok(&["--stop-daemon", "backup"]);
    assert_eq!(d.out(&["-L", "--daemon"]), "");
}

#[test]
fn connections_listing_and_status() {
    let d = Daemon::start();
    assert_eq!(
        d.out(&["-Lnc"]),
        "IPVS connection entries\npro expire state       source             virtual            destination\n"
    );
    let status = d.out(&["--status"]);
    assert!(status.starts_with("rvsd "), "{status}");
    assert!(status.contains("Data plane: none\n"), "{status}");
    let json = d.out(&["--status", "--json"]);
    assert!(json.contains("\"dataplane\": \"none\""), "{json}");
}

#[test]
fn json_listing() {
    let d = Daemon::start();
    d.ok(&["-A", "-t", "10.0.0.1:80", "-s", "rr"]);
    d.ok(&[
        "-a",
        "-t",
        "10.0.0.1:80",
        "-r",
        "192.168.1.10:8080",
        "-m",
        "-w",
        "4",
    ]);
    let json = d.out(&["-L", "--json"]);
    for needle in [
        "\"version\": \"1.2.1\"",
        "\"scheduler\": \"rr\"",
        "\"address\": \"192.168.1.10\"",
        "\"port\": 8080",
        "\"forward\": \"Masq\"",
        "\"weight\": 4",
        "\"inbytes\": 0",
        "\"cps\": 0",
    ] {
        assert!(json.contains(needle), "{needle} missing from {json}");
    }
}

#[test]
fn rvsd_restore_file_serves_the_rules() {
    let dir = std::env::temp_dir().join(format!("rvsadm-restore-file-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("rules");
    std::fs::write(&file, RULES).unwrap();
    let d = Daemon::start_with(&["--restore", file.to_str().unwrap()]);
    let mut got: Vec<String> = d.out(&["-Sn"]).lines().map(String::from).collect();
    let mut want: Vec<String> = RULES.lines().map(String::from).collect();
    got.sort_unstable();
    want.sort_unstable();
    assert_eq!(got, want);
    drop(d);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sysctls_are_shown_and_set_at_run_time() {
    let d = Daemon::start();
    let all = d.out(&["--sysctl", "all"]);
    assert!(
        all.contains("net.ipv4.vs.sync_threshold = 3\t50\n"),
        "{all}"
    );
    assert!(all.contains("net.ipv4.vs.sloppy_tcp = 0\n"), "{all}");
    d.ok(&["--sysctl", "net.ipv4.vs.sloppy_tcp=1"]);
    d.ok(&["--sysctl", "sync_threshold=5 100"]);
    assert_eq!(
        d.out(&["--sysctl", "sloppy_tcp"]),
        "net.ipv4.vs.sloppy_tcp = 1\n"
    );
    assert_eq!(
        d.out(&["--sysctl", "sync_threshold"]),
        "net.ipv4.vs.sync_threshold = 5\t100\n"
    );
    // refused as the kernel refuses it, nothing changed
    for (args, why) in [
        (
            "sync_threshold=100 100",
            "the threshold must be below the period",
        ),
        ("secure_tcp=7", "secure_tcp: 7 is not 0 to 3"),
        ("no_such=1", "no sysctl \"no_such\""),
    ] {
        let (code, out, err) = d.run(&["--sysctl", args], "");
        assert_eq!((code, out.as_str()), (255, ""), "{args}");
        assert!(
            err.starts_with(&format!("setting net.ipv4.vs.{args}: ")) && err.contains(why),
            "{args}: {err}"
        );
    }
    assert_eq!(
        d.out(&["--sysctl", "sync_threshold"]),
        "net.ipv4.vs.sync_threshold = 5\t100\n"
    );
}
