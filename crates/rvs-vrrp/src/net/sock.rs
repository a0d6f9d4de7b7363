//! Raw IP sockets for protocol 112, set up the way keepalived sets up its own
//! (`open_vrrp_read_socket` / `open_vrrp_send_socket`): bound to the interface, the VRRP
//! group joined on it (not in unicast mode), multicast loopback off, only the groups
//! joined by this socket delivered (`IP_MULTICAST_ALL` 0).
//!
//! * IPv4: `IP_HDRINCL` — we write the IPv4 header (TTL 255, TOS 0xc0, the source the
//!   VRRPv3 pseudo-header used); received packets come with their header, which is where
//!   the TTL check reads the TTL.
//! * IPv6: the kernel writes the header (Hop Limit 255 set on the socket, source given per
//!   packet with `IPV6_PKTINFO`); the Hop Limit and destination of received packets come
//!   as ancillary data. The checksum is ours both ways (no `IPV6_CHECKSUM`), so a bad one
//!   is counted instead of silently dropped by the kernel.

use crate::checksum::IPPROTO_VRRP;
use crate::packet::{Family, TTL};
use crate::validate::RxMeta;
use std::ffi::CString;
use std::io;
use std::mem::{size_of, zeroed};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use tokio::io::unix::AsyncFd;

/// keepalived's traffic class / TOS for adverts: internetwork control.
const TCLASS: libc::c_int = 0xc0;

fn cvt(rc: libc::c_int) -> io::Result<libc::c_int> {
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc)
    }
}

fn setsockopt<T>(fd: RawFd, level: libc::c_int, name: libc::c_int, v: &T) -> io::Result<()> {
    // SAFETY: `v` points to a live T of the size passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (v as *const T).cast(),
            size_of::<T>() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// Binds a socket to an interface by name (`SO_BINDTODEVICE`).
pub fn bind_to_device(fd: RawFd, ifname: &str) -> io::Result<()> {
    let name = CString::new(ifname).map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    let bytes = name.as_bytes_with_nul();
    // SAFETY: the name buffer is live and its length is passed.
    cvt(unsafe {
        libc::setsockopt(
            fd,
            libc::SOL_SOCKET,
            libc::SO_BINDTODEVICE,
            bytes.as_ptr().cast(),
            bytes.len() as libc::socklen_t,
        )
    })
    .map(drop)
}

/// A raw VRRP socket on one interface.
pub struct VrrpSocket {
    fd: AsyncFd<OwnedFd>,
    family: Family,
    ifindex: u32,
}

impl VrrpSocket {
    /// Opens the socket on `ifname` (index `ifindex`); joins `group` unless None (unicast).
    ///
    /// # Errors
    /// Socket creation (needs `CAP_NET_RAW`) or option failures.
    pub fn open(
        family: Family,
        ifname: &str,
        ifindex: u32,
        group: Option<IpAddr>,
    ) -> io::Result<VrrpSocket> {
        let domain = match family {
            Family::V4 => libc::AF_INET,
            Family::V6 => libc::AF_INET6,
        };
        // SAFETY: plain socket(2).
        let raw = cvt(unsafe {
            libc::socket(
                domain,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC,
                libc::c_int::from(IPPROTO_VRRP),
            )
        })?;
        // SAFETY: `raw` is a fresh descriptor we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let s = fd.as_raw_fd();
        bind_to_device(s, ifname)?;
        let one: libc::c_int = 1;
        let zero: libc::c_int = 0;
        let ttl: libc::c_int = TTL.into();
        match family {
            Family::V4 => {
                setsockopt(s, libc::IPPROTO_IP, libc::IP_HDRINCL, &one)?;
                setsockopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_ALL, &zero)?;
                setsockopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_LOOP, &zero)?;
                setsockopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_TTL, &ttl)?;
                let mreq = libc::ip_mreqn {
                    imr_multiaddr: libc::in_addr { s_addr: 0 },
                    imr_address: libc::in_addr { s_addr: 0 },
                    imr_ifindex: ifindex as libc::c_int,
                };
                setsockopt(s, libc::IPPROTO_IP, libc::IP_MULTICAST_IF, &mreq)?;
                if let Some(IpAddr::V4(g)) = group {
                    let join = libc::ip_mreqn {
                        imr_multiaddr: libc::in_addr {
                            s_addr: u32::from(g).to_be(),
                        },
                        ..mreq
                    };
                    setsockopt(s, libc::IPPROTO_IP, libc::IP_ADD_MEMBERSHIP, &join)?;
                }
            }
            Family::V6 => {
                setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_LOOP, &zero)?;
                setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_HOPS, &ttl)?;
                setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_UNICAST_HOPS, &ttl)?;
                let idx = ifindex as libc::c_int;
                setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_MULTICAST_IF, &idx)?;
                setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_RECVHOPLIMIT, &one)?;
                setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO, &one)?;
                setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_TCLASS, &TCLASS)?;
                if let Some(IpAddr::V6(g)) = group {
                    let join = libc::ipv6_mreq {
                        ipv6mr_multiaddr: libc::in6_addr {
                            s6_addr: g.octets(),
                        },
                        ipv6mr_interface: ifindex,
                    };
                    setsockopt(s, libc::IPPROTO_IPV6, libc::IPV6_ADD_MEMBERSHIP, &join)?;
                }
            }
        }
        // SAFETY: the OwnedFd moves into the AsyncFd and stays open, the same descriptor,
        // until the AsyncFd is dropped.
        let fd = unsafe { AsyncFd::register(fd) }?;
        Ok(VrrpSocket {
            fd,
            family,
            ifindex,
        })
    }

    pub fn family(&self) -> Family {
        self.family
    }

    pub fn ifindex(&self) -> u32 {
        self.ifindex
    }

    /// Sends a complete IPv4 packet (header included) to `dst`.
    ///
    /// # Errors
    /// `sendto` failures.
    pub fn send_v4(&self, packet: &[u8], dst: Ipv4Addr) -> io::Result<()> {
        let sa = libc::sockaddr_in {
            sin_family: libc::AF_INET as libc::sa_family_t,
            sin_port: 0,
            sin_addr: libc::in_addr {
                s_addr: u32::from(dst).to_be(),
            },
            sin_zero: [0; 8],
        };
        let flags = if dst.is_multicast() {
            libc::MSG_DONTROUTE
        } else {
            0
        };
        // SAFETY: buffer and address are live for the call, sizes passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                packet.as_ptr().cast(),
                packet.len(),
                flags,
                (&sa as *const libc::sockaddr_in).cast(),
                size_of::<libc::sockaddr_in>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// Sends a VRRP message from `src` to `dst` (the kernel adds the IPv6 header).
    ///
    /// # Errors
    /// `sendmsg` failures.
    pub fn send_v6(&self, payload: &[u8], src: Ipv6Addr, dst: Ipv6Addr) -> io::Result<()> {
        // SAFETY: zeroed sockaddr_in6/msghdr are valid initial values.
        let mut sa: libc::sockaddr_in6 = unsafe { zeroed() };
        sa.sin6_family = libc::AF_INET6 as libc::sa_family_t;
        sa.sin6_addr = libc::in6_addr {
            s6_addr: dst.octets(),
        };
        if dst.is_multicast() || (dst.segments()[0] & 0xffc0) == 0xfe80 {
            sa.sin6_scope_id = self.ifindex;
        }
        let mut iov = libc::iovec {
            iov_base: payload.as_ptr() as *mut libc::c_void,
            iov_len: payload.len(),
        };
        let mut cbuf = [0u64; 8];
        let info = libc::in6_pktinfo {
            ipi6_addr: libc::in6_addr {
                s6_addr: src.octets(),
            },
            ipi6_ifindex: self.ifindex,
        };
        // SAFETY: msghdr fields point at live locals; CMSG_* stay within `cbuf`, which is
        // large enough for one in6_pktinfo.
        let n = unsafe {
            let mut msg: libc::msghdr = zeroed();
            msg.msg_name = (&mut sa as *mut libc::sockaddr_in6).cast();
            msg.msg_namelen = size_of::<libc::sockaddr_in6>() as libc::socklen_t;
            msg.msg_iov = &mut iov;
            msg.msg_iovlen = 1;
            msg.msg_control = cbuf.as_mut_ptr().cast();
            msg.msg_controllen = libc::CMSG_SPACE(size_of::<libc::in6_pktinfo>() as u32) as _;
            let cmsg = libc::CMSG_FIRSTHDR(&msg);
            (*cmsg).cmsg_level = libc::IPPROTO_IPV6;
            (*cmsg).cmsg_type = libc::IPV6_PKTINFO;
            (*cmsg).cmsg_len = libc::CMSG_LEN(size_of::<libc::in6_pktinfo>() as u32) as _;
            std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::in6_pktinfo>(), info);
            libc::sendmsg(self.fd.as_raw_fd(), &msg, 0)
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// The next packet: for IPv4 the whole IP packet (parse it with
    /// [`crate::ipv4::parse`]; `meta` is then filled from the header by the caller), for
    /// IPv6 the VRRP message with `meta` from the socket.
    ///
    /// # Errors
    /// `recvmsg` failures other than "would block".
    pub async fn recv(&self, buf: &mut [u8]) -> io::Result<(usize, Option<RxMeta>)> {
        loop {
            let mut guard = self.fd.readable().await?;
            match guard.try_io(|fd| recv_once(fd.as_raw_fd(), self.family, buf)) {
                Ok(r) => return r,
                Err(_would_block) => continue,
            }
        }
    }
}

fn recv_once(fd: RawFd, family: Family, buf: &mut [u8]) -> io::Result<(usize, Option<RxMeta>)> {
    // SAFETY: all pointers in msghdr refer to live locals sized as declared; the cmsg walk
    // uses the kernel-filled lengths within `cbuf`.
    unsafe {
        let mut src: libc::sockaddr_storage = zeroed();
        let mut iov = libc::iovec {
            iov_base: buf.as_mut_ptr().cast(),
            iov_len: buf.len(),
        };
        let mut cbuf = [0u64; 16];
        let mut msg: libc::msghdr = zeroed();
        msg.msg_name = (&mut src as *mut libc::sockaddr_storage).cast();
        msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
        msg.msg_iov = &mut iov;
        msg.msg_iovlen = 1;
        msg.msg_control = cbuf.as_mut_ptr().cast();
        msg.msg_controllen = std::mem::size_of_val(&cbuf) as _;
        let n = libc::recvmsg(fd, &mut msg, 0);
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        if family == Family::V4 {
            return Ok((n as usize, None));
        }
        let sin6 = &*(&src as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>();
        let mut meta = RxMeta {
            src: IpAddr::V6(Ipv6Addr::from(sin6.sin6_addr.s6_addr)),
            dst: IpAddr::V6(Ipv6Addr::UNSPECIFIED),
            ttl: None,
        };
        let mut c = libc::CMSG_FIRSTHDR(&msg);
        while !c.is_null() {
            if (*c).cmsg_level == libc::IPPROTO_IPV6 {
                if (*c).cmsg_type == libc::IPV6_HOPLIMIT {
                    let v = std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::c_int>());
                    meta.ttl = Some(v.clamp(0, 255) as u8);
                } else if (*c).cmsg_type == libc::IPV6_PKTINFO {
                    let p =
                        std::ptr::read_unaligned(libc::CMSG_DATA(c).cast::<libc::in6_pktinfo>());
                    meta.dst = IpAddr::V6(Ipv6Addr::from(p.ipi6_addr.s6_addr));
                }
            }
            c = libc::CMSG_NXTHDR(&msg, c);
        }
        Ok((n as usize, Some(meta)))
    }
}

/// Sends link-layer frames (gratuitous ARP, unsolicited NA) on an interface.
pub struct FrameSocket {
    fd: OwnedFd,
}

impl FrameSocket {
    /// An `AF_PACKET` socket that only sends (protocol 0 receives nothing).
    ///
    /// # Errors
    /// Needs `CAP_NET_RAW`.
    pub fn open() -> io::Result<FrameSocket> {
        // SAFETY: plain socket(2).
        let raw =
            cvt(unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) })?;
        // SAFETY: fresh descriptor we own.
        Ok(FrameSocket {
            fd: unsafe { OwnedFd::from_raw_fd(raw) },
        })
    }

    /// Sends a whole Ethernet frame out of interface `ifindex`.
    ///
    /// # Errors
    /// `sendto` failures (interface down, gone).
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::from(io::ErrorKind::InvalidInput));
        }
        // SAFETY: zeroed sockaddr_ll is a valid initial value.
        let mut sll: libc::sockaddr_ll = unsafe { zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_ifindex = ifindex as libc::c_int;
        sll.sll_protocol = u16::from_be_bytes([frame[12], frame[13]]).to_be();
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: frame and address live for the call, sizes passed.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&sll as *const libc::sockaddr_ll).cast(),
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}
