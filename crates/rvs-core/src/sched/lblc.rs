//! lblc — locality-based least connection (`ip_vs_lblc.c`).
//!
//! For cache clusters: requests for the same *destination* address (the origin server a
//! cache fetches from) should reach the same cache server, so its cache stays warm. A
//! table remembers, per destination address, the server last chosen for it.
//!
//! * Hit: the entry's use time is refreshed and its server is used if it is still in the
//!   service, has weight > 0 and is not "overloaded" in lblc's sense (more active
//!   connections than its weight while another server is below half of its weight — see
//!   [`is_overloaded`]; the OVERLOAD flag itself is not looked at on this path).
//! * Otherwise the wlc rule chooses, and the entry is created or re-pointed.
//!
//! Entries unused for 24 h are collected (see [`super::locality`]).

#[cfg(test)]
use super::locality::DEFAULT_EXPIRATION_MS;
use super::locality::{is_overloaded, AddrCache, CacheEntry};
use super::{pick_wlc, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler};
use crate::dest::{DestId, DestView};
use crate::types::{Millis, SchedFlags};
use std::net::IpAddr;

#[derive(Debug)]
struct Entry {
    addr: IpAddr,
    dest: DestId,
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

#[derive(Debug, Default)]
pub struct Lblc {
    cache: AddrCache<Entry>,
}

impl Scheduler for Lblc {
    fn kind(&self) -> SchedKind {
        SchedKind::Lblc
    }

    /// The cache is not told about server changes: entries of departed servers fail the
    /// hit check and are re-pointed on their next use.
    fn update(&mut self, _: &DestView<'_>, _: SchedFlags, _: DestChange) {}

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        input: &SchedInput,
        env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        let now = env.now;
        self.cache.arm(now);
        if let Some(e) = self.cache.get_mut(&input.daddr) {
            e.lastuse = now;
            let usable = dests
                .get(e.dest)
                .is_some_and(|d| d.available && d.weight() > 0 && !is_overloaded(d, dests));
            if usable {
                return Some(e.dest);
            }
        }
        let id = pick_wlc(dests)?;
        match self.cache.get_mut(&input.daddr) {
            Some(e) => {
                // The kernel replaces the entry only when the server differs; its use time
                // was refreshed above either way.
                e.dest = id;
            }
            None => self.cache.insert(Entry {
                addr: input.daddr,
                dest: id,
                lastuse: now,
            }),
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
    use std::net::Ipv4Addr;

    fn to(last: u8) -> SchedInput {
        SchedInput {
            proto: None,
            saddr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            sport: 0,
            daddr: IpAddr::V4(Ipv4Addr::new(198, 51, 100, last)),
            dport: 80,
        }
    }

    #[test]
    fn a_destination_keeps_its_server_while_wlc_would_choose_another() {
        let mut f = Fixture::new(SchedKind::Lblc);
        let b = f.add(1);
        let a = f.add(1);
        assert_eq!(f.pick_for(&to(1)), Some(a));
        f.load(a, 1, 0);
        assert_eq!(f.pick_for(&to(2)), Some(b), "a miss follows wlc");
        f.load(b, 1, 0);
        f.load(a, 5, 0);
        assert_eq!(
            f.pick_for(&to(1)),
            Some(a),
            "5 > 1 but nobody is under half its weight"
        );
        f.load(b, 0, 0);
        assert_eq!(
            f.pick_for(&to(1)),
            Some(b),
            "now B is idle: A counts as overloaded"
        );
        f.load(a, 0, 0);
        assert_eq!(f.pick_for(&to(1)), Some(b), "the entry was re-pointed");
    }

    #[test]
    fn idle_entries_expire_after_a_day_at_a_full_check() {
        let mut f = Fixture::new(SchedKind::Lblc);
        f.tick(0);
        let b = f.add(1);
        let a = f.add(1);
        f.load(a, 1, 0);
        assert_eq!(f.pick_for(&to(1)), Some(b));
        f.load(a, 0, 0);
        let day = DEFAULT_EXPIRATION_MS;
        for t in (0..=day).step_by(60_000) {
            f.tick(t);
        }
        assert_eq!(
            f.pick_for(&to(1)),
            Some(a),
            "the entry went at 24 h: wlc picks A"
        );
    }
}
