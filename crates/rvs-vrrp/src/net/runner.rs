//! The task that runs a configuration's instances: one loop owns the [`Engine`], the
//! sockets and the interface view, so the state machine is only ever stepped from one
//! place. Helper tasks feed it: a reader per socket, an interface poller, one task per
//! `vrrp_script`.

use super::link::{LinkInfo, Netlink};
use super::scripts;
use super::sock::{FrameSocket, VrrpSocket};
use crate::drop::{DropCounters, DropReason};
use crate::engine::{Engine, InstanceId, Output};
use crate::keepalived::{GroupSetup, InstanceSetup, RouterConfig};
use crate::packet::Family;
use crate::status::{InstanceStatus, Status};
use crate::validate::RxMeta;
use rvs_script::ScriptEnv;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// How often interfaces are looked at (link state for tracking, addresses for the
/// source of adverts).
pub const LINK_POLL: Duration = Duration::from_millis(250);
/// Drops of one reason on one instance are logged at most this often.
pub(super) const LOG_EVERY: Duration = Duration::from_secs(10);

/// The sockets are per interface, family and mode, shared by instances (keepalived's
/// socket pool).
pub(crate) type SockKey = (String, Family, bool);

pub(crate) enum Msg {
    Packet {
        key: SockKey,
        data: Vec<u8>,
        meta: Option<RxMeta>,
    },
    Links(Vec<(String, Option<LinkInfo>)>),
    Script {
        name: String,
        ok: bool,
    },
}

enum Cmd {
    Reload(Box<RouterConfig>, oneshot::Sender<()>),
    Stop(oneshot::Sender<()>),
}

/// A running VRRP configuration.
pub struct Router {
    cmd: mpsc::Sender<Cmd>,
    status: Arc<Mutex<Status>>,
    states: watch::Receiver<InstanceStates>,
    task: JoinHandle<()>,
}

/// Every instance's state (`INIT`, `BACKUP`, `MASTER`, `FAULT`) by name.
pub type InstanceStates = BTreeMap<String, &'static str>;

impl Router {
    /// Starts the instances of `cfg` on the current tokio runtime.
    ///
    /// # Errors
    /// The netlink socket cannot be opened.
    pub async fn start(cfg: RouterConfig) -> io::Result<Router> {
        let nl = Netlink::new()?;
        let status = Arc::new(Mutex::new(Status::default()));
        let (cmd_tx, cmd_rx) = mpsc::channel(4);
        let (msg_tx, msg_rx) = mpsc::channel(1024);
        let (watch_tx, watch_rx) = watch::channel(Vec::new());
        let (states_tx, states_rx) = watch::channel(InstanceStates::new());
        let poller = tokio::spawn(poll_links(nl.clone(), watch_rx, msg_tx.clone()));
        let frames = FrameSocket::open()
            .map_err(|e| tracing::error!("vrrp: no AF_PACKET socket, no gratuitous ARP/NA: {e}"))
            .ok();
        let mut r = Runner {
            origin: Instant::now(),
            engine: Engine::new(),
            nets: BTreeMap::new(),
            socks: BTreeMap::new(),
            links: BTreeMap::new(),
            nl,
            frames,
            env: ScriptEnv::from_config(cfg.script_user.as_ref()),
            groups: Vec::new(),
            script_tasks: Vec::new(),
            msg_tx,
            watch_tx,
            status: status.clone(),
            states: states_tx,
            unattributed: DropCounters::default(),
            logged: HashMap::new(),
            tried: HashMap::new(),
            ip_id: 0,
            poller,
        };
        r.apply(cfg).await;
        let task = tokio::spawn(r.run(cmd_rx, msg_rx));
        Ok(Router {
            cmd: cmd_tx,
            status,
            states: states_rx,
            task,
        })
    }

    /// A snapshot of every instance.
    pub fn status(&self) -> Status {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// The live status (for a status source that outlives this handle's borrow).
    pub fn status_handle(&self) -> Arc<Mutex<Status>> {
        self.status.clone()
    }

    /// Every instance's state, updated at each transition (what keepalived's
    /// `lvs_sync_daemon` follows).
    pub fn states(&self) -> watch::Receiver<InstanceStates> {
        self.states.clone()
    }

    /// SIGHUP: instances kept by name (same interface, VRID, family, version, mode) keep
    /// their state and take the new parameters; others are stopped (a master sends
    /// priority 0) or started.
    pub async fn reload(&self, cfg: RouterConfig) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Reload(Box::new(cfg), tx)).await.is_ok() {
            let _ = rx.await;
        }
    }

    /// Stops every instance: masters send priority 0 and remove their addresses, STOP is
    /// notified. Returns once that is done.
    pub async fn stop(self) {
        let (tx, rx) = oneshot::channel();
        if self.cmd.send(Cmd::Stop(tx)).await.is_ok() {
            let _ = rx.await;
        }
        let _ = self.task.await;
    }
}

pub(crate) struct Net {
    pub setup: InstanceSetup,
    pub drops: DropCounters,
    pub send_errors: u64,
    pub garp_sent: u64,
    /// Being removed by a reload: STOP is notified as DELETED.
    pub deleting: bool,
}

pub(crate) struct SockEntry {
    pub sock: Arc<VrrpSocket>,
    pub(super) reader: JoinHandle<()>,
}

pub(crate) struct Runner {
    pub(super) origin: Instant,
    pub(super) engine: Engine,
    pub(super) nets: BTreeMap<InstanceId, Net>,
    pub(super) socks: BTreeMap<SockKey, SockEntry>,
    pub(super) links: BTreeMap<String, LinkInfo>,
    pub(super) nl: Netlink,
    pub(super) frames: Option<FrameSocket>,
    pub(super) env: ScriptEnv,
    pub(super) groups: Vec<GroupSetup>,
    pub(super) script_tasks: Vec<JoinHandle<()>>,
    pub(super) msg_tx: mpsc::Sender<Msg>,
    pub(super) watch_tx: watch::Sender<Vec<String>>,
    pub(super) status: Arc<Mutex<Status>>,
    pub(super) states: watch::Sender<InstanceStates>,
    pub(super) unattributed: DropCounters,
    pub(super) logged: HashMap<(String, DropReason), (Instant, u64)>,
    /// The interface index a socket was last tried on.
    pub(super) tried: HashMap<SockKey, Option<u32>>,
    pub(super) ip_id: u16,
    pub(super) poller: JoinHandle<()>,
}

impl Runner {
    pub fn now(&self) -> Duration {
        self.origin.elapsed()
    }

    async fn run(mut self, mut cmd: mpsc::Receiver<Cmd>, mut msgs: mpsc::Receiver<Msg>) {
        loop {
            let wake = self.engine.next_deadline().map(|d| self.origin + d);
            let sleep = async {
                match wake {
                    Some(t) => tokio::time::sleep_until(t).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                c = cmd.recv() => match c {
                    Some(Cmd::Reload(cfg, done)) => {
                        self.apply(*cfg).await;
                        let _ = done.send(());
                    }
                    Some(Cmd::Stop(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    None => {
                        self.shutdown().await;
                        return;
                    }
                },
                _ = sleep => {
                    let out = self.engine.tick(self.now());
                    self.execute(out).await;
                }
                Some(m) = msgs.recv() => self.on_msg(m).await,
            }
            self.publish();
        }
    }

    async fn shutdown(&mut self) {
        let out = self.engine.shutdown(self.now());
        self.execute(out).await;
        for t in self.script_tasks.drain(..) {
            t.abort();
        }
        for (_, s) in std::mem::take(&mut self.socks) {
            s.reader.abort();
        }
        self.poller.abort();
        self.publish();
    }

    /// Applies a (new) configuration: the first one at start, then on every reload.
    pub(super) async fn apply(&mut self, cfg: RouterConfig) {
        let now = self.now();
        let mut by_name: BTreeMap<String, InstanceSetup> = cfg
            .instances
            .into_iter()
            .map(|i| (i.vrrp.name.clone(), i))
            .collect();
        let existing: Vec<InstanceId> = self.nets.keys().copied().collect();
        for id in existing {
            let name = self.nets[&id].setup.vrrp.name.clone();
            match by_name.remove(&name) {
                Some(new) if new.identity() == self.nets[&id].setup.identity() => {
                    tracing::info!(instance = %name, "vrrp: reload keeps the instance");
                    let out = self.engine.reconfigure(now, id, new.vrrp.clone());
                    if let Some(n) = self.nets.get_mut(&id) {
                        n.setup = new;
                    }
                    self.execute(out).await;
                }
                other => {
                    tracing::info!(instance = %name, "vrrp: reload removes the instance");
                    if let Some(n) = self.nets.get_mut(&id) {
                        n.deleting = true;
                    }
                    let out = self.engine.remove(now, id);
                    self.execute(out).await;
                    self.nets.remove(&id);
                    if let Some(new) = other {
                        by_name.insert(name, new);
                    }
                }
            }
        }
        let mut started = Vec::new();
        for (_, setup) in by_name {
            let id = self.engine.add(setup.vrrp.clone());
            self.nets.insert(
                id,
                Net {
                    setup,
                    drops: DropCounters::default(),
                    send_errors: 0,
                    garp_sent: 0,
                    deleting: false,
                },
            );
            started.push(id);
        }
        self.engine
            .set_groups(cfg.groups.iter().map(|g| g.group.clone()).collect());
        self.groups = cfg.groups;
        self.engine
            .set_scripts(cfg.scripts.iter().map(|s| s.hysteresis.clone()).collect());
        for t in self.script_tasks.drain(..) {
            t.abort();
        }
        for s in cfg.scripts {
            self.script_tasks
                .push(scripts::spawn(s, self.env.clone(), self.msg_tx.clone()));
        }
        // Look at the interfaces now, so sockets, source addresses and link tracking are
        // right before the new instances start.
        let names = self.interfaces();
        let _ = self.watch_tx.send(names.iter().cloned().collect());
        let mut seen = Vec::new();
        for n in &names {
            seen.push((n.clone(), self.nl.link(n).await.ok().flatten()));
        }
        self.on_links(seen).await;
        self.prune_sockets();
        for id in &started {
            self.clear_stale_vips(*id).await;
        }
        let out = self.engine.start(self.now(), &started);
        self.execute(out).await;
        self.publish();
    }

    /// A non-owner starting up must not hold the addresses (a previous run killed with
    /// SIGKILL leaves them behind).
    async fn clear_stale_vips(&mut self, id: InstanceId) {
        let Some(n) = self.nets.get(&id) else { return };
        if n.setup.vrrp.is_owner() {
            return;
        }
        for v in n.setup.vrrp.installed() {
            let dev = v.dev.clone().unwrap_or_else(|| n.setup.interface.clone());
            if let Some(l) = self.links.get(&dev) {
                let _ = self.nl.del_vip(l.index, &v).await;
            }
        }
    }

    /// Every interface an instance uses or tracks.
    fn interfaces(&self) -> BTreeSet<String> {
        let mut s = BTreeSet::new();
        for n in self.nets.values() {
            s.insert(n.setup.interface.clone());
            for v in n.setup.vrrp.installed() {
                if let Some(d) = v.dev {
                    s.insert(d);
                }
            }
            for t in &n.setup.vrrp.track {
                if let crate::config::TrackTarget::Interface(i) = &t.target {
                    s.insert(i.clone());
                }
            }
        }
        s
    }

    async fn on_msg(&mut self, m: Msg) {
        match m {
            Msg::Packet { key, data, meta } => self.on_packet(key, data, meta).await,
            Msg::Links(l) => self.on_links(l).await,
            Msg::Script { name, ok } => {
                let out = self.engine.script_result(self.now(), &name, ok);
                if !out.is_empty() {
                    tracing::info!(script = %name, ok, "vrrp: tracked script changed state");
                }
                self.execute(out).await;
            }
        }
    }

    fn publish(&self) {
        let mut instances = Vec::new();
        for (id, n) in &self.nets {
            let Some(i) = self.engine.get(*id) else {
                continue;
            };
            instances.push(InstanceStatus {
                name: n.setup.vrrp.name.clone(),
                interface: n.setup.interface.clone(),
                vrid: n.setup.vrrp.vrid,
                version: n.setup.vrrp.version as u8,
                state: i.state().name(),
                priority: i.base_priority(),
                effective_priority: i.effective_priority(),
                master: match i.state() {
                    crate::machine::State::Master => None,
                    _ => i.master(),
                },
                vips: n.setup.vrrp.advertised(),
                group: self.engine.group_of(*id).map(str::to_string),
                stats: *i.stats(),
                send_errors: n.send_errors,
                garp_sent: n.garp_sent,
                drops: n.drops,
            });
        }
        let states: InstanceStates = instances
            .iter()
            .map(|i| (i.name.clone(), i.state))
            .collect();
        self.states.send_if_modified(|s| {
            let changed = *s != states;
            *s = states;
            changed
        });
        if let Ok(mut s) = self.status.lock() {
            *s = Status {
                instances,
                unattributed: self.unattributed,
            };
        }
    }

    /// Carries out the engine's outputs (see [`super::exec`]).
    pub(crate) async fn execute(&mut self, out: Vec<Output>) {
        for o in out {
            self.execute_one(o).await;
        }
    }
}

pub(crate) fn sock_key(s: &InstanceSetup) -> SockKey {
    (s.interface.clone(), s.vrrp.family, !s.peers.is_empty())
}

pub(super) async fn read_loop(key: SockKey, sock: Arc<VrrpSocket>, tx: mpsc::Sender<Msg>) {
    let mut buf = vec![0u8; 65536];
    loop {
        match sock.recv(&mut buf).await {
            Ok((n, meta)) => {
                let m = Msg::Packet {
                    key: key.clone(),
                    data: buf[..n].to_vec(),
                    meta,
                };
                if tx.send(m).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(interface = %key.0, "vrrp: receive error: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn poll_links(nl: Netlink, names: watch::Receiver<Vec<String>>, tx: mpsc::Sender<Msg>) {
    let mut every = tokio::time::interval(LINK_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let list = names.borrow().clone();
        let mut seen = Vec::with_capacity(list.len());
        for n in list {
            match nl.link(&n).await {
                Ok(l) => seen.push((n, l)),
                Err(e) => tracing::debug!(interface = %n, "vrrp: netlink: {e}"),
            }
        }
        if tx.send(Msg::Links(seen)).await.is_err() {
            return;
        }
    }
}
