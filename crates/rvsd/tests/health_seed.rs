//! The seed scenarios with their own keepalived.conf blocks
//! (`testdata/keepalived/seed000_master.conf`, `seed003_master.conf`: lab addresses on
//! loopback): a real server's service stops ⇒ it leaves the table; it starts again ⇒ it
//! is back with its weight. Seed 000 "实验1/实验2" (nginx stopped/started on
//! 192.168.0.18), seed 003 "故障移除/故障恢复".
//!
//! The seeds' timers (delay_loop 6, connect_timeout 10, nb_get_retry 3,
//! delay_before_retry 3) are scaled down by 20 (0.3 / 0.5 / 3 / 0.15) to keep the suite
//! quick; `seed000_with_the_seed_timers` (ignored by default) runs them as written.
//! The real servers listen on port 80 of their lab address when it is free, else on a
//! free port that `connect_port` is pointed at.

mod health_lab;

use health_lab::*;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

fn seed_text(name: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/keepalived")
        .join(name);
    std::fs::read_to_string(p).unwrap()
}

fn scaled(text: &str) -> String {
    text.replace("delay_loop 6", "delay_loop 0.3")
        .replace("connect_timeout 10", "connect_timeout 0.5")
        .replace("delay_before_retry 3", "delay_before_retry 0.15")
}

/// Starts a listener for each real server; where port 80 is taken, points that real
/// server's `connect_port` at the port it got.
async fn servers(text: &mut String, ips: &[&str]) -> Vec<RealServer> {
    let mut out = Vec::new();
    for ip in ips {
        let mut rs = match tokio::net::TcpListener::bind(format!("{ip}:80")).await {
            Ok(l) => {
                drop(l);
                RealServer::tcp_at(format!("{ip}:80").parse().unwrap()).await
            }
            Err(_) => RealServer::tcp(ip).await,
        };
        if rs.addr.port() != 80 {
            let head = format!("real_server {ip} 80 {{");
            let at = text.find(&head).expect("real server block");
            let rel = text[at..].find("connect_port 80").expect("connect_port");
            text.replace_range(
                at + rel..at + rel + "connect_port 80".len(),
                &format!("connect_port {}", rs.addr.port()),
            );
        }
        rs.start_if_stopped().await;
        out.push(rs);
    }
    out
}

async fn scenario(file: &str, vip: &str, ips: &[&str], weights: &[u32], sched: &str, scale: bool) {
    let mut text = seed_text(file);
    if scale {
        text = scaled(&text);
    }
    let mut rss = servers(&mut text, ips).await;
    let cfg = config(&text);
    let lab = Lab::start(&cfg).await;
    let svc = format!("tcp {vip}:80");
    let table_addr = |ip: &str| -> SocketAddr { format!("{ip}:80").parse().unwrap() };
    {
        let t = lab.shared.table();
        let sid = t
            .service_id(&service_key(&svc))
            .expect("the seed's virtual server");
        let s = t.service(sid).unwrap();
        assert_eq!(s.cfg.scheduler, sched);
        assert_eq!(s.cfg.persistence, None, "persistence_timeout 0");
    }
    let mut all: Vec<(SocketAddr, u32)> = ips
        .iter()
        .map(|ip| table_addr(ip))
        .zip(weights.iter().copied())
        .collect();
    all.sort();
    assert_eq!(lab.dests(&svc), all);
    let (dl, retry, dbr, ct) = if scale {
        (0.3, 3, 0.15, 0.5)
    } else {
        (6.0, 3, 3.0, 10.0)
    };
    // keepalived.md §7: delay_loop + retry × delay_before_retry for a refused connect,
    // within the brief's delay_loop × (retry + 1) + connect_timeout.
    let bound = Duration::from_secs_f64(dl * f64::from(retry + 1) + ct);
    let first_run = Duration::from_secs_f64(1.0 + dl + 1.0);
    wait_for(
        "every checker ran once",
        first_run + Duration::from_secs(2),
        || lab.sup.status().iter().all(|s| s.up),
    )
    .await;
    tokio::time::sleep(Duration::from_secs_f64(dl * 2.0 + 0.2)).await;

    for (i, ip) in ips.iter().enumerate() {
        // 实验1 / 故障移除: the service on this real server stops.
        rss[i].stop().await;
        let t0 = Instant::now();
        wait_for(
            &format!("{ip} removed"),
            bound + Duration::from_secs(2),
            || lab.weight(&svc, table_addr(ip)).is_none(),
        )
        .await;
        let removal = t0.elapsed();
        let others: Vec<_> = all
            .iter()
            .filter(|(a, _)| a.ip().to_string() != *ip)
            .cloned()
            .collect();
        assert_eq!(lab.dests(&svc), others, "only {ip} left the pool");
        // 实验2 / 故障恢复: it starts again.
        rss[i].start().await;
        let t1 = Instant::now();
        wait_for(
            &format!("{ip} back"),
            Duration::from_secs_f64(dl) + Duration::from_secs(2),
            || lab.weight(&svc, table_addr(ip)) == Some(weights[i]),
        )
        .await;
        let recovery = t1.elapsed();
        eprintln!(
            "{file} {ip}: removal {removal:?} (bound {bound:?}, expected ≤ {:?}), recovery {recovery:?} (≤ delay_loop {dl} s)",
            Duration::from_secs_f64(dl + f64::from(retry) * dbr)
        );
        assert!(
            removal <= bound + Duration::from_millis(700),
            "{removal:?} > {bound:?}"
        );
        assert_eq!(lab.dests(&svc), all);
    }
}

#[tokio::test]
async fn seed000_real_server_stopped_leaves_and_comes_back() {
    scenario(
        "seed000_master.conf",
        "127.0.0.38",
        &["127.0.0.18", "127.0.0.28"],
        &[1, 1],
        "rr",
        true,
    )
    .await;
}

#[tokio::test]
async fn seed003_fault_removal_and_recovery() {
    scenario(
        "seed003_master.conf",
        "127.0.20.50",
        &["127.0.20.233", "127.0.20.203"],
        &[1, 2],
        "wrr",
        true,
    )
    .await;
}

#[tokio::test]
#[ignore = "runs the seed's own timers (about a minute)"]
async fn seed000_with_the_seed_timers() {
    scenario(
        "seed000_master.conf",
        "127.0.0.38",
        &["127.0.0.18", "127.0.0.28"],
        &[1, 1],
        "rr",
        false,
    )
    .await;
}
