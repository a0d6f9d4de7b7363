//! Announcing the virtual addresses this director is ready to serve, for a fleet of
//! directors behind equal-cost multipath routing (`docs/fleet.md`).
//!
//! With `--announce-interface NAME` rvsd creates a TUN interface of that name and keeps
//! on it a host address (/32, /128) for every virtual address it is ready to serve. The
//! host's BGP speaker (BIRD's `protocol direct`, FRR's `redistribute connected` with a
//! route map on the interface) announces those addresses and withdraws them when they
//! go. rvsd never talks to the speaker: the kernel's address events are the interface.
//!
//! Why a TUN interface: it exists only while a process holds its descriptor, so when
//! rvsd ends in any way (SIGTERM, a crash, SIGKILL, the OOM killer) the kernel deletes
//! the interface with its addresses, and the speaker withdraws at once. A dummy interface
//! or a route would outlive a dead rvsd and keep drawing traffic to it.
//!
//! A virtual address is announced while the director is not drained (`rvsadm --drain`)
//! and every address service on it can serve: it has a real server with a weight above
//! 0, and its keepalived virtual server has its quorum. One service that cannot serve
//! withdraws the address: the other directors of the fleet, which still can, get its
//! traffic. fwmark services have no address of their own and announce nothing.

use rvs_core::{ServiceKey, Table};
use rvs_vrrp::config::Vip;
use rvs_vrrp::net::link::Netlink;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;
use tokio::sync::Notify;

/// How often the desired addresses are compared with those held (a drain wakes the
/// loop at once).
pub const ANNOUNCE_MS: u64 = 100;

/// The services whose keepalived virtual server has lost its quorum.
pub type QuorumSource = Box<dyn Fn() -> Vec<ServiceKey> + Send + Sync>;

/// Why a virtual address is not announced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Withdrawn {
    /// The operator drained the director (`rvsadm --drain`).
    Drained,
    /// The service's keepalived virtual server lost its quorum.
    QuorumLost(ServiceKey),
    /// The service has no real server with a weight above 0.
    NoServer(ServiceKey),
}

impl std::fmt::Display for Withdrawn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Withdrawn::Drained => f.write_str("drained"),
            Withdrawn::QuorumLost(k) => write!(f, "{k}: quorum lost"),
            Withdrawn::NoServer(k) => write!(f, "{k}: no real server with a weight above 0"),
        }
    }
}

/// Every virtual address of the table's address services, and whether it is announced
/// (`Ok`) or why not. Pure: the rule of the module documentation.
pub fn plan(
    table: &Table,
    quorum_lost: &[ServiceKey],
    drained: bool,
) -> BTreeMap<IpAddr, Result<(), Withdrawn>> {
    let mut out: BTreeMap<IpAddr, Result<(), Withdrawn>> = BTreeMap::new();
    for (id, svc) in table.services() {
        let key = svc.cfg.key;
        let ServiceKey::Addr { addr, .. } = key else {
            continue;
        };
        let verdict = if drained {
            Err(Withdrawn::Drained)
        } else if quorum_lost.contains(&key) {
            Err(Withdrawn::QuorumLost(key))
        } else if !table.dests_of(id).iter().any(|(_, d)| d.cfg.weight > 0) {
            Err(Withdrawn::NoServer(key))
        } else {
            Ok(())
        };
        let slot = out.entry(addr).or_insert(Ok(()));
        if slot.is_ok() {
            *slot = verdict;
        }
    }
    out
}

/// A TUN interface that exists as long as this descriptor is open.
struct Tun {
    fd: OwnedFd,
}

/// `struct ifreq` with the flags member (`ifr_flags`), 40 bytes on Linux.
#[repr(C)]
struct IfReq {
    name: [u8; libc::IFNAMSIZ],
    flags: libc::c_short,
    _pad: [u8; 22],
}

impl IfReq {
    fn new(name: &str) -> std::io::Result<IfReq> {
        if name.is_empty() || name.len() >= libc::IFNAMSIZ || name.contains(['/', ' ', '\0']) {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("{name:?} is not an interface name (1 to 15 characters, no '/' or space)"),
            ));
        }
        let mut r = IfReq {
            name: [0; libc::IFNAMSIZ],
            flags: 0,
            _pad: [0; 22],
        };
        r.name[..name.len()].copy_from_slice(name.as_bytes());
        Ok(r)
    }
}

impl Tun {
    /// Creates the interface (not persistent: it goes with the descriptor) and sets it up.
    fn create(name: &str) -> std::io::Result<Tun> {
        let mut req = IfReq::new(name)?;
        req.flags = (libc::IFF_TUN | libc::IFF_NO_PI) as libc::c_short;
        // SAFETY: a plain open of a path literal.
        let raw = unsafe {
            libc::open(
                c"/dev/net/tun".as_ptr(),
                libc::O_RDWR | libc::O_CLOEXEC | libc::O_NONBLOCK,
            )
        };
        if raw < 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `raw` is a descriptor we just opened and own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: TUNSETIFF reads and writes a `struct ifreq`, which `req` is laid out as.
        if unsafe { libc::ioctl(fd.as_raw_fd(), libc::TUNSETIFF, &mut req) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        set_up(name)?;
        Ok(Tun { fd })
    }
}

/// `ip link set NAME up`, through the interface-flags ioctl.
fn set_up(name: &str) -> std::io::Result<()> {
    // SAFETY: a datagram socket only used for the ioctls below.
    let s = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
    if s < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `s` is ours.
    let s = unsafe { OwnedFd::from_raw_fd(s) };
    let mut req = IfReq::new(name)?;
    // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `ifr_flags` of a `struct ifreq`.
    unsafe {
        if libc::ioctl(s.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
        req.flags |= libc::IFF_UP as libc::c_short;
        if libc::ioctl(s.as_raw_fd(), libc::SIOCSIFFLAGS, &mut req) < 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}

struct State {
    drained: bool,
    /// Addresses on the interface now.
    held: BTreeSet<IpAddr>,
    /// The last plan, for `rvsadm --status`.
    last: BTreeMap<IpAddr, Result<(), Withdrawn>>,
    /// The interface, until [`Announcer::stop`] closes it.
    tun: Option<Tun>,
    /// The last netlink failure logged: a failure that repeats every tick is logged once.
    failing: Option<String>,
}

/// The announcing interface and the loop that keeps its addresses.
pub struct Announcer {
    ifname: String,
    ifindex: u32,
    nl: Netlink,
    state: Mutex<State>,
    quorum: OnceLock<QuorumSource>,
    wake: Notify,
}

impl Announcer {
    /// Creates the interface. Call from within the tokio runtime; [`Announcer::run`]
    /// starts announcing.
    ///
    /// # Errors
    /// The interface cannot be created (a bad name, one that exists: another rvsd holds
    /// it, no `/dev/net/tun`, no CAP_NET_ADMIN) or netlink cannot be opened.
    pub fn create(ifname: &str) -> anyhow::Result<Arc<Announcer>> {
        let what = |e: std::io::Error| {
            let hint = match e.raw_os_error() {
                Some(libc::EBUSY) | Some(libc::EINVAL) | Some(libc::EEXIST) => {
                    " (an interface of that name exists: another rvsd announcing, or not a TUN interface)"
                }
                Some(libc::EPERM) => " (needs CAP_NET_ADMIN)",
                _ => "",
            };
            anyhow::anyhow!("--announce-interface {ifname}: {e}{hint}")
        };
        let tun = Tun::create(ifname).map_err(what)?;
        let cname = std::ffi::CString::new(ifname).map_err(|e| anyhow::anyhow!("{e}"))?;
        // SAFETY: `cname` is a NUL-terminated string that outlives the call.
        let ifindex = unsafe { libc::if_nametoindex(cname.as_ptr()) };
        if ifindex == 0 {
            return Err(what(std::io::Error::last_os_error()));
        }
        let nl = Netlink::new().map_err(what)?;
        Ok(Arc::new(Announcer {
            ifname: ifname.to_string(),
            ifindex,
            nl,
            state: Mutex::new(State {
                drained: false,
                held: BTreeSet::new(),
                last: BTreeMap::new(),
                tun: Some(tun),
                failing: None,
            }),
            quorum: OnceLock::new(),
            wake: Notify::new(),
        }))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Where the quorum of keepalived's virtual servers is read (`-f` with checkers).
    pub fn set_quorum_source(&self, source: QuorumSource) {
        let _ = self.quorum.set(source);
    }

    /// `rvsadm --drain` / `--undrain`: the loop withdraws or re-announces at once.
    pub fn set_drained(&self, drained: bool) {
        let was = std::mem::replace(&mut self.state().drained, drained);
        if was != drained {
            if drained {
                tracing::warn!(interface = %self.ifname, "drained: withdrawing every virtual address");
            } else {
                tracing::info!(interface = %self.ifname, "undrained: announcing the virtual addresses that can be served");
            }
        }
        self.wake.notify_one();
    }

    /// `announce.*` facts for `rvsadm --status`.
    pub fn facts(&self) -> Vec<(String, String)> {
        let st = self.state();
        let mut f = vec![
            ("announce.interface".to_string(), self.ifname.clone()),
            (
                "announce.drained".to_string(),
                if st.drained { "yes" } else { "no" }.to_string(),
            ),
        ];
        for (addr, v) in &st.last {
            let held = st.held.contains(addr);
            let text = match v {
                Ok(()) if held => "announced".to_string(),
                Ok(()) => "announcing".to_string(),
                Err(why) => format!("withdrawn ({why})"),
            };
            f.push((format!("announce.vip.{addr}"), text));
        }
        f
    }

    /// Keeps the interface's addresses in line with [`plan`] until the task is aborted.
    pub async fn run(self: Arc<Self>, daemon: Arc<crate::Daemon>) {
        let mut tick = tokio::time::interval(Duration::from_millis(ANNOUNCE_MS));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = self.wake.notified() => {}
            }
            self.reconcile(&daemon).await;
        }
    }

    async fn reconcile(&self, daemon: &crate::Daemon) {
        // the pool's lock before the table's, never both at once
        let lost = self.quorum.get().map(|q| q()).unwrap_or_default();
        let drained = self.state().drained;
        let want = plan(&daemon.table(), &lost, drained);
        let (add, del) = {
            let mut st = self.state();
            if st.tun.is_none() {
                return;
            }
            let ok: BTreeSet<IpAddr> = want
                .iter()
                .filter_map(|(a, v)| v.is_ok().then_some(*a))
                .collect();
            let add: Vec<IpAddr> = ok.difference(&st.held).copied().collect();
            let del: Vec<IpAddr> = st.held.difference(&ok).copied().collect();
            st.last = want;
            (add, del)
        };
        let mut failure = None;
        for addr in del {
            match self.nl.del_vip(self.ifindex, &Vip::host(addr)).await {
                Ok(()) => {
                    let why = match self.state().last.get(&addr) {
                        Some(Err(w)) => w.to_string(),
                        _ => "no service has it".to_string(),
                    };
                    tracing::warn!(interface = %self.ifname, %addr, "withdrawn: {why}");
                    self.state().held.remove(&addr);
                }
                Err(e) => failure = Some(format!("cannot withdraw {addr}: {e}")),
            }
        }
        for addr in add {
            match self.nl.add_vip(self.ifindex, &Vip::host(addr)).await {
                Ok(()) => {
                    tracing::info!(interface = %self.ifname, %addr, "announced");
                    self.state().held.insert(addr);
                }
                Err(e) => failure = Some(format!("cannot announce {addr}: {e}")),
            }
        }
        // tried again every tick; said once (and once more when it changes or clears)
        let mut st = self.state();
        if st.failing != failure {
            match &failure {
                Some(f) => tracing::error!(interface = %self.ifname, "{f} (retrying)"),
                None => tracing::info!(interface = %self.ifname, "announcing works again"),
            }
            st.failing = failure;
        }
    }

    /// rvsd stops: every address is withdrawn (the interface goes, and with it the
    /// addresses and the speaker's routes).
    pub fn stop(&self) {
        let mut st = self.state();
        if let Some(tun) = st.tun.take() {
            drop(tun.fd);
            tracing::info!(interface = %self.ifname, addresses = st.held.len(), "stopping: the announcing interface is gone, every virtual address withdrawn");
        }
        st.held.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Change, DestConfig, Protocol, ServiceConfig};

    /// A TCP service from `ADDR:PORT`.
    fn key(vip: &str) -> ServiceKey {
        let a: std::net::SocketAddr = vip.parse().unwrap();
        let (addr, port, proto) = (a.ip(), a.port(), Protocol::Tcp);
        ServiceKey::Addr { proto, addr, port }
    }

    fn table(services: &[(ServiceKey, &[u32])]) -> Table {
        let mut t = Table::new();
        for (k, weights) in services {
            t.apply(&Change::AddService(ServiceConfig::new(*k)))
                .unwrap();
            for (i, w) in weights.iter().enumerate() {
                let dest = DestConfig::new([10, 9, 0, i as u8 + 1].into(), 80).with_weight(*w);
                t.apply(&Change::AddDest { svc: *k, dest }).unwrap();
            }
        }
        t
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn an_address_is_announced_while_every_service_on_it_has_a_server_with_weight() {
        let (a80, a443, b80) = (key("10.0.0.1:80"), key("10.0.0.1:443"), key("10.0.0.2:80"));
        let t = table(&[(a80, &[1, 0]), (a443, &[0, 3]), (b80, &[2])]);
        let p = plan(&t, &[], false);
        assert_eq!(p.len(), 2);
        assert_eq!(p[&ip("10.0.0.1")], Ok(()));
        assert_eq!(p[&ip("10.0.0.2")], Ok(()));
        // weight 0 everywhere on one service withdraws its whole address
        let t = table(&[(a80, &[1]), (a443, &[0, 0]), (b80, &[2])]);
        let p = plan(&t, &[], false);
        assert_eq!(p[&ip("10.0.0.1")], Err(Withdrawn::NoServer(a443)));
        assert_eq!(p[&ip("10.0.0.2")], Ok(()));
        // a service without servers
        let t = table(&[(b80, &[])]);
        assert_eq!(
            plan(&t, &[], false)[&ip("10.0.0.2")],
            Err(Withdrawn::NoServer(b80))
        );
    }

    #[test]
    fn a_lost_quorum_or_a_drain_withdraws() {
        let (a80, b80) = (key("10.0.0.1:80"), key("10.0.0.2:80"));
        // the sorry server keeps a weight in the table: the quorum says it cannot serve
        let t = table(&[(a80, &[1]), (b80, &[1])]);
        let p = plan(&t, &[b80], false);
        assert_eq!(p[&ip("10.0.0.1")], Ok(()));
        assert_eq!(p[&ip("10.0.0.2")], Err(Withdrawn::QuorumLost(b80)));
        let p = plan(&t, &[], true);
        assert!(p.values().all(|v| *v == Err(Withdrawn::Drained)), "{p:?}");
        assert_eq!(
            Withdrawn::QuorumLost(b80).to_string(),
            "TCP 10.0.0.2:80: quorum lost"
        );
    }

    #[test]
    fn fwmark_services_announce_nothing() {
        let fwm = ServiceKey::Fwmark {
            mark: 7,
            family: rvs_core::Family::V4,
        };
        let t = table(&[(fwm, &[1])]);
        assert!(plan(&t, &[], false).is_empty());
    }

    #[test]
    fn interface_names_are_checked_before_the_kernel_sees_them() {
        for bad in ["", "a/b", "has space", "sixteen-chars-xx"] {
            assert!(IfReq::new(bad).is_err(), "{bad:?}");
        }
        assert!(IfReq::new("rvs-vip").is_ok());
    }
}
