//! Thousands of checkers need no thousands of threads: 2000 real servers with a
//! TCP_CHECK each run on a 2-worker runtime. (Alone in this test binary, so the thread
//! count is this test's.)

mod health_lab;

use health_lab::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

fn threads() -> usize {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| {
            l.strip_prefix("Threads:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_checkers_run_on_two_worker_threads() {
    const N: usize = 2000;
    let l = tokio::net::TcpListener::bind("127.0.40.250:0")
        .await
        .unwrap();
    let target = l.local_addr().unwrap();
    let accepted = Arc::new(AtomicUsize::new(0));
    let acc = accepted.clone();
    let server = tokio::spawn(async move {
        loop {
            if let Ok((s, _)) = l.accept().await {
                acc.fetch_add(1, Ordering::Relaxed);
                drop(s);
            }
        }
    });
    let mut conf = String::from(
        "virtual_server 127.0.40.100 80 {\n protocol TCP\n lb_kind DR\n delay_loop 0.5\n",
    );
    for i in 0..N {
        conf.push_str(&format!(
            " real_server 127.0.{}.{} 80 {{\n  TCP_CHECK {{\n   connect_ip {}\n   connect_port {}\n  }}\n }}\n",
            41 + i / 250,
            1 + i % 250,
            target.ip(),
            target.port()
        ));
    }
    conf.push_str("}\n");
    let before = threads();
    let lab = Lab::start(&config(&conf)).await;
    assert_eq!(lab.sup.running(), N);
    assert_eq!(lab.dests("tcp 127.0.40.100:80").len(), N);
    let took = wait_for("two probes per checker", Duration::from_secs(20), || {
        accepted.load(Ordering::Relaxed) >= 2 * N
    })
    .await;
    let during = threads();
    eprintln!(
        "{N} checkers: {} probes in {took:?}; threads {before} -> {during}",
        accepted.load(Ordering::Relaxed)
    );
    assert!(
        during <= before + 8,
        "threads grew from {before} to {during}"
    );
    assert!(lab.sup.status().iter().all(|s| s.up));
    assert_eq!(lab.dests("tcp 127.0.40.100:80").len(), N);
    server.abort();
}
