//! VRRP in rvsd: the `vrrp_instance` blocks of `rvsd -f keepalived.conf` run on
//! [`rvs_vrrp::Router`] beside the services and checkers, which are loaded on master and
//! backup alike (the proxy binds its VIPs with `IP_FREEBIND`, so a backup serves the
//! moment an address lands on it). SIGHUP reloads instances, SIGTERM stops them (a master
//! sends priority 0 first, so its backup takes over after Skew_Time), and every
//! instance's state, priorities and counters are `vrrp.*` facts of `rvsadm --status`.

use rvs_keepalived::Config;
use rvs_vrrp::{router_config, Router, Status};
use rvsd::Daemon;
use std::sync::{Arc, Mutex};

/// Where `Status` finds VRRP (the router starts with the first configuration that has
/// instances, possibly on a reload).
type StatusSlot = Arc<Mutex<Option<Arc<Mutex<Status>>>>>;

pub struct Vrrp {
    router: Option<Router>,
    slot: StatusSlot,
}

impl Vrrp {
    /// Starts the instances of `cfg`, if any, and makes their state part of the
    /// daemon's `Status` facts.
    pub async fn start(cfg: &Config, daemon: &Daemon) -> Vrrp {
        let slot: StatusSlot = Arc::new(Mutex::new(None));
        let s = slot.clone();
        daemon.add_fact_source(Box::new(move || {
            let status = s.lock().ok().and_then(|g| g.clone());
            status
                .and_then(|st| st.lock().ok().map(|x| x.facts()))
                .unwrap_or_default()
        }));
        let mut v = Vrrp { router: None, slot };
        v.apply(cfg).await;
        v
    }

    async fn apply(&mut self, cfg: &Config) {
        let (rc, warnings) = router_config(cfg);
        for w in &warnings {
            tracing::warn!("{w}");
        }
        match &self.router {
            Some(r) => r.reload(rc).await,
            None if rc.is_empty() => {}
            None => match Router::start(rc).await {
                Ok(r) => {
                    if let Ok(mut g) = self.slot.lock() {
                        *g = Some(r.status_handle());
                    }
                    tracing::info!(
                        instances = r.status().instances.len(),
                        "vrrp: instances started"
                    );
                    self.router = Some(r);
                }
                Err(e) => tracing::error!("vrrp: cannot start: {e}"),
            },
        }
    }

    /// True once instances run.
    pub fn running(&self) -> bool {
        self.router.is_some()
    }

    /// The instances' state now (empty when none run).
    pub fn status(&self) -> rvs_vrrp::Status {
        let slot = self.slot.lock().ok().and_then(|g| g.clone());
        slot.and_then(|st| st.lock().ok().map(|x| x.clone()))
            .unwrap_or_default()
    }

    /// Every instance's state, as it changes (none without instances).
    pub fn states(&self) -> Option<tokio::sync::watch::Receiver<rvs_vrrp::InstanceStates>> {
        self.router.as_ref().map(|r| r.states())
    }

    /// SIGHUP with a new, valid configuration.
    pub async fn reload(&mut self, cfg: &Config) {
        self.apply(cfg).await;
    }

    /// SIGTERM: masters send priority 0 and remove their addresses.
    pub async fn stop(self) {
        if let Some(r) = self.router {
            r.stop().await;
        }
    }
}
