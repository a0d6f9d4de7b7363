//! The virtual servers of a keepalived.conf as table [`Change`]s, moved by the health
//! checkers' verdicts: keepalived's `ipwrapper.c`, without I/O. This is the one owner of
//! how keepalived.conf maps to the table: which services exist, which real servers are
//! in the table and with what weight (`inhibit_on_failure`: weight 0 instead of removal),
//! the sorry server, quorum with hysteresis, `alpha` servers starting outside, `omega`
//! scripts at stop, notify scripts, and what a reload changes ([`Pool::reload`]).
//!
//! The checkers (`rvs-check`) never see the table: they report [`Verdict`]s (a real
//! server is up or down, its `misc_dynamic` weight changed) and, at a (re)load, each real
//! server's [`ServerHealth`]. The pool answers with [`Effect`]s in the order keepalived
//! performs them: table changes for the daemon's writer, notify scripts to run.
//!
//! Per real server: `alive` (counts for the pool, as the checkers last said), `set`
//! (present in the table, perhaps with weight 0 when `inhibit_on_failure`), `weight`
//! (keepalived's effective weight: the configured one plus `misc_dynamic` parts).

mod reload;

pub use reload::{pair, Paired};

use crate::config::Config;
use crate::lvs::VsTarget;
use crate::ops::{desired_vs, service_keys};
use crate::script::Script;
use rvs_core::{Change, DestConfig, ServiceConfig, SockAddr};
use std::net::IpAddr;

/// A real server of the running configuration: its virtual server's position in
/// [`Config::virtual_servers`] and its own in that virtual server's `real_servers`. The
/// checkers and the pool are built from the same configuration, so they agree on it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ServerRef {
    pub vs: usize,
    pub rs: usize,
}

/// A real server as its checkers see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServerHealth {
    /// None of its checkers fails.
    pub up: bool,
    /// keepalived's effective weight (may leave the table's range: see [`real_weight`]).
    pub weight: i64,
}

/// The checkers' state of every real server, read at a (re)load.
pub trait Health {
    fn server(&self, s: ServerRef) -> ServerHealth;
}

/// What the health checkers report while they run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The real server is up (none of its checkers fails) or down. Reported when it
    /// changes, and once when a server's first check confirms the state it started in
    /// (keepalived runs the notify script then too). `weight` is its effective weight.
    Server {
        server: ServerRef,
        up: bool,
        weight: i64,
    },
    /// MISC_CHECK with `misc_dynamic`: the server's effective weight changed.
    Weight { server: ServerRef, weight: i64 },
}

/// What the pool asks for, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A change for the daemon's writer.
    Change(Change),
    /// Run a notify script (real server up/down, quorum up/down).
    Run { script: Script, why: String },
}

/// `real_weight()`: the weight the table gets.
pub fn real_weight(w: i64) -> u32 {
    w.clamp(0, i64::from(i32::MAX)) as u32
}

/// One virtual server as the pool maps it.
#[derive(Clone, Debug)]
pub struct VsPlan {
    pub id: VsTarget,
    /// `TCP 10.0.0.1:80`, `FWM 7`, `group WEB`: for logs.
    pub name: String,
    pub services: Vec<ServiceConfig>,
    pub quorum: u32,
    pub hysteresis: u32,
    pub quorum_up: Option<Script>,
    pub quorum_down: Option<Script>,
    pub omega: bool,
    pub sorry: Option<SorryPlan>,
    pub rss: Vec<RsPlan>,
}

#[derive(Clone, Debug)]
pub struct SorryPlan {
    pub addr: IpAddr,
    pub port: u16,
    pub inhibit: bool,
    /// One per service of the virtual server.
    pub dests: Vec<DestConfig>,
}

#[derive(Clone, Debug)]
pub struct RsPlan {
    pub addr: IpAddr,
    pub port: u16,
    pub inhibit: bool,
    pub notify_up: Option<Script>,
    pub notify_down: Option<Script>,
    /// One per service of the virtual server; the weight is replaced when applied.
    pub dests: Vec<DestConfig>,
}

/// `TCP 10.0.0.1:80`, `FWM 7`, `group WEB`: how logs name a virtual server.
pub fn vs_name(cfg: &Config, vs: &crate::lvs::VirtualServer) -> String {
    match &vs.target {
        VsTarget::Group(g) => format!("group {g}"),
        _ => service_keys(cfg, vs)
            .first()
            .map(|k| k.to_string())
            .unwrap_or_default(),
    }
}

/// The plan of every virtual server of `cfg`, in its order.
pub fn plan(cfg: &Config) -> Vec<VsPlan> {
    cfg.virtual_servers
        .iter()
        .enumerate()
        .map(|(i, vs)| {
            let desired = desired_vs(cfg, i, vs);
            let rss = vs
                .real_servers
                .iter()
                .enumerate()
                .map(|(ri, rs)| RsPlan {
                    addr: rs.addr,
                    port: rs.port,
                    inhibit: vs.inhibit(rs),
                    notify_up: rs.notify_up.clone(),
                    notify_down: rs.notify_down.clone(),
                    dests: desired
                        .dests
                        .iter()
                        .map(|per_svc| per_svc[ri].clone())
                        .collect(),
                })
                .collect();
            let sorry = vs.sorry_server.as_ref().map(|s| SorryPlan {
                addr: s.addr,
                port: s.port,
                inhibit: s.inhibit,
                dests: desired.sorry.clone().unwrap_or_default(),
            });
            VsPlan {
                id: vs.target.clone(),
                name: vs_name(cfg, vs),
                services: desired.services,
                quorum: vs.quorum,
                hysteresis: vs.hysteresis,
                quorum_up: vs.quorum_up.clone(),
                quorum_down: vs.quorum_down.clone(),
                omega: vs.omega,
                sorry,
                rss,
            }
        })
        .collect()
}

#[derive(Clone, Debug)]
struct RsRun {
    plan: RsPlan,
    alive: bool,
    set: bool,
    weight: i64,
}

#[derive(Clone, Debug)]
struct SorryRun {
    plan: SorryPlan,
    alive: bool,
    set: bool,
}

#[derive(Clone, Debug)]
struct VsRun {
    plan: VsPlan,
    quorum_up: bool,
    sorry: Option<SorryRun>,
    rss: Vec<RsRun>,
}

/// The running keepalived virtual servers (`ipwrapper.c`).
#[derive(Debug, Default)]
pub struct Pool {
    vss: Vec<VsRun>,
    /// `rs_init_notifies`: notify_up for servers that start alive.
    rs_init_notifies: bool,
}

/// `lvs_flush` (first load only) and `lvs_timeouts`.
fn global_effects(cfg: &Config, first: bool) -> Vec<Effect> {
    let mut out = Vec::new();
    if first && cfg.global.lvs_flush {
        out.push(Effect::Change(Change::Flush));
    }
    if let Some(t) = cfg.global.lvs_timeouts {
        out.push(Effect::Change(Change::SetTimeouts {
            tcp: t.tcp.unwrap_or(0),
            tcpfin: t.tcpfin.unwrap_or(0),
            udp: t.udp.unwrap_or(0),
        }));
    }
    out
}

impl Pool {
    /// A first start (`init_services`): `lvs_flush`, `lvs_timeouts`, then every virtual
    /// server with the real servers `health` says are up (and inhibited ones with weight 0).
    pub fn load(&mut self, cfg: &Config, health: &dyn Health) -> Vec<Effect> {
        let mut out = global_effects(cfg, true);
        self.rs_init_notifies = cfg.global.rs_init_notifies;
        self.vss = plan(cfg)
            .into_iter()
            .enumerate()
            .map(|(vi, p)| new_vs(p, vi, health))
            .collect();
        for vi in 0..self.vss.len() {
            self.init_vs(vi, health, &mut out);
        }
        out
    }

    /// What the checkers report while they run.
    pub fn on_verdict(&mut self, v: &Verdict, out: &mut Vec<Effect>) {
        match *v {
            Verdict::Server { server, up, weight } => {
                let Some(rs) = self.rs_mut(server) else {
                    return;
                };
                rs.weight = weight;
                if rs.alive == up {
                    // The first check confirmed the state the server started in.
                    self.rs_notify(server.vs, server.rs, out);
                } else {
                    self.perform_svr_state(server.vs, server.rs, up, true, out);
                }
            }
            Verdict::Weight { server, weight } => self.update_weight(server, weight, out),
        }
    }

    /// The daemon stops: with `omega`, notify_down for alive servers and quorum_down.
    /// The table is left as it is (rvsd keeps serving established flows across
    /// restarts; keepalived would delete its services).
    pub fn stop(&mut self) -> Vec<Effect> {
        let mut out = Vec::new();
        for vi in 0..self.vss.len() {
            for ri in 0..self.vss[vi].rss.len() {
                self.clear_rs(vi, ri, true, &mut out);
            }
            self.vs_going_down(vi, true, &mut out);
        }
        out
    }

    /// The services of the virtual servers whose quorum is lost (with a sorry server,
    /// the table still has a server with a weight: a fleet director withdraws their
    /// addresses all the same, `rvsd::announce`).
    pub fn quorum_lost(&self) -> Vec<rvs_core::ServiceKey> {
        self.vss
            .iter()
            .filter(|v| !v.quorum_up)
            .flat_map(|v| v.plan.services.iter().map(|s| s.key))
            .collect()
    }

    fn rs_mut(&mut self, s: ServerRef) -> Option<&mut RsRun> {
        self.vss.get_mut(s.vs)?.rss.get_mut(s.rs)
    }

    /// `init_service_vs`: services, real servers, quorum, inhibited sorry server.
    fn init_vs(&mut self, vi: usize, health: &dyn Health, out: &mut Vec<Effect>) {
        for s in &self.vss[vi].plan.services {
            out.push(Effect::Change(Change::SetService(s.clone())));
        }
        for ri in 0..self.vss[vi].rss.len() {
            self.init_rs(vi, ri, health.server(ServerRef { vs: vi, rs: ri }), out);
        }
        self.update_quorum_state(vi, true, out);
        self.sorry_inhibit_init(vi, out);
    }

    /// `init_service_rs` for one new real server.
    fn init_rs(&mut self, vi: usize, ri: usize, h: ServerHealth, out: &mut Vec<Effect>) {
        let rs = &mut self.vss[vi].rss[ri];
        rs.weight = h.weight;
        if (h.up && !rs.alive) || (rs.plan.inhibit && !rs.set) {
            self.ipvs_add(vi, ri, !h.up, out);
            if h.up {
                self.vss[vi].rss[ri].alive = true;
                if self.rs_init_notifies {
                    self.rs_notify(vi, ri, out);
                }
            }
        }
    }

    /// The table entries of a real server, one per service.
    fn dests(&self, vi: usize, ri: usize, weight: u32) -> Vec<Effect> {
        let vs = &self.vss[vi];
        vs.rss[ri]
            .plan
            .dests
            .iter()
            .zip(&vs.plan.services)
            .map(|(d, s)| {
                Effect::Change(Change::SetDest {
                    svc: s.key,
                    dest: DestConfig {
                        weight,
                        ..d.clone()
                    },
                })
            })
            .collect()
    }

    /// `ipvs_cmd(ADD_DEST)`: add, or restore the weight of an inhibited server. `failing`:
    /// the server still counts a failing checker (keepalived's `num_failed > 0`); an
    /// inhibited server not in the table yet then goes in with weight 0.
    fn ipvs_add(&mut self, vi: usize, ri: usize, failing: bool, out: &mut Vec<Effect>) {
        let rs = &self.vss[vi].rss[ri];
        let weight = if !rs.set && rs.plan.inhibit && failing {
            0
        } else {
            real_weight(rs.weight)
        };
        out.extend(self.dests(vi, ri, weight));
        self.vss[vi].rss[ri].set = true;
    }

    /// `ipvs_cmd(DEL_DEST)`: delete, or set weight 0 with inhibit_on_failure (`force`
    /// deletes anyway: the server leaves the configuration).
    fn ipvs_del(&mut self, vi: usize, ri: usize, force: bool, out: &mut Vec<Effect>) {
        if self.vss[vi].rss[ri].plan.inhibit && !force {
            out.extend(self.dests(vi, ri, 0));
            return;
        }
        let vs = &self.vss[vi];
        for (d, s) in vs.rss[ri].plan.dests.iter().zip(&vs.plan.services) {
            out.push(Effect::Change(Change::DelDest {
                svc: s.key,
                addr: d.addr,
                port: d.port,
            }));
        }
        self.vss[vi].rss[ri].set = false;
    }

    fn sorry_cmd(&mut self, vi: usize, add: bool, force: bool, out: &mut Vec<Effect>) {
        let vs = &mut self.vss[vi];
        let Some(s) = &mut vs.sorry else { return };
        for (d, svc) in s.plan.dests.iter().zip(&vs.plan.services) {
            let svc = svc.key;
            out.push(Effect::Change(if add {
                Change::SetDest {
                    svc,
                    dest: d.clone(),
                }
            } else if s.plan.inhibit && !force {
                Change::SetDest {
                    svc,
                    dest: DestConfig {
                        weight: 0,
                        ..d.clone()
                    },
                }
            } else {
                Change::DelDest {
                    svc,
                    addr: d.addr,
                    port: d.port,
                }
            }));
        }
        s.set = add || (s.plan.inhibit && !force);
    }

    /// A `sorry_server_inhibit` server that is not in the table yet goes in with weight 0.
    fn sorry_inhibit_init(&mut self, vi: usize, out: &mut Vec<Effect>) {
        let vs = &mut self.vss[vi];
        if let Some(s) = &mut vs.sorry {
            if s.plan.inhibit && !s.set {
                s.set = true;
                for (d, svc) in s.plan.dests.iter().zip(&vs.plan.services) {
                    out.push(Effect::Change(Change::SetDest {
                        svc: svc.key,
                        dest: DestConfig {
                            weight: 0,
                            ..d.clone()
                        },
                    }));
                }
            }
        }
    }

    /// notify_up or notify_down of a real server, after its state changed.
    fn rs_notify(&self, vi: usize, ri: usize, out: &mut Vec<Effect>) {
        let vs = &self.vss[vi];
        let rs = &vs.rss[ri];
        let (script, what) = if rs.alive {
            (&rs.plan.notify_up, "up")
        } else {
            (&rs.plan.notify_down, "down")
        };
        if let Some(s) = script {
            out.push(Effect::Run {
                script: s.clone(),
                why: format!(
                    "real server {} of {} {what}",
                    SockAddr(rs.plan.addr, rs.plan.port),
                    vs.plan.name
                ),
            });
        }
    }

    fn vs_notify(&self, vi: usize, out: &mut Vec<Effect>) {
        let vs = &self.vss[vi];
        let (script, what) = if vs.quorum_up {
            (&vs.plan.quorum_up, "gained")
        } else {
            (&vs.plan.quorum_down, "lost")
        };
        if let Some(s) = script {
            out.push(Effect::Run {
                script: s.clone(),
                why: format!("{}: quorum {what}", vs.plan.name),
            });
        }
    }

    /// Σ real weights of alive servers (`weigh_live_realservers`).
    fn live_weight(&self, vi: usize) -> i64 {
        self.vss[vi]
            .rss
            .iter()
            .filter(|r| r.alive)
            .map(|r| i64::from(real_weight(r.weight)))
            .sum()
    }

    /// `update_quorum_state`.
    fn update_quorum_state(&mut self, vi: usize, init: bool, out: &mut Vec<Effect>) {
        let sum = self.live_weight(vi);
        let vs = &self.vss[vi];
        let (q, h) = (i64::from(vs.plan.quorum), i64::from(vs.plan.hysteresis));
        let threshold = if vs.quorum_up { q - h } else { q + h };
        let sorry_alive = vs.sorry.as_ref().map(|s| s.alive);
        if !vs.quorum_up && sum >= threshold {
            self.vss[vi].quorum_up = true;
            tracing::info!(vs = %self.vss[vi].plan.name, sum, threshold, "gained quorum");
            if sorry_alive == Some(true) {
                self.sorry_cmd(vi, false, false, out);
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.alive = false;
                }
                self.perform_quorum_state(vi, true, out);
            }
            self.vs_notify(vi, out);
        } else if (vs.quorum_up && (sum == 0 || sum < threshold))
            || (init && !vs.quorum_up && sorry_alive == Some(false))
        {
            self.vss[vi].quorum_up = false;
            tracing::warn!(vs = %self.vss[vi].plan.name, sum, threshold, init, "lost quorum");
            if sorry_alive == Some(false) {
                self.perform_quorum_state(vi, false, out);
                self.sorry_cmd(vi, true, false, out);
                if let Some(s) = &mut self.vss[vi].sorry {
                    s.alive = true;
                }
            }
            self.vs_notify(vi, out);
        }
    }

    /// Adds or removes the alive real servers (`perform_quorum_state`).
    fn perform_quorum_state(&mut self, vi: usize, add: bool, out: &mut Vec<Effect>) {
        for ri in 0..self.vss[vi].rss.len() {
            if !self.vss[vi].rss[ri].alive {
                continue;
            }
            if add {
                self.ipvs_add(vi, ri, false, out);
            } else {
                self.ipvs_del(vi, ri, false, out);
            }
        }
    }

    /// True when real server changes reach the table (quorum up or no active sorry
    /// server).
    fn pool_active(&self, vi: usize) -> bool {
        let vs = &self.vss[vi];
        vs.quorum_up || vs.sorry.as_ref().is_none_or(|s| !s.alive)
    }

    /// `perform_svr_state`: the server's checkers changed their mind. `failing` as in
    /// [`Pool::ipvs_add`].
    fn perform_svr_state(
        &mut self,
        vi: usize,
        ri: usize,
        alive: bool,
        failing: bool,
        out: &mut Vec<Effect>,
    ) {
        let rs = &self.vss[vi].rss[ri];
        let what = match (alive, rs.plan.inhibit) {
            (true, false) => "adding",
            (true, true) => "enabling",
            (false, false) => "removing",
            (false, true) => "disabling",
        };
        // keepalived logs both at INFO; a server going away is what an operator must
        // notice (WARN), its return is INFO.
        if alive {
            tracing::info!(rs = %SockAddr(rs.plan.addr, rs.plan.port), vs = %self.vss[vi].plan.name, "{what} real server (up)");
        } else {
            tracing::warn!(rs = %SockAddr(rs.plan.addr, rs.plan.port), vs = %self.vss[vi].plan.name, "{what} real server (down)");
        }
        if self.pool_active(vi) {
            if alive {
                self.ipvs_add(vi, ri, failing, out);
            } else {
                self.ipvs_del(vi, ri, false, out);
            }
        }
        self.vss[vi].rss[ri].alive = alive;
        self.rs_notify(vi, ri, out);
        self.update_quorum_state(vi, false, out);
    }

    /// `update_svr_wgt`: a new effective weight (MISC_CHECK misc_dynamic).
    fn update_weight(&mut self, s: ServerRef, weight: i64, out: &mut Vec<Effect>) {
        let Some(rs) = self.rs_mut(s) else { return };
        let old = real_weight(rs.weight);
        rs.weight = weight;
        let (vi, ri) = (s.vs, s.rs);
        let rs = &self.vss[vi].rss[ri];
        tracing::info!(
            rs = %SockAddr(rs.plan.addr, rs.plan.port),
            vs = %self.vss[vi].plan.name,
            old,
            new = real_weight(weight),
            "changing weight"
        );
        if rs.set && rs.alive && self.pool_active(vi) {
            out.extend(self.dests(vi, ri, real_weight(weight)));
        }
        self.update_quorum_state(vi, false, out);
    }

    /// Removes a real server that left the configuration (`clear_service_rs`).
    fn clear_rs(&mut self, vi: usize, ri: usize, stopping: bool, out: &mut Vec<Effect>) {
        if self.vss[vi].rss[ri].set && !stopping {
            self.ipvs_del(vi, ri, true, out);
        }
        if self.vss[vi].rss[ri].alive {
            self.vss[vi].rss[ri].alive = false;
            if !stopping || self.vss[vi].plan.omega {
                self.rs_notify(vi, ri, out);
            }
        }
    }

    /// `update_vs_notifies` when a virtual server goes away or the daemon stops.
    fn vs_going_down(&mut self, vi: usize, stopping: bool, out: &mut Vec<Effect>) {
        let vs = &self.vss[vi];
        let threshold = i64::from(vs.plan.quorum) - i64::from(vs.plan.hysteresis);
        let sum = self.live_weight(vi);
        if vs.quorum_up && (stopping || sum == 0 || sum < threshold) {
            self.vss[vi].quorum_up = false;
            if !stopping || self.vss[vi].plan.omega {
                self.vs_notify(vi, out);
            }
        }
    }
}

/// The runtime state of a virtual server before anything is applied.
fn new_vs(plan: VsPlan, vi: usize, health: &dyn Health) -> VsRun {
    let rss = plan
        .rss
        .iter()
        .enumerate()
        .map(|(ri, rp)| new_rs(rp.clone(), health.server(ServerRef { vs: vi, rs: ri })))
        .collect();
    VsRun {
        sorry: plan.sorry.clone().map(|p| SorryRun {
            plan: p,
            alive: false,
            set: false,
        }),
        // keepalived's set_quorum_states() runs before any server is alive.
        quorum_up: 0 >= i64::from(plan.quorum) + i64::from(plan.hysteresis),
        plan,
        rss,
    }
}

fn new_rs(plan: RsPlan, h: ServerHealth) -> RsRun {
    RsRun {
        plan,
        alive: false,
        set: false,
        weight: h.weight,
    }
}
