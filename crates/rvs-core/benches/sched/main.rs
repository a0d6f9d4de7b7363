//! ns per scheduling decision for every scheduler with 10, 1,000 and 10,000 servers.
//! `cargo bench -p rvs-core --bench sched`; kept short (10 samples, 1 s each) because the
//! build machine is shared. `cargo bench -p rvs-core --bench sched_table`
//! prints the same measurements as a Markdown table.

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rvs_core::sched::SchedKind;
use std::hint::black_box;
use std::time::Duration;

mod setup;

fn picks(c: &mut Criterion) {
    for kind in SchedKind::ALL {
        let mut group = c.benchmark_group(kind.name());
        group
            .sample_size(10)
            .warm_up_time(Duration::from_millis(200))
            .measurement_time(Duration::from_secs(1));
        for n in setup::SIZES {
            let mut svc = setup::Service::new(kind, n);
            group.bench_function(BenchmarkId::from_parameter(n), |b| {
                b.iter(|| black_box(svc.pick()))
            });
            // The kernel's list scan, for the schedulers rvs indexes instead.
            let mut scan = setup::Service::scanning(kind, n);
            if scan.indexed_elsewhere() {
                group.bench_function(BenchmarkId::new("kernel-scan", n), |b| {
                    b.iter(|| black_box(scan.pick()))
                });
            }
        }
        group.finish();
    }
}

criterion_group!(benches, picks);
criterion_main!(benches);
