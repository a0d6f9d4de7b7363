//! sed — shortest expected delay (`ip_vs_sed.c`).
//!
//! A new job on server *i* would finish after (activeᵢ + 1) / weightᵢ; sed picks the
//! smallest. Inactive connections are ignored (they cost the server next to nothing).
//! Same shape as wlc: the first non-OVERLOAD server with weight > 0 is the candidate, later
//! non-OVERLOAD servers replace it only when strictly better, compared by
//! cross-multiplication so no division is needed. Weight-0 servers can never be strictly
//! better (their side of the product is 0), so they are never picked. The scan, the
//! index and the property test are the family's ([`super::least`]).

use super::least::per_weight;
use super::Ratio;
use crate::dest::Dest;

/// (active + 1) / weight of a server that may be picked (not OVERLOAD, weight > 0).
pub(super) fn rank(d: &Dest) -> Option<Ratio> {
    per_weight(d, sed_overhead(d))
}

/// Expected delay numerator: the active connections plus the one being scheduled.
pub(super) fn sed_overhead(d: &Dest) -> u64 {
    d.activeconns as u64 + 1
}

#[cfg(test)]
mod tests {
    use super::super::fixture::Fixture;
    use super::super::SchedKind;

    #[test]
    fn sed_ignores_inactive_connections() {
        let (mut f, ids) =
            Fixture::with_servers(SchedKind::Sed, &[(1, 0, 0, false), (1, 0, 50, false)]);
        assert_eq!(
            f.pick(),
            Some(ids[1]),
            "equal (0 + 1) / 1: the newer server"
        );
    }
}
