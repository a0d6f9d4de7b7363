//! `vrrp_script`, `vrrp_sync_group`, `vrrp_instance` (`vrrp/vrrp_parser.c`,
//! `vrrp_ipaddress.c`). Parsed completely so the VRRP work can act on them; what a field
//! means and its default is on the field. Helpers resolve keepalived's derived defaults
//! (priority from state, state from priority, version).

mod parse;

pub use parse::{parse_instance, parse_script, parse_sync_group};

use crate::diag::Pos;
use crate::script::Script;
use std::net::IpAddr;
use std::time::Duration;

/// `state MASTER|BACKUP`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum VrrpState {
    Master,
    Backup,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AuthType {
    /// Simple password (RFC 2338), v2/IPv4 only.
    Pass,
    /// IPsec AH (HMAC-MD5-96), v2/IPv4 only.
    Ah,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authentication {
    pub auth_type: AuthType,
    /// At most 8 bytes (longer ones are truncated, with a warning, as keepalived does).
    pub auth_pass: Vec<u8>,
}

/// One line of `virtual_ipaddress { … }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VirtualIp {
    pub addr: IpAddr,
    /// Prefix length; 32/128 when not given.
    pub prefix: u8,
    /// `brd IP`, `brd +` (all host bits set) or `brd -` (all clear).
    pub broadcast: Option<String>,
    /// `dev IF` (default: the instance's interface).
    pub dev: Option<String>,
    pub scope: Option<String>,
    pub label: Option<String>,
    pub peer: Option<IpAddr>,
    /// `no_track`: the address going away does not put the instance in FAULT.
    pub no_track: bool,
    /// `use_vmac`: this address goes on the VMAC interface.
    pub use_vmac: bool,
    /// `home`, `-nodad`, `mngtmpaddr`, `noprefixroute`, `autojoin`.
    pub flags: Vec<String>,
    /// `preferred_lft N|forever` (None = forever).
    pub preferred_lft: Option<u32>,
}

/// `track_interface` entry: `IF [weight W [reverse]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackInterface {
    pub name: String,
    /// None: the interface going down puts the instance in FAULT.
    pub weight: Option<i32>,
    pub reverse: bool,
}

/// `track_script` entry: `NAME [weight W [reverse|noreverse]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrackScript {
    pub name: String,
    /// None: the script's own weight.
    pub weight: Option<i32>,
    /// None: the script's own `reverse`.
    pub reverse: Option<bool>,
}

/// `unicast_peer` entry: `IP [min_ttl N] [max_ttl N]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnicastPeer {
    pub addr: IpAddr,
    pub min_ttl: Option<u8>,
    pub max_ttl: Option<u8>,
}

/// Per-instance gratuitous ARP settings (None = the `vrrp_garp_*` global value).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Garp {
    pub master_delay: Option<Duration>,
    pub master_repeat: Option<u32>,
    pub master_refresh: Option<Duration>,
    pub master_refresh_repeat: Option<u32>,
    pub lower_prio_delay: Option<Duration>,
    pub lower_prio_repeat: Option<u32>,
}

/// `use_vmac [NAME] [MAC]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vmac {
    pub name: Option<String>,
    pub mac: Option<String>,
}

/// The notify scripts of an instance or a sync group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Notify {
    pub master: Option<Script>,
    pub backup: Option<Script>,
    pub fault: Option<Script>,
    pub stop: Option<Script>,
    /// Instances only: run when a reload deletes the instance.
    pub deleted: Option<Script>,
    /// Run after the specific one with 4 extra arguments: `INSTANCE`|`GROUP`, name,
    /// `MASTER`|`BACKUP`|`FAULT`|`STOP`|`DELETED`, priority.
    pub generic: Option<Script>,
    /// Instances only: the master saw a lower-priority advert.
    pub master_rx_lower_pri: Option<Script>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpInstance {
    pub pos: Pos,
    pub name: String,
    /// Wished initial state; None ⇒ MASTER iff priority 255 ([`Self::initial_state`]).
    pub state: Option<VrrpState>,
    pub interface: Option<String>,
    /// 1..255, required.
    pub virtual_router_id: u8,
    /// 1..255; None ⇒ 255 with `state MASTER`, else 100 ([`Self::effective_priority`]).
    pub priority: Option<u8>,
    /// None ⇒ 1 s.
    pub advert_int: Option<Duration>,
    /// None ⇒ the global `vrrp_version` (2); IPv6 instances always 3.
    pub version: Option<u8>,
    pub authentication: Option<Authentication>,
    pub virtual_ipaddress: Vec<VirtualIp>,
    pub virtual_ipaddress_excluded: Vec<VirtualIp>,
    /// false with `nopreempt`.
    pub preempt: bool,
    /// 0..1000 s.
    pub preempt_delay: Option<Duration>,
    pub track_interface: Vec<TrackInterface>,
    pub track_script: Vec<TrackScript>,
    pub notify: Notify,
    pub unicast_src_ip: Option<IpAddr>,
    pub unicast_peer: Vec<UnicastPeer>,
    pub unicast_ttl: Option<u8>,
    pub mcast_src_ip: Option<IpAddr>,
    pub mcast_dst_ip: Option<IpAddr>,
    pub garp: Garp,
    pub use_vmac: Option<Vmac>,
    pub vmac_xmit_base: bool,
    /// `accept` / `no_accept`; None ⇒ accept unless strict.
    pub accept: Option<bool>,
    pub strict_mode: Option<bool>,
    pub dont_track_primary: bool,
    /// None ⇒ 3.
    pub down_timer_adverts: Option<u32>,
    pub skip_check_adv_addr: Option<bool>,
    pub lower_prio_no_advert: Option<bool>,
    pub higher_prio_send_advert: Option<bool>,
    pub check_unicast_src: bool,
    /// Deprecated `lvs_sync_daemon_interface` (use the global `lvs_sync_daemon`).
    pub lvs_sync_daemon_interface: Option<String>,
}

impl VrrpInstance {
    /// keepalived: priority unset ⇒ 255 if `state MASTER`, else 100.
    pub fn effective_priority(&self) -> u8 {
        self.priority.unwrap_or(match self.state {
            Some(VrrpState::Master) => 255,
            _ => 100,
        })
    }

    /// keepalived: state unset ⇒ MASTER iff priority 255.
    pub fn initial_state(&self) -> VrrpState {
        self.state.unwrap_or(if self.effective_priority() == 255 {
            VrrpState::Master
        } else {
            VrrpState::Backup
        })
    }

    pub fn effective_advert_int(&self) -> Duration {
        self.advert_int.unwrap_or(Duration::from_secs(1))
    }

    /// VRRP version given the global default; IPv6 addresses force 3.
    pub fn effective_version(&self, global: Option<u8>) -> u8 {
        if self.virtual_ipaddress.iter().any(|v| v.addr.is_ipv6()) {
            return 3;
        }
        self.version.or(global).unwrap_or(2)
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpScript {
    pub pos: Pos,
    pub name: String,
    pub script: Script,
    /// Seconds between runs (1).
    pub interval: Duration,
    /// None ⇒ interval.
    pub timeout: Option<Duration>,
    /// -253..253 (0).
    pub weight: i32,
    pub weight_reverse: bool,
    /// Successes to clear a failure (1).
    pub rise: u32,
    /// Failures to set one (1).
    pub fall: u32,
    /// Start in the failed state.
    pub init_fail: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VrrpSyncGroup {
    pub pos: Pos,
    pub name: String,
    /// The member instances.
    pub group: Vec<String>,
    pub track_interface: Vec<TrackInterface>,
    pub track_script: Vec<TrackScript>,
    pub notify: Notify,
    pub sync_group_tracking_weight: bool,
    pub notify_priority_changes: bool,
}
