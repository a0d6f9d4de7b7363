//! The daemon's state, the dispatch of control requests and the one writer of the table.
//!
//! Every change to the table, whoever asks for it (a control request, `--restore`,
//! keepalived.conf and its health checks), is a [`Change`] that goes through
//! one writer: lock the table, let the data plane admit it ([`DataPlane::admit`]), apply
//! it, bring the data plane in line, report the errno the kernel would.

use crate::sync::SyncControl;
use rvs_api::{ApiError, CheckerStatus, Reply, Request, StatusReply, TimeoutsReply};
use rvs_core::{Change, Errno, Millis, Table, TableError};
use rvs_dataplane::{DataPlane, Refusal, Shared};
use std::sync::{Arc, MutexGuard, OnceLock};

/// How often timers, scheduler housekeeping and the trash run.
pub const HOUSEKEEPING_MS: u64 = 1000;

pub struct Daemon {
    shared: Arc<Shared>,
    plane: Arc<dyn DataPlane>,
    /// The connection-sync daemons.
    sync: SyncControl,
    /// Health checker states for `Status` (set once keepalived.conf checkers run).
    checkers: OnceLock<CheckerSource>,
    /// More `Status` facts (VRRP, announcing), after the data plane's.
    facts: std::sync::Mutex<Vec<FactSource>>,
    /// `rvsadm --drain`/`--undrain` (set when rvsd announces its addresses).
    drain: OnceLock<DrainHook>,
    /// Told after every change of the table (the state file).
    on_change: OnceLock<ChangeHook>,
}

/// Called after a change of the table, with the table unlocked; must not block.
pub type ChangeHook = Box<dyn Fn() + Send + Sync>;

/// Drains (true) or undrains the director: see [`crate::announce`].
pub type DrainHook = Box<dyn Fn(bool) + Send + Sync>;

/// Gives extra `(name, value)` facts for `Status`; same locking rule as [`CheckerSource`].
pub type FactSource = Box<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Gives the current state of every health checker. Called with the table locked: it
/// must not lock the table itself.
pub type CheckerSource = Box<dyn Fn() -> Vec<CheckerStatus> + Send + Sync>;

/// Why a change was not made.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ChangeError {
    /// The data plane cannot serve it ([`DataPlane::admit`]).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// The table refused it, as the kernel would (the errno picks ipvsadm's message).
    #[error(transparent)]
    Table(#[from] TableError),
}

impl From<ChangeError> for ApiError {
    fn from(e: ChangeError) -> Self {
        match e {
            ChangeError::Refused(r) => ApiError {
                errno: Some(Errno::NotSupported),
                message: r.to_string(),
                refused: true,
            },
            ChangeError::Table(t) => t.into(),
        }
    }
}

/// The table, locked for a run of changes and reads.
struct Writer<'a> {
    table: MutexGuard<'a, Table>,
    plane: &'a dyn DataPlane,
    sync: &'a SyncControl,
    /// A change was applied: the data plane must follow.
    changed: bool,
}

impl Writer<'_> {
    /// The plane admits the change, the table applies it; the sync daemons start or stop
    /// for real before the table records them.
    fn apply(&mut self, c: &Change) -> Result<(), ChangeError> {
        match c {
            Change::StartDaemon(cfg) => {
                self.sync.start(&mut self.table, self.plane, cfg.clone())?
            }
            Change::StopDaemon { master } => {
                self.sync.stop(&mut self.table, self.plane, *master)?
            }
            Change::SetSysctl { .. } => {
                self.table.apply(c)?;
                self.sync.params_changed(&self.table);
            }
            _ => {
                self.plane.admit(c)?;
                self.table.apply(c)?;
            }
        }
        self.changed = true;
        Ok(())
    }
}

fn error(errno: Errno, message: &str) -> Reply {
    Reply::Error(ApiError {
        errno: Some(errno),
        message: message.to_string(),
        refused: false,
    })
}

impl Daemon {
    pub fn new(shared: Arc<Shared>, plane: Box<dyn DataPlane>) -> Daemon {
        let plane: Arc<dyn DataPlane> = Arc::from(plane);
        let d = Daemon {
            sync: SyncControl::new(shared.clone(), plane.clone()),
            shared,
            plane,
            checkers: OnceLock::new(),
            facts: std::sync::Mutex::new(Vec::new()),
            drain: OnceLock::new(),
            on_change: OnceLock::new(),
        };
        {
            let t = d.table();
            d.plane.sync(&t);
        }
        d
    }

    /// Milliseconds on the daemon's monotonic clock (the model's time base).
    pub fn now(&self) -> Millis {
        self.shared.now()
    }

    pub fn table(&self) -> MutexGuard<'_, Table> {
        self.shared.table()
    }

    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub fn plane(&self) -> &dyn DataPlane {
        &*self.plane
    }

    /// Where `Status` gets checker states from (keepalived.conf health checkers).
    pub fn set_checker_source(&self, source: CheckerSource) {
        let _ = self.checkers.set(source);
    }

    /// Adds a source of extra `Status` facts (VRRP state and counters, announcing).
    pub fn add_fact_source(&self, source: FactSource) {
        self.facts
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(source);
    }

    /// What `rvsadm --drain`/`--undrain` does; without one they are refused.
    pub fn set_drain_hook(&self, hook: DrainHook) {
        let _ = self.drain.set(hook);
    }

    /// Who to tell after each change of the table (the state file writer).
    pub fn set_change_hook(&self, hook: ChangeHook) {
        let _ = self.on_change.set(hook);
    }

    /// The table was changed (by a request, a health checker, a reload).
    pub fn changed(&self) {
        if let Some(h) = self.on_change.get() {
            h();
        }
    }

    /// Serves one request: queries read the table, changes go through the writer; a batch
    /// is served under one lock with one data-plane sync.
    pub fn handle(&self, req: Request) -> Reply {
        self.write(|w| match req {
            Request::Batch(reqs) => Reply::Batch(
                reqs.into_iter()
                    .map(|r| match r {
                        Request::Batch(_) => Reply::Error(ApiError {
                            errno: None,
                            message: "nested batch".into(),
                            refused: false,
                        }),
                        r => self.serve(w, r),
                    })
                    .collect(),
            ),
            r => self.serve(w, r),
        })
    }

    /// Applies `changes` in order and returns each one's outcome; a failed change does
    /// not stop the ones after it. Used for changes that do not come from the control
    /// socket (keepalived.conf and its health checks).
    pub fn apply(&self, changes: &[Change]) -> Vec<Result<(), ChangeError>> {
        self.write(|w| changes.iter().map(|c| w.apply(c)).collect())
    }

    /// The one writer of the table: locks it, lets `f` apply changes ([`Writer::apply`])
    /// and read it, then brings the data plane in line once if anything changed.
    fn write<R>(&self, f: impl FnOnce(&mut Writer<'_>) -> R) -> R {
        let mut w = Writer {
            table: self.table(),
            plane: &*self.plane,
            sync: &self.sync,
            changed: false,
        };
        let r = f(&mut w);
        if w.changed {
            self.plane.sync(&w.table);
            drop(w);
            self.changed();
        }
        r
    }

    fn serve(&self, w: &mut Writer<'_>, req: Request) -> Reply {
        let t = &mut w.table;
        match req {
            Request::Change(c) => match w.apply(&c) {
                Ok(()) => Reply::Ok,
                Err(e) => Reply::Error(e.into()),
            },
            Request::Info => Reply::Info(t.info()),
            Request::ListServices { key } => {
                let mut list = t.snapshot();
                if let Some(k) = key {
                    list.retain(|s| s.cfg.key == k);
                    if list.is_empty() {
                        return error(Errno::NoService, "no such service");
                    }
                }
                self.plane.fill_listing(t, &mut list);
                Reply::Services(list)
            }
            Request::ListConns => Reply::Conns(
                self.plane
                    .connections(t)
                    .unwrap_or_else(|| t.conn_snapshot(self.now())),
            ),
            Request::GlobalStats => {
                let (stats, rates) = t.global_stats();
                Reply::GlobalStats { stats, rates }
            }
            Request::GetTimeouts => {
                let (tcp, tcpfin, udp) = t.timeouts.triple();
                Reply::Timeouts(TimeoutsReply { tcp, tcpfin, udp })
            }
            Request::ListDaemons => Reply::Daemons(t.daemons().to_vec()),
            Request::Sysctls => Reply::Sysctls(t.sysctls()),
            Request::Status => Reply::Status(StatusReply {
                version: env!("CARGO_PKG_VERSION").to_string(),
                dataplane: self.plane.name().to_string(),
                checkers: self.checkers.get().map(|f| f()).unwrap_or_default(),
                facts: {
                    let mut f = vec![(
                        "control.protocol".to_string(),
                        rvs_api::PROTOCOL_VERSION.to_string(),
                    )];
                    f.extend(self.plane.facts());
                    f.extend(self.sync.facts(&*self.plane, t));
                    for g in self.facts.lock().unwrap_or_else(|p| p.into_inner()).iter() {
                        f.extend(g());
                    }
                    f
                },
            }),
            Request::Drain { drain } => match self.drain.get() {
                Some(hook) => {
                    hook(drain);
                    Reply::Ok
                }
                None => Reply::Error(ApiError {
                    errno: Some(Errno::NotSupported),
                    message: format!(
                        "--{}: this rvsd announces no addresses (start it with --announce-interface NAME, docs/fleet.md)",
                        if drain { "drain" } else { "undrain" }
                    ),
                    refused: true,
                }),
            },
            Request::Batch(_) => unreachable!("handled by the caller"),
        }
    }

    /// Timers, scheduler housekeeping, trash: run every [`HOUSEKEEPING_MS`].
    pub fn housekeeping(&self) {
        let now = self.now();
        let mut t = self.table();
        t.expire(now);
        t.tick(now);
    }

    /// One rate-estimator step; run every 2 s.
    pub fn estimate(&self) {
        self.table().estimate();
    }

    /// Hands the table model's sync entries to the master; run every
    /// [`crate::sync::DRAIN_MS`].
    pub fn sync_drain(&self) {
        self.sync.drain(&self.shared);
    }

    /// The connection-sync daemons.
    pub fn sync(&self) -> &SyncControl {
        &self.sync
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{DestConfig, Forward, Protocol, ServiceConfig, ServiceKey};
    use rvs_dataplane::Unserved;
    use std::sync::Mutex;

    /// A plane that refuses tunnelling and records the table it is synced with (the
    /// number of real servers of each sync).
    struct Recorder(Arc<Mutex<Vec<usize>>>);

    impl DataPlane for Recorder {
        fn name(&self) -> &'static str {
            "recorder"
        }
        fn sync(&self, table: &Table) {
            let n = table
                .services()
                .map(|(id, _)| table.dests_of(id).iter().count())
                .sum();
            self.0.lock().unwrap().push(n);
        }
        fn unserved_dest(&self, d: &DestConfig) -> Option<Unserved> {
            (d.forward == Forward::Tunnel).then_some(Unserved::Forward(Forward::Tunnel))
        }
    }

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    fn dest(last: u8, forward: Forward) -> Change {
        Change::AddDest {
            svc: key(),
            dest: DestConfig::new([10, 0, 0, last].into(), 80).with_forward(forward),
        }
    }

    #[test]
    fn the_writer_admits_applies_and_syncs_the_plane_once_per_run() {
        let syncs = Arc::new(Mutex::new(Vec::new()));
        let d = Daemon::new(
            Arc::new(Shared::new(Table::new())),
            Box::new(Recorder(syncs.clone())),
        );
        assert_eq!(*syncs.lock().unwrap(), [0], "the start syncs once");
        let results = d.apply(&[
            Change::AddService(ServiceConfig::new(key())),
            dest(2, Forward::Masq),
            dest(3, Forward::Tunnel),
            dest(2, Forward::Masq),
            dest(4, Forward::Route),
        ]);
        assert_eq!(results[..2], [Ok(()), Ok(())]);
        assert_eq!(
            results[2].as_ref().unwrap_err().to_string(),
            "the recorder data plane does not serve tunnelling (-i, TUN)"
        );
        assert!(matches!(
            &results[3],
            Err(ChangeError::Table(e)) if e.errno == Errno::Exists
        ));
        assert_eq!(results[4], Ok(()));
        assert_eq!(
            *syncs.lock().unwrap(),
            [0, 2],
            "one sync after the run, with what was applied"
        );
        // Nothing applied: no sync. A refusal answers with the plane's message.
        let r = d.handle(Request::Change(dest(5, Forward::Tunnel)));
        let Reply::Error(e) = r else { panic!("{r:?}") };
        assert!(e.refused);
        assert_eq!(e.errno, Some(Errno::NotSupported));
        assert_eq!(*syncs.lock().unwrap(), [0, 2]);
        assert_eq!(d.handle(Request::Change(dest(5, Forward::Masq))), Reply::Ok);
        assert_eq!(*syncs.lock().unwrap(), [0, 2, 3]);
    }

    #[test]
    fn drain_is_refused_by_an_rvsd_that_announces_nothing_and_handed_over_otherwise() {
        let d = Daemon::new(
            Arc::new(Shared::new(Table::new())),
            Box::new(rvs_dataplane::NoDataPlane),
        );
        let r = d.handle(Request::Drain { drain: true });
        let Reply::Error(e) = r else { panic!("{r:?}") };
        assert!(
            e.refused && e.message.contains("--announce-interface"),
            "{e:?}"
        );
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        d.set_drain_hook(Box::new(move |drain| s.lock().unwrap().push(drain)));
        assert_eq!(d.handle(Request::Drain { drain: true }), Reply::Ok);
        assert_eq!(d.handle(Request::Drain { drain: false }), Reply::Ok);
        assert_eq!(*seen.lock().unwrap(), [true, false]);
    }
}
