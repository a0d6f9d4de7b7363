//! What the state machine needs to know about an instance (the protocol parameters of
//! RFC 5798 §6.1 plus keepalived's extensions). Built from a `vrrp_instance` block by
//! [`crate::keepalived`]; tests build it with [`InstanceConfig::new`].

use crate::packet::{Family, Version, PRIORITY_OWNER};
use crate::timers;
use std::net::IpAddr;
use std::time::Duration;

/// A virtual address to install on the master.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Vip {
    pub addr: IpAddr,
    /// Prefix length (keepalived: /32 or /128 when not given).
    pub prefix: u8,
    /// `dev IF`: another interface than the instance's.
    pub dev: Option<String>,
    /// `label L` (IPv4 only).
    pub label: Option<String>,
}

impl Vip {
    pub fn host(addr: IpAddr) -> Vip {
        Vip {
            addr,
            prefix: if addr.is_ipv4() { 32 } else { 128 },
            dev: None,
            label: None,
        }
    }
}

/// Gratuitous ARP / unsolicited NA timing (keepalived `garp_*` / `vrrp_garp_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GarpTiming {
    /// Second burst after becoming master (5 s; zero: none).
    pub master_delay: Duration,
    /// Packets per address per burst (5).
    pub master_repeat: u32,
    /// Periodic refresh while master (zero: off).
    pub refresh: Duration,
    /// Packets per address per refresh (1).
    pub refresh_repeat: u32,
    /// Second burst after answering a lower-priority advert (= master_delay).
    pub lower_prio_delay: Duration,
    /// Packets per address when a lower-priority advert is seen (= master_repeat).
    pub lower_prio_repeat: u32,
    /// Gap between two packets (`vrrp_garp_interval` / `vrrp_gna_interval`, 0).
    pub interval: Duration,
}

impl Default for GarpTiming {
    fn default() -> Self {
        GarpTiming {
            master_delay: Duration::from_secs(5),
            master_repeat: 5,
            refresh: Duration::ZERO,
            refresh_repeat: 1,
            lower_prio_delay: Duration::from_secs(5),
            lower_prio_repeat: 5,
            interval: Duration::ZERO,
        }
    }
}

/// What a tracked object is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TrackTarget {
    /// `track_interface` (and the instance's own interface, unweighted).
    Interface(String),
    /// `track_script` (a `vrrp_script` by name).
    Script(String),
}

/// One tracked object of an instance (keepalived `track_interface` / `track_script`).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Track {
    pub target: TrackTarget,
    /// 0: the object being down puts the instance in FAULT. > 0: added to the priority
    /// while up. < 0: added (subtracted) while down.
    pub weight: i32,
    /// The object's state is read inverted (keepalived `reverse`).
    pub reverse: bool,
}

/// The protocol parameters of one virtual router.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceConfig {
    /// `vrrp_instance NAME`.
    pub name: String,
    /// VRID, 1..255.
    pub vrid: u8,
    pub version: Version,
    pub family: Family,
    /// Configured priority (1..255; 255 = address owner).
    pub priority: u8,
    /// Advertisement_Interval, already rounded for the version.
    pub advert_int: Duration,
    /// `state MASTER` (only an address owner acts on it at startup, as keepalived).
    pub wants_master: bool,
    /// Preempt_Mode (`nopreempt` clears it).
    pub preempt: bool,
    /// keepalived `preempt_delay` (backup only).
    pub preempt_delay: Duration,
    /// keepalived `down_timer_adverts` (3, the RFC's constant).
    pub down_timer_adverts: u32,
    /// Advertised virtual addresses (`virtual_ipaddress`).
    pub vips: Vec<Vip>,
    /// Installed but not advertised (`virtual_ipaddress_excluded`).
    pub excluded_vips: Vec<Vip>,
    /// v2 `auth_type PASS`: the 8-byte Authentication Data. None: Auth Type 0.
    pub auth_pass: Option<[u8; 8]>,
    pub garp: GarpTiming,
    /// `lower_prio_no_advert`: the master does not answer a lower-priority advert.
    pub lower_prio_no_advert: bool,
    /// `higher_prio_send_advert`: the master sends one more advert before yielding.
    pub higher_prio_send_advert: bool,
    /// `skip_check_adv_addr`: do not compare the address list of adverts.
    pub skip_check_adv_addr: bool,
    /// Unicast peers are configured (`unicast_peer`): no TTL check.
    pub unicast: bool,
    /// Tracked objects, the instance's own interface included.
    pub track: Vec<Track>,
}

impl InstanceConfig {
    /// An instance with keepalived's defaults: v2 (v3 for IPv6), priority 100, 1 s,
    /// preempt, no authentication.
    pub fn new(name: &str, vrid: u8, vips: &[IpAddr]) -> InstanceConfig {
        let family = vips.first().map_or(Family::V4, Family::of);
        InstanceConfig {
            name: name.to_string(),
            vrid,
            version: if family == Family::V6 {
                Version::V3
            } else {
                Version::V2
            },
            family,
            priority: 100,
            advert_int: Duration::from_secs(1),
            wants_master: false,
            preempt: true,
            preempt_delay: Duration::ZERO,
            down_timer_adverts: 3,
            vips: vips.iter().copied().map(Vip::host).collect(),
            excluded_vips: Vec::new(),
            auth_pass: None,
            garp: GarpTiming::default(),
            lower_prio_no_advert: false,
            higher_prio_send_advert: false,
            skip_check_adv_addr: false,
            unicast: false,
            track: Vec::new(),
        }
    }

    /// Sets the version and rounds the interval for it.
    pub fn with_version(mut self, v: Version) -> Self {
        self.version = v;
        self.advert_int = timers::round_interval(v, self.advert_int);
        self
    }

    pub fn with_priority(mut self, p: u8) -> Self {
        self.priority = p;
        self
    }

    pub fn with_advert_int(mut self, d: Duration) -> Self {
        self.advert_int = timers::round_interval(self.version, d);
        self
    }

    pub fn is_owner(&self) -> bool {
        self.priority == PRIORITY_OWNER
    }

    /// The advertised addresses, in configuration order.
    pub fn advertised(&self) -> Vec<IpAddr> {
        self.vips.iter().map(|v| v.addr).collect()
    }

    /// Everything installed on the master.
    pub fn installed(&self) -> Vec<Vip> {
        self.vips
            .iter()
            .chain(self.excluded_vips.iter())
            .cloned()
            .collect()
    }
}
