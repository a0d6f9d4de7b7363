//! The health of every real server, without I/O: checker results come in
//! ([`crate::epilog`]), [`Verdict`]s go out (keepalived's `update_svr_checker_state`,
//! `update_svr_wgt`). A real server is up while none of its checkers fails; its effective
//! weight is the configured one plus its MISC_CHECK `misc_dynamic` parts. What a verdict
//! does to the table (inhibit, sorry server, quorum, notify scripts) is
//! `rvs_keepalived::pool`'s, never the checkers'.

use crate::plan::{CheckerPlan, RsPlan, VsPlan};
use rvs_keepalived::pool::{real_weight, Health, ServerHealth, ServerRef, Verdict};
use std::collections::HashMap;
use std::time::Duration;

/// Identifies one checker for its whole life (kept across reloads if unchanged).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CheckerId(pub u64);

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
    /// None of its checkers fails (as last reported).
    pub alive: bool,
    pub num_failed: u32,
    /// keepalived's effective_weight: the configured weight plus MISC dynamic parts.
    pub effective_weight: i64,
    pub checkers: Vec<CheckerRun>,
}

#[derive(Clone, Debug)]
pub struct VsRun {
    pub plan: VsPlan,
    pub rss: Vec<RsRun>,
}

/// Where a checker lives: (virtual server, real server, checker) indices.
pub type Loc = (usize, usize, usize);

#[derive(Debug, Default)]
pub struct Engine {
    pub vss: Vec<VsRun>,
    pub(crate) index: HashMap<CheckerId, Loc>,
    next_id: u64,
}

impl Health for Engine {
    fn server(&self, s: ServerRef) -> ServerHealth {
        match self.vss.get(s.vs).and_then(|v| v.rss.get(s.rs)) {
            Some(rs) => ServerHealth {
                up: rs.alive,
                weight: rs.effective_weight,
            },
            None => ServerHealth {
                up: false,
                weight: 0,
            },
        }
    }
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
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
        VsRun { plan, rss }
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

    /// A first start: every real server of `plans` is up unless an `alpha` checker
    /// starts it down (the pool reads that as [`Health`]).
    pub fn init(&mut self, plans: Vec<VsPlan>) {
        for p in plans {
            let vs = self.new_vs(p);
            self.vss.push(vs);
        }
        self.reindex();
        for vi in 0..self.vss.len() {
            self.start_vs(vi);
        }
    }

    /// Alpha checkers start down, and so does their real server; the others start up.
    pub(crate) fn start_vs(&mut self, vi: usize) {
        for ri in 0..self.vss[vi].rss.len() {
            self.start_rs(vi, ri);
        }
    }

    pub(crate) fn start_rs(&mut self, vi: usize, ri: usize) {
        let rs = &mut self.vss[vi].rss[ri];
        for ck in &mut rs.checkers {
            if ck.plan.timing.alpha && ck.st.is_up {
                ck.st.is_up = false;
                rs.num_failed += 1;
            }
        }
        rs.alive = rs.num_failed == 0;
    }

    /// Reports the server's state (and effective weight).
    fn report(&self, vi: usize, ri: usize, out: &mut Vec<Verdict>) {
        let rs = &self.vss[vi].rss[ri];
        out.push(Verdict::Server {
            server: ServerRef { vs: vi, rs: ri },
            up: rs.alive,
            weight: rs.effective_weight,
        });
    }

    /// `perform_svr_state`: the server's state changes.
    pub(crate) fn perform_svr_state(
        &mut self,
        vi: usize,
        ri: usize,
        alive: bool,
        out: &mut Vec<Verdict>,
    ) {
        if self.vss[vi].rss[ri].alive == alive {
            return;
        }
        self.vss[vi].rss[ri].alive = alive;
        self.report(vi, ri, out);
    }

    /// `update_svr_checker_state`.
    pub(crate) fn update_checker_state(&mut self, loc: Loc, alive: bool, out: &mut Vec<Verdict>) {
        let (vi, ri, ci) = loc;
        let ck = &self.vss[vi].rss[ri].checkers[ci];
        if ck.st.is_up == alive {
            if !ck.st.has_run {
                if ck.plan.timing.alpha || !alive {
                    // The first check confirms the state the server started in.
                    self.report(vi, ri, out);
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

    /// `update_svr_wgt`: a new effective weight (MISC_CHECK misc_dynamic), reported when
    /// the weight the table would get changes.
    pub(crate) fn update_weight(
        &mut self,
        vi: usize,
        ri: usize,
        weight: i64,
        out: &mut Vec<Verdict>,
    ) {
        let old = real_weight(self.vss[vi].rss[ri].effective_weight);
        self.vss[vi].rss[ri].effective_weight = weight;
        if real_weight(weight) == old {
            return;
        }
        out.push(Verdict::Weight {
            server: ServerRef { vs: vi, rs: ri },
            weight,
        });
    }

    /// Operator view of every checker.
    pub fn status(&self) -> Vec<rvs_api::CheckerStatus> {
        self.checkers()
            .map(|(vs, rs, ck)| rvs_api::CheckerStatus {
                service: vs.plan.service,
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

pub fn sock(addr: std::net::IpAddr, port: u16) -> rvs_core::SockAddr {
    rvs_core::SockAddr(addr, port)
}
