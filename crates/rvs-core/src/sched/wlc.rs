//! wlc — weighted least connection, the default scheduler (`ip_vs_wlc.c`).
//!
//! Minimises overhead/weight with overhead = 256·active + inactive; compared by
//! cross-multiplication, strict, so ties go to the newer server. lblc and lblcr fall back
//! to this rule ([`pick_wlc`](super::pick_wlc)). The scan, the index and the
//! property test are the family's ([`super::least`]).

use super::least::per_weight;
use super::{overhead, Ratio};
use crate::dest::Dest;

/// overhead / weight of a server that may be picked (not OVERLOAD, weight > 0).
pub(super) fn rank(d: &Dest) -> Option<Ratio> {
    per_weight(d, overhead(d))
}
