//! # rvs-vrrp — VRRP for rvs, interoperating with keepalived
//!
//! VRRPv2 (RFC 3768) and VRRPv3 (RFC 5798, IPv4 and IPv6) as keepalived speaks them, in
//! three layers:
//!
//! * **Wire** (no I/O): [`packet`] encodes and decodes adverts (checksums with the
//!   pseudo-header as keepalived for v3, `auth_type PASS` for v2), [`ipv4`] the header of
//!   raw IPv4 packets, [`frames`] gratuitous ARP and unsolicited NA, [`validate`] the
//!   receive checks with named [`drop::DropReason`]s.
//! * **State machine** (no I/O, time injected): [`machine::Instance`] is one virtual
//!   router (Initialize/Backup/Master and keepalived's FAULT) stepped by
//!   [`machine::Event`]s into [`machine::Action`]s; [`timers`] has the RFC arithmetic in
//!   keepalived's microseconds; [`track`] turns tracked scripts and interfaces into FAULT
//!   or priority weights; [`engine::Engine`] holds all instances and the
//!   `vrrp_sync_group`s.
//! * **Network** (Linux): [`net::Router`] runs an [`engine::Engine`] on raw sockets,
//!   netlink and `AF_PACKET`, runs notify and tracking scripts, and publishes a
//!   [`status::Status`].
//!
//! [`keepalived`] maps the VRRP blocks of a keepalived.conf to all of this.

pub mod checksum;
pub mod config;
pub mod drop;
pub mod engine;
pub mod frames;
pub mod ipv4;
pub mod keepalived;
pub mod machine;
pub mod net;
pub mod packet;
pub mod status;
pub mod timers;
pub mod track;
pub mod validate;

pub use engine::{Engine, InstanceId};
pub use keepalived::{router_config, RouterConfig};
pub use machine::{Action, Event, Instance, State};
pub use net::{InstanceStates, Router};
pub use status::Status;
