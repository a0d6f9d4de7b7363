//! The sync master (`sync_thread_master` and the buffering of `ip_vs_sync_conn`).
//!
//! The data plane decides which entries to send (`ip_vs_sync_conn_needed`) and offers them
//! here. Each entry goes to one sending thread (`sync_ports` of them, on ports `port`,
//! `port + 1`, ...), chosen by the entry's key so one connection always takes the same
//! port. A thread fills one message at a time; a full message is queued and sent at once,
//! a partly filled one after 2 s (`IPVS_SYNC_FLUSH_TIME`). At most `sync_qlen_max`
//! messages wait per thread; more are discarded and counted. A full socket buffer makes
//! the thread wait until it can send again.

use crate::stats::MasterStats;
use crate::wire::Builder;
use crate::Resolved;
use rvs_core::{SyncEntry, SyncParams};
use std::collections::VecDeque;
use std::hash::{Hash, Hasher};
use std::io;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::UdpSocket;
use tokio::sync::Notify;

/// A partly filled message waits this long for more entries.
pub const FLUSH_TIME: Duration = Duration::from_secs(2);
/// How often a sending thread looks at its partly filled message.
const CHECK_PERIOD: Duration = Duration::from_millis(100);

struct Port {
    inner: Mutex<PortInner>,
    notify: Notify,
}

struct PortInner {
    builder: Builder,
    first_use: Option<Instant>,
    queue: VecDeque<Vec<u8>>,
}

struct Shared {
    ports: Vec<Port>,
    stats: Arc<MasterStats>,
    version: AtomicU8,
    qlen_max: AtomicU64,
    syncid: u8,
    maxlen: usize,
}

/// A running master.
pub struct Master {
    shared: Arc<Shared>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub cfg: Resolved,
}

impl Master {
    /// Opens a socket per sending thread and starts them on the current tokio runtime.
    ///
    /// # Errors
    /// A socket that cannot be set up.
    pub fn start(
        cfg: Resolved,
        params: &SyncParams,
        stats: Arc<MasterStats>,
    ) -> io::Result<Master> {
        let mut socks = Vec::new();
        for id in 0..cfg.ports {
            let s = crate::sock::send_socket(
                &cfg.ifc,
                cfg.group,
                cfg.port.wrapping_add(id as u16),
                cfg.ttl,
                params.sock_size,
            )?;
            socks.push(UdpSocket::from_std(s)?);
        }
        let shared = Arc::new(Shared {
            ports: (0..cfg.ports)
                .map(|_| Port {
                    inner: Mutex::new(PortInner {
                        builder: Builder::new(params.version, cfg.syncid, cfg.maxlen as usize),
                        first_use: None,
                        queue: VecDeque::new(),
                    }),
                    notify: Notify::new(),
                })
                .collect(),
            stats,
            version: AtomicU8::new(params.version),
            qlen_max: AtomicU64::new(params.qlen_max),
            syncid: cfg.syncid,
            maxlen: cfg.maxlen as usize,
        });
        let tasks = socks
            .into_iter()
            .enumerate()
            .map(|(id, sock)| tokio::spawn(sender(shared.clone(), id, sock)))
            .collect();
        tracing::info!(
            interface = %cfg.ifc.name, syncid = cfg.syncid, maxlen = cfg.maxlen,
            group = %cfg.group, port = cfg.port, ttl = cfg.ttl, threads = cfg.ports,
            "sync master started"
        );
        Ok(Master { shared, tasks, cfg })
    }

    /// `sync_version` and `sync_qlen_max` changed.
    pub fn set_params(&self, p: &SyncParams) {
        self.shared.version.store(p.version, Ordering::Relaxed);
        self.shared.qlen_max.store(p.qlen_max, Ordering::Relaxed);
    }

    /// Entries the data plane decided to send.
    pub fn offer(&self, entries: &[SyncEntry]) {
        offer(&self.shared, entries);
    }

    /// A handle that offers entries from any thread (the XDP plane's event reader).
    pub fn offer_handle(&self) -> impl Fn(&[SyncEntry]) + Send + Sync + 'static {
        let shared = self.shared.clone();
        move |entries: &[SyncEntry]| offer(&shared, entries)
    }

    pub fn stats(&self) -> &Arc<MasterStats> {
        &self.shared.stats
    }
}

impl Drop for Master {
    /// Stopping discards what is queued, as the kernel's master does.
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        tracing::info!(interface = %self.cfg.ifc.name, "sync master stopped");
    }
}

fn port_of(e: &SyncEntry, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let mut h = std::collections::hash_map::DefaultHasher::new();
    (e.proto, e.caddr, e.cport, e.vaddr, e.vport).hash(&mut h);
    h.finish() as usize & (n - 1)
}

fn offer(shared: &Shared, entries: &[SyncEntry]) {
    let version = shared.version.load(Ordering::Relaxed);
    let qlen_max = shared.qlen_max.load(Ordering::Relaxed);
    shared.stats.offered.add(entries.len() as u64);
    let mut woken = vec![false; shared.ports.len()];
    for e in entries {
        let id = port_of(e, shared.ports.len());
        let port = &shared.ports[id];
        let mut p = port.inner.lock().unwrap_or_else(|x| x.into_inner());
        let mut done = Vec::new();
        if p.builder.version() != version {
            // a version switch sends what was filled in the old format
            done.extend(p.builder.finish());
            p.builder = Builder::new(version, shared.syncid, shared.maxlen);
            p.first_use = None;
        }
        if !p.builder.carries(e) {
            shared.stats.dropped_v0_ipv6.add(1);
            continue;
        }
        done.extend(p.builder.push(e));
        if !done.is_empty() {
            p.first_use = None;
        }
        if p.first_use.is_none() && !p.builder.is_empty() {
            p.first_use = Some(Instant::now());
        }
        for m in done {
            if (p.queue.len() as u64) < qlen_max {
                p.queue.push_back(m);
                shared.stats.queue_len.add(1);
                woken[id] = true;
            } else {
                shared.stats.dropped_queue_full.add(1);
            }
        }
    }
    for (id, w) in woken.into_iter().enumerate() {
        if w {
            shared.ports[id].notify.notify_one();
        }
    }
}

/// The next message of a thread: a queued one, else the partly filled one once it is old
/// enough.
fn next_message(shared: &Shared, id: usize) -> Option<Vec<u8>> {
    let mut p = shared.ports[id]
        .inner
        .lock()
        .unwrap_or_else(|x| x.into_inner());
    if let Some(m) = p.queue.pop_front() {
        shared
            .stats
            .queue_len
            .set(shared.stats.queue_len.get().saturating_sub(1));
        return Some(m);
    }
    match p.first_use {
        Some(t) if t.elapsed() >= FLUSH_TIME => {
            p.first_use = None;
            p.builder.finish()
        }
        _ => None,
    }
}

async fn sender(shared: Arc<Shared>, id: usize, sock: UdpSocket) {
    loop {
        tokio::select! {
            _ = shared.ports[id].notify.notified() => {}
            _ = tokio::time::sleep(CHECK_PERIOD) => {}
        }
        while let Some(m) = next_message(&shared, id) {
            send(&shared, &sock, &m).await;
        }
    }
}

async fn send(shared: &Shared, sock: &UdpSocket, m: &[u8]) {
    loop {
        match sock.try_send(m) {
            Ok(_) => {
                let s = &shared.stats;
                s.sent_messages.add(1);
                s.sent_bytes.add(m.len() as u64);
                s.sent_entries.add(entries_in(m) as u64);
                return;
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                if sock.writable().await.is_err() {
                    shared.stats.send_errors.add(1);
                    return;
                }
            }
            Err(e) => {
                // ENETUNREACH (the interface went down), ECONNREFUSED (an ICMP error)...
                // the kernel's master drops the message and goes on.
                tracing::debug!("sync master: send: {e}");
                shared.stats.send_errors.add(1);
                return;
            }
        }
    }
}

fn entries_in(m: &[u8]) -> usize {
    match m.first() {
        Some(0) if m.len() >= crate::wire::HDR_V1 => m[4] as usize,
        Some(n) => *n as usize,
        None => 0,
    }
}
