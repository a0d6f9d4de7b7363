//! The verifier's work on the director: the kernel refuses a program whose verification
//! takes more than 1,000,000 instructions, counted over the entry point and every global
//! function together, and what it counts for the same object moves between kernel
//! versions. A bounded loop that inlines a big body (a retry around a scheduler, say)
//! multiplies that count, and once cost this program its load. The budget keeps each
//! build at under a third of the limit, so a change that multiplies it fails here, with
//! the figure, before it fails on someone's kernel.

mod common;

use common::*;
use rvs_xdp::Build;

/// Instructions the verifier may process per program (a third of the kernel's limit).
const BUDGET: u32 = 333_000;

#[test]
fn each_build_verifies_well_below_the_kernels_complexity_limit() {
    if !root_or_skip("verifier budget") {
        return;
    }
    for build in [Build::Production, Build::Test] {
        let rig = Rig::new("verifier", build);
        for prog in ["rvs_xdp", "rvs_ctl"] {
            let n = rig
                .plane
                .director()
                .verified_insns(prog)
                .unwrap_or_else(|e| panic!("{prog}: {e}"))
                .expect("the kernel reports verified_insns (Linux 5.16 and later)");
            eprintln!("{build:?} {prog}: {n} instructions verified (budget {BUDGET})");
            assert!(
                n <= BUDGET,
                "{build:?} {prog}: the verifier processed {n} instructions, over the budget of \
                 {BUDGET} (the kernel's limit is 1,000,000)"
            );
        }
    }
}
