//! rr — round robin (`ip_vs_rr.c`).
//!
//! A cursor walks the list from the last pick, wrapping once; weight-0 and OVERLOAD servers
//! are skipped. Adding a server does not move the cursor; deleting the cursor's server moves
//! it to the next-newer server (the kernel's `n_list.prev`). A flags-only service edit is no
//! event for rr in the kernel, so `Reset` leaves the cursor alone (a freshly bound rr
//! starts at the head anyway).

use super::{eligible, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug, Default)]
pub struct Rr {
    /// Last picked server; `None` is the list head (the next walk starts at the newest).
    cursor: Option<DestId>,
    /// List index the cursor had when it was set: checked before use, it saves a search
    /// of the list on every pick (the list only changes on admin operations).
    hint: usize,
}

impl Rr {
    /// Where the next walk starts: just after the cursor, or at the head.
    fn start(&self, dests: &DestView<'_>) -> usize {
        let Some(cursor) = self.cursor else {
            return 0;
        };
        let at = match dests.nth(self.hint) {
            Some((id, _)) if id == cursor => Some(self.hint),
            _ => dests.position(cursor),
        };
        at.map_or(0, |p| p + 1)
    }
}

impl Scheduler for Rr {
    fn kind(&self) -> SchedKind {
        SchedKind::Rr
    }

    fn update(&mut self, _dests: &DestView<'_>, _flags: SchedFlags, change: DestChange) {
        if let DestChange::Removed { id, newer } = change {
            if self.cursor == Some(id) {
                self.cursor = newer;
            }
        }
    }

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        _input: &SchedInput,
        _env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        let n = dests.len();
        let start = self.start(dests);
        // One full turn, ending with the cursor's own server.
        for k in 0..n {
            let at = (start + k) % n;
            let (id, d) = dests.nth(at).expect("index below len");
            if eligible(d) {
                self.cursor = Some(id);
                self.hint = at;
                return Some(id);
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::Fixture;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn rr_visits_each_eligible_server_once_per_cycle(
            servers in prop::collection::vec((0u32..3, any::<bool>()), 1..10),
            cycles in 1usize..4,
        ) {
            let mut f = Fixture::new(SchedKind::Rr);
            let ids: Vec<DestId> = servers.iter().map(|(w, _)| f.add(*w)).collect();
            for (id, (_, over)) in ids.iter().zip(&servers) {
                f.arena[*id].overloaded = *over;
            }
            let eligible: Vec<DestId> = f.view().iter().filter(|(_, d)| super::super::eligible(d)).map(|(id, _)| id).collect();
            if eligible.is_empty() {
                prop_assert_eq!(f.pick(), None);
                return Ok(());
            }
            for _ in 0..cycles {
                let picked: Vec<DestId> = (0..eligible.len()).map(|_| f.pick().unwrap()).collect();
                prop_assert_eq!(&picked, &eligible, "one cycle is the eligible servers in list order");
            }
        }
    }
}
