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

mod dumps;
mod kaargs;
mod keepalived;
mod lvs_sync;
mod process;
mod signals;
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
#[command(name = "rvsd", version, about, disable_version_flag = true)]
struct Args {
    /// Print the version and exit (keepalived -v).
    #[arg(short = 'v', long = "version", action = clap::ArgAction::Version)]
    version: Option<bool>,

    /// Control socket path.
    #[arg(long, env = "RVS_SOCKET", default_value = rvs_api::DEFAULT_SOCKET)]
    socket: PathBuf,

    /// Data plane that forwards traffic.
    #[arg(long, value_enum, default_value_t = Plane::Auto)]
    dataplane: Plane,

    /// Load an `ipvsadm -S` rules file at start.
    #[arg(long, value_name = "FILE")]
    restore: Option<PathBuf>,

    /// keepalived.conf: its services, real servers, health checkers and VRRP instances
    /// (keepalived `-f`); SIGHUP reloads it. Without -f, rvsd on the default control socket
    /// reads /etc/keepalived/keepalived.conf when it exists, as keepalived does.
    #[arg(short = 'f', long = "use-file", value_name = "FILE")]
    use_file: Option<PathBuf>,

    /// Serve Prometheus metrics (/metrics) and the live dashboard (/) on ADDR; without a
    /// value on 127.0.0.1:9652; `off` for none. Default: on 127.0.0.1:9652 for rvsd on the
    /// default control socket (a busy port is then a warning), off otherwise.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:9652")]
    metrics: Option<String>,

    /// The state file that keeps the table across restarts (`none`: no state file).
    /// Default: beside the control socket (/run/rvs/rvsd.state).
    #[arg(long, value_name = "FILE")]
    state_file: Option<PathBuf>,

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

    /// Fleet behind ECMP: create the TUN interface NAME and keep on it a host address for
    /// every virtual address this director can serve, for the host's BGP speaker to
    /// announce (docs/fleet.md). The interface goes when rvsd ends, however it ends.
    #[arg(long, value_name = "NAME")]
    announce_interface: Option<String>,

    /// Threads of the daemon's own runtime: control socket, timers, health checks, VRRP
    /// (0 = one per CPU). The proxy's workers are separate (`--proxy-workers`).
    #[arg(long, default_value_t = 0)]
    threads: usize,

    #[command(flatten)]
    xdp: xdp_args::XdpArgs,

    #[command(flatten)]
    ka: kaargs::KeepalivedArgs,
}

impl Args {
    /// rvsd on the default control socket is the host's director: it gets the host's
    /// defaults (keepalived.conf, PID file). Another socket makes a private instance that
    /// uses only what its options say (tests, labs, a second director).
    fn system_instance(&self) -> bool {
        self.socket == std::path::Path::new(rvs_api::DEFAULT_SOCKET)
    }

    /// `-f`, else keepalived's default file for the host's director when it exists.
    fn config_file(&self) -> Option<PathBuf> {
        if let Some(f) = &self.use_file {
            return Some(f.clone());
        }
        let default = std::path::Path::new(keepalived::DEFAULT_CONFIG);
        (self.system_instance() && default.exists()).then(|| default.to_path_buf())
    }

    fn state_path(&self) -> Option<PathBuf> {
        match &self.state_file {
            Some(p) if p.as_os_str() == "none" => None,
            Some(p) => Some(p.clone()),
            None => Some(rvsd::state_file::default_path(&self.socket)),
        }
    }

    /// Where to serve metrics, and whether failing to is fatal (asked for) or a warning
    /// (the host director's default).
    fn metrics_addr(&self) -> Result<Option<(std::net::SocketAddr, bool)>> {
        match self.metrics.as_deref() {
            Some("off") | Some("none") => Ok(None),
            Some(a) => {
                let addr = a.parse().with_context(|| {
                    format!("--metrics {a}: expected ADDRESS:PORT, e.g. 127.0.0.1:9652")
                })?;
                Ok(Some((addr, true)))
            }
            None if self.system_instance() => Ok(Some((rvsd::metrics::default_addr(), false))),
            None => Ok(None),
        }
    }

    /// `-p`, else /run/rvsd.pid for the host's director.
    fn pid_file(&self) -> Option<PathBuf> {
        self.ka.pid.clone().or_else(|| {
            self.system_instance()
                .then(|| PathBuf::from(DEFAULT_PID_FILE))
        })
    }
}

/// The PID file of the host's director (keepalived's is /run/keepalived.pid).
const DEFAULT_PID_FILE: &str = "/run/rvsd.pid";

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
        Plane::Auto => match rvsd::features::xdp_unavailable(&rvsd::features::kernel_release())
            .or_else(|| args.xdp.unavailable())
        {
            Some(why) => {
                // an interface that does not exist is a typo, not a reason to forward
                // with another plane
                if let Some(i) = args
                    .xdp
                    .interfaces
                    .iter()
                    .find(|i| rvs_xdp::loader::ifindex(i).is_none())
                {
                    bail!("--interface {i}: no such interface");
                }
                if args.xdp.interfaces.is_empty() {
                    tracing::info!("dataplane auto: XDP not usable ({why}); using the proxy");
                } else {
                    tracing::warn!(
                        "dataplane auto: XDP not usable ({why}); using the proxy plane instead"
                    );
                }
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
        Plane::Xdp => {
            if let Some(why) = rvsd::features::xdp_unavailable(&rvsd::features::kernel_release()) {
                bail!("--dataplane xdp: {why}; the proxy plane (--dataplane proxy) runs on any kernel");
            }
            Ok(Box::new(xdp_args::build(&args.xdp, shared)?))
        }
    }
}

fn main() -> std::process::ExitCode {
    use std::process::ExitCode;
    let argv: Vec<String> = std::env::args().collect();
    if let Some(what) = rvs_docs::requested(&argv) {
        use clap::CommandFactory;
        return match rvs_docs::generate(Args::command(), "8", what) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rvsd: {e}");
                ExitCode::from(2)
            }
        };
    }
    let args = Args::parse();
    if let Some(name) = &args.ka.signum {
        return match signals::signum(name) {
            Some(n) => {
                println!("{n}");
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("Unknown sigfunc {name}");
                ExitCode::FAILURE
            }
        };
    }
    if let Some(why) = args.ka.refused() {
        eprintln!("rvsd: {why}");
        return ExitCode::from(2);
    }
    if let Some(id) = &args.ka.config_id {
        let _ = keepalived::CONFIG_ID.set(id.clone());
    }
    if args.config_test {
        return ExitCode::from(keepalived::config_test(args.use_file.as_deref()));
    }
    if args.xdp.xdp_unpin {
        return match args.xdp.unpin() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("rvsd: removing {}: {e}", args.xdp.xdp_pin_dir.display());
                ExitCode::FAILURE
            }
        };
    }
    match args.ka.umask() {
        // SAFETY: umask only sets the process's file-creation mask.
        Ok(Some(m)) => unsafe {
            libc::umask(m);
        },
        Ok(None) => {}
        Err(e) => {
            eprintln!("rvsd: {e}");
            return ExitCode::from(2);
        }
    }
    // Both need a single-threaded process: before logging and the runtime start.
    if let Some(ns) = &args.ka.namespace {
        if let Err(e) = process::enter_netns(ns) {
            eprintln!("rvsd: {e}");
            return ExitCode::FAILURE;
        }
    }
    let mut ready = if args.ka.fork {
        match process::daemonize() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("rvsd: cannot fork: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        process::Readiness::none()
    };
    rvsd::logging::init(&rvsd::logging::LogOptions {
        console: args.ka.log_console,
        detail: args.ka.log_detail,
        facility: args.ka.log_facility.map(|f| f.0),
        no_syslog: args.ka.no_syslog,
        forked: args.ka.fork,
    });
    match start(args, &mut ready) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // the log reaches the operator (stderr, journal or syslog); a waiting parent
            // (--fork) prints it too
            ready.failed(&format!("{e:#}"));
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

fn start(args: Args, ready: &mut process::Readiness) -> Result<()> {
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
    rt.block_on(run(args, table, ready))
}

/// Replays the state file of an earlier rvsd; when it had one, the services its
/// keepalived.conf owned.
fn restore_state(daemon: &Daemon, path: &std::path::Path) -> Option<Vec<rvs_core::ServiceKey>> {
    match rvsd::state_file::load(path) {
        Ok(Some(mut state)) => {
            let owned = std::mem::take(&mut state.keepalived);
            let r = rvsd::state_file::replay(daemon, state);
            tracing::info!(
                file = %path.display(),
                services = r.services,
                servers = r.servers,
                refused = r.refused,
                "table restored from the state file (the table before the restart)"
            );
            Some(owned)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::error!("{e}: starting with an empty table");
            None
        }
    }
}

/// The services of keepalived.conf's virtual servers.
fn config_services(ka: Option<&keepalived::Keepalived>) -> Vec<rvs_core::ServiceKey> {
    ka.filter(|k| k.runs_checkers())
        .map(|k| {
            rvs_keepalived::to_table_ops(k.config())
                .services()
                .map(|(s, _)| s.key)
                .collect()
        })
        .unwrap_or_default()
}

/// What a dump signal needs, copied from the running state.
fn snapshot(daemon: &Daemon, ka: Option<&keepalived::Keepalived>) -> dumps::Snapshot {
    let services = match daemon.handle(rvs_api::Request::ListServices { key: None }) {
        rvs_api::Reply::Services(s) => s,
        _ => Vec::new(),
    };
    let checkers = match daemon.handle(rvs_api::Request::Status) {
        rvs_api::Reply::Status(s) => s.checkers,
        _ => Vec::new(),
    };
    dumps::Snapshot {
        vrrp: ka.map(|k| k.vrrp_status()).unwrap_or_default(),
        config: ka.map(|k| k.config().clone()),
        services,
        checkers,
    }
}

fn dump(dir: &std::path::Path, files: &[(&str, String)]) {
    for (name, text) in files {
        match dumps::write(dir, name, text) {
            Ok(p) => tracing::info!("state written to {}", p.display()),
            Err(e) => tracing::warn!("cannot write {}: {e}", dir.join(name).display()),
        }
    }
}

async fn run(args: Args, table: Table, ready: &mut process::Readiness) -> Result<()> {
    // Before the socket exists (what callers wait for): a signal during the start is
    // handled by the loop below instead of killing rvsd half set up.
    let mut sigs = signals::Signals::install().context("installing signal handlers")?;
    let listener = control::bind(&args.socket)?;
    rvsd::notify::spawn_watchdog();
    let release = rvsd::features::kernel_release();
    if let Some(why) = rvsd::features::xdp_unavailable(&release) {
        tracing::info!("kernel {release}: {why}");
    }
    let shared = Arc::new(Shared::new(table));
    let plane = match build_plane(&args, &shared) {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&args.socket);
            return Err(e);
        }
    };
    if plane.name() == "proxy" {
        tracing::info!(
            "proxy data plane: its connections live in this process and end when rvsd stops; \
             the rules survive a restart (state file), the connections do not (the XDP plane's do)"
        );
    }
    let daemon = Arc::new(Daemon::new(shared, plane));
    let state_path = args.state_path();
    let previously_owned = state_path
        .as_deref()
        .and_then(|p| restore_state(&daemon, p));
    let restored = previously_owned.is_some();
    if let Some(file) = &args.restore {
        if restored {
            tracing::warn!(
                file = %file.display(),
                "--restore skipped: the table of the running director was restored from its state file; --restore loads rules when there is none (at boot)"
            );
        } else {
            match rvsd::restore::restore_file(&daemon, file) {
                Ok(n) => tracing::info!(file = %file.display(), rules = n, "restored"),
                Err(e) => {
                    let _ = std::fs::remove_file(&args.socket);
                    return Err(e);
                }
            }
        }
    }
    let writer = state_path.map(|p| {
        let w = rvsd::state_file::Writer::start(p, &daemon);
        let hook = w.clone();
        daemon.set_change_hook(Box::new(move || hook.changed()));
        w
    });

    let metrics = match args.metrics_addr() {
        Ok(Some((addr, required))) => match rvsd::metrics::start(addr, daemon.clone()).await {
            Ok((bound, task)) => {
                tracing::info!("metrics on http://{bound}/metrics, dashboard on http://{bound}/");
                Some(task)
            }
            Err(e) if required => {
                let _ = std::fs::remove_file(&args.socket);
                bail!("--metrics {addr}: {e}");
            }
            Err(e) => {
                tracing::warn!("metrics and dashboard off: cannot listen on {addr}: {e} (--metrics ADDR picks another)");
                None
            }
        },
        Ok(None) => None,
        Err(e) => {
            let _ = std::fs::remove_file(&args.socket);
            return Err(e);
        }
    };
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

    let subsystems = keepalived::Subsystems {
        vrrp: !args.ka.check_only,
        checkers: !args.ka.vrrp_only,
    };
    let config = args.config_file();
    let mut ka = match &config {
        Some(f) => match keepalived::Keepalived::start(f, daemon.clone(), subsystems).await {
            Ok(k) => Some(k),
            Err(e) => {
                server.abort();
                let _ = std::fs::remove_file(&args.socket);
                return Err(e);
            }
        },
        None => None,
    };
    // keepalived removes its virtual servers when it stops; rvsd kept them over the
    // restart: those the configuration no longer has go now.
    let owned = config_services(ka.as_ref());
    for key in previously_owned.unwrap_or_default() {
        if !owned.contains(&key) {
            let del = rvs_core::Change::DelService(key);
            if let [Ok(())] = daemon.apply(std::slice::from_ref(&del))[..] {
                tracing::info!(
                    "{}: removed, keepalived.conf no longer has it",
                    rvsd::audit::change(&del)
                );
            }
        }
    }
    if let Some(w) = &writer {
        w.set_keepalived(owned);
    }
    if args.ka.dump_conf {
        if let Some(k) = &ka {
            for line in rvs_keepalived::dump::dump(k.config()).lines() {
                tracing::info!("config: {line}");
            }
        }
    }
    let mut pids = Vec::new();
    let wanted = [
        (args.pid_file(), true),
        (
            args.ka.vrrp_pid.clone(),
            ka.as_ref().is_some_and(|k| k.runs_vrrp()),
        ),
        (
            args.ka.checkers_pid.clone(),
            ka.as_ref().is_some_and(|k| k.runs_checkers()),
        ),
    ];
    for (path, runs) in wanted {
        if let (Some(p), true) = (path, runs) {
            match rvsd::pidfile::PidFile::create(&p) {
                Ok(f) => pids.push(f),
                Err(e) => {
                    if let Some(k) = ka.take() {
                        k.stop().await;
                    }
                    server.abort();
                    let _ = std::fs::remove_file(&args.socket);
                    return Err(e.into());
                }
            }
        }
    }

    let status_line = |d: &Daemon| {
        format!(
            "{} data plane, {} virtual services",
            d.plane().name(),
            d.table().num_services()
        )
    };
    tracing::info!(
        socket = %args.socket.display(),
        dataplane = daemon.plane().name(),
        services = daemon.table().num_services(),
        config = %config.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "none".into()),
        "rvsd ready"
    );
    // Announced once the table and the data plane are ready.
    let announcer = match &args.announce_interface {
        Some(name) => match rvsd::announce::Announcer::create(name) {
            Ok(a) => {
                if let Some(q) = ka.as_ref().and_then(|k| k.quorum_source()) {
                    a.set_quorum_source(q);
                }
                let f = a.clone();
                daemon.add_fact_source(Box::new(move || f.facts()));
                let d = a.clone();
                daemon.set_drain_hook(Box::new(move |drain| d.set_drained(drain)));
                let task = tokio::spawn(a.clone().run(daemon.clone()));
                Some((a, task))
            }
            Err(e) => {
                if let Some(k) = ka.take() {
                    k.stop().await;
                }
                server.abort();
                let _ = std::fs::remove_file(&args.socket);
                return Err(e);
            }
        },
        None => None,
    };
    // Setup is done: keep only what the planes need from here on.
    let mut uses = rvsd::privileges::Uses::of(daemon.plane().name(), ka.is_some());
    uses.announce = announcer.is_some();
    rvsd::privileges::drop_after_start(uses);

    rvsd::notify::ready(&status_line(&daemon));
    ready.ready();

    loop {
        match sigs.next().await {
            signals::Event::Stop(sig) => break tracing::info!("{sig}: shutting down"),
            signals::Event::Reload => {
                rvsd::notify::reloading();
                match ka.as_mut() {
                    // A reload gives way to a shutdown signal (nothing half-read is applied).
                    Some(k) => tokio::select! {
                        _ = k.reload() => {}
                        sig = sigs.stop() => break tracing::info!("{sig} during a reload: shutting down"),
                    },
                    None => tracing::info!("SIGHUP: no keepalived.conf (-f) to reload"),
                }
                if let Some(w) = &writer {
                    w.set_keepalived(config_services(ka.as_ref()));
                }
                rvsd::notify::ready(&status_line(&daemon));
            }
            signals::Event::DumpData => {
                let s = snapshot(&daemon, ka.as_ref());
                dump(
                    &args.ka.dump_dir,
                    &[
                        ("keepalived.data", dumps::vrrp_data(&s)),
                        ("keepalived_check.data", dumps::check_data(&s)),
                    ],
                );
            }
            signals::Event::DumpStats => {
                let s = snapshot(&daemon, ka.as_ref());
                dump(
                    &args.ka.dump_dir,
                    &[("keepalived.stats", dumps::vrrp_stats(&s))],
                );
            }
            signals::Event::StatsClear => {
                let s = snapshot(&daemon, ka.as_ref());
                dump(
                    &args.ka.dump_dir,
                    &[("keepalived.stats", dumps::vrrp_stats(&s))],
                );
                tracing::info!(
                    "STATS_CLEAR: statistics written; rvs does not clear its VRRP counters"
                );
            }
            signals::Event::DumpJson => {
                let s = snapshot(&daemon, ka.as_ref());
                let text = serde_json::to_string(&dumps::vrrp_json(&s)).unwrap_or_default();
                dump(&args.ka.dump_dir, &[("keepalived.json", text)]);
            }
        }
    }
    rvsd::notify::stopping();
    // Withdraw first: the router moves new packets to the other directors while this
    // one still forwards what reaches it.
    if let Some((a, task)) = announcer {
        task.abort();
        a.stop();
    }
    if let Some(k) = ka {
        k.stop().await;
    }
    server.abort();
    timers.abort();
    if let Some(m) = metrics {
        m.abort();
    }
    if let Some(w) = writer {
        w.changed();
        if !w.flush(Duration::from_secs(5)) {
            tracing::warn!(file = %w.path().display(), "the state file may miss the last changes");
        }
        w.stop();
    }
    let _ = std::fs::remove_file(&args.socket);
    drop(pids);
    Ok(())
}
