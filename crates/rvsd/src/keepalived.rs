//! keepalived.conf in rvsd: `rvsd -f FILE` (`--use-file`) loads it, puts its services in
//! the table and runs its health checkers; `rvsd -t [-f FILE]` tests it and exits with
//! keepalived's `-t` status; SIGHUP reloads it (only what changed is applied; a file
//! with errors is refused and the running configuration stays).

use anyhow::Result;
use rvs_check::Options;
use rvs_keepalived::{Config, LoadError, LoadOptions};
use rvsd::health::HealthChecks;
use rvsd::Daemon;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// keepalived's default configuration file (`-t` without `-f`).
pub const DEFAULT_CONFIG: &str = "/etc/keepalived/keepalived.conf";

/// keepalived `-t` exit statuses (`lib/scheduler.h` `KEEPALIVED_CHK_EXIT_*`).
pub mod exit {
    /// The configuration is valid.
    pub const OK: u8 = 0;
    /// The file cannot be read (`CONFIG_FILE_NOT_FOUND`, `CONFIG_FATAL`).
    pub const CONFIG: u8 = 4;
    /// Configuration errors (syntax, values, unknown keywords).
    pub const CONFIG_TEST: u8 = 5;
}

/// How long omega shutdown scripts may run.
const STOP_SCRIPTS: Duration = Duration::from_secs(1);

/// How long reading a configuration may take before it is given up. The lexer's bounds
/// (`rvs_keepalived::Limits`) already end any file in far less; this covers what they
/// cannot see (a hung network file system, a glob walking a huge tree).
const LOAD_DEADLINE: Duration = Duration::from_secs(30);

/// `-i ID`: the configuration id for `@id` lines (default: the short host name).
pub static CONFIG_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Which halves of keepalived run (`-P`: VRRP only, `-C`: checkers only).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Subsystems {
    pub vrrp: bool,
    pub checkers: bool,
}

impl Default for Subsystems {
    fn default() -> Self {
        Subsystems {
            vrrp: true,
            checkers: true,
        }
    }
}

fn options() -> LoadOptions {
    LoadOptions {
        config_id: CONFIG_ID.get().cloned().or_else(short_hostname),
        instance: None,
        ..LoadOptions::default()
    }
}

/// The host name up to the first dot: keepalived's default configuration id for
/// `@id` lines.
fn short_hostname() -> Option<String> {
    let mut buf = [0u8; 256];
    // SAFETY: gethostname writes at most buf.len() bytes into buf.
    let rc = unsafe { libc::gethostname(buf.as_mut_ptr().cast(), buf.len()) };
    if rc != 0 {
        return None;
    }
    let end = buf.iter().position(|b| *b == 0).unwrap_or(buf.len());
    let name = String::from_utf8_lossy(&buf[..end]).into_owned();
    Some(name.split('.').next().unwrap_or_default().to_string())
}

/// Loads a keepalived.conf; warnings are logged.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    let cfg = rvs_keepalived::load_with(path, &options())?;
    for d in &cfg.diagnostics {
        tracing::warn!("{d}");
    }
    Ok(cfg)
}

/// Why a bounded load gave nothing to apply.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Load(#[from] LoadError),
    #[error("reading took longer than {} s: given up", .0.as_secs())]
    Deadline(Duration),
    #[error("the previous reload is still reading the configuration")]
    Busy,
    #[error("the reading thread failed: {0}")]
    Thread(String),
}

/// Reads a configuration off the async runtime, on a thread of its own, and waits for
/// it at most `deadline`. A thread past its deadline is left to finish on its own (a
/// detached thread does not hold up the process's exit, a blocking task of the runtime
/// would); `busy` refuses a second one meanwhile, so signals cannot pile threads up.
pub async fn load_bounded(
    path: &Path,
    busy: &Arc<std::sync::atomic::AtomicBool>,
    deadline: Duration,
    loader: fn(&Path) -> Result<Config, LoadError>,
) -> Result<Config, ReadError> {
    use std::sync::atomic::Ordering;
    if busy.swap(true, Ordering::AcqRel) {
        return Err(ReadError::Busy);
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let (p, b) = (path.to_path_buf(), busy.clone());
    let spawned = std::thread::Builder::new()
        .name("rvsd-config".into())
        .spawn(move || {
            let r = loader(&p);
            b.store(false, Ordering::Release);
            let _ = tx.send(r);
        });
    if let Err(e) = spawned {
        busy.store(false, Ordering::Release);
        return Err(ReadError::Thread(e.to_string()));
    }
    match tokio::time::timeout(deadline, rx).await {
        Ok(Ok(r)) => Ok(r?),
        Ok(Err(_)) => Err(ReadError::Thread("it ended without an answer".into())),
        Err(_) => Err(ReadError::Deadline(deadline)),
    }
}

/// `rvsd -t`: prints every diagnostic (`file:line:col`) to stderr and returns the exit
/// status keepalived's `-t` would.
pub fn config_test(path: Option<&Path>) -> u8 {
    let path = path
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_CONFIG));
    match rvs_keepalived::load_with(&path, &options()) {
        Ok(cfg) => {
            for d in &cfg.diagnostics {
                eprintln!("{d}");
            }
            if cfg.has_unknown_keywords() {
                exit::CONFIG_TEST
            } else {
                exit::OK
            }
        }
        Err(e @ LoadError::NotFound { .. }) => {
            eprintln!("{e}");
            exit::CONFIG
        }
        Err(e) => {
            for d in e.diagnostics() {
                eprintln!("{d}");
            }
            exit::CONFIG_TEST
        }
    }
}

/// A running keepalived configuration.
pub struct Keepalived {
    path: PathBuf,
    /// A thread is reading the file.
    reading: Arc<std::sync::atomic::AtomicBool>,
    daemon: Arc<Daemon>,
    /// The configuration in force (dumps, `-d`, the services it owns).
    config: Config,
    /// The virtual servers and their checkers (none with `-P`).
    health: Option<HealthChecks>,
    /// The `vrrp_instance`s ([`crate::vrrp`]); none with `-C`.
    vrrp: Option<crate::vrrp::Vrrp>,
    /// `lvs_sync_daemon` ([`crate::lvs_sync`]): driven by VRRP, as in keepalived's VRRP
    /// process; none with `-C`.
    lvs_sync: Option<crate::lvs_sync::LvsSync>,
}

impl Keepalived {
    /// Loads `path`, applies it to the daemon's table and starts the checkers; the
    /// daemon's `Status` reply lists them from then on. A virtual server the data plane
    /// cannot serve refuses the file, as a configuration error does.
    pub async fn start(path: &Path, daemon: Arc<Daemon>, run: Subsystems) -> Result<Keepalived> {
        let refused = |e: LoadError| anyhow::anyhow!("{}:\n{e}", path.display());
        let reading = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let config = load_bounded(path, &reading, LOAD_DEADLINE, load)
            .await
            .map_err(|e| anyhow::anyhow!("{}:\n{e}", path.display()))?;
        let health = if run.checkers {
            Some(
                HealthChecks::start(&config, daemon.clone(), Options::default())
                    .await
                    .map_err(refused)?,
            )
        } else {
            tracing::info!(
                "-P: VRRP only, the virtual servers of {} are not loaded",
                path.display()
            );
            None
        };
        tracing::info!(
            file = %path.display(),
            virtual_servers = if run.checkers { config.virtual_servers.len() } else { 0 },
            checkers = health.as_ref().map_or(0, |h| h.running()),
            vrrp_instances = if run.vrrp { config.vrrp_instances.len() } else { 0 },
            "keepalived configuration loaded"
        );
        let (vrrp, lvs_sync) = if run.vrrp {
            let vrrp = crate::vrrp::Vrrp::start(&config, &daemon).await;
            let lvs_sync = crate::lvs_sync::LvsSync::start(
                daemon.clone(),
                crate::lvs_sync::plan(&config),
                vrrp.states(),
            );
            (Some(vrrp), Some(lvs_sync))
        } else {
            tracing::info!(
                "-C: checkers only, the VRRP instances of {} do not run",
                path.display()
            );
            (None, None)
        };
        Ok(Keepalived {
            path: path.to_path_buf(),
            reading,
            daemon,
            config,
            health,
            vrrp,
            lvs_sync,
        })
    }

    /// The configuration in force.
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// True when VRRP instances run.
    pub fn runs_vrrp(&self) -> bool {
        self.vrrp.as_ref().is_some_and(|v| v.running())
    }

    /// True when health checkers run.
    pub fn runs_checkers(&self) -> bool {
        self.health.is_some()
    }

    /// Where the quorum of the virtual servers is read (none with `-P`).
    pub fn quorum_source(&self) -> Option<rvsd::announce::QuorumSource> {
        self.health.as_ref().map(|h| h.quorum_source())
    }

    /// The state of the VRRP instances now.
    pub fn vrrp_status(&self) -> rvs_vrrp::Status {
        self.vrrp.as_ref().map(|v| v.status()).unwrap_or_default()
    }

    /// SIGHUP: reads the file again and applies the difference (the pool's reload diff,
    /// `rvs_keepalived::pool`). A file with errors, or with a virtual server the data
    /// plane cannot serve, is refused whole; the running configuration stays. The file is
    /// read off the runtime within a deadline ([`load_bounded`]), so the daemon keeps
    /// serving meanwhile and the caller can drop this future on SIGTERM.
    pub async fn reload(&mut self) {
        let refused = |e: &dyn std::fmt::Display| {
            tracing::error!(file = %self.path.display(), "reload refused, keeping the running configuration:\n{e}");
        };
        let cfg = match load_bounded(&self.path, &self.reading, LOAD_DEADLINE, load).await {
            Ok(c) => c,
            Err(e) => return refused(&e),
        };
        tracing::info!(
            virtual_servers = cfg.virtual_servers.len(),
            "reloading {}",
            self.path.display()
        );
        if let Some(h) = &mut self.health {
            if let Err(e) = h.reload(&cfg, self.daemon.plane()).await {
                return refused(&e);
            }
        }
        if let (Some(v), Some(s)) = (&mut self.vrrp, &mut self.lvs_sync) {
            v.reload(&cfg).await;
            s.apply(crate::lvs_sync::plan(&cfg), v.states());
        }
        self.config = cfg;
    }

    /// Stops VRRP (masters send priority 0), then the checkers (with `omega`:
    /// notify_down and quorum_down scripts run).
    pub async fn stop(self) {
        // VRRP first: a master's priority 0 lets the backup take over while our
        // services still answer.
        if let Some(v) = self.vrrp {
            v.stop().await;
        }
        if let Some(s) = self.lvs_sync {
            s.stop();
        }
        if let Some(h) = self.health {
            h.stop(STOP_SCRIPTS).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_api::{Reply, Request};
    use rvs_core::Table;
    use rvs_dataplane::{NoDataPlane, Shared};
    use std::io::Write;

    fn testdata(rel: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../testdata/keepalived")
            .join(rel)
    }

    #[test]
    fn config_test_exit_statuses_are_keepalived_s() {
        assert_eq!(
            config_test(Some(&testdata("seed000_master.conf"))),
            exit::OK
        );
        assert_eq!(
            config_test(Some(&testdata("seed003_backup.conf"))),
            exit::OK
        );
        assert_eq!(
            config_test(Some(&testdata("errors/in_include.conf"))),
            exit::CONFIG_TEST
        );
        assert_eq!(
            config_test(Some(&testdata("errors/unknown_keyword.conf"))),
            exit::CONFIG_TEST
        );
        assert_eq!(
            config_test(Some(&testdata("no-such-file.conf"))),
            exit::CONFIG
        );
    }

    fn write(path: &Path, text: &str) {
        let mut f = std::fs::File::create(path).unwrap();
        f.write_all(text.as_bytes()).unwrap();
    }

    fn conf(rs: std::net::SocketAddr, weight: u32) -> String {
        format!(
            "virtual_server 127.0.50.100 80 {{\n protocol TCP\n lb_kind DR\n lb_algo rr\n delay_loop 0.2\n warmup 0\n\
             real_server {} {} {{\n  weight {weight}\n  TCP_CHECK {{\n   connect_timeout 0.3\n  }}\n }}\n}}\n",
            rs.ip(),
            rs.port()
        )
    }

    fn weight(d: &Daemon) -> Option<u32> {
        let t = d.table();
        let (sid, _) = t.services().next()?;
        let w = t.dests_of(sid).iter().next().map(|(_, x)| x.cfg.weight);
        w
    }

    /// A real server the data plane cannot serve refuses the file at start with its
    /// place, nothing applied; a reload to such a file keeps the running configuration.
    fn slow_loader(_: &Path) -> Result<Config, LoadError> {
        std::thread::sleep(Duration::from_millis(1500));
        Ok(Config::default())
    }

    #[tokio::test]
    async fn a_load_past_its_deadline_is_given_up_and_a_second_one_refused_meanwhile() {
        let busy = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let p = Path::new("/nonexistent.conf");
        let t = std::time::Instant::now();
        let r = load_bounded(p, &busy, Duration::from_millis(100), slow_loader).await;
        assert!(matches!(r, Err(ReadError::Deadline(_))), "{r:?}");
        assert!(t.elapsed() < Duration::from_millis(1000));
        let r = load_bounded(p, &busy, Duration::from_secs(5), slow_loader).await;
        assert!(matches!(r, Err(ReadError::Busy)), "{r:?}");
        // Once the late thread is done, loads are taken again.
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while busy.load(std::sync::atomic::Ordering::Acquire) {
            assert!(
                std::time::Instant::now() < deadline,
                "the reader never finished"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let r = load_bounded(p, &busy, Duration::from_secs(5), load).await;
        assert!(
            matches!(r, Err(ReadError::Load(LoadError::NotFound { .. }))),
            "{r:?}"
        );
    }

    #[tokio::test]
    async fn what_the_plane_cannot_serve_refuses_the_file_with_its_place() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keepalived.conf");
        // A live real server: its checker keeps it in the table while the test runs.
        let l = tokio::net::TcpListener::bind("127.0.51.1:0").await.unwrap();
        let rs = l.local_addr().unwrap();
        let dr = conf(rs, 2).replace("127.0.50.100", "127.0.51.100");
        write(&file, &dr);
        let shared = Arc::new(Shared::new(Table::new()));
        let proxy = rvs_proxy::Proxy::new(
            shared.clone(),
            rvs_proxy::ProxyOptions {
                workers: 1,
                ..rvs_proxy::ProxyOptions::default()
            },
        );
        let daemon = Arc::new(Daemon::new(shared, Box::new(proxy)));
        let err = match Keepalived::start(&file, daemon.clone(), Subsystems::default()).await {
            Ok(_) => panic!("a DR real server on the proxy plane was accepted"),
            Err(e) => e.to_string(),
        };
        // (A DR real server takes the service's port, as in keepalived.)
        let line = 1 + dr.lines().position(|l| l.contains("real_server")).unwrap();
        let want = format!(
            "{}:{line}:1: error: real_server 127.0.51.1 80: the proxy data plane does not serve direct routing (-g, DR)",
            file.display()
        );
        assert!(err.contains(&want), "{err}");
        assert_eq!(daemon.table().num_services(), 0, "nothing applied");

        write(&file, &dr.replace("lb_kind DR", "lb_kind NAT"));
        let mut ka = Keepalived::start(&file, daemon.clone(), Subsystems::default())
            .await
            .unwrap();
        assert_eq!(weight(&daemon), Some(2));
        write(&file, &dr.replace("weight 2", "weight 7"));
        ka.reload().await;
        assert_eq!(weight(&daemon), Some(2), "the running configuration stays");
        ka.stop().await;
        drop(l);
    }

    #[tokio::test]
    async fn use_file_fills_the_table_status_lists_checkers_and_reload_applies_changes() {
        let l = tokio::net::TcpListener::bind("127.0.50.1:0").await.unwrap();
        let rs = l.local_addr().unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("keepalived.conf");
        write(&file, &conf(rs, 2));
        let daemon = Arc::new(Daemon::new(
            Arc::new(Shared::new(Table::new())),
            Box::new(NoDataPlane),
        ));
        let mut ka = Keepalived::start(&file, daemon.clone(), Subsystems::default())
            .await
            .unwrap();
        assert_eq!(weight(&daemon), Some(2));
        let Reply::Status(s) = daemon.handle(Request::Status) else {
            panic!()
        };
        assert_eq!(s.checkers.len(), 1);
        assert_eq!(s.checkers[0].kind, "TCP_CHECK");
        assert_eq!(s.checkers[0].addr, rs.ip());

        // SIGHUP with a changed weight.
        write(&file, &conf(rs, 5));
        ka.reload().await;
        assert_eq!(weight(&daemon), Some(5));
        // A file with an error is refused: the running configuration stays.
        write(&file, &conf(rs, 5).replace("weight 5", "weight five"));
        ka.reload().await;
        assert_eq!(weight(&daemon), Some(5));

        // The real server dies: it leaves the table, Status shows why.
        drop(l);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while weight(&daemon).is_some() {
            assert!(
                std::time::Instant::now() < deadline,
                "real server not removed"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        let Reply::Status(s) = daemon.handle(Request::Status) else {
            panic!()
        };
        assert!(!s.checkers[0].up);
        assert!(s.checkers[0]
            .last_error
            .as_deref()
            .unwrap_or("")
            .contains("refused"));
        ka.stop().await;
    }
}
