//! Connection sync on the XDP plane (the IPVS sync daemon's data-plane side).
//!
//! * Master: the packet path decides which entries to send, by the kernel's rule
//!   (`bpf/lib/sync.h`), and puts them in a ring buffer; a [`Reader`] thread turns them
//!   into [`SyncEntry`]s (the real server's address and method from its slot) for rvsd's
//!   master. No work is done per packet in userspace.
//! * Backup: [`install`] finds each received entry's service and real server in the
//!   table, and the control program adds or updates it in the BPF connection table with
//!   RVS_CTL_INSTALL (`ip_vs_proc_conn`): counted on its server, NAT entries with their
//!   reply index, so the moment this director owns the VIP it forwards those flows to the
//!   same real servers.

use crate::abi::{self, Plain};
use crate::encode::{addr_bytes, ip_of};
use crate::error::{map_err, Result};
use crate::loader::Director;
use crate::reconcile::MapState;
use aya::maps::{MapData, RingBuf};
use rvs_core::sync::{flags, DEFAULT_TEMPLATE_TIMEOUT_S};
use rvs_core::{Protocol, SyncEntry, SyncInstall, SyncSkip, Table};
use rvs_dataplane::SyncSink;
use std::collections::HashMap;
use std::os::fd::AsFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// The entry of a ring record, with its real server (from the slot) filled in.
pub fn event_entry(ev: &abi::SyncEvent, d: &abi::Dest) -> SyncEntry {
    let c = &ev.conn;
    let template = c.flags() & abi::RVS_CF_TEMPLATE != 0;
    let (caddr, cport, vaddr, vport, proto) = key_fields(ev.family, &ev.key);
    let mut fl = match d.fwd {
        abi::RVS_FWD_MASQ => flags::MASQ,
        abi::RVS_FWD_LOCAL => flags::LOCALNODE,
        abi::RVS_FWD_TUNNEL => flags::TUNNEL,
        _ => flags::DROUTE,
    };
    if d.fwd != abi::RVS_FWD_MASQ {
        fl |= flags::NOOUTPUT;
    }
    if template {
        fl |= flags::TEMPLATE | flags::INACTIVE;
    } else if c.flags() & abi::RVS_CF_INACTIVE != 0 {
        fl |= flags::INACTIVE;
    }
    let state = match c.state() {
        _ if template => (c.flags() & abi::RVS_CF_ASSURED != 0) as u16,
        abi::RVS_ST_UDP => 0,
        s => s as u16,
    };
    let fwmark = if template {
        // a fwmark template carries the mark as its virtual address
        if proto == 0 {
            match vaddr {
                std::net::IpAddr::V4(a) => u32::from(a),
                std::net::IpAddr::V6(a) => (u128::from(a) >> 96) as u32,
            }
        } else {
            0
        }
    } else {
        c.aux
    };
    SyncEntry {
        proto,
        caddr,
        cport,
        vaddr,
        vport,
        daddr: ip_of(d.family, &d.addr),
        dport: u16::from_be(c.dport),
        fwmark,
        flags: fl,
        state,
        timeout: c.timeout_s,
        seq: None,
        pe_name: None,
        pe_data: None,
    }
}

fn key_fields(
    family: u8,
    key: &abi::ConnKey6,
) -> (std::net::IpAddr, u16, std::net::IpAddr, u16, u8) {
    if family == abi::RVS_AF_INET {
        let k = abi::ConnKey4::from_bytes(key.as_bytes());
        let mut c = [0u8; 16];
        let mut v = [0u8; 16];
        c[..4].copy_from_slice(&k.caddr);
        v[..4].copy_from_slice(&k.vaddr);
        (
            ip_of(family, &c),
            u16::from_be(k.cport),
            ip_of(family, &v),
            u16::from_be(k.vport),
            k.proto,
        )
    } else {
        (
            ip_of(family, &key.caddr),
            u16::from_be(key.cport),
            ip_of(family, &key.vaddr),
            u16::from_be(key.vport),
            key.proto,
        )
    }
}

/// The BPF key of a received entry.
fn key_of(e: &SyncEntry, template: bool) -> (u8, abi::ConnKey6) {
    let kind = if template {
        abi::RVS_KEY_TEMPLATE
    } else {
        abi::RVS_KEY_CONN
    };
    let mut k6 = abi::ConnKey6::default();
    if e.caddr.is_ipv4() {
        let mut k = abi::ConnKey4 {
            cport: e.cport.to_be(),
            vport: e.vport.to_be(),
            proto: e.proto,
            kind,
            ..Default::default()
        };
        k.caddr.copy_from_slice(&addr_bytes(&e.caddr)[..4]);
        k.vaddr.copy_from_slice(&addr_bytes(&e.vaddr)[..4]);
        k6.as_bytes_mut()[..size_of::<abi::ConnKey4>()].copy_from_slice(k.as_bytes());
        (abi::RVS_AF_INET, k6)
    } else {
        k6.caddr = addr_bytes(&e.caddr);
        k6.vaddr = addr_bytes(&e.vaddr);
        k6.cport = e.cport.to_be();
        k6.vport = e.vport.to_be();
        k6.proto = e.proto;
        k6.kind = kind;
        (abi::RVS_AF_INET6, k6)
    }
}

/// The install record of an entry, or why it cannot be installed on this plane.
fn record(
    st: &MapState,
    table: &Table,
    e: &SyncEntry,
) -> std::result::Result<abi::CtlInstall, SyncSkip> {
    let state = e.conn_state()?;
    let template = e.is_template();
    if e.pe_data.is_some() {
        return Err(SyncSkip::Unsupported); // the sip persistence engine is not served
    }
    let proto = Protocol::from_number(e.proto);
    // a fwmark service's template has protocol 0 (IPPROTO_IP) and the mark as its address
    let fwmark_template = template && e.proto == 0 && e.fwmark != 0;
    if !fwmark_template && !matches!(proto, Some(Protocol::Tcp) | Some(Protocol::Udp)) {
        return Err(SyncSkip::Unsupported); // SCTP
    }
    let sid = table.sync_service(e).ok_or(SyncSkip::NoService)?;
    let did = table.sync_dest(sid, e).ok_or(SyncSkip::NoDest)?;
    let slot = st.dest_slot(did).ok_or(SyncSkip::NoDest)?;
    let (rstate, mut rflags) = match state {
        rvs_core::ConnState::Template { assured } => (
            abi::RVS_ST_TEMPLATE,
            abi::RVS_CF_TEMPLATE | if assured { abi::RVS_CF_ASSURED } else { 0 },
        ),
        rvs_core::ConnState::Tcp(s) => (s as u8, 0),
        _ => (abi::RVS_ST_UDP, 0),
    };
    if !template && e.is_inactive() {
        rflags |= abi::RVS_CF_INACTIVE;
    }
    let timeout_s = match e.timeout {
        0 if template => DEFAULT_TEMPLATE_TIMEOUT_S,
        0 => table.timeouts.of(state),
        t => t.min(rvs_core::sync::MAX_SYNC_TIMEOUT_S),
    };
    let (family, key) = key_of(e, template);
    Ok(abi::CtlInstall {
        key,
        family,
        state: rstate,
        flags: rflags,
        dest: slot,
        dport: e.dport.to_be(),
        timeout_s,
        aux: if template { 0 } else { e.fwmark },
        in_pkts: table.sync_params().threshold,
        old_state: e.state.min(u8::MAX as u16) as u8,
        ..Default::default()
    })
}

/// Installs received entries (`ip_vs_proc_conn`): one result per entry, and the records
/// of those created or updated (for the sweeper). When the control program cannot run,
/// the entries of that batch are reported as races, to be brought in by the master's next
/// sync.
pub fn install(
    dir: &Director,
    st: &MapState,
    table: &Table,
    entries: &[SyncEntry],
) -> (
    Vec<std::result::Result<SyncInstall, SyncSkip>>,
    Vec<abi::CtlInstall>,
) {
    let mut installed = Vec::new();
    let mut out: Vec<std::result::Result<SyncInstall, SyncSkip>> =
        Vec::with_capacity(entries.len());
    let mut batch: Vec<(usize, abi::CtlInstall)> = Vec::new();
    for e in entries {
        match record(st, table, e) {
            Ok(r) => {
                batch.push((out.len(), r));
                out.push(Err(SyncSkip::Race));
            }
            Err(s) => out.push(Err(s)),
        }
    }
    for chunk in batch.chunks(abi::RVS_CTL_MAX_RECORDS as usize) {
        let recs: Vec<abi::CtlInstall> = chunk.iter().map(|(_, r)| *r).collect();
        match run_install(dir, &recs) {
            Ok(results) => {
                for ((i, rec), r) in chunk.iter().zip(results) {
                    if matches!(r, abi::RVS_INST_CREATED | abi::RVS_INST_UPDATED) {
                        installed.push(*rec);
                    }
                    out[*i] = match r {
                        abi::RVS_INST_CREATED => Ok(SyncInstall::Created),
                        abi::RVS_INST_UPDATED => Ok(SyncInstall::Updated),
                        abi::RVS_INST_STALE => Ok(SyncInstall::Stale),
                        abi::RVS_INST_FULL => Err(SyncSkip::TableFull),
                        abi::RVS_INST_NO_DEST => Err(SyncSkip::NoDest),
                        _ => Err(SyncSkip::Race),
                    };
                }
            }
            Err(e) => tracing::warn!("xdp data plane: installing synced entries: {e}"),
        }
    }
    (out, installed)
}

fn run_install(dir: &Director, recs: &[abi::CtlInstall]) -> Result<Vec<u8>> {
    let hdr = abi::CtlHdr {
        op: abi::RVS_CTL_INSTALL,
        count: recs.len() as u32,
    };
    let mut req = hdr.as_bytes().to_vec();
    for r in recs {
        req.extend_from_slice(r.as_bytes());
    }
    let out = dir.run_ctl(&req)?;
    let size = size_of::<abi::CtlInstall>();
    Ok((0..recs.len())
        .map(|i| {
            let off = size_of::<abi::CtlHdr>() + i * size;
            abi::CtlInstall::from_bytes(&out[off..off + size]).result
        })
        .collect())
}

/// Entries put in the ring and entries the ring had no room for, over all CPUs.
pub fn ring_counts(dir: &Director) -> Result<(u64, u64)> {
    let m = &dir.maps.sync_count;
    let mut buf = vec![0u8; m.value_len()];
    m.lookup(&0u32.to_ne_bytes(), &mut buf, 0)
        .map_err(map_err("rvs_sync_count"))?;
    let stride = size_of::<abi::SyncCount>();
    Ok(
        (0..crate::sys::possible_cpus()).fold((0, 0), |(e, l), cpu| {
            let c = abi::SyncCount::from_bytes(&buf[cpu * stride..]);
            (e + c.events, l + c.lost)
        }),
    )
}

/// Reads the ring while a master runs and hands the entries to its sink.
pub struct Reader {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<RingBuf<MapData>>>,
}

/// Records read before they are handed over at once.
const BATCH: usize = 256;
/// How often the ring is read: the packet path wakes the reader only when the ring is
/// half full (a wakeup per record would cost the packet path more than the record).
const POLL_MS: i32 = 20;

impl Reader {
    pub fn start(
        inner: Arc<crate::plane::Inner>,
        ring: RingBuf<MapData>,
        sink: SyncSink,
    ) -> Reader {
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::Builder::new()
            .name("rvs-xdp-sync".into())
            .spawn(move || read(inner, ring, sink, s))
            .expect("spawning the sync reader");
        Reader {
            stop,
            thread: Some(thread),
        }
    }

    /// Stops reading; returns the ring for the next master.
    pub fn stop(mut self) -> Option<RingBuf<MapData>> {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.take().and_then(|t| t.join().ok())
    }
}

fn read(
    inner: Arc<crate::plane::Inner>,
    mut ring: RingBuf<MapData>,
    sink: SyncSink,
    stop: Arc<AtomicBool>,
) -> RingBuf<MapData> {
    let mut dests: HashMap<u16, abi::Dest> = HashMap::new();
    let mut batch = Vec::with_capacity(BATCH);
    while !stop.load(Ordering::Relaxed) {
        crate::sys::wait_readable(ring.as_fd(), POLL_MS);
        dests.clear(); // slots may be reused between wake-ups
        while let Some(item) = ring.next() {
            if item.len() < size_of::<abi::SyncEvent>() {
                continue;
            }
            let ev = abi::SyncEvent::from_bytes(&item);
            drop(item);
            let slot = ev.conn.dest;
            let d = match dests.get(&slot) {
                Some(d) => *d,
                None => {
                    let mut d = abi::Dest::default();
                    if inner
                        .dir
                        .maps
                        .dests
                        .lookup(&(slot as u32).to_ne_bytes(), d.as_bytes_mut(), 0)
                        .is_err()
                    {
                        continue;
                    }
                    dests.insert(slot, d);
                    d
                }
            };
            batch.push(event_entry(&ev, &d));
            if batch.len() == BATCH {
                sink(&batch);
                batch.clear();
            }
        }
        if !batch.is_empty() {
            sink(&batch);
            batch.clear();
        }
    }
    ring
}
