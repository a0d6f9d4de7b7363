//! The sync backup (`sync_thread_backup`, `ip_vs_process_message`).
//!
//! A receiving thread per port reads datagrams of at most `sync_maxlen` bytes, checks each
//! whole message ([`crate::wire::decode`]: a malformed one is dropped with its reason) and
//! hands the entries to the data plane's installer, which adds or updates them in its
//! connection table (`ip_vs_proc_conn`) or says why not. Every outcome is counted. The
//! work per datagram is bounded (255 entries at most); what arrives faster than it is
//! processed is dropped by the kernel and counted (`SO_RXQ_OVFL`).

use crate::sock::recv_counting;
use crate::stats::BackupStats;
use crate::wire::decode;
use crate::Resolved;
use rvs_core::{SyncEntry, SyncInstall, SyncParams, SyncSkip};
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use tokio::net::UdpSocket;

/// Installs received entries into the data plane; one result per entry.
pub type Installer =
    Arc<dyn Fn(Vec<SyncEntry>) -> Vec<Result<SyncInstall, SyncSkip>> + Send + Sync>;

/// A running backup.
pub struct Backup {
    tasks: Vec<tokio::task::JoinHandle<()>>,
    pub cfg: Resolved,
}

impl Backup {
    /// Opens a socket per receiving thread and starts them on the current tokio runtime.
    ///
    /// # Errors
    /// A socket that cannot be set up (another process holds the port without
    /// SO_REUSEADDR, the group cannot be joined).
    pub fn start(
        cfg: Resolved,
        params: &SyncParams,
        stats: Arc<BackupStats>,
        install: Installer,
    ) -> io::Result<Backup> {
        let mut socks = Vec::new();
        for id in 0..cfg.ports {
            let s = crate::sock::recv_socket(
                &cfg.ifc,
                cfg.group,
                cfg.port.wrapping_add(id as u16),
                params.sock_size,
            )?;
            socks.push(UdpSocket::from_std(s)?);
        }
        let tasks = socks
            .into_iter()
            .map(|sock| {
                tokio::spawn(receiver(
                    sock,
                    cfg.syncid,
                    cfg.maxlen as usize,
                    stats.clone(),
                    install.clone(),
                ))
            })
            .collect();
        tracing::info!(
            interface = %cfg.ifc.name, syncid = cfg.syncid, maxlen = cfg.maxlen,
            group = %cfg.group, port = cfg.port, threads = cfg.ports,
            "sync backup started"
        );
        Ok(Backup { tasks, cfg })
    }
}

impl Drop for Backup {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        tracing::info!(interface = %self.cfg.ifc.name, "sync backup stopped");
    }
}

async fn receiver(
    sock: UdpSocket,
    syncid: u8,
    maxlen: usize,
    stats: Arc<BackupStats>,
    install: Installer,
) {
    let mut buf = vec![0u8; maxlen];
    let mut overflow_seen = 0u32;
    loop {
        if sock.readable().await.is_err() {
            stats.recv_errors.add(1);
            return;
        }
        loop {
            let r = sock.try_io(tokio::io::Interest::READABLE, || {
                recv_counting(sock.as_raw_fd(), &mut buf)
            });
            let (n, truncated, drops) = match r {
                Ok(v) => v,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) => {
                    tracing::debug!("sync backup: receive: {e}");
                    stats.recv_errors.add(1);
                    break;
                }
            };
            if let Some(d) = drops {
                stats
                    .socket_overflow
                    .add(d.wrapping_sub(overflow_seen) as u64);
                overflow_seen = d;
            }
            if truncated || n > maxlen {
                stats.too_long.add(1);
                continue;
            }
            process(&buf[..n], syncid, &stats, &install);
        }
    }
}

/// One datagram: checked, counted, installed.
pub fn process(buf: &[u8], syncid: u8, stats: &BackupStats, install: &Installer) {
    let m = match decode(buf, syncid) {
        Ok(m) => m,
        Err(reason) => {
            stats.dropped(reason).add(1);
            return;
        }
    };
    stats.received_messages.add(1);
    stats
        .received_entries
        .add((m.entries.len() + m.skipped.len()) as u64);
    for s in m.skipped {
        stats.skipped(s).add(1);
    }
    if m.entries.is_empty() {
        return;
    }
    for r in install(m.entries) {
        match r {
            Ok(SyncInstall::Created) => stats.created.add(1),
            Ok(SyncInstall::Updated) => stats.updated.add(1),
            Ok(SyncInstall::Stale) => stats.stale.add(1),
            Err(s) => stats.not_installed(s).add(1),
        }
    }
}
