//! keepalived's `lvs_sync_daemon` in rvsd: the connection-sync daemons follow a VRRP
//! instance — master while it is MASTER, backup otherwise (keepalived's
//! `ipvs_syncd_master` / `ipvs_syncd_backup`); without an instance both run all the time.
//! The sync id defaults to the instance's virtual router id (0 without one). The daemons
//! are started and stopped through the daemon's own requests, as `ipvsadm` would.

use rvs_core::{Change, SyncDaemonConfig};
use rvs_keepalived::Config;
use rvs_vrrp::InstanceStates;
use rvsd::Daemon;
use std::sync::Arc;
use tokio::sync::watch;

/// What `lvs_sync_daemon` asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The daemons' settings (`master` is set per role).
    pub cfg: SyncDaemonConfig,
    /// The VRRP instance whose state picks the role.
    pub instance: Option<String>,
}

/// The plan of a configuration: the global `lvs_sync_daemon`, else a `vrrp_instance`'s
/// deprecated `lvs_sync_daemon_interface`. An instance that does not exist clears it, as
/// keepalived does.
pub fn plan(cfg: &Config) -> Option<Plan> {
    let (ifn, instance, sd) = match &cfg.global.lvs_sync_daemon {
        Some(sd) => (sd.interface.clone(), sd.instance.clone(), Some(sd)),
        None => {
            let i = cfg
                .vrrp_instances
                .iter()
                .find(|i| i.lvs_sync_daemon_interface.is_some())?;
            (
                i.lvs_sync_daemon_interface.clone()?,
                Some(i.name.clone()),
                None,
            )
        }
    };
    let vrid = match &instance {
        Some(name) => match cfg.vrrp_instances.iter().find(|i| &i.name == name) {
            Some(i) => i.virtual_router_id,
            None => {
                tracing::error!(
                    "Unable to find vrrp instance {name} for lvs_sync_daemon - clearing lvs_syncd config"
                );
                return None;
            }
        },
        None => 0,
    };
    Some(Plan {
        cfg: SyncDaemonConfig {
            master: false,
            mcast_ifn: ifn,
            syncid: sd.and_then(|s| s.syncid).unwrap_or(vrid),
            sync_maxlen: sd.and_then(|s| s.maxlen).unwrap_or(0),
            mcast_group: sd.and_then(|s| s.group),
            mcast_port: sd.and_then(|s| s.port).unwrap_or(0),
            mcast_ttl: sd.and_then(|s| s.ttl).unwrap_or(0),
        },
        instance,
    })
}

/// The running follower of one plan.
pub struct LvsSync {
    plan: Option<Plan>,
    task: Option<tokio::task::JoinHandle<()>>,
    daemon: Arc<Daemon>,
}

impl LvsSync {
    pub fn start(
        daemon: Arc<Daemon>,
        plan: Option<Plan>,
        states: Option<watch::Receiver<InstanceStates>>,
    ) -> LvsSync {
        let mut s = LvsSync {
            plan: None,
            task: None,
            daemon,
        };
        s.apply(plan, states);
        s
    }

    /// A (re)loaded configuration: an unchanged plan keeps its daemons.
    pub fn apply(&mut self, plan: Option<Plan>, states: Option<watch::Receiver<InstanceStates>>) {
        if plan == self.plan && (self.task.is_some() || plan.is_none()) {
            return;
        }
        self.stop_all();
        self.plan = plan.clone();
        if let Some(p) = plan {
            let d = self.daemon.clone();
            self.task = Some(tokio::spawn(follow(d, p, states)));
        }
    }

    fn stop_all(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
        if self.plan.is_some() {
            for master in [true, false] {
                stop(&self.daemon, master);
            }
        }
    }

    /// Shutdown: both daemons stop.
    pub fn stop(mut self) {
        self.stop_all();
    }
}

fn start(d: &Daemon, cfg: &SyncDaemonConfig, master: bool) {
    let cfg = SyncDaemonConfig {
        master,
        ..cfg.clone()
    };
    let role = if master { "master" } else { "backup" };
    match d.apply(&[Change::StartDaemon(cfg)]).remove(0) {
        Ok(()) => tracing::info!("lvs_sync_daemon: {role} started"),
        Err(e) => tracing::error!("lvs_sync_daemon: starting the {role}: {e}"),
    }
}

fn stop(d: &Daemon, master: bool) {
    if d.apply(&[Change::StopDaemon { master }]).remove(0).is_ok() {
        let role = if master { "master" } else { "backup" };
        tracing::info!("lvs_sync_daemon: {role} stopped");
    }
}

/// Keeps the roles in line with the instance's state.
async fn follow(d: Arc<Daemon>, plan: Plan, mut states: Option<watch::Receiver<InstanceStates>>) {
    let mut running = (false, false); // (master, backup)
    loop {
        let want = match (&plan.instance, &states) {
            (None, _) => (true, true),
            (Some(name), Some(rx)) => {
                let master = rx.borrow().get(name).is_some_and(|s| *s == "MASTER");
                (master, !master)
            }
            (Some(_), None) => (false, true),
        };
        // stop first: a master that becomes backup leaves the role before taking the other
        if running.0 && !want.0 {
            stop(&d, true);
        }
        if running.1 && !want.1 {
            stop(&d, false);
        }
        if want.0 && !running.0 {
            start(&d, &plan.cfg, true);
        }
        if want.1 && !running.1 {
            start(&d, &plan.cfg, false);
        }
        running = want;
        match states.as_mut() {
            Some(rx) if plan.instance.is_some() => {
                if rx.changed().await.is_err() {
                    return;
                }
            }
            _ => std::future::pending::<()>().await,
        }
    }
}
