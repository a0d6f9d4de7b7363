//! fwmark services on the XDP director.
//!
//! LVS users set marks in the mangle table of PREROUTING and group services under them
//! (`ipvsadm -A -f 1`). XDP runs before netfilter, so it cannot see a mark; the packet
//! path of a fwmark service therefore has two halves:
//!
//! 1. the first packet of a connection matches no entry and no address service in XDP
//!    and goes to the stack; after mangle, `rvs_nf_fwmark` (`bpf/nf_fwmark.c`, a netfilter
//!    program in PREROUTING at priority NF_IP_PRI_MANGLE + 1) finds the mark of a fwmark
//!    service on it, copies the frame into `rvs_fwmark_ring` and drops it;
//! 2. the [`Hook`]'s thread runs `rvs_xdp` on that frame again (BPF_PROG_TEST_RUN) with
//!    the mark as metadata: the director schedules it like any packet, by the same
//!    scheduler and into the same connection table, and every later packet of the
//!    connection matches its entry in XDP at once. What the program made of the frame is
//!    sent where its verdict says (XDP_TX: back out of the interface it came in by; a
//!    redirect: out of the interface whose MAC the frame now carries as its source),
//!    through a packet socket, past netfilter as XDP's frames go.
//!
//! The live mode of BPF_PROG_TEST_RUN would send the frame from the kernel, but kernels
//! under lockdown refuse it (EPERM), and it needs `ndo_xdp_xmit` on the egress device;
//! the packet socket works everywhere. A frame the program passes to the stack (a TCP
//! segment that opens nothing, with no entry) is dropped and counted as `passed`; the
//! kernel would have handed it to its stack, which answers with a reset for a local VIP.
//!
//! Needs Linux 6.4 (netfilter BPF programs) and kernel BTF. aya 0.14 cannot load a
//! netfilter program: `aya-obj` parses and relocates it (maps by the director's fds,
//! CO-RE against `/sys/kernel/btf/vmlinux`) and [`crate::sys`] loads and links it.

use crate::abi::{self, Plain};
use crate::loader::Director;
use crate::plane::Inner;
use crate::sys::{self, PacketSender};
use aya::maps::{MapData, RingBuf};
use std::collections::{HashMap, HashSet};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

/// Right after the mangle table (NF_IP_PRI_MANGLE = -150), before DNAT (-100).
pub const PRIORITY: i32 = -149;
const NFPROTO_IPV4: u32 = 2;
const NFPROTO_IPV6: u32 = 10;
const NF_INET_PRE_ROUTING: u32 = 0;
/// The maps the netfilter program uses, all the director's.
const MAPS: [&str; 4] = [
    "rvs_services",
    "rvs_config",
    "rvs_fwmark_ring",
    "rvs_fwmark_stats",
];
/// How long the reader waits for a frame before it looks at its stop flag.
const POLL_MS: i32 = 100;

/// What the reader did with the frames it took from the ring.
#[derive(Debug, Default)]
pub struct Reruns {
    /// Frames `rvs_xdp` ran on again.
    pub runs: AtomicU64,
    /// Frames it made that went out (XDP_TX or a redirect).
    pub sent: AtomicU64,
    /// Frames it dropped (XDP_DROP: no server, a full table...; the reason counters say).
    pub dropped: AtomicU64,
    /// Frames it passed to the stack, dropped here.
    pub passed: AtomicU64,
    /// Runs or sends the kernel refused (the first error of each is logged).
    pub failed: AtomicU64,
    /// Records the program never writes (too short, a bad length).
    pub malformed: AtomicU64,
}

/// The netfilter program, its links, and the thread that hands its frames back.
pub struct Hook {
    _links: Vec<OwnedFd>,
    _prog: OwnedFd,
    pub reruns: Arc<Reruns>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<RingBuf<MapData>>>,
}

impl Hook {
    /// Loads the netfilter program, hooks it into PREROUTING for IPv4 and IPv6 and starts
    /// the reader. The error says why fwmark services cannot be served here.
    pub fn start(inner: Arc<Inner>) -> Result<Hook, String> {
        let ring = inner
            .dir
            .take_fwmark_ring()
            .ok_or_else(|| "another reader holds rvs_fwmark_ring".to_string())?;
        match Self::attach(&inner.dir, &ring) {
            Ok((prog, links, out)) => {
                let reruns = Arc::new(Reruns::default());
                let stop = Arc::new(AtomicBool::new(false));
                let (r, s) = (reruns.clone(), stop.clone());
                let thread = std::thread::Builder::new()
                    .name("rvs-xdp-fwmark".into())
                    .spawn(move || rerun(&inner, &out, ring, &r, &s))
                    .map_err(|e| format!("starting its reader: {e}"))?;
                Ok(Hook {
                    _links: links,
                    _prog: prog,
                    reruns,
                    stop,
                    thread: Some(thread),
                })
            }
            Err(e) => {
                inner.dir.return_fwmark_ring(ring);
                Err(e)
            }
        }
    }

    fn attach(
        dir: &Director,
        ring: &RingBuf<MapData>,
    ) -> Result<(OwnedFd, Vec<OwnedFd>, PacketSender), String> {
        let fds = [
            dir.maps.services.fd().as_raw_fd(),
            dir.maps.config.fd().as_raw_fd(),
            ring.as_raw_fd(),
            dir.maps.fwmark_stats.fd().as_raw_fd(),
        ];
        let (insns, license) = relocated(&fds)?;
        let prog = sys::load_netfilter_prog("rvs_nf_fwmark", &insns, &license).map_err(|e| {
            if e.raw_os_error() == Some(libc::EINVAL) && !e.to_string().contains("verifier") {
                format!("this kernel loads no netfilter BPF programs (Linux 6.4 or later): {e}")
            } else {
                format!("loading the netfilter program: {e}")
            }
        })?;
        let mut links = Vec::new();
        for (pf, name) in [(NFPROTO_IPV4, "IPv4"), (NFPROTO_IPV6, "IPv6")] {
            let l = sys::link_netfilter(prog.as_fd(), pf, NF_INET_PRE_ROUTING, PRIORITY)
                .map_err(|e| format!("hooking into {name} PREROUTING: {e}"))?;
            links.push(l);
        }
        let out = PacketSender::open().map_err(|e| format!("opening a packet socket: {e}"))?;
        Ok((prog, links, out))
    }

    /// The program's counters, summed over CPUs.
    pub fn counters(dir: &Director) -> abi::FwmarkCount {
        let mut sum = abi::FwmarkCount::default();
        let m = &dir.maps.fwmark_stats;
        let mut v = vec![0u8; m.value_len()];
        if m.lookup(&0u32.to_ne_bytes(), &mut v, 0).unwrap_or(false) {
            let step = m.value_size.div_ceil(8) * 8;
            for cpu in v.chunks(step) {
                let c = abi::FwmarkCount::from_bytes(cpu);
                sum.diverted += c.diverted;
                sum.ring_full += c.ring_full;
                sum.too_big += c.too_big;
                sum.nonlinear += c.nonlinear;
            }
        }
        sum
    }

    /// Stops the reader (the links go when the hook is dropped).
    pub fn halt(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Hook {
    fn drop(&mut self) {
        self.halt();
    }
}

/// The netfilter program's instructions with its maps and kernel-type accesses resolved
/// for this kernel, and its license.
fn relocated(fds: &[i32; 4]) -> Result<(Vec<u8>, std::ffi::CString), String> {
    let mut obj = aya_obj::Object::parse(crate::object::nf_fwmark())
        .map_err(|e| format!("parsing nf_fwmark.o: {e}"))?;
    let btf = aya::Btf::from_sys_fs().map_err(|e| {
        format!("reading the kernel's BTF (/sys/kernel/btf/vmlinux, CONFIG_DEBUG_INFO_BTF): {e}")
    })?;
    obj.relocate_btf(&btf)
        .map_err(|e| format!("relocating nf_fwmark.o for this kernel: {e}"))?;
    let defs: Vec<(&str, aya_obj::Map)> = MAPS
        .iter()
        .map(|n| {
            obj.maps
                .get(*n)
                .cloned()
                .map(|m| (*n, m))
                .ok_or_else(|| format!("nf_fwmark.o has no map {n}"))
        })
        .collect::<Result<_, _>>()?;
    let text: HashSet<usize> = obj.functions.keys().map(|(s, _)| *s).collect();
    obj.relocate_maps(
        defs.iter().zip(fds.iter()).map(|((n, m), fd)| (*n, *fd, m)),
        &text,
    )
    .map_err(|e| format!("resolving the maps of nf_fwmark.o: {e}"))?;
    obj.relocate_calls(&text)
        .map_err(|e| format!("linking nf_fwmark.o: {e}"))?;
    let prog = obj
        .programs
        .get("rvs_nf_fwmark")
        .ok_or_else(|| "nf_fwmark.o has no program rvs_nf_fwmark".to_string())?;
    let f = obj
        .functions
        .get(&prog.function_key())
        .ok_or_else(|| "nf_fwmark.o: the program's code is missing".to_string())?;
    let mut insns = Vec::with_capacity(f.instructions.len() * 8);
    for i in &f.instructions {
        // SAFETY: bpf_insn is a plain 8-byte repr(C) struct.
        let b: [u8; 8] = unsafe { std::mem::transmute_copy(i) };
        insns.extend_from_slice(&b);
    }
    Ok((insns, prog.license.clone()))
}

const XDP_DROP: u32 = 1;
const XDP_PASS: u32 = 2;
const XDP_TX: u32 = 3;
const XDP_REDIRECT: u32 = 4;

/// The interfaces of this namespace by MAC address (a redirected frame carries its egress
/// interface's MAC as its source), read again when a MAC is not known.
#[derive(Default)]
struct ByMac {
    map: HashMap<[u8; 6], u32>,
    read: Option<std::time::Instant>,
}

impl ByMac {
    fn get(&mut self, mac: [u8; 6]) -> Option<u32> {
        if let Some(i) = self.map.get(&mac) {
            return Some(*i);
        }
        // at most once a second: a frame for an unknown MAC must not cost a scan each
        if self
            .read
            .is_some_and(|t| t.elapsed() < std::time::Duration::from_secs(1))
        {
            return None;
        }
        self.read = Some(std::time::Instant::now());
        self.map.clear();
        for (ifindex, name) in interfaces() {
            if let Some(m) = crate::loader::mac_of(&name) {
                self.map.entry(m).or_insert(ifindex);
            }
        }
        self.map.get(&mac).copied()
    }
}

/// (ifindex, name) of every interface of this thread's network namespace.
fn interfaces() -> Vec<(u32, String)> {
    let mut out = Vec::new();
    // SAFETY: if_nameindex returns an array ended by a zero entry, freed below.
    unsafe {
        let list = libc::if_nameindex();
        if list.is_null() {
            return out;
        }
        let mut p = list;
        while (*p).if_index != 0 && !(*p).if_name.is_null() {
            let name = std::ffi::CStr::from_ptr((*p).if_name)
                .to_string_lossy()
                .into_owned();
            out.push(((*p).if_index, name));
            p = p.add(1);
        }
        libc::if_freenameindex(list);
    }
    out
}

/// The reader: each frame of the ring goes through `rvs_xdp` again, with its mark, and
/// what comes out is sent.
fn rerun(
    inner: &Inner,
    out: &PacketSender,
    mut ring: RingBuf<MapData>,
    reruns: &Reruns,
    stop: &AtomicBool,
) -> RingBuf<MapData> {
    const HDR: usize = 16;
    let mut warned_run = false;
    let mut warned_send = false;
    let mut by_mac = ByMac::default();
    let mut frame = Vec::with_capacity(abi::RVS_FWMARK_FRAME_MAX as usize);
    while !stop.load(Ordering::Relaxed) {
        crate::sys::wait_readable(ring.as_fd(), POLL_MS);
        while let Some(item) = ring.next() {
            if item.len() < HDR {
                reruns.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let word = |i: usize| {
                let mut w = [0u8; 4];
                w.copy_from_slice(&item[i * 4..i * 4 + 4]);
                u32::from_ne_bytes(w)
            };
            let (ifindex, mark, len) = (word(0), word(1), word(2) as usize);
            if len < 14 || len > item.len() - HDR || len > abi::RVS_FWMARK_FRAME_MAX as usize {
                reruns.malformed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            frame.clear();
            frame.extend_from_slice(&item[HDR..HDR + len]);
            drop(item);
            let meta = abi::FwmarkMeta {
                magic: abi::RVS_FWMARK_MAGIC,
                mark,
            };
            let (verdict, made) = match inner.dir.run_xdp_meta(meta.as_bytes(), &frame, ifindex) {
                Ok(r) => r,
                Err(e) => {
                    reruns.failed.fetch_add(1, Ordering::Relaxed);
                    if !warned_run {
                        warned_run = true;
                        tracing::warn!(
                            ifindex,
                            "fwmark services: running rvs_xdp on a marked frame: {e}"
                        );
                    }
                    continue;
                }
            };
            reruns.runs.fetch_add(1, Ordering::Relaxed);
            let egress = match verdict {
                XDP_TX => Some(ifindex),
                XDP_REDIRECT if made.len() >= 12 => {
                    let mut smac = [0u8; 6];
                    smac.copy_from_slice(&made[6..12]);
                    by_mac.get(smac)
                }
                XDP_PASS => {
                    reruns.passed.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                XDP_DROP => {
                    reruns.dropped.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                _ => None,
            };
            let sent = match egress {
                Some(i) => out.send(i, &made),
                None => Err(std::io::Error::other(format!(
                    "verdict {verdict}: no interface to send the frame out of"
                ))),
            };
            match sent {
                Ok(()) => {
                    reruns.sent.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    reruns.failed.fetch_add(1, Ordering::Relaxed);
                    if !warned_send {
                        warned_send = true;
                        tracing::warn!(
                            ifindex,
                            "fwmark services: sending a frame of the director: {e}"
                        );
                    }
                }
            }
        }
    }
    ring
}
