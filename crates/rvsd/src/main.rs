//! `rvsd`: the rvs daemon. See `rvsd --help`.

use anyhow::{bail, Context, Result};
use clap::{Parser, ValueEnum};
use rvs_core::Table;
use rvs_dataplane::{DataPlane, NoDataPlane, Shared};
use rvs_proxy::{Proxy, ProxyOptions, Transfer};
use rvsd::control;
use rvsd::Daemon;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::signal::unix::{signal, SignalKind};

mod keepalived;
mod lvs_sync;
mod vrrp;
mod xdp_args;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Plane {
    /// The table only: no forwarding (tests, dry runs).
    None,
    /// Userspace TCP/UDP proxy: works without root or BPF.
    Proxy,
    /// eBPF/XDP forwarding (NAT, DR, TUN).
    Xdp,
    /// XDP when it can be used, the proxy otherwise.
    Auto,
}

/// rvs daemon: a Linux Virtual Server director.
#[derive(Debug, Parser)]
#[command(name = "rvsd", version, about)]
struct Args {
    /// Control socket path.
    #[arg(long, env = "RVS_SOCKET", default_value = rvs_api::DEFAULT_SOCKET)]
    socket: PathBuf,

    /// Data plane that forwards traffic.
    #[arg(long, value_enum, default_value_t = Plane::Auto)]
    dataplane: Plane,

    /// Load an `ipvsadm -S` rules file at start.
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,

    /// keepalived.conf: its services, real servers and health checkers (keepalived `-f`);
    /// SIGHUP reloads it.
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    use_file: Option<PathBuf>,

    /// Check the keepalived.conf (`-f`, else /etc/keepalived/keepalived.conf) and exit:
    /// 0 valid, 4 unreadable, 5 invalid (keepalived `-t`).
    #[arg(short = 't', long = "config-test")]
    config_test: bool,

    /// Set a sysctl of the model, e.g. `expire_nodest_conn=1` (repeatable).
    #[arg(long = "sysctl", value_name = "NAME=VALUE")]
    sysctls: Vec<String>,

    /// Proxy plane: how bytes are moved (`copy` through userspace, or `splice` in the kernel).
    #[arg(long, value_enum, default_value_t = TransferArg::Splice)]
    proxy_transfer: TransferArg,

    /// Proxy plane: seconds allowed for a connect to a real server.
    #[arg(long, default_value_t = 5.0)]
    proxy_connect_timeout: f64,

    /// Proxy plane: worker threads, each with its own runtime and its own accepting socket
    /// per TCP service (SO_REUSEPORT); 0 = one per CPU.
    #[arg(long, alias = "proxy-accept-shards", default_value_t = 0)]
    proxy_workers: usize,

    /// Threads of the daemon's own runtime: control socket, timers, health checks, VRRP
    /// (0 = one per CPU). The proxy's workers are separate (`--proxy-workers`).
    #[arg(long, default_value_t = 0)]
    threads: usize,

    #[command(flatten)]
    xdp: xdp_args::XdpArgs,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum TransferArg {
    Copy,
    Splice,
}

fn apply_sysctl(table: &mut Table, kv: &str) -> Result<()> {
    let (name, value) = kv
        .split_once('=')
        .with_context(|| format!("--sysctl {kv}: expected NAME=VALUE"))?;
    if name.trim().starts_with("sync_") {
        return table
            .sync_params_mut()
            .set(name.trim(), value)
            .with_context(|| format!("--sysctl {kv}"));
    }
    let v: u32 = value
        .trim()
        .parse()
        .with_context(|| format!("--sysctl {kv}: value must be a number"))?;
    let s = &mut table.sysctl;
    match name.trim() {
        "expire_nodest_conn" => s.expire_nodest_conn = v != 0,
        "expire_quiescent_template" => s.expire_quiescent_template = v != 0,
        "conn_reuse_mode" => s.conn_reuse_mode = v as u8,
        "sloppy_tcp" => s.sloppy_tcp = v != 0,
        "secure_tcp" => s.secure_tcp = v == 3,
        "conn_tab_bits" if (8..=20).contains(&v) => s.conn_tab_bits = v as u8,
        other => bail!("--sysctl {kv}: unknown or out-of-range setting {other:?}"),
    }
    Ok(())
}

/// Free memory in 4 KiB pages (`/proc/meminfo` MemFree).
fn free_pages() -> Option<u64> {
    let m = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kb: u64 = m
        .lines()
        .find_map(|l| l.strip_prefix("MemFree:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kb / 4)
}

fn cpus() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

fn build_plane(args: &Args, shared: &Arc<Shared>) -> Result<Box<dyn DataPlane>> {
    let proxy = || {
        let opts = ProxyOptions {
            transfer: match args.proxy_transfer {
                TransferArg::Copy => Transfer::Copy,
                TransferArg::Splice => Transfer::Splice,
            },
            connect_timeout: Duration::from_secs_f64(args.proxy_connect_timeout.max(0.001)),
            workers: match args.proxy_workers {
                0 => cpus(),
                n => n,
            },
            ..ProxyOptions::default()
        };
        Box::new(Proxy::new(shared.clone(), opts)) as Box<dyn DataPlane>
    };
    match args.dataplane {
        Plane::None => Ok(Box::new(NoDataPlane)),
        Plane::Proxy => Ok(proxy()),
        Plane::Auto => match args.xdp.unavailable() {
            Some(why) => {
                tracing::info!("dataplane auto: XDP not usable ({why}); using the proxy");
                Ok(proxy())
            }
            None => match xdp_args::build(&args.xdp, shared) {
                Ok(p) => Ok(Box::new(p)),
                Err(e) => {
                    tracing::warn!("dataplane auto: XDP failed ({e}); using the proxy");
                    Ok(proxy())
                }
            },
        },
        Plane::Xdp => Ok(Box::new(xdp_args::build(&args.xdp, shared)?)),
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    if args.config_test {
        return std::process::ExitCode::from(keepalived::config_test(args.use_file.as_deref()));
    }
    if args.xdp.xdp_unpin {
        return match args.xdp.unpin() {
            Ok(()) => std::process::ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rvsd: removing {}: {e}", args.xdp.xdp_pin_dir.display());
                std::process::ExitCode::FAILURE
            }
        };
    }
    match start(args) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("rvsd: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn start(args: Args) -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .init();

    let mut table = Table::new();
    if let Some(free) = free_pages() {
        // the kernel's default: free pages / 32 (when its netns starts)
        table.sync_params_mut().qlen_max = (free / 32).max(1);
    }
    for kv in &args.sysctls {
        apply_sysctl(&mut table, kv)?;
    }

    let mut rt = tokio::runtime::Builder::new_multi_thread();
    if args.threads > 0 {
        rt.worker_threads(args.threads);
    }
    let rt = rt
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    rt.block_on(run(args, table))
}

async fn run(args: Args, table: Table) -> Result<()> {
    // Before the socket exists (what callers wait for): a signal during the start is
    // handled by the loop below instead of killing rvsd half set up.
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    let listener = control::bind(&args.socket)?;
    let shared = Arc::new(Shared::new(table));
    let plane = build_plane(&args, &shared)?;
    let daemon = Arc::new(Daemon::new(shared, plane));
    if let Some(file) = &args.restore {
        match rvsd::restore::restore_file(&daemon, file) {
            Ok(n) => tracing::info!(file = %file.display(), rules = n, "restored"),
            Err(e) => {
                let _ = std::fs::remove_file(&args.socket);
                return Err(e);
            }
        }
    }
    tracing::info!(
        socket = %args.socket.display(),
        dataplane = daemon.plane().name(),
        services = daemon.table().num_services(),
        "rvsd ready"
    );

    let server = tokio::spawn(control::serve(listener, daemon.clone()));
    let timers = {
        let d = daemon.clone();
        tokio::spawn(async move {
            let mut house =
                tokio::time::interval(Duration::from_millis(rvsd::daemon::HOUSEKEEPING_MS));
            let mut est =
                tokio::time::interval(Duration::from_millis(rvs_core::stats::ESTIMATOR_PERIOD_MS));
            let mut sync = tokio::time::interval(Duration::from_millis(rvsd::sync::DRAIN_MS));
            loop {
                tokio::select! {
                    _ = house.tick() => d.housekeeping(),
                    _ = est.tick() => d.estimate(),
                    _ = sync.tick() => d.sync_drain(),
                }
            }
        })
    };

    let mut ka = match &args.use_file {
        Some(f) => Some(keepalived::Keepalived::start(f, daemon.clone()).await?),
        None => None,
    };

    // Setup is done: keep only what the planes need from here on.
    rvsd::privileges::drop_after_start(rvsd::privileges::Uses::of(
        daemon.plane().name(),
        ka.is_some(),
    ));

    loop {
        tokio::select! {
            _ = term.recv() => break tracing::info!("SIGTERM: shutting down"),
            _ = int.recv() => break tracing::info!("SIGINT: shutting down"),
            _ = hup.recv() => match ka.as_mut() {
                // A reload gives way to a shutdown signal (nothing half-read is applied).
                Some(k) => tokio::select! {
                    _ = k.reload() => {}
                    _ = term.recv() => break tracing::info!("SIGTERM during a reload: shutting down"),
                    _ = int.recv() => break tracing::info!("SIGINT during a reload: shutting down"),
                },
                None => tracing::info!("SIGHUP: no keepalived.conf (-f) to reload"),
            },
        }
    }
    if let Some(k) = ka {
        k.stop().await;
    }
    server.abort();
    timers.abort();
    let _ = std::fs::remove_file(&args.socket);
    Ok(())
}
