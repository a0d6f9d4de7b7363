//! sed — shortest expected delay (`ip_vs_sed.c`).
//!
//! A new job on server *i* would finish after (activeᵢ + 1) / weightᵢ; sed picks the
//! smallest. Inactive connections are ignored (they cost the server next to nothing).
//! Same shape as wlc: the first non-OVERLOAD server with weight > 0 is the candidate, later
//! non-OVERLOAD servers replace it only when strictly better, compared by
//! cross-multiplication so no division is needed. Weight-0 servers can never be strictly
//! better (their side of the product is 0), so they are never picked.

use super::{DestChange, Ranked, Ratio, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug)]
pub struct Sed {
    ranked: Ranked<Ratio>,
}

impl Default for Sed {
    fn default() -> Self {
        Sed {
            ranked: Ranked::new(sed_rank),
        }
    }
}

/// (active + 1) / weight of a server that may be picked (not OVERLOAD, weight > 0).
pub(super) fn sed_rank(d: &Dest) -> Option<Ratio> {
    (!d.overloaded && d.weight() > 0).then(|| Ratio {
        num: sed_overhead(d),
        den: d.weight() as u64,
    })
}

/// Expected delay numerator: the active connections plus the one being scheduled.
pub(super) fn sed_overhead(d: &Dest) -> u64 {
    d.activeconns as u64 + 1
}

impl Scheduler for Sed {
    fn kind(&self) -> SchedKind {
        SchedKind::Sed
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

/// The kernel's scan.
fn scan(dests: &DestView<'_>) -> Option<DestId> {
    let mut it = dests.iter();
    let (mut least, mut loh, mut lw) = loop {
        let (id, d) = it.next()?;
        if !d.overloaded && d.weight() > 0 {
            break (id, sed_overhead(d), d.weight() as u64);
        }
    };
    for (id, d) in it.filter(|(_, d)| !d.overloaded) {
        let (doh, dw) = (sed_overhead(d), d.weight() as u64);
        if loh * dw > doh * lw {
            (least, loh, lw) = (id, doh, dw);
        }
    }
    Some(least)
}

#[cfg(test)]
mod tests {
    use super::super::eligible;
    use super::super::fixture::{arb_servers, first_with_least, Fixture};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn sed_picks_the_first_least_expected_delay(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Sed, &specs);
            let want = first_with_least(&f.view(), eligible, |d| (sed_overhead(d), d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }
    }

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
