//! The least-load family — lc, wlc, sed, nq, fo and ovf — as one scheduler type.
//!
//! Each of these kernel schedulers walks the server list once and keeps a running best
//! under a strict comparison, so it picks the **first server in list order (newest first)
//! with the least rank**; they differ only in the rank (overhead, overhead/weight,
//! expected delay, −weight, ...) and in which servers may be picked at all. So each file of
//! the family defines its rank function, and [`Least`] does the rest: the kernel's scan
//! ([`scan`]) for short lists, the ordered index ([`Ranked`]) for long ones, both giving
//! the same decision.

use super::{
    eligible, DestChange, RankFn, Ranked, Ratio, SchedEnv, SchedInput, SchedKind, Scheduler,
};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;
use std::fmt;

/// A least-load scheduler: its kind and its rank.
pub struct Least<K> {
    kind: SchedKind,
    ranked: Ranked<K>,
}

impl<K: Ord + Copy> Least<K> {
    pub fn new(kind: SchedKind, rank: RankFn<K>) -> Self {
        Least {
            kind,
            ranked: Ranked::new(rank),
        }
    }
}

impl<K> fmt::Debug for Least<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Least")
            .field("kind", &self.kind)
            .field("ranked", &self.ranked)
            .finish()
    }
}

/// The kernel's scan: the first server in list order with the least rank (`None` from
/// `rank` = may not be picked). A later server replaces the best only when strictly
/// better, which is how `ip_vs_lc.c` .. `ip_vs_ovf.c` break ties.
pub fn scan<K: Ord>(dests: &DestView<'_>, rank: RankFn<K>) -> Option<DestId> {
    let mut best: Option<(DestId, K)> = None;
    for (id, d) in dests.iter() {
        let Some(k) = rank(d) else {
            continue;
        };
        if best.as_ref().is_none_or(|(_, b)| k < *b) {
            best = Some((id, k));
        }
    }
    best.map(|(id, _)| id)
}

/// `num / weight` for a server that may be picked (weight > 0, not OVERLOAD): the rank of
/// wlc and sed, compared by cross-multiplication as the kernel compares it.
pub(super) fn per_weight(d: &Dest, num: u64) -> Option<Ratio> {
    eligible(d).then(|| Ratio {
        num,
        den: d.weight() as u64,
    })
}

/// The wlc rule, which lblc and lblcr fall back to.
pub fn pick_wlc(dests: &DestView<'_>) -> Option<DestId> {
    scan(dests, super::wlc::rank)
}

impl<K: Ord + Copy + Send> Scheduler for Least<K> {
    fn kind(&self) -> SchedKind {
        self.kind
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
        let rank = self.ranked.rank();
        self.ranked.best(|| scan(dests, rank))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{arb_servers, first_with_least, Fixture};
    use super::super::sed::sed_overhead;
    use super::super::{eligible, overhead, SchedKind};
    use proptest::prelude::*;

    // Each member of the family against an oracle written from its kernel source, on
    // random server lists (weights, loads, OVERLOAD).
    proptest! {
        #[test]
        fn lc_picks_the_first_least_overhead_eligible_server(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Lc, &specs);
            let want = first_with_least(&f.view(), eligible, |d| (overhead(d), 1));
            prop_assert_eq!(f.pick(), want);
        }

        #[test]
        fn wlc_picks_the_first_least_overhead_per_weight(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Wlc, &specs);
            let want = first_with_least(&f.view(), eligible, |d| (overhead(d), d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }

        #[test]
        fn sed_picks_the_first_least_expected_delay(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Sed, &specs);
            let want = first_with_least(&f.view(), eligible, |d| (sed_overhead(d), d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }

        #[test]
        fn nq_picks_the_first_idle_server_else_the_least_expected_delay(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Nq, &specs);
            let view = f.view();
            let idle = view.iter().find(|(_, d)| eligible(d) && d.activeconns == 0).map(|(id, _)| id);
            let want = idle.or_else(|| first_with_least(&view, eligible, |d| (sed_overhead(d), d.weight() as u64)));
            prop_assert_eq!(f.pick(), want);
        }

        #[test]
        fn fo_picks_the_first_heaviest_eligible_server_whatever_the_load(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Fo, &specs);
            // Heaviest = least 1/weight.
            let want = first_with_least(&f.view(), eligible, |d| (1, d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }

        #[test]
        fn ovf_picks_the_first_heaviest_server_not_over_its_weight(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Ovf, &specs);
            let ok = |d: &crate::dest::Dest| eligible(d) && d.activeconns <= d.weight();
            let want = first_with_least(&f.view(), ok, |d| (1, d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }
    }
}
