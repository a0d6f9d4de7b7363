//! The control socket: a Unix stream socket, mode 0600, carrying length-prefixed JSON
//! frames ([`rvs_api`]). Malformed or oversized requests get an error reply and never take
//! the daemon down; a slow, silent or hoarding client cannot starve the others (issue 10):
//!
//! * a request body is read into a buffer that grows with the bytes received; requests
//!   larger than one read chunk (64 KiB) share a budget ([`MAX_BUFFERED`]);
//! * a started request must arrive whole within [`REQUEST_TIMEOUT`], and a client that
//!   sends nothing for [`IDLE_TIMEOUT`] is closed;
//! * the daemon always accepts: past [`MAX_CLIENTS`] connections, the one that has waited
//!   longest without a request being executed (idle, or trickling one in) is closed to
//!   make room, so a fresh `rvsadm` is served at once however many idle clients there are.
//!
//! [`bind`] never removes a path that is not a socket, replaces only a socket nobody
//! listens on, and the socket it creates is removed when the listener is dropped, so a
//! start that fails after binding leaves nothing behind.

use crate::daemon::Daemon;
use rvs_api::{write_frame_async, ApiError, FrameError, Reply, Request, MAX_REQUEST};
use std::collections::HashMap;
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::AsyncReadExt;
use tokio::net::{UnixListener, UnixStream};
use tokio::time::Instant;

/// Connections served at once; one more evicts the longest-waiting client not being
/// served a request.
pub const MAX_CLIENTS: usize = 64;
/// A request must arrive whole within this time once its first byte came.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// A connection that sends no request for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(60);
/// A reply must be taken by the client within this time.
const REPLY_TIMEOUT: Duration = Duration::from_secs(30);
/// Request bytes held by all clients together while their requests arrive.
pub const MAX_BUFFERED: usize = 64 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another rvsd is already listening on {0}")]
    InUse(PathBuf),
    // `err` (not `source`): the message already says it, anyhow must not repeat it.
    #[error("cannot create the control socket directory {path}: {err}")]
    Dir { path: PathBuf, err: io::Error },
    #[error("cannot bind the control socket {path}: {err}")]
    Bind { path: PathBuf, err: io::Error },
    #[error("{path} exists and is {what}, not a socket: refusing to replace it")]
    NotASocket { path: PathBuf, what: &'static str },
    #[error("cannot tell whether {path} is in use: {err}")]
    Probe { path: PathBuf, err: io::Error },
}

/// The bound control socket. Dropping it removes the socket file, if the file is still
/// the one it created (same device and inode).
pub struct ControlListener {
    listener: UnixListener,
    path: PathBuf,
    id: (u64, u64),
}

impl Drop for ControlListener {
    fn drop(&mut self) {
        if let Ok(md) = std::fs::symlink_metadata(&self.path) {
            if (md.dev(), md.ino()) == self.id {
                let _ = std::fs::remove_file(&self.path);
            }
        }
    }
}

fn kind_of(ft: std::fs::FileType) -> &'static str {
    if ft.is_file() {
        "a regular file"
    } else if ft.is_dir() {
        "a directory"
    } else if ft.is_symlink() {
        "a symbolic link"
    } else if ft.is_fifo() {
        "a FIFO"
    } else if ft.is_char_device() || ft.is_block_device() {
        "a device"
    } else {
        "something else"
    }
}

/// Binds the socket: creates its directory, replaces a stale socket (one nobody listens
/// on, left by a crashed daemon), refuses to steal the socket of a live one or to remove
/// anything that is not a socket, and sets mode 0600.
pub fn bind(path: &Path) -> Result<ControlListener, ControlError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|err| ControlError::Dir {
                path: dir.to_path_buf(),
                err,
            })?;
        }
    }
    match std::fs::symlink_metadata(path) {
        Ok(md) if md.file_type().is_socket() => {
            match std::os::unix::net::UnixStream::connect(path) {
                Ok(_) => return Err(ControlError::InUse(path.to_path_buf())),
                Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                    tracing::info!(path = %path.display(), "removing a stale control socket");
                    let _ = std::fs::remove_file(path);
                }
                Err(err) => {
                    return Err(ControlError::Probe {
                        path: path.to_path_buf(),
                        err,
                    })
                }
            }
        }
        Ok(md) => {
            return Err(ControlError::NotASocket {
                path: path.to_path_buf(),
                what: kind_of(md.file_type()),
            })
        }
        Err(_) => {}
    }
    let bind_err = |err| ControlError::Bind {
        path: path.to_path_buf(),
        err,
    };
    // Bound and made private under a temporary name, then renamed into place: the path
    // only ever appears as a listening socket of mode 0600 (a client that sees it can
    // connect; nobody connects while the mode is still the umask's).
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.{}.tmp", std::process::id()));
    if std::fs::symlink_metadata(&tmp).is_ok_and(|m| m.file_type().is_socket()) {
        let _ = std::fs::remove_file(&tmp);
    }
    let listener = UnixListener::bind(&tmp).map_err(bind_err)?;
    let placed = std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o600))
        .and_then(|()| std::fs::rename(&tmp, path))
        .and_then(|()| std::fs::symlink_metadata(path));
    match placed {
        Ok(md) => Ok(ControlListener {
            listener,
            path: path.to_path_buf(),
            id: (md.dev(), md.ino()),
        }),
        Err(e) => {
            let _ = std::fs::remove_file(&tmp);
            Err(bind_err(e))
        }
    }
}

/// What a client is doing, for the choice of whom to close when the daemon is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    /// Between requests (or before the first).
    Idle,
    /// A request is arriving.
    Reading,
    /// A request is being executed or its reply sent: never evicted.
    Serving,
}

struct Slot {
    phase: Phase,
    since: Instant,
    close: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The connected clients.
#[derive(Default)]
struct Clients {
    next: u64,
    slots: HashMap<u64, Slot>,
}

type Registry = Arc<Mutex<Clients>>;

fn lock(r: &Registry) -> std::sync::MutexGuard<'_, Clients> {
    r.lock().unwrap_or_else(|p| p.into_inner())
}

/// Registers a new client; closes the longest-waiting one not being served if that makes
/// more than `max`. Returns the new client's id and its close signal.
fn admit(r: &Registry, max: usize) -> (u64, tokio::sync::oneshot::Receiver<()>) {
    let mut c = lock(r);
    if c.slots.len() >= max {
        let victim = c
            .slots
            .iter()
            .filter(|(_, s)| s.phase != Phase::Serving)
            .min_by_key(|(_, s)| s.since)
            .map(|(id, _)| *id);
        if let Some(id) = victim {
            if let Some(mut s) = c.slots.remove(&id) {
                tracing::debug!(client = id, phase = ?s.phase, "control socket full: closing the longest-waiting client");
                if let Some(tx) = s.close.take() {
                    let _ = tx.send(());
                }
            }
        }
    }
    let (tx, rx) = tokio::sync::oneshot::channel();
    let id = c.next;
    c.next += 1;
    c.slots.insert(
        id,
        Slot {
            phase: Phase::Idle,
            since: Instant::now(),
            close: Some(tx),
        },
    );
    (id, rx)
}

fn set_phase(r: &Registry, id: u64, phase: Phase) {
    if let Some(s) = lock(r).slots.get_mut(&id) {
        s.phase = phase;
        s.since = Instant::now();
    }
}

/// Bytes of request bodies held by all clients.
struct Budget {
    used: AtomicUsize,
    max: usize,
}

impl Budget {
    fn take(&self, n: usize) -> bool {
        let mut cur = self.used.load(Ordering::Relaxed);
        loop {
            if cur + n > self.max {
                return false;
            }
            match self
                .used
                .compare_exchange_weak(cur, cur + n, Ordering::AcqRel, Ordering::Relaxed)
            {
                Ok(_) => return true,
                Err(now) => cur = now,
            }
        }
    }

    fn give(&self, n: usize) {
        self.used.fetch_sub(n, Ordering::AcqRel);
    }
}

/// Settings of [`serve_with`] (tests shorten them).
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_clients: usize,
    pub request_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_buffered: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_clients: MAX_CLIENTS,
            request_timeout: REQUEST_TIMEOUT,
            idle_timeout: IDLE_TIMEOUT,
            max_buffered: MAX_BUFFERED,
        }
    }
}

/// Accepts clients until the task is dropped.
pub async fn serve(listener: ControlListener, daemon: Arc<Daemon>) {
    serve_with(listener, daemon, Limits::default()).await
}

pub async fn serve_with(listener: ControlListener, daemon: Arc<Daemon>, limits: Limits) {
    let registry: Registry = Arc::default();
    let budget = Arc::new(Budget {
        used: AtomicUsize::new(0),
        max: limits.max_buffered,
    });
    loop {
        match listener.listener.accept().await {
            Ok((stream, _)) => {
                let (id, closed) = admit(&registry, limits.max_clients);
                let (daemon, registry, budget) = (daemon.clone(), registry.clone(), budget.clone());
                tokio::spawn(async move {
                    let c = Conn {
                        id,
                        registry: &registry,
                        budget: &budget,
                        limits,
                    };
                    tokio::select! {
                        r = c.run(stream, daemon) => if let Err(e) = r {
                            tracing::debug!("control client: {e}");
                        },
                        _ = closed => {}
                    }
                    lock(&registry).slots.remove(&id);
                });
            }
            Err(e) => {
                // Out of descriptors, typically: back off instead of spinning.
                tracing::warn!("control socket accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

fn protocol_error(message: String) -> Reply {
    Reply::Error(ApiError {
        errno: None,
        message,
        refused: false,
    })
}

async fn send(stream: &mut UnixStream, reply: &Reply) -> Result<(), FrameError> {
    let body = serde_json::to_vec(reply)?;
    tokio::time::timeout(REPLY_TIMEOUT, write_frame_async(stream, &body))
        .await
        .map_err(|_| FrameError::Io(io::Error::from(io::ErrorKind::TimedOut)))?
}

/// One client connection.
struct Conn<'a> {
    id: u64,
    registry: &'a Registry,
    budget: &'a Budget,
    limits: Limits,
}

fn timed_out() -> FrameError {
    FrameError::Io(io::Error::from(io::ErrorKind::TimedOut))
}

impl Conn<'_> {
    /// The next request's bytes: the first byte within the idle timeout, the rest within
    /// the request timeout.
    async fn read_request(&self, stream: &mut UnixStream) -> Result<Vec<u8>, FrameError> {
        let mut hdr = [0u8; 4];
        let n = tokio::time::timeout(self.limits.idle_timeout, stream.read(&mut hdr))
            .await
            .map_err(|_| timed_out())??;
        if n == 0 {
            return Err(FrameError::Closed);
        }
        set_phase(self.registry, self.id, Phase::Reading);
        let deadline = Instant::now() + self.limits.request_timeout;
        let rest = async {
            stream.read_exact(&mut hdr[n..]).await?;
            let len = u32::from_be_bytes(hdr) as usize;
            if len > MAX_REQUEST {
                return Err(FrameError::TooLarge {
                    len,
                    max: MAX_REQUEST,
                });
            }
            // Requests of one chunk (every rvsadm command but a large -R) are not
            // counted: a spent budget never refuses them.
            let small = len <= rvs_api::READ_CHUNK;
            let mut held = 0usize;
            let r = rvs_api::read_body_async(stream, len, |extra| {
                if small {
                    return true;
                }
                let ok = self.budget.take(extra);
                if ok {
                    held += extra;
                }
                ok
            })
            .await;
            self.budget.give(held);
            r
        };
        tokio::time::timeout_at(deadline, rest)
            .await
            .map_err(|_| timed_out())?
    }

    async fn run(&self, mut stream: UnixStream, daemon: Arc<Daemon>) -> Result<(), FrameError> {
        // who makes the changes, for the audit lines
        let peer = stream
            .peer_cred()
            .map(|c| crate::audit::Peer {
                uid: Some(c.uid()),
                pid: c.pid(),
            })
            .unwrap_or_default();
        loop {
            set_phase(self.registry, self.id, Phase::Idle);
            let frame = match self.read_request(&mut stream).await {
                Ok(f) => f,
                Err(FrameError::Closed) => return Ok(()),
                Err(e @ (FrameError::TooLarge { .. } | FrameError::Busy)) => {
                    // The body was not read, so the stream cannot be resynchronised:
                    // answer and close.
                    send(
                        &mut stream,
                        &protocol_error(format!("request rejected: {e}")),
                    )
                    .await?;
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
            set_phase(self.registry, self.id, Phase::Serving);
            let reply = match serde_json::from_slice::<Request>(&frame) {
                Ok(req) => {
                    drop(frame);
                    let audit = req.is_mutation().then(|| req.clone());
                    let d = daemon.clone();
                    // Table work is CPU-bound and short; keep it off the reactor threads.
                    let reply = match tokio::task::spawn_blocking(move || d.handle(req)).await {
                        Ok(r) => r,
                        Err(e) => protocol_error(format!("internal error: {e}")),
                    };
                    if let Some(req) = audit {
                        crate::audit::log(&req, &reply, peer);
                    }
                    reply
                }
                Err(e) => protocol_error(format!("malformed request: {e}")),
            };
            send(&mut stream, &reply).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_api::{read_frame_async, Request};
    use rvs_dataplane::{NoDataPlane, Shared};
    use tokio::io::AsyncWriteExt;

    fn daemon() -> Arc<Daemon> {
        Arc::new(Daemon::new(
            Arc::new(Shared::new(rvs_core::Table::new())),
            Box::new(NoDataPlane),
        ))
    }

    struct Server {
        _dir: tempfile::TempDir,
        path: PathBuf,
        task: tokio::task::JoinHandle<()>,
    }

    impl Drop for Server {
        fn drop(&mut self) {
            self.task.abort();
        }
    }

    fn server(limits: Limits) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.sock");
        let l = bind(&path).unwrap();
        let task = tokio::spawn(serve_with(l, daemon(), limits));
        Server {
            _dir: dir,
            path,
            task,
        }
    }

    async fn info(path: &Path) -> Result<Reply, FrameError> {
        let mut s = UnixStream::connect(path).await?;
        write_frame_async(&mut s, &serde_json::to_vec(&Request::Info).unwrap()).await?;
        let body = tokio::time::timeout(Duration::from_secs(5), read_frame_async(&mut s, 1 << 20))
            .await
            .map_err(|_| timed_out())??;
        Ok(serde_json::from_slice(&body)?)
    }

    /// True once the daemon closed `s` (end of stream or reset).
    async fn closed_within(s: &mut UnixStream, t: Duration) -> bool {
        let mut b = [0u8; 64];
        loop {
            match tokio::time::timeout(t, s.read(&mut b)).await {
                Err(_) => return false,
                Ok(Ok(0)) | Ok(Err(_)) => return true,
                Ok(Ok(_)) => continue, // an error reply before the close
            }
        }
    }

    #[tokio::test]
    async fn a_fresh_client_is_served_however_many_idle_ones_hold_connections() {
        let srv = server(Limits {
            max_clients: 8,
            ..Limits::default()
        });
        let mut idle = Vec::new();
        for _ in 0..8 {
            idle.push(UnixStream::connect(&srv.path).await.unwrap());
        }
        // Half a request from two more: they are the newest, the eviction takes the oldest.
        for _ in 0..2 {
            let mut s = UnixStream::connect(&srv.path).await.unwrap();
            s.write_all(&[0, 0, 0, 50, b'{']).await.unwrap();
            idle.push(s);
        }
        for _ in 0..20 {
            assert!(matches!(info(&srv.path).await, Ok(Reply::Info(_))));
        }
        // The first idle ones were closed to make room.
        assert!(closed_within(&mut idle[0], Duration::from_secs(2)).await);
    }

    #[tokio::test]
    async fn silent_and_trickling_clients_are_closed_after_their_timeouts() {
        let srv = server(Limits {
            idle_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_millis(300),
            ..Limits::default()
        });
        let mut silent = UnixStream::connect(&srv.path).await.unwrap();
        let mut trickle = UnixStream::connect(&srv.path).await.unwrap();
        trickle.write_all(&[0, 0, 0, 100]).await.unwrap();
        let t = Instant::now();
        for _ in 0..4 {
            // one byte every 100 ms: alive, but the request never completes in time
            let _ = trickle.write_all(b" ").await;
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        assert!(closed_within(&mut trickle, Duration::from_secs(2)).await);
        assert!(closed_within(&mut silent, Duration::from_secs(2)).await);
        assert!(t.elapsed() < Duration::from_secs(2));
        assert!(matches!(info(&srv.path).await, Ok(Reply::Info(_))));
    }

    #[tokio::test]
    async fn request_bodies_share_one_budget_and_a_client_over_it_is_told_so() {
        let srv = server(Limits {
            max_buffered: 256 << 10,
            ..Limits::default()
        });
        // Three clients sending 120 KiB of a 1 MiB request each: the third is over.
        let mut held = Vec::new();
        for _ in 0..2 {
            let mut s = UnixStream::connect(&srv.path).await.unwrap();
            s.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
            s.write_all(&vec![b' '; 120 << 10]).await.unwrap();
            held.push(s);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut s = UnixStream::connect(&srv.path).await.unwrap();
        s.write_all(&(1u32 << 20).to_be_bytes()).await.unwrap();
        let _ = s.write_all(&vec![b' '; 200 << 10]).await;
        let body = tokio::time::timeout(Duration::from_secs(5), read_frame_async(&mut s, 1 << 20))
            .await
            .unwrap()
            .unwrap();
        let r: Reply = serde_json::from_slice(&body).unwrap();
        assert!(
            matches!(&r, Reply::Error(e) if e.message.contains("too many large requests")),
            "{r:?}"
        );
        // Small requests need no budget.
        assert!(matches!(info(&srv.path).await, Ok(Reply::Info(_))));
        drop(held);
    }

    #[test]
    fn bind_never_replaces_what_is_not_a_socket_and_replaces_a_stale_one() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("file");
        std::fs::write(&file, "precious").unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _g = rt.enter();
        match bind(&file) {
            Err(ControlError::NotASocket { what, .. }) => assert_eq!(what, "a regular file"),
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("bound over a regular file"),
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "precious");
        let link = dir.path().join("link");
        std::os::unix::fs::symlink(&file, &link).unwrap();
        assert!(matches!(
            bind(&link),
            Err(ControlError::NotASocket {
                what: "a symbolic link",
                ..
            })
        ));
        assert!(matches!(
            bind(dir.path()),
            Err(ControlError::NotASocket {
                what: "a directory",
                ..
            })
        ));
        // A socket nobody listens on is stale: replaced.
        let stale = dir.path().join("stale.sock");
        drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
        assert!(stale.exists());
        let l = bind(&stale).unwrap();
        // A live one is not.
        assert!(matches!(bind(&stale), Err(ControlError::InUse(_))));
        // Dropping the listener removes its socket.
        drop(l);
        assert!(!stale.exists());
    }
}
