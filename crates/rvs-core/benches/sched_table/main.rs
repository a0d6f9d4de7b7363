//! Prints ns per scheduling decision for every scheduler and server count as a Markdown
//! table (the figures of docs/bench-schedulers.md), without criterion:
//! `cargo bench -p rvs-core --bench sched_table`.
//! Each cell is the best of 5 runs of enough picks to last about 20 ms.

use rvs_core::sched::SchedKind;
use std::hint::black_box;
use std::time::Instant;

#[path = "../sched/setup.rs"]
mod setup;

fn ns_per_pick(svc: &mut setup::Service) -> f64 {
    let mut iters = 1_000u32;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(svc.pick());
        }
        if t.elapsed().as_millis() >= 20 {
            break;
        }
        iters *= 2;
    }
    (0..5)
        .map(|_| {
            let t = Instant::now();
            for _ in 0..iters {
                black_box(svc.pick());
            }
            t.elapsed().as_nanos() as f64 / iters as f64
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` does not: no timing run then.
    if !std::env::args().any(|a| a == "--bench") {
        println!("sched_table: run with `cargo bench -p rvs-core --bench sched_table`");
        return;
    }
    // Each cell: rvs, and in brackets the kernel's list scan where rvs indexes instead.
    let sizes = setup::SIZES;
    print!("| scheduler |");
    for n in sizes {
        print!(" n = {n} |");
    }
    println!();
    println!("|---|{}", "---:|".repeat(sizes.len()));
    for kind in SchedKind::ALL {
        print!("| {} |", kind.name());
        for n in sizes {
            let rvs = ns_per_pick(&mut setup::Service::new(kind, n));
            let mut scanning = setup::Service::scanning(kind, n);
            if scanning.indexed_elsewhere() {
                let scan = ns_per_pick(&mut scanning);
                print!(" {rvs:.1} ({scan:.1}) |");
            } else {
                print!(" {rvs:.1} |");
            }
        }
        println!();
    }
}
