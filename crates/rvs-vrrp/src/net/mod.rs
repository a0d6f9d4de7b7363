//! The Linux network side: raw sockets for protocol 112, netlink for addresses and
//! interface state, `AF_PACKET` for gratuitous ARP / NA, and the task that drives the
//! [`crate::engine::Engine`] with them ([`Router`]).

mod exec;
mod iface;
pub mod link;
mod runner;
mod rx;
mod scripts;
pub mod sock;

pub use runner::{InstanceStates, Router, LINK_POLL};
