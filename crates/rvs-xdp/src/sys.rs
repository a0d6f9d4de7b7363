//! The few raw `bpf(2)` operations aya 0.14 does not offer: map operations with element
//! flags (`BPF_F_LOCK`) and batch lookup, the mmap of the shared counter array, and the
//! netfilter program of fwmark services (its load and its link), and the packet socket
//! that sends the frames the director made of its packets.

use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, OwnedFd};

const BPF_MAP_LOOKUP_ELEM: libc::c_long = 1;
const BPF_MAP_UPDATE_ELEM: libc::c_long = 2;
const BPF_MAP_DELETE_ELEM: libc::c_long = 3;
const BPF_MAP_GET_NEXT_KEY: libc::c_long = 4;
const BPF_MAP_LOOKUP_AND_DELETE_ELEM: libc::c_long = 21;
const BPF_MAP_LOOKUP_BATCH: libc::c_long = 24;
const BPF_PROG_LOAD: libc::c_long = 5;
const BPF_LINK_CREATE: libc::c_long = 28;

const BPF_PROG_TYPE_NETFILTER: u32 = 32;
const BPF_NETFILTER: u32 = 45;

/// Update flags.
pub const BPF_ANY: u64 = 0;
pub const BPF_NOEXIST: u64 = 1;
/// Copy a value with a `bpf_spin_lock` under that lock.
pub const BPF_F_LOCK: u64 = 4;

#[repr(C)]
#[derive(Default)]
struct ElemAttr {
    map_fd: u32,
    _pad: u32,
    key: u64,
    value: u64,
    flags: u64,
}

#[repr(C)]
#[derive(Default)]
struct BatchAttr {
    in_batch: u64,
    out_batch: u64,
    keys: u64,
    values: u64,
    count: u32,
    map_fd: u32,
    elem_flags: u64,
    flags: u64,
}

/// `union bpf_attr` for BPF_PROG_LOAD, up to `expected_attach_type`.
#[repr(C)]
#[derive(Default)]
struct ProgLoadAttr {
    prog_type: u32,
    insn_cnt: u32,
    insns: u64,
    license: u64,
    log_level: u32,
    log_size: u32,
    log_buf: u64,
    kern_version: u32,
    prog_flags: u32,
    prog_name: [u8; 16],
    prog_ifindex: u32,
    expected_attach_type: u32,
}

/// `union bpf_attr` for BPF_LINK_CREATE of a netfilter program.
#[repr(C)]
#[derive(Default)]
struct NetfilterLinkAttr {
    prog_fd: u32,
    target_fd: u32,
    attach_type: u32,
    flags: u32,
    pf: u32,
    hooknum: u32,
    priority: i32,
    nf_flags: u32,
}

/// Loads BPF instructions (8 bytes each, as the ELF holds them) as a netfilter program.
/// On a refusal the error carries the verifier's log.
pub fn load_netfilter_prog(
    name: &str,
    insns: &[u8],
    license: &std::ffi::CStr,
) -> io::Result<OwnedFd> {
    let load = |log: &mut [u8]| -> io::Result<OwnedFd> {
        let mut attr = ProgLoadAttr {
            prog_type: BPF_PROG_TYPE_NETFILTER,
            insn_cnt: (insns.len() / 8) as u32,
            insns: insns.as_ptr() as u64,
            license: license.as_ptr() as u64,
            expected_attach_type: BPF_NETFILTER,
            ..Default::default()
        };
        if !log.is_empty() {
            attr.log_level = 1;
            attr.log_size = log.len() as u32;
            attr.log_buf = log.as_mut_ptr() as u64;
        }
        let n = name.len().min(15);
        attr.prog_name[..n].copy_from_slice(&name.as_bytes()[..n]);
        fd_of(bpf_fd(BPF_PROG_LOAD, &mut attr))
    };
    // EAGAIN: a signal interrupted the verifier; try again (bounded)
    let mut first = load(&mut []);
    for _ in 0..crate::loader::LOAD_TRIES {
        match &first {
            Err(e) if e.raw_os_error() == Some(libc::EAGAIN) => first = load(&mut []),
            _ => break,
        }
    }
    match first {
        Ok(fd) => Ok(fd),
        Err(e)
            if e.raw_os_error() == Some(libc::EACCES) || e.raw_os_error() == Some(libc::EINVAL) =>
        {
            let mut log = vec![0u8; 1 << 20];
            match load(&mut log) {
                Ok(fd) => Ok(fd),
                Err(e2) => {
                    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
                    let text = String::from_utf8_lossy(&log[..end]);
                    let tail: Vec<&str> = text.lines().rev().take(12).collect();
                    let tail: Vec<&str> = tail.into_iter().rev().collect();
                    Err(io::Error::new(
                        e2.kind(),
                        format!("{e2}; verifier: {}", tail.join(" | ")),
                    ))
                }
            }
        }
        Err(e) => Err(e),
    }
}

/// Attaches a netfilter program to hook `hooknum` of family `pf` (NFPROTO_*) at
/// `priority`; the hook stays while the returned link fd is open.
pub fn link_netfilter(
    prog: BorrowedFd<'_>,
    pf: u32,
    hooknum: u32,
    priority: i32,
) -> io::Result<OwnedFd> {
    let mut attr = NetfilterLinkAttr {
        prog_fd: prog.as_raw_fd() as u32,
        attach_type: BPF_NETFILTER,
        pf,
        hooknum,
        priority,
        ..Default::default()
    };
    fd_of(bpf_fd(BPF_LINK_CREATE, &mut attr))
}

/// An `AF_PACKET` socket that sends whole frames out of an interface, past netfilter
/// (what XDP_TX and a redirect do). Opened while rvsd may (`CAP_NET_RAW`); sending needs
/// no capability.
#[derive(Debug)]
pub struct PacketSender {
    fd: OwnedFd,
}

impl PacketSender {
    pub fn open() -> io::Result<PacketSender> {
        // SAFETY: a plain socket(2) call; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
        fd_of(if fd < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(fd)
        })
        .map(|fd| PacketSender { fd })
    }

    /// Sends `frame` (Ethernet header included) out of `ifindex`.
    pub fn send(&self, ifindex: u32, frame: &[u8]) -> io::Result<()> {
        if frame.len() < 14 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "a frame without its header",
            ));
        }
        // SAFETY: sockaddr_ll is plain data; zero is a valid start.
        let mut sa: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sa.sll_family = libc::AF_PACKET as u16;
        sa.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
        sa.sll_ifindex = ifindex as i32;
        sa.sll_halen = 6;
        sa.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: sends from a live buffer to a properly sized sockaddr_ll.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sa as *const libc::sockaddr_ll as *const libc::sockaddr,
                size_of::<libc::sockaddr_ll>() as libc::socklen_t,
            )
        };
        if n < 0 {
            Err(io::Error::last_os_error())
        } else {
            Ok(())
        }
    }
}

/// Waits until `fd` is readable or `ms` milliseconds have passed (a ring buffer's reader).
pub fn wait_readable(fd: BorrowedFd<'_>, ms: i32) {
    let mut pfd = libc::pollfd {
        fd: fd.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: poll on one valid descriptor for at most `ms`.
    unsafe { libc::poll(&mut pfd, 1, ms) };
}

fn fd_of(rc: io::Result<i32>) -> io::Result<OwnedFd> {
    use std::os::fd::FromRawFd;
    // SAFETY: the kernel returned a new descriptor that nothing else owns.
    rc.map(|fd| unsafe { OwnedFd::from_raw_fd(fd) })
}

fn bpf_fd<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<i32> {
    // SAFETY: attr points to a live, properly laid out struct of the given size.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr as *mut T as *mut libc::c_void,
            size_of::<T>() as libc::c_uint,
        )
    };
    if rc < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(rc as i32)
    }
}

fn bpf<T>(cmd: libc::c_long, attr: &mut T) -> io::Result<()> {
    bpf_fd(cmd, attr).map(|_| ())
}

/// A map by file descriptor, with its key and value sizes.
#[derive(Debug)]
pub struct RawMap {
    fd: OwnedFd,
    pub key_size: usize,
    pub value_size: usize,
    /// Per-CPU map: a value is `value_size` rounded to 8, times the possible CPUs.
    pub percpu: bool,
}

impl RawMap {
    pub fn new(
        fd: BorrowedFd<'_>,
        key_size: usize,
        value_size: usize,
        percpu: bool,
    ) -> io::Result<Self> {
        Ok(RawMap {
            fd: fd.try_clone_to_owned()?,
            key_size,
            value_size,
            percpu,
        })
    }

    pub fn fd(&self) -> BorrowedFd<'_> {
        use std::os::fd::AsFd;
        self.fd.as_fd()
    }

    /// Bytes of one value as the syscalls exchange it.
    pub fn value_len(&self) -> usize {
        if self.percpu {
            self.value_size.div_ceil(8) * 8 * possible_cpus()
        } else {
            self.value_size
        }
    }

    fn elem(&self, key: &[u8], value: *mut u8, flags: u64) -> ElemAttr {
        debug_assert_eq!(key.len(), self.key_size);
        ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.as_ptr() as u64,
            value: value as u64,
            flags,
            ..Default::default()
        }
    }

    /// Looks a key up; `Ok(false)` if absent.
    pub fn lookup(&self, key: &[u8], value: &mut [u8], flags: u64) -> io::Result<bool> {
        assert!(value.len() >= self.value_len());
        let mut a = self.elem(key, value.as_mut_ptr(), flags);
        match bpf(BPF_MAP_LOOKUP_ELEM, &mut a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    pub fn update(&self, key: &[u8], value: &[u8], flags: u64) -> io::Result<()> {
        assert!(value.len() >= self.value_len());
        let mut a = self.elem(key, value.as_ptr() as *mut u8, flags);
        bpf(BPF_MAP_UPDATE_ELEM, &mut a)
    }

    /// Deletes a key; `Ok(false)` if it was absent.
    pub fn delete(&self, key: &[u8]) -> io::Result<bool> {
        let mut a = self.elem(key, std::ptr::null_mut(), 0);
        match bpf(BPF_MAP_DELETE_ELEM, &mut a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Pops the head of a queue map; `Ok(false)` when empty.
    pub fn pop(&self, value: &mut [u8]) -> io::Result<bool> {
        assert!(value.len() >= self.value_len());
        let mut a = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            value: value.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_LOOKUP_AND_DELETE_ELEM, &mut a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// The key after `key` (the first key with `None`); `Ok(false)` at the end.
    pub fn next_key(&self, key: Option<&[u8]>, next: &mut [u8]) -> io::Result<bool> {
        let mut a = ElemAttr {
            map_fd: self.fd.as_raw_fd() as u32,
            key: key.map_or(0, |k| k.as_ptr() as u64),
            value: next.as_mut_ptr() as u64,
            ..Default::default()
        };
        match bpf(BPF_MAP_GET_NEXT_KEY, &mut a) {
            Ok(()) => Ok(true),
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => Ok(false),
            Err(e) => Err(e),
        }
    }

    /// Visits every (key, value) of a hash map, read in batches of `batch` into buffers
    /// that are reused (no allocation per entry: a sweep of a million entries must not
    /// cost a million allocations).
    pub fn for_each(&self, batch: usize, mut f: impl FnMut(&[u8], &[u8])) -> io::Result<()> {
        let (ks, vs) = (self.key_size, self.value_len());
        let mut keys = vec![0u8; ks * batch];
        let mut values = vec![0u8; vs * batch];
        let mut token = vec![0u8; ks.max(8)];
        let mut first = true;
        loop {
            let mut a = BatchAttr {
                in_batch: if first { 0 } else { token.as_ptr() as u64 },
                out_batch: token.as_mut_ptr() as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: batch as u32,
                map_fd: self.fd.as_raw_fd() as u32,
                ..Default::default()
            };
            let r = bpf(BPF_MAP_LOOKUP_BATCH, &mut a);
            for i in 0..a.count as usize {
                f(&keys[i * ks..(i + 1) * ks], &values[i * vs..(i + 1) * vs]);
            }
            match r {
                Ok(()) => first = false,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// Every (key, value) of a hash map, read in batches (`BPF_MAP_LOOKUP_BATCH`), values
    /// copied under their spin lock when `elem_flags` has [`BPF_F_LOCK`].
    pub fn dump(&self, elem_flags: u64) -> io::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        const BATCH: usize = 4096;
        let (ks, vs) = (self.key_size, self.value_len());
        let mut keys = vec![0u8; ks * BATCH];
        let mut values = vec![0u8; vs * BATCH];
        let mut out = Vec::new();
        let mut token = vec![0u8; ks.max(8)];
        let mut first = true;
        loop {
            let mut a = BatchAttr {
                in_batch: if first { 0 } else { token.as_ptr() as u64 },
                out_batch: token.as_mut_ptr() as u64,
                keys: keys.as_mut_ptr() as u64,
                values: values.as_mut_ptr() as u64,
                count: BATCH as u32,
                map_fd: self.fd.as_raw_fd() as u32,
                elem_flags,
                flags: 0,
            };
            let r = bpf(BPF_MAP_LOOKUP_BATCH, &mut a);
            let n = a.count as usize;
            for i in 0..n {
                out.push((
                    keys[i * ks..(i + 1) * ks].to_vec(),
                    values[i * vs..(i + 1) * vs].to_vec(),
                ));
            }
            match r {
                Ok(()) => first = false,
                Err(e) if e.raw_os_error() == Some(libc::ENOENT) => return Ok(out),
                Err(e) => return Err(e),
            }
        }
    }
}

/// `possible` CPUs (`/sys/devices/system/cpu/possible`), what per-CPU maps size by.
pub fn possible_cpus() -> usize {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| {
        std::fs::read_to_string("/sys/devices/system/cpu/possible")
            .ok()
            .and_then(|s| parse_cpu_list(s.trim()))
            .unwrap_or(1)
    })
}

/// Highest CPU number + 1 of a list like `0-3,5`.
fn parse_cpu_list(s: &str) -> Option<usize> {
    let mut max = None;
    for part in s.split(',') {
        let hi = part.rsplit('-').next()?.trim().parse::<usize>().ok()?;
        max = Some(max.map_or(hi, |m: usize| m.max(hi)));
    }
    max.map(|m| m + 1)
}

/// A shared mapping of a `BPF_F_MMAPABLE` array map.
#[derive(Debug)]
pub struct Mmap {
    ptr: *mut u8,
    len: usize,
}

// SAFETY: the mapping is plain shared memory; all access goes through atomics.
unsafe impl Send for Mmap {}
unsafe impl Sync for Mmap {}

impl Mmap {
    pub fn map(fd: BorrowedFd<'_>, len: usize) -> io::Result<Mmap> {
        let page = 4096;
        let len = len.div_ceil(page) * page;
        // SAFETY: a shared read/write mapping of a map fd, checked for MAP_FAILED.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        Ok(Mmap {
            ptr: ptr as *mut u8,
            len,
        })
    }

    /// The `u32` at byte offset `off` (4-aligned, inside the mapping), as an atomic.
    pub fn u32_at(&self, off: usize) -> &std::sync::atomic::AtomicU32 {
        assert!(
            off.is_multiple_of(4) && off + 4 <= self.len,
            "offset outside the mapping"
        );
        // SAFETY: aligned, in bounds, and the memory lives as long as self.
        unsafe { &*(self.ptr.add(off) as *const std::sync::atomic::AtomicU32) }
    }
}

impl Drop for Mmap {
    fn drop(&mut self) {
        // SAFETY: the pointer and length come from a successful mmap.
        unsafe {
            libc::munmap(self.ptr as *mut libc::c_void, self.len);
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cpu_lists_give_the_highest_cpu_plus_one() {
        assert_eq!(super::parse_cpu_list("0-3"), Some(4));
        assert_eq!(super::parse_cpu_list("0"), Some(1));
        assert_eq!(super::parse_cpu_list("0-1,4-5"), Some(6));
    }
}
