//! Connection synchronisation in the model (`net/netfilter/ipvs/ip_vs_sync.c`).
//!
//! * [`SyncEntry`]: one connection entry or template as the sync protocol carries it
//!   (kernel flag bits and state numbers), whatever the data plane;
//! * [`SyncParams`]: the `sync_*` sysctls, validated as the kernel's handlers validate them;
//! * [`sync_needed`]: `ip_vs_sync_conn_needed`, the master's decision to send an entry
//!   (the XDP program implements the same rule in BPF; the tests hold them together);
//! * [`Table::install_synced`]: `ip_vs_proc_conn`, how a backup adds or updates an entry;
//! * the master side of the model's own packet path ([`Table::set_sync_master`],
//!   [`Table::take_sync_out`]) for the planes whose entries live in the table.
//!
//! Wire encoding and the network are in the `rvs-sync` crate.

use crate::conn::{Conn, ConnId, InKey, NewConn, TemplateKey};
use crate::dest::{DestId, ServiceId};
use crate::error::{Errno, TableError};
use crate::state::{ConnState, SctpState, TcpState};
use crate::table::Table;
use crate::types::{Family, Forward, Millis, Protocol, ServiceKey};
use serde::{Deserialize, Serialize};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `IP_VS_CONN_F_*` (`include/uapi/linux/ip_vs.h`), the flag bits of a synced entry.
pub mod flags {
    pub const FWD_MASK: u32 = 0x0007;
    pub const MASQ: u32 = 0x0000;
    pub const LOCALNODE: u32 = 0x0001;
    pub const TUNNEL: u32 = 0x0002;
    pub const DROUTE: u32 = 0x0003;
    pub const SYNC: u32 = 0x0020;
    pub const HASHED: u32 = 0x0040;
    pub const NOOUTPUT: u32 = 0x0080;
    pub const INACTIVE: u32 = 0x0100;
    pub const OUT_SEQ: u32 = 0x0200;
    pub const IN_SEQ: u32 = 0x0400;
    pub const SEQ_MASK: u32 = 0x0600;
    pub const NO_CPORT: u32 = 0x0800;
    pub const TEMPLATE: u32 = 0x1000;
    pub const ONE_PACKET: u32 = 0x2000;
    /// The bits a backup keeps of what it receives (`IP_VS_CONN_F_BACKUP_MASK`).
    pub const BACKUP_MASK: u32 = FWD_MASK | NOOUTPUT | INACTIVE | SEQ_MASK | NO_CPORT | TEMPLATE;
    /// The bits an update may change on an existing entry (`IP_VS_CONN_F_BACKUP_UPD_MASK`).
    pub const BACKUP_UPD_MASK: u32 = INACTIVE | SEQ_MASK;
}

/// Kernel state numbers on the wire.
pub mod wire_state {
    /// `IP_VS_TCP_S_LAST`.
    pub const TCP_STATES: u16 = 11;
    /// `IP_VS_UDP_S_LAST`: UDP has one state, `NORMAL` (0).
    pub const UDP_STATES: u16 = 1;
    /// `IP_VS_SCTP_S_LAST`.
    pub const SCTP_STATES: u16 = 13;
    /// `IP_VS_CTPL_S_LAST`: templates are `NONE` (0) or `ASSURED` (1).
    pub const TEMPLATE_STATES: u16 = 2;
    pub const SCTP_INIT1: u16 = 1;
    pub const SCTP_ESTABLISHED: u16 = 7;
    pub const SCTP_SHUTDOWN_SENT: u16 = 8;
    pub const SCTP_SHUTDOWN_RECEIVED: u16 = 9;
    pub const SCTP_SHUTDOWN_ACK_SENT: u16 = 10;
    pub const SCTP_CLOSED: u16 = 12;
}

/// The longest timeout a synced entry may carry (`MAX_SCHEDULE_TIMEOUT / HZ` rounded
/// to what fits the model's milliseconds comfortably: about 68 years).
pub const MAX_SYNC_TIMEOUT_S: u32 = u32::MAX / 2;
/// The timeout of a template received without one (version 0): three minutes.
pub const DEFAULT_TEMPLATE_TIMEOUT_S: u32 = 180;
/// Entries the model's table holds before a backup refuses new ones (`table_full`): the
/// XDP plane's default capacity. The kernel has no limit but memory; a backup fed by
/// anyone on its segment needs one.
pub const MODEL_CONN_MAX: usize = 1 << 20;

/// One entry as the sync protocol carries it. Addresses of the three ends are of the same
/// family (the kernel syncs no heterogeneous entries).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncEntry {
    /// IPPROTO_* (0 for fwmark templates).
    pub proto: u8,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    pub fwmark: u32,
    /// [`flags`], as the sender had them (`HASHED` cleared).
    pub flags: u32,
    /// Kernel state number of the protocol, or 0/1 (`NONE`/`ASSURED`) for templates.
    pub state: u16,
    /// The entry's current timeout in seconds; 0 = the receiver's default for the state.
    pub timeout: u32,
    /// TCP sequence adjustments (`IPVS_OPT_SEQ_DATA`: in_seq then out_seq, each
    /// init_seq, delta, previous_delta). rvs does no sequence mangling; carried so a
    /// kernel peer gets what its master sent.
    pub seq: Option<[u32; 6]>,
    /// Persistence-engine name and data (`sip` and the Call-ID).
    pub pe_name: Option<String>,
    pub pe_data: Option<Vec<u8>>,
}

impl SyncEntry {
    pub fn family(&self) -> Family {
        Family::of(&self.caddr)
    }

    pub fn is_template(&self) -> bool {
        self.flags & flags::TEMPLATE != 0
    }

    pub fn is_inactive(&self) -> bool {
        self.flags & flags::INACTIVE != 0
    }

    /// The model state this entry is in; `None` when the number is out of range for its
    /// protocol (the kernel skips such an entry).
    pub fn conn_state(&self) -> Result<ConnState, SyncSkip> {
        if self.is_template() {
            return match self.state {
                0 => Ok(ConnState::Template { assured: false }),
                1 => Ok(ConnState::Template { assured: true }),
                _ => Err(SyncSkip::State),
            };
        }
        match Protocol::from_number(self.proto) {
            Some(Protocol::Tcp) => TcpState::ALL
                .get(self.state as usize)
                .map(|s| ConnState::Tcp(*s))
                .ok_or(SyncSkip::State),
            Some(Protocol::Udp) if self.state < wire_state::UDP_STATES => Ok(ConnState::Udp),
            Some(Protocol::Sctp) if self.state < wire_state::SCTP_STATES => {
                Ok(ConnState::Sctp(match self.state {
                    0 => SctpState::None,
                    s if s < wire_state::SCTP_ESTABLISHED => SctpState::Init,
                    wire_state::SCTP_ESTABLISHED => SctpState::Established,
                    _ => SctpState::Closed,
                }))
            }
            Some(_) => Err(SyncSkip::State),
            None => Err(SyncSkip::Protocol),
        }
    }
}

/// The kernel state number of a model state.
pub fn wire_state_of(s: ConnState) -> u16 {
    match s {
        ConnState::Tcp(t) => t as u16,
        ConnState::Udp => 0,
        ConnState::Sctp(SctpState::None) => 0,
        ConnState::Sctp(SctpState::Init) => wire_state::SCTP_INIT1,
        ConnState::Sctp(SctpState::Established) => wire_state::SCTP_ESTABLISHED,
        ConnState::Sctp(SctpState::Closed) => wire_state::SCTP_CLOSED,
        ConnState::Template { assured } => assured as u16,
    }
}

/// The `IP_VS_CONN_F_*` forwarding bits of a method.
pub fn fwd_flags(f: Forward) -> u32 {
    match f {
        Forward::Masq => flags::MASQ,
        Forward::Local => flags::LOCALNODE,
        Forward::Tunnel => flags::TUNNEL,
        Forward::Route => flags::DROUTE,
    }
}

/// The `net.ipv4.vs.sync_*` sysctls (defaults as in the kernel).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncParams {
    /// `sync_threshold`, first value: the packet count at which an entry is first sent.
    pub threshold: u32,
    /// `sync_threshold`, second value (the "sync period"): resent every that many packets.
    pub period: u32,
    /// `sync_refresh_period`, seconds: resend only when the expiry moved by this much
    /// (0 = off, the default).
    pub refresh_period: u32,
    /// `sync_retries` (0..3): resends of an unchanged entry, `refresh_period / 8` apart.
    pub retries: u32,
    /// `sync_persist_mode`: entries controlled by a template are not sent, only the
    /// template.
    pub persist_mode: bool,
    /// `sync_version`: 1 (the default) or 0, the format the master sends.
    pub version: u8,
    /// `sync_ports` (power of two, 1..64): sending/receiving threads, on ports
    /// `port`, `port + 1`, ...; read when the first daemon starts.
    pub ports: u32,
    /// `sync_qlen_max`: messages queued for sending at most; beyond, they are discarded.
    pub qlen_max: u64,
    /// `sync_sock_size`: SO_SNDBUF / SO_RCVBUF of the sync sockets (0 = system default).
    pub sock_size: u32,
}

/// `sync_qlen_max`'s default where the free memory cannot be read: the kernel's value on
/// a machine with about 512 MiB free (free pages / 32).
pub const DEFAULT_QLEN_MAX: u64 = 4096;

impl Default for SyncParams {
    fn default() -> Self {
        SyncParams {
            threshold: 3,
            period: 50,
            refresh_period: 0,
            retries: 0,
            persist_mode: false,
            version: 1,
            ports: 1,
            qlen_max: DEFAULT_QLEN_MAX,
            sock_size: 0,
        }
    }
}

/// The sysctl names [`SyncParams::set`] knows, in `/proc/sys/net/ipv4/vs` order.
pub const SYNC_SYSCTLS: &[&str] = &[
    "sync_threshold",
    "sync_period",
    "sync_refresh_period",
    "sync_retries",
    "sync_persist_mode",
    "sync_version",
    "sync_ports",
    "sync_qlen_max",
    "sync_sock_size",
];

fn invalid(msg: String) -> TableError {
    TableError::new(Errno::Invalid, msg)
}

fn number<T: std::str::FromStr>(name: &str, v: &str) -> Result<T, TableError> {
    v.trim()
        .parse()
        .map_err(|_| invalid(format!("{name}: {v:?} is not a valid value")))
}

impl SyncParams {
    /// `sync_refresh_period` in milliseconds.
    pub fn refresh_period_ms(&self) -> Millis {
        self.refresh_period as Millis * 1000
    }

    /// Sets one sysctl from its text (`sync_threshold` takes "THRESHOLD PERIOD", as
    /// `/proc/sys/net/ipv4/vs/sync_threshold` does; `sync_period` is rvs's name for its
    /// second value). Out-of-range values are refused as the kernel's handlers refuse
    /// them (EINVAL) and change nothing.
    ///
    /// # Errors
    /// Unknown name, unparsable or out-of-range value.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), TableError> {
        match name {
            "sync_threshold" => {
                let mut it = value.split_whitespace();
                let t: i64 = number(name, it.next().unwrap_or(""))?;
                let p: i64 = match it.next() {
                    Some(p) => number(name, p)?,
                    None => self.period as i64,
                };
                if it.next().is_some() {
                    return Err(invalid(format!("{name}: expected THRESHOLD [PERIOD]")));
                }
                self.set_threshold(t, p)
            }
            "sync_period" => {
                let p: i64 = number(name, value)?;
                self.set_threshold(self.threshold as i64, p)
            }
            "sync_refresh_period" => {
                let v: u32 = number(name, value)?;
                self.refresh_period = v;
                Ok(())
            }
            "sync_retries" => {
                let v: u32 = number(name, value)?;
                if v > 3 {
                    return Err(invalid(format!("{name}: {v} is out of range (0..3)")));
                }
                self.retries = v;
                Ok(())
            }
            "sync_persist_mode" => {
                let v: i64 = number(name, value)?;
                self.persist_mode = v != 0;
                Ok(())
            }
            "sync_version" => {
                let v: u8 = number(name, value)?;
                if v > 1 {
                    return Err(invalid(format!("{name}: {v} is not 0 or 1")));
                }
                self.version = v;
                Ok(())
            }
            "sync_ports" => {
                let v: u32 = number(name, value)?;
                if !(1..=64).contains(&v) || !v.is_power_of_two() {
                    return Err(invalid(format!(
                        "{name}: {v} is not a power of two from 1 to 64"
                    )));
                }
                self.ports = v;
                Ok(())
            }
            "sync_qlen_max" => {
                self.qlen_max = number(name, value)?;
                Ok(())
            }
            "sync_sock_size" => {
                self.sock_size = number(name, value)?;
                Ok(())
            }
            other => Err(TableError::new(
                Errno::NotFound,
                format!("no sysctl {other:?}"),
            )),
        }
    }

    /// `proc_do_sync_threshold`: both non-negative, and the threshold below the period
    /// unless the period is 0.
    fn set_threshold(&mut self, t: i64, p: i64) -> Result<(), TableError> {
        if t < 0 || p < 0 || (t >= p && p != 0) || t > u32::MAX as i64 || p > u32::MAX as i64 {
            return Err(invalid(format!(
                "sync_threshold: {t} {p}: the threshold must be below the period (or the period 0)"
            )));
        }
        self.threshold = t as u32;
        self.period = p as u32;
        Ok(())
    }

    /// The value of a sysctl as `/proc` prints it.
    pub fn get(&self, name: &str) -> Option<String> {
        Some(match name {
            "sync_threshold" => format!("{}\t{}", self.threshold, self.period),
            "sync_period" => self.period.to_string(),
            "sync_refresh_period" => self.refresh_period.to_string(),
            "sync_retries" => self.retries.to_string(),
            "sync_persist_mode" => (self.persist_mode as u8).to_string(),
            "sync_version" => self.version.to_string(),
            "sync_ports" => self.ports.to_string(),
            "sync_qlen_max" => self.qlen_max.to_string(),
            "sync_sock_size" => self.sock_size.to_string(),
            _ => return None,
        })
    }
}

/// What the master remembers of an entry between syncs (`cp->old_state`,
/// `cp->sync_endtime`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SyncMark {
    /// The state last synced.
    pub old_state: u16,
    /// The expiry time the last sync announced, in ms, rounded down to a multiple of 4;
    /// the low two bits count the retries of an unchanged entry.
    pub end: u64,
}

/// What [`sync_needed`] looks at of an entry.
#[derive(Clone, Copy, Debug)]
pub struct SyncView {
    pub template: bool,
    pub proto: u8,
    /// Kernel state number.
    pub state: u16,
    /// Controlled by a persistence template.
    pub controlled: bool,
    /// The entry's current timeout in ms.
    pub timeout_ms: Millis,
}

const TCP_SYNC_STATES: [u16; 5] = [
    TcpState::Established as u16,
    TcpState::FinWait as u16,
    TcpState::Close as u16,
    TcpState::CloseWait as u16,
    TcpState::TimeWait as u16,
];

const SCTP_SYNC_STATES: [u16; 5] = [
    wire_state::SCTP_ESTABLISHED,
    wire_state::SCTP_SHUTDOWN_SENT,
    wire_state::SCTP_SHUTDOWN_RECEIVED,
    wire_state::SCTP_SHUTDOWN_ACK_SENT,
    wire_state::SCTP_CLOSED,
];

/// `ip_vs_sync_conn_needed`: whether the master sends an entry on its `pkts`-th inbound
/// packet at time `now` (ms). Updates `mark` when it does.
///
/// * templates: no state filter and never forced; only `sync_refresh_period`, or a period
///   of 0, thins them out;
/// * with `sync_persist_mode`, an entry controlled by a template is never sent;
/// * TCP (SCTP): only in ESTABLISHED, FIN_WAIT, CLOSE, CLOSE_WAIT, TIME_WAIT (SCTP:
///   ESTABLISHED, SHUTDOWN_*, CLOSED); a move into one of them other than ESTABLISHED is
///   sent at once;
/// * with `sync_refresh_period`, an entry whose expiry moved by less than
///   `min(refresh, max(timeout / 2, 10 s))` is resent only `sync_retries` times,
///   `refresh / 8` apart;
/// * with a period, other entries go on packets `threshold`, `threshold + period`, ...;
///   with neither period nor refresh, once at `threshold`.
pub fn sync_needed(
    p: &SyncParams,
    v: &SyncView,
    mark: &mut SyncMark,
    pkts: u32,
    now: Millis,
) -> bool {
    let orig = mark.end;
    let mut n = (now + v.timeout_ms) & !3;
    let mut at_once = false;
    if v.template {
    } else if p.persist_mode && v.controlled {
        return false;
    } else if v.proto == Protocol::Tcp.number() || v.proto == Protocol::Sctp.number() {
        let states: &[u16] = if v.proto == Protocol::Tcp.number() {
            &TCP_SYNC_STATES
        } else {
            &SCTP_SYNC_STATES
        };
        if !states.contains(&v.state) {
            return false;
        }
        // A move into a sync state other than ESTABLISHED goes at once. (The kernel also
        // "forces" a move into ESTABLISHED, which only matters when another CPU wins the
        // compare-and-swap of `sync_endtime`; the model is single-threaded.)
        at_once = v.state != mark.old_state && v.state != states[0];
    }
    if !at_once {
        let refresh = p.refresh_period_ms();
        if refresh > 0 {
            let diff = n as i64 - orig as i64;
            let min_diff = (v.timeout_ms / 2).max(10_000) as i64;
            if diff.abs() < (refresh as i64).min(min_diff) {
                let retries = orig & 3;
                if retries >= p.retries as u64 {
                    return false;
                }
                if (now as i64) < orig as i64 - v.timeout_ms as i64 + (refresh / 8) as i64 {
                    return false;
                }
                n |= retries + 1;
            }
        }
        if p.period > 0 {
            if !v.template && pkts % p.period != p.threshold {
                return false;
            }
        } else if refresh == 0 && pkts != p.threshold {
            return false;
        }
    }
    mark.old_state = v.state;
    mark.end = n;
    true
}

/// Whether the `pkts`-th packet of an entry whose state did not change may sync it: the
/// packet rule of [`sync_needed`] alone (the XDP fast path's cheap test, `sync_due`).
pub fn sync_due(p: &SyncParams, pkts: u32) -> bool {
    if p.refresh_period > 0 {
        return true;
    }
    if p.period > 0 {
        return pkts % p.period == p.threshold;
    }
    pkts == p.threshold
}

/// Which of the model's entries a master sends (the planes whose entries live in the
/// table: the proxy plane sends only templates, because a relayed connection cannot move
/// to another machine).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncScope {
    All,
    TemplatesOnly,
}

/// Why a received entry was not installed (named for the counters of `rvsadm --status`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SyncSkip {
    /// A protocol IPVS does not know (the kernel skips the entry).
    Protocol,
    /// A state number out of range for the protocol.
    State,
    /// No virtual service matches (protocol, VIP, port or fwmark).
    NoService,
    /// The service has no real server with that address and port (the kernel would
    /// create an unbound entry and bind it when the server appears; rvs skips it and the
    /// master's next sync of the entry brings it in).
    NoDest,
    /// The data plane does not serve this kind of entry (e.g. SCTP, sip persistence).
    Unsupported,
    /// The connection table is full.
    TableFull,
    /// The entry changed under the install (a packet expired it at that moment); the
    /// next sync brings it in.
    Race,
}

impl SyncSkip {
    pub const ALL: [SyncSkip; 7] = [
        SyncSkip::Protocol,
        SyncSkip::State,
        SyncSkip::NoService,
        SyncSkip::NoDest,
        SyncSkip::Unsupported,
        SyncSkip::TableFull,
        SyncSkip::Race,
    ];

    pub fn name(self) -> &'static str {
        match self {
            SyncSkip::Protocol => "unknown_protocol",
            SyncSkip::State => "bad_state",
            SyncSkip::NoService => "no_service",
            SyncSkip::NoDest => "no_dest",
            SyncSkip::Unsupported => "unsupported",
            SyncSkip::TableFull => "table_full",
            SyncSkip::Race => "race",
        }
    }
}

/// What installing a received entry did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyncInstall {
    Created,
    Updated,
    /// An inactive update for an entry that already points at another server: the
    /// expiry notice of a connection the master has replaced (ignored, as the kernel does).
    Stale,
}

/// The address a fwmark template carries as its virtual address (mark 1 = `0.0.0.1`).
pub fn fwmark_addr(mark: u32, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(mark)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(mark as u128)),
    }
}

impl Table {
    /// `ip_vs_service_find` for a received entry: fwmark first, then (protocol, VIP,
    /// port), then a port-0 service of the VIP.
    pub fn sync_service(&self, e: &SyncEntry) -> Option<ServiceId> {
        let family = e.family();
        if e.fwmark != 0 {
            let key = ServiceKey::Fwmark {
                mark: e.fwmark,
                family,
            };
            if let Some(id) = self.service_id(&key) {
                return Some(id);
            }
        }
        let proto = Protocol::from_number(e.proto)?;
        self.find_service(proto, e.vaddr, e.vport, 0)
    }

    /// `ip_vs_find_dest`: the real server of a received entry in its service (for a
    /// fwmark service with a non-NAT server, the server is matched with port 0).
    pub fn sync_dest(&self, sid: ServiceId, e: &SyncEntry) -> Option<DestId> {
        let mut port = e.dport;
        if e.fwmark != 0 && e.flags & flags::FWD_MASK != flags::MASQ {
            port = 0;
        }
        self.find_dest(sid, e.daddr, port)
            .or_else(|| self.find_dest(sid, e.daddr, port ^ e.dport))
    }

    /// `ip_vs_proc_conn`: adds or updates an entry received from a sync master.
    ///
    /// A connection found with another real server is replaced by an active update and
    /// kept by an inactive one (the master's expiry notice of a connection it replaced).
    /// An existing entry takes the received INACTIVE bit (moving the server's counters),
    /// state and timeout. A new entry is counted on its server (active, inactive or
    /// persistent) but not in the traffic counters; it controls nothing and is controlled
    /// by nothing until traffic reaches it. The timeout is the received one, or the
    /// state's (templates: 180 s) when 0.
    ///
    /// # Errors
    /// Why the entry was skipped; the table is unchanged then.
    pub fn install_synced(&mut self, now: Millis, e: &SyncEntry) -> Result<SyncInstall, SyncSkip> {
        let state = e.conn_state()?;
        let template = e.is_template();
        let fl = e.flags & flags::BACKUP_MASK;
        let inactive = fl & flags::INACTIVE != 0;
        let sid = self.sync_service(e).ok_or(SyncSkip::NoService)?;
        let dest = self.sync_dest(sid, e).ok_or(SyncSkip::NoDest)?;
        let timeout_s = match e.timeout {
            0 if template => DEFAULT_TEMPLATE_TIMEOUT_S,
            0 => self.timeouts.of(state),
            t => t.min(MAX_SYNC_TIMEOUT_S),
        };
        let timeout = timeout_s as Millis * 1000;
        let tkey = template.then(|| TemplateKey {
            proto: e.proto,
            snet: e.caddr,
            vaddr: e.vaddr,
            vport: e.vport,
            pe_data: e.pe_data.clone().unwrap_or_default(),
        });
        let found = match &tkey {
            Some(k) => self.conns.lookup_template(k),
            None => self.conns.lookup_in(&InKey {
                proto: e.proto,
                caddr: e.caddr,
                cport: e.cport,
                vaddr: e.vaddr,
                vport: e.vport,
            }),
        };
        let found = match found {
            Some(id) if !template => {
                let c = self.conns.get(id).expect("live");
                if c.dport != e.dport || c.daddr != e.daddr {
                    if inactive {
                        return Ok(SyncInstall::Stale);
                    }
                    self.expire_now(now, id);
                    self.conns.unhash(id);
                    None
                } else {
                    Some(id)
                }
            }
            other => other,
        };
        let threshold = self.sync.params.threshold as u64;
        let (outcome, id) = match found {
            Some(id) => {
                self.sync_update(id, inactive, template);
                (SyncInstall::Updated, id)
            }
            None => {
                if self.conns.len() >= MODEL_CONN_MAX {
                    return Err(SyncSkip::TableFull);
                }
                let forward = self
                    .dests
                    .get(dest)
                    .expect("found in the service")
                    .cfg
                    .forward;
                let n = NewConn {
                    proto: e.proto,
                    caddr: e.caddr,
                    cport: e.cport,
                    vaddr: e.vaddr,
                    vport: e.vport,
                    daddr: e.daddr,
                    dport: e.dport,
                    fwmark: e.fwmark,
                    forward,
                    state,
                    one_packet: false,
                    synced: true,
                    dest,
                    svc: sid,
                    tkey,
                };
                let id = self.conns.insert(n, now, timeout);
                if !template {
                    self.conns.get_mut(id).expect("live").inactive = inactive;
                }
                self.bind(id);
                (SyncInstall::Created, id)
            }
        };
        let c = self.conns.get_mut(id).expect("live");
        c.state = state;
        c.in_pkts = threshold;
        c.sync.old_state = e.state;
        self.conns.rearm(id, now, timeout);
        Ok(outcome)
    }

    /// An update of an existing entry: only INACTIVE moves (with the server's counters).
    fn sync_update(&mut self, id: ConnId, inactive: bool, template: bool) {
        let c = self.conns.get_mut(id).expect("live");
        if template || c.inactive == inactive {
            return;
        }
        c.inactive = inactive;
        let dest = c.dest;
        if let Some(d) = self.dests.get_mut(dest) {
            if inactive {
                d.activeconns -= 1;
                d.inactconns += 1;
            } else {
                d.activeconns += 1;
                d.inactconns -= 1;
            }
        }
        self.notify_load(dest);
    }

    /// Starts (`Some`) or stops (`None`) the master side of the model's packet path:
    /// entries it decides to send collect in an outbox ([`Table::take_sync_out`]).
    pub fn set_sync_master(&mut self, scope: Option<SyncScope>) {
        self.sync.master = scope;
        if scope.is_none() {
            self.sync.out.clear();
        }
    }

    pub fn sync_master(&self) -> Option<SyncScope> {
        self.sync.master
    }

    /// The sync sysctls.
    pub fn sync_params(&self) -> &SyncParams {
        &self.sync.params
    }

    pub fn sync_params_mut(&mut self) -> &mut SyncParams {
        &mut self.sync.params
    }

    /// The entries the master decided to send since the last call, and how many were
    /// dropped because the outbox was full.
    pub fn take_sync_out(&mut self) -> (Vec<SyncEntry>, u64) {
        let dropped = std::mem::take(&mut self.sync.out_dropped);
        (std::mem::take(&mut self.sync.out), dropped)
    }

    /// `ip_vs_sync_conn`: offers an entry on its `pkts`-th inbound packet, then its
    /// controlling template (whose own packet count goes up by one each time). The
    /// template is offered with the packets that may sync the entry ([`sync_due`]) and
    /// with `event`s (a new entry, a state change); the kernel offers it with every packet
    /// of its children, which changes nothing a backup ends up with but costs a data plane
    /// a lookup per packet (docs/sync.md).
    pub(crate) fn sync_conn(&mut self, now: Millis, id: ConnId, pkts: u64, event: bool) {
        let Some(scope) = self.sync.master else {
            return;
        };
        let template_too = event || sync_due(&self.sync.params, pkts as u32);
        let mut cur = Some((id, pkts));
        while let Some((id, pkts)) = cur {
            let Some(c) = self.conns.get(id) else {
                return;
            };
            let template = c.is_template();
            let control = c.control;
            if !c.one_packet {
                let view = SyncView {
                    template,
                    proto: c.proto,
                    state: wire_state_of(c.state),
                    controlled: control.is_some(),
                    timeout_ms: c.timeout,
                };
                let params = self.sync.params.clone();
                let c = self.conns.get_mut(id).expect("live");
                if sync_needed(&params, &view, &mut c.sync, pkts as u32, now)
                    && (template || scope == SyncScope::All)
                {
                    let entry = self.sync_entry(id);
                    if self.sync.out.len() < SYNC_OUTBOX_MAX {
                        self.sync.out.push(entry);
                    } else {
                        self.sync.out_dropped += 1;
                    }
                }
            }
            cur = control.filter(|_| template_too).and_then(|t| {
                let tc = self.conns.get_mut(t)?;
                tc.in_pkts += 1;
                Some((t, tc.in_pkts))
            });
        }
    }

    /// The entry as the sync protocol carries it.
    pub fn sync_entry(&self, id: ConnId) -> SyncEntry {
        let c = self.conns.get(id).expect("live");
        sync_entry_of(c)
    }
}

/// The wire view of a model entry: the flags the kernel would have on it (forwarding
/// method, NOOUTPUT for non-NAT servers, INACTIVE, TEMPLATE).
pub fn sync_entry_of(c: &Conn) -> SyncEntry {
    let template = c.is_template();
    let mut fl = fwd_flags(c.forward);
    if c.forward != Forward::Masq {
        fl |= flags::NOOUTPUT;
    }
    if template {
        fl |= flags::TEMPLATE | flags::INACTIVE;
    } else if c.inactive {
        fl |= flags::INACTIVE;
    }
    let pe = c.tkey.as_ref().filter(|k| !k.pe_data.is_empty());
    SyncEntry {
        proto: c.proto,
        caddr: c.caddr,
        cport: c.cport,
        vaddr: c.vaddr,
        vport: c.vport,
        daddr: c.daddr,
        dport: c.dport,
        fwmark: c.fwmark,
        flags: fl,
        state: wire_state_of(c.state),
        timeout: (c.timeout / 1000).min(u32::MAX as u64) as u32,
        seq: None,
        pe_name: pe.map(|_| "sip".to_string()),
        pe_data: pe.map(|k| k.pe_data.clone()),
    }
}

/// Entries the model's master keeps for the sync daemon at most (beyond, they are
/// dropped and counted, as the kernel drops buffers beyond `sync_qlen_max`).
pub const SYNC_OUTBOX_MAX: usize = 65_536;

/// The sync state of the table.
#[derive(Debug, Default)]
pub(crate) struct SyncState {
    pub params: SyncParams,
    pub master: Option<SyncScope>,
    pub out: Vec<SyncEntry>,
    pub out_dropped: u64,
}

#[cfg(test)]
mod tests;
