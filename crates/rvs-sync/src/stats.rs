//! Counters of the sync daemons, shown as `sync.*` facts by `rvsadm --status` (and
//! exported as metrics). Lock-free: the senders, receivers and the installer bump them.

use crate::wire::{EntrySkip, MsgDrop};
use rvs_core::SyncSkip;
use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct Counter(AtomicU64);

impl Counter {
    pub fn add(&self, n: u64) {
        self.0.fetch_add(n, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }

    pub fn set(&self, n: u64) {
        self.0.store(n, Ordering::Relaxed);
    }
}

/// The master's counters.
#[derive(Debug, Default)]
pub struct MasterStats {
    /// Entries offered by the data plane (after its own decision to sync them).
    pub offered: Counter,
    pub sent_messages: Counter,
    pub sent_entries: Counter,
    pub sent_bytes: Counter,
    /// Messages discarded because `sync_qlen_max` messages were already queued.
    pub dropped_queue_full: Counter,
    /// Entries the data plane could not hand over (its own buffer was full).
    pub dropped_plane: Counter,
    /// IPv6 entries left out because `sync_version` is 0.
    pub dropped_v0_ipv6: Counter,
    /// Messages lost to a send error other than a full socket buffer.
    pub send_errors: Counter,
    /// Messages waiting to be sent.
    pub queue_len: Counter,
}

/// The backup's counters.
#[derive(Debug, Default)]
pub struct BackupStats {
    pub received_messages: Counter,
    pub received_entries: Counter,
    pub created: Counter,
    pub updated: Counter,
    /// Inactive updates for entries that moved to another server (ignored).
    pub stale: Counter,
    /// Datagrams longer than `sync_maxlen`.
    pub too_long: Counter,
    /// Datagrams the kernel dropped because the socket buffer was full.
    pub socket_overflow: Counter,
    pub recv_errors: Counter,
    msg: [Counter; MsgDrop::ALL.len()],
    entry: [Counter; EntrySkip::ALL.len()],
    install: [Counter; SyncSkip::ALL.len()],
}

impl BackupStats {
    pub fn dropped(&self, r: MsgDrop) -> &Counter {
        &self.msg[MsgDrop::ALL.iter().position(|x| *x == r).expect("listed")]
    }

    pub fn skipped(&self, r: EntrySkip) -> &Counter {
        &self.entry[EntrySkip::ALL.iter().position(|x| *x == r).expect("listed")]
    }

    pub fn not_installed(&self, r: SyncSkip) -> &Counter {
        &self.install[SyncSkip::ALL.iter().position(|x| *x == r).expect("listed")]
    }
}

impl MasterStats {
    /// `(name, value)` facts under `sync.master.`.
    pub fn facts(&self) -> Vec<(String, String)> {
        [
            ("offered_entries", &self.offered),
            ("sent_messages", &self.sent_messages),
            ("sent_entries", &self.sent_entries),
            ("sent_bytes", &self.sent_bytes),
            ("queue_len", &self.queue_len),
            ("dropped.queue_full", &self.dropped_queue_full),
            ("dropped.plane_buffer_full", &self.dropped_plane),
            ("dropped.v0_ipv6", &self.dropped_v0_ipv6),
            ("dropped.send_error", &self.send_errors),
        ]
        .into_iter()
        .map(|(n, c)| (format!("sync.master.{n}"), c.get().to_string()))
        .collect()
    }
}

impl BackupStats {
    /// `(name, value)` facts under `sync.backup.`: every drop reason, even at 0, so an
    /// operator sees what is checked.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f: Vec<(String, u64)> = vec![
            ("received_messages".into(), self.received_messages.get()),
            ("received_entries".into(), self.received_entries.get()),
            ("installed.created".into(), self.created.get()),
            ("installed.updated".into(), self.updated.get()),
            ("ignored.stale".into(), self.stale.get()),
            ("dropped.too_long".into(), self.too_long.get()),
            ("dropped.socket_overflow".into(), self.socket_overflow.get()),
            ("dropped.recv_error".into(), self.recv_errors.get()),
        ];
        for r in MsgDrop::ALL {
            f.push((format!("dropped.{}", r.name()), self.dropped(r).get()));
        }
        for r in EntrySkip::ALL {
            f.push((format!("skipped.{}", r.name()), self.skipped(r).get()));
        }
        for r in SyncSkip::ALL {
            f.push((format!("skipped.{}", r.name()), self.not_installed(r).get()));
        }
        f.into_iter()
            .map(|(n, v)| (format!("sync.backup.{n}"), v.to_string()))
            .collect()
    }
}
