//! wlc — weighted least connection, the default scheduler (`ip_vs_wlc.c`).
//!
//! Minimises overhead/weight with overhead = 256·active + inactive; compared by
//! cross-multiplication, strict, so ties go to the newer server.

use super::{
    overhead, pick_wlc, DestChange, Ranked, Ratio, SchedEnv, SchedInput, SchedKind, Scheduler,
};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug)]
pub struct Wlc {
    ranked: Ranked<Ratio>,
}

impl Default for Wlc {
    fn default() -> Self {
        Wlc {
            ranked: Ranked::new(rank),
        }
    }
}

/// overhead / weight of a server that may be picked (not OVERLOAD, weight > 0).
fn rank(d: &Dest) -> Option<Ratio> {
    (!d.overloaded && d.weight() > 0).then(|| Ratio {
        num: overhead(d),
        den: d.weight() as u64,
    })
}

impl Scheduler for Wlc {
    fn kind(&self) -> SchedKind {
        SchedKind::Wlc
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
        self.ranked.best(|| pick_wlc(dests))
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{arb_servers, first_with_least, Fixture};
    use super::super::{eligible, overhead};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn wlc_picks_the_first_least_overhead_per_weight(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Wlc, &specs);
            let want = first_with_least(&f.view(), eligible, |d| (overhead(d), d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }
    }
}
