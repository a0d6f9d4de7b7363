//! # rvs-sync — the IPVS connection synchronisation daemon
//!
//! Wire-compatible with Linux IPVS (`net/netfilter/ipvs/ip_vs_sync.c`): a master sends the
//! entries of its connection table to a UDP multicast group (224.0.0.81:8848 by default),
//! backups install them, so that when VRRP moves the virtual address the new director
//! forwards every established flow to the same real server.
//!
//! * [`wire`]: the message formats, version 0 and 1, both ways;

pub mod wire;
