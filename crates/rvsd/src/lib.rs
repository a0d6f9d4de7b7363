//! # rvsd — the rvs daemon
//!
//! Owns the virtual-service table ([`rvs_core::Table`]), serves the control socket
//! ([`control`]) that `rvsadm` talks to, runs the periodic work of the model (timers, rate
//! estimator, scheduler housekeeping) and drives a data plane ([`rvs_dataplane::DataPlane`]).
//! Every change to the table goes through the daemon's one writer ([`daemon`]), whether it
//! comes from the control socket, `--restore`, or keepalived.conf and its health checks
//! ([`health`]).

pub mod announce;
pub mod audit;
pub mod control;
pub mod daemon;
pub mod features;
pub mod health;
pub mod logging;
pub mod metrics;
pub mod notify;
pub mod pidfile;
pub mod privileges;
pub mod restore;
pub mod state_file;
pub mod sync;

pub use daemon::Daemon;
