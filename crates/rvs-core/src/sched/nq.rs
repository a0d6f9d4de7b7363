//! nq — never queue (`ip_vs_nq.c`).
//!
//! An idle server (no active connection) takes the job at once: the first such server in
//! list order is returned without looking further. When every server is busy, nq falls
//! back to sed's rule, minimising (active + 1) / weight with a strict comparison (ties keep
//! the newer server). OVERLOAD and weight-0 servers are skipped throughout.

use super::sed::{sed_overhead, sed_rank};
use super::{eligible, DestChange, Ranked, Ratio, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;

/// Two indexes for long lists: idle servers (newest first) and the sed rank.
#[derive(Debug)]
pub struct Nq {
    idle: Ranked<()>,
    delay: Ranked<Ratio>,
}

impl Default for Nq {
    fn default() -> Self {
        Nq {
            idle: Ranked::new(idle_rank),
            delay: Ranked::new(sed_rank),
        }
    }
}

fn idle_rank(d: &Dest) -> Option<()> {
    (eligible(d) && d.activeconns == 0).then_some(())
}

/// The kernel's scan: the first idle server, else the least expected delay.
fn scan(dests: &DestView<'_>) -> Option<DestId> {
    let mut least: Option<(DestId, u64, u64)> = None;
    for (id, d) in dests.iter().filter(|(_, d)| eligible(d)) {
        if d.activeconns == 0 {
            return Some(id);
        }
        let (doh, dw) = (sed_overhead(d), d.weight() as u64);
        if least.is_none_or(|(_, loh, lw)| loh * dw > doh * lw) {
            least = Some((id, doh, dw));
        }
    }
    least.map(|(id, _, _)| id)
}

impl Scheduler for Nq {
    fn kind(&self) -> SchedKind {
        SchedKind::Nq
    }

    fn update(&mut self, dests: &DestView<'_>, _: SchedFlags, change: DestChange) {
        self.idle.update(dests, change);
        self.delay.update(dests, change);
    }

    fn load_changed(&mut self, dests: &DestView<'_>, id: DestId) {
        self.idle.load_changed(dests, id);
        self.delay.load_changed(dests, id);
    }

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        _input: &SchedInput,
        _env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        // Both indexes exist from the same list length on.
        if self.idle.is_indexed() {
            return self.idle.best(|| None).or_else(|| self.delay.best(|| None));
        }
        scan(dests)
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{arb_servers, first_with_least, Fixture};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn nq_picks_the_first_idle_server_else_the_least_expected_delay(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Nq, &specs);
            let view = f.view();
            let idle = view.iter().find(|(_, d)| eligible(d) && d.activeconns == 0).map(|(id, _)| id);
            let want = idle.or_else(|| first_with_least(&view, eligible, |d| (sed_overhead(d), d.weight() as u64)));
            prop_assert_eq!(f.pick(), want);
        }
    }
}
