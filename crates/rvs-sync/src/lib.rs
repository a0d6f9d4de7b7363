//! # rvs-sync — the IPVS connection synchronisation daemon
//!
//! Wire-compatible with Linux IPVS (`net/netfilter/ipvs/ip_vs_sync.c`): a master sends the
//! entries of its connection table to a UDP multicast group (224.0.0.81:8848 by default),
//! backups install them, so that when VRRP moves the virtual address the new director
//! forwards every established flow to the same real server.
//!
//! * [`wire`]: the message formats, version 0 and 1, both ways;
//! * [`master`]: buffering and sending what the data plane decided to sync;
//! * [`backup`]: receiving, checking and handing entries to the data plane's installer;
//! * [`sock`]: the multicast sockets; [`stats`]: the counters;
//! * [`SyncDaemons`]: one master and one backup at most, started and stopped as
//!   `ipvsadm --start-daemon` / `--stop-daemon` (or keepalived's `lvs_sync_daemon`) ask.
//!
//! Which entries a master sends and when (`ip_vs_sync_conn_needed`) and how a backup
//! installs them (`ip_vs_proc_conn`) are the data plane's business: `rvs_core::sync` for
//! the model, the BPF program for XDP.

pub mod backup;
pub mod master;
pub mod sock;
pub mod stats;
pub mod wire;

pub use backup::{Backup, Installer};
pub use master::Master;

use rvs_core::{Errno, SyncDaemonConfig, SyncParams, TableError};
use sock::Interface;
use stats::{BackupStats, MasterStats};
use std::net::IpAddr;
use std::sync::Arc;

/// A daemon's settings with the kernel's defaults and clamps applied (what `ipvsadm -L
/// --daemon` shows).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub master: bool,
    pub ifc: Interface,
    pub syncid: u8,
    pub maxlen: u16,
    pub group: IpAddr,
    pub port: u16,
    pub ttl: u8,
    /// Sending or receiving threads (`sync_ports`).
    pub ports: u32,
}

impl Resolved {
    /// The settings as the table records them.
    pub fn config(&self) -> SyncDaemonConfig {
        SyncDaemonConfig {
            master: self.master,
            mcast_ifn: self.ifc.name.clone(),
            syncid: self.syncid,
            sync_maxlen: self.maxlen,
            mcast_group: Some(self.group),
            mcast_port: self.port,
            mcast_ttl: self.ttl,
        }
    }
}

/// `start_sync_thread`'s checks and defaults: the interface must exist; group 224.0.0.81,
/// port 8848, TTL 1 unless given; the message size fits a 1500-byte MTU on a master (the
/// interface's MTU, 1500 to 65535, on a backup), an explicit one clamped to 1 (master) or
/// 1024 (backup) .. 65535 less the IP and UDP headers.
///
/// # Errors
/// ENODEV for an interface that does not exist.
pub fn resolve(cfg: &SyncDaemonConfig, ports: u32) -> Result<Resolved, TableError> {
    let ifc = sock::interface(&cfg.mcast_ifn).map_err(|_| {
        TableError::new(
            Errno::NoDevice,
            format!("unknown mcast interface: {}", cfg.mcast_ifn),
        )
    })?;
    let group = cfg.mcast_group.unwrap_or(IpAddr::V4(sock::DEFAULT_GROUP));
    if !group.is_multicast() {
        return Err(TableError::new(
            Errno::Invalid,
            format!("{group} is not a multicast group"),
        ));
    }
    let hlen: u32 = if group.is_ipv6() { 40 + 8 } else { 20 + 8 };
    let (mtu, min) = if cfg.master {
        (1500, 1)
    } else {
        (ifc.mtu.clamp(1500, 65535), 1024)
    };
    let maxlen = match cfg.sync_maxlen {
        0 => mtu - hlen,
        n => (n as u32).clamp(min, 65535 - hlen),
    };
    Ok(Resolved {
        master: cfg.master,
        ifc,
        syncid: cfg.syncid,
        maxlen: maxlen as u16,
        group,
        port: if cfg.mcast_port == 0 {
            sock::DEFAULT_PORT
        } else {
            cfg.mcast_port
        },
        ttl: if cfg.mcast_ttl == 0 { 1 } else { cfg.mcast_ttl },
        ports,
    })
}

/// The running daemons: one master and one backup at most (both may run).
#[derive(Default)]
pub struct SyncDaemons {
    master: Option<Master>,
    backup: Option<Backup>,
    master_stats: Arc<MasterStats>,
    backup_stats: Arc<BackupStats>,
}

fn io_error(what: &str, e: std::io::Error) -> TableError {
    let errno = match e.raw_os_error() {
        Some(libc::ENODEV) => Errno::NoDevice,
        Some(libc::ENOMEM) | Some(libc::ENOBUFS) => Errno::NoMemory,
        Some(libc::EAFNOSUPPORT) => Errno::AfNotSupported,
        _ => Errno::Invalid,
    };
    TableError::new(errno, format!("{what}: {e}"))
}

impl SyncDaemons {
    pub fn new() -> SyncDaemons {
        SyncDaemons::default()
    }

    /// Starts a master or a backup (on the current tokio runtime). `install` is used by a
    /// backup. Returns the settings as resolved.
    ///
    /// # Errors
    /// EEXIST when one of that role runs, ENODEV for an unknown interface, or the socket
    /// error; nothing is started then.
    pub fn start(
        &mut self,
        cfg: &SyncDaemonConfig,
        params: &SyncParams,
        install: Installer,
    ) -> Result<SyncDaemonConfig, TableError> {
        let running = if cfg.master {
            self.master.is_some()
        } else {
            self.backup.is_some()
        };
        if running {
            return Err(TableError::new(Errno::Exists, "daemon has already run"));
        }
        // sync_ports is read when the first daemon starts
        let ports = self
            .master
            .as_ref()
            .map(|m| m.cfg.ports)
            .or(self.backup.as_ref().map(|b| b.cfg.ports))
            .unwrap_or(params.ports);
        let r = resolve(cfg, ports)?;
        let out = r.config();
        if cfg.master {
            let m = Master::start(r, params, self.master_stats.clone())
                .map_err(|e| io_error("starting the sync master", e))?;
            self.master = Some(m);
        } else {
            let b = Backup::start(r, params, self.backup_stats.clone(), install)
                .map_err(|e| io_error("starting the sync backup", e))?;
            self.backup = Some(b);
        }
        Ok(out)
    }

    /// Stops the daemon of a role; false when none ran.
    pub fn stop(&mut self, master: bool) -> bool {
        if master {
            self.master.take().is_some()
        } else {
            self.backup.take().is_some()
        }
    }

    pub fn master(&self) -> Option<&Master> {
        self.master.as_ref()
    }

    pub fn backup(&self) -> Option<&Backup> {
        self.backup.as_ref()
    }

    pub fn set_params(&self, p: &SyncParams) {
        if let Some(m) = &self.master {
            m.set_params(p);
        }
    }

    /// `sync.*` facts for `rvsadm --status`: the state of each role and its counters
    /// (counters survive a stop and start, as totals since rvsd started).
    pub fn facts(&self) -> Vec<(String, String)> {
        let state = |on: bool| if on { "running" } else { "stopped" }.to_string();
        let mut f = vec![
            ("sync.master".to_string(), state(self.master.is_some())),
            ("sync.backup".to_string(), state(self.backup.is_some())),
        ];
        f.extend(self.master_stats.facts());
        f.extend(self.backup_stats.facts());
        f
    }

    pub fn master_stats(&self) -> &Arc<MasterStats> {
        &self.master_stats
    }

    pub fn backup_stats(&self) -> &Arc<BackupStats> {
        &self.backup_stats
    }
}
