/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * rvs_abi.h — the one ABI between the BPF programs and rvsd.
 *
 * Every struct, enum and constant that both sides read lives here. The Rust mirror is
 * crates/rvs-xdp/src/abi.rs; crates/rvs-xdp/tests/abi.rs compiles a C program against
 * this header with the host `cc`, prints offsetof/sizeof of every field and the value of
 * every constant, and compares them with the Rust side (and fails if a field here has no
 * Rust counterpart). Rules that keep that check simple: fixed-width types only, explicit
 * padding (no implicit holes), one field per line, `struct rvs_*` names.
 *
 * Byte order: addresses and ports are in network order, as they sit in packets; every
 * other number is in host order.
 */
#ifndef RVS_ABI_H
#define RVS_ABI_H

#include <linux/types.h>
#include <linux/bpf.h> /* struct bpf_spin_lock */

/* Bumped when a pinned map's layout changes: rvsd refuses to adopt pins of another ABI. */
#define RVS_ABI_VERSION 2

/* ---- limits ------------------------------------------------------------------------ */

#define RVS_MAX_SERVICES 1024   /* service slots */
#define RVS_MAX_DESTS 4096      /* real-server slots, all services together */
#define RVS_MAX_SVC_DESTS 256   /* real servers of one service */
#define RVS_NO_DEST 0xffff      /* empty dest slot / cursor at the list head */
#define RVS_HASH_TAB_SIZE 256   /* dh and sh buckets (CONFIG_IP_VS_{DH,SH}_TAB_BITS = 8) */
#define RVS_MH_TAB_SIZE 4093    /* mh slots (CONFIG_IP_VS_MH_TAB_INDEX = 12) */
#define RVS_LUT_SIZE 4096       /* entries of one lookup-table value (dh, sh, mh) */
#define RVS_LBLC_TAB_BITS 10    /* lblc/lblcr buckets, used by rvsd's garbage collector */
#define RVS_LBLCR_SET_MAX 32    /* servers in one lblcr destination set */
#define RVS_CONN_MAX_DEFAULT 1048576
#define RVS_LBLC_MAX 65536      /* lblc/lblcr cache entries, all services */
#define RVS_CTL_MAX_RECORDS 32  /* records of one control request */
#define RVS_TEST_MAX_DRAWS 16   /* scripted random draws (test build) */
#define RVS_TCP_NSTATES 11
#define RVS_TCP_NEXT_SIZE 264   /* [secure 2][table 3][event 4][state 11] */
#define RVS_CONTROL_REARM_S 60  /* a template with live children is re-armed this long */
#define RVS_INITIAL_TIMEOUT_S 3 /* a new entry's timeout until its first state step */
#define RVS_SYNC_RING_BYTES (4 << 20) /* ring of entries the sync master sends */
#define RVS_MAX_IFACES 4        /* interfaces whose own MAC the director knows */

/* ---- enums ------------------------------------------------------------------------- */

enum rvs_af {
	RVS_AF_INET = 2,
	RVS_AF_INET6 = 10,
};

/* Forwarding method, IP_VS_CONN_F_* values. */
enum rvs_fwd {
	RVS_FWD_MASQ = 0,
	RVS_FWD_LOCAL = 1,
	RVS_FWD_TUNNEL = 2,
	RVS_FWD_ROUTE = 3,
};

enum rvs_tun {
	RVS_TUN_IPIP = 0,
	RVS_TUN_GUE = 1,
	RVS_TUN_GRE = 2,
};

enum rvs_sched {
	RVS_SCHED_NONE = 0,
	RVS_SCHED_RR = 1,
	RVS_SCHED_WRR = 2,
	RVS_SCHED_LC = 3,
	RVS_SCHED_WLC = 4,
	RVS_SCHED_SED = 5,
	RVS_SCHED_NQ = 6,
	RVS_SCHED_LBLC = 7,
	RVS_SCHED_LBLCR = 8,
	RVS_SCHED_DH = 9,
	RVS_SCHED_SH = 10,
	RVS_SCHED_MH = 11,
	RVS_SCHED_FO = 12,
	RVS_SCHED_OVF = 13,
	RVS_SCHED_TWOS = 14,
};

/* Entry states: TCP states in kernel order (IP_VS_TCP_S_*), then UDP and templates. */
enum rvs_state {
	RVS_ST_NONE = 0,
	RVS_ST_ESTABLISHED = 1,
	RVS_ST_SYN_SENT = 2,
	RVS_ST_SYN_RECV = 3,
	RVS_ST_FIN_WAIT = 4,
	RVS_ST_TIME_WAIT = 5,
	RVS_ST_CLOSE = 6,
	RVS_ST_CLOSE_WAIT = 7,
	RVS_ST_LAST_ACK = 8,
	RVS_ST_LISTEN = 9,
	RVS_ST_SYNACK = 10,
	RVS_ST_UDP = 11,
	RVS_ST_TEMPLATE = 12,
};

/* rvs_conn.flags */
enum rvs_conn_flag {
	RVS_CF_INACTIVE = 1,  /* counted in the server's inactive connections */
	RVS_CF_NOOUTPUT = 2,  /* no reply seen (DR/TUN, NAT before the first reply) */
	RVS_CF_DEAD = 4,      /* being expired: no packet may use it any more */
	RVS_CF_TEMPLATE = 8,  /* persistence template */
	RVS_CF_ASSURED = 16,  /* template whose child reached ESTABLISHED */
	RVS_CF_NAT = 32,      /* has a reply (out) entry */
};

/* rvs_conn.tpl: how a child finds its template again (the template key is derived). */
enum rvs_tpl_kind {
	RVS_TPL_NONE = 0,
	RVS_TPL_PORT = 1,    /* <proto, snet, 0, vaddr, vport> */
	RVS_TPL_PORT0 = 2,   /* <proto, snet, 0, vaddr, 0>: port-0 and FTP services */
	RVS_TPL_FWMARK = 3,  /* <0, snet, 0, mark, 0> */
};

/* rvs_conn_key*.kind */
enum rvs_key_kind {
	RVS_KEY_CONN = 0,
	RVS_KEY_TEMPLATE = 1,
};

/* rvs_service.flags; the scheduler flags keep their IP_VS_SVC_F_SCHED* bit values. */
enum rvs_svc_flag {
	RVS_SF_PERSISTENT = 0x1,
	RVS_SF_OPS = 0x2,
	RVS_SF_FWMARK = 0x4,
	RVS_SF_SCHED1 = 0x8,   /* sh-fallback, mh-fallback */
	RVS_SF_SCHED2 = 0x10,  /* sh-port, mh-port */
	RVS_SF_SCHED3 = 0x20,
	RVS_SF_PE = 0x40,      /* a persistence engine (sip) is configured: not served here */
};

/* rvs_dest.flags */
enum rvs_dest_flag {
	RVS_DF_AVAILABLE = 1,
};

/* rvs_config.flags: the sysctls of the model (rvs_core::Sysctl). */
enum rvs_config_flag {
	RVS_CFG_EXPIRE_NODEST_CONN = 1,
	RVS_CFG_EXPIRE_QUIESCENT_TEMPLATE = 2,
	RVS_CFG_SLOPPY_TCP = 4,
	RVS_CFG_SECURE_TCP = 8,
	RVS_CFG_SYNC_MASTER = 16, /* a sync master runs: entries are offered (lib/sync.h) */
};

/* Control requests (program rvs_ctl, run by rvsd with BPF_PROG_TEST_RUN). */
enum rvs_ctl_op {
	RVS_CTL_EXPIRE = 1,
	RVS_CTL_INSTALL = 2,
};

enum rvs_ctl_result {
	RVS_CTL_GONE = 0,     /* no such entry (or already dying) */
	RVS_CTL_ALIVE = 1,    /* not due yet */
	RVS_CTL_REARMED = 2,  /* a template with live children: re-armed for 60 s */
	RVS_CTL_EXPIRED = 3,  /* released and deleted */
};

/* RVS_CTL_INSTALL results (ip_vs_proc_conn). */
enum rvs_ctl_install_result {
	RVS_INST_CREATED = 1,
	RVS_INST_UPDATED = 2,
	RVS_INST_STALE = 3,   /* inactive update of an entry that moved to another server */
	RVS_INST_FULL = 4,    /* the connection table is full */
	RVS_INST_RACE = 5,    /* the entry was being expired at that moment */
	RVS_INST_NO_DEST = 6, /* the dest slot is not an available real server */
};

/*
 * Outcome codes. A program's internal result is either an XDP verdict (0..4) or one of
 * these negative codes; rvs_finish() counts the code per CPU and turns it into the verdict
 * documented beside it (docs/xdp.md has the operator's table). The numbers are stable:
 * never renumber, only append. Counter index = -(code) - RVS_REASON_BASE.
 */
#define RVS_REASON_BASE 100
enum rvs_reason {
	RVS_R_FORWARDED = -100,         /* TX/REDIRECT: a packet of a tracked flow went out */
	RVS_R_NOT_IP = -101,            /* PASS: not IPv4/IPv6 (ARP, LLDP, ...) */
	RVS_R_TRUNCATED = -102,         /* DROP: a header is cut short */
	RVS_R_BAD_IP = -103,            /* DROP: bad version or IHL, length beyond the frame */
	RVS_R_NOT_VIP = -104,           /* PASS: not addressed to a virtual address */
	RVS_R_FRAGMENT = -105,          /* DROP (to a VIP) / PASS (otherwise): IP fragment */
	RVS_R_UNKNOWN_PROTO = -106,     /* PASS: to a VIP, neither TCP, UDP nor an ICMP error */
	RVS_R_NO_SERVICE = -107,        /* PASS: VIP, but no service on that protocol/port */
	RVS_R_NO_CONN = -108,           /* PASS: a segment that opens nothing (TCP non-SYN) */
	RVS_R_NO_DEST = -109,           /* TX: no eligible server, ICMP port unreachable sent */
	RVS_R_DEST_UNAVAILABLE = -110,  /* DROP: the entry's server was deleted */
	RVS_R_CONN_TABLE_FULL = -111,   /* DROP: connection table full */
	RVS_R_CONN_RACE = -112,         /* DROP: the entry is being expired right now */
	RVS_R_NO_NEIGH = -113,          /* DROP: next hop's MAC not resolved yet (rvsd resolves) */
	RVS_R_FIB = -114,               /* DROP: no route to the real server / client */
	RVS_R_DR_NOT_ONLINK = -115,     /* DROP: DR server is behind a router */
	RVS_R_FRAG_NEEDED = -116,       /* TX: too big to tunnel with DF: ICMP frag-needed sent */
	RVS_R_TOO_BIG = -117,           /* DROP: too big to tunnel, DF clear (XDP cannot fragment) */
	RVS_R_XDP_ADJUST = -118,        /* DROP: bpf_xdp_adjust_head/tail failed */
	RVS_R_LOCAL = -119,             /* PASS: server is this host (Local forwarding) */
	RVS_R_NO_PE_DATA = -120,        /* DROP: persistence engine (sip) not served by XDP */
	RVS_R_ICMP_NO_CONN = -121,      /* PASS: ICMP error about no tracked flow */
	RVS_R_ICMP_FORWARDED = -122,    /* TX/REDIRECT: ICMP error delivered to its flow */
	RVS_R_NAT_REPLY = -123,         /* TX/REDIRECT: NAT reply rewritten to the VIP */
	RVS_R_UNSUPPORTED = -124,       /* DROP: method/family combination not supported here */
	RVS_R_IPV6_EXT = -125,          /* PASS: IPv6 extension headers beyond the parser */
	RVS_R_NO_CONFIG = -126,         /* PASS: maps not configured yet */
	RVS_R_ICMP_SENT = -127,         /* counter only: ICMP errors generated */
	RVS_R_FWD_DISABLED = -128,      /* DROP: IP forwarding is off on the ingress interface */
	RVS_R_OVERSIZE = -129,          /* DROP: a GRO/GSO aggregate (generic mode) XDP cannot send */
	RVS_R_MARTIAN = -130,           /* DROP: to a VIP, no entry, from a source no client can have */
	RVS_R_VLAN = -131,              /* PASS: VLAN-tagged (802.1Q/802.1ad): left to the stack */
	RVS_R_OTHER_HOST = -132,        /* PASS: unicast to another host's MAC (the stack drops it) */
	RVS_R_MAX = -133,
};
#define RVS_REASON_COUNT 33 /* codes -100 .. -132 */

/* ---- connection table -------------------------------------------------------------- */

/* Key of an IPv4 entry: a connection, or a template (kind 1, cport 0, caddr = snet). */
struct rvs_conn_key4 {
	__u32 caddr;
	__u32 vaddr;
	__u16 cport;
	__u16 vport;
	__u8 proto;
	__u8 kind;
	__u16 pad;
};

struct rvs_conn_key6 {
	__u32 caddr[4];
	__u32 vaddr[4];
	__u16 cport;
	__u16 vport;
	__u8 proto;
	__u8 kind;
	__u16 pad;
};

/*
 * One entry (40 bytes: 1M IPv4 entries fit in about 120 MB). The real server's address is
 * the dest slot's; `dport` is the entry's own real port (port mapping, port-0 services).
 *
 * `sw`, the state word, is only ever changed with compare-and-swap: state in bits 0-7,
 * flags (enum rvs_conn_flag) in bits 8-15, and in bits 16-31 a counter every packet bumps.
 * A packet computes its state step from the word it read and publishes it only if the word
 * is unchanged; the expiry (RVS_CTL_EXPIRE) marks an entry dead the same way, so a packet
 * that came meanwhile (and bumped the counter) keeps the entry alive. No lock is taken on
 * the packet path.
 */
struct rvs_conn {
	__u32 sw;        /* state | flags << 8 | touch << 16 */
	__u16 dport;     /* real port, network order (templates: 0 unless RVS_TPL_PORT) */
	__u16 dest;      /* dest slot */
	__u8 tpl;        /* children: enum rvs_tpl_kind */
	__u8 tpl_mask;   /* children: prefix length of the template's client net */
	__u16 check;     /* fold of the key: guards against a reused element */
	__u32 timeout_s; /* current timeout */
	__u64 last_ns;   /* when the timer was last re-armed (coarse monotonic clock) */
	__u32 aux;       /* templates: live children (atomic); fwmark children: the mark */
	__u16 gen;       /* templates: generation; children: their template's generation */
	__u8 old_state;  /* sync: the state last synced (cp->old_state) */
	__u8 pad;
	__u32 in_pkts;   /* sync: inbound packets (templates: offers), cp->in_pkts */
	__u32 sync_end;  /* sync: expiry announced by the last sync, ms, low 2 bits retries */
};

#define RVS_SW_STATE(sw) ((sw) & 0xff)
#define RVS_SW_FLAGS(sw) (((sw) >> 8) & 0xff)
#define RVS_SW_TOUCH 0x10000u

/* NAT reply lookup: (proto, real server, client) -> the virtual side of the entry. */
struct rvs_out_key4 {
	__u32 daddr;
	__u32 caddr;
	__u16 dport;
	__u16 cport;
	__u8 proto;
	__u8 pad[3];
};

struct rvs_out_key6 {
	__u32 daddr[4];
	__u32 caddr[4];
	__u16 dport;
	__u16 cport;
	__u8 proto;
	__u8 pad[3];
};

struct rvs_out_val4 {
	__u32 vaddr;
	__u16 vport;
	__u16 pad;
};

struct rvs_out_val6 {
	__u32 vaddr[4];
	__u16 vport;
	__u16 pad;
};

/* ---- services and real servers ------------------------------------------------------ */

/* (protocol, VIP, port); fwmark services: proto 0, port 0, addr[0] = mark. */
struct rvs_svc_key {
	__u32 addr[4];
	__u16 port;
	__u8 proto;
	__u8 family;
};

/*
 * A virtual service. Replaced as a whole by rvsd (hash-map updates are atomic for
 * readers), so a packet always sees one consistent list.
 */
struct rvs_service {
	__u32 slot;     /* scheduler state, lblc cache and lookup tables are per slot */
	__u8 sched;     /* enum rvs_sched */
	__u8 family;
	__u8 proto;
	__u8 netmask;   /* persistence client mask, prefix length */
	__u32 flags;    /* enum rvs_svc_flag */
	__u32 timeout;  /* persistence timeout, seconds */
	__u16 port;     /* service port, network order */
	__u16 n_dests;
	__u32 fwmark;
	__u32 lut;      /* key of the current lookup table (dh, sh, mh) in rvs_luts */
	__u32 wrr_mw;   /* wrr: max weight - (gcd - 1) */
	__u32 wrr_di;   /* wrr: gcd of the positive weights */
	__u16 dests[RVS_MAX_SVC_DESTS]; /* dest slots in list order, newest first */
};

/* A real server's configuration (rvsd writes it). */
struct rvs_dest {
	__u32 addr[4];
	__u16 port;       /* network order; 0 = the packet's port */
	__u8 family;
	__u8 fwd;         /* enum rvs_fwd */
	__u8 tun_type;    /* enum rvs_tun */
	__u8 tun_flags;
	__u16 tun_port;   /* GUE destination port, network order */
	__u32 weight;
	__u32 u_threshold;
	__u32 l_threshold;
	__u32 svc;        /* owning service slot */
	__u32 flags;      /* enum rvs_dest_flag */
};

/* A real server's connection counts, shared by BPF and rvsd (mmap) with atomics. */
struct rvs_dest_state {
	__u32 active;
	__u32 inactive;
	__u32 persist;
	__u32 overloaded;
	__u32 neigh_wanted; /* set by BPF when the next hop was unresolved */
	__u32 pad;
};

/* Per-CPU traffic counters of a real server. */
struct rvs_dest_stats {
	__u64 conns;
	__u64 inpkts;
	__u64 inbytes;
	__u64 outpkts;
	__u64 outbytes;
};

/* Per-CPU count of one outcome code. */
struct rvs_reason_count {
	__u64 packets;
	__u64 bytes;
};

/* Mutable state of rr and wrr, per service slot. */
struct rvs_sched_state {
	struct bpf_spin_lock lock;
	__u32 version;    /* bumped on every write: optimistic concurrency */
	__u16 rr_cursor;  /* rr: last picked dest slot, RVS_NO_DEST = list head */
	__u16 rr_hint;    /* rr: list index the cursor had */
	__s32 wrr_cl;     /* wrr: list index of the last pick, -1 = head */
	__s32 wrr_cw;     /* wrr: current weight bar */
	__u32 pad;
};

/* dh/sh buckets or mh slots: dest slots, RVS_NO_DEST when empty. */
struct rvs_lut {
	__u16 ent[RVS_LUT_SIZE];
};

struct rvs_lblc_key {
	__u32 svc;
	__u32 addr[4];
};

struct rvs_lblc {
	__u64 lastuse_ns;
	__u16 dest;
	__u16 pad[3];
};

struct rvs_lblcr {
	struct bpf_spin_lock lock;
	__u32 version;
	__u64 lastuse_ns;
	__u64 lastmod_ns;
	__u16 count;
	__u16 set[RVS_LBLCR_SET_MAX]; /* newest member first */
	__u16 pad[3];
};

/* Virtual addresses (any service's), so non-VIP traffic is told apart early. */
struct rvs_vip_key {
	__u32 addr[4];
	__u32 family;
};

/* Sysctls, timeouts and the TCP state tables, pushed from rvs_core by rvsd. */
struct rvs_config {
	__u32 abi_version;
	__u32 flags;            /* enum rvs_config_flag */
	__u32 conn_reuse_mode;
	__u32 udp_timeout;
	__u32 tcp_timeout[RVS_TCP_NSTATES];
	__u32 tcp_active;       /* bit per TCP state: counts as active */
	/* next state = tcp_next[((secure * 3 + table) * 4 + event) * 11 + state];
	 * table 0 = INPUT, 1 = OUTPUT, 2 = INPUT-ONLY; event 0 syn, 1 fin, 2 ack, 3 rst */
	__u8 tcp_next[RVS_TCP_NEXT_SIZE];
	/* the connection-sync sysctls (rvs_core::SyncParams), read while SYNC_MASTER is set */
	__u32 sync_threshold;
	__u32 sync_period;
	__u32 sync_refresh_ms;
	__u32 sync_retries;
	__u32 sync_persist_mode;
	__u32 pad;
	/* the interfaces the director is attached to and their MACs: a unicast frame for
	 * another MAC is not for this host (0 = free slot; none known = no check) */
	__u32 if_index[RVS_MAX_IFACES];
	__u8 if_mac[RVS_MAX_IFACES][8];
};

/* ---- control requests -------------------------------------------------------------- */

struct rvs_ctl_hdr {
	__u32 op;     /* enum rvs_ctl_op */
	__u32 count;  /* records that follow */
};

/* RVS_CTL_EXPIRE record: IPv4 keys use the first 16 bytes as a struct rvs_conn_key4. */
struct rvs_ctl_expire {
	struct rvs_conn_key6 key;
	__u8 family;
	__u8 forced;  /* expire now whatever the timer says (ip_vs_conn_expire_now) */
	__u8 result;  /* out: enum rvs_ctl_result */
	__u8 pad;
};

/* RVS_CTL_INSTALL record: an entry received from a sync master (rvsd found the service and
 * the dest slot). IPv4 keys use the first 16 bytes as a struct rvs_conn_key4; templates
 * have kind RVS_KEY_TEMPLATE. */
struct rvs_ctl_install {
	struct rvs_conn_key6 key;
	__u8 family;
	__u8 state;      /* enum rvs_state */
	__u8 flags;      /* RVS_CF_INACTIVE, RVS_CF_TEMPLATE, RVS_CF_ASSURED */
	__u8 result;     /* out: enum rvs_ctl_install_result */
	__u16 dest;      /* dest slot */
	__u16 dport;     /* network order */
	__u32 timeout_s;
	__u32 aux;       /* children: the fwmark (0 for others) */
	__u32 in_pkts;   /* the packet count to start from (sync_threshold) */
	__u8 old_state;  /* the received state as the sync check compares it */
	__u8 pad[3];
};

/* ---- connection sync --------------------------------------------------------------- */

/* One entry the master sends, as it was when the packet path decided to sync it (a record
 * of the rvs_sync_ring ring buffer). IPv4 keys use the first 16 bytes. */
struct rvs_sync_event {
	struct rvs_conn_key6 key;
	struct rvs_conn conn;
	__u8 family;
	__u8 pad[7];
};

/* Per-CPU counters of the master's side of the packet path. */
struct rvs_sync_count {
	__u64 events;   /* entries put in the ring */
	__u64 lost;     /* entries the ring had no room for */
};

/* ---- test build (-DRVS_TEST) ------------------------------------------------------- */

/* The mocked helpers' inputs and a record of the last decision. */
struct rvs_test_env {
	__u64 now_ns;     /* the clock */
	__u32 fwmark;     /* the packet mark (XDP has none; fwmark services only match here) */
	__u32 n_draws;    /* scripted draws queued */
	__u32 next_draw;  /* next draw to hand out */
	__u32 bad_draws;  /* draws asked for beyond the script */
	__u32 draws[RVS_TEST_MAX_DRAWS];
	__u32 bounds[RVS_TEST_MAX_DRAWS]; /* out: the bound each draw was asked with */
	__u32 last_dest;  /* out: dest slot of the last forwarded packet */
	__s32 last_code;  /* out: outcome code of the last packet */
	__u32 last_created; /* out: 1 if the last packet created an entry */
	__u32 pad;
};

#endif /* RVS_ABI_H */
