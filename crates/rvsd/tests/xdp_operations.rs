//! The XDP plane as an operator starts it: under `ip netns exec` its maps are pinned in
//! the host's bpffs (named after the namespace) and adopted by the next rvsd; an interface
//! that does not exist is an error, never a quiet fall-back to the proxy; `--xdp-mode auto`
//! on a veth picks generic mode, the one that forwards whatever the peer runs; packets the
//! director does not balance are counted by reason on `/metrics`.

use rvs_api::{Client, Reply, Request};
use rvs_core::{Protocol, ServiceConfig, ServiceKey};
use rvs_testkit::netns::Lab;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[test]
fn an_interface_that_does_not_exist_is_an_error_not_a_fallback() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rvsd"))
        .args([
            "--dataplane",
            "auto",
            "--interface",
            "rvsnosuch0",
            "--state-file",
            "none",
        ])
        .arg("--socket")
        .arg(dir.path().join("s.sock"))
        .output()
        .unwrap();
    assert!(!out.status.success(), "rvsd started without its interface");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rvsnosuch0: no such interface"), "{err}");
    assert!(!dir.path().join("s.sock").exists());
}

struct Killed(Option<Child>);
impl Drop for Killed {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// Starts rvsd in the lab's director namespace with `ip netns exec`, directly or through
/// a shell that stays its parent (`sh -c 'rvsd ...; exit'`).
fn start(lab: &Lab, dir: &Path, via_shell: bool) -> Killed {
    let socket = dir.join("rvsd.sock");
    let _ = std::fs::remove_file(&socket);
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("rvsd.log"))
        .unwrap();
    let mut cmd = if via_shell {
        let mut c = lab.command("d", "sh");
        c.args(["-c", "\"$@\"; exit $?", "sh", env!("CARGO_BIN_EXE_rvsd")]);
        c
    } else {
        lab.command("d", env!("CARGO_BIN_EXE_rvsd"))
    };
    let child = cmd
        .args([
            "--dataplane",
            "xdp",
            "--interface",
            "d0",
            "--xdp-mode",
            "auto",
        ])
        .arg("--socket")
        .arg(&socket)
        .arg("-p")
        .arg(dir.join("rvsd.pid"))
        // the namespace's own loopback
        .args(["--metrics", "127.0.0.1:9652"])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    // the PID file is written once rvsd is ready (the socket exists before)
    while !dir.join("rvsd.pid").exists() {
        assert!(
            Instant::now() < deadline,
            "rvsd did not start: {}",
            std::fs::read_to_string(dir.join("rvsd.log")).unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Killed(Some(child))
}

fn facts(socket: &Path) -> HashMap<String, String> {
    match Client::connect(socket)
        .unwrap()
        .call(&Request::Status)
        .unwrap()
    {
        Reply::Status(s) => s.facts.into_iter().collect(),
        r => panic!("{r:?}"),
    }
}

fn stop(mut k: Killed, dir: &Path) {
    let mut c = k.0.take().unwrap();
    // rvsd's own PID (the child may be the shell that runs it)
    let pid: i32 = std::fs::read_to_string(dir.join("rvsd.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    // SAFETY: signalling the rvsd this test started.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let deadline = Instant::now() + Duration::from_secs(10);
    while c.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "rvsd did not stop");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Removes the pins of the test's director from the host's bpffs (also on failure).
struct Pins(PathBuf);
impl Drop for Pins {
    fn drop(&mut self) {
        let _ = rvs_xdp::loader::unpin_all(&self.0);
    }
}

#[test]
fn under_ip_netns_exec_pins_outlive_rvsd_and_a_veth_gets_generic_mode() {
    if !rvs_testkit::require_root("XDP under ip netns exec") {
        return;
    }
    // the host's bpffs, as systemd mounts it
    rvs_xdp::loader::ensure_bpffs().unwrap();
    let mut lab = Lab::new();
    let d = lab.add_ns("d").unwrap();
    lab.add_ns("c").unwrap();
    lab.veth("d", "d0", "10.231.0.1/24", "c", "c0", "10.231.0.2/24")
        .unwrap();
    let pins = Pins(PathBuf::from(format!("/sys/fs/bpf/rvs/netns-{d}")));
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("rvsd.sock");

    let a = start(&lab, dir.path(), false);
    // traffic the director does not balance (not for a VIP) is passed up with a named
    // reason, counted, and exported as a metric
    lab.exec(
        "c",
        &["ping", "-c", "3", "-i", "0.2", "-W", "1", "10.231.0.1"],
    )
    .unwrap();
    let metrics = lab
        .exec("d", &["curl", "-sf", "http://127.0.0.1:9652/metrics"])
        .unwrap();
    let reasons: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("rvs_drop_packets_total{reason="))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|l| l.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok()) > Some(0)),
        "no counted reason in:\n{metrics}"
    );
    let f = facts(&socket);
    assert_eq!(f["xdp.interfaces"], "d0(generic)", "{f:?}");
    assert_eq!(f["xdp.adopted"], "no");
    assert!(
        f["xdp.pin_dir"].ends_with(&format!("/rvs/netns-{d}")),
        "{f:?}"
    );
    // visible from the host: it survives the mount namespace of `ip netns exec`
    assert!(
        pins.0.join("rvs_conns4").exists(),
        "no pins in the host's bpffs"
    );
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "10.231.0.100".parse().unwrap(),
        port: 80,
    };
    assert_eq!(
        Client::connect(&socket)
            .unwrap()
            .call(&Request::Change(rvs_core::Change::AddService(
                ServiceConfig::new(key)
            )))
            .unwrap(),
        Reply::Ok
    );
    stop(a, dir.path());
    assert!(
        pins.0.join("rvs_conns4").exists(),
        "the pins went with rvsd"
    );

    // through a shell: its parent shares the private mount namespace
    let b = start(&lab, dir.path(), true);
    let f = facts(&socket);
    assert_eq!(f["xdp.adopted"], "yes", "{f:?}");
    let list = Client::connect(&socket)
        .unwrap()
        .call(&Request::ListServices { key: None })
        .unwrap();
    assert!(matches!(list, Reply::Services(ref s) if s.len() == 1 && s[0].cfg.key == key));
    stop(b, dir.path());
    let log = std::fs::read_to_string(dir.path().join("rvsd.log")).unwrap();
    assert!(log.contains("pinning in the host's bpffs"), "{log}");
    assert!(log.contains("generic mode, as d0 is a veth"), "{log}");
}
