//! The [`Sweeper`] (a full read of the connection tables every few seconds) against the
//! reference sweep (a full read every tick), side by side on the same scripted traffic
//! with the test build's clock: the same entries must expire at the same tick, in the
//! same order, leaving the same counters (issue 10).

mod common;

use common::packet::*;
use common::*;
use rvs_core::{Forward, ServiceConfig};
use rvs_xdp::abi::ConnKey6;
use rvs_xdp::sweep::Sweeper;
use rvs_xdp::{testenv, Build};

const MS: u64 = 1_000_000;

/// A small deterministic generator (the script must be the same in both runs).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self, below: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % below
    }
}

#[derive(Clone, Copy, Debug)]
enum Ev {
    Tcp { client: u32, port: u16, flags: u8 },
    Udp { client: u32 },
}

/// One second of traffic: (ms into the second, event).
fn script(ticks: u64) -> Vec<Vec<(u64, Ev)>> {
    let mut r = Lcg(10);
    let mut clients = 0u32;
    let mut out = Vec::new();
    for _ in 0..ticks {
        let mut sec = Vec::new();
        for _ in 0..r.next(6) {
            let at = r.next(1000);
            let ev = match r.next(10) {
                0..=2 => {
                    clients += 1;
                    let port = if r.next(3) == 0 { 443 } else { 80 };
                    Ev::Tcp {
                        client: clients,
                        port,
                        flags: SYN,
                    }
                }
                3..=6 if clients > 0 => {
                    let flags = [ACK, ACK, FIN | ACK, RST][r.next(4) as usize];
                    let port = if r.next(3) == 0 { 443 } else { 80 };
                    Ev::Tcp {
                        client: 1 + r.next(clients as u64) as u32,
                        port,
                        flags,
                    }
                }
                _ => {
                    if r.next(2) == 0 || clients == 0 {
                        clients += 1;
                    }
                    Ev::Udp {
                        client: 1 + r.next(clients as u64) as u32,
                    }
                }
            };
            sec.push((at, ev));
        }
        sec.sort_by_key(|(at, _)| *at);
        out.push(sec);
    }
    out
}

fn frame_of(ev: Ev) -> Vec<u8> {
    let (client, l4) = match ev {
        Ev::Tcp {
            client,
            port,
            flags,
        } => (
            client,
            L4::Tcp {
                sport: 10000 + (client % 50000) as u16,
                dport: port,
                flags,
                payload: vec![],
            },
        ),
        Ev::Udp { client } => (
            client,
            L4::Udp {
                sport: 10000 + (client % 50000) as u16,
                dport: 53,
                payload: b"q".to_vec(),
                csum: true,
            },
        ),
    };
    let src = std::net::Ipv4Addr::from(0x0a40_0000u32 + client);
    frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(src.into(), ip("10.0.0.100"), &l4),
    )
}

type Log = Vec<(u64, Vec<(u8, ConnKey6)>)>;
/// (active, inactive, persistent, overloaded) of each real server.
type Counts = Vec<(u32, u32, u32, bool)>;

/// Plays the script; `tick(now)` is the sweep under test. Returns what expired at each
/// tick, the servers' counters at the end, and how many ticks read the whole tables.
fn play(
    rig: &mut Rig,
    script: &[Vec<(u64, Ev)>],
    mut tick: impl FnMut(&Rig, u64) -> (Vec<(u8, ConnKey6)>, bool),
) -> (Log, Counts, usize) {
    let mut log = Vec::new();
    let mut scans = 0;
    for (i, sec) in script.iter().enumerate() {
        let base = i as u64 * 1000;
        if i == script.len() / 2 {
            // `ipvsadm --set 5 4 20` half-way: shorter timeouts from now on.
            rig.table.timeouts.tcp[1] = 5;
            rig.table.timeouts.tcp[4] = 4;
            rig.table.timeouts.udp = 20;
            rig.sync();
        }
        for (at, ev) in sec {
            testenv::set_now(rig.plane.director(), (base + at) * MS).unwrap();
            rig.run(&frame_of(*ev));
        }
        let now = (base + 1000) * MS;
        testenv::set_now(rig.plane.director(), now).unwrap();
        let (expired, scanned) = tick(rig, now);
        scans += usize::from(scanned);
        if !expired.is_empty() {
            log.push((i as u64 + 1, expired));
        }
    }
    let mut counts = Vec::new();
    for (svc, port) in [(tcp("10.0.0.100", 80), 80), (tcp("10.0.0.100", 443), 443)] {
        for rs in ["10.0.0.11", "10.0.0.12"] {
            counts.push(rig.counts(&svc, rs, port));
        }
    }
    counts.push(rig.counts(&udp("10.0.0.100", 53), "10.0.0.11", 53));
    (log, counts, scans)
}

fn setup(rig: &mut Rig) {
    let web = rig.service(tcp("10.0.0.100", 80), "rr");
    let tls = rig.service_cfg(
        ServiceConfig::new(tcp("10.0.0.100", 443))
            .with_scheduler("rr")
            .with_persistence(30),
    );
    for key in [web, tls] {
        let port = if key == web { 80 } else { 443 };
        rig.dest(&key, "10.0.0.11", port, Forward::Route, 1);
        rig.dest(&key, "10.0.0.12", port, Forward::Route, 1);
    }
    let dns = rig.service(udp("10.0.0.100", 53), "rr");
    rig.dest(&dns, "10.0.0.11", 53, Forward::Route, 1);
}

#[test]
fn the_sweeper_expires_what_a_full_sweep_every_tick_would_in_the_same_order() {
    if !root_or_skip("sweeper against the reference sweep") {
        return;
    }
    let ticks = 900;
    let s = script(ticks);

    // One director for both runs: the same maps, so entries with equal deadlines come in
    // the same (hash) order.
    let mut rig = Rig::new("sweeper", Build::Test);
    setup(&mut rig);
    let (ref_log, ref_counts, _) = play(&mut rig, &s, |rig, now| {
        let r = rig.plane.inner().sweep_at(now).expect("sweep");
        (r.expired_keys, true)
    });

    rig.plane.inner().reset_for_tests().expect("reset");
    rig.table = rvs_core::Table::new();
    setup(&mut rig);
    let mut sweeper = Sweeper::new();
    let (log, counts, scans) = play(&mut rig, &s, |rig, now| {
        let r = sweeper.tick(rig.plane.director(), now).expect("tick");
        (r.expired_keys, r.scanned)
    });

    let expired: usize = ref_log.iter().map(|(_, k)| k.len()).sum();
    assert!(
        expired > 300,
        "the script expires too little to tell: {expired}"
    );
    for (i, (want, got)) in ref_log.iter().zip(&log).enumerate() {
        assert_eq!(want, got, "expiry {i} differs");
    }
    assert_eq!(ref_log.len(), log.len());
    assert_eq!(ref_counts, counts);
    // Default timeouts (shortest 10 s) for the first half, 4 s after the --set.
    assert!(
        scans < ticks as usize / 3,
        "the sweeper read the tables on {scans} of {ticks} ticks"
    );
}

/// CPU time of this thread (user and system: the map reads are system time).
fn thread_cpu() -> std::time::Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    std::time::Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn median_ms(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The cost of expiry with a million entries in the table (none due: the cost of finding
/// that out), as a Markdown table for docs/security.md. Not a test:
/// `cargo test --release -p rvs-xdp --test sweeper -- --ignored --nocapture`
#[test]
#[ignore]
fn bench_expiry_cost_at_a_million_entries() {
    if !root_or_skip("expiry benchmark") {
        return;
    }
    let n: u32 = std::env::var("RVS_SWEEP_BENCH_FLOWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1 << 20);
    let rig = {
        let mut r = Rig::with_conn_max("sweep-bench", Build::Production, n + 1024);
        let dns = r.service(udp("10.0.0.100", 53), "rr");
        r.dest(&dns, "10.0.0.11", 53, Forward::Route, 1);
        r
    };
    let t = std::time::Instant::now();
    for i in 0..n {
        // a client address each (10.64.0.0/10): every key distinct
        assert_eq!(rig.run(&frame_of(Ev::Udp { client: i })).0, XDP_TX);
    }
    eprintln!("{n} flows inserted in {:.1} s", t.elapsed().as_secs_f64());
    let dir = rig.plane.director();
    let now = rvs_xdp::plane::monotonic_ns();
    assert_eq!(rig.conn_count(), n as usize);

    // The sweeper before issue 10: every second, every entry copied out (a key and a value
    // allocated each), then filtered for due ones.
    let before: Vec<f64> = (0..3)
        .map(|_| {
            let c = thread_cpu();
            let all = rvs_xdp::sweep::entries(dir).unwrap();
            let due = all.iter().filter(|e| e.due_ns() <= now).count();
            assert_eq!((all.len(), due), (n as usize, 0));
            (thread_cpu() - c).as_secs_f64() * 1e3
        })
        .collect();
    // The reference sweep now: one full read with reused buffers.
    let full: Vec<f64> = (0..3)
        .map(|_| {
            let c = thread_cpu();
            let s = rvs_xdp::sweep::sweep(dir, now).unwrap();
            assert_eq!(s.live, n as usize);
            (thread_cpu() - c).as_secs_f64() * 1e3
        })
        .collect();
    // The Sweeper, one tick per second for a minute.
    let mut w = Sweeper::new();
    let secs = 60u64;
    let mut scans = 0;
    let c = thread_cpu();
    for k in 0..secs {
        let s = w.tick(dir, now + k * 1_000_000_000).unwrap();
        scans += usize::from(s.scanned);
        assert_eq!((s.live, s.expired), (n as usize, 0));
    }
    let ticks_ms = (thread_cpu() - c).as_secs_f64() * 1e3;
    let interval = rvs_xdp::sweep::min_timeout_s(dir).unwrap().min(10);
    let (b, f) = (median_ms(before), median_ms(full));
    let per_s = ticks_ms / secs as f64;
    println!("| entries | before: full copy every second | full read (reused buffers) | Sweeper: read every {interval} s, per second | ratio before / Sweeper |");
    println!("|---|---|---|---|---|");
    println!(
        "| {n} | {b:.0} ms CPU per second ({:.0} % of a core) | {f:.0} ms | **{per_s:.1} ms CPU per second ({:.1} % of a core)**, {scans} full reads in {secs} s | **{:.0}×** |",
        b / 10.0,
        per_s / 10.0,
        b / per_s
    );
}
