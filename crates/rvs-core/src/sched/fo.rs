//! fo — weighted failover (`ip_vs_fo.c`).
//!
//! All new connections go to the non-OVERLOAD server with the highest weight; load is not
//! looked at. Lowering a server's weight (or quiescing it to 0) therefore fails traffic
//! over to the next-heaviest one. Strict `>` against a running maximum that starts at 0:
//! weight-0 servers never win and among equal weights the newest server does.

use super::{eligible, DestChange, Ranked, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;
use std::cmp::Reverse;

#[derive(Debug)]
pub struct Fo {
    ranked: Ranked<Reverse<u32>>,
}

impl Default for Fo {
    fn default() -> Self {
        Fo {
            ranked: Ranked::new(rank),
        }
    }
}

/// Heavier ranks first; weight-0 and OVERLOAD servers never win.
fn rank(d: &Dest) -> Option<Reverse<u32>> {
    eligible(d).then(|| Reverse(d.weight()))
}

/// The kernel's scan.
fn scan(dests: &DestView<'_>) -> Option<DestId> {
    let mut best: Option<DestId> = None;
    let mut hw = 0;
    for (id, d) in dests.iter() {
        if !d.overloaded && d.weight() > hw {
            best = Some(id);
            hw = d.weight();
        }
    }
    best
}

impl Scheduler for Fo {
    fn kind(&self) -> SchedKind {
        SchedKind::Fo
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
    use super::super::eligible;
    use super::super::fixture::{arb_servers, first_with_least, Fixture};
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fo_picks_the_first_heaviest_eligible_server_whatever_the_load(specs in arb_servers()) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Fo, &specs);
            // Heaviest = least 1/weight.
            let want = first_with_least(&f.view(), eligible, |d| (1, d.weight() as u64));
            prop_assert_eq!(f.pick(), want);
        }
    }
}
