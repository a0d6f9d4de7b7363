//! twos — power of two choices (`ip_vs_twos.c`, Linux ≥ 6.2).
//!
//! Two servers are drawn at random, each with probability proportional to its weight, and
//! the less loaded of the two (overhead / weight) gets the connection.
//!
//! With `W` the total weight of the eligible servers (not OVERLOAD, weight > 0), two
//! numbers `r1` then `r2` are drawn uniformly from `[0, W]` — note the closed interval, the
//! kernel draws below `W + 1`. Walking the eligible servers in list order and subtracting
//! each weight, a choice is the first server at which its number reaches ≤ 0, so `r = 0`
//! picks the first server and the first server is one unit more likely than its weight
//! says. Choice 2 wins only if strictly less loaded: `w2 · oh1 > w1 · oh2`.
//!
//! The kernel does this arithmetic in C `int`; rvs repeats it in wrapping `i32` so that
//! even overflowing products (weight 65535 with a few hundred active connections) compare
//! exactly as in the kernel.

use super::{eligible, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;

#[derive(Debug, Default)]
pub struct Twos;

/// `ip_vs_dest_conn_overhead` as the kernel's `int`.
fn overhead_i32(d: &Dest) -> i32 {
    (d.activeconns as i32)
        .wrapping_shl(8)
        .wrapping_add(d.inactconns as i32)
}

impl Scheduler for Twos {
    fn kind(&self) -> SchedKind {
        SchedKind::Twos
    }

    fn update(&mut self, _: &DestView<'_>, _: SchedFlags, _: DestChange) {}

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        _input: &SchedInput,
        env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        let eligible = || dests.iter().filter(|(_, d)| eligible(d));
        let mut total: i32 = 0;
        let mut any = false;
        for (_, d) in eligible() {
            total = total.wrapping_add(d.weight() as i32);
            any = true;
        }
        if !any {
            return None;
        }
        let bound = total.wrapping_add(1) as u32;
        let mut r1 = env.rng.below(bound) as i32;
        let mut r2 = env.rng.below(bound) as i32;

        let mut c1: Option<(DestId, i32, i32)> = None;
        let mut c2: Option<(DestId, i32, i32)> = None;
        for (id, d) in eligible() {
            let w = d.weight() as i32;
            r1 = r1.wrapping_sub(w);
            r2 = r2.wrapping_sub(w);
            if r1 <= 0 && c1.is_none() {
                c1 = Some((id, w, overhead_i32(d)));
            }
            if r2 <= 0 && c2.is_none() {
                c2 = Some((id, w, overhead_i32(d)));
            }
            if c1.is_some() && c2.is_some() {
                break;
            }
        }
        // Both draws are at most W, so both walks normally end on a server. Should the
        // `int` sum have wrapped, the kernel's fallbacks apply: choice 1 defaults to the
        // last eligible server with weight -1 and overhead 0.
        let (id1, w1, oh1) = c1.unwrap_or_else(|| {
            let last = eligible().next_back().map(|(id, _)| id).expect("non-empty");
            (last, -1, 0)
        });
        match c2 {
            Some((id2, w2, oh2)) if w2.wrapping_mul(oh1) > w1.wrapping_mul(oh2) => Some(id2),
            _ => Some(id1),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{arb_servers, Fixture};
    use super::*;
    use proptest::prelude::*;

    /// The server a draw lands on: the one whose cumulative-weight interval holds it.
    fn landing(f: &Fixture, r: u32) -> DestId {
        let mut upto = 0;
        for (id, d) in f.view().iter().filter(|(_, d)| eligible(d)) {
            upto += d.weight();
            if r <= upto {
                return id;
            }
        }
        unreachable!("draws are at most the total weight")
    }

    proptest! {
        #[test]
        fn twos_returns_the_less_loaded_of_the_two_drawn_servers(
            specs in arb_servers(),
            draws in (any::<u32>(), any::<u32>()),
        ) {
            let (mut f, _) = Fixture::with_servers(SchedKind::Twos, &specs);
            let total: u32 = f.view().iter().filter(|(_, d)| eligible(d)).map(|(_, d)| d.weight()).sum();
            if total == 0 {
                prop_assert_eq!(f.pick(), None);
                return Ok(());
            }
            let (r1, r2) = (draws.0 % (total + 1), draws.1 % (total + 1));
            f.rng.0.extend([r1, r2]);
            let (c1, c2) = (landing(&f, r1), landing(&f, r2));
            let (d1, d2) = (&f.arena[c1], &f.arena[c2]);
            let c2_better = (d2.weight() as u64) * super::super::overhead(d1)
                > (d1.weight() as u64) * super::super::overhead(d2);
            let want = if c2_better { c2 } else { c1 };
            prop_assert_eq!(f.pick(), Some(want));
        }
    }

    #[test]
    fn a_draw_of_zero_lands_on_the_first_server() {
        let (mut f, ids) =
            Fixture::with_servers(SchedKind::Twos, &[(5, 0, 0, false), (5, 0, 0, false)]);
        f.rng.0.extend([0, 0]);
        assert_eq!(f.pick(), Some(ids[1]), "ids[1] heads the list");
        f.rng.0.extend([10, 10]);
        assert_eq!(
            f.pick(),
            Some(ids[0]),
            "the top draw lands on the last server"
        );
    }

    /// `int` products as in the kernel: 65535 * 51200 wraps negative, so the idle second
    /// choice does not win (with 64-bit arithmetic it would).
    #[test]
    fn load_comparison_wraps_like_the_kernels_int() {
        let (mut f, ids) = Fixture::with_servers(
            SchedKind::Twos,
            &[(65535, 0, 0, false), (65535, 200, 0, false)],
        );
        f.rng.0.extend([0, 131_070]);
        assert_eq!(
            f.pick(),
            Some(ids[1]),
            "choice 1 (loaded, list head) is kept"
        );
    }
}
