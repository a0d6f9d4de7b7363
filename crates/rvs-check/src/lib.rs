//! # rvs-check — keepalived's health checkers for rvs
//!
//! `TCP_CHECK`, `HTTP_GET`, `SSL_GET` (rustls, any certificate accepted as keepalived
//! does), `MISC_CHECK` and `DNS_CHECK`, with keepalived's state machine ([`epilog`]:
//! retry, delay_before_retry, one success to recover, warmup, alpha) and per-real-server
//! health ([`engine`]: a server is up while none of its checkers fails, misc_dynamic
//! weights). The [`Supervisor`] runs one async task per checker on the caller's tokio
//! runtime and reports [`Verdict`](rvs_keepalived::pool::Verdict)s to a [`VerdictSink`];
//! it never edits the table: what a verdict does there (inhibit_on_failure, sorry server,
//! quorum, notify scripts) is `rvs_keepalived::pool`'s, applied by the daemon's writer.
//! [`Supervisor::reload`] runs a new configuration keeping the state of every unchanged
//! checker.

pub mod engine;
pub mod epilog;
pub mod plan;
pub mod probe;
pub mod reload;
pub mod report;
pub mod supervisor;

pub use engine::{CheckerId, Engine};
pub use epilog::{Next, Outcome};
pub use reload::ReloadReport;
pub use report::VerdictSink;
pub use supervisor::{Options, Supervisor, BOOTSTRAP_DELAY};
