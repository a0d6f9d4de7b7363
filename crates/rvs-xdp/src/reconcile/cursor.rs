//! rr/wrr cursor surgery: the scheduler state of rr and wrr (`rvs_sched_state`, read and
//! written under its spin lock) after a change of the server list, as the kernel leaves
//! it. The kernel adjusts its cursor in the list-change callbacks; the reconciler only sees
//! the list before and after, so the change is recovered by comparing the two.

use super::Pushed;
use crate::abi::{self, Plain};
use crate::error::{map_err, Result};
use crate::loader::Director;
use crate::sys::BPF_F_LOCK;
use rvs_core::sched::gcd;
use rvs_core::{DestId, SchedKind};

/// wrr's `(mw, di)` for a list of weights (`ip_vs_wrr_gcd_weight`, `ip_vs_wrr_max_weight`).
pub fn wrr_params(weights: impl Iterator<Item = u32> + Clone) -> (u32, u32) {
    let g = weights.clone().filter(|w| *w > 0).fold(0, gcd);
    let di = if g == 0 { 1 } else { g };
    let max = weights.max().unwrap_or(0);
    (max.saturating_sub(di - 1), di)
}

pub(super) fn read_sched(dir: &Director, slot: u32) -> Result<abi::SchedState> {
    let mut s = abi::SchedState::default();
    dir.maps
        .sched_state
        .lookup(&slot.to_ne_bytes(), s.as_bytes_mut(), BPF_F_LOCK)
        .map_err(map_err("rvs_sched_state"))?;
    Ok(s)
}

pub(super) fn write_sched(dir: &Director, slot: u32, mut s: abi::SchedState) -> Result<()> {
    s.version = s.version.wrapping_add(1);
    dir.maps
        .sched_state
        .update(&slot.to_ne_bytes(), s.as_bytes(), BPF_F_LOCK)
        .map_err(map_err("rvs_sched_state"))
}

/// The rr/wrr cursor after a change, as `ip_vs_rr_del_dest` / `ip_vs_wrr_dest_changed`
/// leave it. Changes are recovered from the previous push: a fresh or rebound scheduler
/// starts at the head; rr follows a deleted cursor to the next-newer survivor; wrr rewinds
/// to the head on any list or server change and keeps its bar where it can.
#[allow(clippy::too_many_arguments)]
pub(super) fn adjust_cursor(
    dir: &Director,
    slot: u32,
    kind: SchedKind,
    flags: u32,
    old: Option<&Pushed>,
    list: &[(DestId, u16, rvs_core::DestConfig)],
    mw: u32,
    di: u32,
) -> Result<usize> {
    if kind != SchedKind::Rr && kind != SchedKind::Wrr {
        return Ok(0);
    }
    let fresh = old.is_none_or(|p| p.kind != kind || p.slot != slot);
    let mut s = read_sched(dir, slot)?;
    let before = s;
    if fresh {
        s.rr_cursor = abi::RVS_NO_DEST;
        s.rr_hint = 0;
        s.wrr_cl = -1;
        s.wrr_cw = mw as i32;
    } else {
        let old = old.expect("not fresh");
        let list_changed = old.list.len() != list.len()
            || old
                .list
                .iter()
                .zip(list)
                .any(|(a, b)| a.0 != b.0 || a.2 != b.2);
        match kind {
            SchedKind::Rr => {
                if s.rr_cursor != abi::RVS_NO_DEST
                    && !list.iter().any(|(_, ds, _)| *ds == s.rr_cursor)
                {
                    // the cursor's server left: the next newer survivor, or the head
                    let pos = old.list.iter().position(|(_, ds, _)| *ds == s.rr_cursor);
                    s.rr_cursor = pos
                        .and_then(|p| {
                            old.list[..p]
                                .iter()
                                .rev()
                                .find(|(id, ..)| list.iter().any(|(i, ..)| i == id))
                                .map(|(_, ds, _)| *ds)
                        })
                        .unwrap_or(abi::RVS_NO_DEST);
                }
            }
            _ => {
                let (mw, di) = (mw as i32, di as i32);
                if list_changed {
                    s.wrr_cl = -1;
                    if s.wrr_cw > mw || s.wrr_cw == 0 {
                        s.wrr_cw = mw;
                    } else if di > 1 {
                        s.wrr_cw = (s.wrr_cw / di) * di + 1;
                    }
                } else if old.flags != flags && s.wrr_cw == 0 {
                    s.wrr_cw = mw;
                    s.wrr_cl = -1;
                }
            }
        }
    }
    if s == before && !fresh {
        return Ok(0);
    }
    write_sched(dir, slot, s)?;
    Ok(1)
}
