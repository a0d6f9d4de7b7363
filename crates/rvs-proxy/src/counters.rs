//! The proxy's own counters (what the table's per-server stats do not say), shown by
//! `rvsadm --status`.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

#[derive(Default)]
pub struct Counters {
    /// Client connections accepted.
    pub accepted: AtomicU64,
    /// Client connections refused because no real server was available.
    pub no_dest: AtomicU64,
    /// Connection attempts to real servers that failed (refused, reset, timed out).
    pub connect_failed: AtomicU64,
    /// Client connections given up after every attempt failed.
    pub gave_up: AtomicU64,
    /// Relays running now.
    pub relays: AtomicU64,
    /// Relays ended because their connection entry timed out.
    pub idle_closed: AtomicU64,
    /// Relays reset because their real server was deleted.
    pub dest_removed: AtomicU64,
    /// Accept failures for lack of file descriptors or memory.
    pub fd_exhausted: AtomicU64,
    /// Times new connections or UDP sessions found the proxy's open-file budget spent.
    pub conn_limit: AtomicU64,
    /// UDP sessions open now.
    pub udp_sessions: AtomicU64,
    /// UDP datagrams dropped (no server, send failure).
    pub udp_dropped: AtomicU64,
}

impl Counters {
    pub fn inc(c: &AtomicU64) {
        c.fetch_add(1, Relaxed);
    }

    pub fn dec(c: &AtomicU64) {
        c.fetch_sub(1, Relaxed);
    }

    pub fn facts(&self) -> Vec<(String, String)> {
        let f = |n: &str, c: &AtomicU64| (format!("proxy.{n}"), c.load(Relaxed).to_string());
        vec![
            f("accepted", &self.accepted),
            f("no_dest", &self.no_dest),
            f("connect_failed", &self.connect_failed),
            f("gave_up", &self.gave_up),
            f("relays", &self.relays),
            f("idle_closed", &self.idle_closed),
            f("dest_removed", &self.dest_removed),
            f("fd_exhausted", &self.fd_exhausted),
            f("conn_limit", &self.conn_limit),
            f("udp_sessions", &self.udp_sessions),
            f("udp_dropped", &self.udp_dropped),
        ]
    }
}
