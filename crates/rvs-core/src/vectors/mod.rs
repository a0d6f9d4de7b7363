//! Scheduler decision vectors: scripted sequences of admin operations and new connections
//! on one virtual service, with the server each connection must reach. They live in
//! `testdata/sched/*.vec` and are shared by every data plane: one interpreter ([`run`])
//! replays them on a [`Backend`] — the core's [`Table`](crate::Table) ([`run_on_table`]),
//! or the XDP program (`crates/rvs-xdp/tests/conformance.rs`) with its maps and packets.
//!
//! # File format
//!
//! Line oriented; `#` starts a comment; blank lines are ignored; words are separated by
//! blanks. A file holds any number of vectors:
//!
//! ```text
//! vector NAME                       starts a vector (names are unique per file)
//! service PROTO ADDR:PORT SCHED [OPTIONS]      must follow `vector`; PROTO tcp|udp|sctp
//! service fwmark MARK [v6] SCHED [OPTIONS]
//!     OPTIONS: persistent SECS | netmask BITS|A.B.C.D | flags F[,F..] | ops
//!     F: sh-fallback sh-port mh-fallback mh-port flag-1 flag-2 flag-3
//! server NAME ADDR:PORT [weight W] [upper U] [lower L] [method dr|nat|tun]
//!                                   adds a real server (default weight 1, dr); it goes to
//!                                   the HEAD of the list, so the last one added is first
//! edit NAME [weight W] [upper U] [lower L]      other settings are kept
//! remove NAME
//! flags F[,F..] | flags none        replaces the service's scheduler flags
//! scheduler SCHED                   rebinds the service to a (fresh) scheduler, as
//!                                   `ipvsadm -E -s SCHED` does
//! pick [from ADDR[:PORT]] [to ADDR[:PORT]] -> NAME|none
//!                                   a new connection (TCP SYN, UDP datagram, SCTP INIT)
//!                                   must be scheduled to NAME, or find no server
//! picks NAME|none ...               shorthand: one `pick` per word
//! close NAME                        the client sends FIN+ACK on NAME's oldest connection
//!                                   that is still active (it becomes inactive)
//! end NAME                          NAME's oldest open connection is removed now, as when
//!                                   its timer fires
//! advance N[ms|s|m|h|d]             time passes (default unit s); timers fire on the way
//! rand N... [below B]               queue the next random draws (twos); with `below`,
//!                                   each must be asked for with exactly that bound
//! expect NAME [active N] [inactive N] [persist N] [overloaded yes|no]
//!                                   the server's counters at this point
//! sysctl NAME VALUE                 expire_nodest_conn, expire_quiescent_template,
//!                                   conn_reuse_mode, sloppy_tcp (0/1 or a number)
//! ```
//!
//! Conventions every backend must follow so that the same steps mean the same packets:
//!
//! * Each pick uses the next *auto client* number k = 1, 2, … (per vector). Without
//!   `from` the client is `172.16.0.0 + k` (IPv6: `2001:db8:c::k`); without a port it is
//!   `10000 + k`. The parser fills these in, so [`Action::Pick`] is always concrete.
//! * Without `to` a pick goes to the service address and port (port 80 for a port-0
//!   service); for a fwmark service to `198.51.100.1:80` (IPv6 `[2001:db8:d::1]:80`) with
//!   the mark set.
//! * Time starts at 0 when the service is created; scheduler housekeeping runs then and
//!   after every second of `advance`, right after due connection timers.
//! * Connections only change as the steps say: SYN-opened TCP connections are active
//!   (SYN_RECV, 60 s timeout, unless something refreshes them), UDP ones inactive (300 s).
//! * A pick that meets an existing connection instead of opening one is a mismatch, as is
//!   a draw of the random source that was not scripted, or a scripted draw left unused.

mod interp;
mod model;
mod parse;

pub use interp::{run, Backend, ConnView, Counts, Mismatch, Picked};
pub use model::run_on_table;
pub use parse::{parse_file, parse_str, ParseError};

use crate::config::{DestConfig, ServiceConfig};
use crate::sched::SchedKind;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

/// The shared vectors of the source tree (`testdata/sched/`).
pub const SHARED_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../testdata/sched");

/// The vector files (`*.vec`) of a directory, by name.
///
/// # Errors
/// The directory cannot be read.
pub fn files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|e| e == "vec") {
            files.push(p);
        }
    }
    files.sort();
    Ok(files)
}

/// One named vector: a service and the steps applied to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vector {
    pub name: String,
    /// Line of the `vector` statement.
    pub line: usize,
    pub service: ServiceConfig,
    pub steps: Vec<Step>,
}

/// One step with where it came from, for messages.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Step {
    pub line: usize,
    pub action: Action,
}

/// What a pick must lead to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Expect {
    Server(String),
    /// "no destination available": the service answers port unreachable.
    NoServer,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    AddServer {
        name: String,
        cfg: DestConfig,
    },
    EditServer {
        name: String,
        weight: Option<u32>,
        upper: Option<u32>,
        lower: Option<u32>,
    },
    RemoveServer {
        name: String,
    },
    /// New value of the service's `sched_flags` bits.
    SetFlags(u32),
    /// Rebind the service to a new instance of this scheduler.
    SetScheduler(SchedKind),
    Pick {
        client: (IpAddr, u16),
        to: (IpAddr, u16),
        expect: Expect,
    },
    Close {
        server: String,
    },
    End {
        server: String,
    },
    Advance {
        ms: u64,
    },
    Rand {
        draws: Vec<u32>,
        below: Option<u32>,
    },
    Expect {
        server: String,
        active: Option<u32>,
        inactive: Option<u32>,
        persist: Option<u32>,
        overloaded: Option<bool>,
    },
    Sysctl {
        name: String,
        value: u32,
    },
}

#[cfg(test)]
mod tests;
