//! The connection-sync daemons in rvsd: `--start-daemon` / `--stop-daemon` (and
//! keepalived's `lvs_sync_daemon`) start and stop a real master and backup
//! ([`rvs_sync::SyncDaemons`]), the table records what runs (for `-L --daemon`), and the
//! data plane is told: a master's entries come from the plane's packet path (XDP) or from
//! the table's model (the other planes), a backup's go to the plane's installer.

use rvs_core::{Errno, SyncDaemonConfig, Table, TableError};
use rvs_dataplane::{DataPlane, Shared, SyncSink};
use rvs_sync::{Installer, SyncDaemons};
use std::sync::{Arc, Mutex, MutexGuard};

/// How often the table model's outbox is handed to the master.
pub const DRAIN_MS: u64 = 100;

pub struct SyncControl {
    daemons: Mutex<SyncDaemons>,
    installer: Installer,
}

impl SyncControl {
    pub fn new(shared: Arc<Shared>, plane: Arc<dyn DataPlane>) -> SyncControl {
        let installer: Installer = Arc::new(move |entries| {
            let now = shared.now();
            let mut t = shared.table();
            plane.install_synced(&mut t, now, &entries)
        });
        SyncControl {
            daemons: Mutex::new(SyncDaemons::new()),
            installer,
        }
    }

    fn daemons(&self) -> MutexGuard<'_, SyncDaemons> {
        self.daemons.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `ipvsadm --start-daemon`: the daemon runs (sockets open) before the table records
    /// it; an unknown interface is ENODEV, a second daemon of a role EEXIST.
    ///
    /// # Errors
    /// What the kernel would answer; nothing changed then.
    pub fn start(
        &self,
        t: &mut Table,
        plane: &dyn DataPlane,
        cfg: SyncDaemonConfig,
    ) -> Result<(), TableError> {
        if t.daemons().iter().any(|d| d.master == cfg.master) {
            return Err(TableError::new(Errno::Exists, "daemon has already run"));
        }
        if tokio::runtime::Handle::try_current().is_err() {
            return Err(TableError::new(
                Errno::NotSupported,
                "connection sync needs rvsd's runtime",
            ));
        }
        let mut ds = self.daemons();
        let resolved = ds.start(&cfg, t.sync_params(), self.installer.clone())?;
        t.start_daemon(resolved)?;
        if cfg.master {
            t.set_sync_master(Some(plane.sync_scope()));
            let m = ds.master().expect("just started");
            let sink: SyncSink = Arc::new(m.offer_handle());
            plane.set_sync_sink(Some(sink));
            if let Some(why) = plane.sync_caveat() {
                tracing::warn!("sync master on the {} data plane: {why}", plane.name());
            }
        }
        Ok(())
    }

    /// `ipvsadm --stop-daemon`.
    ///
    /// # Errors
    /// ESRCH when no daemon of that role runs.
    pub fn stop(
        &self,
        t: &mut Table,
        plane: &dyn DataPlane,
        master: bool,
    ) -> Result<(), TableError> {
        t.stop_daemon(master)?;
        if master {
            plane.set_sync_sink(None);
            t.set_sync_master(None);
        }
        self.daemons().stop(master);
        Ok(())
    }

    /// Hands what the table's model decided to send to the master (planes whose entries
    /// live in the table); call every [`DRAIN_MS`].
    pub fn drain(&self, shared: &Shared) {
        let (out, dropped) = {
            let mut t = shared.table();
            if t.sync_master().is_none() {
                return;
            }
            t.take_sync_out()
        };
        let ds = self.daemons();
        if let Some(m) = ds.master() {
            m.stats().dropped_plane.add(dropped);
            if !out.is_empty() {
                m.offer(&out);
            }
        }
    }

    /// The sysctls changed.
    pub fn params_changed(&self, t: &Table) {
        self.daemons().set_params(t.sync_params());
    }

    /// `sync.*` facts for `rvsadm --status`.
    pub fn facts(&self, plane: &dyn DataPlane, t: &Table) -> Vec<(String, String)> {
        let ds = self.daemons();
        let mut f = ds.facts();
        if ds.master().is_some() {
            if let Some(why) = plane.sync_caveat() {
                f.push(("sync.master.note".into(), why.into()));
            }
        }
        let p = t.sync_params();
        for name in rvs_core::sync::SYNC_SYSCTLS {
            if let Some(v) = p.get(name) {
                f.push((format!("sync.sysctl.{name}"), v.replace('\t', " ")));
            }
        }
        f
    }
}
