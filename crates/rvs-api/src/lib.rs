//! # rvs-api — the control socket between `rvsadm` (and scripts) and `rvsd`.
//!
//! A Unix stream socket (default [`DEFAULT_SOCKET`], overridable with `--socket PATH` or
//! the [`SOCKET_ENV`] variable). Each message is a frame: a 4-byte big-endian length, then
//! that many bytes of JSON encoding a [`Request`] or a [`Reply`]. One request gets exactly
//! one reply; a connection may carry many. JSON keeps the protocol readable with `socat`
//! and usable from any language; the frame length bounds what the daemon will read.

mod frame;
mod messages;

pub use frame::{read_frame, write_frame, FrameError, MAX_REPLY, MAX_REQUEST};
#[cfg(feature = "tokio")]
pub use frame::{read_frame_async, write_frame_async};
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
    #[error("control socket: {0}")]
    Frame(#[from] FrameError),
}

/// A blocking connection to rvsd.
pub struct Client {
    stream: UnixStream,
}

impl Client {
    pub fn connect(path: &Path) -> Result<Client, ClientError> {
        let stream = UnixStream::connect(path).map_err(|source| ClientError::Connect {
            path: path.to_path_buf(),
            source,
        })?;
        Ok(Client { stream })
    }

    /// Sends one request and waits for its reply.
    pub fn call(&mut self, req: &Request) -> Result<Reply, ClientError> {
        let body = serde_json::to_vec(req).map_err(FrameError::Json)?;
        write_frame(&mut self.stream, &body)?;
        let reply = read_frame(&mut self.stream, MAX_REPLY)?;
        Ok(serde_json::from_slice(&reply).map_err(FrameError::Json)?)
    }
}
