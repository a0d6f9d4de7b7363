//! The control socket: a Unix stream socket, mode 0600, carrying length-prefixed JSON
//! frames ([`rvs_api`]). Malformed or oversized requests get an error reply and never take
//! the daemon down; a slow or silent client only holds its own task.

use crate::daemon::Daemon;
use rvs_api::{
    read_frame_async, write_frame_async, ApiError, FrameError, Reply, Request, MAX_REQUEST,
};
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Semaphore;

/// Most control connections served at once; more wait in the listen backlog.
const MAX_CLIENTS: usize = 64;
/// A client must send each request within this time once it started it.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another rvsd is already listening on {0}")]
    InUse(PathBuf),
    // `err` (not `source`): the message already says it, anyhow must not repeat it.
    #[error("cannot create the control socket directory {path}: {err}")]
    Dir { path: PathBuf, err: io::Error },
    #[error("cannot bind the control socket {path}: {err}")]
    Bind { path: PathBuf, err: io::Error },
}

/// Binds the socket: creates its directory, replaces a stale socket left by a crashed
/// daemon, refuses to steal the socket of a live one, and sets mode 0600.
pub fn bind(path: &Path) -> Result<UnixListener, ControlError> {
    if let Some(dir) = path.parent() {
        if !dir.as_os_str().is_empty() && !dir.exists() {
            std::fs::create_dir_all(dir).map_err(|err| ControlError::Dir {
                path: dir.to_path_buf(),
                err,
            })?;
        }
    }
    if path.exists() {
        if std::os::unix::net::UnixStream::connect(path).is_ok() {
            return Err(ControlError::InUse(path.to_path_buf()));
        }
        let _ = std::fs::remove_file(path);
    }
    let listener = UnixListener::bind(path).map_err(|err| ControlError::Bind {
        path: path.to_path_buf(),
        err,
    })?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).map_err(|err| {
        ControlError::Bind {
            path: path.to_path_buf(),
            err,
        }
    })?;
    Ok(listener)
}

/// Accepts clients until the task is dropped.
pub async fn serve(listener: UnixListener, daemon: Arc<Daemon>) {
    let slots = Arc::new(Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = slots.clone().acquire_owned().await else {
            return;
        };
        match listener.accept().await {
            Ok((stream, _)) => {
                let daemon = daemon.clone();
                tokio::spawn(async move {
                    if let Err(e) = client(stream, daemon).await {
                        tracing::debug!("control client: {e}");
                    }
                    drop(permit);
                });
            }
            Err(e) => {
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
    write_frame_async(stream, &body).await
}

async fn client(mut stream: UnixStream, daemon: Arc<Daemon>) -> Result<(), FrameError> {
    let peer = stream
        .peer_cred()
        .map(|c| crate::audit::Peer {
            uid: Some(c.uid()),
            pid: c.pid(),
        })
        .unwrap_or_default();
    loop {
        let frame = match read_frame_async(&mut stream, MAX_REQUEST).await {
            Ok(f) => f,
            Err(FrameError::Closed) => return Ok(()),
            Err(e @ FrameError::TooLarge { .. }) => {
                // The body was not read, so the stream cannot be resynchronised: answer and
                // close.
                send(
                    &mut stream,
                    &protocol_error(format!("request rejected: {e}")),
                )
                .await?;
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let reply = match serde_json::from_slice::<Request>(&frame) {
            Ok(req) => {
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
        tokio::time::timeout(REQUEST_TIMEOUT, send(&mut stream, &reply))
            .await
            .map_err(|_| FrameError::Io(io::Error::from(io::ErrorKind::TimedOut)))??;
    }
}
