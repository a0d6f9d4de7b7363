//! Host and service names, both ways, and the address syntax ipvsadm accepts.
//!
//! ipvsadm resolves `host[:port]` arguments with `inet_aton`, then `gethostbyname` (IPv4
//! only), and ports with `/etc/services`; listings without `-n` print reverse-DNS and
//! service names, falling back to numbers. The lookups go through [`Resolver`] so that
//! parsing and formatting stay pure in tests ([`NoNames`], or a table of your own) while
//! the binary uses the system's resolver ([`SystemResolver`]).

use rvs_core::Protocol;
use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::{CStr, CString};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;

/// Name lookups used by the parser (forward) and the listings (reverse).
pub trait Resolver {
    /// First IPv4 address of a host name (`gethostbyname`).
    fn host_addr(&self, name: &str) -> Option<Ipv4Addr>;
    /// Port of a service name for the protocol (`getservbyname`).
    fn service_port(&self, name: &str, proto: Protocol) -> Option<u16>;
    /// Host name of an address (`gethostbyaddr`).
    fn host_name(&self, addr: IpAddr) -> Option<String>;
    /// Service name of a port for the protocol (`getservbyport`).
    fn service_name(&self, port: u16, proto: Protocol) -> Option<String>;
}

/// A resolver that knows no names: every lookup fails, as with `-n` or an empty
/// `/etc/hosts` and `/etc/services`.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoNames;

impl Resolver for NoNames {
    fn host_addr(&self, _: &str) -> Option<Ipv4Addr> {
        None
    }
    fn service_port(&self, _: &str, _: Protocol) -> Option<u16> {
        None
    }
    fn host_name(&self, _: IpAddr) -> Option<String> {
        None
    }
    fn service_name(&self, _: u16, _: Protocol) -> Option<String> {
        None
    }
}

/// The C library's resolver (NSS: `/etc/hosts`, DNS, `/etc/services`). Answers are cached
/// for the life of the value, so a listing asks once per address however often it appears.
#[derive(Default)]
pub struct SystemResolver {
    hosts: RefCell<HashMap<IpAddr, Option<String>>>,
    services: RefCell<HashMap<(u16, Protocol), Option<String>>>,
}

/// `getservby*` return pointers into static storage.
static SERVICES_DB: Mutex<()> = Mutex::new(());

fn proto_name(proto: Protocol) -> &'static CStr {
    match proto {
        Protocol::Tcp => c"tcp",
        Protocol::Udp => c"udp",
        Protocol::Sctp => c"sctp",
    }
}

impl SystemResolver {
    pub fn new() -> Self {
        Self::default()
    }
}

impl Resolver for SystemResolver {
    fn host_addr(&self, name: &str) -> Option<Ipv4Addr> {
        let cname = CString::new(name).ok()?;
        // SAFETY: a zeroed addrinfo is a valid "no hints" value; we set the family.
        let mut hints: libc::addrinfo = unsafe { std::mem::zeroed() };
        hints.ai_family = libc::AF_INET;
        let mut res: *mut libc::addrinfo = std::ptr::null_mut();
        // SAFETY: valid C strings and out-pointer; freed below.
        let rc = unsafe { libc::getaddrinfo(cname.as_ptr(), std::ptr::null(), &hints, &mut res) };
        if rc != 0 || res.is_null() {
            return None;
        }
        let mut found = None;
        let mut cur = res;
        while !cur.is_null() {
            // SAFETY: cur walks the list getaddrinfo returned.
            let ai = unsafe { &*cur };
            if ai.ai_family == libc::AF_INET && !ai.ai_addr.is_null() {
                // SAFETY: AF_INET entries carry a sockaddr_in.
                let sin = unsafe { &*(ai.ai_addr as *const libc::sockaddr_in) };
                found = Some(Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr)));
                break;
            }
            cur = ai.ai_next;
        }
        // SAFETY: res came from getaddrinfo.
        unsafe { libc::freeaddrinfo(res) };
        found
    }

    fn service_port(&self, name: &str, proto: Protocol) -> Option<u16> {
        let cname = CString::new(name).ok()?;
        let _guard = SERVICES_DB.lock().unwrap_or_else(|e| e.into_inner());
        // SAFETY: valid C strings; the result is read before the lock is released.
        let ent = unsafe { libc::getservbyname(cname.as_ptr(), proto_name(proto).as_ptr()) };
        if ent.is_null() {
            return None;
        }
        // SAFETY: non-null servent from the C library; s_port is in network order.
        Some(u16::from_be(unsafe { (*ent).s_port } as u16))
    }

    fn host_name(&self, addr: IpAddr) -> Option<String> {
        if let Some(hit) = self.hosts.borrow().get(&addr) {
            return hit.clone();
        }
        let name = reverse_lookup(addr);
        self.hosts.borrow_mut().insert(addr, name.clone());
        name
    }

    fn service_name(&self, port: u16, proto: Protocol) -> Option<String> {
        if let Some(hit) = self.services.borrow().get(&(port, proto)) {
            return hit.clone();
        }
        let name = {
            let _guard = SERVICES_DB.lock().unwrap_or_else(|e| e.into_inner());
            // SAFETY: valid C string; the result is copied before the lock is released.
            let ent =
                unsafe { libc::getservbyport(i32::from(port.to_be()), proto_name(proto).as_ptr()) };
            if ent.is_null() {
                None
            } else {
                // SAFETY: s_name of a non-null servent is a C string.
                Some(
                    unsafe { CStr::from_ptr((*ent).s_name) }
                        .to_string_lossy()
                        .into_owned(),
                )
            }
        };
        self.services
            .borrow_mut()
            .insert((port, proto), name.clone());
        name
    }
}

fn reverse_lookup(addr: IpAddr) -> Option<String> {
    let mut host = [0 as libc::c_char; 1025];
    let rc = match addr {
        IpAddr::V4(a) => {
            // SAFETY: zeroed sockaddr_in is valid; fields set below.
            let mut sin: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            sin.sin_family = libc::AF_INET as libc::sa_family_t;
            sin.sin_addr.s_addr = u32::from(a).to_be();
            // SAFETY: pointer and length describe `sin`; `host` is a writable buffer.
            unsafe {
                libc::getnameinfo(
                    &sin as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
        IpAddr::V6(a) => {
            // SAFETY: zeroed sockaddr_in6 is valid; fields set below.
            let mut sin6: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            sin6.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            sin6.sin6_addr.s6_addr = a.octets();
            // SAFETY: pointer and length describe `sin6`; `host` is a writable buffer.
            unsafe {
                libc::getnameinfo(
                    &sin6 as *const _ as *const libc::sockaddr,
                    std::mem::size_of::<libc::sockaddr_in6>() as libc::socklen_t,
                    host.as_mut_ptr(),
                    host.len() as libc::socklen_t,
                    std::ptr::null_mut(),
                    0,
                    libc::NI_NAMEREQD,
                )
            }
        }
    };
    if rc != 0 {
        return None;
    }
    // SAFETY: getnameinfo NUL-terminates `host` on success.
    Some(
        unsafe { CStr::from_ptr(host.as_ptr()) }
            .to_string_lossy()
            .into_owned(),
    )
}

/// `inet_aton`: one to four parts, each decimal, octal (`0` prefix) or hex (`0x`); the last
/// part fills the remaining bytes (`10.1` is 10.0.0.1); trailing text after whitespace is
/// ignored. Implemented here, not taken from libc, so it behaves the same everywhere.
pub fn inet_aton(s: &str) -> Option<Ipv4Addr> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut parts: Vec<u64> = Vec::with_capacity(4);
    let last = loop {
        if !b.get(i).is_some_and(u8::is_ascii_digit) {
            return None;
        }
        let mut base = 10;
        if b[i] == b'0' {
            i += 1;
            if matches!(b.get(i), Some(b'x' | b'X')) {
                base = 16;
                i += 1;
            } else {
                base = 8;
            }
        }
        let mut val: u64 = 0;
        let mut digits = base == 8; // the leading 0 counts
        while let Some(&c) = b.get(i) {
            let d = match c {
                b'0'..=b'9' if base == 8 && c >= b'8' => return None,
                b'0'..=b'9' => u64::from(c - b'0'),
                b'a'..=b'f' if base == 16 => u64::from(c - b'a' + 10),
                b'A'..=b'F' if base == 16 => u64::from(c - b'A' + 10),
                _ => break,
            };
            val = val.saturating_mul(base).saturating_add(d);
            digits = true;
            i += 1;
        }
        if b.get(i) == Some(&b'.') {
            if parts.len() >= 3 || val > 0xff {
                return None;
            }
            parts.push(val);
            i += 1;
        } else {
            if !digits {
                return None;
            }
            break val;
        }
    };
    if let Some(&c) = b.get(i) {
        if !c.is_ascii_whitespace() && c != 0x0b {
            return None;
        }
    }
    let max: u64 = [0xffff_ffff, 0xff_ffff, 0xffff, 0xff][parts.len()];
    if last > max {
        return None;
    }
    let mut v = last as u32;
    for (k, p) in parts.iter().enumerate() {
        v |= (*p as u32) << (24 - 8 * k);
    }
    Some(Ipv4Addr::from(v))
}

/// `addrport_to_anyname`: `a.b.c.d:port` / `[v6]:port`, with names unless `numeric`.
/// Like ipvsadm's 60-byte buffer, the result is cut to 59 bytes.
pub fn addr_port(
    addr: IpAddr,
    port: u16,
    proto: Option<Protocol>,
    numeric: bool,
    names: &dyn Resolver,
) -> String {
    let host =
        if numeric { None } else { names.host_name(addr) }.unwrap_or_else(|| addr.to_string());
    let service = if numeric {
        None
    } else {
        proto.and_then(|p| names.service_name(port, p))
    }
    .unwrap_or_else(|| port.to_string());
    let mut s = match addr {
        IpAddr::V4(_) => format!("{host}:{service}"),
        IpAddr::V6(_) => format!("[{host}]:{service}"),
    };
    truncate_bytes(&mut s, 59);
    s
}

/// Cuts `s` to at most `n` bytes (at a character boundary), like writing a NUL into a C buffer.
pub(crate) fn truncate_bytes(s: &mut String, n: usize) {
    if s.len() > n {
        let mut cut = n;
        while !s.is_char_boundary(cut) {
            cut -= 1;
        }
        s.truncate(cut);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inet_aton_accepts_the_classic_shorthands() {
        let a = |s: &str| inet_aton(s).map(|a| a.to_string());
        assert_eq!(a("1.2.3.4").as_deref(), Some("1.2.3.4"));
        assert_eq!(a("1.2").as_deref(), Some("1.0.0.2"));
        assert_eq!(a("10.1.258").as_deref(), Some("10.1.1.2"));
        assert_eq!(a("0x7f.1").as_deref(), Some("127.0.0.1"));
        assert_eq!(a("010.0.0.1").as_deref(), Some("8.0.0.1"));
        assert_eq!(a("1.2.3.4 trailing").as_deref(), Some("1.2.3.4"));
        assert_eq!(a("4294967295").as_deref(), Some("255.255.255.255"));
        for bad in [
            "",
            "1.2.3.4.5",
            "256.1.1.1",
            "1.2.3.256",
            "09",
            "1..2",
            "a.b",
            "1.2.3.4x",
            " 1.2.3.4",
        ] {
            assert_eq!(inet_aton(bad), None, "{bad}");
        }
    }

    #[test]
    fn addr_port_formats_and_truncates() {
        let v6: IpAddr = "2001:db8::1".parse().unwrap();
        assert_eq!(addr_port(v6, 80, None, true, &NoNames), "[2001:db8::1]:80");
        struct Long;
        impl Resolver for Long {
            fn host_addr(&self, _: &str) -> Option<Ipv4Addr> {
                None
            }
            fn service_port(&self, _: &str, _: Protocol) -> Option<u16> {
                None
            }
            fn host_name(&self, _: IpAddr) -> Option<String> {
                Some("h".repeat(70))
            }
            fn service_name(&self, _: u16, _: Protocol) -> Option<String> {
                Some("http".into())
            }
        }
        let s = addr_port(
            "10.0.0.1".parse().unwrap(),
            80,
            Some(Protocol::Tcp),
            false,
            &Long,
        );
        assert_eq!(s, "h".repeat(59));
        let s = addr_port(
            "10.0.0.1".parse().unwrap(),
            80,
            Some(Protocol::Tcp),
            true,
            &Long,
        );
        assert_eq!(s, "10.0.0.1:80");
    }
}
