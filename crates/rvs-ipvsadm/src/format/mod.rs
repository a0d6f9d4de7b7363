//! Output of rvsadm: pure functions from snapshot data to the exact bytes ipvsadm prints
//! (trailing spaces included), plus the rvs JSON and `--status` views. Name lookups go
//! through a [`crate::Resolver`], so golden tests need neither a daemon nor DNS.

pub mod conns;
pub mod help;
pub mod json;
pub mod misc;
pub mod services;

pub use conns::list_conns;
pub use help::{usage, version, IPVSADM_VERSION_LINE};
pub use misc::{daemons, status, timeouts};
pub use services::{largenum, list_service, list_table, save};
