//! # rvs-proxy — the userspace proxy data plane
//!
//! Forwards the table's TCP and UDP virtual services where eBPF cannot be used (no root, no
//! BPF): it listens on every VIP:port (with `IP_FREEBIND`, so a VIP that is not local yet
//! serves as soon as it arrives), asks the table to schedule each new client exactly as the
//! kernel would (persistence, weights, thresholds, all 14 schedulers), connects to the
//! chosen real server and relays both ways as full NAT (`-m`): the real server sees the
//! director as the client. The table sees the connection's
//! handshake, FINs and RSTs as state events and its segments and bytes as counters, so
//! `rvsadm -L` shows active/inactive connections and `--stats`/`--rate` show traffic.
//!
//! Not served here, and refused when they are added ([`DataPlane::admit`]): fwmark
//! services, port-0 services, SCTP, the SIP persistence engine, and direct routing (`-g`)
//! and tunnelling (`-i`), which a proxy cannot do (the replies come back through it).

mod counters;
mod relay;
pub mod sock;
mod tcp;
mod udp;

pub use relay::Transfer;

use counters::Counters;
use rvs_core::{
    DestConfig, DestId, Forward, Protocol, ServiceConfig, ServiceKey, SyncScope, Table,
};
use rvs_dataplane::{DataPlane, Shared, Unserved};
use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::runtime::Handle;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;
use tokio_util::sync::CancellationToken;

/// Tunables of the proxy.
#[derive(Clone, Debug)]
pub struct ProxyOptions {
    /// How bytes are moved.
    pub transfer: Transfer,
    /// Time allowed for a connect to a real server.
    pub connect_timeout: Duration,
    /// Real servers tried for one client before it is refused.
    pub connect_attempts: u32,
    /// Listen backlog per virtual service.
    pub backlog: i32,
    /// Worker threads, each running its own single-threaded runtime with its own
    /// SO_REUSEPORT accepting socket per TCP service: a connection lives and dies on the
    /// thread that accepted it, with no cross-thread wake-ups. 0 = one per CPU.
    pub workers: usize,
}

impl Default for ProxyOptions {
    fn default() -> Self {
        ProxyOptions {
            transfer: Transfer::Copy,
            connect_timeout: Duration::from_secs(5),
            connect_attempts: 3,
            backlog: 4096,
            workers: 1,
        }
    }
}

/// Cancellation of the relays of each real server, fired when the server leaves the table
/// (deleted, or its service deleted): their connections are reset, as IPVS stops
/// forwarding for entries whose server is gone.
#[derive(Default)]
struct Registry {
    tokens: Mutex<HashMap<DestId, CancellationToken>>,
}

impl Registry {
    fn token(&self, dest: DestId) -> CancellationToken {
        self.tokens
            .lock()
            .unwrap()
            .entry(dest)
            .or_default()
            .child_token()
    }

    fn sweep(&self, table: &Table) {
        self.tokens.lock().unwrap().retain(|id, tok| {
            let live = table.dest(*id).is_some_and(|d| d.available);
            if !live {
                tok.cancel();
            }
            live
        });
    }
}

/// Shared by every task of the proxy.
pub(crate) struct Ctx {
    pub(crate) shared: Arc<Shared>,
    pub(crate) opts: ProxyOptions,
    pub(crate) counters: Counters,
    pub(crate) registry: Registry,
    pub(crate) fds: FdBudget,
}

/// A log line that may be repeated at most every 10 s, however often its cause recurs.
#[derive(Default)]
struct RateLimited(Mutex<Option<Instant>>);

impl RateLimited {
    /// True when the line may be logged now (and then not for another 10 s).
    fn due(&self) -> bool {
        let mut last = self.0.lock().unwrap();
        let due = last.is_none_or(|t| t.elapsed() > Duration::from_secs(10));
        if due {
            *last = Some(Instant::now());
        }
        due
    }
}

/// The open-file descriptors the proxy's sockets may use: the process limit less what was
/// open when the proxy started and a margin for everything else (control clients, health
/// checks, scripts). A TCP relay takes two (client and real server), a UDP session one, a
/// listening socket one. At the budget's end accepting waits — clients stay in the listen
/// backlog instead of being accepted and dropped for want of a socket to the real server —
/// and new UDP sessions are refused; both counted (`proxy.conn_limit`) and logged at most
/// every 10 s.
pub(crate) struct FdBudget {
    pub(crate) permits: Arc<Semaphore>,
    pub(crate) total: usize,
    pub(crate) limit: u64,
    warn: RateLimited,
}

impl FdBudget {
    fn new(limit: u64, open: usize) -> FdBudget {
        let total = if limit == 0 {
            Semaphore::MAX_PERMITS
        } else {
            let margin = (limit / 16).max(32);
            (limit.saturating_sub(open as u64 + margin) as usize).clamp(2, Semaphore::MAX_PERMITS)
        };
        FdBudget {
            permits: Arc::new(Semaphore::new(total)),
            total,
            limit,
            warn: RateLimited::default(),
        }
    }

    /// `n` descriptors if they are free now.
    pub(crate) fn try_take(&self, n: u32) -> Option<OwnedSemaphorePermit> {
        self.permits.clone().try_acquire_many_owned(n).ok()
    }

    /// Counts and (rate-limited) logs that the budget is spent.
    pub(crate) fn spent(&self, counters: &Counters, what: std::fmt::Arguments<'_>) {
        Counters::inc(&counters.conn_limit);
        if self.warn.due() {
            tracing::error!(
                "{what}: connection limit reached: the {} open files the proxy may use (open-file limit {}) are taken; counter proxy.conn_limit",
                self.total,
                self.limit
            );
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
struct ListenKey {
    proto: Protocol,
    addr: SocketAddr,
}

/// A worker thread and the handle of its single-threaded runtime.
struct Worker {
    rt: Handle,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Worker {
    fn spawn(n: usize) -> Worker {
        let (tx, rx) = std::sync::mpsc::channel();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(format!("rvs-proxy-{n}"))
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a single-threaded runtime");
                tx.send(rt.handle().clone())
                    .expect("proxy waits for the handle");
                // Drives every task spawned on this runtime until the proxy is dropped.
                let _ = rt.block_on(stopped);
            })
            .expect("spawning a proxy worker thread");
        Worker {
            rt: rx.recv().expect("proxy worker started"),
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

pub struct Proxy {
    ctx: Arc<Ctx>,
    workers: Vec<Worker>,
    listeners: Mutex<HashMap<ListenKey, Vec<AbortHandle>>>,
}

impl Proxy {
    /// Starts the worker threads; the proxy's tasks run on them, not on the caller's
    /// runtime.
    pub fn new(shared: Arc<Shared>, mut opts: ProxyOptions) -> Proxy {
        let limit = sock::raise_nofile();
        let fds = FdBudget::new(limit, sock::open_fds());
        if opts.workers == 0 {
            opts.workers = std::thread::available_parallelism().map_or(1, |n| n.get());
        }
        tracing::info!(open_files = limit, fd_budget = fds.total, transfer = ?opts.transfer, workers = opts.workers, "proxy data plane");
        let workers = (0..opts.workers).map(Worker::spawn).collect();
        Proxy {
            ctx: Arc::new(Ctx {
                shared,
                opts,
                counters: Counters::default(),
                registry: Registry::default(),
                fds,
            }),
            workers,
            listeners: Mutex::new(HashMap::new()),
        }
    }

    /// The VIP:port sockets the table asks for. What this plane cannot serve never gets in
    /// the table ([`DataPlane::admit`]); it would be skipped here.
    fn desired(&self, table: &Table) -> HashSet<ListenKey> {
        table
            .services()
            .filter(|(_, svc)| self.unserved_service(&svc.cfg).is_none())
            .filter_map(|(_, svc)| match svc.cfg.key {
                ServiceKey::Addr { proto, addr, port } => Some(ListenKey {
                    proto,
                    addr: SocketAddr::new(addr, port),
                }),
                ServiceKey::Fwmark { .. } => None,
            })
            .collect()
    }

    /// A TCP service gets an accepting socket on every worker; a UDP service lives on the
    /// first worker (its sessions share one socket).
    fn start(&self, key: ListenKey) -> Vec<AbortHandle> {
        let shards = match key.proto {
            Protocol::Tcp => self.workers.len(),
            _ => 1,
        };
        self.workers[..shards]
            .iter()
            .map(|w| {
                let ctx = self.ctx.clone();
                w.rt.spawn(async move {
                    match key.proto {
                        Protocol::Tcp => accept_loop(ctx, key.addr).await,
                        Protocol::Udp => udp_loop(ctx, key.addr).await,
                        Protocol::Sctp => {}
                    }
                })
                .abort_handle()
            })
            .collect()
    }
}

/// Binds, retrying every 2 s with one warning, until it works.
async fn bind_retrying<T>(
    what: &str,
    addr: SocketAddr,
    bind: impl Fn() -> std::io::Result<T>,
) -> T {
    let mut warned = false;
    loop {
        match bind() {
            Ok(s) => {
                tracing::info!(%addr, "{what} listening");
                return s;
            }
            Err(e) => {
                if !warned {
                    tracing::warn!(%addr, "{what}: cannot bind: {e}; retrying every 2 s");
                    warned = true;
                }
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        }
    }
}

async fn accept_loop(ctx: Arc<Ctx>, addr: SocketAddr) {
    let backlog = ctx.opts.backlog;
    let listener = bind_retrying("tcp service", addr, || sock::tcp_listener(addr, backlog)).await;
    let _own = ctx.fds.try_take(1);
    let exhausted = RateLimited::default();
    loop {
        // the two descriptors of the next relay, before it is accepted
        let fds = match ctx.fds.try_take(2) {
            Some(p) => p,
            None => {
                ctx.fds
                    .spent(&ctx.counters, format_args!("tcp service {addr}"));
                match ctx.fds.permits.clone().acquire_many_owned(2).await {
                    Ok(p) => p,
                    Err(_) => return,
                }
            }
        };
        match listener.accept().await {
            Ok((client, peer)) => {
                tokio::spawn(tcp::serve(ctx.clone(), client, peer, addr, fds));
            }
            Err(e) if sock::is_resource_exhaustion(&e) => {
                Counters::inc(&ctx.counters.fd_exhausted);
                if exhausted.due() {
                    tracing::error!(
                        %addr,
                        "accept: {e}: out of file descriptors or memory; new connections wait (counter proxy.fd_exhausted)"
                    );
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(e) => tracing::debug!(%addr, "accept: {e}"),
        }
    }
}

async fn udp_loop(ctx: Arc<Ctx>, addr: SocketAddr) {
    let sock = bind_retrying("udp service", addr, || sock::udp_bound(addr)).await;
    let _own = ctx.fds.try_take(1);
    udp::serve(ctx, sock, addr).await
}

impl DataPlane for Proxy {
    fn name(&self) -> &'static str {
        "proxy"
    }

    /// A relayed connection ends on this machine (its server sees our address): it cannot
    /// move to another director, so a master sends persistence templates only.
    fn sync_scope(&self) -> SyncScope {
        SyncScope::TemplatesOnly
    }

    fn sync_caveat(&self) -> Option<&'static str> {
        Some(
            "the proxy data plane relays connections itself: they cannot move to another \
             director and are reset on failover; only persistence templates are synced, so \
             persistent clients keep their real server (use the XDP data plane for hitless \
             failover)",
        )
    }

    /// A proxy listens on one address and port per service and speaks TCP and UDP: no
    /// fwmark (it never sees marks), no port 0 (all ports), no SCTP, and no SIP Call-ID
    /// persistence (its new flows would be dropped).
    fn unserved_service(&self, cfg: &ServiceConfig) -> Option<Unserved> {
        match cfg.key {
            ServiceKey::Fwmark { .. } => Some(Unserved::Fwmark),
            ServiceKey::Addr {
                proto: Protocol::Sctp,
                ..
            } => Some(Unserved::Sctp),
            ServiceKey::Addr { port: 0, .. } => Some(Unserved::PortZero),
            _ if cfg.pe.as_deref() == Some("sip") => Some(Unserved::SipPe),
            _ => None,
        }
    }

    /// Full NAT only: with DR or TUN the real server's replies would bypass the proxy that
    /// holds the client's connection, so `-Ln` would show a method that is not used.
    fn unserved_dest(&self, dest: &DestConfig) -> Option<Unserved> {
        match dest.forward {
            Forward::Route | Forward::Tunnel => Some(Unserved::Forward(dest.forward)),
            Forward::Masq | Forward::Local => None,
        }
    }

    fn sync(&self, table: &Table) {
        let want = self.desired(table);
        let mut listeners = self.listeners.lock().unwrap();
        listeners.retain(|key, tasks| {
            let keep = want.contains(key);
            if !keep {
                tracing::info!(addr = %key.addr, proto = key.proto.name(), "service gone: closing its socket");
                for t in tasks.iter() {
                    t.abort();
                }
            }
            keep
        });
        for key in want {
            listeners.entry(key).or_insert_with(|| self.start(key));
        }
        drop(listeners);
        self.ctx.registry.sweep(table);
    }

    fn facts(&self) -> Vec<(String, String)> {
        let mut f = self.ctx.counters.facts();
        let fds = &self.ctx.fds;
        f.push(("proxy.fd_budget".into(), fds.total.to_string()));
        f.push((
            "proxy.fd_budget_free".into(),
            fds.permits.available_permits().to_string(),
        ));
        f.push((
            "proxy.listeners".into(),
            self.listeners.lock().unwrap().len().to_string(),
        ));
        f.push((
            "proxy.transfer".into(),
            format!("{:?}", self.ctx.opts.transfer).to_lowercase(),
        ));
        f
    }
}
