//! Connection expiry: rvsd's side of `ip_vs_conn_expire`.
//!
//! The sweeper reads both connection tables and picks the entries whose timer looks due.
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
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Swept {
    pub expired: usize,
    pub rearmed: usize,
    /// Entries left in the tables.
    pub live: usize,
    /// Earliest deadline among the entries left.
    pub next_due_ns: Option<u64>,
}

/// Runs every timer due by `now_ns` (the BPF clock: CLOCK_MONOTONIC, or the test clock).
pub fn sweep(dir: &Director, now_ns: u64) -> Result<Swept> {
    let all = entries(dir)?;
    let mut due: Vec<&Entry> = all
        .iter()
        .filter(|e| e.conn.flags() & abi::RVS_CF_DEAD == 0 && e.due_ns() <= now_ns)
        .collect();
    due.sort_by_key(|e| (e.due_ns(), !e.is_template()));
    let keys: Vec<(u8, abi::ConnKey6)> = due.iter().map(|e| (e.family, e.key)).collect();
    let results = expire(dir, &keys, false)?;
    let mut s = Swept::default();
    for r in &results {
        match *r {
            abi::RVS_CTL_EXPIRED => s.expired += 1,
            abi::RVS_CTL_REARMED => s.rearmed += 1,
            _ => {}
        }
    }
    s.live = all.len() - s.expired;
    s.next_due_ns = all
        .iter()
        .filter(|e| e.due_ns() > now_ns)
        .map(Entry::due_ns)
        .chain((s.rearmed > 0).then_some(now_ns + abi::RVS_CONTROL_REARM_S as u64 * NS))
        .min();
    Ok(s)
}
