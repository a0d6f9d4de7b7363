//! ovf — weighted overflow (`ip_vs_ovf.c`).
//!
//! Like fo, the heaviest server takes everything, but only while its *active* connections
//! do not exceed its weight: a server with `active > weight` is skipped and the traffic
//! overflows to the next-heaviest. Only active connections count, so for UDP (never
//! active) ovf behaves like fo. OVERLOAD and weight-0 servers are skipped; ties keep the
//! first (newest) server.

use super::{eligible, DestChange, Ranked, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;
use std::cmp::Reverse;

#[derive(Debug)]
pub struct Ovf {
    ranked: Ranked<Reverse<u32>>,
}

impl Default for Ovf {
    fn default() -> Self {
        Ovf {
            ranked: Ranked::new(rank),
        }
    }
}

/// Heavier ranks first, among servers not over their weight in active connections.
fn rank(d: &Dest) -> Option<Reverse<u32>> {
    (eligible(d) && d.activeconns <= d.weight()).then(|| Reverse(d.weight()))
}

/// The kernel's scan.
fn scan(dests: &DestView<'_>) -> Option<DestId> {
    let mut best: Option<(DestId, u32)> = None;
    for (id, d) in dests.iter() {
        if !eligible(d) || d.activeconns > d.weight() {
            continue;
        }
        if best.is_none_or(|(_, hw)| d.weight() > hw) {
            best = Some((id, d.weight()));
        }
    }
    best.map(|(id, _)| id)
}

impl Scheduler for Ovf {
    fn kind(&self) -> SchedKind {
        SchedKind::Ovf
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
        fn ovf_picks_the_first_heaviest_server_not_over_its_weight(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Ovf, &specs);
            let ok = |d: &crate::dest::Dest| eligible(d) && d.activeconns <= d.weight();
            let want = first_with_least(&f.view(), ok, |d| (1, d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }
    }
}
