//! Desired state of a virtual service and of a real server: what `ipvsadm -A/-E` and
//! `-a/-e` carry, what keepalived.conf describes, what `-S` saves.

use crate::types::{Forward, Netmask, SchedFlags, ServiceKey, TunnelConfig};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

/// Default persistence timeout when `-p` has no value (`IPVS_SVC_PERSISTENT_TIMEOUT`).
pub const DEFAULT_PERSISTENCE: u32 = 360;
/// Largest persistence timeout ipvsadm accepts (31 days).
pub const MAX_TIMEOUT: u32 = 2_678_400;
/// Default scheduler.
pub const DEFAULT_SCHEDULER: &str = "wlc";

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceConfig {
    pub key: ServiceKey,
    /// Scheduler name (`rr`, `wrr`, ... or `none`).
    pub scheduler: String,
    pub sched_flags: SchedFlags,
    /// Persistence timeout in seconds; `None` when not persistent.
    pub persistence: Option<u32>,
    /// Client mask for persistence templates (`-M`).
    pub netmask: Netmask,
    /// Persistence engine (`--pe sip`).
    pub pe: Option<String>,
    /// One-packet scheduling (`-o`).
    pub ops: bool,
}

impl ServiceConfig {
    /// A service with ipvsadm's defaults: wlc, not persistent, full mask.
    pub fn new(key: ServiceKey) -> Self {
        ServiceConfig {
            key,
            scheduler: DEFAULT_SCHEDULER.to_string(),
            sched_flags: SchedFlags::default(),
            persistence: None,
            netmask: Netmask(key.family().max_prefix()),
            pe: None,
            ops: false,
        }
    }

    pub fn with_scheduler(mut self, name: &str) -> Self {
        self.scheduler = name.to_string();
        self
    }

    pub fn with_persistence(mut self, seconds: u32) -> Self {
        self.persistence = Some(seconds);
        self
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DestConfig {
    pub addr: IpAddr,
    pub port: u16,
    pub forward: Forward,
    /// 0..=65535; 0 quiesces the server.
    pub weight: u32,
    /// Upper connection threshold (`-x`), 0 = none.
    pub u_threshold: u32,
    /// Lower connection threshold (`-y`), 0 = none.
    pub l_threshold: u32,
    pub tunnel: TunnelConfig,
}

impl DestConfig {
    /// A real server with ipvsadm's defaults: `-g -w 1`, no thresholds.
    pub fn new(addr: IpAddr, port: u16) -> Self {
        DestConfig {
            addr,
            port,
            forward: Forward::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tunnel: TunnelConfig::default(),
        }
    }

    pub fn with_weight(mut self, weight: u32) -> Self {
        self.weight = weight;
        self
    }

    pub fn with_forward(mut self, forward: Forward) -> Self {
        self.forward = forward;
        self
    }

    pub fn with_thresholds(mut self, upper: u32, lower: u32) -> Self {
        self.u_threshold = upper;
        self.l_threshold = lower;
        self
    }
}
