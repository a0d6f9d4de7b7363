//! The ABI codec: values of the table (`rvs_core`) encoded as the structs of
//! `bpf/include/rvs_abi.h` (mirrored in [`abi`]), and addresses decoded back.
//! Pure functions, no map access: the reconciler ([`reconcile`](crate::reconcile)) writes
//! what they build.

use crate::abi::{self, Plain};
use rvs_core::state::{tcp_next, Dir, TcpFlags, TcpState};
use rvs_core::{Family, Forward, SchedKind, ServiceKey, Table, TunnelType};
use std::net::IpAddr;

/// 16 address bytes as the ABI holds them: IPv4 in the first four.
pub fn addr_bytes(a: &IpAddr) -> [u8; 16] {
    let mut b = [0u8; 16];
    match a {
        IpAddr::V4(v4) => b[..4].copy_from_slice(&v4.octets()),
        IpAddr::V6(v6) => b = v6.octets(),
    }
    b
}

pub fn family_code(f: Family) -> u8 {
    match f {
        Family::V4 => abi::RVS_AF_INET,
        Family::V6 => abi::RVS_AF_INET6,
    }
}

pub fn sched_code(k: SchedKind) -> u8 {
    match k {
        SchedKind::Rr => abi::RVS_SCHED_RR,
        SchedKind::Wrr => abi::RVS_SCHED_WRR,
        SchedKind::Lc => abi::RVS_SCHED_LC,
        SchedKind::Wlc => abi::RVS_SCHED_WLC,
        SchedKind::Sed => abi::RVS_SCHED_SED,
        SchedKind::Nq => abi::RVS_SCHED_NQ,
        SchedKind::Lblc => abi::RVS_SCHED_LBLC,
        SchedKind::Lblcr => abi::RVS_SCHED_LBLCR,
        SchedKind::Dh => abi::RVS_SCHED_DH,
        SchedKind::Sh => abi::RVS_SCHED_SH,
        SchedKind::Mh => abi::RVS_SCHED_MH,
        SchedKind::Fo => abi::RVS_SCHED_FO,
        SchedKind::Ovf => abi::RVS_SCHED_OVF,
        SchedKind::Twos => abi::RVS_SCHED_TWOS,
        SchedKind::None => abi::RVS_SCHED_NONE,
    }
}

/// The BPF key of a service.
pub fn svc_key(key: &ServiceKey) -> abi::SvcKey {
    let mut k = abi::SvcKey::default();
    match *key {
        ServiceKey::Addr { proto, addr, port } => {
            k.addr = addr_bytes(&addr);
            k.port = port.to_be();
            k.proto = proto.number();
            k.family = family_code(Family::of(&addr));
        }
        ServiceKey::Fwmark { mark, family } => {
            k.addr[..4].copy_from_slice(&mark.to_ne_bytes());
            k.family = family_code(family);
        }
    }
    k
}

/// The config value generated from the table's sysctls and timeouts and from
/// `rvs_core::state` (so the BPF state machine cannot diverge from the model's).
pub fn config_of(table: &Table) -> abi::Config {
    let mut c = abi::Config {
        abi_version: abi::RVS_ABI_VERSION,
        ..Default::default()
    };
    let s = &table.sysctl;
    c.flags = (if s.expire_nodest_conn {
        abi::RVS_CFG_EXPIRE_NODEST_CONN
    } else {
        0
    }) | (if s.expire_quiescent_template {
        abi::RVS_CFG_EXPIRE_QUIESCENT_TEMPLATE
    } else {
        0
    }) | (if s.sloppy_tcp {
        abi::RVS_CFG_SLOPPY_TCP
    } else {
        0
    }) | (if s.secure_tcp {
        abi::RVS_CFG_SECURE_TCP
    } else {
        0
    });
    c.conn_reuse_mode = s.conn_reuse_mode as u32;
    c.udp_timeout = table.timeouts.udp;
    c.tcp_timeout = table.timeouts.tcp;
    for st in TcpState::ALL {
        if st.is_active() {
            c.tcp_active |= 1 << (st as u32);
        }
    }
    let events = [
        TcpFlags::SYN,
        TcpFlags {
            fin: true,
            ..Default::default()
        },
        TcpFlags::ACK,
        TcpFlags::RST,
    ];
    for (secure_i, secure) in [false, true].into_iter().enumerate() {
        // tables: 0 INPUT, 1 OUTPUT, 2 INPUT-ONLY
        for (ti, (dir, input_only)) in [(Dir::In, false), (Dir::Out, false), (Dir::In, true)]
            .into_iter()
            .enumerate()
        {
            for (ev, flags) in events.iter().enumerate() {
                for st in TcpState::ALL {
                    let idx = ((secure_i * 3 + ti) * 4 + ev) * 11 + st as usize;
                    c.tcp_next[idx] = tcp_next(st, dir, input_only, *flags, secure) as u8;
                }
            }
        }
    }
    sync_config(table, &mut c);
    c
}

/// The connection-sync part of the config: the master's switch and the `sync_*` sysctls.
fn sync_config(table: &Table, c: &mut abi::Config) {
    if table.sync_master().is_some() {
        c.flags |= abi::RVS_CFG_SYNC_MASTER;
    }
    let p = table.sync_params();
    c.sync_threshold = p.threshold;
    c.sync_period = p.period;
    c.sync_refresh_ms = p.refresh_period.saturating_mul(1000);
    c.sync_retries = p.retries;
    c.sync_persist_mode = p.persist_mode as u32;
}

/// A real server's BPF configuration.
pub fn dest_value(cfg: &rvs_core::DestConfig, svc_slot: u32, available: bool) -> abi::Dest {
    abi::Dest {
        addr: addr_bytes(&cfg.addr),
        port: cfg.port.to_be(),
        family: family_code(Family::of(&cfg.addr)),
        fwd: cfg.forward.code() as u8,
        tun_type: match cfg.tunnel.kind {
            TunnelType::Ipip => abi::RVS_TUN_IPIP,
            TunnelType::Gue => abi::RVS_TUN_GUE,
            TunnelType::Gre => abi::RVS_TUN_GRE,
        },
        tun_flags: match cfg.tunnel.csum {
            rvs_core::TunnelCsum::NoCsum => 0,
            rvs_core::TunnelCsum::Csum => 1,
            rvs_core::TunnelCsum::RemCsum => 2,
        },
        tun_port: cfg.tunnel.port.to_be(),
        weight: cfg.weight,
        u_threshold: cfg.u_threshold,
        l_threshold: cfg.l_threshold,
        svc: svc_slot,
        flags: if available { abi::RVS_DF_AVAILABLE } else { 0 },
    }
}

/// The address held in 16 ABI bytes (IPv4 in the first four).
pub fn ip_of(family: u8, b: &[u8; 16]) -> IpAddr {
    if family == abi::RVS_AF_INET {
        IpAddr::from([b[0], b[1], b[2], b[3]])
    } else {
        IpAddr::from(*b)
    }
}

/// The service flags the program reads (`RVS_SF_*`).
pub fn service_flags(cfg: &rvs_core::ServiceConfig) -> u32 {
    let mut f = cfg.sched_flags.0 & (abi::RVS_SF_SCHED1 | abi::RVS_SF_SCHED2 | abi::RVS_SF_SCHED3);
    if cfg.persistence.is_some() {
        f |= abi::RVS_SF_PERSISTENT;
    }
    if cfg.ops {
        f |= abi::RVS_SF_OPS;
    }
    if cfg.key.is_fwmark() {
        f |= abi::RVS_SF_FWMARK;
    }
    if cfg.pe.is_some() {
        f |= abi::RVS_SF_PE;
    }
    f
}

/// Forwarding methods the plane serves, for `facts()`.
pub fn method_name(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "nat",
        Forward::Tunnel => "tun",
        Forward::Route => "dr",
        Forward::Local => "local",
    }
}

/// Keys of the reconciler's sets and maps.
impl std::hash::Hash for abi::VipKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.addr.hash(h);
        self.family.hash(h);
    }
}

impl std::hash::Hash for abi::SvcKey {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        self.as_bytes().hash(h);
    }
}
