//! The 14 IPVS schedulers, each in its own file, behind one trait.
//!
//! Semantics follow Linux 6.12.8 (`net/netfilter/ipvs/ip_vs_*.c`); see
//! `shared/reference/schedulers.md`. Where 6.12.107 differs (the connection overhead uses
//! `totalconns`), rvs follows 6.12.8: `overhead = 256 * active + inactive`.
//!
//! A scheduler sees the service's real servers in *list order*, newest first, and returns
//! the chosen one or `None` ("no destination available"). It is told about every add, edit
//! and removal so it can rebuild its tables (dh, sh, mh) or reset its cursor (rr, wrr).

use crate::dest::{Dest, DestId, DestView};
use crate::types::{Millis, Protocol, SchedFlags};
use std::fmt;
use std::net::IpAddr;

mod dh;
#[cfg(test)]
mod fixture;
mod fo;
mod hash;
mod index;
mod lblc;
mod lblcr;
mod lc;
mod least;
mod locality;
mod mh;
mod nq;
mod ovf;
mod rr;
mod sed;
mod sh;
mod twos;
mod wlc;
mod wrr;

pub use index::{RankFn, Ranked, Ratio, INDEX_MIN};
pub use least::{pick_wlc, Least};

pub use hash::{addr_fold, hash_32, hsiphash, hsiphash_u32};
pub use mh::TAB_SIZE as MH_TABLE_SIZE;

/// What a scheduler may look at in the packet that opens a connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchedInput {
    /// Transport protocol of the packet (`None` for other protocols on fwmark services).
    pub proto: Option<Protocol>,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
}

/// Source of randomness (twos). Returns a value uniformly in `[0, bound)`, as the kernel's
/// `get_random_u32_below(bound)`. Tests and decision vectors supply fixed draws.
pub trait Random {
    fn below(&mut self, bound: u32) -> u32;
}

/// A small, fast, seedable generator (xorshift64*) for production use.
#[derive(Clone, Debug)]
pub struct XorShift(u64);

impl XorShift {
    pub fn new(seed: u64) -> Self {
        XorShift(seed | 1)
    }
}

impl Random for XorShift {
    fn below(&mut self, bound: u32) -> u32 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        let r = x.wrapping_mul(0x2545_F491_4F6C_DD1D);
        // Lemire's multiply-shift: (r32 * bound) >> 32 is uniform enough for a scheduler.
        (((r >> 32) * bound as u64) >> 32) as u32
    }
}

/// Context of one scheduling decision besides the servers and the packet.
pub struct SchedEnv<'a> {
    pub now: Millis,
    pub flags: SchedFlags,
    pub rng: &'a mut dyn Random,
}

/// A change to the service's list of real servers, delivered after it took effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DestChange {
    /// A server was added (inserted at the head of the list) or revived from the trash.
    Added(DestId),
    /// A server's weight, thresholds or forwarding changed (its position is kept).
    Edited(DestId),
    /// A server left the list. `newer` is the server that preceded it in list order (the
    /// next-newer one), `None` if it was the head. rr moves its cursor there.
    Removed { id: DestId, newer: Option<DestId> },
    /// The service's scheduler flags changed, or the scheduler was (re)bound.
    Reset,
}

/// One scheduling algorithm with its private state.
pub trait Scheduler: Send + fmt::Debug {
    fn kind(&self) -> SchedKind;

    /// Called after every change of the server list, weights or flags.
    fn update(&mut self, dests: &DestView<'_>, flags: SchedFlags, change: DestChange);

    /// Picks a server for a new connection, or `None` if no server is eligible.
    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        input: &SchedInput,
        env: &mut SchedEnv<'_>,
    ) -> Option<DestId>;

    /// A server's connection counts or OVERLOAD flag changed (the schedulers that keep an
    /// ordered index of loads follow it here; the others ignore it).
    fn load_changed(&mut self, _dests: &DestView<'_>, _id: DestId) {}

    /// Periodic housekeeping (lblc/lblcr garbage collection); called at least every 60 s.
    fn tick(&mut self, _dests: &DestView<'_>, _now: Millis) {}

    /// The lookup table of a hash scheduler — dh and sh: 256 buckets, mh: 4093 slots, in
    /// index order, `None` for an empty slot — for a data plane that does the per-packet
    /// lookups itself (XDP). The table is the one this scheduler built on its last update,
    /// as the kernel builds it on update. `None` for schedulers without a table.
    fn lookup_table(&self) -> Option<Vec<Option<DestId>>> {
        None
    }
}

/// The scheduler names rvs knows, as ipvsadm spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SchedKind {
    Rr,
    Wrr,
    Lc,
    Wlc,
    Sed,
    Nq,
    Lblc,
    Lblcr,
    Dh,
    Sh,
    Mh,
    Fo,
    Ovf,
    Twos,
    /// The kernel's `none`: no scheduling; only existing (synced) connections are served.
    None,
}

impl SchedKind {
    pub const ALL: [SchedKind; 14] = [
        SchedKind::Rr,
        SchedKind::Wrr,
        SchedKind::Lc,
        SchedKind::Wlc,
        SchedKind::Sed,
        SchedKind::Nq,
        SchedKind::Lblc,
        SchedKind::Lblcr,
        SchedKind::Dh,
        SchedKind::Sh,
        SchedKind::Mh,
        SchedKind::Fo,
        SchedKind::Ovf,
        SchedKind::Twos,
    ];

    pub fn from_name(name: &str) -> Option<SchedKind> {
        Some(match name {
            "rr" => SchedKind::Rr,
            "wrr" => SchedKind::Wrr,
            "lc" => SchedKind::Lc,
            "wlc" => SchedKind::Wlc,
            "sed" => SchedKind::Sed,
            "nq" => SchedKind::Nq,
            "lblc" => SchedKind::Lblc,
            "lblcr" => SchedKind::Lblcr,
            "dh" => SchedKind::Dh,
            "sh" => SchedKind::Sh,
            "mh" => SchedKind::Mh,
            "fo" => SchedKind::Fo,
            "ovf" => SchedKind::Ovf,
            "twos" => SchedKind::Twos,
            "none" => SchedKind::None,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            SchedKind::Rr => "rr",
            SchedKind::Wrr => "wrr",
            SchedKind::Lc => "lc",
            SchedKind::Wlc => "wlc",
            SchedKind::Sed => "sed",
            SchedKind::Nq => "nq",
            SchedKind::Lblc => "lblc",
            SchedKind::Lblcr => "lblcr",
            SchedKind::Dh => "dh",
            SchedKind::Sh => "sh",
            SchedKind::Mh => "mh",
            SchedKind::Fo => "fo",
            SchedKind::Ovf => "ovf",
            SchedKind::Twos => "twos",
            SchedKind::None => "none",
        }
    }

    /// The same scheduler without the ordered index of lc/wlc/sed/nq/fo/ovf: it scans the
    /// list on every pick, as IPVS does. Decisions are identical; for comparisons.
    pub fn build_scan_only(self) -> Box<dyn Scheduler> {
        index::FORCE_SCAN.with(|f| f.set(true));
        let s = self.build();
        index::FORCE_SCAN.with(|f| f.set(false));
        s
    }

    /// Builds a fresh scheduler instance of this kind.
    pub fn build(self) -> Box<dyn Scheduler> {
        match self {
            SchedKind::Rr => Box::new(rr::Rr::default()),
            SchedKind::Wrr => Box::new(wrr::Wrr::default()),
            SchedKind::Lc => Box::new(Least::new(self, lc::rank)),
            SchedKind::Wlc => Box::new(Least::new(self, wlc::rank)),
            SchedKind::Sed => Box::new(Least::new(self, sed::rank)),
            SchedKind::Nq => Box::new(Least::new(self, nq::rank)),
            SchedKind::Lblc => Box::new(lblc::Lblc::default()),
            SchedKind::Lblcr => Box::new(lblcr::Lblcr::default()),
            SchedKind::Dh => Box::new(dh::Dh::default()),
            SchedKind::Sh => Box::new(sh::Sh::default()),
            SchedKind::Mh => Box::new(mh::Mh::default()),
            SchedKind::Fo => Box::new(Least::new(self, fo::rank)),
            SchedKind::Ovf => Box::new(Least::new(self, ovf::rank)),
            SchedKind::Twos => Box::new(twos::Twos),
            SchedKind::None => Box::new(NoneSched),
        }
    }
}

/// The kernel's `none` scheduler: never picks.
#[derive(Debug)]
struct NoneSched;

impl Scheduler for NoneSched {
    fn kind(&self) -> SchedKind {
        SchedKind::None
    }
    fn update(&mut self, _: &DestView<'_>, _: SchedFlags, _: DestChange) {}
    fn schedule(
        &mut self,
        _: &DestView<'_>,
        _: &SchedInput,
        _: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        None
    }
}

/// `ip_vs_dest_conn_overhead` of 6.12.8: active connections weigh 256 times inactive ones.
pub fn overhead(d: &Dest) -> u64 {
    ((d.activeconns as u64) << 8) + d.inactconns as u64
}

/// Usable for new connections by the common rule: weight > 0 and not OVERLOAD.
pub fn eligible(d: &Dest) -> bool {
    d.weight() > 0 && !d.overloaded
}

/// Greatest common divisor (for wrr and mh).
pub fn gcd(a: u32, b: u32) -> u32 {
    let (mut a, mut b) = (a, b);
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// What one slot of a hash scheduler's table (sh, mh) offers a new connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Slot {
    /// No server at all: the search ends ("no destination").
    Empty,
    /// A quiesced (weight 0) or OVERLOADed server: try the fallback, if enabled.
    Unusable,
    Usable(DestId),
}

/// Classifies a table slot. The kernel checks only weight and OVERLOAD here (its tables
/// are rebuilt whenever a server leaves); a handle that no longer names an available
/// server is refused too, so a stale slot can never send traffic to a deleted server.
pub(crate) fn slot_state(dests: &DestView<'_>, entry: Option<DestId>) -> Slot {
    let Some(id) = entry else {
        return Slot::Empty;
    };
    match dests.get(id) {
        Some(d) if d.available && d.weight() > 0 && !d.overloaded => Slot::Usable(id),
        _ => Slot::Unusable,
    }
}
