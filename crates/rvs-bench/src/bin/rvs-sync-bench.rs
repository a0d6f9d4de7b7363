//! `rvs-sync-bench`: how many connection entries per second a sync master can send and a
//! backup install without losing any (a benchmark, not a test), results as Markdown.
//!
//! A private network namespace (unshared, gone at exit) with a veth pair: the master on one
//! end, the backup on the other, both rvs-sync daemons in this process. The backup installs
//! into (a) the XDP director's BPF connection table through `RVS_CTL_INSTALL` (a loaded
//! director, not attached) and (b) the table model. For each rate the master is offered
//! distinct established DR connections for `--seconds` at that rate (in 1 ms batches);
//! a run is lossless when every entry was installed and neither the socket nor the queue
//! dropped one. The best lossless rate is found by doubling, then bisecting.
//!
//! Needs root. `rvs-sync-bench [--out FILE] [--quick]`.

use anyhow::{bail, Context, Result};
use rvs_core::sync::flags;
use rvs_core::{
    DestConfig, Forward, Protocol, ServiceConfig, ServiceKey, SyncDaemonConfig, SyncEntry,
    SyncInstall, SyncParams, SyncSkip, Table,
};
use rvs_dataplane::{DataPlane, Shared};
use rvs_sync::{Installer, SyncDaemons};
use rvs_xdp::{Build, XdpOptions, XdpPlane};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

fn sh(cmd: &str) -> Result<()> {
    let argv: Vec<&str> = cmd.split_whitespace().collect();
    let st = Command::new(argv[0])
        .args(&argv[1..])
        .status()
        .with_context(|| cmd.to_string())?;
    if !st.success() {
        bail!("{cmd}: {st}");
    }
    Ok(())
}

fn private_net() -> Result<()> {
    // SAFETY: unshare on the main thread before any other thread exists.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        bail!(
            "unshare(CLONE_NEWNET): {} (run as root)",
            std::io::Error::last_os_error()
        );
    }
    sh("ip link set lo up")?;
    sh("ip link add sm type veth peer name sb")?;
    sh("ip addr add 10.88.0.1/24 dev sm")?;
    sh("ip addr add 10.88.0.2/24 dev sb")?;
    sh("ip link set sm up")?;
    sh("ip link set sb up")?;
    // master and backup share the namespace: what sb receives comes from a local address
    for k in [
        "net.ipv4.conf.all.rp_filter=0",
        "net.ipv4.conf.sb.rp_filter=0",
        "net.ipv4.conf.sb.accept_local=1",
    ] {
        sh(&format!("sysctl -qw {k}"))?;
    }
    Ok(())
}

const VIP: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 100);
const RS: Ipv4Addr = Ipv4Addr::new(10, 0, 0, 11);

fn table() -> Table {
    let mut t = Table::new();
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: VIP.into(),
        port: 80,
    };
    t.add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .expect("service");
    t.add_dest(
        &key,
        DestConfig::new(RS.into(), 80).with_forward(Forward::Route),
    )
    .expect("server");
    t
}

fn entry(n: u64) -> SyncEntry {
    SyncEntry {
        proto: 6,
        caddr: IpAddr::V4(Ipv4Addr::from(0x0a40_0000 + (n / 60000) as u32)),
        cport: 1024 + (n % 60000) as u16,
        vaddr: VIP.into(),
        vport: 80,
        daddr: RS.into(),
        dport: 80,
        fwmark: 0,
        flags: flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
    }
}

/// Installs into a backup's store and counts what it did.
struct Counting {
    installed: AtomicU64,
    refused: AtomicU64,
}

fn counting(
    install: impl Fn(&[SyncEntry]) -> Vec<Result<SyncInstall, SyncSkip>> + Send + Sync + 'static,
) -> (Installer, Arc<Counting>) {
    let c = Arc::new(Counting {
        installed: AtomicU64::new(0),
        refused: AtomicU64::new(0),
    });
    let k = c.clone();
    let inst: Installer = Arc::new(move |es: Vec<SyncEntry>| {
        let r = install(&es);
        for x in &r {
            match x {
                Ok(_) => k.installed.fetch_add(1, Ordering::Relaxed),
                Err(_) => k.refused.fetch_add(1, Ordering::Relaxed),
            };
        }
        r
    });
    (inst, c)
}

struct Run {
    offered: u64,
    installed: u64,
    /// Entries offered and not installed.
    lost: u64,
    /// Messages dropped at the backup's socket or the master's queue.
    dropped: u64,
    elapsed: Duration,
}

/// Offers `rate` entries/s for `secs`, fresh entries from `base` on; waits for the backup.
fn run(
    rt: &tokio::runtime::Runtime,
    inst: &Installer,
    count: &Counting,
    rate: u64,
    secs: f64,
    base: u64,
) -> Result<Run> {
    let _g = rt.enter();
    let params = SyncParams::default();
    let daemon = |master: bool, ifn: &str| SyncDaemonConfig {
        master,
        mcast_ifn: ifn.into(),
        syncid: 1,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    };
    let mut ds = SyncDaemons::new();
    ds.start(&daemon(false, "sb"), &params, inst.clone())
        .map_err(|e| anyhow::anyhow!("backup: {e}"))?;
    ds.start(&daemon(true, "sm"), &params, inst.clone())
        .map_err(|e| anyhow::anyhow!("master: {e}"))?;
    let m = ds.master().context("master")?;
    let (i0, r0) = (
        count.installed.load(Ordering::Relaxed),
        count.refused.load(Ordering::Relaxed),
    );
    let total = (rate as f64 * secs) as u64;
    let per_ms = (rate / 1000).max(1);
    let start = Instant::now();
    let mut sent = 0u64;
    while sent < total {
        let due = start + Duration::from_micros(sent * 1_000_000 / rate);
        if let Some(w) = due.checked_duration_since(Instant::now()) {
            std::thread::sleep(w);
        }
        let n = per_ms.min(total - sent);
        let batch: Vec<SyncEntry> = (0..n).map(|i| entry(base + sent + i)).collect();
        m.offer(&batch);
        sent += n;
    }
    // the last partial messages go within the 2 s flush
    let deadline = Instant::now() + Duration::from_secs(6);
    let done = || {
        count.installed.load(Ordering::Relaxed) + count.refused.load(Ordering::Relaxed) - i0 - r0
    };
    let mut last = (done(), Instant::now());
    while done() < total && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
        if done() != last.0 {
            last = (done(), Instant::now());
        } else if last.1.elapsed() > Duration::from_millis(2600) {
            break;
        }
    }
    let elapsed = start.elapsed();
    let installed = count.installed.load(Ordering::Relaxed) - i0;
    let facts: std::collections::HashMap<String, u64> = ds
        .facts()
        .into_iter()
        .filter_map(|(k, v)| v.parse().ok().map(|v| (k, v)))
        .collect();
    let f = |k: &str| facts.get(k).copied().unwrap_or(0);
    Ok(Run {
        offered: total,
        installed,
        lost: total.saturating_sub(installed),
        dropped: f("sync.backup.dropped.socket_overflow") + f("sync.master.dropped.queue_full"),
        elapsed,
    })
}

/// The best lossless rate: doubling from `start`, then bisecting.
fn best_rate(
    rt: &tokio::runtime::Runtime,
    inst: &Installer,
    count: &Counting,
    secs: f64,
    log: &mut Vec<String>,
    reset: &dyn Fn(),
) -> Result<u64> {
    let mut base = 0u64;
    let mut try_rate = |rate: u64, log: &mut Vec<String>| -> Result<bool> {
        reset();
        let r = run(rt, inst, count, rate, secs, base)?;
        base += r.offered;
        let ok = r.lost == 0 && r.dropped == 0 && r.installed == r.offered;
        log.push(format!(
            "{rate} entries/s for {secs} s: {} offered, {} installed, {} lost, {} messages dropped ({:.1} s) — {}",
            r.offered,
            r.installed,
            r.lost,
            r.dropped,
            r.elapsed.as_secs_f64(),
            if ok { "lossless" } else { "LOSS" }
        ));
        eprintln!("{}", log.last().unwrap());
        Ok(ok)
    };
    let mut good = 0u64;
    let mut bad = 0u64;
    let mut rate = 25_000u64;
    while rate <= 3_200_000 {
        if try_rate(rate, log)? {
            good = rate;
            rate *= 2;
        } else {
            bad = rate;
            break;
        }
    }
    if bad == 0 {
        return Ok(good);
    }
    for _ in 0..4 {
        let mid = (good + bad) / 2;
        if try_rate(mid, log)? {
            good = mid;
        } else {
            bad = mid;
        }
    }
    Ok(good)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    private_net()?;
    let rt = tokio::runtime::Runtime::new()?;
    let secs = if quick { 0.5 } else { 2.0 };

    // (a) the XDP director's connection table
    let plane = Arc::new(XdpPlane::new(
        Arc::new(Shared::new(Table::new())),
        XdpOptions {
            pin_dir: format!("/sys/fs/bpf/rvs-sync-bench-{}", std::process::id()).into(),
            conn_max: 1 << 23,
            detach_on_exit: true,
            worker: false,
            build: Build::Production,
            ..Default::default()
        },
    )?);
    let xt = Arc::new(Mutex::new(table()));
    plane.sync(&xt.lock().unwrap());
    let (p, t) = (plane.clone(), xt.clone());
    let (x_inst, x_count) = counting(move |es| {
        let mut t = t.lock().unwrap();
        p.install_synced(&mut t, 0, es)
    });
    let mut xlog = Vec::new();
    let wipe = {
        let p = plane.clone();
        let t = xt.clone();
        move || {
            let _ = p.inner().reset_for_tests();
            p.sync(&t.lock().unwrap());
        }
    };
    eprintln!("backup into the XDP connection table");
    let x_best = best_rate(&rt, &x_inst, &x_count, secs, &mut xlog, &wipe)?;

    // (b) the table model
    let mt = Arc::new(Mutex::new(table()));
    let t = mt.clone();
    let (m_inst, m_count) = counting(move |es| {
        let mut t = t.lock().unwrap();
        es.iter().map(|e| t.install_synced(0, e)).collect()
    });
    let mut mlog = Vec::new();
    let reset_model = {
        let t = mt.clone();
        move || *t.lock().unwrap() = table()
    };
    eprintln!("backup into the table model");
    let m_best = best_rate(&rt, &m_inst, &m_count, secs, &mut mlog, &reset_model)?;

    let mut md = String::new();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    writeln!(md, "## Connection sync throughput\n")?;
    writeln!(md, "Linux {}; `rvs-sync-bench{}`; master and backup (rvs-sync, sync_version 1, 1472-byte messages, one port) on a veth pair in one namespace, the entries distinct established DR connections; a run is lossless when every entry was installed and neither the master's queue nor the backup's socket dropped one.\n", kernel.trim(), if quick { " --quick" } else { "" })?;
    writeln!(
        md,
        "| backup installs into | best lossless rate (entries/s) |"
    )?;
    writeln!(md, "|---|---|")?;
    writeln!(md, "| the XDP director's BPF table (`RVS_CTL_INSTALL`, 32 entries per control run) | **{x_best}** |")?;
    writeln!(
        md,
        "| the table model (proxy and `none` planes) | **{m_best}** |"
    )?;
    writeln!(md, "\nRuns (XDP):\n")?;
    for l in &xlog {
        writeln!(md, "- {l}")?;
    }
    writeln!(md, "\nRuns (model):\n")?;
    for l in &mlog {
        writeln!(md, "- {l}")?;
    }
    print!("{md}");
    if let Some(p) = out {
        std::fs::write(&p, &md).with_context(|| p.clone())?;
        eprintln!("written to {p}");
    }
    drop(plane);
    Ok(())
}
