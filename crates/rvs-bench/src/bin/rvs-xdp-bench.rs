//! `rvs-xdp-bench`: micro-benchmarks of the XDP director (not tests), results as Markdown.
//!
//! * Fast path: ns per packet of an established DR flow through BPF_PROG_TEST_RUN, the
//!   kernel's own timing, median of 5 runs of 1M repeats. The kernel runs all repeats on
//!   one buffer, so the measured packet must come out as it went in: DR only rewrites MACs
//!   to the same values every time. Counters prove which path ran (every repeat counted
//!   as forwarded and as an inbound packet of the flow's server). Baselines from the same
//!   run: an XDP program that only returns XDP_PASS, and the director on a packet for no
//!   VIP (parse and lookups, then PASS).
//! * Connection sync: the fast path without and with a sync master (plain and persistent
//!   services), the ring's entries handed over and lost.
//! * Connection table: 1M flows inserted through the program (DR, then NAT), every one
//!   still there afterwards (and the table full only at its capacity), memory as the
//!   kernel accounts it (fdinfo `memlock`).
//!
//! Runs in a network namespace of its own (unshared, nothing named, gone at exit); needs
//! root. `rvs-xdp-bench [--out FILE] [--quick] [--fast-only]`.

use anyhow::{bail, Context, Result};
use aya::programs::{TestRun, TestRunOptions, Xdp};
use rvs_core::{DestConfig, Forward, Protocol, ServiceConfig, ServiceKey, Table};
use rvs_dataplane::{DataPlane, Shared};
use rvs_xdp::abi;
use rvs_xdp::{stats, Build, XdpOptions, XdpPlane};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::os::fd::AsRawFd;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

const D0_MAC: [u8; 6] = [2, 0, 0, 0, 0, 0xfe];
const GW_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];

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

/// A private network namespace with the director's interface, a server and a route to
/// the clients (as in the fixture tests).
fn private_net() -> Result<u32> {
    // SAFETY: unshare on the main thread before any other thread exists.
    if unsafe { libc::unshare(libc::CLONE_NEWNET) } != 0 {
        bail!(
            "unshare(CLONE_NEWNET): {} (run as root)",
            std::io::Error::last_os_error()
        );
    }
    sh("ip link set lo up")?;
    sh("ip link add d0 type veth peer name p0")?;
    sh("ip link set d0 address 02:00:00:00:00:fe")?;
    sh("ip link set d0 up")?;
    sh("ip link set p0 up")?;
    sh("ip addr add 10.0.0.254/24 dev d0")?;
    sh("sysctl -qw net.ipv4.conf.d0.forwarding=1")?;
    sh("ip route add 10.0.0.0/8 via 10.0.0.1")?;
    sh("ip neigh replace 10.0.0.1 lladdr 02:00:00:00:00:01 dev d0 nud permanent")?;
    sh("ip neigh replace 10.0.0.11 lladdr 02:00:00:00:00:11 dev d0 nud permanent")?;
    sh("ip neigh replace 10.0.0.12 lladdr 02:00:00:00:00:12 dev d0 nud permanent")?;
    rvs_xdp::loader::ifindex("d0").context("d0")
}

fn csum(data: &[u8], seed: u32) -> u16 {
    let mut s = seed;
    for c in data.chunks(2) {
        s += u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32;
    }
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    !(s as u16)
}

/// An Ethernet + IPv4 + TCP/UDP frame with correct checksums.
fn frame(
    src: Ipv4Addr,
    sport: u16,
    dst: Ipv4Addr,
    dport: u16,
    proto: u8,
    tcp_flags: u8,
) -> Vec<u8> {
    let mut l4 = Vec::new();
    l4.extend_from_slice(&sport.to_be_bytes());
    l4.extend_from_slice(&dport.to_be_bytes());
    if proto == 6 {
        l4.extend_from_slice(&[
            0, 0, 0, 1, 0, 0, 0, 1, 0x50, tcp_flags, 0xff, 0xff, 0, 0, 0, 0,
        ]);
    } else {
        l4.extend_from_slice(&12u16.to_be_bytes());
        l4.extend_from_slice(&[0, 0, b'b', b'e', b'n', b'c']);
    }
    let mut ph = Vec::new();
    ph.extend_from_slice(&src.octets());
    ph.extend_from_slice(&dst.octets());
    ph.extend_from_slice(&[0, proto]);
    ph.extend_from_slice(&(l4.len() as u16).to_be_bytes());
    let seed: u32 = ph
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], c[1]]) as u32)
        .sum();
    let c = csum(&l4, seed);
    let off = if proto == 6 { 16 } else { 6 };
    l4[off..off + 2].copy_from_slice(&c.to_be_bytes());
    let mut ip = vec![0x45, 0, 0, 0, 0, 1, 0x40, 0, 64, proto, 0, 0];
    ip[2..4].copy_from_slice(&((20 + l4.len()) as u16).to_be_bytes());
    ip.extend_from_slice(&src.octets());
    ip.extend_from_slice(&dst.octets());
    let c = csum(&ip, 0);
    ip[10..12].copy_from_slice(&c.to_be_bytes());
    let mut f = Vec::new();
    f.extend_from_slice(&D0_MAC);
    f.extend_from_slice(&GW_MAC);
    f.extend_from_slice(&0x0800u16.to_be_bytes());
    f.extend_from_slice(&ip);
    f.extend_from_slice(&l4);
    f
}

struct Director {
    plane: XdpPlane,
    table: Table,
}

fn director(name: &str, conn_max: u32) -> Result<Director> {
    let pin = std::path::PathBuf::from(format!(
        "/sys/fs/bpf/rvs-bench-{}-{name}",
        std::process::id()
    ));
    let plane = XdpPlane::new(
        Arc::new(Shared::new(Table::new())),
        XdpOptions {
            pin_dir: pin,
            conn_max,
            detach_on_exit: true,
            worker: false,
            build: Build::Production,
            ..Default::default()
        },
    )?;
    Ok(Director {
        plane,
        table: Table::new(),
    })
}

impl Director {
    fn service(&mut self, proto: Protocol, port: u16, rip: &str, fwd: Forward) -> Result<()> {
        let key = ServiceKey::Addr {
            proto,
            addr: "10.0.0.100".parse()?,
            port,
        };
        self.table
            .add_service(ServiceConfig::new(key).with_scheduler("rr"))?;
        let d = DestConfig::new(rip.parse()?, port).with_forward(fwd);
        self.table.add_dest(&key, d)?;
        self.plane.sync(&self.table);
        Ok(())
    }

    fn reason(&self, code: i32) -> Result<u64> {
        Ok(stats::reason_packets(self.plane.director(), code)?)
    }
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).expect("numbers"));
    v[v.len() / 2]
}

/// ns per run of a program over `repeat` runs, `runs` times.
fn time_runs(prog: &Xdp, f: &[u8], ifindex: u32, repeat: u32, runs: usize) -> Result<Vec<f64>> {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(f.len() as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    let mut out = Vec::new();
    for _ in 0..runs {
        let r = prog.test_run(TestRunOptions {
            data_in: Some(f),
            ctx_in: Some(&ctx),
            repeat,
            ..Default::default()
        })?;
        out.push(r.duration.as_nanos() as f64);
    }
    Ok(out)
}

struct FastPath {
    dr: Vec<f64>,
    miss: Vec<f64>,
    pass: Vec<f64>,
    repeat: u32,
    forwarded: u64,
    inpkts: u64,
}

fn fast_path(ifindex: u32, repeat: u32, runs: usize) -> Result<FastPath> {
    let mut d = director("fast", 65536)?;
    d.service(Protocol::Tcp, 80, "10.0.0.11", Forward::Route)?;
    let (c, vip) = (Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 0, 0, 100));
    let dir = d.plane.director();
    let (v, _) = dir.run_xdp(&frame(c, 40000, vip, 80, 6, 0x02), ifindex)?;
    if v != 3 {
        bail!("the SYN was not forwarded (verdict {v})");
    }
    let ack = frame(c, 40000, vip, 80, 6, 0x10);
    let slot = {
        let sid = d
            .table
            .service_id(&ServiceKey::Addr {
                proto: Protocol::Tcp,
                addr: vip.into(),
                port: 80,
            })
            .context("svc")?;
        let id = d
            .table
            .find_dest(sid, "10.0.0.11".parse()?, 80)
            .context("dest")?;
        d.plane.inner().state().dest_slot(id).context("slot")?
    };
    let fwd0 = d.reason(abi::RVS_R_FORWARDED)?;
    let in0 = stats::dest_stats(dir, slot)?.inpkts;
    let prog = director_prog(&d)?;
    let dr = time_runs(prog, &ack, ifindex, repeat, runs)?;
    let forwarded = d.reason(abi::RVS_R_FORWARDED)? - fwd0;
    let inpkts = stats::dest_stats(dir, slot)?.inpkts - in0;
    let other = frame(c, 40000, Ipv4Addr::new(10, 0, 0, 200), 80, 6, 0x10);
    let miss = time_runs(prog, &other, ifindex, repeat, runs)?;
    let mut ebpf = aya::Ebpf::load(rvs_xdp::object::pass())?;
    let p: &mut Xdp = ebpf
        .program_mut("rvs_pass")
        .context("rvs_pass")?
        .try_into()?;
    p.load()?;
    let pass = time_runs(p, &ack, ifindex, repeat, runs)?;
    Ok(FastPath {
        dr,
        miss,
        pass,
        repeat,
        forwarded,
        inpkts,
    })
}

/// The fast path with connection sync off and on, for a plain and a persistent service.
struct SyncCost {
    plain_off: Vec<f64>,
    plain_on: Vec<f64>,
    persistent_off: Vec<f64>,
    persistent_on: Vec<f64>,
    /// Entries the packet path put in the ring, entries the reader handed over, lost.
    events: u64,
    handed: u64,
    lost: u64,
}

fn sync_cost(ifindex: u32, repeat: u32, runs: usize) -> Result<SyncCost> {
    use rvs_core::{Netmask, SyncScope};
    use std::sync::atomic::{AtomicU64, Ordering};
    let mut d = director("sync", 65536)?;
    d.service(Protocol::Tcp, 80, "10.0.0.11", Forward::Route)?;
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "10.0.0.100".parse()?,
        port: 81,
    };
    let mut cfg = ServiceConfig::new(key).with_scheduler("rr");
    cfg.persistence = Some(300);
    cfg.netmask = Netmask(24);
    d.table.add_service(cfg)?;
    d.table.add_dest(
        &key,
        DestConfig::new("10.0.0.11".parse()?, 81).with_forward(Forward::Route),
    )?;
    d.plane.sync(&d.table);
    let (c, vip) = (Ipv4Addr::new(10, 9, 0, 1), Ipv4Addr::new(10, 0, 0, 100));
    let dir = d.plane.director();
    for port in [80, 81] {
        let (v, _) = dir.run_xdp(&frame(c, 40000, vip, port, 6, 0x02), ifindex)?;
        if v != 3 {
            bail!("the SYN to port {port} was not forwarded (verdict {v})");
        }
    }
    let plain = frame(c, 40000, vip, 80, 6, 0x10);
    let persistent = frame(c, 40000, vip, 81, 6, 0x10);
    let prog = director_prog(&d)?;
    let plain_off = time_runs(prog, &plain, ifindex, repeat, runs)?;
    let persistent_off = time_runs(prog, &persistent, ifindex, repeat, runs)?;
    // a master: the plane offers, a reader drains the ring into a counting sink
    let handed = Arc::new(AtomicU64::new(0));
    let h = handed.clone();
    d.table.set_sync_master(Some(SyncScope::All));
    d.plane.sync(&d.table);
    d.plane
        .set_sync_sink(Some(Arc::new(move |es: &[rvs_core::SyncEntry]| {
            h.fetch_add(es.len() as u64, Ordering::Relaxed);
        })));
    let prog = director_prog(&d)?;
    let plain_on = time_runs(prog, &plain, ifindex, repeat, runs)?;
    let persistent_on = time_runs(prog, &persistent, ifindex, repeat, runs)?;
    let (events, lost) = rvs_xdp::connsync::ring_counts(d.plane.director())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    while handed.load(Ordering::Relaxed) < events && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    d.plane.set_sync_sink(None);
    Ok(SyncCost {
        plain_off,
        plain_on,
        persistent_off,
        persistent_on,
        events,
        handed: handed.load(Ordering::Relaxed),
        lost,
    })
}

fn director_prog(d: &Director) -> Result<&Xdp> {
    Ok(d.plane.director().xdp_program()?)
}

/// Memory the kernel accounts to a map (fdinfo `memlock`).
fn memlock(fd: std::os::fd::BorrowedFd<'_>) -> Result<u64> {
    let info = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()))?;
    info.lines()
        .find_map(|l| l.strip_prefix("memlock:").map(|v| v.trim().parse::<u64>()))
        .context("no memlock in fdinfo")?
        .context("memlock value")
}

struct Capacity {
    flows: u32,
    insert: Duration,
    present: usize,
    counted: u32,
    conns_bytes: u64,
    out_bytes: u64,
    full_at_capacity: bool,
}

/// `flows` distinct UDP flows through the program; then the table is checked and measured.
fn capacity(
    ifindex: u32,
    flows: u32,
    conn_max: u32,
    fwd: Forward,
    probe_full: bool,
) -> Result<Capacity> {
    let name = if fwd == Forward::Masq {
        "cap-nat"
    } else {
        "cap-dr"
    };
    let mut d = director(name, conn_max)?;
    d.service(
        Protocol::Udp,
        53,
        if fwd == Forward::Masq {
            "10.0.0.12"
        } else {
            "10.0.0.11"
        },
        fwd,
    )?;
    let dir = d.plane.director();
    let vip = Ipv4Addr::new(10, 0, 0, 100);
    let t = Instant::now();
    let mut refused = 0u64;
    for i in 0..flows {
        // 10.64.0.0/10 gives 4M clients; one source port each
        let c = Ipv4Addr::from(0x0a40_0000u32 + i);
        let (v, _) = dir.run_xdp(
            &frame(c, 1000 + (i % 50000) as u16, vip, 53, 17, 0),
            ifindex,
        )?;
        if v != 3 {
            refused += 1;
        }
    }
    let insert = t.elapsed();
    if refused > 0 {
        bail!("{refused} of {flows} flows were not forwarded below capacity");
    }
    let present = rvs_xdp::sweep::entries(dir)?.len();
    let slot = {
        let id = d
            .table
            .services()
            .next()
            .and_then(|(sid, _)| d.table.dests_of(sid).iter().next().map(|(id, _)| id))
            .context("dest")?;
        d.plane.inner().state().dest_slot(id).context("slot")?
    };
    let counted = rvs_xdp::stats::dest_counts(dir, slot).inactive;
    let mut full_at_capacity = false;
    if probe_full {
        let c = Ipv4Addr::from(0x0a40_0000u32 + flows);
        let full0 = d.reason(abi::RVS_R_CONN_TABLE_FULL)?;
        dir.run_xdp(&frame(c, 999, vip, 53, 17, 0), ifindex)?;
        full_at_capacity = d.reason(abi::RVS_R_CONN_TABLE_FULL)? == full0 + 1;
    }
    Ok(Capacity {
        flows,
        insert,
        present,
        counted,
        conns_bytes: memlock(dir.maps.conns4.fd())?,
        out_bytes: memlock(dir.maps.out4.fd())?,
        full_at_capacity,
    })
}

fn mb(b: u64) -> f64 {
    b as f64 / (1024.0 * 1024.0)
}

/// Megabytes of 10^6 bytes, as the target is stated.
fn mbytes(b: u64) -> f64 {
    b as f64 / 1e6
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let out = args
        .iter()
        .position(|a| a == "--out")
        .and_then(|i| args.get(i + 1))
        .cloned();
    let ifindex = private_net()?;
    let (repeat, runs) = if quick { (100_000, 3) } else { (1_000_000, 5) };
    eprintln!("fast path: {runs} runs of {repeat} repeats");
    let mut fp = fast_path(ifindex, repeat, runs)?;
    if args.iter().any(|a| a == "--fast-only") {
        // for profiling (perf record -a): the fast path alone, medians on stdout
        println!(
            "established DR {:.1} ns, no VIP {:.1} ns, XDP_PASS {:.1} ns",
            median(&mut fp.dr),
            median(&mut fp.miss),
            median(&mut fp.pass)
        );
        return Ok(());
    }
    eprintln!("connection sync on the fast path: {runs} runs of {repeat} repeats");
    let mut sc = sync_cost(ifindex, repeat, runs)?;
    let flows = if quick { 100_000 } else { 1_000_000 };
    eprintln!("connection table: {flows} DR flows");
    let dr = capacity(
        ifindex,
        flows,
        abi::RVS_CONN_MAX_DEFAULT,
        Forward::Route,
        false,
    )?;
    eprintln!("connection table: {flows} NAT flows");
    let nat = capacity(
        ifindex,
        flows,
        abi::RVS_CONN_MAX_DEFAULT,
        Forward::Masq,
        false,
    )?;
    let cap = if quick { 4096 } else { 65536 };
    eprintln!("connection table at capacity: {cap} flows");
    let full = capacity(ifindex, cap, cap, Forward::Route, true)?;

    let (m_dr, m_miss, m_pass) = (
        median(&mut fp.dr),
        median(&mut fp.miss),
        median(&mut fp.pass),
    );
    let mut md = String::new();
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|c| {
            c.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    writeln!(md, "## Fast path (BPF_PROG_TEST_RUN, kernel-timed)\n")?;
    writeln!(
        md,
        "Linux {} on {cpu}; `rvs-xdp-bench{}`; median of {runs} runs of {} repeats.\n",
        kernel.trim(),
        if quick { " --quick" } else { "" },
        fp.repeat
    )?;
    writeln!(
        md,
        "| program and packet | ns/packet (median) | runs | vs XDP_PASS |"
    )?;
    writeln!(md, "|---|---|---|---|")?;
    let row = |md: &mut String, what: &str, m: f64, v: &[f64]| -> std::fmt::Result {
        let all: Vec<String> = v.iter().map(|x| format!("{x:.0}")).collect();
        writeln!(
            md,
            "| {what} | **{m:.1}** | {} | {:.2}× |",
            all.join(", "),
            m / m_pass
        )
    };
    row(&mut md, "rvs_xdp, established DR flow (TCP ACK): parse, entry lookup, lock-free state step, counters, cached next hop, MAC rewrite, XDP_TX", m_dr, &fp.dr)?;
    row(
        &mut md,
        "rvs_xdp, packet for no VIP (parse, 3 lookups, PASS)",
        m_miss,
        &fp.miss,
    )?;
    row(
        &mut md,
        "baseline: a program that returns XDP_PASS",
        m_pass,
        &fp.pass,
    )?;
    writeln!(md, "\nProof of path: over the DR runs the `forwarded` counter rose by {} and the server's inbound packets by {} (= runs × repeats = {}).", fp.forwarded, fp.inpkts, runs as u64 * fp.repeat as u64)?;
    writeln!(md, "Target ≤ 80 ns: **{}**; Katran's tester reports 101–119 ns for its established-flow path.\n", if m_dr <= 80.0 { "met" } else { "missed" })?;
    writeln!(md, "## Connection sync on the fast path\n")?;
    writeln!(md, "The same established DR flow (TCP ACK), without and with a sync master (the packet path counts each entry's packets and offers it on the kernel's rule: the 3rd packet, then every 50th, and state changes at once; a persistent connection's template goes with it); a reader thread drains the ring meanwhile. Median of {runs} runs of {} repeats, same run as above.\n", fp.repeat)?;
    writeln!(md, "| service | sync off (ns) | sync master (ns) | ratio |")?;
    writeln!(md, "|---|---|---|---|")?;
    for (what, off, on) in [
        ("rr, not persistent", &mut sc.plain_off, &mut sc.plain_on),
        (
            "rr, persistent (its template offered with it)",
            &mut sc.persistent_off,
            &mut sc.persistent_on,
        ),
    ] {
        let (a, b) = (median(off), median(on));
        writeln!(md, "| {what} | {a:.1} | {b:.1} | {:.2}× |", b / a)?;
    }
    writeln!(md, "\nEntries put in the ring: {}; handed to the master by the reader: {}; lost (ring full): {}.\n", sc.events, sc.handed, sc.lost)?;
    writeln!(md, "## Connection table\n")?;
    writeln!(md, "| flows inserted through the program | insert time | entries present | counted on the server | table (rvs_conns4) | NAT reply index (rvs_out4) | total |")?;
    writeln!(md, "|---|---|---|---|---|---|---|")?;
    for (what, c) in [("DR, UDP", &dr), ("NAT, UDP", &nat)] {
        writeln!(
            md,
            "| {} {what} | {:.1} s | {} | {} | {:.1} MiB | {:.1} MiB | **{:.1} MiB** |",
            c.flows,
            c.insert.as_secs_f64(),
            c.present,
            c.counted,
            mb(c.conns_bytes),
            mb(c.out_bytes),
            mb(c.conns_bytes + c.out_bytes)
        )?;
    }
    let judge = |bytes: u64| {
        if mbytes(bytes) <= 128.0 {
            "met"
        } else {
            "missed"
        }
    };
    writeln!(md, "\nThe IPv4 table is preallocated for its capacity ({} entries by default): its memory does not grow with the flows; the NAT reply index (and the IPv6 tables) allocate per entry, on top of a bucket array sized for the capacity. Target ≤ 128 MB (10^6 bytes) for 1M flows — the connection table: {:.1} MB, **{}**; with the NAT reply index, DR {:.1} MB ({}), NAT {:.1} MB ({}).", abi::RVS_CONN_MAX_DEFAULT, mbytes(dr.conns_bytes), judge(dr.conns_bytes), mbytes(dr.conns_bytes + dr.out_bytes), judge(dr.conns_bytes + dr.out_bytes), mbytes(nat.conns_bytes + nat.out_bytes), judge(nat.conns_bytes + nat.out_bytes))?;
    writeln!(md, "\nNo flow lost below capacity: a table of {} entries took {} flows, all present ({} entries, {} counted), and refused the next one as `conn_table_full`: **{}**.", cap, full.flows, full.present, full.counted, if full.present == cap as usize && full.full_at_capacity { "yes" } else { "NO" })?;
    print!("{md}");
    if let Some(p) = out {
        std::fs::write(&p, &md).with_context(|| p.clone())?;
        eprintln!("written to {p}");
    }
    Ok(())
}
