//! The reload diff (`ipwrapper.c clear_diff_services`): virtual servers are matched by
//! identity (keepalived's `vs_iseq`: address/fwmark/group), real servers by address and
//! port (`rs_iseq`). Only what changed reaches the table: services that left are deleted,
//! new or changed ones set; real servers that left are deleted (even when inhibited),
//! kept ones keep being alive or not and are edited in place (weight, method,
//! thresholds), new ones start as at a first load. Established connections through
//! unchanged servers are untouched. The checkers' side of a reload (which probe loops go
//! on) is `rvs-check`'s; their resulting health comes in as [`Health`].

use super::{
    global_effects, new_rs, new_vs, plan, real_weight, Effect, Health, Pool, ServerRef, SorryRun,
    VsPlan, VsRun,
};
use crate::config::Config;
use rvs_core::{Change, DestConfig, ServiceKey};
use std::collections::HashSet;

/// A reload's pairing of old and new (keepalived's `vs_iseq`, `rs_iseq`): each new item
/// gets the first old item of the same identity not taken yet; `left` holds the old items
/// whose identity is gone from the new list, in their order. The checkers
/// (`rvs_check::Engine::reload`) and the pool pair the same way.
pub struct Paired<O> {
    /// One per new item, in the new order.
    pub kept: Vec<Option<O>>,
    pub left: Vec<O>,
}

pub fn pair<O, N>(old: Vec<O>, new: &[N], same: impl Fn(&O, &N) -> bool) -> Paired<O> {
    let (left, rest): (Vec<O>, Vec<O>) = old
        .into_iter()
        .partition(|o| !new.iter().any(|n| same(o, n)));
    let mut rest: Vec<Option<O>> = rest.into_iter().map(Some).collect();
    let kept = new
        .iter()
        .map(|n| {
            let i = rest
                .iter()
                .position(|o| o.as_ref().is_some_and(|o| same(o, n)))?;
            rest[i].take()
        })
        .collect();
    Paired { kept, left }
}

impl Pool {
    /// Applies a new configuration; `health` is every real server's state as the
    /// checkers see it under the new configuration.
    pub fn reload(&mut self, cfg: &Config, health: &dyn Health) -> Vec<Effect> {
        let mut out = global_effects(cfg, false);
        self.rs_init_notifies = cfg.global.rs_init_notifies;
        let plans = plan(cfg);
        // Services of the new configuration: a service that moves from one virtual server
        // to another is never deleted on the way.
        let keep: HashSet<ServiceKey> = plans
            .iter()
            .flat_map(|p| p.services.iter().map(|s| s.key))
            .collect();
        let paired = pair(std::mem::take(&mut self.vss), &plans, |o, p| {
            o.plan.id == p.id
        });
        // Virtual servers that left the configuration go first.
        for o in paired.left {
            self.vss = vec![o];
            for ri in 0..self.vss[0].rss.len() {
                self.clear_rs(0, ri, false, &mut out);
            }
            self.vs_going_down(0, false, &mut out);
            for s in &self.vss[0].plan.services {
                if !keep.contains(&s.key) {
                    out.push(Effect::Change(Change::DelService(s.key)));
                }
            }
        }
        let mut next: Vec<(VsRun, Vec<usize>, bool)> = Vec::new();
        for (vi, (plan, o)) in plans.into_iter().zip(paired.kept).enumerate() {
            match o {
                Some(o) => {
                    let (vs, fresh) = self.migrate_vs(o, plan, vi, &keep, health, &mut out);
                    next.push((vs, fresh, false));
                }
                None => next.push((new_vs(plan, vi, health), Vec::new(), true)),
            }
        }
        self.vss = next.iter().map(|(v, _, _)| v.clone()).collect();
        for (vi, (_, fresh, new_vs)) in next.into_iter().enumerate() {
            if new_vs {
                self.init_vs(vi, health, &mut out);
                continue;
            }
            // Kept servers whose checkers changed: in or out of the table as their
            // health now says (migrate_checkers).
            for ri in (0..self.vss[vi].rss.len()).filter(|r| !fresh.contains(r)) {
                let up = health.server(ServerRef { vs: vi, rs: ri }).up;
                if up != self.vss[vi].rss[ri].alive {
                    self.perform_svr_state(vi, ri, up, false, &mut out);
                }
            }
            // init_service_rs for the new real servers.
            for &ri in &fresh {
                self.init_rs(
                    vi,
                    ri,
                    health.server(ServerRef { vs: vi, rs: ri }),
                    &mut out,
                );
            }
            self.update_quorum_state(vi, true, &mut out);
            self.sorry_inhibit_init(vi, &mut out);
        }
        out
    }

    /// A kept virtual server: services and servers that left, changed services, kept
    /// servers' entries; returns it with the positions of its new real servers.
    fn migrate_vs(
        &mut self,
        mut o: VsRun,
        plan: VsPlan,
        vi: usize,
        keep: &HashSet<ServiceKey>,
        health: &dyn Health,
        out: &mut Vec<Effect>,
    ) -> (VsRun, Vec<usize>) {
        let old_keys: Vec<ServiceKey> = o.plan.services.iter().map(|s| s.key).collect();
        let paired = pair(std::mem::take(&mut o.rss), &plan.rss, |r, p| {
            r.plan.addr == p.addr && r.plan.port == p.port
        });
        // Real servers that left: deleted (even when inhibited), notify_down if alive.
        o.rss = paired.left;
        self.vss = vec![o];
        for ri in 0..self.vss[0].rss.len() {
            self.clear_rs(0, ri, false, out);
        }
        let o = self.vss.pop().expect("pushed above");
        // Services.
        for k in &old_keys {
            if !keep.contains(k) {
                out.push(Effect::Change(Change::DelService(*k)));
            }
        }
        for s in &plan.services {
            match o.plan.services.iter().find(|x| x.key == s.key) {
                Some(old_svc) if old_svc == s => {}
                _ => out.push(Effect::Change(Change::SetService(s.clone()))),
            }
        }
        // Real servers: the kept ones keep being alive (or not) and in the table (or
        // not), with the weight the checkers now give them.
        let mut rss = Vec::new();
        let mut fresh = Vec::new();
        for (ri, (rp, old)) in plan.rss.iter().zip(paired.kept).enumerate() {
            let h = health.server(ServerRef { vs: vi, rs: ri });
            match old {
                Some(mut rs) => {
                    rs.plan = rp.clone();
                    rs.weight = h.weight;
                    rss.push(rs);
                }
                None => {
                    rss.push(new_rs(rp.clone(), h));
                    fresh.push(ri);
                }
            }
        }
        let sorry = self.migrate_sorry(&o, &plan, out);
        let vs = VsRun {
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
                real_weight(rs.weight)
            } else {
                0
            };
            for (d, s) in rs.plan.dests.iter().zip(&vs.plan.services) {
                out.push(Effect::Change(Change::SetDest {
                    svc: s.key,
                    dest: DestConfig {
                        weight,
                        ..d.clone()
                    },
                }));
            }
        }
        if let Some(s) = &vs.sorry {
            if s.set {
                for (d, svc) in s.plan.dests.iter().zip(&vs.plan.services) {
                    let weight = if s.alive { d.weight } else { 0 };
                    out.push(Effect::Change(Change::SetDest {
                        svc: svc.key,
                        dest: DestConfig {
                            weight,
                            ..d.clone()
                        },
                    }));
                }
            }
        }
        (vs, fresh)
    }

    /// `clear_diff_s_srv`. `o` holds the real servers that left the configuration.
    fn migrate_sorry(
        &mut self,
        o: &VsRun,
        plan: &VsPlan,
        out: &mut Vec<Effect>,
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
                out.push(Effect::Change(Change::DelDest {
                    svc: s.key,
                    addr: d.addr,
                    port: d.port,
                }));
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
                    out.push(Effect::Change(Change::SetDest {
                        svc: s.key,
                        dest: DestConfig {
                            weight: real_weight(rs.weight),
                            ..d.clone()
                        },
                    }));
                }
            }
        }
        new
    }
}
