//! An ordered index for the "least loaded" schedulers (lc, wlc, sed, nq, fo, ovf).
//!
//! IPVS scans the whole server list on every new connection: O(n), about 26 µs per pick
//! at 10,000 servers. Each of these schedulers picks the server with the smallest *rank*
//! (overhead, overhead/weight, −weight, ...) and breaks ties by list order, newest first.
//! That order is a total order — (rank, newest first) — so a sorted set keyed by it gives
//! the same decision from its first element, and costs O(log n) per change of a server's
//! load, weight or OVERLOAD flag, which the table reports through
//! [`Scheduler::load_changed`](super::Scheduler::load_changed).
//!
//! For short lists the scan is cheaper than maintaining the set, so the index only exists
//! from [`INDEX_MIN`] servers on; below that the scheduler scans as the kernel does. Both
//! paths are compared on random operation sequences by the tests below.

use super::DestChange;
use crate::dest::{Dest, DestId, DestView};
use std::cmp::{Ordering, Reverse};
use std::collections::{BTreeSet, HashMap};

/// From this many servers on, a service keeps the index.
pub const INDEX_MIN: usize = 32;

/// A fraction `num / den` (den > 0) ordered by its exact value, as the kernel compares
/// loads: by cross-multiplication, equal fractions being equal.
#[derive(Clone, Copy, Debug)]
pub struct Ratio {
    pub num: u64,
    pub den: u64,
}

impl Ord for Ratio {
    fn cmp(&self, o: &Self) -> Ordering {
        (self.num as u128 * o.den as u128).cmp(&(o.num as u128 * self.den as u128))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Ratio {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Ratio {}

/// A server's rank for one scheduler: `None` when it may not be picked at all.
pub type RankFn<K> = fn(&Dest) -> Option<K>;

struct Index<K> {
    set: BTreeSet<(K, Reverse<u64>, DestId)>,
    at: HashMap<DestId, (K, u64)>,
}

impl<K: Ord + Copy> Index<K> {
    fn remove(&mut self, id: DestId) {
        if let Some((k, seq)) = self.at.remove(&id) {
            self.set.remove(&(k, Reverse(seq), id));
        }
    }

    fn put(&mut self, id: DestId, d: Option<&Dest>, rank: RankFn<K>) {
        self.remove(id);
        let Some(d) = d.filter(|d| d.available) else {
            return;
        };
        if let Some(k) = rank(d) {
            self.set.insert((k, Reverse(d.seq), id));
            self.at.insert(id, (k, d.seq));
        }
    }
}

/// The best server by a rank, kept in an index for long lists.
pub struct Ranked<K> {
    rank: RankFn<K>,
    min: usize,
    index: Option<Index<K>>,
}

impl<K> std::fmt::Debug for Ranked<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ranked")
            .field("indexed", &self.index.is_some())
            .finish()
    }
}

thread_local! {
    /// Set while [`SchedKind::build_scan_only`](super::SchedKind::build_scan_only) builds a
    /// scheduler that always scans (the kernel's way): for comparisons and lockstep tests.
    pub(crate) static FORCE_SCAN: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

impl<K: Ord + Copy> Ranked<K> {
    pub fn new(rank: RankFn<K>) -> Self {
        if FORCE_SCAN.with(|f| f.get()) {
            return Self::with_min(rank, usize::MAX);
        }
        Self::with_min(rank, INDEX_MIN)
    }

    /// With a custom threshold (tests use a small one to exercise the index).
    pub fn with_min(rank: RankFn<K>, min: usize) -> Self {
        Ranked {
            rank,
            min,
            index: None,
        }
    }

    fn rebuild(&mut self, dests: &DestView<'_>) {
        let mut ix = Index {
            set: BTreeSet::new(),
            at: HashMap::with_capacity(dests.len()),
        };
        for (id, d) in dests.iter() {
            ix.put(id, Some(d), self.rank);
        }
        self.index = Some(ix);
    }

    /// Follows a change of the server list.
    pub fn update(&mut self, dests: &DestView<'_>, change: DestChange) {
        if dests.len() < self.min {
            self.index = None;
            return;
        }
        let rank = self.rank;
        match (&mut self.index, change) {
            (None, _) | (Some(_), DestChange::Reset) => self.rebuild(dests),
            (Some(ix), DestChange::Added(id) | DestChange::Edited(id)) => {
                ix.put(id, dests.get(id), rank)
            }
            (Some(ix), DestChange::Removed { id, .. }) => ix.remove(id),
        }
    }

    /// Follows a change of one server's connection counts or OVERLOAD flag.
    pub fn load_changed(&mut self, dests: &DestView<'_>, id: DestId) {
        let rank = self.rank;
        if let Some(ix) = &mut self.index {
            ix.put(id, dests.get(id), rank);
        }
    }

    /// The best server: from the index when there is one, else from `scan`.
    pub fn best(&self, scan: impl FnOnce() -> Option<DestId>) -> Option<DestId> {
        match &self.index {
            Some(ix) => ix.set.first().map(|(_, _, id)| *id),
            None => scan(),
        }
    }

    pub fn is_indexed(&self) -> bool {
        self.index.is_some()
    }

    pub fn rank(&self) -> RankFn<K> {
        self.rank
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::Fixture;
    use super::super::{eligible, overhead, SchedKind};
    use super::*;
    use proptest::prelude::*;

    /// What a list edit or a connection does to a fixture.
    #[derive(Clone, Debug)]
    enum Op {
        Add(u32),
        Edit(usize, u32),
        Remove(usize),
        Load(usize, u32, u32),
        Overload(usize, bool),
    }

    fn arb_ops() -> impl Strategy<Value = Vec<Op>> {
        let op = prop_oneof![
            3 => (0u32..6).prop_map(Op::Add),
            1 => (0usize..64, 0u32..6).prop_map(|(i, w)| Op::Edit(i, w)),
            1 => (0usize..64).prop_map(Op::Remove),
            4 => (0usize..64, 0u32..8, 0u32..8).prop_map(|(i, a, n)| Op::Load(i, a, n)),
            1 => (0usize..64, any::<bool>()).prop_map(|(i, o)| Op::Overload(i, o)),
        ];
        prop::collection::vec(op, 1..120)
    }

    fn wlc_rank(d: &Dest) -> Option<Ratio> {
        (!d.overloaded && d.weight() > 0).then(|| Ratio {
            num: overhead(d),
            den: d.weight() as u64,
        })
    }

    /// The kernel's wlc scan, the oracle.
    fn wlc_scan(dests: &DestView<'_>) -> Option<DestId> {
        super::super::pick_wlc(dests)
    }

    proptest! {
        /// Random edits and loads, the index (threshold 4) checked against the scan after
        /// every step.
        #[test]
        fn indexed_pick_equals_the_scan(ops in arb_ops()) {
            let mut f = Fixture::new(SchedKind::None);
            let mut ranked = Ranked::with_min(wlc_rank, 4);
            let mut live: Vec<DestId> = Vec::new();
            for op in ops {
                match op {
                    Op::Add(w) => {
                        let id = f.add(w);
                        live.push(id);
                        ranked.update(&f.view(), DestChange::Added(id));
                    }
                    Op::Edit(i, w) if !live.is_empty() => {
                        let id = live[i % live.len()];
                        f.edit(id, |d| d.cfg.weight = w);
                        ranked.update(&f.view(), DestChange::Edited(id));
                    }
                    Op::Remove(i) if !live.is_empty() => {
                        let id = live.remove(i % live.len());
                        f.remove(id);
                        ranked.update(&f.view(), DestChange::Removed { id, newer: None });
                    }
                    Op::Load(i, a, n) if !live.is_empty() => {
                        let id = live[i % live.len()];
                        f.load(id, a, n);
                        ranked.load_changed(&f.view(), id);
                    }
                    Op::Overload(i, o) if !live.is_empty() => {
                        let id = live[i % live.len()];
                        f.arena[id].overloaded = o;
                        ranked.load_changed(&f.view(), id);
                    }
                    _ => {}
                }
                let view = f.view();
                prop_assert_eq!(ranked.is_indexed(), view.len() >= 4);
                prop_assert_eq!(ranked.best(|| wlc_scan(&view)), wlc_scan(&view));
            }
        }
    }

    #[test]
    fn equal_ratios_tie_to_the_newest_server() {
        let mut f = Fixture::new(SchedKind::None);
        let mut ranked = Ranked::with_min(wlc_rank, 1);
        let old = f.add(2);
        ranked.update(&f.view(), DestChange::Added(old));
        let new = f.add(4);
        ranked.update(&f.view(), DestChange::Added(new));
        // 1/2 == 2/4: the newer server wins, as in the kernel's strict comparison.
        f.load(old, 0, 1);
        ranked.load_changed(&f.view(), old);
        f.load(new, 0, 2);
        ranked.load_changed(&f.view(), new);
        assert_eq!(ranked.best(|| None), Some(new));
        assert!(eligible(&f.arena[new]));
    }
}
