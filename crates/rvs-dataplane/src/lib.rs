//! # rvs-dataplane — what a data plane gets from the daemon and owes it.
//!
//! The table ([`rvs_core::Table`]) is the desired state and the reference model. The daemon
//! shares it with the data plane through [`Shared`]; after every change it calls
//! [`DataPlane::sync`], and the data plane brings its own state (listening sockets, BPF
//! maps) in line. A data plane never edits the configuration; it feeds traffic into the
//! table (scheduling decisions, state changes, counters) or reports counts it measured.

use rvs_core::{ConnInfo, Millis, ServiceInfo, SyncEntry, SyncInstall, SyncScope, SyncSkip, Table};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Instant;

/// The table and the clock the model runs on, shared by the daemon and its data plane.
pub struct Shared {
    table: Mutex<Table>,
    epoch: Instant,
}

impl Shared {
    pub fn new(table: Table) -> Shared {
        Shared {
            table: Mutex::new(table),
            epoch: Instant::now(),
        }
    }

    /// Milliseconds on the model's monotonic clock.
    pub fn now(&self) -> Millis {
        self.epoch.elapsed().as_millis() as Millis
    }

    /// The monotonic instant of model time `t`.
    pub fn instant(&self, t: Millis) -> Instant {
        self.epoch + std::time::Duration::from_millis(t)
    }

    /// The table, locked. A panic while it was held leaves it usable: every table operation
    /// validates before it mutates, so the poison is ignored.
    pub fn table(&self) -> MutexGuard<'_, Table> {
        self.table.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Where a connection-sync master's entries go (the master's buffers).
pub type SyncSink = Arc<dyn Fn(&[SyncEntry]) + Send + Sync>;

/// A packet-forwarding data plane.
pub trait DataPlane: Send + Sync {
    /// `none`, `proxy` or `xdp`.
    fn name(&self) -> &'static str;

    /// Brings the data plane in line with the table. Called with the table locked, after
    /// every change and once at start; must not block.
    fn sync(&self, table: &Table);

    /// Facts for `rvsadm --status` (name, value).
    fn facts(&self) -> Vec<(String, String)> {
        Vec::new()
    }

    /// A data plane that keeps its own connection table (XDP: BPF maps) fills in the
    /// connection counts of a listing here (`activeconns`, `inactconns`, `persistconns`,
    /// `overloaded`). Traffic counters are not filled here: they are added to the table
    /// with [`Table::add_dest_stats`] as they are read, so `-Z` and the rate estimator
    /// work the same for every data plane.
    fn fill_listing(&self, _table: &Table, _services: &mut [ServiceInfo]) {}

    /// The connection table for `-Lc`, when the data plane keeps its own; `None` means the
    /// table's own entries are the truth (the proxy plane).
    fn connections(&self, _table: &Table) -> Option<Vec<ConnInfo>> {
        None
    }

    /// Connection sync, backup: installs entries a sync master sent (`ip_vs_proc_conn`),
    /// one result per entry. Called with the table locked. The default is the table's own
    /// model, for planes whose connection table is the table's.
    fn install_synced(
        &self,
        table: &mut Table,
        now: Millis,
        entries: &[SyncEntry],
    ) -> Vec<Result<SyncInstall, SyncSkip>> {
        entries
            .iter()
            .map(|e| table.install_synced(now, e))
            .collect()
    }

    /// Connection sync, master: which of the table model's entries may be sent.
    fn sync_scope(&self) -> SyncScope {
        SyncScope::All
    }

    /// Connection sync, master: a plane that decides in its own packet path what to send
    /// (XDP) delivers the entries to `sink` while it is set; the other planes leave it to
    /// the table's model ([`Table::take_sync_out`]).
    fn set_sync_sink(&self, _sink: Option<SyncSink>) {}

    /// What an operator must know when a sync master starts on this plane (a warning).
    fn sync_caveat(&self) -> Option<&'static str> {
        None
    }
}

/// No forwarding at all: the table only (tests, dry runs).
pub struct NoDataPlane;

impl DataPlane for NoDataPlane {
    fn name(&self) -> &'static str {
        "none"
    }

    fn sync(&self, _table: &Table) {}
}
