//! TCP_CHECK, and the connect every connection checker starts with
//! (`layer4.c tcp_bind_connect`: bindto/bind_port, bind_if, fwmark).

use crate::epilog::Outcome;
use crate::plan::ConnSpec;
use std::io;
use std::os::fd::AsRawFd;
use tokio::net::{TcpSocket, TcpStream};

/// Connects as the checker's connection options say, within its timeout.
pub async fn connect(c: &ConnSpec) -> Result<TcpStream, String> {
    let sock = if c.dst.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(|e| format!("socket: {e}"))?;
    if let Some(dev) = &c.bind_if {
        sock.bind_device(Some(dev.as_bytes()))
            .map_err(|e| format!("bind_if {dev}: {e}"))?;
    }
    if let Some(mark) = c.fwmark {
        set_mark(&sock, mark).map_err(|e| format!("fwmark {mark}: {e}"))?;
    }
    if let Some(b) = c.bind {
        sock.bind(b).map_err(|e| format!("bindto {b}: {e}"))?;
    }
    match tokio::time::timeout(c.timeout, sock.connect(c.dst)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => Err(format!("connect to {}: {e}", c.dst)),
        Err(_) => Err(format!("timeout connecting to {}", c.dst)),
    }
}

fn set_mark(sock: &TcpSocket, mark: u32) -> io::Result<()> {
    set_mark_fd(sock.as_raw_fd(), mark)
}

pub(crate) fn set_mark_fd(fd: i32, mark: u32) -> io::Result<()> {
    // SAFETY: setsockopt on a socket we own, with a u32 value of the declared size.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_MARK,
            (&mark as *const u32).cast(),
            std::mem::size_of::<u32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

pub async fn probe(c: &ConnSpec) -> Outcome {
    match connect(c).await {
        Ok(_) => Outcome::Ok,
        Err(e) => Outcome::Fail(e),
    }
}
