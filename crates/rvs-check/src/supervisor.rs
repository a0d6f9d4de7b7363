//! The supervisor: one lightweight task per checker on the caller's tokio runtime (no
//! thread per checker), reporting to a [`VerdictSink`].
//!
//! ```text
//!  checker task ──probe──► Engine (mutex) ──verdicts──► VerdictSink (the daemon: pool,
//!      ▲   sleep(next)                                  writer, notify scripts)
//!      └────────────────────────────────────────────┘
//! ```
//!
//! Verdicts are handed to the sink with the engine locked, so they reach it in the order
//! the engine reached them, and never between a reload and the health it reports. The
//! daemon holds its table lock while it asks for [`Supervisor::status`]; the sink must
//! therefore not take the table lock itself (it queues).

use crate::engine::{CheckerId, Engine};
use crate::epilog::Next;
use crate::plan::{plan, CheckerPlan};
use crate::probe;
use crate::reload::ReloadReport;
use crate::report::VerdictSink;
use rvs_keepalived::Config;
use rvs_script::ScriptEnv;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// keepalived's `BOOTSTRAP_DELAY`: checkers start this long after the daemon.
pub const BOOTSTRAP_DELAY: Duration = Duration::from_secs(1);

#[derive(Clone, Debug)]
pub struct Options {
    /// Delay before a checker's first probe, before its random warmup part.
    pub bootstrap: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            bootstrap: BOOTSTRAP_DELAY,
        }
    }
}

struct Inner {
    engine: Mutex<Engine>,
    tasks: Mutex<HashMap<CheckerId, JoinHandle<()>>>,
    sink: Arc<dyn VerdictSink>,
    env: RwLock<Arc<ScriptEnv>>,
    opts: Options,
}

impl Inner {
    fn engine(&self) -> MutexGuard<'_, Engine> {
        self.engine.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn tasks(&self) -> MutexGuard<'_, HashMap<CheckerId, JoinHandle<()>>> {
        self.tasks.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn env(&self) -> Arc<ScriptEnv> {
        self.env.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Health checking of a loaded configuration.
pub struct Supervisor {
    inner: Arc<Inner>,
}

impl Supervisor {
    /// Takes the configuration's real servers as up (down with `alpha`), reports that to
    /// `sink` ([`VerdictSink::configured`]) and starts the checkers. Call from within a
    /// tokio runtime.
    pub fn start(cfg: &Config, sink: Arc<dyn VerdictSink>, opts: Options) -> Supervisor {
        let env = Arc::new(ScriptEnv::from_config(cfg.global.script_user.as_ref()));
        let inner = Arc::new(Inner {
            engine: Mutex::new(Engine::new()),
            tasks: Mutex::new(HashMap::new()),
            sink,
            env: RwLock::new(env),
            opts,
        });
        {
            let mut e = inner.engine();
            e.init(plan(cfg));
            inner.sink.configured(cfg, &*e, true);
        }
        let s = Supervisor { inner };
        s.spawn_all();
        s
    }

    fn spawn_all(&self) {
        let list: Vec<(CheckerId, CheckerPlan)> = {
            let e = self.inner.engine();
            e.checkers()
                .map(|(_, _, c)| (c.id, c.plan.clone()))
                .collect()
        };
        for (id, p) in list {
            self.spawn(id, p);
        }
    }

    fn spawn(&self, id: CheckerId, p: CheckerPlan) {
        let first = Engine::first_delay(&p, self.inner.opts.bootstrap);
        let h = tokio::spawn(checker_loop(self.inner.clone(), id, p, first));
        self.inner.tasks().insert(id, h);
    }

    /// Every checker's state, for `rvsadm --status`.
    pub fn status(&self) -> Vec<rvs_api::CheckerStatus> {
        self.inner.engine().status()
    }

    /// How many probe loops run.
    pub fn running(&self) -> usize {
        self.inner.tasks().len()
    }

    /// Runs a new configuration: unchanged checkers keep their state and their probe
    /// loop; the sink gets the new configuration with every server's health.
    pub fn reload(&self, cfg: &Config) -> ReloadReport {
        *self.inner.env.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(ScriptEnv::from_config(cfg.global.script_user.as_ref()));
        let (report, starts) = {
            let mut e = self.inner.engine();
            let report = e.reload(plan(cfg));
            self.inner.sink.configured(cfg, &*e, false);
            let starts: Vec<(CheckerId, CheckerPlan)> = report
                .started
                .iter()
                .filter_map(|id| e.checker(*id).map(|c| (*id, c.plan.clone())))
                .collect();
            (report, starts)
        };
        {
            let mut tasks = self.inner.tasks();
            for id in &report.stopped {
                if let Some(h) = tasks.remove(id) {
                    h.abort();
                }
            }
        }
        for (id, p) in starts {
            self.spawn(id, p);
        }
        tracing::info!(
            kept = report.kept.len(),
            started = report.started.len(),
            stopped = report.stopped.len(),
            "checkers reloaded"
        );
        report
    }

    /// Stops every checker (a MISC_CHECK script still running is killed).
    pub fn stop(&self) {
        for (_, h) in self.inner.tasks().drain() {
            h.abort();
        }
    }
}

impl Drop for Supervisor {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn checker_loop(inner: Arc<Inner>, id: CheckerId, plan: CheckerPlan, first: Duration) {
    tokio::time::sleep(first).await;
    loop {
        let Some(url) = inner.engine().url_index(id) else {
            return;
        };
        let started = Instant::now();
        let env = inner.env();
        let outcome = probe::run(&plan.probe, url, &env).await;
        let next = {
            let mut e = inner.engine();
            let mut out = Vec::new();
            let Some(next) = e.on_result(id, outcome, &mut out) else {
                return;
            };
            if !out.is_empty() {
                inner.sink.verdicts(out);
            }
            next
        };
        let at = match next {
            Next::After(d) => Instant::now() + d,
            Next::FromStart(d) => (started + d).max(Instant::now()),
        };
        tokio::time::sleep_until(at).await;
    }
}
