//! keepalived.conf's virtual servers in rvsd, and the walk of a health verdict:
//!
//! ```text
//!  rvs-check checker ──Verdict──► Pool (rvs_keepalived::pool) ──Effects──► applier task
//!   (probe, epilog,               inhibit, sorry server,          Change ──► Daemon::apply
//!    server up/down)              quorum, notify scripts          (admit, Table::apply,
//!                                                                  plane sync, errno)
//!                                                                 Run ────► rvs-script
//! ```
//!
//! The checkers report to a [`VerdictSink`] with their state locked; the sink asks the
//! pool at once (so the pool and the checkers never disagree about a server) and queues
//! the effects. One applier task hands them to the daemon's one writer, everything queued
//! in one table lock and one data-plane sync, and runs the notify scripts after the table
//! changes they follow, in order.

use crate::daemon::{ChangeError, Daemon};
use rvs_check::{Options, ReloadReport, Supervisor, VerdictSink};
use rvs_core::{Change, Errno};
use rvs_dataplane::DataPlane;
use rvs_keepalived::pool::{Effect, Health, Pool, Verdict};
use rvs_keepalived::{Config, Diagnostic, LoadError, Severity};
use rvs_script::ScriptEnv;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Refuses a configuration with a virtual server, real server or sorry server the data
/// plane cannot serve: one `file:line:col: error:` diagnostic each, as for a value error.
///
/// # Errors
/// [`LoadError::Invalid`] with the refusals.
pub fn admit(cfg: &Config, plane: &dyn DataPlane) -> Result<(), LoadError> {
    let mut diags: Vec<Diagnostic> = Vec::new();
    for e in rvs_keepalived::entries(cfg) {
        if let Err(r) = plane.admit(&e.change) {
            if !diags.iter().any(|d| d.pos == e.pos) {
                diags.push(Diagnostic {
                    severity: Severity::Error,
                    pos: e.pos,
                    message: format!("{}: {r}", e.block),
                });
            }
        }
    }
    if diags.is_empty() {
        Ok(())
    } else {
        Err(LoadError::Invalid(diags))
    }
}

enum Msg {
    Effects(Vec<Effect>),
    Barrier(oneshot::Sender<()>),
}

/// The [`VerdictSink`]: the pool and the queue to the applier.
struct Mapper {
    pool: Mutex<Pool>,
    tx: mpsc::UnboundedSender<Msg>,
    env: RwLock<Arc<ScriptEnv>>,
}

impl Mapper {
    fn pool(&self) -> MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn env(&self) -> Arc<ScriptEnv> {
        self.env.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn send(&self, effects: Vec<Effect>) {
        if !effects.is_empty() {
            let _ = self.tx.send(Msg::Effects(effects));
        }
    }
}

impl VerdictSink for Mapper {
    fn configured(&self, cfg: &Config, health: &dyn Health, first: bool) {
        *self.env.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(ScriptEnv::from_config(cfg.global.script_user.as_ref()));
        let effects = if first {
            self.pool().load(cfg, health)
        } else {
            self.pool().reload(cfg, health)
        };
        self.send(effects);
    }

    fn verdicts(&self, verdicts: Vec<Verdict>) {
        let mut out = Vec::new();
        {
            let mut pool = self.pool();
            for v in &verdicts {
                pool.on_verdict(v, &mut out);
            }
        }
        self.send(out);
    }
}

/// Health checking of a keepalived configuration, its effects applied to the daemon.
pub struct HealthChecks {
    sup: Arc<Supervisor>,
    mapper: Arc<Mapper>,
    applier: JoinHandle<()>,
}

impl HealthChecks {
    /// Admits the configuration ([`admit`]), puts its services in the table, starts the
    /// checkers and makes them the daemon's `Status` checkers. Returns once the services
    /// are in the table. Call from within a tokio runtime.
    ///
    /// # Errors
    /// What the data plane does not serve, nothing applied.
    pub async fn start(
        cfg: &Config,
        daemon: Arc<Daemon>,
        opts: Options,
    ) -> Result<HealthChecks, LoadError> {
        admit(cfg, daemon.plane())?;
        let (tx, rx) = mpsc::unbounded_channel();
        let mapper = Arc::new(Mapper {
            pool: Mutex::new(Pool::default()),
            tx,
            env: RwLock::new(Arc::new(ScriptEnv::default())),
        });
        let applier = tokio::spawn(applier(rx, daemon.clone(), mapper.clone()));
        let sup = Arc::new(Supervisor::start(cfg, mapper.clone(), opts));
        let s = sup.clone();
        daemon.set_checker_source(Box::new(move || s.status()));
        let h = HealthChecks {
            sup,
            mapper,
            applier,
        };
        h.settle().await;
        Ok(h)
    }

    /// Runs a new configuration: only what changed reaches the table; unchanged checkers
    /// keep their state and their probe loop. Returns once the changes are in the table,
    /// with the probe loops kept, started and stopped.
    ///
    /// # Errors
    /// What the data plane does not serve; the running configuration stays.
    pub async fn reload(
        &self,
        cfg: &Config,
        plane: &dyn DataPlane,
    ) -> Result<ReloadReport, LoadError> {
        admit(cfg, plane)?;
        let report = self.sup.reload(cfg);
        self.settle().await;
        Ok(report)
    }

    /// Every checker's state, for `rvsadm --status`.
    pub fn status(&self) -> Vec<rvs_api::CheckerStatus> {
        self.sup.status()
    }

    /// The services whose virtual server has lost its quorum, read when called.
    pub fn quorum_source(&self) -> crate::announce::QuorumSource {
        let m = self.mapper.clone();
        Box::new(move || m.pool().quorum_lost())
    }

    /// How many probe loops run.
    pub fn running(&self) -> usize {
        self.sup.running()
    }

    /// Waits until every effect reported so far is applied.
    pub async fn settle(&self) {
        let (tx, rx) = oneshot::channel();
        if self.mapper.tx.send(Msg::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops every checker; with `omega`, runs notify_down and quorum_down scripts
    /// (waiting for them up to `scripts`). The table is left as it is.
    pub async fn stop(&self, scripts: Duration) {
        self.sup.stop();
        let effects = self.mapper.pool().stop();
        let env = self.mapper.env();
        let mut children = Vec::new();
        for e in effects {
            if let Effect::Run { script, why } = e {
                tracing::info!(script = %script, why, "running shutdown script");
                if let Ok(c) = env.command(&script, &[]).spawn() {
                    children.push(c);
                }
            }
        }
        for mut c in children {
            let _ = rvs_script::wait_or_kill(&mut c, scripts).await;
        }
        self.settle().await;
    }
}

impl Drop for HealthChecks {
    fn drop(&mut self) {
        self.sup.stop();
        self.applier.abort();
    }
}

/// A failure the pool expects: what it deletes may be gone already (the operator deleted
/// it by hand meanwhile).
fn expected(change: &Change, e: &ChangeError) -> bool {
    let ChangeError::Table(t) = e else {
        return false;
    };
    matches!(
        (change, t.errno),
        (Change::DelService(_), Errno::NoService)
            | (Change::DelDest { .. }, Errno::NotFound | Errno::NoService)
    )
}

async fn applier(mut rx: mpsc::UnboundedReceiver<Msg>, daemon: Arc<Daemon>, mapper: Arc<Mapper>) {
    while let Some(first) = rx.recv().await {
        // Everything queued goes in one table lock.
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        let effects: Vec<&Effect> = batch
            .iter()
            .flat_map(|m| match m {
                Msg::Effects(e) => e.iter().collect::<Vec<_>>(),
                Msg::Barrier(_) => Vec::new(),
            })
            .collect();
        let changes: Vec<Change> = effects
            .iter()
            .filter_map(|e| match e {
                Effect::Change(c) => Some(c.clone()),
                Effect::Run { .. } => None,
            })
            .collect();
        if !changes.is_empty() {
            for (c, r) in changes.iter().zip(daemon.apply(&changes)) {
                match r {
                    Err(e) if !expected(c, &e) => {
                        tracing::warn!(change = ?c, "table change failed: {e}")
                    }
                    _ => {}
                }
            }
        }
        let env = mapper.env();
        for e in &effects {
            if let Effect::Run { script, why } = e {
                env.spawn_notify(script, why);
            }
        }
        for m in batch {
            if let Msg::Barrier(tx) = m {
                let _ = tx.send(());
            }
        }
    }
}
