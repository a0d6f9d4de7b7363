//! dh — destination hashing (`ip_vs_dh.c`).
//!
//! A static 256-bucket table maps the packet's *destination* address to a server; meant
//! for cache clusters behind a fwmark or port-0 service, where the destination varies (on
//! an ordinary VIP:port service every packet has the same destination, hence one server).
//!
//! Bucket *i* holds the *(i mod n)*-th server in list order; weights play no part. The
//! table is rebuilt when a server is added or removed (an edit changes neither order nor
//! membership). The bucket of an address is `hash_32(fold(daddr), 8)`. If that server is
//! quiesced (weight 0), OVERLOADed or gone there is no destination: dh has no fallback.

use super::hash::{addr_fold, hash_32};
use super::{slot_state, DestChange, SchedEnv, SchedInput, SchedKind, Scheduler, Slot};
use crate::dest::{DestId, DestView};
use crate::types::SchedFlags;

const TAB_BITS: u32 = 8;
const TAB_SIZE: usize = 1 << TAB_BITS;

#[derive(Debug, Default)]
pub struct Dh {
    /// Empty until the first update, and whenever the service has no server.
    buckets: Vec<DestId>,
}

impl Scheduler for Dh {
    fn kind(&self) -> SchedKind {
        SchedKind::Dh
    }

    fn update(&mut self, dests: &DestView<'_>, _flags: SchedFlags, change: DestChange) {
        if matches!(change, DestChange::Edited(_)) {
            return;
        }
        let list: Vec<DestId> = dests.iter().map(|(id, _)| id).collect();
        self.buckets = if list.is_empty() {
            Vec::new()
        } else {
            (0..TAB_SIZE).map(|i| list[i % list.len()]).collect()
        };
    }

    fn lookup_table(&self) -> Option<Vec<Option<DestId>>> {
        Some(self.buckets.iter().copied().map(Some).collect())
    }

    fn schedule(
        &mut self,
        dests: &DestView<'_>,
        input: &SchedInput,
        _env: &mut SchedEnv<'_>,
    ) -> Option<DestId> {
        let b = hash_32(addr_fold(&input.daddr), TAB_BITS) as usize;
        match slot_state(dests, self.buckets.get(b).copied()) {
            Slot::Usable(id) => Some(id),
            Slot::Empty | Slot::Unusable => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::fixture::Fixture;
    use super::*;
    use std::net::{IpAddr, Ipv4Addr};

    fn to(daddr: IpAddr) -> SchedInput {
        SchedInput {
            proto: None,
            saddr: IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
            sport: 0,
            daddr,
            dport: 80,
        }
    }

    #[test]
    fn bucket_i_holds_the_i_mod_n_th_server_whatever_the_weights() {
        let (f, ids) = Fixture::bound_with(SchedKind::None, &[7, 1, 0]);
        let mut dh = Dh::default();
        dh.update(&f.view(), SchedFlags::default(), DestChange::Reset);
        let list = [ids[2], ids[1], ids[0]];
        for (i, b) in dh.buckets.iter().enumerate() {
            assert_eq!(*b, list[i % 3]);
        }
    }

    #[test]
    fn same_destination_same_server_and_quiesced_means_none() {
        let mut f = Fixture::new(SchedKind::Dh);
        let ids: Vec<DestId> = (0..4).map(|_| f.add(1)).collect();
        let x = to("198.51.100.77".parse().unwrap());
        let first = f.pick_for(&x).expect("a server");
        for _ in 0..5 {
            assert_eq!(f.pick_for(&x), Some(first));
        }
        f.edit(first, |d| d.cfg.weight = 0);
        assert_eq!(f.pick_for(&x), None, "no fallback");
        assert!(ids.contains(&first));
    }
}
