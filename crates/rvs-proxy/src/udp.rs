//! UDP virtual services: one socket on VIP:port; each client address is a session with its
//! own connected socket towards its real server, living as long as the table's UDP entry
//! (the `udp` timeout, re-armed by every datagram either way). Replies go back from VIP:port.
//! One-packet services (`-o`) schedule every datagram on its own.

use crate::counters::Counters;
use crate::Ctx;
use rvs_core::{ConnId, Dir, Packet, TcpFlags, Verdict};
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::UdpSocket;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// How long a one-packet datagram's socket waits for replies.
const OPS_REPLY_WINDOW: Duration = Duration::from_secs(5);
const MAX_DATAGRAM: usize = 65_536;

#[derive(Clone)]
struct Session {
    conn: ConnId,
    upstream: Arc<UdpSocket>,
    done: CancellationToken,
    /// The upstream socket's place in the open-file budget.
    _fd: Arc<OwnedSemaphorePermit>,
}

type Sessions = Arc<Mutex<HashMap<SocketAddr, Session>>>;

/// IP packet length of a datagram with `payload` bytes: what IPVS counts.
fn ip_len(payload: usize, v6: bool) -> u32 {
    (payload + if v6 { 48 } else { 28 }) as u32
}

pub(crate) async fn serve(ctx: Arc<Ctx>, sock: UdpSocket, vip: SocketAddr) {
    let sock = Arc::new(sock);
    let sessions: Sessions = Arc::default();
    let mut buf = vec![0u8; MAX_DATAGRAM];
    loop {
        let (n, peer) = match sock.recv_from(&mut buf).await {
            Ok(r) => r,
            Err(e) => {
                tracing::debug!(%vip, "udp recv: {e}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let len = ip_len(n, vip.is_ipv6());
        let data = &buf[..n];
        let existing = sessions.lock().unwrap().get(&peer).cloned();
        if let Some(s) = existing {
            let alive = !s.done.is_cancelled() && {
                let mut t = ctx.shared.table();
                t.conn_packet(ctx.shared.now(), s.conn, Dir::In, TcpFlags::default(), len)
            };
            if alive {
                if s.upstream.send(data).await.is_err() {
                    Counters::inc(&ctx.counters.udp_dropped);
                }
                continue;
            }
            s.done.cancel();
        }
        open_session(&ctx, &sock, &sessions, peer, vip, data, len).await;
    }
}

async fn open_session(
    ctx: &Arc<Ctx>,
    sock: &Arc<UdpSocket>,
    sessions: &Sessions,
    peer: SocketAddr,
    vip: SocketAddr,
    data: &[u8],
    len: u32,
) {
    // the upstream socket's descriptor first: without one, nothing is scheduled
    let Some(fd) = ctx.fds.try_take(1) else {
        ctx.fds
            .spent(&ctx.counters, format_args!("udp service {vip}"));
        Counters::inc(&ctx.counters.udp_dropped);
        return;
    };
    let pkt = Packet::udp(peer.ip(), peer.port(), vip.ip(), vip.port(), len);
    let (f, one_packet, cancel) = {
        let mut t = ctx.shared.table();
        match t.process(ctx.shared.now(), &pkt, Dir::In) {
            Verdict::Forward(f) => {
                let ops = t.conn(f.conn).is_none();
                let cancel = ctx.registry.token(f.dest);
                (f, ops, cancel)
            }
            _ => {
                Counters::inc(&ctx.counters.udp_dropped);
                return;
            }
        }
    };
    let target = SocketAddr::new(f.daddr, f.dport);
    let local: IpAddr = match target {
        SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        SocketAddr::V6(_) => Ipv6Addr::UNSPECIFIED.into(),
    };
    let upstream = match UdpSocket::bind((local, 0)).await {
        Ok(u) => u,
        Err(e) => {
            tracing::warn!("udp upstream socket: {e}");
            Counters::inc(&ctx.counters.udp_dropped);
            return;
        }
    };
    if upstream.connect(target).await.is_err() || upstream.send(data).await.is_err() {
        Counters::inc(&ctx.counters.udp_dropped);
        return;
    }
    let upstream = Arc::new(upstream);
    let session = Session {
        conn: f.conn,
        upstream: upstream.clone(),
        done: cancel,
        _fd: Arc::new(fd),
    };
    if !one_packet {
        sessions.lock().unwrap().insert(peer, session.clone());
    }
    let ctx = ctx.clone();
    let sock = sock.clone();
    let sessions = sessions.clone();
    tokio::spawn(async move {
        Counters::inc(&ctx.counters.udp_sessions);
        replies(&ctx, &sock, &session, peer, one_packet).await;
        if !one_packet {
            let mut map = sessions.lock().unwrap();
            if map.get(&peer).is_some_and(|s| s.conn == session.conn) {
                map.remove(&peer);
            }
        }
        Counters::dec(&ctx.counters.udp_sessions);
    });
}

/// Carries replies from the real server back to the client until the entry expires, the
/// server is deleted, or (one-packet) the reply window closes.
async fn replies(ctx: &Ctx, sock: &UdpSocket, s: &Session, peer: SocketAddr, one_packet: bool) {
    let window = async {
        if one_packet {
            tokio::time::sleep(OPS_REPLY_WINDOW).await
        } else {
            crate::tcp::entry_expired(&ctx.shared, s.conn, None).await
        }
    };
    tokio::pin!(window);
    loop {
        tokio::select! {
            r = s.upstream.readable() => {
                if r.is_err() {
                    return;
                }
                let mut buf = vec![0u8; MAX_DATAGRAM];
                let n = match s.upstream.try_recv(&mut buf) {
                    Ok(n) => n,
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
                    // ICMP port unreachable from the server surfaces here; keep the session
                    // until its entry expires, as IPVS would.
                    Err(_) => continue,
                };
                // Counted before it is sent, as IPVS counts a packet (ip_vs_out_stats)
                // before transmitting it and as `serve` counts requests: whoever has seen
                // the reply finds it counted.
                if !one_packet {
                    let mut t = ctx.shared.table();
                    let len = ip_len(n, peer.is_ipv6());
                    t.conn_packet(ctx.shared.now(), s.conn, Dir::Out, TcpFlags::default(), len);
                }
                if sock.send_to(&buf[..n], peer).await.is_err() {
                    Counters::inc(&ctx.counters.udp_dropped);
                }
            }
            _ = &mut window => return,
            _ = s.done.cancelled() => return,
        }
    }
}
