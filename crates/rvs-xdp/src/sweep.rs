//! Connection expiry: rvsd's side of `ip_vs_conn_expire`.
//!
//! [`Sweeper`] (what rvsd runs every second) reads both connection tables only every few
//! seconds and keeps the entries due before its next read; [`sweep`] reads them whole on
//! every call (the reference, and what tests with a scripted clock use). Either picks the
//! entries whose timer looks due.
//! Whether one really goes is decided in BPF by the control program (`RVS_CTL_EXPIRE`)
//! with compare-and-swap on the entry's state word, so a packet arriving at the same
//! moment either refreshes the entry first (it stays) or finds it dead (and backs off):
//! counters never drift. Due entries are handled oldest deadline first and,
//! at equal deadlines, templates before connections, as the kernel's timer order would.

use crate::abi::{self, Plain};
use crate::error::{map_err, Result};
use crate::loader::Director;

const NS: u64 = 1_000_000_000;

/// One entry of a connection table, decoded.
#[derive(Clone, Debug)]
pub struct Entry {
    pub family: u8,
    /// The key as the ABI holds it (IPv4: the first 16 bytes).
    pub key: abi::ConnKey6,
    pub conn: abi::Conn,
}

impl Entry {
    pub fn due_ns(&self) -> u64 {
        self.conn.last_ns + self.conn.timeout_s as u64 * NS
    }

    pub fn is_template(&self) -> bool {
        self.conn.flags() & abi::RVS_CF_TEMPLATE != 0
    }

    /// The IPv4 view of the key.
    pub fn key4(&self) -> abi::ConnKey4 {
        abi::ConnKey4::from_bytes(self.key.as_bytes())
    }
}

fn key6_of(bytes: &[u8]) -> abi::ConnKey6 {
    let mut k = abi::ConnKey6::default();
    k.as_bytes_mut()[..bytes.len()].copy_from_slice(bytes);
    k
}

/// Every entry of both tables.
pub fn entries(dir: &Director) -> Result<Vec<Entry>> {
    let mut out = Vec::new();
    for (family, map, name) in [
        (abi::RVS_AF_INET, &dir.maps.conns4, "rvs_conns4"),
        (abi::RVS_AF_INET6, &dir.maps.conns6, "rvs_conns6"),
    ] {
        for (k, v) in map.dump(0).map_err(map_err(name))? {
            out.push(Entry {
                family,
                key: key6_of(&k),
                conn: abi::Conn::from_bytes(&v),
            });
        }
    }
    Ok(out)
}

/// Expires entries through the control program; returns the result of each.
pub fn expire(dir: &Director, list: &[(u8, abi::ConnKey6)], forced: bool) -> Result<Vec<u8>> {
    let mut results = Vec::with_capacity(list.len());
    for chunk in list.chunks(abi::RVS_CTL_MAX_RECORDS as usize) {
        let hdr = abi::CtlHdr {
            op: abi::RVS_CTL_EXPIRE,
            count: chunk.len() as u32,
        };
        let mut req = hdr.as_bytes().to_vec();
        for (family, key) in chunk {
            let r = abi::CtlExpire {
                key: *key,
                family: *family,
                forced: forced as u8,
                ..Default::default()
            };
            req.extend_from_slice(r.as_bytes());
        }
        let out = dir.run_ctl(&req)?;
        let rec = size_of::<abi::CtlExpire>();
        for i in 0..chunk.len() {
            let off = size_of::<abi::CtlHdr>() + i * rec;
            results.push(abi::CtlExpire::from_bytes(&out[off..off + rec]).result);
        }
    }
    Ok(results)
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub rearmed: usize,
    /// Entries left in the tables (a [`Sweeper`]: as of its last full read, less what it
    /// expired since).
    pub live: usize,
    /// Earliest deadline among the entries left (a [`Sweeper`]: the earliest it knows of,
    /// or its next full read).
    pub next_due_ns: Option<u64>,
    /// The entries expired, in the order they went.
    pub expired_keys: Vec<(u8, abi::ConnKey6)>,
    /// A [`Sweeper`] read the whole tables on this tick.
    pub scanned: bool,
}

/// Entries read per `BPF_MAP_LOOKUP_BATCH`.
const BATCH: usize = 4096;

/// An entry that may be due: its deadline when it was read. Sorted by deadline, templates
/// first at equal deadlines (the kernel's timer order); ties keep the tables' order.
#[derive(Clone, Copy, Debug)]
struct Due {
    due_ns: u64,
    is_conn: bool,
    family: u8,
    key: abi::ConnKey6,
}

/// Reads both tables without an allocation per entry; entries marked dead are skipped.
/// Returns how many live entries there are; `keep` sees each with its deadline.
fn scan(dir: &Director, mut keep: impl FnMut(Due)) -> Result<usize> {
    let mut live = 0usize;
    for (family, map, name) in [
        (abi::RVS_AF_INET, &dir.maps.conns4, "rvs_conns4"),
        (abi::RVS_AF_INET6, &dir.maps.conns6, "rvs_conns6"),
    ] {
        map.for_each(BATCH, |k, v| {
            let c = abi::Conn::from_bytes(v);
            if c.flags() & abi::RVS_CF_DEAD != 0 {
                return;
            }
            live += 1;
            keep(Due {
                due_ns: c.last_ns + c.timeout_s as u64 * NS,
                is_conn: c.flags() & abi::RVS_CF_TEMPLATE == 0,
                family,
                key: key6_of(k),
            });
        })
        .map_err(map_err(name))?;
    }
    Ok(live)
}

/// Sends due entries to the control program in order; fills the counts of `s`.
fn expire_due(dir: &Director, due: &[Due], s: &mut Swept) -> Result<()> {
    let keys: Vec<(u8, abi::ConnKey6)> = due.iter().map(|d| (d.family, d.key)).collect();
    let results = expire(dir, &keys, false)?;
    for (r, k) in results.iter().zip(keys) {
        match *r {
            abi::RVS_CTL_EXPIRED => {
                s.expired += 1;
                s.expired_keys.push(k);
            }
            abi::RVS_CTL_REARMED => s.rearmed += 1,
            _ => {}
        }
    }
    Ok(())
}

/// Runs every timer due by `now_ns` (the BPF clock: CLOCK_MONOTONIC, or the test clock),
/// reading the whole tables: the reference the [`Sweeper`] is checked against.
pub fn sweep(dir: &Director, now_ns: u64) -> Result<Swept> {
    let mut due = Vec::new();
    let mut next: Option<u64> = None;
    let live = scan(dir, |d| {
        if d.due_ns <= now_ns {
            due.push(d);
        } else {
            next = Some(next.map_or(d.due_ns, |n| n.min(d.due_ns)));
        }
    })?;
    due.sort_by_key(|d| (d.due_ns, d.is_conn));
    let mut s = Swept::default();
    expire_due(dir, &due, &mut s)?;
    s.live = live - s.expired;
    s.next_due_ns = next
        .into_iter()
        .chain((s.rearmed > 0).then_some(now_ns + abi::RVS_CONTROL_REARM_S as u64 * NS))
        .min();
    Ok(s)
}

/// Longest time between two full reads of the tables (also how stale the live count in
/// `rvsadm --status` may be).
pub const MAX_SCAN_INTERVAL_NS: u64 = 10 * NS;

/// The shortest timeout any entry can be given from now on, in seconds: every TCP state
/// a packet can move an entry to (not NONE: an entry leaves it on its first packet, in
/// the program that creates it), UDP, the persistence timeout of every persistent
/// service (a new template), and the 60 s re-arm of a template with children.
pub fn min_timeout_s(dir: &Director) -> Result<u32> {
    let mut c = abi::Config::default();
    dir.maps
        .config
        .lookup(&0u32.to_ne_bytes(), c.as_bytes_mut(), 0)
        .map_err(map_err("rvs_config"))?;
    let mut m = abi::RVS_CONTROL_REARM_S.min(c.udp_timeout);
    for t in &c.tcp_timeout[abi::RVS_ST_NONE as usize + 1..] {
        m = m.min(*t);
    }
    dir.maps
        .services
        .for_each(64, |_, v| {
            let svc = abi::Service::from_bytes(v);
            if svc.flags & abi::RVS_SF_PERSISTENT != 0 {
                m = m.min(svc.timeout);
            }
        })
        .map_err(map_err("rvs_services"))?;
    Ok(m)
}

/// Expiry whose cost follows the expiries, not the table: rvsd's timer wheel for
/// `ip_vs_conn_expire`.
///
/// Reading a million entries every second cost rvsd about 44 % of a core. No entry can
/// become due sooner than the shortest timeout a packet can give it (`T`, 10 s with the
/// default timeouts: TCP CLOSE) after the packet that gives it, nor can a new entry. So
/// the tables are read whole only every `min(T, 10 s)` (at least every second), and the
/// entries found due before the next read are kept, by deadline, in between. An entry that
/// a packet refreshed meanwhile is found alive by the control program (which decides on the
/// entry itself), so the same entries expire at the same tick and in the same order as a
/// full read every tick would give ([`sweep`]; `tests/sweeper.rs` runs both side by side).
/// A lower `T` (a `--set` or a shorter persistence timeout) triggers a read at once.
///
/// One exception: an entry whose first state step failed (a CPU race on creation) keeps
/// its 3 s creation timeout and may expire up to one read interval late. Entries put in
/// the table from userspace (a sync backup) are handed over with [`Sweeper::track`].
#[derive(Debug, Default)]
pub struct Sweeper {
    /// Entries due before the next full read, earliest first.
    soon: std::collections::VecDeque<Due>,
    next_scan_ns: u64,
    last_scan_ns: u64,
    /// The bound `T` (ns) the schedule was made with.
    bound_ns: u64,
    live: usize,
}

impl Sweeper {
    pub fn new() -> Sweeper {
        Sweeper::default()
    }

    /// An entry put in the table from userspace (a sync backup's install) with its
    /// deadline: one due before the next full read is kept with the others found due, so
    /// it expires on time whatever its timeout.
    pub fn track(&mut self, family: u8, key: abi::ConnKey6, template: bool, due_ns: u64) {
        if due_ns > self.next_scan_ns {
            return; // the next full read sees it
        }
        let d = Due {
            due_ns,
            is_conn: !template,
            family,
            key,
        };
        let at = self
            .soon
            .partition_point(|x| (x.due_ns, x.is_conn) <= (d.due_ns, d.is_conn));
        self.soon.insert(at, d);
    }

    /// Runs every timer due by `now_ns`.
    ///
    /// # Errors
    /// A map operation failed.
    pub fn tick(&mut self, dir: &Director, now_ns: u64) -> Result<Swept> {
        let bound = min_timeout_s(dir)? as u64 * NS;
        let interval = bound.clamp(NS, MAX_SCAN_INTERVAL_NS);
        let mut s = Swept::default();
        if now_ns >= self.next_scan_ns || now_ns < self.last_scan_ns || bound < self.bound_ns {
            let until = now_ns + interval;
            let mut soon = Vec::new();
            self.live = scan(dir, |d| {
                if d.due_ns <= until {
                    soon.push(d);
                }
            })?;
            soon.sort_by_key(|d| (d.due_ns, d.is_conn));
            self.soon = soon.into();
            self.next_scan_ns = until;
            self.last_scan_ns = now_ns;
            s.scanned = true;
        }
        self.bound_ns = bound;
        let n = self.soon.partition_point(|d| d.due_ns <= now_ns);
        let due: Vec<Due> = self.soon.drain(..n).collect();
        // Entries found alive were refreshed after the read, re-armed templates got 60 s:
        // either way they cannot be due before the next read, which sees them again.
        expire_due(dir, &due, &mut s)?;
        self.live = self.live.saturating_sub(s.expired);
        s.live = self.live;
        s.next_due_ns = Some(
            self.soon
                .front()
                .map_or(self.next_scan_ns, |d| d.due_ns.min(self.next_scan_ns)),
        );
        Ok(s)
    }
}
