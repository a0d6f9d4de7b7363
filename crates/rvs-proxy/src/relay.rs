//! Moving bytes one way between two TCP sockets: by a userspace copy, or by splice(2)
//! through a pipe so payload never enters user memory. Which pays is measured by the
//! benchmark harness (docs/bench.md); the proxy's `--proxy-transfer` option picks.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::Interest;
use tokio::net::TcpStream;

/// How a relay moves bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transfer {
    /// read(2) into a 16 KiB buffer (held only while data flows), write(2) out.
    Copy,
    /// splice(2) socket → pipe → socket once a direction proves bulky (one read fills
    /// the copy buffer); until then it is copied, as a short exchange (a request and its
    /// answer) costs fewer system calls copied than through a pipe made for it.
    Splice,
}

/// How one direction ended.
#[derive(Debug)]
pub enum End {
    /// The sender closed its half (FIN); everything was passed on.
    Eof,
    /// The connection was reset or failed.
    Reset(io::Error),
}

const COPY_BUF: usize = 16 * 1024;
const SPLICE_CHUNK: usize = 1 << 20;

fn is_reset(e: &io::Error) -> bool {
    e.kind() != io::ErrorKind::WouldBlock
}

/// Relays `src` → `dst` until `src` reaches EOF or either side fails; `progress` is told
/// every chunk passed on. The caller half-closes `dst` after [`End::Eof`].
pub async fn pump(
    src: &TcpStream,
    dst: &TcpStream,
    mode: Transfer,
    progress: &mut (dyn FnMut(u64) + Send),
) -> End {
    let r = match mode {
        Transfer::Copy => copy(src, dst, progress, false).await.map(drop),
        Transfer::Splice => match copy(src, dst, progress, true).await {
            Ok(Copied::Bulk) => splice(src, dst, progress).await,
            Ok(Copied::Eof) => Ok(()),
            Err(e) => Err(e),
        },
    };
    match r {
        Ok(()) => End::Eof,
        Err(e) => End::Reset(e),
    }
}

async fn write_all(dst: &TcpStream, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        dst.writable().await?;
        match dst.try_write(data) {
            Ok(n) => data = &data[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Why [`copy`] returned.
enum Copied {
    Eof,
    /// A read filled the buffer and the caller asked to hand bulk flows over.
    Bulk,
}

async fn copy(
    src: &TcpStream,
    dst: &TcpStream,
    progress: &mut (dyn FnMut(u64) + Send),
    stop_on_bulk: bool,
) -> io::Result<Copied> {
    loop {
        src.readable().await?;
        // The buffer lives only while data flows: taken when the socket has data, given
        // back once it would block, so an idle connection holds none. It is not zeroed:
        // `try_read_buf` fills the spare capacity.
        let mut buf = Vec::with_capacity(COPY_BUF);
        loop {
            buf.clear();
            match src.try_read_buf(&mut buf) {
                Ok(0) => return Ok(Copied::Eof),
                Ok(n) => {
                    write_all(dst, &buf).await?;
                    progress(n as u64);
                    if stop_on_bulk && n >= COPY_BUF {
                        return Ok(Copied::Bulk);
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => return Err(e),
            }
        }
    }
}

/// A pipe for splicing, created on first use.
struct Pipe {
    r: OwnedFd,
    w: OwnedFd,
}

impl Pipe {
    fn new() -> io::Result<Pipe> {
        let mut fds = [0 as RawFd; 2];
        // SAFETY: pipe2 writes two fds into the array on success.
        if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_NONBLOCK | libc::O_CLOEXEC) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: both fds were just created and are owned by nobody else.
        Ok(unsafe {
            Pipe {
                r: OwnedFd::from_raw_fd(fds[0]),
                w: OwnedFd::from_raw_fd(fds[1]),
            }
        })
    }
}

fn splice_fd(from: RawFd, to: RawFd, len: usize) -> io::Result<usize> {
    // SAFETY: plain syscall on fds owned by the caller; null offsets (streams).
    let n = unsafe {
        libc::splice(
            from,
            std::ptr::null_mut(),
            to,
            std::ptr::null_mut(),
            len,
            libc::SPLICE_F_MOVE | libc::SPLICE_F_NONBLOCK,
        )
    };
    if n < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(n as usize)
    }
}

async fn splice(
    src: &TcpStream,
    dst: &TcpStream,
    progress: &mut (dyn FnMut(u64) + Send),
) -> io::Result<()> {
    let mut pipe: Option<Pipe> = None;
    let (sfd, dfd) = (src.as_raw_fd(), dst.as_raw_fd());
    loop {
        src.readable().await?;
        if pipe.is_none() {
            pipe = Some(Pipe::new()?);
        }
        let p = pipe.as_ref().expect("created above");
        let pw = p.w.as_raw_fd();
        let n = match src.try_io(Interest::READABLE, || splice_fd(sfd, pw, SPLICE_CHUNK)) {
            Ok(0) => return Ok(()),
            Ok(n) => n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
            Err(e) => return Err(e),
        };
        let pr = p.r.as_raw_fd();
        let mut left = n;
        while left > 0 {
            dst.writable().await?;
            match dst.try_io(Interest::WRITABLE, || splice_fd(pr, dfd, left)) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(m) => left -= m,
                Err(e) if !is_reset(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        progress(n as u64);
    }
}
