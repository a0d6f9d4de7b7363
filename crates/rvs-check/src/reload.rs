//! The checkers' side of a reload (`ipwrapper.c migrate_checkers`): virtual servers and
//! real servers are matched by identity (keepalived's `vs_iseq`/`rs_iseq`), checkers by
//! configuration. A matched checker keeps its state and its running probe loop; a kept
//! real server is up or down as its checkers now say. What reaches the table is the
//! pool's reload diff (`rvs_keepalived::pool`), which reads the result as `Health`.

use crate::engine::{CheckerId, CheckerRun, Engine, RsRun, VsRun};
use crate::plan::{ProbeSpec, RsPlan, VsPlan};
use rvs_keepalived::pool::pair;

/// Which probe loops a reload starts and stops (the others go on).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReloadReport {
    pub started: Vec<CheckerId>,
    pub stopped: Vec<CheckerId>,
    pub kept: Vec<CheckerId>,
}

impl Engine {
    pub fn reload(&mut self, plans: Vec<VsPlan>) -> ReloadReport {
        let mut report = ReloadReport::default();
        let paired = pair(std::mem::take(&mut self.vss), &plans, |o, p| {
            o.plan.id == p.id
        });
        // Virtual servers that left the configuration.
        for o in &paired.left {
            report.stopped.extend(ids(o));
        }
        let mut next: Vec<(VsRun, Vec<usize>, bool)> = Vec::new();
        for (plan, o) in plans.into_iter().zip(paired.kept) {
            match o {
                Some(o) => {
                    let (vs, fresh_rs) = self.migrate_vs(o, plan, &mut report);
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
                self.start_vs(vi);
                continue;
            }
            // Kept servers whose checkers changed: up if nothing fails any more.
            for ri in (0..self.vss[vi].rss.len()).filter(|r| !fresh_rs.contains(r)) {
                let rs = &mut self.vss[vi].rss[ri];
                rs.alive = rs.num_failed == 0;
            }
            for &ri in &fresh_rs {
                self.start_rs(vi, ri);
            }
        }
        report
    }

    fn migrate_vs(
        &mut self,
        o: VsRun,
        plan: VsPlan,
        report: &mut ReloadReport,
    ) -> (VsRun, Vec<usize>) {
        let paired = pair(o.rss, &plan.rss, |r, p| {
            r.plan.addr == p.addr && r.plan.port == p.port
        });
        // Real servers that left.
        for rs in &paired.left {
            report.stopped.extend(rs.checkers.iter().map(|c| c.id));
        }
        let mut rss = Vec::new();
        let mut fresh = Vec::new();
        for (ri, (rp, old)) in plan.rss.iter().zip(paired.kept).enumerate() {
            match old {
                Some(old_rs) => rss.push(self.migrate_rs(old_rs, rp.clone(), report)),
                None => {
                    let rs = self.new_rs(rp.clone());
                    report.started.extend(rs.checkers.iter().map(|c| c.id));
                    rss.push(rs);
                    fresh.push(ri);
                }
            }
        }
        (VsRun { plan, rss }, fresh)
    }

    /// `migrate_checkers` for one kept real server.
    fn migrate_rs(&mut self, old: RsRun, plan: RsPlan, report: &mut ReloadReport) -> RsRun {
        let mut olds: Vec<Option<CheckerRun>> = old.checkers.into_iter().map(Some).collect();
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
            num_failed,
            effective_weight: eff,
            checkers,
        }
    }
}

fn ids(vs: &VsRun) -> Vec<CheckerId> {
    vs.rss
        .iter()
        .flat_map(|r| r.checkers.iter().map(|c| c.id))
        .collect()
}
