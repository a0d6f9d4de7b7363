//! # rvs-api — the control socket between `rvsadm` (and scripts) and `rvsd`.
//!
//! A Unix stream socket (default [`DEFAULT_SOCKET`], overridable with `--socket PATH` or
//! the [`SOCKET_ENV`] variable). Each message is a frame: a 4-byte big-endian length, then
//! that many bytes of JSON encoding a [`Request`] or a [`Reply`]. One request gets exactly
//! one reply; a connection may carry many. JSON keeps the protocol readable with `socat`
//! and usable from any language; the frame length bounds what the daemon will read.

mod frame;
mod messages;

#[cfg(feature = "tokio")]
pub use frame::{read_body_async, read_frame_async, write_frame_async};
pub use frame::{read_frame, write_frame, FrameError, MAX_REPLY, MAX_REQUEST, READ_CHUNK};
pub use messages::*;

use std::io;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// The version of this protocol (docs/control-protocol.md). rvsd reports it as the
/// `control.protocol` fact of [`Request::Status`]. Compatible additions (a new request, a
/// new optional field) keep it; a change that breaks a client of the previous version
/// raises it.
pub const PROTOCOL_VERSION: u32 = 1;

/// Where rvsd listens unless told otherwise.
pub const DEFAULT_SOCKET: &str = "/run/rvs/rvsd.sock";
/// Environment variable overriding the socket path (both binaries).
pub const SOCKET_ENV: &str = "RVS_SOCKET";
/// How long a client waits for rvsd's reply by default (a listing of a million
/// connections takes a few seconds).
pub const DEFAULT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The socket path: an explicit one, else `$RVS_SOCKET`, else [`DEFAULT_SOCKET`].
pub fn socket_path(explicit: Option<&Path>) -> PathBuf {
    if let Some(p) = explicit {
        return p.to_path_buf();
    }
    match std::env::var_os(SOCKET_ENV) {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from(DEFAULT_SOCKET),
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// rvsd is not listening on the socket.
    #[error("cannot reach rvsd at {path}: {source}")]
    Connect { path: PathBuf, source: io::Error },
    /// rvsd did not answer (or take the request) within the client's timeout.
    #[error("no reply within {} s", .0.as_secs_f64())]
    TimedOut(std::time::Duration),
    #[error("control socket: {0}")]
    Frame(#[from] FrameError),
}

/// A blocking connection to rvsd.
pub struct Client {
    stream: UnixStream,
    timeout: std::time::Duration,
}

impl Client {
    /// Connects with the [`DEFAULT_TIMEOUT`].
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        Client::connect_timeout(path, DEFAULT_TIMEOUT)
    }

    /// Connects; every later read or write of a call waits at most `timeout`.
    pub fn connect_timeout(
        path: &Path,
        timeout: std::time::Duration,
    ) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        let t = Some(timeout).filter(|t| !t.is_zero());
        let set = stream
            .set_read_timeout(t)
            .and_then(|()| stream.set_write_timeout(t));
        set.map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Client { stream, timeout })
    }

    /// Sends one request and waits for its reply.
    pub fn call(&mut self, req: &Request) -> Result<Reply, ClientError> {
        let body = serde_json::to_vec(req).map_err(FrameError::Json)?;
        let timed_out = |e: FrameError| match e {
            FrameError::Io(io)
                if matches!(
                    io.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                ClientError::TimedOut(self.timeout)
            }
            other => ClientError::Frame(other),
        };
        write_frame(&mut self.stream, &body).map_err(timed_out)?;
        let reply = read_frame(&mut self.stream, MAX_REPLY).map_err(timed_out)?;
        Ok(serde_json::from_slice(&reply).map_err(FrameError::Json)?)
    }
}
