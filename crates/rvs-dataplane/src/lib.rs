//! # rvs-dataplane — what a data plane gets from the daemon and owes it.
//!
//! The table ([`rvs_core::Table`]) is the desired state and the reference model. The daemon
//! shares it with the data plane through [`Shared`]; after every change it calls
//! [`DataPlane::sync`], and the data plane brings its own state (listening sockets, BPF
//! maps) in line. A data plane never edits the configuration; it feeds traffic into the
//! table (scheduling decisions, state changes, counters) or reports counts it measured.
//!
//! A data plane says up front what it cannot serve ([`DataPlane::admit`]): the daemon asks
//! before every change, and a refused change never reaches the table. Each case has one
//! message ([`Unserved`], [`Refusal`]), whichever plane refuses it and whoever asked (an
//! `rvsadm` command, a rules file, keepalived.conf).

use rvs_core::{
    Change, ConnInfo, DestConfig, Forward, Millis, ServiceConfig, ServiceInfo, SyncEntry,
    SyncInstall, SyncScope, SyncSkip, Table,
};
use std::fmt;
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

/// Something a data plane cannot serve.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unserved {
    /// `-f`, `virtual_server fwmark`.
    Fwmark,
    /// `--sctp-service`, `protocol SCTP`.
    Sctp,
    /// A service on port 0 (all ports of the address).
    PortZero,
    /// `--pe sip`, `persistence_engine sip`.
    SipPe,
    /// A forwarding method (`-g`, `-i`; `lb_kind DR`, `TUN`).
    Forward(Forward),
}

impl fmt::Display for Unserved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unserved::Fwmark => "fwmark services",
            Unserved::Sctp => "SCTP services",
            Unserved::PortZero => "port-0 (all ports) services",
            Unserved::SipPe => "the SIP persistence engine",
            Unserved::Forward(Forward::Route) => "direct routing (-g, DR)",
            Unserved::Forward(Forward::Tunnel) => "tunnelling (-i, TUN)",
            Unserved::Forward(Forward::Masq) => "masquerading (-m, NAT)",
            Unserved::Forward(Forward::Local) => "local delivery",
        })
    }
}

/// A change a data plane refused: the one message of its case.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The plane's [`DataPlane::name`].
    pub plane: &'static str,
    pub what: Unserved,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the {} data plane does not serve {}",
            self.plane, self.what
        )
    }
}

impl std::error::Error for Refusal {}

/// A packet-forwarding data plane.
pub trait DataPlane: Send + Sync {
    /// `none`, `proxy` or `xdp`.
    fn name(&self) -> &'static str;

    /// What of this service the plane cannot serve, if anything.
    fn unserved_service(&self, _cfg: &ServiceConfig) -> Option<Unserved> {
        None
    }

    /// What of this real server the plane cannot serve, if anything.
    fn unserved_dest(&self, _dest: &DestConfig) -> Option<Unserved> {
        None
    }

    /// Admits a change, or refuses it when it would put in the table a service or a real
    /// server this plane cannot serve. The daemon asks before every change; a plane that
    /// says nothing serves everything.
    ///
    /// # Errors
    /// The refusal, naming the plane and what it does not serve.
    fn admit(&self, change: &Change) -> Result<(), Refusal> {
        let what = match (change.service_config(), change.dest_config()) {
            (Some(svc), _) => self.unserved_service(svc),
            (_, Some((_, dest))) => self.unserved_dest(dest),
            _ => None,
        };
        match what {
            Some(what) => Err(Refusal {
                plane: self.name(),
                what,
            }),
            None => Ok(()),
        }
    }

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

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Protocol, ServiceKey};

    struct NoDr;

    impl DataPlane for NoDr {
        fn name(&self) -> &'static str {
            "test"
        }
        fn sync(&self, _table: &Table) {}
        fn unserved_dest(&self, d: &DestConfig) -> Option<Unserved> {
            (d.forward == Forward::Route).then_some(Unserved::Forward(Forward::Route))
        }
    }

    #[test]
    fn admit_refuses_what_the_plane_names_with_one_message() {
        let svc = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        };
        let dest = DestConfig::new("10.0.0.2".parse().unwrap(), 80);
        let dr = Change::AddDest {
            svc,
            dest: dest.clone(),
        };
        let e = NoDr.admit(&dr).unwrap_err();
        assert_eq!(
            e.to_string(),
            "the test data plane does not serve direct routing (-g, DR)"
        );
        let nat = Change::EditDest {
            svc,
            dest: dest.with_forward(Forward::Masq),
        };
        assert_eq!(NoDr.admit(&nat), Ok(()));
        assert_eq!(NoDr.admit(&Change::Flush), Ok(()));
        assert_eq!(NoDataPlane.admit(&dr), Ok(()));
    }
}
