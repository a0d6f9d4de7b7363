//! A reload (`ipwrapper.c clear_diff_services`, `migrate_checkers`): virtual servers
//! and real servers are matched by identity (keepalived's `vs_iseq`/`rs_iseq`), checkers
//! by configuration. A matched checker keeps its state and its running probe loop; a
//! real server keeps being alive or not; only what changed reaches the table, so
//! established connections through unchanged servers are untouched.

use crate::engine::{real_weight, Action, CheckerId, Engine, RsRun, SorryRun, VsRun};
use crate::plan::{ProbeSpec, VsPlan};
use rvs_core::{DestConfig, ServiceKey};
use std::collections::HashSet;

/// Which probe loops a reload starts and stops (the others go on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub started: Vec<CheckerId>,
    pub stopped: Vec<CheckerId>,
    pub kept: Vec<CheckerId>,
}

impl Engine {
    pub fn reload(&mut self, plans: Vec<VsPlan>, out: &mut Vec<Action>) -> ReloadReport {
        let mut report = ReloadReport::default();
        // Services of the new configuration: a service that moves from one virtual server
        // to another is never deleted on the way.
        let keep: HashSet<ServiceKey> = plans
            .iter()
            .flat_map(|p| p.services.iter().map(|s| s.key))
            .collect();
        let mut old: Vec<Option<VsRun>> = std::mem::take(&mut self.vss)
            .into_iter()
            .map(Some)
            .collect();
        // Virtual servers that left the configuration go first.
        for slot in old.iter_mut() {
            if plans
                .iter()
                .any(|p| slot.as_ref().is_some_and(|o| o.plan.id == p.id))
            {
                continue;
            }
            let o = slot.take().expect("not matched yet");
            report.stopped.extend(ids(&o));
            self.vss = vec![o];
            for ri in 0..self.vss[0].rss.len() {
                self.clear_rs(0, ri, false, out);
            }
            self.vs_going_down(0, false, out);
            for s in &self.vss[0].plan.services {
                if !keep.contains(&s.key) {
                    out.push(Action::DelService(s.key));
                }
            }
        }
        let mut next: Vec<(VsRun, Vec<usize>, bool)> = Vec::new();
        for plan in plans {
            let found = old
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| o.plan.id == plan.id));
            match found {
                Some(oi) => {
                    let o = old[oi].take().expect("position found it");
                    let (vs, fresh_rs) = self.migrate_vs(o, plan, &keep, out, &mut report);
                    next.push((vs, fresh_rs, false));
                }
                None => {
                    let vs = self.new_vs(plan);
                    report.started.extend(ids(&vs));
                    next.push((vs, Vec::new(), true));
                }
            }
        }
        self.vss = next.iter().map(|(v, _, _)| v.clone()).collect();
        self.reindex();
        for (vi, (_, fresh_rs, new_vs)) in next.into_iter().enumerate() {
            if new_vs {
                self.mark_alpha(vi);
                self.init_vs(vi, out);
                continue;
            }
            // Kept servers whose checkers changed: up if nothing fails any more, and
            // in or out of the table as their failed state says (migrate_checkers).
            for ri in (0..self.vss[vi].rss.len()).filter(|r| !fresh_rs.contains(r)) {
                let rs = &self.vss[vi].rss[ri];
                if rs.num_failed == 0 && !rs.alive {
                    self.perform_svr_state(vi, ri, true, out);
                } else if rs.num_failed > 0 && rs.alive {
                    self.perform_svr_state(vi, ri, false, out);
                }
            }
            // check_new_rs_state + init_service_rs for the new real servers.
            for &ri in &fresh_rs {
                let rs = &mut self.vss[vi].rss[ri];
                for ck in &mut rs.checkers {
                    if ck.plan.timing.alpha && ck.st.is_up {
                        ck.st.is_up = false;
                        rs.num_failed += 1;
                        rs.alive = false;
                    }
                }
                self.init_rs(vi, ri, out);
            }
            self.update_quorum_state(vi, true, out);
            self.sorry_inhibit_init(vi, out);
        }
        report
    }

    fn migrate_vs(
        &mut self,
        mut o: VsRun,
        plan: VsPlan,
        keep: &HashSet<ServiceKey>,
        out: &mut Vec<Action>,
        report: &mut ReloadReport,
    ) -> (VsRun, Vec<usize>) {
        let old_keys: Vec<ServiceKey> = o.plan.services.iter().map(|s| s.key).collect();
        // Real servers that left: deleted (even when inhibited), notify_down if alive.
        self.vss = vec![o.clone()];
        for (ri, rs) in o.rss.iter().enumerate() {
            if !plan
                .rss
                .iter()
                .any(|p| p.addr == rs.plan.addr && p.port == rs.plan.port)
            {
                report.stopped.extend(rs.checkers.iter().map(|c| c.id));
                self.clear_rs(0, ri, false, out);
            }
        }
        o = self.vss.pop().expect("pushed above");
        // Services.
        for k in &old_keys {
            if !keep.contains(k) {
                out.push(Action::DelService(*k));
            }
        }
        for s in &plan.services {
            match o.plan.services.iter().find(|x| x.key == s.key) {
                Some(old_svc) if old_svc == s => {}
                _ => out.push(Action::SetService(s.clone())),
            }
        }
        // Real servers.
        let mut rss = Vec::new();
        let mut fresh = Vec::new();
        for (ri, rp) in plan.rss.iter().enumerate() {
            let pos = o
                .rss
                .iter()
                .position(|r| r.plan.addr == rp.addr && r.plan.port == rp.port);
            match pos {
                Some(p) => {
                    let old_rs = o.rss.swap_remove(p);
                    rss.push(self.migrate_rs(old_rs, rp.clone(), report));
                }
                None => {
                    let rs = self.new_rs(rp.clone());
                    report.started.extend(rs.checkers.iter().map(|c| c.id));
                    rss.push(rs);
                    fresh.push(ri);
                }
            }
        }
        let sorry = self.migrate_sorry(&o, &plan, out);
        let mut vs = VsRun {
            quorum_up: o.quorum_up,
            sorry,
            rss,
            plan,
        };
        // Table entries of the kept servers: new services get them, changed ones are
        // edited; the rest is left alone.
        let active = vs.quorum_up || vs.sorry.as_ref().is_none_or(|s| !s.alive);
        for rs in vs.rss.iter().filter(|r| r.set) {
            let weight = if rs.alive && active {
                real_weight(rs.effective_weight)
            } else {
                0
            };
            for (d, s) in rs.plan.dests.iter().zip(&vs.plan.services) {
                out.push(Action::SetDest {
                    svc: s.key,
                    dest: DestConfig {
                        weight,
                        ..d.clone()
                    },
                });
            }
        }
        if let Some(s) = &mut vs.sorry {
            if s.set {
                for (d, svc) in s.plan.dests.iter().zip(&vs.plan.services) {
                    let weight = if s.alive { d.weight } else { 0 };
                    out.push(Action::SetDest {
                        svc: svc.key,
                        dest: DestConfig {
                            weight,
                            ..d.clone()
                        },
                    });
                }
            }
        }
        (vs, fresh)
    }

    /// `migrate_checkers` for one kept real server.
    fn migrate_rs(
        &mut self,
        old: RsRun,
        plan: crate::plan::RsPlan,
        report: &mut ReloadReport,
    ) -> RsRun {
        let mut olds: Vec<Option<crate::engine::CheckerRun>> =
            old.checkers.into_iter().map(Some).collect();
        let mut checkers = Vec::new();
        for cp in &plan.checkers {
            let m = olds
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| o.plan.same_as(cp)));
            match m {
                Some(i) => {
                    let mut c = olds[i].take().expect("found");
                    report.kept.push(c.id);
                    if !c.st.is_up && c.st.has_run {
                        c.st.retry_it = cp.timing.retry + 1;
                    } else if c.st.retry_it >= cp.timing.retry {
                        c.st.retry_it = cp.timing.retry;
                    }
                    c.plan = cp.clone();
                    checkers.push(c);
                }
                None => {
                    let c = self.new_checker(cp.clone());
                    report.started.push(c.id);
                    checkers.push(c);
                }
            }
        }
        report
            .stopped
            .extend(olds.into_iter().flatten().map(|c| c.id));
        let mut num_failed = checkers
            .iter()
            .filter(|c| c.st.has_run && !c.st.is_up)
            .count() as u32;
        let any_run = checkers.iter().any(|c| c.st.has_run);
        for c in checkers.iter_mut().filter(|c| !c.st.has_run) {
            if num_failed > 0 || (!old.alive && !any_run) {
                c.st.is_up = !c.plan.timing.alpha;
                c.st.retry_it = c.plan.timing.retry;
            } else {
                c.st.is_up = true;
            }
        }
        num_failed += checkers
            .iter()
            .filter(|c| !c.st.has_run && !c.st.is_up)
            .count() as u32;
        // The configured weight may have changed; MISC dynamic parts follow it.
        let mut eff = i64::from(plan.iweight);
        for c in &mut checkers {
            if let ProbeSpec::Misc(m) = &c.plan.probe {
                c.st.cur_weight = if m.dynamic && c.st.last_exit >= 2 {
                    i64::from(c.st.last_exit) - 2 - i64::from(plan.iweight)
                } else {
                    0
                };
                eff += c.st.cur_weight;
            }
        }
        RsRun {
            plan,
            alive: old.alive,
            set: old.set,
            num_failed,
            effective_weight: eff,
            checkers,
        }
    }

    /// `clear_diff_s_srv`.
    fn migrate_sorry(
        &mut self,
        o: &VsRun,
        plan: &VsPlan,
        out: &mut Vec<Action>,
    ) -> Option<SorryRun> {
        let new = plan.sorry.clone().map(|p| SorryRun {
            plan: p,
            alive: false,
            set: false,
        });
        let Some(old) = &o.sorry else { return new };
        let same = new
            .as_ref()
            .is_some_and(|n| n.plan.addr == old.plan.addr && n.plan.port == old.plan.port);
        let mut new = new;
        if same {
            let n = new.as_mut().expect("same implies some");
            n.alive = old.alive;
            n.set = old.set;
            if old.plan.inhibit == n.plan.inhibit || old.alive {
                return new;
            }
        }
        if old.set {
            for (d, s) in old.plan.dests.iter().zip(&o.plan.services) {
                out.push(Action::DelDest {
                    svc: s.key,
                    addr: d.addr,
                    port: d.port,
                });
            }
            if let Some(n) = new.as_mut().filter(|_| same) {
                n.set = false;
                n.alive = false;
            }
        }
        if old.alive && plan.sorry.is_none() {
            // No sorry server any more: the alive servers go back into the pool.
            for rs in o.rss.iter().filter(|r| r.alive) {
                for (d, s) in rs.plan.dests.iter().zip(&o.plan.services) {
                    out.push(Action::SetDest {
                        svc: s.key,
                        dest: DestConfig {
                            weight: real_weight(rs.effective_weight),
                            ..d.clone()
                        },
                    });
                }
            }
        }
        new
    }

    /// A `sorry_server_inhibit` server that is not in the table yet goes in with weight 0.
    fn sorry_inhibit_init(&mut self, vi: usize, out: &mut Vec<Action>) {
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
}

fn ids(vs: &VsRun) -> Vec<CheckerId> {
    vs.rss
        .iter()
        .flat_map(|r| r.checkers.iter().map(|c| c.id))
        .collect()
}
