//! [`XdpPlane`]: the XDP data plane as rvsd drives it (`rvs_dataplane::DataPlane`).
//!
//! `sync` pushes the table into the maps. A worker thread does the periodic work: the
//! connection sweeper (timers), lblc/lblcr garbage collection, reading the per-CPU traffic
//! counters into the table (every second), neighbour resolution, and a full re-sync every
//! few seconds (freeing the slots of servers whose last connection ended, ending the
//! adoption grace period).

use crate::abi;
use crate::error::Result;
use crate::loader::{AttachMode, Attached, Director, LoadOptions};
use crate::locality::Gc;
use crate::object::Build;
use crate::reconcile::{self, MapState};
use crate::{conns, neigh, stats, sweep};
use rvs_core::{
    ConnInfo, Counters, DestId, Protocol, SchedKind, ServiceConfig, ServiceInfo, ServiceKey,
    SyncEntry, SyncInstall, SyncSkip, Table,
};
use rvs_dataplane::{DataPlane, Shared, SyncSink, Unserved};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// Settings of the XDP plane (`rvsd --dataplane xdp ...`).
#[derive(Clone, Debug)]
pub struct XdpOptions {
    /// Interfaces to attach to: the client-facing one, and the server-facing one if it is
    /// another.
    pub interfaces: Vec<String>,
    pub mode: AttachMode,
    pub pin_dir: PathBuf,
    pub conn_max: u32,
    /// Detach and remove every pin when the plane is dropped (tests; an rvsd that should
    /// not leave forwarding behind). Otherwise the program keeps forwarding while rvsd is
    /// down and the next rvsd adopts it.
    pub detach_on_exit: bool,
    /// After a restart, adopted services and servers the table does not claim within this
    /// time are removed (the new configuration is being loaded meanwhile).
    pub adopt_grace: Duration,
    /// Run the worker thread (off in tests that drive time themselves).
    pub worker: bool,
    pub build: Build,
}

impl Default for XdpOptions {
    fn default() -> Self {
        XdpOptions {
            interfaces: Vec::new(),
            mode: AttachMode::Auto,
            pin_dir: PathBuf::from(crate::loader::DEFAULT_PIN_DIR),
            conn_max: abi::RVS_CONN_MAX_DEFAULT,
            detach_on_exit: false,
            adopt_grace: Duration::from_secs(30),
            worker: true,
            build: Build::Production,
        }
    }
}

/// Monotonic nanoseconds as the program reads them (`bpf_ktime_get_coarse_ns`).
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime into a local timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC_COARSE, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// Everything the plane and its worker share.
pub struct Inner {
    pub dir: Director,
    pub st: Mutex<MapState>,
    gc: Mutex<Gc>,
    /// Traffic counters already added to the table, per dest slot.
    baselines: Mutex<HashMap<u16, (DestId, abi::DestStats)>>,
    attached: Vec<Attached>,
    /// Forwarding sysctls to put back when detaching.
    sysctls: Vec<crate::forwarding::Saved>,
    opts: XdpOptions,
    started: Instant,
    grace_over: AtomicBool,
    live_conns: AtomicU64,
    sweeper: Mutex<sweep::Sweeper>,
}

impl Inner {
    pub fn state(&self) -> MutexGuard<'_, MapState> {
        self.st.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn now_ns(&self) -> u64 {
        match self.dir.build() {
            Build::Production => monotonic_ns(),
            Build::Test => crate::testenv::now(&self.dir).unwrap_or(0),
        }
    }

    /// Runs every connection timer due by `now_ns`, reading the whole tables.
    pub fn sweep_at(&self, now_ns: u64) -> Result<sweep::Swept> {
        let s = sweep::sweep(&self.dir, now_ns)?;
        self.live_conns.store(s.live as u64, Ordering::Relaxed);
        Ok(s)
    }

    /// Runs every connection timer due by `now_ns` with the [`sweep::Sweeper`] (what the
    /// worker does every second: same expiries, a full read only every few seconds).
    pub fn sweep_tick(&self, now_ns: u64) -> Result<sweep::Swept> {
        let mut w = self.sweeper.lock().unwrap_or_else(|p| p.into_inner());
        let s = w.tick(&self.dir, now_ns)?;
        self.live_conns.store(s.live as u64, Ordering::Relaxed);
        Ok(s)
    }

    /// Entries installed from userspace, for the sweeper: (family, key, template, due).
    pub fn track_installed(&self, entries: &[(u8, abi::ConnKey6, bool, u64)]) {
        let mut w = self.sweeper.lock().unwrap_or_else(|p| p.into_inner());
        for (family, key, template, due) in entries {
            w.track(*family, *key, *template, *due);
        }
    }

    /// lblc/lblcr garbage collection due by `now_ns`.
    pub fn gc_at(&self, now_ns: u64) -> Result<()> {
        let (slots, flush) = {
            let mut st = self.state();
            (st.locality_slots(), std::mem::take(&mut st.lblc_flush))
        };
        let mut gc = self.gc.lock().unwrap_or_else(|p| p.into_inner());
        for slot in flush {
            gc.flush(&self.dir, slot)?;
        }
        gc.tick(&self.dir, &slots, now_ns)
    }

    /// The traffic since the last call, per real server of the table.
    pub fn collect_stats(&self) -> Vec<(DestId, Counters)> {
        let slots: Vec<(u16, DestId, bool)> = {
            let st = self.state();
            st.slots()
                .filter_map(|(s, d)| d.id.map(|id| (*s, id, st.is_adopted_slot(*s))))
                .collect()
        };
        let mut base = self.baselines.lock().unwrap_or_else(|p| p.into_inner());
        let mut out = Vec::new();
        for (slot, id, adopted) in slots {
            let Ok(now) = stats::dest_stats(&self.dir, slot) else {
                continue;
            };
            match base.get_mut(&slot) {
                Some((bid, b)) if *bid == id => {
                    let c = Counters {
                        conns: now.conns.saturating_sub(b.conns),
                        inpkts: now.inpkts.saturating_sub(b.inpkts),
                        inbytes: now.inbytes.saturating_sub(b.inbytes),
                        outpkts: now.outpkts.saturating_sub(b.outpkts),
                        outbytes: now.outbytes.saturating_sub(b.outbytes),
                    };
                    *b = now;
                    if c != Counters::default() {
                        out.push((id, c));
                    }
                }
                _ => {
                    // a new slot counts from zero (it was zeroed when claimed); an adopted
                    // one holds an earlier rvsd's history: count from here on
                    let start = if adopted {
                        now
                    } else {
                        abi::DestStats::default()
                    };
                    base.insert(slot, (id, start));
                    let c = Counters {
                        conns: now.conns - start.conns,
                        inpkts: now.inpkts - start.inpkts,
                        inbytes: now.inbytes - start.inbytes,
                        outpkts: now.outpkts - start.outpkts,
                        outbytes: now.outbytes - start.outbytes,
                    };
                    base.insert(slot, (id, now));
                    if c != Counters::default() {
                        out.push((id, c));
                    }
                }
            }
        }
        out
    }

    /// The earliest lblc/lblcr check due.
    pub fn gc_next_check(&self) -> Option<u64> {
        self.gc
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .next_check()
    }

    /// Empties every map and forgets all state, as if freshly loaded (tests replaying many
    /// scenarios on one loaded object).
    #[doc(hidden)]
    pub fn reset_for_tests(&self) -> Result<()> {
        reconcile::wipe(&self.dir)?;
        *self.state() = MapState::adopt(&self.dir)?;
        *self.gc.lock().unwrap_or_else(|p| p.into_inner()) = Gc::default();
        *self.sweeper.lock().unwrap_or_else(|p| p.into_inner()) = sweep::Sweeper::new();
        self.baselines
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }

    fn sync(&self, table: &Table) {
        let mut st = self.state();
        if let Err(e) = reconcile::reconcile(&self.dir, &mut st, table) {
            tracing::error!("xdp data plane: sync failed: {e}");
        }
    }
}

/// The XDP data plane.
pub struct XdpPlane {
    inner: Arc<Inner>,
    stop: Arc<AtomicBool>,
    worker: Mutex<Option<JoinHandle<()>>>,
    /// The sync master's ring reader, while a master runs.
    sync_reader: Mutex<Option<crate::connsync::Reader>>,
}

/// Turns on forwarding for and attaches the director to every interface of `opts`
/// (`sysctls` collects what to restore).
fn attach_all(
    dir: &mut Director,
    opts: &XdpOptions,
    sysctls: &mut Vec<crate::forwarding::Saved>,
) -> Result<Vec<Attached>> {
    let mut attached = Vec::new();
    for iface in &opts.interfaces {
        let saved = crate::forwarding::enable(iface).map_err(|e| {
            crate::XdpError::Other(format!("turning on IP forwarding for {iface}: {e}"))
        })?;
        if !saved.is_empty() {
            tracing::info!(iface, "IP forwarding turned on (bpf_fib_lookup needs it)");
        }
        sysctls.extend(saved);
        let a = dir.attach(iface, opts.mode)?;
        tracing::info!(iface = %a.iface, mode = a.how, "xdp director attached");
        attached.push(a);
    }
    Ok(attached)
}

impl XdpPlane {
    /// Loads (or adopts) the director, attaches it to the interfaces and starts the worker.
    ///
    /// # Errors
    /// See [`Director::load`] and [`Director::attach`].
    pub fn new(shared: Arc<Shared>, opts: XdpOptions) -> Result<XdpPlane> {
        let mut dir = Director::load(&LoadOptions {
            build: opts.build,
            pin_dir: opts.pin_dir.clone(),
            conn_max: opts.conn_max,
        })?;
        let mut sysctls = Vec::new();
        let setup = attach_all(&mut dir, &opts, &mut sysctls).and_then(|attached| {
            let mut st = MapState::adopt(&dir)?;
            st.set_interfaces(
                attached
                    .iter()
                    .filter_map(|a| crate::loader::mac_of(&a.iface).map(|m| (a.ifindex, m)))
                    .collect(),
            );
            Ok((attached, st))
        });
        let (attached, st) = match setup {
            Ok(v) => v,
            Err(e) => {
                // Nothing of a failed start stays behind, unless it adopted a running
                // director that must keep forwarding.
                crate::forwarding::restore(&sysctls);
                if opts.detach_on_exit || !dir.adopted {
                    let _ = crate::loader::unpin_all(dir.pin_dir());
                }
                return Err(e);
            }
        };
        if dir.adopted {
            tracing::info!(pin_dir = %opts.pin_dir.display(), "xdp data plane: adopted the pinned maps of an earlier rvsd");
        }
        let inner = Arc::new(Inner {
            dir,
            st: Mutex::new(st),
            gc: Mutex::new(Gc::default()),
            baselines: Mutex::new(HashMap::new()),
            attached,
            sysctls,
            opts: opts.clone(),
            started: Instant::now(),
            grace_over: AtomicBool::new(false),
            live_conns: AtomicU64::new(0),
            sweeper: Mutex::new(sweep::Sweeper::new()),
        });
        let stop = Arc::new(AtomicBool::new(false));
        let worker = opts.worker.then(|| {
            let inner = inner.clone();
            let stop = stop.clone();
            std::thread::Builder::new()
                .name("rvs-xdp".into())
                .spawn(move || worker(inner, shared, stop))
                .expect("spawning the xdp worker")
        });
        Ok(XdpPlane {
            inner,
            stop,
            worker: Mutex::new(worker),
            sync_reader: Mutex::new(None),
        })
    }

    pub fn inner(&self) -> &Arc<Inner> {
        &self.inner
    }

    pub fn director(&self) -> &Director {
        &self.inner.dir
    }

    pub fn attached(&self) -> &[Attached] {
        &self.inner.attached
    }
}

/// The worker: timers and counters every second, neighbours every 100 ms.
fn worker(inner: Arc<Inner>, shared: Arc<Shared>, stop: Arc<AtomicBool>) {
    let mut last_tick = Instant::now() - Duration::from_secs(1);
    let mut last_sync = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        neigh::drain(&inner.dir);
        if last_tick.elapsed() >= Duration::from_secs(1) {
            last_tick = Instant::now();
            let now = inner.now_ns();
            match inner.sweep_tick(now) {
                Ok(s) => tracing::debug!(
                    expired = s.expired,
                    rearmed = s.rearmed,
                    live = s.live,
                    scanned = s.scanned,
                    "xdp sweep"
                ),
                Err(e) => tracing::warn!("xdp sweeper: {e}"),
            }
            if let Err(e) = inner.gc_at(now) {
                tracing::warn!("xdp lblc garbage collection: {e}");
            }
            let counts = inner.collect_stats();
            tracing::debug!(servers = counts.len(), "xdp traffic counters");
            if !counts.is_empty() {
                let mut t = shared.table();
                for (id, c) in counts {
                    t.add_dest_stats(id, &c);
                }
            }
        }
        if last_sync.elapsed() >= Duration::from_secs(5) {
            last_sync = Instant::now();
            if !inner.grace_over.load(Ordering::Relaxed)
                && inner.started.elapsed() >= inner.opts.adopt_grace
            {
                inner.grace_over.store(true, Ordering::Relaxed);
                let mut st = inner.state();
                if let Err(e) = st.end_grace(&inner.dir) {
                    tracing::warn!("xdp data plane: ending the adoption grace: {e}");
                }
            }
            let t = shared.table();
            inner.sync(&t);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

impl Drop for XdpPlane {
    fn drop(&mut self) {
        self.set_sync_sink(None);
        self.stop.store(true, Ordering::Relaxed);
        if let Some(h) = self.worker.lock().unwrap_or_else(|p| p.into_inner()).take() {
            let _ = h.join();
        }
        if self.inner.opts.detach_on_exit {
            if let Err(e) = crate::loader::unpin_all(self.inner.dir.pin_dir()) {
                tracing::warn!("xdp data plane: removing pins: {e}");
            }
            crate::forwarding::restore(&self.inner.sysctls);
        }
    }
}

impl DataPlane for XdpPlane {
    fn name(&self) -> &'static str {
        "xdp"
    }

    /// XDP runs before anything sets a firewall mark, so a fwmark service would never match
    /// (the test build reads marks from a map); SCTP is not forwarded; the SIP persistence
    /// engine is not implemented (its new flows would drop as `no_pe_data`).
    fn unserved_service(&self, cfg: &ServiceConfig) -> Option<Unserved> {
        match cfg.key {
            ServiceKey::Fwmark { .. } if self.inner.opts.build != Build::Test => {
                Some(Unserved::Fwmark)
            }
            ServiceKey::Addr {
                proto: Protocol::Sctp,
                ..
            } => Some(Unserved::Sctp),
            _ if cfg.pe.as_deref() == Some("sip") => Some(Unserved::SipPe),
            _ => None,
        }
    }

    fn sync(&self, table: &Table) {
        self.inner.sync(table);
        // proactive neighbour resolution of new real servers
        let new: Vec<std::net::IpAddr> = {
            let mut st = self.inner.state();
            st.take_new_dest_addrs()
        };
        for a in new {
            neigh::resolve(a);
        }
    }

    fn facts(&self) -> Vec<(String, String)> {
        let mut f = vec![
            (
                "xdp.interfaces".to_string(),
                self.inner
                    .attached
                    .iter()
                    .map(|a| format!("{}({})", a.iface, a.how))
                    .collect::<Vec<_>>()
                    .join(","),
            ),
            (
                "xdp.pin_dir".to_string(),
                self.inner.dir.pin_dir().display().to_string(),
            ),
            (
                "xdp.adopted".to_string(),
                if self.inner.dir.adopted { "yes" } else { "no" }.to_string(),
            ),
            (
                "xdp.connections".to_string(),
                self.inner.live_conns.load(Ordering::Relaxed).to_string(),
            ),
        ];
        if let Ok((events, lost)) = crate::connsync::ring_counts(&self.inner.dir) {
            f.push(("xdp.sync.ring_events".to_string(), events.to_string()));
            f.push(("xdp.sync.ring_lost".to_string(), lost.to_string()));
        }
        if let Ok(rs) = stats::reasons(&self.inner.dir) {
            for (code, packets, _) in rs {
                if packets > 0 {
                    f.push((
                        format!("xdp.reason.{}", stats::reason_name(code)),
                        packets.to_string(),
                    ));
                }
            }
        }
        f
    }

    fn fill_listing(&self, table: &Table, services: &mut [ServiceInfo]) {
        let st = self.inner.state();
        for s in services.iter_mut() {
            let Some(sid) = table.service_id(&s.cfg.key) else {
                continue;
            };
            for d in s.dests.iter_mut() {
                let Some(slot) = table
                    .find_dest(sid, d.cfg.addr, d.cfg.port)
                    .and_then(|id| st.dest_slot(id))
                else {
                    continue;
                };
                let c = stats::dest_counts(&self.inner.dir, slot);
                d.activeconns = c.active;
                d.inactconns = c.inactive;
                d.persistconns = c.persist;
                d.overloaded = c.overloaded != 0;
            }
        }
    }

    fn install_synced(
        &self,
        table: &mut Table,
        _now: rvs_core::Millis,
        entries: &[SyncEntry],
    ) -> Vec<std::result::Result<SyncInstall, SyncSkip>> {
        let st = self.inner.state();
        let now = self.inner.now_ns();
        let (results, installed) = crate::connsync::install(&self.inner.dir, &st, table, entries);
        drop(st);
        let due: Vec<_> = installed
            .iter()
            .map(|r| {
                let template = r.flags & abi::RVS_CF_TEMPLATE != 0;
                (
                    r.family,
                    r.key,
                    template,
                    now + r.timeout_s as u64 * 1_000_000_000,
                )
            })
            .collect();
        self.inner.track_installed(&due);
        results
    }

    fn set_sync_sink(&self, sink: Option<SyncSink>) {
        let mut reader = self.sync_reader.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(r) = reader.take() {
            if let Some(ring) = r.stop() {
                self.inner.dir.return_sync_ring(ring);
            }
        }
        if let Some(sink) = sink {
            match self.inner.dir.take_sync_ring() {
                Some(ring) => {
                    *reader = Some(crate::connsync::Reader::start(
                        self.inner.clone(),
                        ring,
                        sink,
                    ))
                }
                None => {
                    tracing::error!("xdp data plane: the sync ring is lost; no entries are sent")
                }
            }
        }
    }

    fn connections(&self, _table: &Table) -> Option<Vec<ConnInfo>> {
        match conns::list(&self.inner.dir, self.inner.now_ns()) {
            Ok(l) => Some(l),
            Err(e) => {
                tracing::warn!("xdp data plane: listing connections: {e}");
                Some(Vec::new())
            }
        }
    }
}

impl MapState {
    /// Service slots whose scheduler keeps a locality cache.
    pub fn locality_slots(&self) -> Vec<u32> {
        self.pushed_kinds()
            .filter(|(_, k)| matches!(k, SchedKind::Lblc | SchedKind::Lblcr))
            .map(|(s, _)| s)
            .collect()
    }
}
