//! mh — Maglev hashing (`ip_vs_mh.c`; Eisenbud et al., NSDI 2016, §3.4).
//!
//! A lookup table of M = 4093 slots (the prime picked by the default
//! `CONFIG_IP_VS_MH_TAB_INDEX=12`) maps a client to a server. Each server has its own
//! pseudo-random preference order over the slots, `offset, offset + skip, offset + 2·skip
//! …` (mod M), derived from its address and port. Servers take turns claiming their next
//! free preferred slot until the table is full; a server with a larger weight takes several
//! slots per turn. Adding or removing one of N servers therefore moves only about 1/N of
//! the slots, unlike sh.
//!
//! * Hashes: `h1`/`h2` are the 64-bit kernel's `hsiphash` of the `u32` `port + fold(addr)`
//!   with the fixed keys below (not secrets: every director builds the same table).
//!   `offset = h1 % M`, `skip = h2 % (M − 1) + 1`.
//! * Weights are the servers' `last_weight` (last non-zero weight): quiescing a server
//!   keeps its slots, so its clients do not move, they fail (or fall back) instead.
//!   Turns per round are `(lw / gcd) >> rshift`, at least 1 for lw ≠ 0, where `rshift`
//!   keeps the largest turn count within 6 bits. Servers whose last_weight is 0 get no
//!   slot.
//! * Lookup: slot `h1(port + fold(saddr)) % M`, the client port counting only with
//!   `mh-port` (`SCHED2`) on TCP/UDP/SCTP. A weight-0 or OVERLOADed server means no
//!   destination unless `mh-fallback` (`SCHED1`): then slots `h1(k' + port + fold) % M`
//!   with `k' = (k + first) mod M`, k = 0..M−1, are probed; an empty slot ends the search.
//! * Rebuilt on every add, edit and removal. With more than M servers the kernel refuses
//!   the rebuild (`-EINVAL`, ignored by its caller), leaving the previous table in place;
//!   rvs does the same. A slot naming a server that has since left the list is treated as
//!   unusable (the kernel would still hand it out; it can only happen in that > M case).

use super::hash::{addr_fold, hsiphash_u32};
use super::{gcd, slot_state, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler, Slot};
use crate::dest::{Dest, DestId, DestView};
use crate::types::SchedFlags;

/// Table size: `primes[CONFIG_IP_VS_MH_TAB_INDEX - 8]` with the default index 12.
pub const TAB_SIZE: usize = 4093;
/// `CONFIG_IP_VS_MH_TAB_INDEX / 2`: turns are kept within this many bits.
const TAB_BITS: u32 = 6;
/// The fixed `hsiphash` keys of `generate_hash_secret` (the first is Knuth's 2^32 / φ),
/// each value used for both 64-bit key words.
const KEY1: (u64, u64) = (2_654_435_761, 2_654_435_761);
const KEY2: (u64, u64) = (2_654_446_892, 2_654_446_892);

#[derive(Debug)]
pub struct Mh {
    lookup: Vec<Option<DestId>>,
}

impl Default for Mh {
    fn default() -> Self {
        Mh {
            lookup: vec![None; TAB_SIZE],
        }
    }
}

/// The `u32` every mh hash is taken of: port and folded address, host order, wrapping.
fn hash_input(port: u16, addr_fold: u32) -> u32 {
    (port as u32).wrapping_add(addr_fold)
}

/// A server's walk through the slots while the table is being populated.
struct Setup {
    id: DestId,
    perm: usize,
    skip: usize,
    turns: u32,
}

impl Setup {
    fn new(id: DestId, d: &Dest, g: u32, rshift: u32) -> Self {
        let v = hash_input(d.cfg.port, addr_fold(&d.cfg.addr));
        let offset = hsiphash_u32(v, KEY1) as usize % TAB_SIZE;
        let skip = hsiphash_u32(v, KEY2) as usize % (TAB_SIZE - 1) + 1;
        let lw = d.last_weight;
        let turns = match (lw / g) >> rshift {
            0 => u32::from(lw != 0),
            t => t,
        };
        Setup {
            id,
            perm: offset,
            skip,
            turns,
        }
    }

    /// The next free slot in this server's preference order.
    fn next_free(&mut self, taken: &[bool]) -> usize {
        while taken[self.perm] {
            self.perm += self.skip;
            if self.perm >= TAB_SIZE {
                self.perm -= TAB_SIZE;
            }
        }
        self.perm
    }
}

impl Mh {
    fn rebuild(&mut self, dests: &DestView<'_>) {
        if dests.len() > TAB_SIZE {
            return;
        }
        let g = dests
            .iter()
            .map(|(_, d)| d.last_weight)
            .filter(|w| *w > 0)
            .fold(0, gcd);
        if g == 0 {
            // No server, or none ever had a weight: nothing to place.
            self.lookup.iter_mut().for_each(|s| *s = None);
            return;
        }
        let max_turns = dests.iter().map(|(_, d)| d.last_weight).max().unwrap_or(0) / g;
        // fls(x) − 6, floored at 0: the number of bits above the sixth.
        let rshift = (32 - max_turns.leading_zeros()).saturating_sub(TAB_BITS);
        let mut setup: Vec<Setup> = dests
            .iter()
            .map(|(id, d)| Setup::new(id, d, g, rshift))
            .collect();

        let mut taken = vec![false; TAB_SIZE];
        let mut filled = 0;
        'fill: loop {
            for s in setup.iter_mut().filter(|s| s.turns >= 1) {
                for _ in 0..s.turns {
                    let c = s.next_free(&taken);
                    taken[c] = true;
                    self.lookup[c] = Some(s.id);
                    filled += 1;
                    if filled == TAB_SIZE {
                        break 'fill;
                    }
                }
            }
        }
    }

    fn slot(&self, dests: &DestView<'_>, v: u32) -> (usize, Slot) {
        let i = hsiphash_u32(v, KEY1) as usize % TAB_SIZE;
        (i, slot_state(dests, self.lookup[i]))
    }
}

impl Scheduler for Mh {
    fn kind(&self) -> SchedKind {
        SchedKind::Mh
    }

    fn update(&mut self, dests: &DestView<'_>, _flags: SchedFlags, _change: DestChange) {
        self.rebuild(dests);
    }

    fn lookup_table(&self) -> Option<Vec<Option<DestId>>> {
        Some(self.lookup.clone())
    }

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        input: &SchedInput,
        env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        let port = match input.proto {
            Some(_) if env.flags.port() => input.sport,
            _ => 0,
        };
        let v = hash_input(port, addr_fold(&input.saddr));
        let (first, state) = self.slot(dests, v);
        match state {
            Slot::Empty => return None,
            Slot::Usable(id) => return Some(id),
            Slot::Unusable if !env.flags.fallback() => return None,
            Slot::Unusable => {}
        }
        for k in 0..TAB_SIZE {
            let off = ((k + first) % TAB_SIZE) as u32;
            match self.slot(dests, v.wrapping_add(off)).1 {
                Slot::Empty => return None,
                Slot::Usable(id) => return Some(id),
                Slot::Unusable => {}
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{client, Fixture};
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn built(weights: &[u32]) -> (Fixture, Vec<DestId>, Mh) {
        let (f, ids) = Fixture::bound_with(SchedKind::None, weights);
        let mut mh = Mh::default();
        mh.update(&f.view(), SchedFlags::default(), DestChange::Reset);
        (f, ids, mh)
    }

    fn slots(mh: &Mh) -> HashMap<DestId, usize> {
        let mut n = HashMap::new();
        for id in mh.lookup.iter().flatten() {
            *n.entry(*id).or_insert(0) += 1;
        }
        n
    }

    fn lookup(mh: &mut Mh, f: &mut Fixture, addr: u32) -> Option<DestId> {
        let view = DestView::new(&f.order, &f.arena);
        let mut env = SchedEnv {
            now: 0,
            flags: f.flags,
            rng: &mut f.rng,
        };
        mh.schedule(&view, &client(addr, 1000), &mut env)
    }

    #[test]
    fn equal_weights_share_the_slots_within_one() {
        let (_f, ids, mh) = built(&[1; 5]);
        let n = slots(&mh);
        assert_eq!(n.values().sum::<usize>(), TAB_SIZE, "every slot filled");
        for id in ids {
            assert!(n[&id] == TAB_SIZE / 5 || n[&id] == TAB_SIZE / 5 + 1);
        }
    }

    /// 200 and 1: 200 / gcd needs 8 bits, so turns are shifted by 2 (50 and 0 → 1).
    /// Expected counts from an independent model of the spec.
    #[test]
    fn turns_are_kept_within_six_bits() {
        let (_f, ids, mh) = built(&[1, 200]);
        let n = slots(&mh);
        assert_eq!((n[&ids[1]], n[&ids[0]]), (4013, 80));
    }

    #[test]
    fn weights_are_reduced_by_their_gcd() {
        let (_f, _, a) = built(&[2, 4]);
        let (_g, _, b) = built(&[1, 2]);
        assert_eq!(a.lookup, b.lookup);
    }

    #[test]
    fn quiesced_server_keeps_its_slots_and_zero_last_weight_gets_none() {
        let (mut f, ids, mut mh) = built(&[1, 1, 1]);
        let before = mh.lookup.clone();
        f.edit(ids[1], |d| d.cfg.weight = 0);
        mh.update(&f.view(), f.flags, DestChange::Edited(ids[1]));
        assert_eq!(mh.lookup, before, "last_weight is still 1");
        let z = f.add(0);
        mh.update(&f.view(), f.flags, DestChange::Added(z));
        assert_eq!(
            mh.lookup, before,
            "a server added with weight 0 gets no slot"
        );
    }

    #[test]
    fn more_servers_than_slots_keeps_the_previous_table() {
        let (_f, _, mh) = built(&vec![1; TAB_SIZE + 1]);
        assert!(mh.lookup.iter().all(Option::is_none));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn removing_one_of_n_servers_moves_few_other_clients(
            n in 5usize..12,
            victim in any::<prop::sample::Index>(),
            seed in any::<u32>(),
        ) {
            let (mut f, ids, mut mh) = built(&vec![1; n]);
            let clients: Vec<u32> = (0..2000u32).map(|i| seed.wrapping_add(i.wrapping_mul(0x9E37_79B9))).collect();
            let before: Vec<_> = clients.iter().map(|c| lookup(&mut mh, &mut f, *c)).collect();
            let v = ids[victim.index(n)];
            f.remove(v);
            mh.update(&f.view(), f.flags, DestChange::Removed { id: v, newer: None });
            let mut moved = 0;
            for (c, b) in clients.iter().zip(&before) {
                let after = lookup(&mut mh, &mut f, *c);
                prop_assert!(after.is_some() && after != Some(v));
                if after != *b {
                    moved += 1;
                }
            }
            prop_assert!(moved * n < 2 * clients.len(), "{} of {} moved with n = {}", moved, clients.len(), n);
        }

        #[test]
        fn lookup_is_stable_and_falls_back_only_to_usable_servers(
            usable in prop::collection::vec(any::<bool>(), 1..6),
            clients in prop::collection::vec(any::<u32>(), 1..20),
        ) {
            let (mut f, ids, mut mh) = built(&vec![1; usable.len()]);
            for (id, u) in ids.iter().zip(&usable) {
                f.arena[*id].overloaded = !u;
            }
            for c in &clients {
                let a = lookup(&mut mh, &mut f, *c);
                prop_assert_eq!(a, lookup(&mut mh, &mut f, *c));
                if let Some(id) = a {
                    prop_assert!(!f.arena[id].overloaded);
                }
            }
            f.flags = SchedFlags(SchedFlags::SCHED1);
            for c in &clients {
                match lookup(&mut mh, &mut f, *c) {
                    Some(id) => prop_assert!(!f.arena[id].overloaded),
                    None => prop_assert!(usable.iter().all(|u| !u)),
                }
            }
        }
    }
}
