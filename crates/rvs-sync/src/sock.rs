//! The multicast sockets of the sync daemons, set up as `make_send_sock` and
//! `make_receive_sock` of `ip_vs_sync.c` set up theirs.
//!
//! * master: multicast out of the sync interface, loop off, the configured TTL, PMTU
//!   discovery off (messages may be fragmented), bound to the interface's IPv4 address
//!   (IPv6: the kernel picks), connected to `group:port + id`;
//! * backup: address reuse, bound to the interface and to `group:port + id`, the group
//!   joined on that interface.

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

/// An interface the sync daemon uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interface {
    pub name: String,
    pub index: u32,
    pub mtu: u32,
}

/// Looks an interface up in this network namespace.
///
/// # Errors
/// `ENODEV` when there is none of that name (what the kernel answers to
/// `--start-daemon` with an unknown `--mcast-interface`).
pub fn interface(name: &str) -> io::Result<Interface> {
    let c = std::ffi::CString::new(name).map_err(|_| io::Error::from_raw_os_error(libc::ENODEV))?;
    if name.is_empty() || name.len() >= libc::IFNAMSIZ {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    // SAFETY: NUL-terminated name.
    let index = unsafe { libc::if_nametoindex(c.as_ptr()) };
    if index == 0 {
        return Err(io::Error::from_raw_os_error(libc::ENODEV));
    }
    Ok(Interface {
        name: name.to_string(),
        index,
        mtu: mtu(name).unwrap_or(1500),
    })
}

/// SIOCGIFMTU on a throwaway socket (so the answer is this namespace's).
fn mtu(name: &str) -> io::Result<u32> {
    let s = Socket::new(Domain::IPV4, Type::DGRAM, None)?;
    // SAFETY: zeroed ifreq, name copied within IFNAMSIZ - 1, ioctl fills ifru_mtu.
    unsafe {
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, b) in req.ifr_name.iter_mut().zip(name.as_bytes()) {
            *d = *b as libc::c_char;
        }
        use std::os::fd::AsRawFd;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFMTU, &mut req) != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(req.ifr_ifru.ifru_mtu as u32)
    }
}

/// The first IPv4 address of an interface (`inet_select_addr`), if it has one.
fn ipv4_of(name: &str) -> Option<Ipv4Addr> {
    let mut ifap: *mut libc::ifaddrs = std::ptr::null_mut();
    // SAFETY: getifaddrs fills a list we walk read-only and free once.
    unsafe {
        if libc::getifaddrs(&mut ifap) != 0 {
            return None;
        }
        let mut found = None;
        let mut p = ifap;
        while !p.is_null() {
            let ifa = &*p;
            p = ifa.ifa_next;
            if ifa.ifa_addr.is_null() || (*ifa.ifa_addr).sa_family as i32 != libc::AF_INET {
                continue;
            }
            let n = std::ffi::CStr::from_ptr(ifa.ifa_name);
            if n.to_bytes() != name.as_bytes() {
                continue;
            }
            let sin = &*(ifa.ifa_addr as *const libc::sockaddr_in);
            found = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
            break;
        }
        libc::freeifaddrs(ifap);
        found
    }
}

fn domain(group: &IpAddr) -> Domain {
    match group {
        IpAddr::V4(_) => Domain::IPV4,
        IpAddr::V6(_) => Domain::IPV6,
    }
}

/// A master's sending socket for thread `id`.
///
/// # Errors
/// Any socket call failing (the daemon does not start).
pub fn send_socket(
    ifc: &Interface,
    group: IpAddr,
    port: u16,
    ttl: u8,
    sock_size: u32,
) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(domain(&group), Type::DGRAM, Some(Protocol::UDP))?;
    match group {
        IpAddr::V4(_) => {
            set_mcast_if_index(&s, ifc.index)?;
            s.set_multicast_loop_v4(false)?;
            s.set_multicast_ttl_v4(ttl as u32)?;
            set_int(
                &s,
                libc::IPPROTO_IP,
                libc::IP_MTU_DISCOVER,
                libc::IP_PMTUDISC_DONT,
            )?;
        }
        IpAddr::V6(_) => {
            s.set_multicast_if_v6(ifc.index)?;
            s.set_multicast_loop_v6(false)?;
            s.set_multicast_hops_v6(ttl as u32)?;
            set_int(
                &s,
                libc::IPPROTO_IPV6,
                libc::IPV6_MTU_DISCOVER,
                libc::IPV6_PMTUDISC_DONT,
            )?;
        }
    }
    if sock_size > 0 {
        s.set_send_buffer_size(sock_size as usize)?;
    }
    if group.is_ipv4() {
        // Without an address the kernel complains and binds to any; so do we.
        let a = ipv4_of(&ifc.name).unwrap_or(Ipv4Addr::UNSPECIFIED);
        if a.is_unspecified() {
            tracing::warn!(
                interface = %ifc.name,
                "sync master: the interface has no IPv4 address; messages leave from any address"
            );
        }
        s.bind(&SockAddr::from(SocketAddr::new(IpAddr::V4(a), 0)))?;
    }
    s.connect(&SockAddr::from(SocketAddr::new(group, port)))?;
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// A backup's receiving socket for thread `id`.
///
/// # Errors
/// Any socket call failing (the daemon does not start).
pub fn recv_socket(
    ifc: &Interface,
    group: IpAddr,
    port: u16,
    sock_size: u32,
) -> io::Result<std::net::UdpSocket> {
    let s = Socket::new(domain(&group), Type::DGRAM, Some(Protocol::UDP))?;
    s.set_reuse_address(true)?;
    if sock_size > 0 {
        s.set_recv_buffer_size(sock_size as usize)?;
    }
    s.bind_device(Some(ifc.name.as_bytes()))?;
    // Count what the kernel drops for want of buffer space (SO_RXQ_OVFL).
    set_int(&s, libc::SOL_SOCKET, libc::SO_RXQ_OVFL, 1)?;
    s.bind(&SockAddr::from(SocketAddr::new(group, port)))?;
    match group {
        IpAddr::V4(g) => {
            s.join_multicast_v4_n(&g, &socket2::InterfaceIndexOrAddress::Index(ifc.index))?
        }
        IpAddr::V6(g) => s.join_multicast_v6(&g, ifc.index)?,
    }
    s.set_nonblocking(true)?;
    Ok(s.into())
}

/// IP_MULTICAST_IF by interface index (`ip_mreqn`), as `set_mcast_if` does.
fn set_mcast_if_index(s: &Socket, index: u32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let req = libc::ip_mreqn {
        imr_multiaddr: libc::in_addr { s_addr: 0 },
        imr_address: libc::in_addr { s_addr: 0 },
        imr_ifindex: index as i32,
    };
    // SAFETY: setsockopt with a pointer to a live ip_mreqn of the right size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_MULTICAST_IF,
            &req as *const libc::ip_mreqn as *const libc::c_void,
            size_of::<libc::ip_mreqn>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

fn set_int(s: &Socket, level: i32, name: i32, v: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: setsockopt with a pointer to a live c_int of the right size.
    let rc = unsafe {
        libc::setsockopt(
            s.as_raw_fd(),
            level,
            name,
            &v as *const i32 as *const libc::c_void,
            size_of::<i32>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The group when none is given (`IP_VS_SYNC_GROUP`; IPv6 only with an explicit group).
pub const DEFAULT_GROUP: Ipv4Addr = Ipv4Addr::new(224, 0, 0, 81);
/// `IP_VS_SYNC_PORT`.
pub const DEFAULT_PORT: u16 = 8848;

/// Receives one datagram into `buf`, with the count of datagrams the kernel dropped on
/// this socket so far (`SO_RXQ_OVFL`), when it says.
pub fn recv_counting(fd: i32, buf: &mut [u8]) -> io::Result<(usize, bool, Option<u32>)> {
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    let mut cbuf = [0u64; 8];
    // SAFETY: msghdr points at live buffers of the given lengths; recvmsg writes within
    // them; cmsg walking stays within msg_controllen.
    unsafe {
        let mut msg: libc::msghdr = std::mem::zeroed();
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = size_of_val(&cbuf);
        let n = libc::recvmsg(fd, &mut msg, libc::MSG_DONTWAIT | libc::MSG_TRUNC);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        let mut drops = None;
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::SOL_SOCKET && (*c).cmsg_type == libc::SO_RXQ_OVFL {
                drops = Some(std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const u32));
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        let truncated = msg.msg_flags & libc::MSG_TRUNC != 0;
        Ok((n as usize, truncated, drops))
    }
}
