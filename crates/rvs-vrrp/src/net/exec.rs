//! Carrying out what the state machine decided: adverts on the raw socket, addresses
//! through netlink, gratuitous ARP / NA bursts, notify scripts.

use super::link::ipv6_forwarding;
use super::runner::{sock_key, Runner};
use crate::checksum::IPPROTO_VRRP;
use crate::config::Vip;
use crate::engine::{InstanceId, Output};
use crate::frames;
use crate::ipv4::{self, TOS_INTERNETWORK_CONTROL};
use crate::machine::{advert_for, Action, NotifyKind};
use crate::packet::TTL;
use rvs_keepalived::Script;
use std::net::IpAddr;

impl Runner {
    pub(crate) async fn execute_one(&mut self, o: Output) {
        match o {
            Output::Instance { id, action } => match action {
                Action::SendAdvert { priority } => self.send_advert(id, priority),
                Action::AddVips(v) => self.vips(id, &v, true).await,
                Action::RemoveVips(v) => self.vips(id, &v, false).await,
                Action::SendGarp { addrs, repeat } => self.garp(id, &addrs, repeat),
                Action::Notify { kind, priority } => self.notify(id, kind, priority),
                Action::NotifyMasterRxLowerPri { from, priority } => {
                    if let Some(n) = self.nets.get(&id) {
                        tracing::info!(
                            instance = %n.setup.vrrp.name, %from, priority,
                            "vrrp: master received a lower-priority advert, answering"
                        );
                        if let Some(s) = n.setup.notify.master_rx_lower_pri.clone() {
                            self.spawn_script(&s, &[], "notify_master_rx_lower_pri");
                        }
                    }
                }
                Action::SetTimer { .. } | Action::CancelTimer(_) => {}
            },
            Output::Group { group, kind } => {
                tracing::warn!(group = %group, state = kind.name(), "vrrp: sync group changed state");
                let Some(g) = self.groups.iter().find(|g| g.group.name == group) else {
                    return;
                };
                let n = g.notify.clone();
                let specific = match kind {
                    NotifyKind::Master => n.master,
                    NotifyKind::Backup => n.backup,
                    NotifyKind::Fault => n.fault,
                    NotifyKind::Stop => n.stop,
                };
                if let Some(s) = specific {
                    self.spawn_script(&s, &[], "sync group notify");
                }
                if let Some(s) = n.generic {
                    let args = ["GROUP".to_string(), group, kind.name().into(), "0".into()];
                    self.spawn_script(&s, &args, "sync group notify");
                }
            }
        }
    }

    fn send_advert(&mut self, id: InstanceId, priority: u8) {
        let Some(n) = self.nets.get(&id) else { return };
        let key = sock_key(&n.setup);
        let name = n.setup.vrrp.name.clone();
        let advert = advert_for(&n.setup.vrrp, priority);
        let dsts: Vec<IpAddr> = if n.setup.peers.is_empty() {
            vec![n.setup.dst]
        } else {
            n.setup.peers.iter().map(|p| p.addr).collect()
        };
        let ttl = if n.setup.peers.is_empty() {
            TTL
        } else {
            n.setup.unicast_ttl
        };
        let src = self.source_address(id);
        let sock = self.socks.get(&key).map(|s| s.sock.clone());
        let mut errors = 0u64;
        match (sock, src) {
            (Some(sock), Some(src)) => {
                for dst in dsts {
                    let payload = advert.encode(src, dst);
                    let r = match (src, dst) {
                        (IpAddr::V4(s), IpAddr::V4(d)) => {
                            self.ip_id = self.ip_id.wrapping_add(1).max(1);
                            let h = ipv4::Header {
                                tos: TOS_INTERNETWORK_CONTROL,
                                id: self.ip_id,
                                ttl,
                                protocol: IPPROTO_VRRP,
                                src: s,
                                dst: d,
                            };
                            sock.send_v4(&ipv4::build(&h, &payload), d)
                        }
                        (IpAddr::V6(s), IpAddr::V6(d)) => sock.send_v6(&payload, s, d),
                        _ => Err(std::io::Error::from(std::io::ErrorKind::InvalidInput)),
                    };
                    if let Err(e) = r {
                        errors += 1;
                        tracing::warn!(instance = %name, %dst, "vrrp: cannot send advert: {e}");
                    }
                }
            }
            (sock, src) => {
                errors += 1;
                tracing::warn!(
                    instance = %name,
                    socket = sock.is_some(),
                    source = ?src,
                    "vrrp: cannot send advert: no socket or no source address"
                );
            }
        }
        if let Some(n) = self.nets.get_mut(&id) {
            n.send_errors += errors;
        }
    }

    /// The interface an address goes on: its `dev`, else the instance's.
    fn vip_link(&self, id: InstanceId, v: &Vip) -> Option<(String, u32, [u8; 6])> {
        let n = self.nets.get(&id)?;
        let dev = v.dev.clone().unwrap_or_else(|| n.setup.interface.clone());
        let l = self.links.get(&dev)?;
        Some((dev, l.index, l.mac))
    }

    async fn vips(&mut self, id: InstanceId, vips: &[Vip], add: bool) {
        let Some(name) = self.nets.get(&id).map(|n| n.setup.vrrp.name.clone()) else {
            return;
        };
        for v in vips {
            let Some((dev, index, _)) = self.vip_link(id, v) else {
                tracing::warn!(instance = %name, vip = %v.addr, "vrrp: interface of the address is gone");
                continue;
            };
            let r = if add {
                self.nl.add_vip(index, v).await
            } else {
                self.nl.del_vip(index, v).await
            };
            match r {
                Ok(()) => tracing::info!(
                    instance = %name,
                    vip = %format!("{}/{}", v.addr, v.prefix),
                    dev = %dev,
                    "vrrp: {} virtual address",
                    if add { "added" } else { "removed" }
                ),
                Err(e) => tracing::error!(
                    instance = %name, vip = %v.addr, dev = %dev,
                    "vrrp: cannot {} virtual address: {e}",
                    if add { "add" } else { "remove" }
                ),
            }
        }
    }

    /// A burst: `repeat` rounds over the addresses (keepalived `vrrp_send_link_update`),
    /// spaced by `garp_interval` when set.
    fn garp(&mut self, id: InstanceId, addrs: &[IpAddr], repeat: u32) {
        let Some(n) = self.nets.get(&id) else { return };
        let installed = n.setup.vrrp.installed();
        let gap = n.setup.vrrp.garp.interval;
        let mut burst = Vec::new();
        for a in addrs {
            let vip = installed
                .iter()
                .find(|v| v.addr == *a)
                .cloned()
                .unwrap_or_else(|| Vip::host(*a));
            let Some((dev, index, mac)) = self.vip_link(id, &vip) else {
                continue;
            };
            let frame = match a {
                IpAddr::V4(v) => frames::gratuitous_arp(mac, *v),
                IpAddr::V6(v) => frames::unsolicited_na(mac, *v, ipv6_forwarding(&dev)),
            };
            burst.push((index, frame));
        }
        let Some(frames) = &self.frames else { return };
        let mut sent = 0u64;
        if gap.is_zero() {
            for _ in 0..repeat {
                for (index, f) in &burst {
                    if frames.send(*index, f).is_ok() {
                        sent += 1;
                    }
                }
            }
        } else if let Ok(sock) = super::sock::FrameSocket::open() {
            let n = u64::from(repeat) * burst.len() as u64;
            tokio::spawn(async move {
                for _ in 0..repeat {
                    for (index, f) in &burst {
                        let _ = sock.send(*index, f);
                        tokio::time::sleep(gap).await;
                    }
                }
            });
            sent = n;
        }
        if let Some(n) = self.nets.get_mut(&id) {
            n.garp_sent += sent;
        }
    }

    /// keepalived: the state's own script (no arguments), then `notify` with
    /// `INSTANCE NAME STATE PRIORITY`. An instance deleted by a reload runs
    /// `notify_deleted` (state `DELETED`) instead of `notify_stop`.
    fn notify(&mut self, id: InstanceId, kind: NotifyKind, priority: u8) {
        let Some(n) = self.nets.get(&id) else { return };
        let name = n.setup.vrrp.name.clone();
        // keepalived logs transitions at INFO; a change of owner of the VIPs is what an
        // operator must notice, so rvs logs it at WARN.
        tracing::warn!(instance = %name, state = kind.name(), priority, "vrrp: entering {} state", kind.name());
        let notify = n.setup.notify.clone();
        let deleting = n.deleting && kind == NotifyKind::Stop;
        let (specific, word) = match kind {
            NotifyKind::Master => (notify.master, "MASTER"),
            NotifyKind::Backup => (notify.backup, "BACKUP"),
            NotifyKind::Fault => (notify.fault, "FAULT"),
            NotifyKind::Stop if deleting => (notify.deleted, "DELETED"),
            NotifyKind::Stop => (notify.stop, "STOP"),
        };
        if let Some(s) = specific {
            self.spawn_script(&s, &[], "notify");
        }
        if let Some(s) = notify.generic {
            let args = [
                "INSTANCE".to_string(),
                name,
                word.to_string(),
                priority.to_string(),
            ];
            self.spawn_script(&s, &args, "notify");
        }
    }

    fn spawn_script(&self, s: &Script, args: &[String], why: &str) {
        match self.env.command(s, args).spawn() {
            Ok(mut child) => {
                tracing::debug!(script = %s, why, "vrrp: running script");
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(e) => tracing::warn!(script = %s, why, "vrrp: cannot run script: {e}"),
        }
    }
}
