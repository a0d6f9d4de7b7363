//! ovf — weighted overflow (`ip_vs_ovf.c`).
//!
//! Like fo, the heaviest server takes everything, but only while its *active* connections
//! do not exceed its weight: a server with `active > weight` is skipped and the traffic
//! overflows to the next-heaviest. Only active connections count, so for UDP (never
//! active) ovf behaves like fo. OVERLOAD and weight-0 servers are skipped; ties keep the
//! first (newest) server. The scan, the index and the property test are the family's
//! ([`super::least`]).

use super::eligible;
use crate::dest::Dest;
use std::cmp::Reverse;

/// Heavier ranks first, among servers not over their weight in active connections.
pub(super) fn rank(d: &Dest) -> Option<Reverse<u32>> {
    (eligible(d) && d.activeconns <= d.weight()).then(|| Reverse(d.weight()))
}
