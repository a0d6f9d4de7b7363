//! rvsd keeps only the capabilities its planes need once it has started (issue 10).
//!
//! Setup (binding the control socket, loading and attaching BPF, opening VRRP's raw
//! sockets, binding the proxy's first listeners) may use all of root; afterwards rvsd
//! keeps, in every thread:
//!
//! | plane | kept | what for, after start |
//! |---|---|---|
//! | proxy | `CAP_NET_BIND_SERVICE` | listeners of services added later on ports < 1024 |
//! | xdp | `CAP_BPF`, `CAP_NET_ADMIN` (`CAP_SYS_ADMIN` on kernels without `CAP_BPF`, < 5.8) | every `bpf(2)` map operation and the control program's test runs (with `kernel.unprivileged_bpf_disabled`, kernels before 6.5 check on every call), restoring forwarding sysctls and detaching at exit |
//! | keepalived (`-f`) | `CAP_NET_RAW`, `CAP_NET_ADMIN`, `CAP_SETUID`, `CAP_SETGID`, `CAP_KILL` | VRRP's raw sockets and VIP addresses, probe marks (`fwmark`), scripts run as their user and killed at their timeout; a reload may add any of them |
//!
//! Everything else leaves the effective, permitted, inheritable and ambient sets. Without
//! `-f` the bounding set is cut to the same and `no_new_privs` is set, so nothing rvsd
//! could ever execute gets more. With `-f` the bounding set stays whole: scripts that
//! keepalived runs as root (no `script_user`, no `keepalived_script` account) get root's
//! capabilities again when they are executed, as keepalived gives them; rvsd itself
//! does not hold them.
//!
//! Capabilities belong to threads, not processes, and rvsd has many threads by the time
//! setup is done (the async runtime, the proxy's workers, the XDP worker). The drop is
//! therefore applied to each thread by a signal whose handler makes the raw `prctl(2)` /
//! `capset(2)` calls (the only calls allowed in a signal handler), and then checked
//! thread by thread in `/proc/self/task/*/status` until every one matches. That is why
//! this is written by hand: capability crates (`caps`) change the calling thread only,
//! and allocate, which a signal handler must not. Threads created later inherit the
//! reduced sets from their creator.

use std::collections::BTreeSet;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Capability numbers (`linux/capability.h`, a stable kernel ABI).
pub mod cap {
    pub const CHOWN: u32 = 0;
    pub const KILL: u32 = 5;
    pub const SETGID: u32 = 6;
    pub const SETUID: u32 = 7;
    pub const SETPCAP: u32 = 8;
    pub const NET_BIND_SERVICE: u32 = 10;
    pub const NET_ADMIN: u32 = 12;
    pub const NET_RAW: u32 = 13;
    pub const SYS_ADMIN: u32 = 21;
    pub const BPF: u32 = 39;

    /// Names as capabilities(7) spells them.
    pub fn name(c: u32) -> String {
        const NAMES: [&str; 41] = [
            "chown",
            "dac_override",
            "dac_read_search",
            "fowner",
            "fsetid",
            "kill",
            "setgid",
            "setuid",
            "setpcap",
            "linux_immutable",
            "net_bind_service",
            "net_broadcast",
            "net_admin",
            "net_raw",
            "ipc_lock",
            "ipc_owner",
            "sys_module",
            "sys_rawio",
            "sys_chroot",
            "sys_ptrace",
            "sys_pacct",
            "sys_admin",
            "sys_boot",
            "sys_nice",
            "sys_resource",
            "sys_time",
            "sys_tty_config",
            "mknod",
            "lease",
            "audit_write",
            "audit_control",
            "setfcap",
            "mac_override",
            "mac_admin",
            "syslog",
            "wake_alarm",
            "block_suspend",
            "audit_read",
            "perfmon",
            "bpf",
            "checkpoint_restore",
        ];
        match NAMES.get(c as usize) {
            Some(n) => format!("CAP_{}", n.to_uppercase()),
            None => format!("CAP_{c}"),
        }
    }
}

/// What rvsd runs, which decides what it keeps.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Uses {
    /// The proxy data plane.
    pub proxy: bool,
    /// The XDP data plane.
    pub xdp: bool,
    /// A keepalived configuration (`-f`): VRRP, checkers and their scripts, reloads.
    pub keepalived: bool,
    /// `--announce-interface`: addresses added and removed on it.
    pub announce: bool,
}

impl Uses {
    /// From the data plane's name (`DataPlane::name`) and whether `-f` was given.
    pub fn of(plane: &str, keepalived: bool) -> Uses {
        Uses {
            proxy: plane == "proxy",
            xdp: plane == "xdp",
            keepalived,
            announce: false,
        }
    }

    /// The capabilities kept, as a bit mask.
    pub fn kept(&self) -> u64 {
        let mut m = 0u64;
        let mut add = |c: u32| m |= 1 << c;
        if self.proxy {
            add(cap::NET_BIND_SERVICE);
        }
        if self.xdp {
            add(cap::BPF);
            add(cap::NET_ADMIN);
            if last_cap() < cap::BPF {
                add(cap::SYS_ADMIN);
            }
        }
        if self.announce {
            add(cap::NET_ADMIN);
        }
        if self.keepalived {
            for c in [
                cap::NET_RAW,
                cap::NET_ADMIN,
                cap::SETUID,
                cap::SETGID,
                cap::KILL,
            ] {
                add(c);
            }
        }
        m
    }

    /// Whether the bounding set is cut too (see the module documentation).
    pub fn cut_bounding(&self) -> bool {
        !self.keepalived
    }
}

/// The highest capability this kernel knows.
pub fn last_cap() -> u32 {
    std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(cap::BPF)
}

fn names(mask: u64) -> Vec<String> {
    (0..64)
        .filter(|c| mask & (1 << c) != 0)
        .map(cap::name)
        .collect()
}

/// The capability sets of one thread, from `/proc/.../status`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ThreadCaps {
    pub effective: u64,
    pub permitted: u64,
    pub inheritable: u64,
    pub bounding: u64,
    pub ambient: u64,
    pub no_new_privs: bool,
}

/// Reads the sets from a `/proc/PID[/task/TID]/status` text.
pub fn parse_status(status: &str) -> ThreadCaps {
    let mut t = ThreadCaps::default();
    for line in status.lines() {
        let Some((k, v)) = line.split_once(':') else {
            continue;
        };
        let hex = || u64::from_str_radix(v.trim(), 16).unwrap_or(0);
        match k {
            "CapEff" => t.effective = hex(),
            "CapPrm" => t.permitted = hex(),
            "CapInh" => t.inheritable = hex(),
            "CapBnd" => t.bounding = hex(),
            "CapAmb" => t.ambient = hex(),
            "NoNewPrivs" => t.no_new_privs = v.trim() == "1",
            _ => {}
        }
    }
    t
}

/// The sets of every thread of process `pid` (0: this process), by thread id.
pub fn threads_of(pid: u32) -> io::Result<Vec<(u32, ThreadCaps)>> {
    let base = if pid == 0 {
        "/proc/self/task".to_string()
    } else {
        format!("/proc/{pid}/task")
    };
    let mut out = Vec::new();
    for e in std::fs::read_dir(&base)? {
        let e = e?;
        let Some(tid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        // A thread that ended meanwhile is no concern.
        if let Ok(s) = std::fs::read_to_string(e.path().join("status")) {
            out.push((tid, parse_status(&s)));
        }
    }
    Ok(out)
}

// What the signal handler applies (set before the first signal is sent).
static KEEP: AtomicU64 = AtomicU64::new(0);
static CUT_BOUNDING: AtomicBool = AtomicBool::new(false);
static LAST_CAP: AtomicU64 = AtomicU64::new(40);

/// `struct __user_cap_header_struct` / `__user_cap_data_struct` (version 3: two of them).
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: i32,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

/// Applies the drop to the calling thread with raw system calls only (async-signal-safe).
fn apply_here() {
    let keep = KEEP.load(Ordering::Acquire);
    // SAFETY: prctl and capset with valid arguments; errno is saved and restored, as a
    // signal handler must.
    unsafe {
        let errno = *libc::__errno_location();
        if CUT_BOUNDING.load(Ordering::Acquire) {
            // Needs CAP_SETPCAP, so before the capset below takes it away.
            for c in 0..=LAST_CAP.load(Ordering::Acquire) {
                if keep & (1 << c) == 0 {
                    libc::prctl(libc::PR_CAPBSET_DROP, c as libc::c_ulong, 0, 0, 0);
                }
            }
            libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0);
        }
        libc::prctl(
            libc::PR_CAP_AMBIENT,
            libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
            0,
            0,
            0,
        );
        let mut hdr = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let data = [
            CapData {
                effective: keep as u32,
                permitted: keep as u32,
                inheritable: 0,
            },
            CapData {
                effective: (keep >> 32) as u32,
                permitted: (keep >> 32) as u32,
                inheritable: 0,
            },
        ];
        libc::syscall(libc::SYS_capset, &mut hdr as *mut CapHeader, data.as_ptr());
        *libc::__errno_location() = errno;
    }
}

extern "C" fn on_signal(_: libc::c_int) {
    apply_here();
}

/// The signal that carries the drop to each thread: a real-time one nothing else uses.
fn drop_signal() -> libc::c_int {
    libc::SIGRTMIN() + 6
}

/// What [`drop_to`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dropped {
    pub kept: Vec<String>,
    pub threads: usize,
    pub bounding_cut: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum PrivError {
    #[error("reading the threads' capabilities: {0}")]
    Proc(#[from] io::Error),
    #[error("installing the signal handler: {0}")]
    Signal(io::Error),
    #[error("threads {0:?} still hold capabilities rvsd dropped")]
    Stuck(Vec<u32>),
}

fn done(t: &ThreadCaps, keep: u64, cut: bool) -> bool {
    t.effective & !keep == 0
        && t.permitted & !keep == 0
        && t.inheritable == 0
        && t.ambient == 0
        && (!cut || (t.bounding & !keep == 0 && t.no_new_privs))
}

/// Drops every capability outside `uses.kept()` in every thread of this process, then
/// checks each thread. What a thread does not hold cannot be kept: the result is the
/// intersection with what the process has.
///
/// # Errors
/// `/proc` unreadable, the handler not installed, or a thread that would not change
/// within 2 s.
pub fn drop_to(uses: &Uses) -> Result<Dropped, PrivError> {
    let own = parse_status(&std::fs::read_to_string("/proc/thread-self/status")?);
    let keep = uses.kept() & own.permitted;
    let cut = uses.cut_bounding();
    KEEP.store(keep, Ordering::Release);
    CUT_BOUNDING.store(cut, Ordering::Release);
    LAST_CAP.store(last_cap().into(), Ordering::Release);
    // SAFETY: a sigaction with a handler that only makes async-signal-safe calls.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = on_signal as *const () as libc::sighandler_t;
        sa.sa_flags = libc::SA_RESTART;
        libc::sigemptyset(&mut sa.sa_mask);
        if libc::sigaction(drop_signal(), &sa, std::ptr::null_mut()) != 0 {
            return Err(PrivError::Signal(io::Error::last_os_error()));
        }
    }
    apply_here();
    // SAFETY: getpid has no preconditions.
    let pid = unsafe { libc::getpid() };
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let threads = threads_of(0)?;
        let pending: Vec<u32> = threads
            .iter()
            .filter(|(_, t)| !done(t, keep, cut))
            .map(|(tid, _)| *tid)
            .collect();
        if pending.is_empty() {
            return Ok(Dropped {
                kept: names(keep),
                threads: threads.len(),
                bounding_cut: cut,
            });
        }
        if Instant::now() > deadline {
            return Err(PrivError::Stuck(pending));
        }
        for tid in &pending {
            // SAFETY: tgkill to a thread of this process with a handled signal.
            unsafe {
                libc::syscall(libc::SYS_tgkill, pid, *tid as libc::c_int, drop_signal());
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// The hook for `main`: drops what `uses` does not need and logs what stays. A failure
/// is logged, not fatal: the daemon keeps forwarding with the privileges it had.
pub fn drop_after_start(uses: Uses) {
    match drop_to(&uses) {
        Ok(d) => tracing::info!(
            kept = %d.kept.join(","),
            threads = d.threads,
            bounding_set_cut = d.bounding_cut,
            "privileges dropped to what the data plane needs"
        ),
        Err(e) => tracing::warn!("privileges: could not drop capabilities: {e}"),
    }
}

/// Every capability name of a mask (tests, logs).
pub fn cap_names(mask: u64) -> BTreeSet<String> {
    names(mask).into_iter().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_plane_keeps_its_own_capabilities() {
        let proxy = Uses::of("proxy", false);
        assert_eq!(
            cap_names(proxy.kept()),
            ["CAP_NET_BIND_SERVICE".to_string()].into()
        );
        assert!(proxy.cut_bounding());
        let xdp = Uses::of("xdp", false);
        assert!(cap_names(xdp.kept())
            .is_superset(&["CAP_BPF".to_string(), "CAP_NET_ADMIN".to_string()].into()));
        let none = Uses::of("none", false);
        assert_eq!(none.kept(), 0);
        // --announce-interface: addresses come and go on the TUN interface
        let announcing = Uses {
            announce: true,
            ..Uses::of("proxy", false)
        };
        assert_eq!(
            cap_names(announcing.kept()),
            ["CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE"]
                .map(String::from)
                .into()
        );
        let ka = Uses::of("proxy", true);
        assert_eq!(
            cap_names(ka.kept()),
            [
                "CAP_KILL",
                "CAP_NET_ADMIN",
                "CAP_NET_BIND_SERVICE",
                "CAP_NET_RAW",
                "CAP_SETGID",
                "CAP_SETUID"
            ]
            .map(String::from)
            .into()
        );
        assert!(!ka.cut_bounding());
    }

    #[test]
    fn status_lines_give_the_sets() {
        let s = "Name:\trvsd\nCapInh:\t0000000000000000\nCapPrm:\t0000000000000400\n\
                 CapEff:\t0000000000000400\nCapBnd:\t000001ffffffffff\nCapAmb:\t0000000000000000\n\
                 NoNewPrivs:\t1\n";
        let t = parse_status(s);
        assert_eq!(t.permitted, 1 << cap::NET_BIND_SERVICE);
        assert_eq!(t.bounding, 0x1ff_ffff_ffff);
        assert!(t.no_new_privs);
        assert!(done(&t, 1 << cap::NET_BIND_SERVICE, false));
        assert!(!done(&t, 1 << cap::NET_BIND_SERVICE, true));
    }
}
