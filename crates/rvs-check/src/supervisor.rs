//! The supervisor: one lightweight task per checker on the caller's tokio runtime (no
//! thread per checker), one applier task that executes decisions in order.
//!
//! ```text
//!  checker task ──probe──► Engine (mutex: state only) ──actions──► applier task
//!      ▲   sleep(next)                                       │ TableSink (table lock + sync)
//!      └─────────────────────────────────────────────────────┘ notify scripts
//! ```
//!
//! The engine lock is never held while the table lock is taken (the daemon holds the
//! table lock while it asks for [`Supervisor::status`]), and actions keep their order
//! because one task applies them all.

use crate::engine::{Action, CheckerId, Engine};
use crate::epilog::Next;
use crate::plan::{plan, CheckerPlan};
use crate::probe;
use crate::reload::ReloadReport;
use crate::sink::{apply_action, TableSink};
use rvs_keepalived::Config;
use rvs_script::ScriptEnv;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
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

enum Msg {
    Actions(Vec<Action>),
    Barrier(oneshot::Sender<()>),
}

struct Inner {
    engine: Mutex<Engine>,
    tasks: Mutex<HashMap<CheckerId, JoinHandle<()>>>,
    tx: mpsc::UnboundedSender<Msg>,
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

    fn send(&self, actions: Vec<Action>) {
        if !actions.is_empty() {
            let _ = self.tx.send(Msg::Actions(actions));
        }
    }

    fn env(&self) -> Arc<ScriptEnv> {
        self.env.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// Health checking of a loaded configuration.
pub struct Supervisor {
    inner: Arc<Inner>,
    applier: JoinHandle<()>,
}

impl Supervisor {
    /// Puts the configuration's services in the table (through `sink`), waits until they
    /// are there, and starts the checkers. Call from within a tokio runtime.
    pub async fn start(cfg: &Config, sink: Arc<dyn TableSink>, opts: Options) -> Supervisor {
        let (tx, rx) = mpsc::unbounded_channel();
        let env = Arc::new(ScriptEnv::from_config(cfg.global.script_user.as_ref()));
        let inner = Arc::new(Inner {
            engine: Mutex::new(Engine::new(cfg.global.rs_init_notifies)),
            tasks: Mutex::new(HashMap::new()),
            tx,
            env: RwLock::new(env),
            opts,
        });
        let applier = tokio::spawn(applier(rx, sink, inner.clone()));
        let mut out = global_actions(cfg, true);
        let mut table_actions = Vec::new();
        {
            let mut e = inner.engine();
            e.init(plan(cfg), &mut table_actions);
        }
        out.extend(table_actions);
        inner.send(out);
        let s = Supervisor { inner, applier };
        s.settle().await;
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

    /// Waits until every decision taken so far is in the table.
    pub async fn settle(&self) {
        let (tx, rx) = oneshot::channel();
        if self.inner.tx.send(Msg::Barrier(tx)).is_ok() {
            let _ = rx.await;
        }
    }

    /// Every checker's state, for `rvsadm --status`.
    pub fn status(&self) -> Vec<rvs_api::CheckerStatus> {
        self.inner.engine().status()
    }

    /// How many probe loops run.
    pub fn running(&self) -> usize {
        self.inner.tasks().len()
    }

    /// Applies a new configuration: only what changed reaches the table; unchanged
    /// checkers keep their state and their probe loop.
    pub async fn reload(&self, cfg: &Config) -> ReloadReport {
        *self.inner.env.write().unwrap_or_else(|p| p.into_inner()) =
            Arc::new(ScriptEnv::from_config(cfg.global.script_user.as_ref()));
        let mut out = global_actions(cfg, false);
        let (report, starts) = {
            let mut e = self.inner.engine();
            e.rs_init_notifies = cfg.global.rs_init_notifies;
            let report = e.reload(plan(cfg), &mut out);
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
        self.inner.send(out);
        self.settle().await;
        for (id, p) in starts {
            self.spawn(id, p);
        }
        tracing::info!(
            kept = report.kept.len(),
            started = report.started.len(),
            stopped = report.stopped.len(),
            "configuration reloaded"
        );
        report
    }

    /// Stops every checker; with `omega`, runs notify_down and quorum_down scripts
    /// (waiting for them up to `scripts`). The table is left as it is.
    pub async fn stop(&self, scripts: Duration) {
        for (_, h) in self.inner.tasks().drain() {
            h.abort();
        }
        let mut out = Vec::new();
        self.inner.engine().stop(&mut out);
        let env = self.inner.env();
        let mut children = Vec::new();
        for a in out {
            if let Action::Run { script, why } = a {
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

impl Drop for Supervisor {
    fn drop(&mut self) {
        for (_, h) in self.inner.tasks().drain() {
            h.abort();
        }
        self.applier.abort();
    }
}

/// `lvs_flush` (first start only) and `lvs_timeouts`.
fn global_actions(cfg: &Config, first: bool) -> Vec<Action> {
    let mut out = Vec::new();
    if first && cfg.global.lvs_flush {
        out.push(Action::Flush);
    }
    if let Some(t) = cfg.global.lvs_timeouts {
        out.push(Action::SetTimeouts {
            tcp: t.tcp.unwrap_or(0),
            tcpfin: t.tcpfin.unwrap_or(0),
            udp: t.udp.unwrap_or(0),
        });
    }
    out
}

async fn applier(
    mut rx: mpsc::UnboundedReceiver<Msg>,
    sink: Arc<dyn TableSink>,
    inner: Arc<Inner>,
) {
    while let Some(first) = rx.recv().await {
        // Everything queued goes in one table lock.
        let mut batch = vec![first];
        while let Ok(m) = rx.try_recv() {
            batch.push(m);
        }
        let actions: Vec<&Action> = batch
            .iter()
            .flat_map(|m| match m {
                Msg::Actions(a) => a.iter().collect::<Vec<_>>(),
                Msg::Barrier(_) => Vec::new(),
            })
            .collect();
        if actions.iter().any(|a| !matches!(a, Action::Run { .. })) {
            sink.apply(&mut |t| {
                for a in &actions {
                    apply_action(t, a);
                }
            });
        }
        let env = inner.env();
        for a in &actions {
            if let Action::Run { script, why } = a {
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

async fn checker_loop(inner: Arc<Inner>, id: CheckerId, plan: CheckerPlan, first: Duration) {
    tokio::time::sleep(first).await;
    loop {
        let Some(url) = inner.engine().url_index(id) else {
            return;
        };
        let started = Instant::now();
        let env = inner.env();
        let outcome = probe::run(&plan.probe, url, &env).await;
        let mut out = Vec::new();
        let Some(next) = inner.engine().on_result(id, outcome, &mut out) else {
            return;
        };
        inner.send(out);
        let at = match next {
            Next::After(d) => Instant::now() + d,
            Next::FromStart(d) => (started + d).max(Instant::now()),
        };
        tokio::time::sleep_until(at).await;
    }
}
