//! Requests and replies. Each request mirrors one libipvs call, so `rvsadm` maps ipvsadm
//! commands one to one: a query, or a [`Change`] (rvs-core's one vocabulary of table
//! changes). Errors carry the kernel errno ([`Errno`]) so `rvsadm` prints the very message
//! ipvsadm would.

use rvs_core::{
    Change, ConnInfo, Counters, Errno, Rates, ServiceInfo, ServiceKey, SyncDaemonConfig, TableInfo,
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
    GetTimeouts,
    ListDaemons,
    /// Several requests applied in order (`-R`); the reply is a [`Reply::Batch`] with one
    /// reply per request. A failing request does not stop the ones after it, as ipvsadm's
    /// restore carries on after kernel errors.
    Batch(Vec<Request>),
    /// Daemon status: data plane, health checkers, VRRP (the `rvsadm --status` extension).
    Status,
    /// The `net.ipv4.vs.*` sysctls and their values (the `rvsadm --sysctl` extension).
    Sysctls,
    /// Withdraw every virtual address from the fleet's router (`drain: true`) or announce
    /// again those that can be served (the `rvsadm --drain`/`--undrain` extension).
    Drain {
        drain: bool,
    },
    /// A change to the table (`-A`, `-a`, `-e`, `--set`…). Untagged: on the wire it is the
    /// change itself (`{"AddService": {...}}`, `"Flush"`), as before changes had their
    /// own type, so clients of earlier versions keep working.
    #[serde(untagged)]
    Change(Change),
}

impl Request {
    /// True for requests that change state (used to log them).
    pub fn is_mutation(&self) -> bool {
        matches!(
            self,
            Request::Change(_) | Request::Batch(_) | Request::Drain { .. }
        )
    }
}

/// A failed request. `errno` is set for table errors (the kernel's errno); protocol-level
/// failures (malformed or oversized request) have none.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub errno: Option<Errno>,
    pub message: String,
    /// The data plane refused the change (`DataPlane::admit`): `message` names the plane
    /// and what it does not serve, and is what `rvsadm` prints; `errno` is EOPNOTSUPP.
    /// Absent on the wire when false (replies of earlier versions read as not refused).
    #[serde(default, skip_serializing_if = "is_false")]
    pub refused: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

impl From<rvs_core::TableError> for ApiError {
    fn from(e: rvs_core::TableError) -> Self {
        ApiError {
            errno: Some(e.errno),
            message: e.detail,
            refused: false,
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
    GlobalStats {
        stats: Counters,
        rates: Rates,
    },
    Timeouts(TimeoutsReply),
    Daemons(Vec<SyncDaemonConfig>),
    Batch(Vec<Reply>),
    Status(StatusReply),
    /// (name, value) of every sysctl, sorted by name.
    Sysctls(Vec<(String, String)>),
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{DestConfig, Protocol, ServiceConfig};

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    /// The wire form of a change is the one requests had before `Change` existed: a
    /// client built against it (or a `socat` script) sends the same bytes.
    #[test]
    fn changes_keep_their_wire_form() {
        let cases = [
            (Request::Change(Change::Flush), r#""Flush""#.to_string()),
            (
                Request::Change(Change::DelService(key())),
                format!(
                    r#"{{"DelService":{}}}"#,
                    serde_json::to_string(&key()).unwrap()
                ),
            ),
            (
                Request::Change(Change::SetTimeouts {
                    tcp: 1,
                    tcpfin: 2,
                    udp: 3,
                }),
                r#"{"SetTimeouts":{"tcp":1,"tcpfin":2,"udp":3}}"#.to_string(),
            ),
            (
                Request::Change(Change::StopDaemon { master: true }),
                r#"{"StopDaemon":{"master":true}}"#.to_string(),
            ),
            (Request::Info, r#""Info""#.to_string()),
            (
                Request::ListServices { key: None },
                r#"{"ListServices":{"key":null}}"#.to_string(),
            ),
        ];
        for (req, wire) in cases {
            assert_eq!(serde_json::to_string(&req).unwrap(), wire);
            assert_eq!(serde_json::from_str::<Request>(&wire).unwrap(), req);
        }
        let add = Request::Change(Change::AddDest {
            svc: key(),
            dest: DestConfig::new("10.0.0.2".parse().unwrap(), 80),
        });
        let json = serde_json::to_string(&add).unwrap();
        assert!(json.starts_with(r#"{"AddDest":{"svc":"#), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), add);
        let batch = Request::Batch(vec![
            Request::Change(Change::AddService(ServiceConfig::new(key()))),
            Request::Info,
        ]);
        let json = serde_json::to_string(&batch).unwrap();
        assert!(json.starts_with(r#"{"Batch":[{"AddService":"#), "{json}");
        assert_eq!(serde_json::from_str::<Request>(&json).unwrap(), batch);
    }

    #[test]
    fn an_unknown_request_is_refused() {
        assert!(serde_json::from_str::<Request>(r#""Reboot""#).is_err());
        assert!(serde_json::from_str::<Request>(r#"{"AddService":42}"#).is_err());
    }
}
