//! One proxied TCP connection: schedule through the table, connect to the real server
//! (trying another on failure, a bounded number of times), relay both ways with half-close,
//! and report to the table what IPVS would have seen: the handshake, FINs and RSTs as state
//! events, segments and bytes as counters.

use crate::counters::Counters;
use crate::relay::{pump, End};
use crate::sock;
use crate::Ctx;
use rvs_core::{ConnId, Dir, Millis, Packet, TcpFlags, Verdict};
use rvs_dataplane::Shared;
use std::net::SocketAddr;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio::sync::OwnedSemaphorePermit;
use tokio_util::sync::CancellationToken;

/// Counts to flush into the table at least this often while data flows, so `--rate` and
/// the entry's timer follow the traffic.
const FLUSH_EVERY: Duration = Duration::from_secs(1);
const FLUSH_BYTES: u64 = 1 << 20;
/// Keepalive (four setsockopt calls) is armed on the real-server socket only once the
/// connection has lived this long: short connections, most of them, never pay for it, and
/// probes start after 120 s of silence anyway.
const KEEPALIVE_AFTER: Duration = Duration::from_secs(1);

/// `_fds`: the relay's two descriptors in the open-file budget, held until it ends.
pub(crate) async fn serve(
    ctx: Arc<Ctx>,
    client: TcpStream,
    peer: SocketAddr,
    vip: SocketAddr,
    _fds: OwnedSemaphorePermit,
) {
    Counters::inc(&ctx.counters.accepted);
    match connect_upstream(&ctx, peer, vip).await {
        Some((conn, cancel, server)) => relay(&ctx, client, server, conn, cancel).await,
        None => sock::reset_on_close(&client),
    }
}

/// Schedules and connects; a failed connect releases its entry and schedules again.
async fn connect_upstream(
    ctx: &Ctx,
    peer: SocketAddr,
    vip: SocketAddr,
) -> Option<(ConnId, CancellationToken, TcpStream)> {
    // The SYN carries length 0: the proxy counts segments from TCP_INFO instead.
    let syn = Packet::tcp(
        peer.ip(),
        peer.port(),
        vip.ip(),
        vip.port(),
        TcpFlags::SYN,
        0,
    );
    for _ in 0..ctx.opts.connect_attempts {
        let (f, cancel) = {
            let mut t = ctx.shared.table();
            match t.process(ctx.shared.now(), &syn, Dir::In) {
                Verdict::Forward(f) => {
                    // Taken under the table lock, so a concurrent deletion of the server
                    // either happened before (and we would not be here) or will cancel it.
                    let cancel = ctx.registry.token(f.dest);
                    (f, cancel)
                }
                Verdict::Unreachable => {
                    Counters::inc(&ctx.counters.no_dest);
                    return None;
                }
                _ => return None,
            }
        };
        let target = SocketAddr::new(f.daddr, f.dport);
        match tokio::time::timeout(ctx.opts.connect_timeout, TcpStream::connect(target)).await {
            Ok(Ok(s)) => return Some((f.conn, cancel, s)),
            Ok(Err(e)) => tracing::debug!(%target, "connect: {e}"),
            Err(_) => tracing::debug!(%target, "connect: timed out"),
        }
        Counters::inc(&ctx.counters.connect_failed);
        let mut t = ctx.shared.table();
        let now = ctx.shared.now();
        t.expire_now(now, f.conn);
    }
    Counters::inc(&ctx.counters.gave_up);
    None
}

/// Pending counts of one direction, flushed into the table now and then.
struct Acct<'a> {
    shared: &'a Shared,
    conn: ConnId,
    dir: Dir,
    /// The socket whose received segments are this direction's packets.
    sock: &'a TcpStream,
    bytes: u64,
    segs: u64,
    last: Instant,
}

impl<'a> Acct<'a> {
    fn new(shared: &'a Shared, conn: ConnId, dir: Dir, sock: &'a TcpStream) -> Self {
        Acct {
            shared,
            conn,
            dir,
            sock,
            bytes: 0,
            segs: 0,
            last: Instant::now(),
        }
    }

    fn add(&mut self, n: u64) {
        self.bytes += n;
        if self.bytes >= FLUSH_BYTES || self.last.elapsed() >= FLUSH_EVERY {
            self.flush();
        }
    }

    /// The packets (segments received, from TCP_INFO) and bytes not yet reported.
    fn take(&mut self) -> (u64, u64) {
        let segs = sock::segs_in(self.sock);
        let pkts = segs.saturating_sub(self.segs);
        self.segs = segs.max(self.segs);
        self.last = Instant::now();
        (pkts, std::mem::take(&mut self.bytes))
    }

    fn flush(&mut self) {
        let (pkts, bytes) = self.take();
        let mut t = self.shared.table();
        t.conn_account(self.shared.now(), self.conn, self.dir, pkts, bytes);
    }
}

/// Returns when the connection's entry has left the table (its timeout ran out without
/// traffic), the proxy's equivalent of IPVS forgetting an idle connection. `first` is the
/// entry's expiry as last seen, so the first wait needs no look at the table.
pub(crate) async fn entry_expired(shared: &Shared, conn: ConnId, first: Option<Millis>) {
    if let Some(at) = first {
        tokio::time::sleep_until(shared.instant(at).into()).await;
    }
    loop {
        let expires = shared.table().conn(conn).map(|c| c.expires);
        let Some(at) = expires else { return };
        let wake = shared
            .instant(at)
            .max(Instant::now() + Duration::from_secs(1));
        tokio::time::sleep_until(wake.into()).await;
    }
}

enum Outcome {
    Done,
    Reset,
    Cancelled,
    Idle,
}

async fn relay(
    ctx: &Ctx,
    client: TcpStream,
    server: TcpStream,
    conn: ConnId,
    cancel: CancellationToken,
) {
    // The client socket inherited keepalive and TCP_NODELAY from the listener.
    sock::nodelay(&server);
    let expires = {
        // The handshake as a NAT director sees it: SYN+ACK out, ACK in → ESTABLISHED.
        let mut t = ctx.shared.table();
        let now = ctx.shared.now();
        t.conn_packet(now, conn, Dir::Out, TcpFlags::SYN_ACK, 0);
        t.conn_packet(now, conn, Dir::In, TcpFlags::ACK, 0);
        t.conn(conn).map(|c| c.expires)
    };
    Counters::inc(&ctx.counters.relays);
    let mode = ctx.opts.transfer;
    let mut up = Acct::new(&ctx.shared, conn, Dir::In, &client);
    let mut down = Acct::new(&ctx.shared, conn, Dir::Out, &server);
    let (outcome, events) = {
        let mut up_add = |n| up.add(n);
        let mut down_add = |n| down.add(n);
        let mut c2s = pin!(pump(&client, &server, mode, &mut up_add));
        let mut s2c = pin!(pump(&server, &client, mode, &mut down_add));
        let mut idle = pin!(entry_expired(&ctx.shared, conn, expires));
        let mut arm_keepalive = pin!(tokio::time::sleep(KEEPALIVE_AFTER));
        let mut keepalive_armed = false;
        let (mut c2s_done, mut s2c_done) = (false, false);
        let mut outcome = Outcome::Done;
        let mut events: Vec<(Dir, TcpFlags)> = Vec::new();
        while !(c2s_done && s2c_done) {
            tokio::select! {
                end = &mut c2s, if !c2s_done => {
                    c2s_done = true;
                    match end {
                        End::Eof => {
                            // Once both ways are done the close just below sends the FIN.
                            if !s2c_done {
                                sock::shutdown_write(&server);
                            }
                            events.push((Dir::In, TcpFlags::FIN_ACK));
                        }
                        End::Reset(e) => {
                            tracing::debug!("client side: {e}");
                            events.push((Dir::In, TcpFlags::RST));
                            outcome = Outcome::Reset;
                            break;
                        }
                    }
                }
                end = &mut s2c, if !s2c_done => {
                    s2c_done = true;
                    match end {
                        End::Eof => {
                            if !c2s_done {
                                sock::shutdown_write(&client);
                            }
                            events.push((Dir::Out, TcpFlags::FIN_ACK));
                        }
                        End::Reset(e) => {
                            tracing::debug!("server side: {e}");
                            events.push((Dir::Out, TcpFlags::RST));
                            outcome = Outcome::Reset;
                            break;
                        }
                    }
                }
                _ = cancel.cancelled() => { outcome = Outcome::Cancelled; break; }
                _ = &mut idle => { outcome = Outcome::Idle; break; }
                _ = &mut arm_keepalive, if !keepalive_armed => {
                    sock::keepalive(&server);
                    keepalive_armed = true;
                }
            }
            // A first FIN is reported at once, so the state (and -L counts) follow a
            // half-closed connection; the last events go with the final counts below.
            let both_closed = c2s_done && s2c_done;
            if !both_closed && !events.is_empty() {
                let mut t = ctx.shared.table();
                let now = ctx.shared.now();
                for (dir, flags) in events.drain(..) {
                    t.conn_packet(now, conn, dir, flags, 0);
                }
            }
        }
        (outcome, events)
    };
    // Final counts and the closing events under one lock (TCP_INFO read before it).
    let (up_pkts, up_bytes) = up.take();
    let (down_pkts, down_bytes) = down.take();
    {
        let mut t = ctx.shared.table();
        let now = ctx.shared.now();
        t.conn_account(now, conn, Dir::In, up_pkts, up_bytes);
        t.conn_account(now, conn, Dir::Out, down_pkts, down_bytes);
        for (dir, flags) in events {
            t.conn_packet(now, conn, dir, flags, 0);
        }
    }
    match outcome {
        Outcome::Done => {}
        Outcome::Reset => {
            sock::reset_on_close(&client);
            sock::reset_on_close(&server);
        }
        Outcome::Cancelled => {
            Counters::inc(&ctx.counters.dest_removed);
            sock::reset_on_close(&client);
            sock::reset_on_close(&server);
        }
        Outcome::Idle => {
            Counters::inc(&ctx.counters.idle_closed);
            sock::reset_on_close(&client);
            sock::reset_on_close(&server);
        }
    }
    Counters::dec(&ctx.counters.relays);
}
