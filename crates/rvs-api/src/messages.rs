//! Requests and replies. Each request mirrors one libipvs call, so `rvsadm` maps ipvsadm
//! commands one to one; errors carry the kernel errno ([`Errno`]) so `rvsadm` prints the
//! very message ipvsadm would.

use rvs_core::{
    ConnInfo, Counters, DestConfig, Errno, Rates, ServiceConfig, ServiceInfo, ServiceKey,
    SyncDaemonConfig, TableInfo,
};
use serde::{Deserialize, Serialize};
use std::net::IpAddr;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Version and connection-table size (`ipvs_getinfo`).
    Info,
    /// All services, or one (`ipvs_get_services` / `ipvs_get_service`).
    ListServices {
        key: Option<ServiceKey>,
    },
    /// The connection table (`/proc/net/ip_vs_conn`).
    ListConns,
    /// Global counters and rates.
    GlobalStats,
    AddService(ServiceConfig),
    EditService(ServiceConfig),
    DelService(ServiceKey),
    /// `-C`.
    Flush,
    /// `-Z [service]`.
    Zero(Option<ServiceKey>),
    AddDest {
        svc: ServiceKey,
        dest: DestConfig,
    },
    EditDest {
        svc: ServiceKey,
        dest: DestConfig,
    },
    DelDest {
        svc: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
    /// `--set tcp tcpfin udp` (0 = unchanged).
    SetTimeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
    GetTimeouts,
    StartDaemon(SyncDaemonConfig),
    StopDaemon {
        master: bool,
    },
    ListDaemons,
    /// Several requests applied in order (`-R`); the reply is a [`Reply::Batch`] with one
    /// reply per request. A failing request does not stop the ones after it, as ipvsadm's
    /// restore carries on after kernel errors.
    Batch(Vec<Request>),
    /// Daemon status: data plane, health checkers, VRRP (the `rvsadm --status` extension).
    Status,
}

impl Request {
    /// True for requests that change state (used to log them).
    pub fn is_mutation(&self) -> bool {
        !matches!(
            self,
            Request::Info
                | Request::ListServices { .. }
                | Request::ListConns
                | Request::GlobalStats
                | Request::GetTimeouts
                | Request::ListDaemons
                | Request::Status
        )
    }
}

/// A failed request. `errno` is set for table errors (the kernel's errno); protocol-level
/// failures (malformed or oversized request) have none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub errno: Option<Errno>,
    pub message: String,
}

impl From<rvs_core::TableError> for ApiError {
    fn from(e: rvs_core::TableError) -> Self {
        ApiError {
            errno: Some(e.errno),
            message: e.detail,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TimeoutsReply {
    pub tcp: u32,
    pub tcpfin: u32,
    pub udp: u32,
}

/// A health checker's view for the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckerStatus {
    pub service: ServiceKey,
    pub addr: IpAddr,
    pub port: u16,
    pub kind: String,
    pub up: bool,
    pub last_error: Option<String>,
    pub failures: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusReply {
    pub version: String,
    /// `none`, `proxy` or `xdp`.
    pub dataplane: String,
    pub checkers: Vec<CheckerStatus>,
    /// Free-form facts a data plane or VRRP wants the operator to see (name, value).
    pub facts: Vec<(String, String)>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Reply {
    Ok,
    Error(ApiError),
    Info(TableInfo),
    Services(Vec<ServiceInfo>),
    Conns(Vec<ConnInfo>),
    GlobalStats { stats: Counters, rates: Rates },
    Timeouts(TimeoutsReply),
    Daemons(Vec<SyncDaemonConfig>),
    Batch(Vec<Reply>),
    Status(StatusReply),
}
