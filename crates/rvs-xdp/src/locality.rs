//! Garbage collection of the lblc/lblcr caches (BPF hash maps), with the timing of
//! `ip_vs_lblc.c` / `ip_vs_lblcr.c` as rvs-core models it (`sched/locality.rs`): a check
//! every 60 s; every 30th check drops entries unused for 24 h; while a service's cache
//! holds more than 16 entries per bucket, entries idle 6 minutes go, bucket by bucket from
//! a rotating rover, until 4/3 of the excess is freed (at most half the limit). Buckets
//! are the kernel's: `hash_32(fold(addr), 10)`.

use crate::abi::{self, Plain};
use crate::encode::ip_of;
use crate::error::{map_err, Result};
use crate::loader::Director;
use rvs_core::sched::{addr_fold, hash_32};
use std::collections::HashMap;

const NS: u64 = 1_000_000_000;
const TAB_SIZE: usize = 1 << abi::RVS_LBLC_TAB_BITS;
const MAX_SIZE: usize = TAB_SIZE * 16;
const CHECK_INTERVAL_NS: u64 = 60 * NS;
const ENTRY_TIMEOUT_NS: u64 = 6 * 60 * NS;
/// `lblc_expiration` / `lblcr_expiration` default.
pub const EXPIRATION_NS: u64 = 24 * 3600 * NS;
const COUNT_FOR_FULL_EXPIRATION: u32 = 30;

/// The collector's state for one service slot.
#[derive(Clone, Debug)]
struct Collector {
    counter: u32,
    rover: usize,
    next_check: u64,
}

/// Collectors of every lblc/lblcr service, by slot.
#[derive(Debug, Default)]
pub struct Gc {
    per_slot: HashMap<u32, Collector>,
}

/// A cache entry, from either map.
struct Item {
    lblcr: bool,
    key: abi::LblcKey,
    lastuse: u64,
}

impl Gc {
    /// Starts the timer of a service slot if it is not running (the kernel starts it when
    /// the scheduler is bound).
    pub fn arm(&mut self, slot: u32, now_ns: u64) {
        self.per_slot.entry(slot).or_insert(Collector {
            counter: 1,
            rover: 0,
            next_check: now_ns + CHECK_INTERVAL_NS,
        });
    }

    /// The earliest check due, if any collector is armed.
    pub fn next_check(&self) -> Option<u64> {
        self.per_slot.values().map(|c| c.next_check).min()
    }

    /// Forgets a slot's collector and its entries (service gone or scheduler rebound).
    pub fn flush(&mut self, dir: &Director, slot: u32) -> Result<()> {
        self.per_slot.remove(&slot);
        for it in items(dir)? {
            if it.key.svc == slot {
                delete(dir, &it)?;
            }
        }
        Ok(())
    }

    /// Runs every check due by `now_ns` for the armed slots in `slots`.
    pub fn tick(&mut self, dir: &Director, slots: &[u32], now_ns: u64) -> Result<()> {
        for slot in slots {
            self.arm(*slot, now_ns);
        }
        self.per_slot.retain(|s, _| slots.contains(s));
        let due = self.per_slot.values().any(|c| c.next_check <= now_ns);
        if !due {
            return Ok(());
        }
        let mut by_slot: HashMap<u32, Vec<Item>> = HashMap::new();
        for it in items(dir)? {
            by_slot.entry(it.key.svc).or_default().push(it);
        }
        for (slot, c) in self.per_slot.iter_mut() {
            let mut entries = by_slot.remove(slot).unwrap_or_default();
            while c.next_check <= now_ns {
                let at = c.next_check;
                fire(dir, c, &mut entries, at)?;
                c.next_check = at + CHECK_INTERVAL_NS;
            }
        }
        Ok(())
    }
}

fn items(dir: &Director) -> Result<Vec<Item>> {
    let mut out = Vec::new();
    for (k, v) in dir.maps.lblc.dump(0).map_err(map_err("rvs_lblc"))? {
        out.push(Item {
            lblcr: false,
            key: abi::LblcKey::from_bytes(&k),
            lastuse: abi::Lblc::from_bytes(&v).lastuse_ns,
        });
    }
    for (k, v) in dir.maps.lblcr.dump(0).map_err(map_err("rvs_lblcr"))? {
        out.push(Item {
            lblcr: true,
            key: abi::LblcKey::from_bytes(&k),
            lastuse: abi::Lblcr::from_bytes(&v).lastuse_ns,
        });
    }
    Ok(out)
}

fn delete(dir: &Director, it: &Item) -> Result<()> {
    if it.lblcr {
        dir.maps
            .lblcr
            .delete(it.key.as_bytes())
            .map_err(map_err("rvs_lblcr"))?;
    } else {
        dir.maps
            .lblc
            .delete(it.key.as_bytes())
            .map_err(map_err("rvs_lblc"))?;
    }
    Ok(())
}

fn bucket_of(it: &Item) -> usize {
    // the cache of a service holds one family; IPv4 keys have zero words 1..3
    let v4 = it.key.addr[4..].iter().all(|b| *b == 0);
    let a = ip_of(
        if v4 {
            abi::RVS_AF_INET
        } else {
            abi::RVS_AF_INET6
        },
        &it.key.addr,
    );
    hash_32(addr_fold(&a), abi::RVS_LBLC_TAB_BITS) as usize
}

fn fire(dir: &Director, c: &mut Collector, entries: &mut Vec<Item>, now: u64) -> Result<()> {
    if c.counter.is_multiple_of(COUNT_FOR_FULL_EXPIRATION) {
        sweep(dir, c, entries, now, EXPIRATION_NS, None)?;
        c.counter = 1;
    } else if entries.len() <= MAX_SIZE {
        c.counter += 1;
    } else {
        let goal = ((entries.len() - MAX_SIZE) * 4 / 3).min(MAX_SIZE / 2);
        sweep(dir, c, entries, now, ENTRY_TIMEOUT_NS, Some(goal as i64))?;
    }
    Ok(())
}

/// Drops entries idle for `max_idle` or longer, bucket by bucket after the rover,
/// stopping after the bucket in which `goal` removals were reached.
fn sweep(
    dir: &Director,
    c: &mut Collector,
    entries: &mut Vec<Item>,
    now: u64,
    max_idle: u64,
    mut goal: Option<i64>,
) -> Result<()> {
    let mut buckets: Vec<Vec<Item>> = (0..TAB_SIZE).map(|_| Vec::new()).collect();
    for it in entries.drain(..) {
        let b = bucket_of(&it);
        buckets[b].push(it);
    }
    let mut j = c.rover;
    for _ in 0..TAB_SIZE {
        j = (j + 1) % TAB_SIZE;
        let mut removed = 0;
        let mut keep = Vec::new();
        for it in buckets[j].drain(..) {
            if now >= it.lastuse + max_idle {
                delete(dir, &it)?;
                removed += 1;
            } else {
                keep.push(it);
            }
        }
        buckets[j] = keep;
        if let Some(g) = goal.as_mut() {
            *g -= removed;
            if *g <= 0 {
                break;
            }
        }
    }
    c.rover = j;
    entries.extend(buckets.into_iter().flatten());
    Ok(())
}
