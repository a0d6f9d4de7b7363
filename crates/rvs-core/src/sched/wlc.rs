//! wlc — weighted least connection, the default scheduler (`ip_vs_wlc.c`).
//!
//! Minimises overhead/weight with overhead = 256·active + inactive; compared by
//! cross-multiplication, strict, so ties go to the newer server.

use super::{pick_wlc, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug, Default)]
pub struct Wlc;

impl Scheduler for Wlc {
    fn kind(&self) -> SchedKind {
        SchedKind::Wlc
    }

    fn update(&mut self, _: &DestView<'_>, _: SchedFlags, _: DestChange) {}

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        _input: &SchedInput,
        _env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        pick_wlc(dests)
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
