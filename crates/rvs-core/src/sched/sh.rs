//! sh — source hashing (`ip_vs_sh.c`).
//!
//! A 256-bucket table maps the client (source) address — and with `sh-port` also the
//! client port — to a server, so one client keeps landing on the same server without any
//! per-client state.
//!
//! Building: walk the list in order, each server filling `weight` consecutive buckets
//! (a quiesced server still takes one, so quiescing does not reshuffle anyone else),
//! wrapping around the list until all 256 are filled. Rebuilt on every add, edit and
//! removal.
//!
//! Lookup: `h = hash_32(port + fold(saddr), 8)`, port being 0 unless `sh-port`
//! (`SCHED2`) is set and the packet is TCP/UDP/SCTP. A weight-0 or OVERLOADed server in
//! bucket `h` means no destination — unless `sh-fallback` (`SCHED1`): then buckets
//! `(2h + k) mod 256`, k = 0..255, are tried in turn and the first usable server wins.
//! (The kernel adds the starting bucket twice: it offsets the probe by `k + h` and then
//! adds `h` again; rvs keeps that walk.)

use super::hash::{addr_fold, hash_32};
use super::{slot_state, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler, Slot};
use crate::dest::{DestId, DestView};
use crate::types::SchedFlags;

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug, Default)]
pub struct Sh {
    /// Empty when the service has no server.
    buckets: Vec<DestId>,
}

impl Scheduler for Sh {
    fn kind(&self) -> SchedKind {
        SchedKind::Sh
    }

    fn update(&mut self, dests: &DestView<'_>, _flags: SchedFlags, _change: DestChange) {
        self.buckets.clear();
        let list: Vec<(DestId, u32)> = dests.iter().map(|(id, d)| (id, d.weight())).collect();
        if list.is_empty() {
            return;
        }
        let (mut p, mut count) = (0, 0);
        while self.buckets.len() < TAB_SIZE {
            let (id, w) = list[p];
            self.buckets.push(id);
            count += 1;
            if count >= w {
                p = (p + 1) % list.len();
                count = 0;
            }
        }
    }

    fn lookup_table(&self) -> Option<Vec<Option<DestId>>> {
        Some(self.buckets.iter().copied().map(Some).collect())
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
        let h = hash_32(
            (port as u32).wrapping_add(addr_fold(&input.saddr)),
            TAB_BITS,
        ) as usize;
        match slot_state(dests, self.buckets.get(h).copied()) {
            Slot::Empty => return None,
            Slot::Usable(id) => return Some(id),
            Slot::Unusable if !env.flags.fallback() => return None,
            Slot::Unusable => {}
        }
        for k in 0..TAB_SIZE {
            let bucket = ((k + h) % TAB_SIZE + h) % TAB_SIZE;
            match slot_state(dests, self.buckets.get(bucket).copied()) {
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

    fn built(weights: &[u32]) -> (Fixture, Vec<DestId>, Sh) {
        let (f, ids) = Fixture::bound_with(SchedKind::None, weights);
        let mut sh = Sh::default();
        sh.update(&f.view(), SchedFlags::default(), DestChange::Reset);
        (f, ids, sh)
    }

    fn lookup(sh: &mut Sh, f: &mut Fixture, addr: u32, port: u16) -> Option<DestId> {
        let view = DestView::new(&f.order, &f.arena);
        let mut env = SchedEnv {
            now: 0,
            flags: f.flags,
            rng: &mut f.rng,
        };
        sh.schedule(&view, &client(addr, port), &mut env)
    }

    #[test]
    fn each_server_fills_weight_consecutive_buckets_and_weight_zero_one() {
        let (_f, ids, sh) = built(&[2, 0, 3]); // list: ids[2] (3), ids[1] (0), ids[0] (2)
        let pattern = [ids[2], ids[2], ids[2], ids[1], ids[0], ids[0]];
        for (i, b) in sh.buckets.iter().enumerate() {
            assert_eq!(*b, pattern[i % 6], "bucket {i}");
        }
        assert_eq!(sh.buckets.len(), TAB_SIZE);
    }

    proptest! {
        #[test]
        fn lookup_is_stable_and_independent_of_the_instance(
            weights in prop::collection::vec(1u32..5, 1..8),
            clients in prop::collection::vec(any::<u32>(), 1..20),
        ) {
            let (mut f, _, mut sh1) = built(&weights);
            let mut sh2 = Sh::default();
            sh2.update(&f.view(), SchedFlags::default(), DestChange::Reset);
            for c in clients {
                let a = lookup(&mut sh1, &mut f, c, 1);
                prop_assert!(a.is_some());
                prop_assert_eq!(a, lookup(&mut sh1, &mut f, c, 2), "port ignored without sh-port");
                prop_assert_eq!(a, lookup(&mut sh2, &mut f, c, 1));
            }
        }

        #[test]
        fn quiescing_a_weight_one_server_moves_nobody_else(
            n in 2usize..8,
            victim in any::<prop::sample::Index>(),
            clients in prop::collection::vec(any::<u32>(), 1..30),
        ) {
            let (mut f, ids, mut sh) = built(&vec![1; n]);
            let before: Vec<_> = clients.iter().map(|c| lookup(&mut sh, &mut f, *c, 0)).collect();
            let v = ids[victim.index(n)];
            f.arena[v].cfg.weight = 0;
            sh.update(&f.view(), f.flags, DestChange::Edited(v));
            for (c, b) in clients.iter().zip(before) {
                let after = lookup(&mut sh, &mut f, *c, 0);
                if b == Some(v) {
                    prop_assert_eq!(after, None);
                } else {
                    prop_assert_eq!(after, b);
                }
            }
        }

        #[test]
        fn fallback_finds_a_usable_server_whenever_one_exists(
            usable in prop::collection::vec(any::<bool>(), 1..8),
            clients in prop::collection::vec(any::<u32>(), 1..20),
        ) {
            let (mut f, ids, mut sh) = built(&vec![1; usable.len()]);
            for (id, u) in ids.iter().zip(&usable) {
                f.arena[*id].overloaded = !u;
            }
            f.flags = SchedFlags(SchedFlags::SCHED1);
            for c in clients {
                match lookup(&mut sh, &mut f, c, 0) {
                    Some(id) => prop_assert!(!f.arena[id].overloaded),
                    None => prop_assert!(usable.iter().all(|u| !u)),
                }
            }
        }
    }
}
