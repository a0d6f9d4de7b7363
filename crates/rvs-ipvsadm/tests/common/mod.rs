//! Shared fixtures: a table with every feature the listings show, the connection table,
//! and a resolver that knows the names this machine's /etc/hosts and /etc/services give.
//!
//! The expected outputs in `tests/golden/` were produced by ipvsadm 1.31's own listing
//! code (ipvsadm.c built against a stub libipvs that serves this same table), so these
//! tests compare against ipvsadm itself, byte for byte.
#![allow(dead_code)]

use rvs_core::snapshot::{ConnInfo, DestInfo, ServiceInfo, TableInfo};
use rvs_core::*;
use rvs_ipvsadm::Resolver;
use std::net::{IpAddr, Ipv4Addr};

pub fn info() -> TableInfo {
    TableInfo {
        version: (1, 2, 1),
        size: 4096,
        num_services: 0,
        num_conns: 0,
    }
}

pub fn tcp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: addr.parse().unwrap(),
        port,
    }
}

pub fn udp(addr: &str, port: u16) -> ServiceKey {
    ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: addr.parse().unwrap(),
        port,
    }
}

pub fn counters(v: [u64; 5]) -> Counters {
    Counters {
        conns: v[0],
        inpkts: v[1],
        outpkts: v[2],
        inbytes: v[3],
        outbytes: v[4],
    }
}

pub fn rates(v: [u64; 5]) -> Rates {
    Rates {
        cps: v[0],
        inpps: v[1],
        outpps: v[2],
        inbps: v[3],
        outbps: v[4],
    }
}

pub fn service(cfg: ServiceConfig, dests: Vec<DestInfo>) -> ServiceInfo {
    ServiceInfo {
        cfg,
        stats: Counters::default(),
        rates: Rates::default(),
        dests,
    }
}

pub fn dest(addr: &str, port: u16, forward: Forward, weight: u32) -> DestInfo {
    DestInfo {
        cfg: DestConfig::new(addr.parse().unwrap(), port)
            .with_forward(forward)
            .with_weight(weight),
        activeconns: 0,
        inactconns: 0,
        persistconns: 0,
        overloaded: false,
        last_weight: weight,
        stats: Counters::default(),
        rates: Rates::default(),
    }
}

pub fn conns_of(mut d: DestInfo, active: u32, inactive: u32, persist: u32) -> DestInfo {
    d.activeconns = active;
    d.inactconns = inactive;
    d.persistconns = persist;
    d
}

/// Seed 001's NAT example (port mapping 80 -> 888), servers in kernel order (newest first).
pub fn seed001() -> Vec<ServiceInfo> {
    vec![service(
        ServiceConfig::new(tcp("172.16.132.18", 80)).with_scheduler("rr"),
        vec![
            dest("192.168.99.140", 888, Forward::Masq, 1),
            dest("192.168.99.130", 888, Forward::Masq, 1),
        ],
    )]
}

/// Every listing feature: port mapping, sh/mh flags, persistence with masks and a
/// persistence engine, one-packet scheduling, GUE/GRE tunnels with mixed families, fwmark
/// services (IPv4 and IPv6), SCTP, a local server, counters at every `print_largenum`
/// threshold, and addresses whose order exposes ipvsadm's wrapping comparison.
pub fn rich() -> Vec<ServiceInfo> {
    let mut nat = service(
        ServiceConfig::new(tcp("172.16.132.18", 80)).with_scheduler("rr"),
        vec![
            conns_of(dest("192.168.99.140", 888, Forward::Masq, 1), 3, 17, 0),
            conns_of(dest("192.168.99.130", 888, Forward::Masq, 1), 2, 19, 0),
        ],
    );
    nat.stats = counters([1200, 35000, 30000, 2_400_000, 120_000_000]);
    nat.rates = rates([2, 40, 35, 3000, 150_000]);
    nat.dests[0].stats = counters([600, 17000, 15000, 1_200_000, 60_000_000]);
    nat.dests[0].rates = rates([1, 20, 17, 1500, 75000]);
    nat.dests[1].stats = counters([600, 18000, 15000, 1_200_000, 60_000_000]);
    nat.dests[1].rates = rates([1, 20, 18, 1500, 75000]);

    let mut gue = conns_of(dest("10.1.0.2", 53, Forward::Tunnel, 3), 4, 5, 6);
    gue.cfg = gue.cfg.with_thresholds(100, 10);
    gue.cfg.tunnel = TunnelConfig {
        kind: TunnelType::Gue,
        port: 6080,
        csum: TunnelCsum::Csum,
    };
    let mut gre = conns_of(dest("2001:db8::2", 53, Forward::Tunnel, 3), 4, 5, 6);
    gre.cfg.tunnel = TunnelConfig {
        kind: TunnelType::Gre,
        port: 0,
        csum: TunnelCsum::Csum,
    };
    let mut sh_cfg = ServiceConfig::new(udp("10.0.0.1", 53))
        .with_scheduler("sh")
        .with_persistence(360);
    sh_cfg.sched_flags = SchedFlags(SchedFlags::SCHED1 | SchedFlags::SCHED2);
    sh_cfg.netmask = Netmask(24);
    sh_cfg.pe = Some("sip".into());
    let mut sh = service(
        sh_cfg,
        vec![
            gue,
            gre,
            conns_of(dest("10.1.0.1", 53, Forward::Route, 0), 12, 40, 0),
        ],
    );
    sh.stats = counters([
        123_456_789,
        99_999_999,
        1_000_000_000,
        100_000_000_000_000,
        99_999_999_999_999,
    ]);
    sh.rates = rates([5, 6, 7, 123_456_789_012, 3]);
    for d in &mut sh.dests[..2] {
        d.stats = counters([123, 456, 789, 1011, 1213]);
    }
    sh.dests[2].stats = counters([1, 2, 3, 4, 5]);
    for d in &mut sh.dests {
        d.rates = rates([1, 2, 3, 4, 5]);
    }

    let plain = service(ServiceConfig::new(tcp("10.0.0.1", 80)), vec![]);

    let mut mh_cfg = ServiceConfig::new(ServiceKey::Fwmark {
        mark: 7,
        family: Family::V4,
    })
    .with_scheduler("mh")
    .with_persistence(90);
    mh_cfg.sched_flags = SchedFlags(SchedFlags::SCHED1);
    let mut mh = service(
        mh_cfg,
        vec![conns_of(dest("192.168.7.1", 0, Forward::Route, 1), 0, 0, 2)],
    );

    let mut fwm6_cfg = ServiceConfig::new(ServiceKey::Fwmark {
        mark: 8,
        family: Family::V6,
    })
    .with_persistence(100);
    fwm6_cfg.netmask = Netmask(64);
    fwm6_cfg.ops = true;
    let mut fwm6 = service(
        fwm6_cfg,
        vec![conns_of(
            dest(
                "2001:db8:1234:5678:9abc:def0:1234:5678",
                0,
                Forward::Local,
                65535,
            ),
            u32::MAX,
            0,
            0,
        )],
    );

    let sctp_key = ServiceKey::Addr {
        proto: Protocol::Sctp,
        addr: "2001:db8::100".parse().unwrap(),
        port: 443,
    };
    let mut sctp = service(
        ServiceConfig::new(sctp_key)
            .with_scheduler("wrr")
            .with_persistence(60),
        vec![conns_of(
            dest("2001:db8::101", 443, Forward::Route, 2),
            1,
            1,
            1,
        )],
    );

    let mut ops_cfg = ServiceConfig::new(udp("192.168.0.1", 5060)).with_scheduler("rr");
    ops_cfg.ops = true;
    let ops = service(ops_cfg, vec![dest("192.168.0.10", 5060, Forward::Masq, 1)]);

    let local = service(
        ServiceConfig::new(tcp("127.0.0.1", 80)),
        vec![dest("127.0.0.1", 8080, Forward::Masq, 1)],
    );

    for s in [&mut mh, &mut fwm6, &mut sctp] {
        s.stats = counters([1, 2, 3, 4, 5]);
        s.rates = rates([1, 2, 3, 4, 5]);
        for d in &mut s.dests {
            d.stats = counters([1, 2, 3, 4, 5]);
            d.rates = rates([1, 2, 3, 4, 5]);
        }
    }
    // Creation order: what --nosort shows.
    vec![nat, sh, plain, mh, fwm6, sctp, ops, local]
}

pub fn conn(
    proto: u8,
    c: (&str, u16),
    v: (&str, u16),
    d: (&str, u16),
    state: &str,
    expires_ms: u64,
) -> ConnInfo {
    ConnInfo {
        proto,
        caddr: c.0.parse().unwrap(),
        cport: c.1,
        vaddr: v.0.parse().unwrap(),
        vport: v.1,
        daddr: d.0.parse().unwrap(),
        dport: d.1,
        state: state.into(),
        expires_ms,
        template: proto == 0,
        fwmark: 0,
        pe_name: None,
        pe_data: None,
    }
}

/// Connections: TCP, UDP, an fwmark template, IPv6, a SIP persistence entry, and an
/// expiry over 99 minutes.
pub fn conns() -> Vec<ConnInfo> {
    let c = ("10.9.9.9", 51234);
    let mut sip = conn(
        17,
        ("10.9.9.9", 5060),
        ("10.0.0.1", 5060),
        ("192.168.1.10", 5060),
        "UDP",
        170_400,
    );
    sip.pe_name = Some("sip".into());
    sip.pe_data = Some("1234567890abcdef@host".into());
    vec![
        conn(
            6,
            c,
            ("10.0.0.1", 80),
            ("192.168.1.10", 80),
            "ESTABLISHED",
            898_999,
        ),
        conn(
            17,
            ("10.9.9.9", 53),
            ("10.0.0.1", 53),
            ("192.168.1.10", 53),
            "UDP",
            299_000,
        ),
        conn(
            0,
            ("10.9.9.9", 0),
            ("10.0.0.1", 0),
            ("192.168.1.10", 0),
            "NONE",
            6_000_000,
        ),
        conn(
            6,
            ("2001:db8::9", 51234),
            ("2001:db8::1", 80),
            ("2001:db8::a", 80),
            "SYN_RECV",
            59_500,
        ),
        sip,
        conn(
            6,
            c,
            ("10.0.0.1", 80),
            ("192.168.1.10", 80),
            "CLOSE_WAIT",
            600_000_000,
        ),
    ]
}

/// The names this machine's `/etc/hosts` and `/etc/services` give for the fixtures, so a
/// golden produced with the system resolver is reproduced without touching it.
pub struct Names;

impl Resolver for Names {
    fn host_addr(&self, name: &str) -> Option<Ipv4Addr> {
        match name {
            "localhost" => Some(Ipv4Addr::LOCALHOST),
            "www.example.com" => Some(Ipv4Addr::new(10, 0, 0, 1)),
            _ => None,
        }
    }

    fn service_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        (1..=u16::MAX).find(|&p| self.service_name(p, proto).as_deref() == Some(name))
    }

    fn host_name(&self, addr: IpAddr) -> Option<String> {
        (addr == IpAddr::V4(Ipv4Addr::LOCALHOST)).then(|| "localhost".to_string())
    }

    fn service_name(&self, port: u16, proto: Protocol) -> Option<String> {
        let name = match (port, proto) {
            (53, Protocol::Tcp | Protocol::Udp) => "domain",
            (80, Protocol::Tcp) => "http",
            (443, Protocol::Tcp | Protocol::Udp) => "https",
            (5060, Protocol::Tcp | Protocol::Udp) => "sip",
            (8080, Protocol::Tcp) => "http-alt",
            _ => return None,
        };
        Some(name.to_string())
    }
}
