//! The runner's view of interfaces: link state for tracking, sockets (re)opened when an
//! interface appears or changes index, and our own addresses (source of adverts,
//! tie-break of equal priorities, recognising our own adverts).

use super::link::LinkInfo;
use super::runner::{read_loop, sock_key, Runner, SockEntry, SockKey};
use super::sock::VrrpSocket;
use crate::engine::InstanceId;
use crate::packet::Family;
use std::collections::BTreeSet;
use std::net::IpAddr;
use std::sync::Arc;

impl Runner {
    pub(super) async fn on_links(&mut self, seen: Vec<(String, Option<LinkInfo>)>) {
        let now = self.now();
        for (name, info) in seen {
            let before = self.links.get(&name).cloned();
            match &info {
                Some(l) => {
                    self.links.insert(name.clone(), l.clone());
                }
                None => {
                    self.links.remove(&name);
                }
            }
            let index = info.as_ref().map(|i| i.index);
            if before.as_ref().map(|b| b.index) != index || self.untried_socket(&name, index) {
                self.reopen_sockets(&name);
            }
            let up = info.as_ref().is_some_and(|l| l.up) && self.sockets_ok(&name);
            let out = self.engine.set_interface(now, &name, up);
            if !out.is_empty() {
                tracing::warn!(interface = %name, up, "vrrp: tracked interface changed state");
            }
            self.execute(out).await;
        }
        self.set_local_addresses();
    }

    /// Sockets of every instance on `ifname` could be opened (else they are treated as a
    /// down interface: FAULT).
    fn sockets_ok(&self, ifname: &str) -> bool {
        self.nets
            .values()
            .filter(|n| n.setup.interface == ifname)
            .all(|n| self.socks.contains_key(&sock_key(&n.setup)))
    }

    /// An instance on `ifname` needs a socket not yet tried on this interface index.
    fn untried_socket(&self, ifname: &str, index: Option<u32>) -> bool {
        self.nets
            .values()
            .map(|n| sock_key(&n.setup))
            .filter(|k| k.0 == ifname)
            .any(|k| !self.socks.contains_key(&k) && self.tried.get(&k) != Some(&index))
    }

    fn reopen_sockets(&mut self, ifname: &str) {
        let keys: BTreeSet<SockKey> = self
            .nets
            .values()
            .map(|n| sock_key(&n.setup))
            .filter(|k| k.0 == ifname)
            .collect();
        for k in &keys {
            if let Some(old) = self.socks.remove(k) {
                old.reader.abort();
            }
        }
        let link = self.links.get(ifname).cloned();
        for k in &keys {
            self.tried.insert(k.clone(), link.as_ref().map(|l| l.index));
        }
        let Some(link) = link else {
            return;
        };
        for k in keys {
            let group = self
                .nets
                .values()
                .find(|n| sock_key(&n.setup) == k)
                .map(|n| n.setup.dst)
                .filter(|_| !k.2);
            match VrrpSocket::open(k.1, ifname, link.index, group) {
                Ok(s) => {
                    let sock = Arc::new(s);
                    let reader =
                        tokio::spawn(read_loop(k.clone(), sock.clone(), self.msg_tx.clone()));
                    self.socks.insert(k, SockEntry { sock, reader });
                }
                Err(e) => {
                    tracing::error!(interface = %ifname, "vrrp: cannot open the VRRP socket: {e}")
                }
            }
        }
        self.prune_sockets();
    }

    /// Closes the sockets no instance needs any more (after a reload).
    pub(super) fn prune_sockets(&mut self) {
        let wanted: BTreeSet<SockKey> = self.nets.values().map(|n| sock_key(&n.setup)).collect();
        self.socks.retain(|k, s| {
            let keep = wanted.contains(k);
            if !keep {
                s.reader.abort();
            }
            keep
        });
    }

    /// Our address on each instance's interface: the tie-break of equal priorities and
    /// the source of adverts.
    fn set_local_addresses(&mut self) {
        let ids: Vec<InstanceId> = self.nets.keys().copied().collect();
        for id in ids {
            let a = self.source_address(id);
            if let Some(i) = self.engine.get_mut(id) {
                i.set_local_address(a);
            }
        }
    }

    /// `unicast_src_ip`/`mcast_src_ip`, else the interface's first IPv4 address / first
    /// link-local address that is not one of our virtual addresses.
    pub fn source_address(&self, id: InstanceId) -> Option<IpAddr> {
        let n = self.nets.get(&id)?;
        if let Some(a) = n.setup.src_ip {
            return Some(a);
        }
        let link = self.links.get(&n.setup.interface)?;
        let vips: BTreeSet<IpAddr> = self
            .nets
            .values()
            .flat_map(|n| n.setup.vrrp.installed().into_iter().map(|v| v.addr))
            .collect();
        match n.setup.vrrp.family {
            Family::V4 => link
                .v4
                .iter()
                .map(|a| IpAddr::V4(*a))
                .find(|a| !vips.contains(a)),
            Family::V6 => link
                .v6_link_local
                .iter()
                .map(|a| IpAddr::V6(*a))
                .find(|a| !vips.contains(a)),
        }
    }

    pub(super) fn is_local(&self, ifname: &str, a: &IpAddr) -> bool {
        self.links.get(ifname).is_some_and(|l| match a {
            IpAddr::V4(v) => l.v4.contains(v),
            IpAddr::V6(v) => l.v6_link_local.contains(v),
        }) && !self
            .nets
            .values()
            .any(|n| n.setup.vrrp.installed().iter().any(|v| v.addr == *a))
    }
}
