//! fo — weighted failover (`ip_vs_fo.c`).
//!
//! All new connections go to the non-OVERLOAD server with the highest weight; load is not
//! looked at. Lowering a server's weight (or quiescing it to 0) therefore fails traffic
//! over to the next-heaviest one. Strict `>` against a running maximum that starts at 0:
//! weight-0 servers never win and among equal weights the newest server does. The scan,
//! the index and the property test are the family's ([`super::least`]).

use super::eligible;
use crate::dest::Dest;
use std::cmp::Reverse;

/// Heavier ranks first; weight-0 and OVERLOAD servers never win.
pub(super) fn rank(d: &Dest) -> Option<Reverse<u32>> {
    eligible(d).then(|| Reverse(d.weight()))
}
