//! lc — least connection (`ip_vs_lc.c`).
//!
//! Picks the server with the smallest overhead (256·active + inactive); weights only
//! matter in that weight-0 servers are skipped, like OVERLOAD ones. The comparison is a
//! strict `<`, so among equals the first in list order (the newest) wins. The kernel
//! source still says `activeconns<<5` in a comment; the code uses the shared overhead.

use super::{eligible, overhead, DestChange, Ranked, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug)]
pub struct Lc {
    ranked: Ranked<u64>,
}

impl Default for Lc {
    fn default() -> Self {
        Lc {
            ranked: Ranked::new(rank),
        }
    }
}

/// Overhead of an eligible server; weights play no part.
fn rank(d: &Dest) -> Option<u64> {
    eligible(d).then(|| overhead(d))
}

/// The kernel's scan: the first eligible server with the least overhead.
fn scan(dests: &DestView<'_>) -> Option<DestId> {
    let mut it = dests.iter().filter(|(_, d)| eligible(d));
    let (first, d) = it.next()?;
    let (mut least, mut loh) = (first, overhead(d));
    for (id, d) in it {
        let oh = overhead(d);
        if oh < loh {
            (least, loh) = (id, oh);
        }
    }
    Some(least)
}

impl Scheduler for Lc {
    fn kind(&self) -> SchedKind {
        SchedKind::Lc
    }

    fn update(&mut self, dests: &DestView<'_>, _: SchedFlags, change: DestChange) {
        self.ranked.update(dests, change);
    }

    fn load_changed(&mut self, dests: &DestView<'_>, id: DestId) {
        self.ranked.load_changed(dests, id);
    }

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        _input: &SchedInput,
        _env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        self.ranked.best(|| scan(dests))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{arb_servers, first_with_least, Fixture};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn lc_picks_the_first_least_overhead_eligible_server(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Lc, &specs);
            let want = first_with_least(&f.view(), eligible, |d| (overhead(d), 1));
            prop_assert_eq!(f.pick(), want);
        }
    }

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
