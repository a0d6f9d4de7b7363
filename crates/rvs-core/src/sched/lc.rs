//! lc — least connection (`ip_vs_lc.c`).
//!
//! Picks the server with the smallest overhead (256·active + inactive); weights only
//! matter in that weight-0 servers are skipped, like OVERLOAD ones. The comparison is a
//! strict `<`, so among equals the first in list order (the newest) wins. The kernel
//! source still says `activeconns<<5` in a comment; the code uses the shared overhead.
//! The scan, the index and the property test are the family's ([`super::least`]).

use super::{eligible, overhead};
use crate::dest::Dest;

/// Overhead of an eligible server; weights play no part.
pub(super) fn rank(d: &Dest) -> Option<u64> {
    eligible(d).then(|| overhead(d))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::Fixture;
    use super::super::SchedKind;

    #[test]
    fn lc_ignores_weights() {
        let (mut f, ids) =
            Fixture::with_servers(SchedKind::Lc, &[(100, 1, 0, false), (1, 0, 5, false)]);
        assert_eq!(
            f.pick(),
            Some(ids[1]),
            "5 inactive weigh less than 1 active"
        );
    }
}
