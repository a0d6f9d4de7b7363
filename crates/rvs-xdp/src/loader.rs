//! Loading the director: bpffs, pinned maps (adopted when they exist and match this ABI),
//! the programs, and XDP links pinned per interface so they outlive rvsd.
//!
//! Pin layout under the pin directory (default `/sys/fs/bpf/rvs/default`): one file per
//! map (by name), `prog_rvs_xdp`, and `link_<ifname>` per attached interface. A restarted
//! rvsd loads the new program against the same maps and swaps it into the existing links
//! with `bpf_link_update`: the interface never goes without a program and every
//! connection, template, counter and cache survives.

use crate::abi::{self, Plain};
use crate::error::{map_err, Result, XdpError};
use crate::object::{self, Build};
use crate::sys::{Mmap, RawMap};
use aya::maps::Map;
use aya::programs::links::{FdLink, PinnedLink};
use aya::programs::{TestRun, TestRunOptions, Xdp, XdpMode};
use std::os::fd::{AsFd, BorrowedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Where rvsd keeps its pins by default.
pub const DEFAULT_PIN_ROOT: &str = "/sys/fs/bpf";
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/rvs/default";
const BPF_FS_MAGIC: i64 = 0xcafe_4a11;

/// How to load.
#[derive(Clone, Debug)]
pub struct LoadOptions {
    pub build: Build,
    /// bpffs directory for the pins (created if missing).
    pub pin_dir: PathBuf,
    /// Capacity of each connection table (IPv4 and IPv6); only for maps created now, an
    /// adopted map keeps its size.
    pub conn_max: u32,
}

impl LoadOptions {
    pub fn new(pin_dir: impl Into<PathBuf>) -> Self {
        LoadOptions {
            build: Build::Production,
            pin_dir: pin_dir.into(),
            conn_max: abi::RVS_CONN_MAX_DEFAULT,
        }
    }
}

/// How XDP should be attached.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum AttachMode {
    /// Native (driver) mode where the driver has it, generic otherwise.
    #[default]
    Auto,
    Native,
    Generic,
}

/// What an attach did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Attached {
    pub iface: String,
    pub ifindex: u32,
    /// `native`, `generic`, or `adopted` (a pinned link from an earlier rvsd).
    pub how: &'static str,
}

/// True when `path` is on a bpffs.
pub fn is_bpffs(path: &Path) -> bool {
    let Ok(c) = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()) else {
        return false;
    };
    // SAFETY: statfs on a NUL-terminated path into a zeroed struct.
    unsafe {
        let mut st: libc::statfs = std::mem::zeroed();
        libc::statfs(c.as_ptr(), &mut st) == 0 && st.f_type as i64 == BPF_FS_MAGIC
    }
}

/// Mounts bpffs at /sys/fs/bpf if nothing is mounted there (as systemd would).
///
/// # Errors
/// When the mount fails (not root, no bpffs in the kernel).
pub fn ensure_bpffs() -> Result<()> {
    let root = Path::new(DEFAULT_PIN_ROOT);
    if is_bpffs(root) {
        return Ok(());
    }
    std::fs::create_dir_all(root)
        .map_err(|e| XdpError::Bpffs(format!("creating {}: {e}", root.display())))?;
    let src = c"bpf";
    let target = c"/sys/fs/bpf";
    let fstype = c"bpf";
    // SAFETY: mount(2) with static NUL-terminated strings.
    let rc = unsafe {
        libc::mount(
            src.as_ptr(),
            target.as_ptr(),
            fstype.as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(XdpError::Bpffs(format!(
            "mounting bpffs on /sys/fs/bpf: {}",
            std::io::Error::last_os_error()
        )));
    }
    tracing::info!("mounted bpffs on /sys/fs/bpf");
    Ok(())
}

/// Raw handles of every map the userspace side touches.
#[derive(Debug)]
pub struct Maps {
    pub conns4: RawMap,
    pub conns6: RawMap,
    pub out4: RawMap,
    pub out6: RawMap,
    pub services: RawMap,
    pub vips: RawMap,
    pub dests: RawMap,
    pub dest_state: RawMap,
    pub dest_state_mem: Mmap,
    pub dest_stats: RawMap,
    pub reasons: RawMap,
    pub sched_state: RawMap,
    pub luts: RawMap,
    pub lblc: RawMap,
    pub lblcr: RawMap,
    pub config: RawMap,
    pub neigh_req: RawMap,
    pub sync_count: RawMap,
    pub fwmark_stats: RawMap,
    pub test_env: Option<RawMap>,
}

fn map_data_fd(map: &Map) -> Option<BorrowedFd<'_>> {
    let data = match map {
        Map::Array(m) | Map::HashMap(m) | Map::PerCpuArray(m) | Map::Queue(m) => m,
        _ => return None,
    };
    Some(data.fd().as_fd())
}

/// (name, key size, value size, per-CPU) of every map of the director.
const MAP_SHAPES: &[(&str, usize, usize, bool)] = &[
    (
        "rvs_conns4",
        size_of::<abi::ConnKey4>(),
        size_of::<abi::Conn>(),
        false,
    ),
    (
        "rvs_conns6",
        size_of::<abi::ConnKey6>(),
        size_of::<abi::Conn>(),
        false,
    ),
    (
        "rvs_out4",
        size_of::<abi::OutKey4>(),
        size_of::<abi::OutVal4>(),
        false,
    ),
    (
        "rvs_out6",
        size_of::<abi::OutKey6>(),
        size_of::<abi::OutVal6>(),
        false,
    ),
    (
        "rvs_services",
        size_of::<abi::SvcKey>(),
        size_of::<abi::Service>(),
        false,
    ),
    ("rvs_vips", size_of::<abi::VipKey>(), 4, false),
    ("rvs_dests", 4, size_of::<abi::Dest>(), false),
    ("rvs_dest_state", 4, size_of::<abi::DestState>(), false),
    ("rvs_dest_stats", 4, size_of::<abi::DestStats>(), true),
    ("rvs_reasons", 4, size_of::<abi::ReasonCount>(), true),
    ("rvs_sched_state", 4, size_of::<abi::SchedState>(), false),
    ("rvs_luts", 4, size_of::<abi::Lut>(), false),
    (
        "rvs_lblc",
        size_of::<abi::LblcKey>(),
        size_of::<abi::Lblc>(),
        false,
    ),
    (
        "rvs_lblcr",
        size_of::<abi::LblcKey>(),
        size_of::<abi::Lblcr>(),
        false,
    ),
    ("rvs_config", 4, size_of::<abi::Config>(), false),
    ("rvs_neigh_req", 0, size_of::<abi::VipKey>(), false),
    ("rvs_sync_count", 4, size_of::<abi::SyncCount>(), true),
    ("rvs_fwmark_stats", 4, size_of::<abi::FwmarkCount>(), true),
];

impl Maps {
    fn open(ebpf: &aya::Ebpf, build: Build) -> Result<Maps> {
        let get = |name: &'static str| -> Result<RawMap> {
            let &(_, ks, vs, percpu) = MAP_SHAPES
                .iter()
                .find(|(n, ..)| *n == name)
                .ok_or_else(|| XdpError::Other(format!("unknown map {name}")))?;
            let map = ebpf
                .map(name)
                .ok_or_else(|| XdpError::Other(format!("the object has no map {name}")))?;
            let fd = map_data_fd(map)
                .ok_or_else(|| XdpError::Other(format!("map {name} has an unexpected type")))?;
            RawMap::new(fd, ks, vs, percpu).map_err(map_err(name))
        };
        let dest_state = get("rvs_dest_state")?;
        let len = abi::RVS_MAX_DESTS as usize * size_of::<abi::DestState>();
        let dest_state_mem = Mmap::map(dest_state.fd(), len).map_err(map_err("rvs_dest_state"))?;
        let test_env = match build {
            Build::Test => {
                let m = ebpf
                    .map("rvs_test_env")
                    .and_then(map_data_fd)
                    .ok_or_else(|| XdpError::Other("the test object has no rvs_test_env".into()))?;
                Some(
                    RawMap::new(m, 4, size_of::<abi::TestEnv>(), false)
                        .map_err(map_err("rvs_test_env"))?,
                )
            }
            Build::Production => None,
        };
        Ok(Maps {
            conns4: get("rvs_conns4")?,
            conns6: get("rvs_conns6")?,
            out4: get("rvs_out4")?,
            out6: get("rvs_out6")?,
            services: get("rvs_services")?,
            vips: get("rvs_vips")?,
            dests: get("rvs_dests")?,
            dest_state,
            dest_state_mem,
            dest_stats: get("rvs_dest_stats")?,
            reasons: get("rvs_reasons")?,
            sched_state: get("rvs_sched_state")?,
            luts: get("rvs_luts")?,
            lblc: get("rvs_lblc")?,
            lblcr: get("rvs_lblcr")?,
            config: get("rvs_config")?,
            neigh_req: get("rvs_neigh_req")?,
            sync_count: get("rvs_sync_count")?,
            fwmark_stats: get("rvs_fwmark_stats")?,
            test_env,
        })
    }

    /// The config value (ABI version 0 = never written).
    pub fn read_config(&self) -> Result<abi::Config> {
        let mut c = abi::Config::default();
        self.config
            .lookup(&0u32.to_ne_bytes(), c.as_bytes_mut(), 0)
            .map_err(map_err("rvs_config"))?;
        Ok(c)
    }
}

/// Refuses pinned maps of another layout: they would be reused as they are.
fn check_pins(dir: &Path) -> Result<()> {
    for &(name, ks, vs, _) in MAP_SHAPES {
        let path = dir.join(name);
        if !path.exists() {
            continue;
        }
        let m = aya::maps::MapData::from_pin(&path).map_err(|e| XdpError::PinMismatch {
            dir: dir.to_path_buf(),
            why: format!("{name}: {e}"),
        })?;
        let info = m.info().map_err(|e| XdpError::PinMismatch {
            dir: dir.to_path_buf(),
            why: format!("{name}: {e}"),
        })?;
        if info.key_size() as usize != ks || info.value_size() as usize != vs {
            return Err(XdpError::PinMismatch {
                dir: dir.to_path_buf(),
                why: format!(
                    "{name} has key/value {}/{} bytes, this build {ks}/{vs}",
                    info.key_size(),
                    info.value_size()
                ),
            });
        }
        if name == "rvs_config" {
            let raw = RawMap::new(m.fd().as_fd(), 4, vs, false).map_err(map_err("rvs_config"))?;
            let mut c = abi::Config::default();
            raw.lookup(&0u32.to_ne_bytes(), c.as_bytes_mut(), 0)
                .map_err(map_err("rvs_config"))?;
            if c.abi_version != 0 && c.abi_version != abi::RVS_ABI_VERSION {
                return Err(XdpError::PinMismatch {
                    dir: dir.to_path_buf(),
                    why: format!(
                        "ABI version {} (this build {})",
                        c.abi_version,
                        abi::RVS_ABI_VERSION
                    ),
                });
            }
        }
    }
    Ok(())
}

/// The loaded director: programs, maps, and the links it holds.
pub struct Director {
    ebpf: aya::Ebpf,
    pub maps: Maps,
    /// The ring of entries a sync master sends, while no reader holds it.
    sync_ring: std::sync::Mutex<Option<aya::maps::RingBuf<aya::maps::MapData>>>,
    /// The ring of marked first packets (fwmark services), while no reader holds it.
    fwmark_ring: std::sync::Mutex<Option<aya::maps::RingBuf<aya::maps::MapData>>>,
    pin_dir: PathBuf,
    build: Build,
    links: Vec<(String, FdLink)>,
    /// Maps already existed (an earlier rvsd's): their contents are adopted.
    pub adopted: bool,
}

impl std::fmt::Debug for Director {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Director")
            .field("pin_dir", &self.pin_dir)
            .field("build", &self.build)
            .field("adopted", &self.adopted)
            .finish()
    }
}

fn load_program(ebpf: &mut aya::Ebpf, name: &'static str) -> Result<()> {
    let prog: &mut Xdp = ebpf
        .program_mut(name)
        .ok_or_else(|| XdpError::Other(format!("the object has no program {name}")))?
        .try_into()
        .map_err(|e| XdpError::Verifier {
            program: name,
            error: Box::new(e),
        })?;
    // The verifier gives up with EAGAIN when a signal arrives while it works (SIGCHLD of
    // a child, say): the program was not refused, so it is tried again, as libbpf does.
    let mut tries = 0;
    loop {
        match prog.load() {
            Err(aya::programs::ProgramError::LoadError { io_error, .. })
                if io_error.raw_os_error() == Some(libc::EAGAIN) && tries < LOAD_TRIES =>
            {
                tries += 1;
            }
            r => {
                return r.map_err(|e| XdpError::Verifier {
                    program: name,
                    error: Box::new(e),
                })
            }
        }
    }
}

/// How often a load interrupted by a signal is tried again.
pub(crate) const LOAD_TRIES: u32 = 5;

impl Director {
    /// Loads the object, creating or adopting the pinned maps in `opts.pin_dir`.
    ///
    /// # Errors
    /// No bpffs, pins of another ABI, or a program the verifier refuses (the error carries
    /// the verifier log). Needs Linux 6.7 (`BPF_FIB_LOOKUP_SRC`).
    pub fn load(opts: &LoadOptions) -> Result<Director> {
        if opts.pin_dir.starts_with(DEFAULT_PIN_ROOT) {
            ensure_bpffs()?;
        }
        std::fs::create_dir_all(&opts.pin_dir)
            .map_err(|e| XdpError::Bpffs(format!("creating {}: {e}", opts.pin_dir.display())))?;
        if !is_bpffs(&opts.pin_dir) {
            return Err(XdpError::Bpffs(format!(
                "{} is not on a bpffs",
                opts.pin_dir.display()
            )));
        }
        check_pins(&opts.pin_dir)?;
        let adopted = opts.pin_dir.join("rvs_conns4").exists();
        let loaded = Self::load_pinned(opts, adopted);
        if loaded.is_err() && !adopted {
            // the maps pinned for a director that never came up: nothing to adopt later
            let _ = unpin_all(&opts.pin_dir);
        }
        loaded
    }

    fn load_pinned(opts: &LoadOptions, adopted: bool) -> Result<Director> {
        let mut ebpf = aya::EbpfLoader::new()
            .default_map_pin_directory(&opts.pin_dir)
            .map_max_entries("rvs_conns4", opts.conn_max)
            .map_max_entries("rvs_conns6", opts.conn_max)
            .map_max_entries("rvs_out4", opts.conn_max)
            .map_max_entries("rvs_out6", opts.conn_max)
            .load(object::director(opts.build))
            .map_err(|e| XdpError::Load(Box::new(e)))?;
        load_program(&mut ebpf, "rvs_xdp")?;
        load_program(&mut ebpf, "rvs_ctl")?;
        let maps = Maps::open(&ebpf, opts.build)?;
        let ring = ebpf
            .take_map("rvs_sync_ring")
            .ok_or_else(|| XdpError::Other("the object has no map rvs_sync_ring".into()))?;
        let ring = aya::maps::RingBuf::try_from(ring)
            .map_err(|e| XdpError::Other(format!("rvs_sync_ring: {e}")))?;
        let fwmark_ring = ebpf
            .take_map("rvs_fwmark_ring")
            .ok_or_else(|| XdpError::Other("the object has no map rvs_fwmark_ring".into()))?;
        let fwmark_ring = aya::maps::RingBuf::try_from(fwmark_ring)
            .map_err(|e| XdpError::Other(format!("rvs_fwmark_ring: {e}")))?;
        let mut d = Director {
            ebpf,
            maps,
            sync_ring: std::sync::Mutex::new(Some(ring)),
            fwmark_ring: std::sync::Mutex::new(Some(fwmark_ring)),
            pin_dir: opts.pin_dir.clone(),
            build: opts.build,
            links: Vec::new(),
            adopted,
        };
        d.pin_program()?;
        Ok(d)
    }

    pub fn pin_dir(&self) -> &Path {
        &self.pin_dir
    }

    /// Takes the sync ring (for a sync reader); `None` while one holds it.
    pub fn take_sync_ring(&self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        self.sync_ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Takes the ring of marked first packets (for [`crate::fwmark::Hook`]).
    pub fn take_fwmark_ring(&self) -> Option<aya::maps::RingBuf<aya::maps::MapData>> {
        self.fwmark_ring
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    /// Gives the ring of marked first packets back when its reader stops.
    pub fn return_fwmark_ring(&self, ring: aya::maps::RingBuf<aya::maps::MapData>) {
        *self.fwmark_ring.lock().unwrap_or_else(|p| p.into_inner()) = Some(ring);
    }

    /// Gives the sync ring back when a reader stops.
    pub fn return_sync_ring(&self, ring: aya::maps::RingBuf<aya::maps::MapData>) {
        *self.sync_ring.lock().unwrap_or_else(|p| p.into_inner()) = Some(ring);
    }

    pub fn build(&self) -> Build {
        self.build
    }

    /// Pins the (new) XDP program, replacing an earlier rvsd's pin.
    fn pin_program(&mut self) -> Result<()> {
        let path = self.pin_dir.join("prog_rvs_xdp");
        let _ = std::fs::remove_file(&path);
        let prog: &mut Xdp = self.xdp_mut("rvs_xdp")?;
        prog.pin(&path).map_err(|e| XdpError::Pin {
            path,
            error: e.to_string(),
        })
    }

    fn xdp_mut(&mut self, name: &'static str) -> Result<&mut Xdp> {
        self.ebpf
            .program_mut(name)
            .ok_or_else(|| XdpError::Other(format!("no program {name}")))?
            .try_into()
            .map_err(|e| XdpError::Other(format!("{name}: {e}")))
    }

    fn xdp(&self, name: &'static str) -> Result<&Xdp> {
        self.ebpf
            .program(name)
            .ok_or_else(|| XdpError::Other(format!("no program {name}")))?
            .try_into()
            .map_err(|e| XdpError::Other(format!("{name}: {e}")))
    }

    /// The loaded director program (benchmarks run it directly).
    pub fn xdp_program(&self) -> Result<&Xdp> {
        self.xdp("rvs_xdp")
    }

    fn link_path(&self, iface: &str) -> PathBuf {
        self.pin_dir.join(format!("link_{iface}"))
    }

    /// Attaches the director to an interface with a pinned link. A link pinned by an
    /// earlier rvsd is adopted: the new program replaces the old one in it atomically.
    ///
    /// # Errors
    /// No such interface, or the kernel refuses every mode asked for.
    pub fn attach(&mut self, iface: &str, mode: AttachMode) -> Result<Attached> {
        let ifindex = ifindex(iface).ok_or_else(|| XdpError::NoInterface(iface.to_string()))?;
        let path = self.link_path(iface);
        let attach_err = |error| XdpError::Attach {
            iface: iface.to_string(),
            error: Box::new(error),
        };
        if let Ok(old) = PinnedLink::from_pin(&path) {
            let fd: FdLink = old.into();
            let link = aya::programs::xdp::XdpLink::try_from(fd).map_err(|e| {
                XdpError::Other(format!("{}: not an XDP link: {e}", path.display()))
            })?;
            let prog = self.xdp_mut("rvs_xdp")?;
            let id = prog.attach_to_link(link).map_err(attach_err)?;
            let link = prog.take_link(id).map_err(attach_err)?;
            let fd: FdLink = link
                .try_into()
                .map_err(|e| XdpError::Other(format!("adopted link of {iface}: {e}")))?;
            self.links.push((iface.to_string(), fd));
            return Ok(Attached {
                iface: iface.to_string(),
                ifindex,
                how: "adopted",
            });
        }
        let veth_reason = match mode {
            AttachMode::Auto | AttachMode::Native => crate::ifkind::native_cannot_forward(iface),
            AttachMode::Generic => None,
        };
        let modes: &[(XdpMode, &'static str)] = match mode {
            // native only where it forwards: a veth gets generic mode
            AttachMode::Auto if veth_reason.is_some() => {
                tracing::info!(
                    iface,
                    "--xdp-mode auto: generic mode, as {}; --xdp-mode native when the peer is ready for it",
                    veth_reason.as_deref().unwrap_or_default()
                );
                &[(XdpMode::Skb, "generic")]
            }
            AttachMode::Native => {
                if let Some(why) = &veth_reason {
                    tracing::warn!(iface, "--xdp-mode native: {why}");
                }
                &[(XdpMode::Driver, "native")]
            }
            AttachMode::Auto => &[(XdpMode::Driver, "native"), (XdpMode::Skb, "generic")],
            AttachMode::Generic => &[(XdpMode::Skb, "generic")],
        };
        let mut last = None;
        for &(m, how) in modes {
            let prog = self.xdp_mut("rvs_xdp")?;
            match prog.attach_to_if_index(ifindex, m) {
                Ok(id) => {
                    let link = prog.take_link(id).map_err(attach_err)?;
                    let fd: FdLink = link.try_into().map_err(|e| {
                        XdpError::Other(format!(
                            "{iface}: the kernel attached XDP without a bpf_link, which cannot be pinned: {e}"
                        ))
                    })?;
                    let pinned = fd.pin(&path).map_err(|e| XdpError::Pin {
                        path: path.clone(),
                        error: e.to_string(),
                    })?;
                    self.links.push((iface.to_string(), pinned.into()));
                    return Ok(Attached {
                        iface: iface.to_string(),
                        ifindex,
                        how,
                    });
                }
                Err(e) => {
                    tracing::debug!(iface, mode = how, "XDP attach failed: {e}");
                    last = Some(e);
                }
            }
        }
        Err(attach_err(last.expect("at least one mode was tried")))
    }

    /// Interfaces with a pinned link in this pin directory.
    pub fn pinned_links(&self) -> Vec<String> {
        let Ok(rd) = std::fs::read_dir(&self.pin_dir) else {
            return Vec::new();
        };
        rd.flatten()
            .filter_map(|e| {
                e.file_name()
                    .to_str()?
                    .strip_prefix("link_")
                    .map(str::to_string)
            })
            .collect()
    }

    /// Detaches from an interface: the pin goes, and with the last fd the link.
    pub fn detach(&mut self, iface: &str) {
        let _ = std::fs::remove_file(self.link_path(iface));
        self.links.retain(|(i, _)| i != iface);
    }

    /// How many instructions the verifier processed to accept program `name` (the
    /// kernel refuses a program at 1,000,000; `None` on kernels that do not say).
    ///
    /// # Errors
    /// No such program, or its info cannot be read.
    pub fn verified_insns(&self, name: &'static str) -> Result<Option<u32>> {
        let info = self
            .xdp(name)?
            .info()
            .map_err(|e| XdpError::Other(format!("{name}: reading its info: {e}")))?;
        Ok(info.verified_instruction_count())
    }

    /// Runs `rvs_xdp` once on a frame as if it arrived on `ifindex` (BPF_PROG_TEST_RUN).
    /// Returns the verdict and the frame as the program left it.
    pub fn run_xdp(&self, frame: &[u8], ifindex: u32) -> Result<(u32, Vec<u8>)> {
        self.run_xdp_meta(&[], frame, ifindex)
    }

    /// [`Director::run_xdp`] with `meta` in front of the frame as its metadata (what rvsd
    /// puts there for the fwmark services' netfilter program, [`crate::fwmark`]).
    pub fn run_xdp_meta(&self, meta: &[u8], frame: &[u8], ifindex: u32) -> Result<(u32, Vec<u8>)> {
        let mut data = meta.to_vec();
        data.extend_from_slice(frame);
        let frame = &data[..];
        let mut out = vec![0u8; frame.len() + 512];
        let mut ctx = xdp_md(frame.len(), ifindex);
        ctx[0..4].copy_from_slice(&(meta.len() as u32).to_ne_bytes());
        let mut ctx_out = [0u8; 24];
        let r = self
            .xdp("rvs_xdp")?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                data_out: Some(&mut out),
                ctx_in: Some(&ctx),
                ctx_out: Some(&mut ctx_out),
                repeat: 1,
                ..Default::default()
            })
            .map_err(|e| XdpError::TestRun {
                program: "rvs_xdp",
                error: Box::new(e),
            })?;
        out.truncate(r.data_size_out as usize);
        // the output starts at the metadata
        out.drain(..meta.len().min(out.len()));
        Ok((r.return_value, out))
    }

    /// Runs `rvs_xdp` `repeat` times on one frame; the kernel-measured time per run.
    pub fn bench_xdp(&self, frame: &[u8], ifindex: u32, repeat: u32) -> Result<(u32, Duration)> {
        let ctx = xdp_md(frame.len(), ifindex);
        let r = self
            .xdp("rvs_xdp")?
            .test_run(TestRunOptions {
                data_in: Some(frame),
                ctx_in: Some(&ctx),
                repeat,
                ..Default::default()
            })
            .map_err(|e| XdpError::TestRun {
                program: "rvs_xdp",
                error: Box::new(e),
            })?;
        Ok((r.return_value, r.duration))
    }

    /// Runs a control request through `rvs_ctl`; returns the request as the program left
    /// it (with its results filled in).
    pub fn run_ctl(&self, req: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; req.len() + 64];
        let r = self
            .xdp("rvs_ctl")?
            .test_run(TestRunOptions {
                data_in: Some(req),
                data_out: Some(&mut out),
                repeat: 1,
                ..Default::default()
            })
            .map_err(|e| XdpError::TestRun {
                program: "rvs_ctl",
                error: Box::new(e),
            })?;
        if r.return_value != 2 {
            return Err(XdpError::Other(format!(
                "control request refused (verdict {})",
                r.return_value
            )));
        }
        out.truncate(r.data_size_out as usize);
        Ok(out)
    }
}

/// The `struct xdp_md` of a test run: the whole frame as data, arriving on `ifindex`.
fn xdp_md(len: usize, ifindex: u32) -> [u8; 24] {
    let mut ctx = [0u8; 24];
    ctx[4..8].copy_from_slice(&(len as u32).to_ne_bytes());
    ctx[12..16].copy_from_slice(&ifindex.to_ne_bytes());
    ctx
}

/// An interface's MAC address (SIOCGIFHWADDR on a socket of this namespace).
pub fn mac_of(iface: &str) -> Option<[u8; 6]> {
    if iface.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: a datagram socket we close below; a zeroed ifreq with the name copied within
    // IFNAMSIZ - 1; the ioctl fills ifru_hwaddr.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0);
        if fd < 0 {
            return None;
        }
        let mut req: libc::ifreq = std::mem::zeroed();
        for (d, b) in req.ifr_name.iter_mut().zip(iface.as_bytes()) {
            *d = *b as libc::c_char;
        }
        let rc = libc::ioctl(fd, libc::SIOCGIFHWADDR, &mut req);
        libc::close(fd);
        if rc != 0 {
            return None;
        }
        let sa = req.ifr_ifru.ifru_hwaddr.sa_data;
        Some([
            sa[0] as u8,
            sa[1] as u8,
            sa[2] as u8,
            sa[3] as u8,
            sa[4] as u8,
            sa[5] as u8,
        ])
    }
}

pub fn ifindex(iface: &str) -> Option<u32> {
    let c = std::ffi::CString::new(iface).ok()?;
    // SAFETY: NUL-terminated name.
    let i = unsafe { libc::if_nametoindex(c.as_ptr()) };
    (i != 0).then_some(i)
}

/// Removes every pin of a pin directory (maps, program, links) and the directory: what
/// `rvsd --xdp-unpin` does. Detaches the links and frees the maps once nothing else holds
/// them.
pub fn unpin_all(dir: &Path) -> std::io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for e in std::fs::read_dir(dir)?.flatten() {
        let p = e.path();
        if p.is_dir() {
            unpin_all(&p)?;
        } else {
            std::fs::remove_file(&p)?;
        }
    }
    std::fs::remove_dir(dir)
}
