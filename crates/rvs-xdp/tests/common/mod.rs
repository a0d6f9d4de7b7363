//! Shared test rig: a director loaded from the real object, inside a network namespace of
//! its own with fixed addresses, MACs and static neighbours, so the FIB lookups of the
//! program give the same answer every time.

#![allow(dead_code)]

pub mod packet;

use rvs_core::{DestConfig, Forward, Protocol, ServiceConfig, ServiceKey, Table};
use rvs_dataplane::{DataPlane, Shared};
use rvs_testkit::netns::Lab;
use rvs_xdp::{stats, Build, XdpOptions, XdpPlane};
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

pub use packet::Mac;

pub const D0_MAC: Mac = [2, 0, 0, 0, 0, 0xfe];
pub const D1_MAC: Mac = [2, 0, 0, 0, 1, 0xfe];
pub const GW_MAC: Mac = [2, 0, 0, 0, 0, 1];

/// MAC of real server n (written in hex: rs_mac(0x11) is 10.0.0.11 / fd00::11 on d0; rs1_mac
/// for 10.1.0.n / fd01::n on d1).
pub fn rs_mac(n: u8) -> Mac {
    [2, 0, 0, 0, 0, n]
}

pub fn rs1_mac(n: u8) -> Mac {
    [2, 0, 0, 0, 1, n]
}

pub fn ip(s: &str) -> IpAddr {
    s.parse().expect("address literal")
}

static PINS: AtomicU32 = AtomicU32::new(0);

/// A unique pin directory under bpffs, removed with the plane.
pub fn pin_dir(name: &str) -> PathBuf {
    let n = PINS.fetch_add(1, Ordering::Relaxed);
    PathBuf::from(format!(
        "/sys/fs/bpf/rvs-test-{}-{n}-{name}",
        std::process::id()
    ))
}

/// Moves the calling thread into a lab namespace (BPF test runs resolve their ingress
/// interface and FIB in the caller's namespace).
pub fn enter(lab: &Lab, name: &str) {
    let path = format!("/run/netns/{}", lab.ns(name));
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    // SAFETY: setns on an open namespace fd for this thread only.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns: {}", std::io::Error::last_os_error());
}

/// The fixture network: `d0` (10.0.0.254, fd00::fe) towards the clients' gateway
/// (10.0.0.1 / fd00::1, clients in 10.9/16 and 2001:db8:9::/48) and real servers 10.0.0.11-13
/// / fd00::11-13; `d1` (10.1.0.254, fd01::fe) towards servers 10.1.0.21 / fd01::21.
/// 10.0.0.14 has no neighbour entry; 10.5.0.0/16 lies behind the gateway.
pub fn setup_net(lab: &mut Lab) {
    lab.add_ns("d").expect("netns");
    let sh = |cmd: &str| {
        let argv: Vec<&str> = cmd.split_whitespace().collect();
        lab.exec("d", &argv)
            .unwrap_or_else(|e| panic!("{cmd}: {e}"));
    };
    for (i, p, mac, a4, a6) in [
        (
            "d0",
            "p0",
            "02:00:00:00:00:fe",
            "10.0.0.254/24",
            "fd00::fe/64",
        ),
        (
            "d1",
            "p1",
            "02:00:00:00:01:fe",
            "10.1.0.254/24",
            "fd01::fe/64",
        ),
    ] {
        sh(&format!("ip link add {i} type veth peer name {p}"));
        sh(&format!("ip link set {i} address {mac}"));
        sh(&format!("ip link set {i} up"));
        sh(&format!("ip link set {p} up"));
        sh(&format!("ip addr add {a4} dev {i}"));
        sh(&format!("ip addr add {a6} dev {i} nodad"));
    }
    for f in [
        "net.ipv4.conf.d0.forwarding=1",
        "net.ipv4.conf.d1.forwarding=1",
        "net.ipv6.conf.d0.forwarding=1",
        "net.ipv6.conf.d1.forwarding=1",
    ] {
        sh(&format!("sysctl -qw {f}"));
    }
    sh("ip route add 10.9.0.0/16 via 10.0.0.1");
    sh("ip route add 10.5.0.0/16 via 10.0.0.1");
    sh("ip -6 route add 2001:db8:9::/48 via fd00::1");
    sh("ip neigh replace 10.0.0.1 lladdr 02:00:00:00:00:01 dev d0 nud permanent");
    sh("ip neigh replace fd00::1 lladdr 02:00:00:00:00:01 dev d0 nud permanent");
    for n in 11..=13 {
        // 10.0.0.11 and fd00::11 have MAC 02:00:00:00:00:11
        sh(&format!(
            "ip neigh replace 10.0.0.{n} lladdr 02:00:00:00:00:{n} dev d0 nud permanent"
        ));
        sh(&format!(
            "ip neigh replace fd00::{n} lladdr 02:00:00:00:00:{n} dev d0 nud permanent"
        ));
    }
    sh("ip neigh replace 10.1.0.21 lladdr 02:00:00:00:01:21 dev d1 nud permanent");
    sh("ip neigh replace fd01::21 lladdr 02:00:00:00:01:21 dev d1 nud permanent");
}

/// A director (production or test build) with a table, in the fixture network.
pub struct Rig {
    pub plane: XdpPlane,
    pub table: Table,
    pub if0: u32,
    pub if1: u32,
    // dropped last: the namespace goes after the plane
    pub lab: Lab,
}

impl Rig {
    pub fn new(name: &str, build: Build) -> Rig {
        Self::with_conn_max(name, build, 4096)
    }

    pub fn with_conn_max(name: &str, build: Build, conn_max: u32) -> Rig {
        let mut lab = Lab::new();
        setup_net(&mut lab);
        enter(&lab, "d");
        let shared = Arc::new(Shared::new(Table::new()));
        let plane = XdpPlane::new(
            shared,
            XdpOptions {
                pin_dir: pin_dir(name),
                conn_max,
                detach_on_exit: true,
                worker: false,
                build,
                ..Default::default()
            },
        )
        .unwrap_or_else(|e| panic!("loading the director: {e}"));
        let if0 = rvs_xdp::loader::ifindex("d0").expect("d0");
        let if1 = rvs_xdp::loader::ifindex("d1").expect("d1");
        let table = Table::new();
        let mut rig = Rig {
            plane,
            table,
            if0,
            if1,
            lab,
        };
        rig.sync();
        rig
    }

    pub fn sync(&mut self) {
        self.plane.sync(&self.table);
    }

    pub fn service(&mut self, key: ServiceKey, sched: &str) -> ServiceKey {
        self.table
            .add_service(ServiceConfig::new(key).with_scheduler(sched))
            .expect("add_service");
        self.sync();
        key
    }

    pub fn service_cfg(&mut self, cfg: ServiceConfig) -> ServiceKey {
        let key = cfg.key;
        self.table.add_service(cfg).expect("add_service");
        self.sync();
        key
    }

    pub fn dest(&mut self, key: &ServiceKey, addr: &str, port: u16, fwd: Forward, weight: u32) {
        let cfg = DestConfig::new(ip(addr), port)
            .with_forward(fwd)
            .with_weight(weight);
        self.dest_cfg(key, cfg);
    }

    pub fn dest_cfg(&mut self, key: &ServiceKey, cfg: DestConfig) {
        self.table.add_dest(key, cfg).expect("add_dest");
        self.sync();
    }

    /// Runs a frame arriving on d0.
    pub fn run(&self, frame: &[u8]) -> (u32, Vec<u8>) {
        self.run_on(frame, self.if0)
    }

    pub fn run_on(&self, frame: &[u8], ifindex: u32) -> (u32, Vec<u8>) {
        self.plane
            .director()
            .run_xdp(frame, ifindex)
            .expect("test run")
    }

    pub fn reasons(&self) -> Vec<(i32, u64, u64)> {
        stats::reasons(self.plane.director()).expect("reasons")
    }

    /// (active, inactive, persist, overloaded) of the server addr:port of a service.
    pub fn counts(&self, key: &ServiceKey, addr: &str, port: u16) -> (u32, u32, u32, bool) {
        let sid = self.table.service_id(key).expect("service");
        let id = self.table.find_dest(sid, ip(addr), port).expect("server");
        let slot = self.plane.inner().state().dest_slot(id).expect("slot");
        let c = rvs_xdp::stats::dest_counts(self.plane.director(), slot);
        (c.active, c.inactive, c.persist, c.overloaded != 0)
    }

    pub fn conn_count(&self) -> usize {
        rvs_xdp::sweep::entries(self.plane.director())
            .expect("entries")
            .len()
    }
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: ip(addr),
        port,
    }
}

pub fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: ip(addr),
        port,
    }
}

/// Reason counters as a map code -> packets.
pub fn reason_map(r: &[(i32, u64, u64)]) -> std::collections::HashMap<i32, u64> {
    r.iter().map(|(c, p, _)| (*c, *p)).collect()
}

pub fn root_or_skip(what: &str) -> bool {
    rvs_testkit::require_root(what)
}

pub const XDP_DROP: u32 = 1;
pub const XDP_PASS: u32 = 2;
pub const XDP_TX: u32 = 3;
pub const XDP_REDIRECT: u32 = 4;
