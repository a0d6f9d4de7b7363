//! The daemon's state and the dispatch of control requests.

use rvs_api::{ApiError, CheckerStatus, Reply, Request, StatusReply, TimeoutsReply};
use rvs_core::{Errno, Millis, Table};
use rvs_dataplane::{DataPlane, Shared};
use std::sync::{Arc, MutexGuard, OnceLock};

/// How often timers, scheduler housekeeping and the trash run.
pub const HOUSEKEEPING_MS: u64 = 1000;

pub struct Daemon {
    shared: Arc<Shared>,
    plane: Box<dyn DataPlane>,
    /// Health checker states for `Status` (set once keepalived.conf checkers run).
    checkers: OnceLock<CheckerSource>,
    /// More `Status` facts (VRRP), after the data plane's.
    facts: OnceLock<FactSource>,
    /// Told after every change of the table (the state file).
    on_change: OnceLock<ChangeHook>,
}

/// Called after a change of the table, with the table unlocked; must not block.
pub type ChangeHook = Box<dyn Fn() + Send + Sync>;

/// Gives extra `(name, value)` facts for `Status`; same locking rule as [`CheckerSource`].
pub type FactSource = Box<dyn Fn() -> Vec<(String, String)> + Send + Sync>;

/// Gives the current state of every health checker. Called with the table locked: it
/// must not lock the table itself.
pub type CheckerSource = Box<dyn Fn() -> Vec<CheckerStatus> + Send + Sync>;

fn error(errno: Errno, message: &str) -> Reply {
    Reply::Error(ApiError {
        errno: Some(errno),
        message: message.to_string(),
    })
}

impl Daemon {
    pub fn new(shared: Arc<Shared>, plane: Box<dyn DataPlane>) -> Daemon {
        let d = Daemon {
            shared,
            plane,
            checkers: OnceLock::new(),
            facts: OnceLock::new(),
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

    /// Where `Status` gets extra facts from (VRRP state and counters).
    pub fn set_fact_source(&self, source: FactSource) {
        let _ = self.facts.set(source);
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

    /// Serves one request.
    pub fn handle(&self, req: Request) -> Reply {
        let mut table = self.table();
        let mutation = req.is_mutation();
        let reply = match req {
            Request::Batch(reqs) => Reply::Batch(
                reqs.into_iter()
                    .map(|r| match r {
                        Request::Batch(_) => Reply::Error(ApiError {
                            errno: None,
                            message: "nested batch".into(),
                        }),
                        r => self.apply(&mut table, r),
                    })
                    .collect(),
            ),
            r => self.apply(&mut table, r),
        };
        if mutation {
            self.plane.sync(&table);
            drop(table);
            self.changed();
        }
        reply
    }

    fn apply(&self, t: &mut Table, req: Request) -> Reply {
        fn done(r: Result<impl Sized, rvs_core::TableError>) -> Reply {
            match r {
                Ok(_) => Reply::Ok,
                Err(e) => Reply::Error(e.into()),
            }
        }
        match req {
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
            Request::AddService(cfg) => done(t.add_service(cfg)),
            Request::EditService(cfg) => done(t.edit_service(cfg)),
            Request::DelService(key) => done(t.del_service(&key)),
            Request::Flush => {
                t.flush();
                Reply::Ok
            }
            Request::Zero(key) => done(t.zero(key.as_ref())),
            Request::AddDest { svc, dest } => done(t.add_dest(&svc, dest)),
            Request::EditDest { svc, dest } => done(t.edit_dest(&svc, dest)),
            Request::DelDest { svc, addr, port } => done(t.del_dest(&svc, addr, port)),
            Request::SetTimeouts { tcp, tcpfin, udp } => {
                t.set_timeouts(tcp, tcpfin, udp);
                Reply::Ok
            }
            Request::GetTimeouts => {
                let (tcp, tcpfin, udp) = t.timeouts.triple();
                Reply::Timeouts(TimeoutsReply { tcp, tcpfin, udp })
            }
            Request::StartDaemon(cfg) => done(t.start_daemon(cfg)),
            Request::StopDaemon { master } => done(t.stop_daemon(master)),
            Request::ListDaemons => Reply::Daemons(t.daemons().to_vec()),
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
                    f.extend(self.facts.get().map(|g| g()).unwrap_or_default());
                    f
                },
            }),
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
}
