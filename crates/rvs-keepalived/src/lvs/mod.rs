//! `virtual_server`, `real_server`, `sorry_server` (`check_parser.c`). Values are kept as
//! written (`None` = not set) until [`crate::finalize`] applies keepalived's defaults and
//! corrections; [`VirtualServer::timing`] resolves the checker timers.

mod parse;

pub(crate) use parse::smtp_unsupported;
pub use parse::{parse_method, parse_vs};

use crate::checker::Checker;
use crate::diag::Pos;
use crate::script::Script;
use rvs_core::{
    Family, Forward, Netmask, Protocol, SchedFlags, TunnelConfig, TunnelCsum, TunnelType,
};
use std::net::IpAddr;
use std::time::Duration;

/// keepalived's `KEEPALIVED_DEFAULT_DELAY`.
pub const DEFAULT_DELAY_LOOP: Duration = Duration::from_secs(60);
/// Default `connect_timeout` of a virtual server.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// What a `virtual_server` line names.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum VsTarget {
    /// `virtual_server IP [PORT]`; port 0 = none given.
    Addr { ip: IpAddr, port: u16 },
    /// `virtual_server fwmark N`.
    Fwmark(u32),
    /// `virtual_server group NAME`.
    Group(String),
}

/// `lvs_method`/`lb_kind` with its tunnel options.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct LvsMethod {
    pub forward: Forward,
    pub tunnel: TunnelConfig,
}

impl LvsMethod {
    /// keepalived's default (ipvsadm's is DR).
    pub const NAT: LvsMethod = LvsMethod {
        forward: Forward::Masq,
        tunnel: TunnelConfig {
            kind: TunnelType::Ipip,
            port: 0,
            csum: TunnelCsum::NoCsum,
        },
    };

    pub fn name(&self) -> &'static str {
        match self.forward {
            Forward::Masq => "NAT",
            Forward::Route | Forward::Local => "DR",
            Forward::Tunnel => "TUN",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualServer {
    pub pos: Pos,
    pub target: VsTarget,
    /// `ip_family` (fwmark services), else derived from the addresses.
    pub ip_family: Option<Family>,
    pub delay_loop: Duration,
    /// `lvs_sched` / `lb_algo`; `None` until finalized (then `wlc` if unset).
    pub lvs_sched: Option<String>,
    pub sched_flags: SchedFlags,
    /// `sh-port` etc. as written, checked against the scheduler when finalized.
    pub sched_flag_words: Vec<(String, Pos)>,
    /// `ops` (one-packet scheduling, UDP only).
    pub ops: bool,
    /// `lvs_method` / `lb_kind`; NAT when neither the service nor a server sets one.
    pub lvs_method: Option<LvsMethod>,
    pub persistence_engine: Option<String>,
    /// Seconds; `persistence_timeout` alone means 360, `0` means not persistent.
    pub persistence_timeout: Option<u32>,
    pub persistence_granularity: Option<Netmask>,
    pub protocol: Option<Protocol>,
    pub ha_suspend: bool,
    pub virtualhost: Option<String>,
    pub alpha: bool,
    pub omega: bool,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    /// `weight` of the virtual server: the default weight of its real servers.
    pub weight: u32,
    pub sorry_server: Option<SorryServer>,
    pub connect_timeout: Duration,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub inhibit_on_failure: bool,
    pub smtp_alert: Option<bool>,
    pub real_servers: Vec<RealServer>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SorryServer {
    pub pos: Pos,
    pub addr: IpAddr,
    pub port: u16,
    /// `sorry_server_inhibit`: kept in the table with weight 0 while not needed.
    pub inhibit: bool,
    pub lvs_method: Option<LvsMethod>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RealServer {
    pub pos: Pos,
    pub addr: IpAddr,
    /// 0 until finalized when not given.
    pub port: u16,
    /// `None`: the virtual server's `weight` (default 1).
    pub weight: Option<u32>,
    pub lvs_method: Option<LvsMethod>,
    pub inhibit_on_failure: Option<bool>,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    pub uthreshold: u32,
    pub lthreshold: u32,
    pub alpha: Option<bool>,
    pub retry: Option<u32>,
    pub delay_before_retry: Option<Duration>,
    pub warmup: Option<Duration>,
    pub delay_loop: Option<Duration>,
    pub connect_timeout: Option<Duration>,
    pub virtualhost: Option<String>,
    pub smtp_alert: Option<bool>,
    pub checkers: Vec<Checker>,
}

/// The resolved timers of one checker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timing {
    pub delay_loop: Duration,
    pub retry: u32,
    pub delay_before_retry: Duration,
    pub warmup: Duration,
    pub connect_timeout: Duration,
    pub alpha: bool,
}

impl VirtualServer {
    fn new(pos: Pos, target: VsTarget) -> VirtualServer {
        VirtualServer {
            pos,
            target,
            ip_family: None,
            delay_loop: DEFAULT_DELAY_LOOP,
            lvs_sched: None,
            sched_flags: SchedFlags::default(),
            sched_flag_words: Vec::new(),
            ops: false,
            lvs_method: None,
            persistence_engine: None,
            persistence_timeout: None,
            persistence_granularity: None,
            protocol: None,
            ha_suspend: false,
            virtualhost: None,
            alpha: false,
            omega: false,
            quorum: 1,
            hysteresis: 0,
            quorum_up: None,
            quorum_down: None,
            weight: 1,
            sorry_server: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            retry: None,
            delay_before_retry: None,
            warmup: None,
            inhibit_on_failure: false,
            smtp_alert: None,
            real_servers: Vec::new(),
        }
    }

    /// keepalived's `check_data` inheritance: checker → real server → virtual server →
    /// the checker type's default.
    pub fn timing(&self, rs: &RealServer, ck: &Checker) -> Timing {
        let c = &ck.common;
        let delay_loop = c.delay_loop.or(rs.delay_loop).unwrap_or(self.delay_loop);
        Timing {
            delay_loop,
            retry: c
                .retry
                .or(rs.retry)
                .or(self.retry)
                .unwrap_or_else(|| ck.kind.default_retry()),
            delay_before_retry: c
                .delay_before_retry
                .or(rs.delay_before_retry)
                .or(self.delay_before_retry)
                .or_else(|| ck.kind.default_delay_before_retry())
                .unwrap_or(delay_loop),
            warmup: c.warmup.or(rs.warmup).or(self.warmup).unwrap_or(delay_loop),
            connect_timeout: c
                .connect_timeout
                .or(rs.connect_timeout)
                .unwrap_or(self.connect_timeout),
            alpha: c.alpha.or(rs.alpha).unwrap_or(self.alpha),
        }
    }

    /// `inhibit_on_failure` of a real server (its own, else the virtual server's).
    pub fn inhibit(&self, rs: &RealServer) -> bool {
        rs.inhibit_on_failure.unwrap_or(self.inhibit_on_failure)
    }

    /// The forwarding method of a real server (its own, else the virtual server's).
    pub fn method_of(&self, rs: &RealServer) -> LvsMethod {
        rs.lvs_method.or(self.lvs_method).unwrap_or(LvsMethod::NAT)
    }

    /// The configured weight of a real server.
    pub fn weight_of(&self, rs: &RealServer) -> u32 {
        rs.weight.unwrap_or(self.weight)
    }
}
