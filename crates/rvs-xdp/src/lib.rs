//! # rvs-xdp — the XDP data plane: NAT, DR and TUN forwarding in eBPF
//!
//! The packet path is C in `bpf/` (compiled by clang at build time, see `build.rs`),
//! loaded with aya: IPVS's semantics — connection table and TCP state machine, the 14
//! schedulers, persistence templates, OVERLOAD thresholds — run in BPF, checked against
//! `rvs-core` by the same decision vectors. This crate is the userspace half:
//!
//! * [`abi`] mirrors `bpf/include/rvs_abi.h` (checked field by field by `tests/abi.rs`);
//! * [`loader`] mounts bpffs, loads or adopts the pinned maps, attaches XDP with pinned
//!   links (a restarted rvsd adopts everything and drops no flow);
//! * [`reconcile`] pushes the table into the maps (slots, rr/wrr cursors), every value
//!   built by [`encode`]; [`sweep`] expires connections; [`locality`] collects the
//!   lblc/lblcr caches; [`stats`] reads the counters;
//! * [`connsync`] is the data-plane side of connection sync (the master's ring of
//!   entries, the backup's installation);
//! * [`fwmark`] serves fwmark services: a netfilter program hands marked first packets
//!   back to the director;
//! * [`plane::XdpPlane`] is the `DataPlane` rvsd drives;
//! * [`testenv`] drives the test build's hooks (mocked clock, random draws, packet mark)
//!   for the conformance tests.
//!
//! All of `bpf/` is compiled here ([`object`]), the real server's `tc_decap` included;
//! the tool that loads it (`rvs-rs`), rvsd's options, the micro-benchmark and the
//! end-to-end tests live in their own crates. Design, outcome codes and limits:
//! `docs/xdp.md`.

pub mod abi;
pub mod conns;
pub mod connsync;
pub mod encode;
pub mod error;
pub mod forwarding;
pub mod fwmark;
pub mod ifkind;
pub mod loader;
pub mod locality;
pub mod neigh;
pub mod object;
pub mod pinning;
pub mod plane;
pub mod reconcile;
pub mod stats;
pub mod sweep;
pub mod sys;
pub mod testenv;

pub use error::{Result, XdpError};
pub use loader::{AttachMode, Director, LoadOptions};
pub use object::Build;
pub use plane::{XdpOptions, XdpPlane};
