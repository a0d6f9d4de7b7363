//! nq — never queue (`ip_vs_nq.c`).
//!
//! An idle server (no active connection) takes the job at once: the first such server in
//! list order is returned without looking further. When every server is busy, nq falls
//! back to sed's rule, minimising (active + 1) / weight with a strict comparison (ties keep
//! the newer server). OVERLOAD and weight-0 servers are skipped throughout.

use super::sed::sed_overhead;
use super::{eligible, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug, Default)]
pub struct Nq;

impl Scheduler for Nq {
    fn kind(&self) -> SchedKind {
        SchedKind::Nq
    }

    fn update(&mut self, _: &DestView<'_>, _: SchedFlags, _: DestChange) {}

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        _input: &SchedInput,
        _env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
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
