//! The Rust side of `bpf/include/rvs_abi.h`.
//!
//! Every struct is `#[repr(C)]` with the header's field order and explicit padding; every
//! constant carries the header's name. `tests/abi.rs` compiles a C program against the
//! header with the host `cc`, prints `offsetof`/`sizeof` of every field and the value of
//! every constant, and compares them with [`STRUCTS`] and [`CONSTANTS`] below — and it
//! fails when the header has a field or a constant this file does not list. So a change on
//! one side cannot go unnoticed.

/// Marker for plain-old-data ABI types: `#[repr(C)]`, no padding, every bit pattern valid.
///
/// # Safety
/// Implement only for types made of integers and arrays of integers with no implicit
/// padding, which is what the `abi_struct!` macro checks at compile time.
pub unsafe trait Plain: Copy + 'static {
    fn as_bytes(&self) -> &[u8] {
        // SAFETY: Plain types have no padding, so every byte is initialised.
        unsafe { std::slice::from_raw_parts(self as *const Self as *const u8, size_of::<Self>()) }
    }

    fn as_bytes_mut(&mut self) -> &mut [u8] {
        // SAFETY: as above, and any byte pattern is a valid value.
        unsafe { std::slice::from_raw_parts_mut(self as *mut Self as *mut u8, size_of::<Self>()) }
    }

    /// Reads a value from the start of `b` (which must be long enough).
    fn from_bytes(b: &[u8]) -> Self {
        assert!(
            b.len() >= size_of::<Self>(),
            "short buffer for an ABI value"
        );
        // SAFETY: length checked; read_unaligned copes with any alignment; any bit pattern
        // is a valid value of a Plain type.
        unsafe { std::ptr::read_unaligned(b.as_ptr() as *const Self) }
    }

    fn zeroed() -> Self {
        // SAFETY: all-zero is a valid value of a Plain type.
        unsafe { std::mem::zeroed() }
    }
}

unsafe impl Plain for u32 {}
unsafe impl Plain for u16 {}
unsafe impl Plain for u64 {}

/// (C struct name, size, fields as (name, offset, size)).
pub type StructLayout = (&'static str, usize, &'static [(&'static str, usize, usize)]);

macro_rules! abi_struct {
    ($(#[$m:meta])* pub struct $name:ident = $cname:literal {
        $( $(#[$fm:meta])* pub $f:ident : $t:ty ),* $(,)?
    }) => {
        $(#[$m])*
        #[repr(C)]
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        pub struct $name { $( $(#[$fm])* pub $f: $t ),* }

        impl $name {
            pub const LAYOUT: StructLayout = (
                $cname,
                size_of::<$name>(),
                &[ $( (stringify!($f), std::mem::offset_of!($name, $f), size_of::<$t>()) ),* ],
            );
        }

        impl Default for $name {
            fn default() -> Self {
                <Self as Plain>::zeroed()
            }
        }

        // No implicit padding: the fields add up to the size.
        const _: () = assert!(0 $( + size_of::<$t>() )* == size_of::<$name>());

        // SAFETY: repr(C), integer fields only, no padding (asserted above).
        unsafe impl Plain for $name {}
    };
}

macro_rules! abi_consts {
    ($( $(#[$m:meta])* pub const $name:ident : $t:ty = $v:expr; )*) => {
        $( $(#[$m])* pub const $name: $t = $v; )*
        /// Every constant of the header, by name, for the layout test.
        pub const CONSTANTS: &[(&str, i64)] = &[ $( (stringify!($name), $name as i64) ),* ];
    };
}

abi_consts! {
    pub const RVS_ABI_VERSION: u32 = 2;
    pub const RVS_MAX_SERVICES: u32 = 1024;
    pub const RVS_MAX_DESTS: u32 = 4096;
    pub const RVS_MAX_SVC_DESTS: u32 = 256;
    pub const RVS_NO_DEST: u16 = 0xffff;
    pub const RVS_HASH_TAB_SIZE: u32 = 256;
    pub const RVS_MH_TAB_SIZE: u32 = 4093;
    pub const RVS_LUT_SIZE: u32 = 4096;
    pub const RVS_LBLC_TAB_BITS: u32 = 10;
    pub const RVS_LBLCR_SET_MAX: u32 = 32;
    pub const RVS_CONN_MAX_DEFAULT: u32 = 1_048_576;
    pub const RVS_LBLC_MAX: u32 = 65536;
    pub const RVS_CTL_MAX_RECORDS: u32 = 32;
    pub const RVS_TEST_MAX_DRAWS: u32 = 16;
    pub const RVS_TCP_NSTATES: u32 = 11;
    pub const RVS_TCP_NEXT_SIZE: u32 = 264;
    pub const RVS_CONTROL_REARM_S: u32 = 60;
    pub const RVS_INITIAL_TIMEOUT_S: u32 = 3;
    pub const RVS_SYNC_RING_BYTES: u32 = 4 << 20;
    pub const RVS_MAX_IFACES: u32 = 4;

    pub const RVS_AF_INET: u8 = 2;
    pub const RVS_AF_INET6: u8 = 10;

    pub const RVS_FWD_MASQ: u8 = 0;
    pub const RVS_FWD_LOCAL: u8 = 1;
    pub const RVS_FWD_TUNNEL: u8 = 2;
    pub const RVS_FWD_ROUTE: u8 = 3;

    pub const RVS_TUN_IPIP: u8 = 0;
    pub const RVS_TUN_GUE: u8 = 1;
    pub const RVS_TUN_GRE: u8 = 2;

    pub const RVS_SCHED_NONE: u8 = 0;
    pub const RVS_SCHED_RR: u8 = 1;
    pub const RVS_SCHED_WRR: u8 = 2;
    pub const RVS_SCHED_LC: u8 = 3;
    pub const RVS_SCHED_WLC: u8 = 4;
    pub const RVS_SCHED_SED: u8 = 5;
    pub const RVS_SCHED_NQ: u8 = 6;
    pub const RVS_SCHED_LBLC: u8 = 7;
    pub const RVS_SCHED_LBLCR: u8 = 8;
    pub const RVS_SCHED_DH: u8 = 9;
    pub const RVS_SCHED_SH: u8 = 10;
    pub const RVS_SCHED_MH: u8 = 11;
    pub const RVS_SCHED_FO: u8 = 12;
    pub const RVS_SCHED_OVF: u8 = 13;
    pub const RVS_SCHED_TWOS: u8 = 14;

    pub const RVS_ST_NONE: u8 = 0;
    pub const RVS_ST_ESTABLISHED: u8 = 1;
    pub const RVS_ST_SYN_SENT: u8 = 2;
    pub const RVS_ST_SYN_RECV: u8 = 3;
    pub const RVS_ST_FIN_WAIT: u8 = 4;
    pub const RVS_ST_TIME_WAIT: u8 = 5;
    pub const RVS_ST_CLOSE: u8 = 6;
    pub const RVS_ST_CLOSE_WAIT: u8 = 7;
    pub const RVS_ST_LAST_ACK: u8 = 8;
    pub const RVS_ST_LISTEN: u8 = 9;
    pub const RVS_ST_SYNACK: u8 = 10;
    pub const RVS_ST_UDP: u8 = 11;
    pub const RVS_ST_TEMPLATE: u8 = 12;

    pub const RVS_SW_TOUCH: u32 = 0x10000;

    pub const RVS_CF_INACTIVE: u8 = 1;
    pub const RVS_CF_NOOUTPUT: u8 = 2;
    pub const RVS_CF_DEAD: u8 = 4;
    pub const RVS_CF_TEMPLATE: u8 = 8;
    pub const RVS_CF_ASSURED: u8 = 16;
    pub const RVS_CF_NAT: u8 = 32;

    pub const RVS_TPL_NONE: u8 = 0;
    pub const RVS_TPL_PORT: u8 = 1;
    pub const RVS_TPL_PORT0: u8 = 2;
    pub const RVS_TPL_FWMARK: u8 = 3;

    pub const RVS_KEY_CONN: u8 = 0;
    pub const RVS_KEY_TEMPLATE: u8 = 1;

    pub const RVS_SF_PERSISTENT: u32 = 0x1;
    pub const RVS_SF_OPS: u32 = 0x2;
    pub const RVS_SF_FWMARK: u32 = 0x4;
    pub const RVS_SF_SCHED1: u32 = 0x8;
    pub const RVS_SF_SCHED2: u32 = 0x10;
    pub const RVS_SF_SCHED3: u32 = 0x20;
    pub const RVS_SF_PE: u32 = 0x40;

    pub const RVS_DF_AVAILABLE: u32 = 1;

    pub const RVS_CFG_EXPIRE_NODEST_CONN: u32 = 1;
    pub const RVS_CFG_EXPIRE_QUIESCENT_TEMPLATE: u32 = 2;
    pub const RVS_CFG_SLOPPY_TCP: u32 = 4;
    pub const RVS_CFG_SECURE_TCP: u32 = 8;
    pub const RVS_CFG_SYNC_MASTER: u32 = 16;

    pub const RVS_CTL_EXPIRE: u32 = 1;
    pub const RVS_CTL_INSTALL: u32 = 2;

    pub const RVS_CTL_GONE: u8 = 0;
    pub const RVS_CTL_ALIVE: u8 = 1;
    pub const RVS_CTL_REARMED: u8 = 2;
    pub const RVS_CTL_EXPIRED: u8 = 3;

    pub const RVS_INST_CREATED: u8 = 1;
    pub const RVS_INST_UPDATED: u8 = 2;
    pub const RVS_INST_STALE: u8 = 3;
    pub const RVS_INST_FULL: u8 = 4;
    pub const RVS_INST_RACE: u8 = 5;
    pub const RVS_INST_NO_DEST: u8 = 6;

    pub const RVS_REASON_BASE: i32 = 100;
    pub const RVS_REASON_COUNT: u32 = 33;
    pub const RVS_R_FORWARDED: i32 = -100;
    pub const RVS_R_NOT_IP: i32 = -101;
    pub const RVS_R_TRUNCATED: i32 = -102;
    pub const RVS_R_BAD_IP: i32 = -103;
    pub const RVS_R_NOT_VIP: i32 = -104;
    pub const RVS_R_FRAGMENT: i32 = -105;
    pub const RVS_R_UNKNOWN_PROTO: i32 = -106;
    pub const RVS_R_NO_SERVICE: i32 = -107;
    pub const RVS_R_NO_CONN: i32 = -108;
    pub const RVS_R_NO_DEST: i32 = -109;
    pub const RVS_R_DEST_UNAVAILABLE: i32 = -110;
    pub const RVS_R_CONN_TABLE_FULL: i32 = -111;
    pub const RVS_R_CONN_RACE: i32 = -112;
    pub const RVS_R_NO_NEIGH: i32 = -113;
    pub const RVS_R_FIB: i32 = -114;
    pub const RVS_R_DR_NOT_ONLINK: i32 = -115;
    pub const RVS_R_FRAG_NEEDED: i32 = -116;
    pub const RVS_R_TOO_BIG: i32 = -117;
    pub const RVS_R_XDP_ADJUST: i32 = -118;
    pub const RVS_R_LOCAL: i32 = -119;
    pub const RVS_R_NO_PE_DATA: i32 = -120;
    pub const RVS_R_ICMP_NO_CONN: i32 = -121;
    pub const RVS_R_ICMP_FORWARDED: i32 = -122;
    pub const RVS_R_NAT_REPLY: i32 = -123;
    pub const RVS_R_UNSUPPORTED: i32 = -124;
    pub const RVS_R_IPV6_EXT: i32 = -125;
    pub const RVS_R_NO_CONFIG: i32 = -126;
    pub const RVS_R_ICMP_SENT: i32 = -127;
    pub const RVS_R_FWD_DISABLED: i32 = -128;
    pub const RVS_R_OVERSIZE: i32 = -129;
    pub const RVS_R_MARTIAN: i32 = -130;
    pub const RVS_R_VLAN: i32 = -131;
    pub const RVS_R_OTHER_HOST: i32 = -132;
    pub const RVS_R_MAX: i32 = -133;
}

abi_struct! {
    /// Key of an IPv4 connection or template.
    pub struct ConnKey4 = "rvs_conn_key4" {
        pub caddr: [u8; 4],
        pub vaddr: [u8; 4],
        pub cport: u16,
        pub vport: u16,
        pub proto: u8,
        pub kind: u8,
        pub pad: u16,
    }
}

abi_struct! {
    pub struct ConnKey6 = "rvs_conn_key6" {
        pub caddr: [u8; 16],
        pub vaddr: [u8; 16],
        pub cport: u16,
        pub vport: u16,
        pub proto: u8,
        pub kind: u8,
        pub pad: u16,
    }
}

abi_struct! {
    /// One connection entry or template.
    pub struct Conn = "rvs_conn" {
        /// State word: state | flags << 8 | touch << 16.
        pub sw: u32,
        pub dport: u16,
        pub dest: u16,
        pub tpl: u8,
        pub tpl_mask: u8,
        pub check: u16,
        pub timeout_s: u32,
        pub last_ns: u64,
        pub aux: u32,
        pub gen: u16,
        pub old_state: u8,
        pub pad: u8,
        pub in_pkts: u32,
        pub sync_end: u32,
    }
}

impl Conn {
    /// `RVS_SW_STATE`.
    pub fn state(&self) -> u8 {
        (self.sw & 0xff) as u8
    }

    /// `RVS_SW_FLAGS`.
    pub fn flags(&self) -> u8 {
        ((self.sw >> 8) & 0xff) as u8
    }
}

abi_struct! {
    pub struct OutKey4 = "rvs_out_key4" {
        pub daddr: [u8; 4],
        pub caddr: [u8; 4],
        pub dport: u16,
        pub cport: u16,
        pub proto: u8,
        pub pad: [u8; 3],
    }
}

abi_struct! {
    pub struct OutKey6 = "rvs_out_key6" {
        pub daddr: [u8; 16],
        pub caddr: [u8; 16],
        pub dport: u16,
        pub cport: u16,
        pub proto: u8,
        pub pad: [u8; 3],
    }
}

abi_struct! {
    pub struct OutVal4 = "rvs_out_val4" {
        pub vaddr: [u8; 4],
        pub vport: u16,
        pub pad: u16,
    }
}

abi_struct! {
    pub struct OutVal6 = "rvs_out_val6" {
        pub vaddr: [u8; 16],
        pub vport: u16,
        pub pad: u16,
    }
}

abi_struct! {
    /// (protocol, VIP, port); fwmark services: proto 0, port 0, addr[0..4] = mark.
    pub struct SvcKey = "rvs_svc_key" {
        pub addr: [u8; 16],
        pub port: u16,
        pub proto: u8,
        pub family: u8,
    }
}

abi_struct! {
    /// A virtual service with its real servers in list order.
    pub struct Service = "rvs_service" {
        pub slot: u32,
        pub sched: u8,
        pub family: u8,
        pub proto: u8,
        pub netmask: u8,
        pub flags: u32,
        pub timeout: u32,
        pub port: u16,
        pub n_dests: u16,
        pub fwmark: u32,
        pub lut: u32,
        pub wrr_mw: u32,
        pub wrr_di: u32,
        pub dests: [u16; 256],
    }
}

abi_struct! {
    /// A real server's configuration.
    pub struct Dest = "rvs_dest" {
        pub addr: [u8; 16],
        pub port: u16,
        pub family: u8,
        pub fwd: u8,
        pub tun_type: u8,
        pub tun_flags: u8,
        pub tun_port: u16,
        pub weight: u32,
        pub u_threshold: u32,
        pub l_threshold: u32,
        pub svc: u32,
        pub flags: u32,
    }
}

abi_struct! {
    /// A real server's connection counts (shared memory with BPF).
    pub struct DestState = "rvs_dest_state" {
        pub active: u32,
        pub inactive: u32,
        pub persist: u32,
        pub overloaded: u32,
        pub neigh_wanted: u32,
        pub pad: u32,
    }
}

abi_struct! {
    pub struct DestStats = "rvs_dest_stats" {
        pub conns: u64,
        pub inpkts: u64,
        pub inbytes: u64,
        pub outpkts: u64,
        pub outbytes: u64,
    }
}

abi_struct! {
    pub struct ReasonCount = "rvs_reason_count" {
        pub packets: u64,
        pub bytes: u64,
    }
}

abi_struct! {
    pub struct SchedState = "rvs_sched_state" {
        pub lock: u32,
        pub version: u32,
        pub rr_cursor: u16,
        pub rr_hint: u16,
        pub wrr_cl: i32,
        pub wrr_cw: i32,
        pub pad: u32,
    }
}

abi_struct! {
    pub struct Lut = "rvs_lut" {
        pub ent: [u16; 4096],
    }
}

abi_struct! {
    pub struct LblcKey = "rvs_lblc_key" {
        pub svc: u32,
        pub addr: [u8; 16],
    }
}

abi_struct! {
    pub struct Lblc = "rvs_lblc" {
        pub lastuse_ns: u64,
        pub dest: u16,
        pub pad: [u16; 3],
    }
}

abi_struct! {
    pub struct Lblcr = "rvs_lblcr" {
        pub lock: u32,
        pub version: u32,
        pub lastuse_ns: u64,
        pub lastmod_ns: u64,
        pub count: u16,
        pub set: [u16; 32],
        pub pad: [u16; 3],
    }
}

abi_struct! {
    pub struct VipKey = "rvs_vip_key" {
        pub addr: [u8; 16],
        pub family: u32,
    }
}

abi_struct! {
    /// Sysctls, timeouts and TCP state tables.
    pub struct Config = "rvs_config" {
        pub abi_version: u32,
        pub flags: u32,
        pub conn_reuse_mode: u32,
        pub udp_timeout: u32,
        pub tcp_timeout: [u32; 11],
        pub tcp_active: u32,
        pub tcp_next: [u8; 264],
        pub sync_threshold: u32,
        pub sync_period: u32,
        pub sync_refresh_ms: u32,
        pub sync_retries: u32,
        pub sync_persist_mode: u32,
        pub pad: u32,
        pub if_index: [u32; 4],
        pub if_mac: [[u8; 8]; 4],
    }
}

abi_struct! {
    pub struct CtlHdr = "rvs_ctl_hdr" {
        pub op: u32,
        pub count: u32,
    }
}

abi_struct! {
    pub struct CtlExpire = "rvs_ctl_expire" {
        pub key: ConnKey6,
        pub family: u8,
        pub forced: u8,
        pub result: u8,
        pub pad: u8,
    }
}

abi_struct! {
    /// An entry received from a sync master, to install.
    pub struct CtlInstall = "rvs_ctl_install" {
        pub key: ConnKey6,
        pub family: u8,
        pub state: u8,
        pub flags: u8,
        pub result: u8,
        pub dest: u16,
        pub dport: u16,
        pub timeout_s: u32,
        pub aux: u32,
        pub in_pkts: u32,
        pub old_state: u8,
        pub pad: [u8; 3],
    }
}

abi_struct! {
    /// One entry the master sends (a record of the sync ring buffer).
    pub struct SyncEvent = "rvs_sync_event" {
        pub key: ConnKey6,
        pub conn: Conn,
        pub family: u8,
        pub pad: [u8; 7],
    }
}

abi_struct! {
    pub struct SyncCount = "rvs_sync_count" {
        pub events: u64,
        pub lost: u64,
    }
}

abi_struct! {
    /// Inputs of the mocked helpers and the record of the last decision (test build).
    pub struct TestEnv = "rvs_test_env" {
        pub now_ns: u64,
        pub fwmark: u32,
        pub n_draws: u32,
        pub next_draw: u32,
        pub bad_draws: u32,
        pub draws: [u32; 16],
        pub bounds: [u32; 16],
        pub last_dest: u32,
        pub last_code: i32,
        pub last_created: u32,
        pub pad: u32,
    }
}

/// Every struct of the header, for the layout test.
pub const STRUCTS: &[StructLayout] = &[
    ConnKey4::LAYOUT,
    ConnKey6::LAYOUT,
    Conn::LAYOUT,
    OutKey4::LAYOUT,
    OutKey6::LAYOUT,
    OutVal4::LAYOUT,
    OutVal6::LAYOUT,
    SvcKey::LAYOUT,
    Service::LAYOUT,
    Dest::LAYOUT,
    DestState::LAYOUT,
    DestStats::LAYOUT,
    ReasonCount::LAYOUT,
    SchedState::LAYOUT,
    Lut::LAYOUT,
    LblcKey::LAYOUT,
    Lblc::LAYOUT,
    Lblcr::LAYOUT,
    VipKey::LAYOUT,
    Config::LAYOUT,
    CtlHdr::LAYOUT,
    CtlExpire::LAYOUT,
    CtlInstall::LAYOUT,
    SyncEvent::LAYOUT,
    SyncCount::LAYOUT,
    TestEnv::LAYOUT,
];

impl DestStats {
    pub fn add(&mut self, o: &DestStats) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.inbytes += o.inbytes;
        self.outpkts += o.outpkts;
        self.outbytes += o.outbytes;
    }
}
