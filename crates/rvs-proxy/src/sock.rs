//! Socket set-up the proxy needs beyond what tokio offers: IP_FREEBIND listeners (a VIP
//! that is not local yet, e.g. on a VRRP backup, is served as soon as it arrives),
//! SO_REUSEPORT accept sharding, resets instead of orderly closes, TCP_INFO segment counts.

use socket2::{Domain, Protocol, SockRef, Socket, TcpKeepalive, Type};
use std::io;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::Duration;

fn bound_socket(addr: SocketAddr, ty: Type, proto: Protocol) -> io::Result<Socket> {
    let sock = Socket::new(Domain::for_address(addr), ty, Some(proto))?;
    sock.set_reuse_address(true)?;
    sock.set_reuse_port(true)?;
    match addr {
        SocketAddr::V4(_) => sock.set_freebind_v4(true)?,
        SocketAddr::V6(_) => {
            sock.set_only_v6(true)?;
            sock.set_freebind_v6(true)?;
        }
    }
    sock.set_nonblocking(true)?;
    sock.bind(&addr.into())?;
    Ok(sock)
}

/// A listening TCP socket on a virtual service address. It carries keepalive and
/// TCP_NODELAY, which Linux copies into every accepted socket: the per-connection path
/// saves five setsockopt calls (measured by bench/run.sh).
pub fn tcp_listener(addr: SocketAddr, backlog: i32) -> io::Result<tokio::net::TcpListener> {
    let sock = bound_socket(addr, Type::STREAM, Protocol::TCP)?;
    stream_options(&SockRef::from(&sock))?;
    sock.listen(backlog)?;
    tokio::net::TcpListener::from_std(sock.into())
}

/// A UDP socket bound to a virtual service address.
pub fn udp_bound(addr: SocketAddr) -> io::Result<tokio::net::UdpSocket> {
    let sock = bound_socket(addr, Type::DGRAM, Protocol::UDP)?;
    tokio::net::UdpSocket::from_std(sock.into())
}

fn stream_options(r: &SockRef<'_>) -> io::Result<()> {
    set_keepalive(r)?;
    r.set_tcp_nodelay(true)
}

/// TCP keepalive so a client or server that vanished without a FIN or RST is noticed.
fn set_keepalive(r: &SockRef<'_>) -> io::Result<()> {
    let ka = TcpKeepalive::new()
        .with_time(Duration::from_secs(120))
        .with_interval(Duration::from_secs(15))
        .with_retries(4);
    r.set_tcp_keepalive(&ka)
}

/// Keepalive on a connected socket (accepted sockets inherit it from the listener).
pub fn keepalive(s: &tokio::net::TcpStream) {
    let _ = set_keepalive(&SockRef::from(s));
}

/// No Nagle delay on relayed data (accepted sockets inherit it from the listener).
pub fn nodelay(s: &tokio::net::TcpStream) {
    let _ = SockRef::from(s).set_tcp_nodelay(true);
}

/// Makes the next close send a RST (SO_LINGER 0), as the director's refusal does.
pub fn reset_on_close(s: &tokio::net::TcpStream) {
    let _ = SockRef::from(s).set_linger(Some(Duration::ZERO));
}

/// Half-close: no more data will be written to this socket (sends a FIN).
pub fn shutdown_write(s: &tokio::net::TcpStream) {
    let _ = SockRef::from(s).shutdown(std::net::Shutdown::Write);
}

/// Segments received on a TCP socket so far (`tcpi_segs_in`, Linux ≥ 4.2): the packet
/// count the proxy reports, handshake and pure ACKs included, as IPVS counts packets.
pub fn segs_in(s: &tokio::net::TcpStream) -> u64 {
    // SAFETY: tcp_info is plain old data; zeroed is a valid value.
    let mut info: libc::tcp_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::tcp_info>() as libc::socklen_t;
    // SAFETY: `info` is valid for `len` bytes; getsockopt writes at most that and updates
    // `len` (older kernels fill less, leaving the rest zero).
    let rc = unsafe {
        libc::getsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_TCP,
            libc::TCP_INFO,
            (&mut info as *mut libc::tcp_info).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return 0;
    }
    info.tcpi_segs_in as u64
}

/// Raises the soft open-file limit to the hard limit; returns the new soft limit.
pub fn raise_nofile() -> u64 {
    let mut rl = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: plain libc calls on a stack struct.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut rl) != 0 {
            return 0;
        }
        if rl.rlim_cur < rl.rlim_max {
            let want = libc::rlimit {
                rlim_cur: rl.rlim_max,
                rlim_max: rl.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &want) == 0 {
                return want.rlim_cur;
            }
        }
    }
    rl.rlim_cur
}

/// Descriptors this process has open now (0 if /proc cannot say).
pub fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd").map_or(0, |d| d.count())
}

/// True for accept errors that mean "out of file descriptors or memory".
pub fn is_resource_exhaustion(e: &io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EMFILE) | Some(libc::ENFILE) | Some(libc::ENOBUFS) | Some(libc::ENOMEM)
    )
}
