//! wrr — weighted round robin (`ip_vs_wrr.c`).
//!
//! The list is swept repeatedly with a falling bar `cw`: a sweep picks, in list order,
//! every non-OVERLOAD server whose weight is at least `cw`, one per call. At the end of a
//! sweep the bar drops by `di`, the gcd of the positive weights; when it would reach 0 it
//! starts again from `mw`. So over one period a server of weight w is picked w/di times
//! and heavy servers are picked first: A4,B3,C2 gives `A A B A B C A B C`.
//!
//! `mw` is the largest weight minus `di − 1` rather than the largest weight: the last
//! sweep then runs with `cw = 1` and also catches a server whose weight is not a multiple
//! of `di` (possible when a weight changes between two recomputations).
//!
//! Any change of the list or of a weight recomputes `di`/`mw`, rewinds the cursor to the
//! list head and keeps `cw` where possible (rounded to the `di` grid, plus one).
//!
//! Failing is bounded: a call gives up after every server was tested against `cw = 1`
//! once, counted from where the call started (the kernel's `last_pass`/`restarted`/`stop`
//! bookkeeping).

use super::{gcd, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug, Default)]
pub struct Wrr {
    /// List index (0 = newest) of the last pick; `None` is the list head. An index is
    /// stable because every list change rewinds the cursor to the head.
    cl: Option<usize>,
    /// Current bar. 0 only before the first update or while every weight is 0.
    cw: i64,
    /// Starting bar: max weight − (di − 1).
    mw: i64,
    /// Step: gcd of the positive weights, 1 if there are none.
    di: i64,
    /// gcd of the positive weights (0 if none) and the largest weight: kept so that an add
    /// updates them in O(1) — loading 10,000 servers one by one stays linear.
    gcd_w: u32,
    max_w: u32,
}

impl Wrr {
    fn recompute(&mut self, dests: &DestView<'_>) {
        self.gcd_w = dests
            .iter()
            .map(|(_, d)| d.weight())
            .filter(|w| *w > 0)
            .fold(0, gcd);
        self.max_w = dests.iter().map(|(_, d)| d.weight()).max().unwrap_or(0);
        self.derive();
    }

    /// An added server can only raise the maximum and refine the gcd.
    fn add_weight(&mut self, w: u32) {
        if w > 0 {
            self.gcd_w = gcd(self.gcd_w, w);
        }
        self.max_w = self.max_w.max(w);
        self.derive();
    }

    fn derive(&mut self) {
        self.di = if self.gcd_w == 0 {
            1
        } else {
            self.gcd_w as i64
        };
        self.mw = self.max_w as i64 - (self.di - 1);
    }
}

impl Scheduler for Wrr {
    fn kind(&self) -> SchedKind {
        SchedKind::Wrr
    }

    fn update(&mut self, dests: &DestView<'_>, _flags: SchedFlags, change: DestChange) {
        match change {
            DestChange::Added(id) => {
                self.add_weight(dests.get(id).map_or(0, |d| d.weight()));
            }
            _ => self.recompute(dests),
        }
        if change == DestChange::Reset {
            // Binding (a fresh scheduler) starts at the head with the full bar; a flags-only
            // change is no event for wrr in the kernel, so the walk carries on.
            if self.cw == 0 {
                self.cw = self.mw;
                self.cl = None;
            }
            return;
        }
        self.cl = None;
        if self.cw > self.mw || self.cw == 0 {
            self.cw = self.mw;
        } else if self.di > 1 {
            self.cw = (self.cw / self.di) * self.di + 1;
        }
    }

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        _input: &SchedInput,
        _env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        if self.mw == 0 {
            return None;
        }
        let n = dests.len();
        let last = self.cl.filter(|i| *i < n);
        let mut pos = last.map_or(0, |i| i + 1);
        let mut stop: Option<usize> = None;
        let mut last_pass = false;
        let mut restarted = false;
        loop {
            while pos < n {
                let (id, d) = dests.nth(pos).expect("index below len");
                if !d.overloaded && d.weight() as i64 >= self.cw {
                    self.cl = Some(pos);
                    return Some(id);
                }
                if stop == Some(pos) {
                    // Back where the final cw = 1 sweep began: nothing is eligible.
                    return None;
                }
                pos += 1;
            }
            self.cw -= self.di;
            if self.cw <= 0 {
                self.cw = self.mw;
                if last_pass || last.is_none() {
                    self.cl = None;
                    return None;
                }
                restarted = true;
            }
            last_pass = self.cw <= self.di;
            if last_pass && restarted && last.is_some() {
                stop = last;
            }
            pos = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::Fixture;
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn one_period_picks_each_server_weight_over_gcd_times(
            weights in prop::collection::vec(0u32..12, 1..8),
            periods in 1usize..3,
        ) {
            let (mut f, ids) = Fixture::bound_with(SchedKind::Wrr, &weights);
            let g = weights.iter().copied().filter(|w| *w > 0).fold(0, gcd);
            if g == 0 {
                prop_assert_eq!(f.pick(), None);
                return Ok(());
            }
            let period: u32 = weights.iter().map(|w| w / g).sum();
            for _ in 0..periods {
                let mut count = vec![0u32; ids.len()];
                for _ in 0..period {
                    let id = f.pick().unwrap();
                    count[ids.iter().position(|x| *x == id).unwrap()] += 1;
                }
                let want: Vec<u32> = weights.iter().map(|w| w / g).collect();
                prop_assert_eq!(count, want);
            }
        }

        #[test]
        fn weight_zero_and_overloaded_servers_are_never_picked(
            servers in prop::collection::vec((0u32..6, any::<bool>()), 1..8),
        ) {
            let weights: Vec<u32> = servers.iter().map(|s| s.0).collect();
            let (mut f, ids) = Fixture::bound_with(SchedKind::Wrr, &weights);
            for (id, (_, over)) in ids.iter().zip(&servers) {
                f.arena[*id].overloaded = *over;
            }
            let any = servers.iter().any(|(w, o)| *w > 0 && !o);
            for _ in 0..40 {
                match f.pick() {
                    Some(id) => {
                        let d = &f.arena[id];
                        prop_assert!(d.weight() > 0 && !d.overloaded);
                    }
                    None => prop_assert!(!any, "an eligible server exists"),
                }
            }
        }
    }

    #[test]
    fn servers_added_one_by_one_keep_the_cw_of_the_first_add() {
        let mut f = Fixture::new(SchedKind::Wrr);
        let c = f.add(2);
        let b = f.add(3);
        let a = f.add(4);
        let got: Vec<DestId> = (0..12).map(|_| f.pick().unwrap()).collect();
        assert_eq!(got, [a, b, c, a, a, b, a, b, c, a, b, c]);
    }

    #[test]
    fn a_failed_pick_after_a_full_last_pass_keeps_the_cursor() {
        let mut f = Fixture::new(SchedKind::Wrr);
        let b = f.add(1);
        let a = f.add(1);
        assert_eq!(f.pick(), Some(a));
        f.arena[a].overloaded = true;
        f.arena[b].overloaded = true;
        assert_eq!(f.pick(), None);
        f.arena[b].overloaded = false;
        f.arena[a].overloaded = false;
        assert_eq!(f.pick(), Some(b), "the walk resumes after A");
    }
}
