//! The pool logic of keepalived's `ipwrapper.c`, without I/O: which real servers are in
//! the table and with what weight, quorum and sorry server, notify scripts. Checker
//! results come in ([`crate::epilog`]), table changes and scripts go out as
//! [`Action`]s, in the order keepalived performs them.
//!
//! Per real server: `alive` (counts for the pool), `set` (present in the table, perhaps
//! with weight 0 when `inhibit_on_failure`), `num_failed` (checkers currently down).

use crate::plan::{CheckerPlan, RsPlan, SorryPlan, VsPlan};
use rvs_core::{DestConfig, ServiceConfig, ServiceKey};
use rvs_keepalived::Script;
use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Duration;

/// Identifies one checker for its whole life (kept across reloads if unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckerId(pub u64);

/// What the supervisor must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Add the service, or edit it if it exists.
    SetService(ServiceConfig),
    DelService(ServiceKey),
    /// Add the destination, or edit it if it exists.
    SetDest {
        svc: ServiceKey,
        dest: DestConfig,
    },
    DelDest {
        svc: ServiceKey,
        addr: IpAddr,
        port: u16,
    },
    /// Run a notify script (real server up/down, quorum up/down).
    Run {
        script: Script,
        why: String,
    },
    /// `lvs_flush`: empty the table (first start only).
    Flush,
    /// `lvs_timeouts` (0 = unchanged), as `ipvsadm --set`.
    SetTimeouts {
        tcp: u32,
        tcpfin: u32,
        udp: u32,
    },
}

/// A checker's own state (`checker_t` fields).
#[derive(Clone, Debug, Default)]
pub struct CheckState {
    pub is_up: bool,
    pub has_run: bool,
    pub retry_it: u32,
    /// Consecutive failed probes (for the operator).
    pub failures: u32,
    pub last_error: Option<String>,
    /// MISC_CHECK with misc_dynamic: this checker's part of the effective weight.
    pub cur_weight: i64,
    /// MISC_CHECK: last exit status seen (keepalived starts at 0).
    pub last_exit: u32,
    /// HTTP/SSL: the URL to check next (`url_it`), `None` once all passed.
    pub url_it: Option<usize>,
    /// HTTP/SSL: the URL that failed (`failed_url`).
    pub failed_url: Option<usize>,
}

#[derive(Clone, Debug)]
pub struct CheckerRun {
    pub id: CheckerId,
    pub plan: CheckerPlan,
    pub st: CheckState,
}

#[derive(Clone, Debug)]
pub struct RsRun {
    pub plan: RsPlan,
    pub alive: bool,
    pub set: bool,
    pub num_failed: u32,
    /// keepalived's effective_weight: the configured weight plus MISC dynamic parts.
    pub effective_weight: i64,
    pub checkers: Vec<CheckerRun>,
}

#[derive(Clone, Debug)]
pub struct SorryRun {
    pub plan: SorryPlan,
    pub alive: bool,
    pub set: bool,
}

#[derive(Clone, Debug)]
pub struct VsRun {
    pub plan: VsPlan,
    pub quorum_up: bool,
    pub sorry: Option<SorryRun>,
    pub rss: Vec<RsRun>,
}

/// Where a checker lives: (virtual server, real server, checker) indices.
pub type Loc = (usize, usize, usize);

#[derive(Debug, Default)]
pub struct Engine {
    pub vss: Vec<VsRun>,
    pub(crate) index: HashMap<CheckerId, Loc>,
    next_id: u64,
    /// `rs_init_notifies`: notify_up for servers that start alive.
    pub rs_init_notifies: bool,
}

/// `real_weight()`: the weight IPVS gets.
pub fn real_weight(w: i64) -> u32 {
    w.clamp(0, i64::from(i32::MAX)) as u32
}

impl Engine {
    pub fn new(rs_init_notifies: bool) -> Engine {
        Engine {
            rs_init_notifies,
            ..Engine::default()
        }
    }

    pub(crate) fn next_id(&mut self) -> CheckerId {
        self.next_id += 1;
        CheckerId(self.next_id)
    }

    pub(crate) fn reindex(&mut self) {
        self.index.clear();
        for (vi, vs) in self.vss.iter().enumerate() {
            for (ri, rs) in vs.rss.iter().enumerate() {
                for (ci, ck) in rs.checkers.iter().enumerate() {
                    self.index.insert(ck.id, (vi, ri, ci));
                }
            }
        }
    }

    pub fn locate(&self, id: CheckerId) -> Option<Loc> {
        self.index.get(&id).copied()
    }

    pub fn checker(&self, id: CheckerId) -> Option<&CheckerRun> {
        let (v, r, c) = self.locate(id)?;
        Some(&self.vss[v].rss[r].checkers[c])
    }

    /// Every checker with where it runs.
    pub fn checkers(&self) -> impl Iterator<Item = (&VsRun, &RsRun, &CheckerRun)> {
        self.vss.iter().flat_map(|v| {
            v.rss
                .iter()
                .flat_map(move |r| r.checkers.iter().map(move |c| (v, r, c)))
        })
    }

    /// Builds the runtime state of a virtual server (fresh: no checker has run).
    pub(crate) fn new_vs(&mut self, plan: VsPlan) -> VsRun {
        let rss = plan.rss.iter().map(|rp| self.new_rs(rp.clone())).collect();
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

    pub(crate) fn new_rs(&mut self, plan: RsPlan) -> RsRun {
        let checkers = plan
            .checkers
            .iter()
            .map(|cp| self.new_checker(cp.clone()))
            .collect();
        RsRun {
            effective_weight: i64::from(plan.iweight),
            plan,
            alive: false,
            set: false,
            num_failed: 0,
            checkers,
        }
    }

    pub(crate) fn new_checker(&mut self, plan: CheckerPlan) -> CheckerRun {
        let id = self.next_id();
        CheckerRun {
            id,
            st: CheckState {
                is_up: true,
                // "For non alpha mode, one failure is enough initially."
                retry_it: plan.timing.retry,
                url_it: Some(0),
                ..CheckState::default()
            },
            plan,
        }
    }

    /// A first start: the virtual servers of `plans` go into the table
    /// (`init_services`).
    pub fn init(&mut self, plans: Vec<VsPlan>, out: &mut Vec<Action>) {
        for p in plans {
            let vs = self.new_vs(p);
            self.vss.push(vs);
        }
        self.reindex();
        for vi in 0..self.vss.len() {
            self.mark_alpha(vi);
            self.init_vs(vi, out);
        }
    }

    /// Alpha checkers start down, and so does their real server.
    pub(crate) fn mark_alpha(&mut self, vi: usize) {
        for rs in &mut self.vss[vi].rss {
            for ck in &mut rs.checkers {
                if ck.plan.timing.alpha && ck.st.is_up {
                    ck.st.is_up = false;
                    rs.num_failed += 1;
                    rs.alive = false;
                }
            }
        }
    }

    /// `init_service_vs`: services, real servers, quorum, inhibited sorry server.
    pub(crate) fn init_vs(&mut self, vi: usize, out: &mut Vec<Action>) {
        for s in &self.vss[vi].plan.services {
            out.push(Action::SetService(s.clone()));
        }
        for ri in 0..self.vss[vi].rss.len() {
            self.init_rs(vi, ri, out);
        }
        self.update_quorum_state(vi, true, out);
        let vs = &mut self.vss[vi];
        if let Some(s) = &mut vs.sorry {
            if s.plan.inhibit && !s.set {
                s.set = true;
                for (d, svc) in s.plan.dests.iter().zip(&vs.plan.services) {
                    out.push(Action::SetDest {
                        svc: svc.key,
                        dest: DestConfig {
                            weight: 0,
                            ..d.clone()
                        },
                    });
                }
            }
        }
    }

    /// `init_service_rs` for one new real server.
    pub(crate) fn init_rs(&mut self, vi: usize, ri: usize, out: &mut Vec<Action>) {
        let rs = &self.vss[vi].rss[ri];
        if (rs.num_failed == 0 && !rs.alive) || (rs.plan.inhibit && !rs.set) {
            self.ipvs_add(vi, ri, out);
            if self.vss[vi].rss[ri].num_failed == 0 {
                self.vss[vi].rss[ri].alive = true;
                if self.rs_init_notifies {
                    self.rs_notify(vi, ri, out);
                }
            }
        }
    }

    /// The table entries of a real server, one per service.
    fn dests(&self, vi: usize, ri: usize, weight: u32) -> Vec<(ServiceKey, DestConfig)> {
        let vs = &self.vss[vi];
        vs.rss[ri]
            .plan
            .dests
            .iter()
            .zip(&vs.plan.services)
            .map(|(d, s)| {
                (
                    s.key,
                    DestConfig {
                        weight,
                        ..d.clone()
                    },
                )
            })
            .collect()
    }

    /// `ipvs_cmd(ADD_DEST)`: add, or restore the weight of an inhibited server.
    pub(crate) fn ipvs_add(&mut self, vi: usize, ri: usize, out: &mut Vec<Action>) {
        let rs = &self.vss[vi].rss[ri];
        let weight = if !rs.set && rs.plan.inhibit && rs.num_failed > 0 {
            0
        } else {
            real_weight(rs.effective_weight)
        };
        for (svc, dest) in self.dests(vi, ri, weight) {
            out.push(Action::SetDest { svc, dest });
        }
        self.vss[vi].rss[ri].set = true;
    }

    /// `ipvs_cmd(DEL_DEST)`: delete, or set weight 0 with inhibit_on_failure
    /// (`force` deletes anyway: the server leaves the configuration).
    pub(crate) fn ipvs_del(&mut self, vi: usize, ri: usize, force: bool, out: &mut Vec<Action>) {
        if self.vss[vi].rss[ri].plan.inhibit && !force {
            for (svc, dest) in self.dests(vi, ri, 0) {
                out.push(Action::SetDest { svc, dest });
            }
            return;
        }
        for (svc, dest) in self.dests(vi, ri, 0) {
            out.push(Action::DelDest {
                svc,
                addr: dest.addr,
                port: dest.port,
            });
        }
        self.vss[vi].rss[ri].set = false;
    }

    fn sorry_cmd(&mut self, vi: usize, add: bool, force: bool, out: &mut Vec<Action>) {
        let vs = &mut self.vss[vi];
        let Some(s) = &mut vs.sorry else { return };
        for (d, svc) in s.plan.dests.iter().zip(&vs.plan.services) {
            let svc = svc.key;
            if add {
                out.push(Action::SetDest {
                    svc,
                    dest: d.clone(),
                });
            } else if s.plan.inhibit && !force {
                out.push(Action::SetDest {
                    svc,
                    dest: DestConfig {
                        weight: 0,
                        ..d.clone()
                    },
                });
            } else {
                out.push(Action::DelDest {
                    svc,
                    addr: d.addr,
                    port: d.port,
                });
            }
        }
        s.set = add || (s.plan.inhibit && !force);
    }

    /// notify_up or notify_down of a real server, after its state changed.
    pub(crate) fn rs_notify(&self, vi: usize, ri: usize, out: &mut Vec<Action>) {
        let vs = &self.vss[vi];
        let rs = &vs.rss[ri];
        let (script, what) = if rs.alive {
            (&rs.plan.notify_up, "up")
        } else {
            (&rs.plan.notify_down, "down")
        };
        if let Some(s) = script {
            out.push(Action::Run {
                script: s.clone(),
                why: format!(
                    "real server {} of {} {what}",
                    sock(rs.plan.addr, rs.plan.port),
                    vs.plan.name
                ),
            });
        }
    }

    fn vs_notify(&self, vi: usize, out: &mut Vec<Action>) {
        let vs = &self.vss[vi];
        let (script, what) = if vs.quorum_up {
            (&vs.plan.quorum_up, "gained")
        } else {
            (&vs.plan.quorum_down, "lost")
        };
        if let Some(s) = script {
            out.push(Action::Run {
                script: s.clone(),
                why: format!("{}: quorum {what}", vs.plan.name),
            });
        }
    }

    /// Σ real weights of alive servers (`weigh_live_realservers`).
    pub fn live_weight(&self, vi: usize) -> i64 {
        self.vss[vi]
            .rss
            .iter()
            .filter(|r| r.alive)
            .map(|r| i64::from(real_weight(r.effective_weight)))
            .sum()
    }

    /// `update_quorum_state`.
    pub(crate) fn update_quorum_state(&mut self, vi: usize, init: bool, out: &mut Vec<Action>) {
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
    fn perform_quorum_state(&mut self, vi: usize, add: bool, out: &mut Vec<Action>) {
        for ri in 0..self.vss[vi].rss.len() {
            if !self.vss[vi].rss[ri].alive {
                continue;
            }
            if add {
                self.ipvs_add(vi, ri, out);
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

    /// `perform_svr_state`.
    pub(crate) fn perform_svr_state(
        &mut self,
        vi: usize,
        ri: usize,
        alive: bool,
        out: &mut Vec<Action>,
    ) {
        if self.vss[vi].rss[ri].alive == alive {
            return;
        }
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
            tracing::info!(rs = %sock(rs.plan.addr, rs.plan.port), vs = %self.vss[vi].plan.name, "{what} real server (up)");
        } else {
            tracing::warn!(rs = %sock(rs.plan.addr, rs.plan.port), vs = %self.vss[vi].plan.name, "{what} real server (down)");
        }
        if self.pool_active(vi) {
            if alive {
                self.ipvs_add(vi, ri, out);
            } else {
                self.ipvs_del(vi, ri, false, out);
            }
        }
        self.vss[vi].rss[ri].alive = alive;
        self.rs_notify(vi, ri, out);
        self.update_quorum_state(vi, false, out);
    }

    /// `update_svr_checker_state`.
    pub(crate) fn update_checker_state(&mut self, loc: Loc, alive: bool, out: &mut Vec<Action>) {
        let (vi, ri, ci) = loc;
        let ck = &self.vss[vi].rss[ri].checkers[ci];
        if ck.st.is_up == alive {
            if !ck.st.has_run {
                if ck.plan.timing.alpha || !alive {
                    self.rs_notify(vi, ri, out);
                }
                self.vss[vi].rss[ri].checkers[ci].st.has_run = true;
            }
            return;
        }
        self.vss[vi].rss[ri].checkers[ci].st.has_run = true;
        let failed = self.vss[vi].rss[ri].num_failed;
        if alive && failed <= 1 || !alive && failed == 0 {
            self.perform_svr_state(vi, ri, alive, out);
        }
        self.set_checker_state(loc, alive);
    }

    /// `set_checker_state`: the checker's flag and the server's failed count.
    pub(crate) fn set_checker_state(&mut self, (vi, ri, ci): Loc, up: bool) {
        let rs = &mut self.vss[vi].rss[ri];
        let ck = &mut rs.checkers[ci];
        if ck.st.is_up == up {
            return;
        }
        ck.st.is_up = up;
        if up {
            rs.num_failed = rs.num_failed.saturating_sub(1);
        } else {
            rs.num_failed += 1;
        }
    }

    /// `update_svr_wgt`: a new effective weight (MISC_CHECK misc_dynamic).
    pub(crate) fn update_weight(
        &mut self,
        vi: usize,
        ri: usize,
        weight: i64,
        out: &mut Vec<Action>,
    ) {
        let old = real_weight(self.vss[vi].rss[ri].effective_weight);
        self.vss[vi].rss[ri].effective_weight = weight;
        if real_weight(weight) == old {
            return;
        }
        let rs = &self.vss[vi].rss[ri];
        tracing::info!(
            rs = %sock(rs.plan.addr, rs.plan.port),
            vs = %self.vss[vi].plan.name,
            old,
            new = real_weight(weight),
            "changing weight"
        );
        if rs.set && rs.alive && self.pool_active(vi) {
            for (svc, dest) in self.dests(vi, ri, real_weight(weight)) {
                out.push(Action::SetDest { svc, dest });
            }
        }
        self.update_quorum_state(vi, false, out);
    }

    /// Removes a real server that left the configuration (`clear_service_rs`).
    pub(crate) fn clear_rs(&mut self, vi: usize, ri: usize, stopping: bool, out: &mut Vec<Action>) {
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
    pub(crate) fn vs_going_down(&mut self, vi: usize, stopping: bool, out: &mut Vec<Action>) {
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

    /// The daemon stops: with `omega`, notify_down for alive servers and quorum_down.
    /// The table is left as it is (rvsd keeps serving established flows across
    /// restarts; keepalived would delete its services).
    pub fn stop(&mut self, out: &mut Vec<Action>) {
        for vi in 0..self.vss.len() {
            for ri in 0..self.vss[vi].rss.len() {
                self.clear_rs(vi, ri, true, out);
            }
            self.vs_going_down(vi, true, out);
        }
    }

    /// Operator view of every checker.
    pub fn status(&self) -> Vec<rvs_api::CheckerStatus> {
        self.checkers()
            .map(|(vs, rs, ck)| rvs_api::CheckerStatus {
                service: vs
                    .plan
                    .services
                    .first()
                    .map(|s| s.key)
                    .unwrap_or(ServiceKey::Fwmark {
                        mark: 0,
                        family: rvs_core::Family::V4,
                    }),
                addr: rs.plan.addr,
                port: rs.plan.port,
                kind: ck.plan.kind().to_string(),
                up: ck.st.is_up,
                last_error: ck.st.last_error.clone(),
                failures: ck.st.failures,
            })
            .collect()
    }

    /// The first delay of a checker: keepalived's bootstrap delay plus a random part of
    /// warmup.
    pub fn first_delay(plan: &CheckerPlan, bootstrap: Duration) -> Duration {
        let w = plan.timing.warmup;
        if w.is_zero() {
            return bootstrap;
        }
        bootstrap + w.mul_f64(fastrand::f64())
    }
}

pub fn sock(addr: IpAddr, port: u16) -> rvs_core::SockAddr {
    rvs_core::SockAddr(addr, port)
}
