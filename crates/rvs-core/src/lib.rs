//! # rvs-core — the reference model of an IPVS director, with no I/O.
//!
//! The virtual-service table ([`Table`]) with exact LVS semantics: services and real
//! servers with weights, thresholds and forwarding methods; all 14 schedulers ([`sched`]);
//! persistence templates; the TCP/UDP connection state machine and timeouts ([`state`]);
//! counters and the 2-second rate estimator ([`stats`]). Its configuration changes in one
//! vocabulary, [`Change`], performed by [`Table::apply`]. The packet path
//! ([`Table::process`]) is what both data planes (XDP and the userspace proxy) are checked
//! against; decision vectors ([`vectors`]) replay the same operations through any backend.
//!
//! Time is given by the caller in milliseconds on a monotonic clock, so every behaviour is
//! reproducible in tests.

pub mod change;
pub mod config;
pub mod conn;
pub mod dest;
pub mod error;
pub mod packet;
pub mod sched;
pub mod snapshot;
pub mod state;
pub mod stats;
pub mod sync;
pub mod sysctl;
pub mod table;
pub mod types;
pub mod vectors;

pub use change::Change;
pub use config::{DestConfig, ServiceConfig};
pub use conn::ConnId;
pub use dest::{DestId, ServiceId};
pub use error::{Errno, TableError};
pub use packet::{DropReason, Forwarding, Packet, Verdict};
pub use sched::SchedKind;
pub use snapshot::{ConnInfo, DestInfo, ServiceInfo, TableInfo};
pub use state::{ConnState, Dir, TcpFlags, TcpState, Timeouts};
pub use stats::{Counters, Rates};
pub use sync::{SyncEntry, SyncInstall, SyncParams, SyncScope, SyncSkip};
pub use table::{SyncDaemonConfig, Sysctl, Table};
pub use types::*;
