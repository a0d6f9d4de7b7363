//! # rvs-check — keepalived's health checkers for rvs
//!
//! `TCP_CHECK`, `HTTP_GET`, `SSL_GET` (rustls, any certificate accepted as keepalived
//! does), `MISC_CHECK` and `DNS_CHECK`, with keepalived's state machine ([`epilog`]:
//! retry, delay_before_retry, one success to recover, warmup, alpha) and pool logic
//! ([`engine`]: per-real-server aggregation, inhibit_on_failure, quorum and hysteresis,
//! sorry server, notify scripts, misc_dynamic weights). The [`Supervisor`] runs one async
//! task per checker on the caller's tokio runtime and applies decisions to the table
//! through a [`TableSink`]; [`Supervisor::reload`] applies a new configuration keeping the
//! state of everything unchanged.

pub mod engine;
pub mod epilog;
pub mod plan;
pub mod probe;
pub mod reload;
pub mod sink;
pub mod supervisor;

pub use engine::{Action, CheckerId, Engine};
pub use epilog::{Next, Outcome};
pub use reload::ReloadReport;
pub use sink::{SharedSink, TableSink};
pub use supervisor::{Options, Supervisor, BOOTSTRAP_DELAY};
