//! nq — never queue (`ip_vs_nq.c`).
//!
//! An idle server (no active connection) takes the job at once: the first such server in
//! list order is returned without looking further. When every server is busy, nq falls
//! back to sed's rule, minimising (active + 1) / weight with a strict comparison (ties keep
//! the newer server). OVERLOAD and weight-0 servers are skipped throughout.
//!
//! Both rules are one rank: every idle server ranks before every busy one and idle ones
//! rank equal, so "the first with the least rank" is the first idle server, else the
//! first with the least expected delay. The scan, the index and the
//! property test are the family's ([`super::least`]).

use super::least::per_weight;
use super::sed::sed_overhead;
use super::{eligible, Ratio};
use crate::dest::Dest;

/// Where a server stands for nq.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum NqRank {
    /// No active connection: takes the job now.
    Idle,
    /// (active + 1) / weight.
    Busy(Ratio),
}

pub(super) fn rank(d: &Dest) -> Option<NqRank> {
    if d.activeconns == 0 {
        eligible(d).then_some(NqRank::Idle)
    } else {
        per_weight(d, sed_overhead(d)).map(NqRank::Busy)
    }
}
