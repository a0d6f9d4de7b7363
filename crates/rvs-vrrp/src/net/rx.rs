//! The receive path: a packet from a socket through the checks of
//! [`crate::validate`] to the engine, or to a drop counter (logged, rate-limited).

use super::runner::{sock_key, Runner, SockKey, LOG_EVERY};
use crate::drop::DropReason;
use crate::engine::InstanceId;
use crate::ipv4;
use crate::keepalived::InstanceSetup;
use crate::packet::Family;
use crate::validate::{self, RxMeta, Verdict};
use std::net::IpAddr;
use tokio::time::Instant;

impl Runner {
    pub(super) async fn on_packet(&mut self, key: SockKey, data: Vec<u8>, meta: Option<RxMeta>) {
        let (payload, meta) = match key.1 {
            Family::V4 => match ipv4::parse(&data) {
                Ok((h, p)) => (
                    p,
                    RxMeta {
                        src: IpAddr::V4(h.src),
                        dst: IpAddr::V4(h.dst),
                        ttl: Some(h.ttl),
                    },
                ),
                Err(r) => {
                    self.unattributed.add(r);
                    return;
                }
            },
            Family::V6 => match meta {
                Some(m) => (&data[..], m),
                None => return,
            },
        };
        let members: Vec<(InstanceId, &InstanceSetup)> = self
            .nets
            .iter()
            .filter(|(_, n)| sock_key(&n.setup) == key)
            .map(|(id, n)| (*id, &n.setup))
            .collect();
        let verdict = validate::receive(
            payload,
            &meta,
            key.1,
            key.2,
            |vrid| {
                members
                    .iter()
                    .find(|(_, s)| s.vrrp.vrid == vrid)
                    .map(|(id, s)| (*id, &s.vrrp))
            },
            |a| self.is_local(&key.0, a),
        );
        match verdict {
            Verdict::Accept(id, advert) => {
                let peers_only = self.nets.get(&id).is_some_and(|n| {
                    n.setup.check_unicast_src && !n.setup.peers.iter().any(|p| p.addr == meta.src)
                });
                if peers_only {
                    self.dropped(Some(id), DropReason::NotUnicastPeer, &meta);
                    return;
                }
                let out = self.engine.advert(self.now(), id, advert, meta.src);
                self.execute(out).await;
            }
            Verdict::Drop(id, r) => self.dropped(id, r, &meta),
        }
    }

    /// Counts a drop and logs it, at most once per [`LOG_EVERY`] per instance and reason.
    fn dropped(&mut self, id: Option<InstanceId>, r: DropReason, meta: &RxMeta) {
        let who = match id.and_then(|i| self.nets.get_mut(&i)) {
            Some(n) => {
                n.drops.add(r);
                n.setup.vrrp.name.clone()
            }
            None => {
                self.unattributed.add(r);
                String::from("-")
            }
        };
        if r == DropReason::UnknownVrid || r == DropReason::OwnAdvert {
            tracing::debug!(instance = %who, reason = %r, src = %meta.src, "vrrp: packet dropped");
            return;
        }
        let now = Instant::now();
        let e = self
            .logged
            .entry((who.clone(), r))
            .or_insert((now - LOG_EVERY * 2, 0));
        if now.duration_since(e.0) >= LOG_EVERY {
            tracing::warn!(
                instance = %who,
                reason = %r,
                src = %meta.src,
                suppressed = e.1,
                "vrrp: advert dropped"
            );
            *e = (now, 0);
        } else {
            e.1 += 1;
        }
    }
}
