//! lblcr — locality-based least connection with replication (`ip_vs_lblcr.c`).
//!
//! Like lblc, but a destination address maps to a *set* of servers, so a popular origin
//! can be served by several caches. The set is a list, newest member first, with the time
//! it last changed (`lastmod`).
//!
//! * Hit (use time refreshed):
//!   1. `min` = the set member with the least overhead/weight — OVERLOAD members skipped,
//!      members must still be in the service, the first candidate needs weight > 0;
//!      strict comparison, so the newer member wins ties.
//!   2. If the set has several members and has not changed for the expiration time
//!      (24 h), its most loaded member (overhead/weight, weight > 0 members only) is
//!      dropped — one per packet, and after `min` was chosen, so `min` may be the one
//!      dropped and still be used for this packet.
//!   3. `min` is used unless lblc's [`is_overloaded`] holds for it.
//!   4. Otherwise the wlc rule picks a server of the service, which joins the set.
//! * Miss: the wlc rule picks; a new entry holds just that server.
//!
//! Entries unused for 24 h are collected (see [`super::locality`]).

use super::locality::{is_overloaded, AddrCache, CacheEntry};
use super::{overhead, pick_wlc, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{DestId, DestView};
use crate::types::{Millis, SchedFlags};
use std::net::IpAddr;

#[derive(Debug)]
struct Entry {
    addr: IpAddr,
    /// Newest member first.
    set: Vec<DestId>,
    lastmod: Millis,
    lastuse: Millis,
}

impl CacheEntry for Entry {
    fn addr(&self) -> &IpAddr {
        &self.addr
    }
    fn lastuse(&self) -> Millis {
        self.lastuse
    }
}

/// Least overhead/weight member that may take the connection. Members that left the
/// service are skipped (the kernel sees them as not AVAILABLE).
fn set_min(set: &[DestId], dests: &DestView<'_>) -> Option<DestId> {
    let mut it = set
        .iter()
        .filter_map(|id| dests.get(*id).map(|d| (*id, d)))
        .filter(|(_, d)| !d.overloaded);
    let (mut least, mut loh, mut lw) = loop {
        let (id, d) = it.next()?;
        if d.weight() > 0 && d.available {
            break (id, overhead(d), d.weight() as u64);
        }
    };
    for (id, d) in it {
        let (doh, dw) = (overhead(d), d.weight() as u64);
        if loh * dw > doh * lw && d.available {
            (least, loh, lw) = (id, doh, dw);
        }
    }
    Some(least)
}

/// Most overhead/weight member among those with weight > 0; OVERLOAD and availability do
/// not matter here. A member whose server no longer exists at all is passed over (the
/// kernel would still hold it; see the module notes in `locality`).
fn set_max(set: &[DestId], dests: &DestView<'_>) -> Option<DestId> {
    let mut it = set
        .iter()
        .filter_map(|id| dests.get(*id).map(|d| (*id, d)))
        .filter(|(_, d)| d.weight() > 0);
    let (first, d) = it.next()?;
    let (mut most, mut moh, mut mw) = (first, overhead(d), d.weight() as u64);
    for (id, d) in it {
        let (doh, dw) = (overhead(d), d.weight() as u64);
        if moh * dw < doh * mw {
            (most, moh, mw) = (id, doh, dw);
        }
    }
    Some(most)
}

#[derive(Debug, Default)]
pub struct Lblcr {
    cache: AddrCache<Entry>,
}

impl Scheduler for Lblcr {
    fn kind(&self) -> SchedKind {
        SchedKind::Lblcr
    }

    /// Sets are not told about server changes; departed members simply stop qualifying.
    fn update(&mut self, _: &DestView<'_>, _: SchedFlags, _: DestChange) {}

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        input: &SchedInput,
        env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        let now = env.now;
        self.cache.arm(now);
        let expiration = self.cache.expiration;
        let Some(e) = self.cache.get_mut(&input.daddr) else {
            let id = pick_wlc(dests)?;
            self.cache.insert(Entry {
                addr: input.daddr,
                set: vec![id],
                lastmod: now,
                lastuse: now,
            });
            return Some(id);
        };
        e.lastuse = now;
        let min = set_min(&e.set, dests);
        if e.set.len() > 1 && now > e.lastmod + expiration {
            if let Some(m) = set_max(&e.set, dests) {
                e.set.retain(|x| *x != m);
                e.lastmod = now;
            }
        }
        if let Some(m) = min {
            if dests.get(m).is_some_and(|d| !is_overloaded(d, dests)) {
                return Some(m);
            }
        }
        let id = pick_wlc(dests)?;
        if !e.set.contains(&id) {
            e.set.insert(0, id);
            e.lastmod = now;
        }
        Some(id)
    }

    fn tick(&mut self, _dests: &DestView<'_>, now: Millis) {
        self.cache.tick(now);
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::Fixture;
    use super::*;

    #[test]
    fn set_min_skips_overload_and_set_max_skips_weight_zero() {
        let (mut f, ids) = Fixture::with_servers(
            SchedKind::None,
            &[(1, 0, 0, true), (1, 3, 0, false), (0, 9, 0, false)],
        );
        let set = vec![ids[0], ids[1], ids[2]];
        assert_eq!(
            set_min(&set, &f.view()),
            Some(ids[1]),
            "ids[0] is OVERLOAD, ids[2] weight 0"
        );
        assert_eq!(
            set_max(&set, &f.view()),
            Some(ids[1]),
            "weight-0 members are not weighed"
        );
        f.load(ids[0], 5, 0);
        assert_eq!(
            set_max(&set, &f.view()),
            Some(ids[0]),
            "OVERLOAD does not matter for max"
        );
    }

    #[test]
    fn ties_go_to_the_newest_member() {
        let (f, ids) =
            Fixture::with_servers(SchedKind::None, &[(2, 2, 0, false), (1, 1, 0, false)]);
        let set = vec![ids[1], ids[0]];
        assert_eq!(set_min(&set, &f.view()), Some(ids[1]));
        assert_eq!(set_max(&set, &f.view()), Some(ids[1]));
    }
}
