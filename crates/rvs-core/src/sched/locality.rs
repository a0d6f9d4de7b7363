//! The destination-address cache shared by lblc and lblcr (`ip_vs_lblc.c`,
//! `ip_vs_lblcr.c`): 1024 hash buckets keyed by the packet's destination address, and the
//! garbage collector that keeps the cache from growing without bound.
//!
//! The collector is a timer that fires every 60 s, counted from the first time the
//! scheduler is used (the kernel counts from service creation; rvs's table ticks right
//! away, so the two agree to within one tick). Each firing either
//! * on every 30th firing (half an hour while the cache is small), drops every entry
//!   unused for the expiration time (`lblc_expiration`/`lblcr_expiration`, 24 h); or
//! * while the cache holds more than 16 entries per bucket, drops entries unused for
//!   6 min, bucket by bucket from a rotating rover, until it has freed 4/3 of the excess
//!   (at most half the limit). Such a firing does not advance the 30-count.
//!
//! Missed firings (a caller that ticks late) are replayed at their nominal times, so the
//! outcome does not depend on how often the caller ticks.

use super::hash::{addr_fold, hash_32};
use crate::dest::{Dest, DestView};
use crate::types::Millis;
use std::net::IpAddr;

const TAB_BITS: u32 = 10;
const TAB_SIZE: usize = 1 << TAB_BITS;
const TAB_MASK: usize = TAB_SIZE - 1;
/// Entries beyond which the 6-minute collection starts.
const MAX_SIZE: usize = TAB_SIZE * 16;
pub(super) const CHECK_INTERVAL_MS: Millis = 60_000;
/// Idle time after which an entry may go while the cache is over its limit.
const ENTRY_TIMEOUT_MS: Millis = 6 * 60_000;
/// Default of the `lblc_expiration` / `lblcr_expiration` sysctls.
pub const DEFAULT_EXPIRATION_MS: Millis = 24 * 60 * 60 * 1000;
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// What the collector needs to know of an entry.
pub(super) trait CacheEntry {
    fn addr(&self) -> &IpAddr;
    fn lastuse(&self) -> Millis;
}

#[derive(Debug)]
pub(super) struct AddrCache<E> {
    buckets: Vec<Vec<E>>,
    entries: usize,
    /// Bucket where the last collection stopped.
    rover: usize,
    /// Firings since the last full expiration, starting at 1.
    counter: u32,
    /// Nominal time of the next firing; `None` until the timer is armed.
    next_check: Option<Millis>,
    /// Idle time after which the full check drops an entry.
    pub expiration: Millis,
}

impl<E> Default for AddrCache<E> {
    fn default() -> Self {
        AddrCache {
            buckets: (0..TAB_SIZE).map(|_| Vec::new()).collect(),
            entries: 0,
            rover: 0,
            counter: 1,
            next_check: None,
            expiration: DEFAULT_EXPIRATION_MS,
        }
    }
}

fn bucket_of(addr: &IpAddr) -> usize {
    hash_32(addr_fold(addr), TAB_BITS) as usize
}

impl<E: CacheEntry> AddrCache<E> {
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.entries
    }

    pub fn get_mut(&mut self, addr: &IpAddr) -> Option<&mut E> {
        self.buckets[bucket_of(addr)]
            .iter_mut()
            .find(|e| e.addr() == addr)
    }

    /// Adds an entry for an address that has none.
    pub fn insert(&mut self, e: E) {
        self.buckets[bucket_of(e.addr())].push(e);
        self.entries += 1;
    }

    /// Starts the collection timer if it is not running yet.
    pub fn arm(&mut self, now: Millis) {
        self.next_check.get_or_insert(now + CHECK_INTERVAL_MS);
    }

    /// Runs every collector firing due by `now`.
    pub fn tick(&mut self, now: Millis) {
        self.arm(now);
        while let Some(at) = self.next_check.filter(|at| *at <= now) {
            self.fire(at);
            self.next_check = Some(at + CHECK_INTERVAL_MS);
        }
    }

    fn fire(&mut self, now: Millis) {
        if self.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
            self.sweep(now, self.expiration, None);
            self.counter = 1;
        } else if self.entries <= MAX_SIZE {
            self.counter += 1;
        } else {
            let goal = ((self.entries - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
            self.sweep(now, ENTRY_TIMEOUT_MS, Some(goal as i64));
        }
    }

    /// Drops entries idle for `max_idle` or longer, bucket by bucket after the rover,
    /// stopping after the bucket in which `goal` removals were reached.
    fn sweep(&mut self, now: Millis, max_idle: Millis, mut goal: Option<i64>) {
        let mut j = self.rover;
        for _ in 0..TAB_SIZE {
            j = (j + 1) & TAB_MASK;
            let bucket = &mut self.buckets[j];
            let before = bucket.len();
            bucket.retain(|e| now < e.lastuse() + max_idle);
            let removed = before - bucket.len();
            self.entries -= removed;
            if let Some(g) = goal.as_mut() {
                *g -= removed as i64;
                if *g <= 0 {
                    break;
                }
            }
        }
        self.rover = j;
    }
}

/// "This server is overloaded and another one is idle enough": more active connections
/// than its weight while some server of the service has fewer than half its weight.
/// Used on the cache-hit path instead of the OVERLOAD flag.
pub(super) fn is_overloaded(d: &Dest, dests: &DestView<'_>) -> bool {
    d.activeconns > d.weight()
        && dests
            .iter()
            .any(|(_, s)| (s.activeconns as u64) * 2 < s.weight() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    struct E(IpAddr, Millis);

    impl CacheEntry for E {
        fn addr(&self) -> &IpAddr {
            &self.0
        }
        fn lastuse(&self) -> Millis {
            self.1
        }
    }

    fn addr(i: u32) -> IpAddr {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + i))
    }

    const MIN: Millis = 60_000;

    #[test]
    fn full_check_runs_on_every_thirtieth_firing_and_drops_day_old_entries() {
        let mut c: AddrCache<E> = AddrCache::default();
        c.tick(0);
        c.insert(E(addr(1), 0));
        c.insert(E(addr(2), 10 * MIN));
        c.tick(24 * 60 * MIN - 1); // the check at 23h30m: nothing is a day old yet
        assert_eq!(c.len(), 2);
        c.tick(24 * 60 * MIN); // 24h is a multiple of 30 min: addr 1 is exactly a day idle
        assert_eq!(c.len(), 1);
        assert!(c.get_mut(&addr(2)).is_some());
        c.tick(24 * 60 * MIN + 29 * MIN); // 24h10m passes without a check
        assert_eq!(c.len(), 1);
        c.tick(24 * 60 * MIN + 30 * MIN);
        assert_eq!(c.len(), 0);
    }

    #[test]
    fn late_ticks_replay_the_missed_firings() {
        let mut a: AddrCache<E> = AddrCache::default();
        let mut b: AddrCache<E> = AddrCache::default();
        for c in [&mut a, &mut b] {
            c.tick(0);
            c.insert(E(addr(1), 0));
            c.insert(E(addr(2), 30 * 60 * MIN));
        }
        for t in 1..=(48 * 60) {
            a.tick(t * MIN);
        }
        b.tick(48 * 60 * MIN);
        assert_eq!((a.len(), a.counter), (b.len(), b.counter));
        assert_eq!(a.len(), 1, "addr 1 went at 24h, addr 2 stays until 54h");
    }

    #[test]
    fn over_the_limit_six_minute_idle_entries_go_until_the_goal() {
        let mut c: AddrCache<E> = AddrCache::default();
        c.tick(0);
        for i in 0..(MAX_SIZE as u32 + 300) {
            c.insert(E(addr(i), 0));
        }
        c.tick(5 * MIN); // over the limit, but nothing is 6 minutes idle yet
        assert_eq!(c.len(), MAX_SIZE + 300);
        assert_eq!(
            c.counter, 1,
            "an over-limit firing does not count towards the full check"
        );
        c.tick(6 * MIN);
        let removed = MAX_SIZE + 300 - c.len();
        let biggest = c.buckets.iter().map(Vec::len).max().unwrap_or(0);
        // goal = 300 * 4 / 3 = 400, reached inside the last bucket visited.
        assert!(
            (400..400 + biggest + 1).contains(&removed),
            "removed {removed}"
        );
        let visited = c.rover;
        assert!(visited > 0, "the rover moved");
    }
}
