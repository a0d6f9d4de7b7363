//! The runtime table survives a restart of rvsd, as the kernel's IPVS table survives a
//! restart of keepalived or ipvsadm: after every change a writer thread saves the table
//! (services, real servers, timeouts, sync daemons) to a state file, atomically (a temporary
//! file renamed over the old one), and a starting rvsd replays it before anything else.
//!
//! The file is JSON: `{"version": 1, "requests": [...]}` where `requests` are control
//! requests of [`rvs_api::Request`] in the order that rebuilds the table exactly (real
//! servers keep their list order). It lives beside the control socket by default
//! (`/run/rvs/rvsd.state`): on a tmpfs, so like the kernel's table it is gone after a
//! reboot, where the saved rules of the boot-time restore take over (`rvsd.service`).
//!
//! Writes are coalesced: a change wakes the writer, which saves the latest table; changes
//! made while it writes are saved by its next round. A clean stop waits for the last write.
//! Counters are not kept (they restart from zero, as after `ipvsadm -Z`).

use crate::Daemon;
use rvs_api::{Reply, Request};
use rvs_core::{Change, ServiceKey};
use serde::{Deserialize, Serialize};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::time::{Duration, Instant};

/// The current layout of the file.
pub const VERSION: u32 = 1;

#[derive(Debug, Serialize, Deserialize)]
pub struct StateFile {
    pub version: u32,
    pub requests: Vec<Request>,
    /// The services that came from keepalived.conf. keepalived removes its virtual servers
    /// when it stops; rvsd keeps them over a restart (no traffic is cut), and removes at
    /// start those the configuration no longer has.
    #[serde(default)]
    pub keepalived: Vec<ServiceKey>,
}

/// The services keepalived.conf owns now (kept up to date by the daemon).
pub type Owned = Arc<Mutex<Vec<ServiceKey>>>;

#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("reading {path}: {err}")]
    Read { path: PathBuf, err: io::Error },
    #[error("{path} is not an rvsd state file: {err}")]
    Parse {
        path: PathBuf,
        err: serde_json::Error,
    },
    #[error("{path} has layout version {found}; this rvsd reads version {VERSION}")]
    Version { path: PathBuf, found: u32 },
}

/// Writes `bytes` to `path` so that a reader sees the old file or the new one, never a
/// part: a temporary file in the same directory, flushed to disk, renamed over `path`.
pub fn write_atomic(path: &Path, bytes: &[u8], mode: u32) -> io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no file name"))?;
    let tmp = dir.unwrap_or(Path::new(".")).join(format!(
        ".{}.tmp{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// The requests that rebuild the daemon's table as it is now.
pub fn capture(daemon: &Daemon) -> StateFile {
    capture_with(daemon, &[])
}

fn capture_with(daemon: &Daemon, owned: &[ServiceKey]) -> StateFile {
    let (services, timeouts, daemons) = {
        let t = daemon.table();
        (t.snapshot(), t.timeouts.triple(), t.daemons().to_vec())
    };
    let mut requests = vec![Request::Change(Change::SetTimeouts {
        tcp: timeouts.0,
        tcpfin: timeouts.1,
        udp: timeouts.2,
    })];
    for s in services {
        let key = s.cfg.key;
        requests.push(Request::Change(Change::AddService(s.cfg)));
        // The listing is newest first; adding oldest first rebuilds the same order.
        for d in s.dests.into_iter().rev() {
            requests.push(Request::Change(Change::AddDest {
                svc: key,
                dest: d.cfg,
            }));
        }
    }
    requests.extend(
        daemons
            .into_iter()
            .map(|d| Request::Change(Change::StartDaemon(d))),
    );
    StateFile {
        version: VERSION,
        requests,
        keepalived: owned.to_vec(),
    }
}

/// Reads a state file; `Ok(None)` when there is none.
pub fn load(path: &Path) -> Result<Option<StateFile>, StateError> {
    let text = match std::fs::read(path) {
        Ok(t) => t,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(StateError::Read {
                path: path.to_path_buf(),
                err,
            })
        }
    };
    let probe: serde_json::Value =
        serde_json::from_slice(&text).map_err(|err| StateError::Parse {
            path: path.to_path_buf(),
            err,
        })?;
    let found = probe.get("version").and_then(|v| v.as_u64()).unwrap_or(0) as u32;
    if found != VERSION {
        return Err(StateError::Version {
            path: path.to_path_buf(),
            found,
        });
    }
    let state = serde_json::from_value(probe).map_err(|err| StateError::Parse {
        path: path.to_path_buf(),
        err,
    })?;
    Ok(Some(state))
}

/// What replaying a state file did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Replayed {
    pub services: usize,
    pub servers: usize,
    /// Requests the table refused (each is logged).
    pub refused: usize,
}

/// Applies a state file to the daemon's table.
pub fn replay(daemon: &Daemon, state: StateFile) -> Replayed {
    let mut r = Replayed::default();
    let kinds: Vec<(bool, bool)> = state
        .requests
        .iter()
        .map(|q| {
            (
                matches!(q, Request::Change(Change::AddService(_))),
                matches!(q, Request::Change(Change::AddDest { .. })),
            )
        })
        .collect();
    let texts: Vec<String> = state.requests.iter().map(crate::audit::describe).collect();
    let Reply::Batch(replies) = daemon.handle(Request::Batch(state.requests)) else {
        return r;
    };
    for (i, reply) in replies.iter().enumerate() {
        match reply {
            Reply::Error(e) => {
                r.refused += 1;
                tracing::warn!("state file: `{}` refused: {}", texts[i], e.message);
            }
            _ => {
                r.services += usize::from(kinds[i].0);
                r.servers += usize::from(kinds[i].1);
            }
        }
    }
    r
}

#[derive(Default)]
struct Gen {
    /// Changes announced.
    wanted: u64,
    /// Changes saved (the generation the last write covered).
    done: u64,
    stop: bool,
}

/// The writer: a thread that saves the table whenever it changed.
pub struct Writer {
    path: PathBuf,
    gen: Mutex<Gen>,
    cv: Condvar,
    owned: Owned,
}

impl Writer {
    /// Starts the writer thread for `daemon` and saves the table once.
    pub fn start(path: PathBuf, daemon: &Arc<Daemon>) -> Arc<Writer> {
        let w = Arc::new(Writer {
            path,
            gen: Mutex::new(Gen {
                wanted: 1,
                ..Gen::default()
            }),
            cv: Condvar::new(),
            owned: Owned::default(),
        });
        let weak: Weak<Daemon> = Arc::downgrade(daemon);
        let me = w.clone();
        std::thread::Builder::new()
            .name("rvsd-state".into())
            .spawn(move || me.run(weak))
            .expect("spawning the state writer");
        w
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The services keepalived.conf owns from now on; saved with the next write.
    pub fn set_keepalived(&self, keys: Vec<ServiceKey>) {
        *self.owned.lock().unwrap_or_else(|p| p.into_inner()) = keys;
        self.changed();
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Gen> {
        self.gen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The table changed: save it soon. Never blocks on the disk.
    pub fn changed(&self) {
        self.lock().wanted += 1;
        self.cv.notify_all();
    }

    /// Waits until every change announced so far is on disk (at most `timeout`).
    pub fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut g = self.lock();
        let target = g.wanted;
        while g.done < target {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            g = self
                .cv
                .wait_timeout(g, left)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        true
    }

    /// Ends the thread after its last write.
    pub fn stop(&self) {
        self.lock().stop = true;
        self.cv.notify_all();
    }

    fn run(&self, daemon: Weak<Daemon>) {
        let mut failing = false;
        loop {
            let target = {
                let mut g = self.lock();
                while g.wanted == g.done && !g.stop {
                    g = self.cv.wait(g).unwrap_or_else(|p| p.into_inner());
                }
                if g.wanted == g.done {
                    return;
                }
                g.wanted
            };
            let Some(d) = daemon.upgrade() else { return };
            let owned = self.owned.lock().unwrap_or_else(|p| p.into_inner()).clone();
            let state = capture_with(&d, &owned);
            drop(d);
            let body = serde_json::to_vec(&state).expect("requests serialize");
            match write_atomic(&self.path, &body, 0o600) {
                Ok(()) => {
                    if failing {
                        tracing::info!(path = %self.path.display(), "state file written again");
                    }
                    failing = false;
                }
                Err(e) => {
                    if !failing {
                        tracing::error!(
                            path = %self.path.display(),
                            "cannot write the state file: the table will not survive a restart: {e}"
                        );
                    }
                    failing = true;
                }
            }
            self.lock().done = target;
            self.cv.notify_all();
        }
    }
}

/// The state file of a control socket: `rvsd.sock` → `rvsd.state` in the same directory.
pub fn default_path(socket: &Path) -> PathBuf {
    socket.with_extension("state")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{DestConfig, Protocol, ServiceConfig, ServiceKey, Table};
    use rvs_dataplane::{NoDataPlane, Shared};

    fn daemon() -> Arc<Daemon> {
        Arc::new(Daemon::new(
            Arc::new(Shared::new(Table::new())),
            Box::new(NoDataPlane),
        ))
    }

    fn key(port: u16) -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.1.0.1".parse().unwrap(),
            port,
        }
    }

    #[test]
    fn a_captured_table_replays_to_the_same_listing() {
        let a = daemon();
        let k = key(80);
        assert_eq!(
            a.handle(Request::Change(Change::AddService(
                ServiceConfig::new(k).with_scheduler("wrr")
            ))),
            Reply::Ok
        );
        for (i, w) in [(11, 3), (12, 2), (13, 1)] {
            let mut d = DestConfig::new(format!("10.2.0.{i}").parse().unwrap(), 8080);
            d.weight = w;
            assert_eq!(
                a.handle(Request::Change(Change::AddDest { svc: k, dest: d })),
                Reply::Ok
            );
        }
        assert_eq!(
            a.handle(Request::Change(Change::SetTimeouts {
                tcp: 100,
                tcpfin: 20,
                udp: 30
            })),
            Reply::Ok
        );
        let state = capture(&a);
        let text = serde_json::to_vec(&state).unwrap();
        let back: StateFile = serde_json::from_slice(&text).unwrap();

        let b = daemon();
        let r = replay(&b, back);
        assert_eq!(
            r,
            Replayed {
                services: 1,
                servers: 3,
                refused: 0
            }
        );
        let list = |d: &Daemon| d.handle(Request::ListServices { key: None });
        assert_eq!(list(&a), list(&b));
        assert_eq!(
            b.handle(Request::GetTimeouts),
            a.handle(Request::GetTimeouts)
        );
    }

    #[test]
    fn the_writer_saves_every_change_atomically() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rvsd.state");
        let d = daemon();
        let w = Writer::start(path.clone(), &d);
        assert!(w.flush(Duration::from_secs(5)));
        assert_eq!(load(&path).unwrap().unwrap().requests.len(), 1);
        d.handle(Request::Change(Change::AddService(ServiceConfig::new(
            key(81),
        ))));
        w.changed();
        assert!(w.flush(Duration::from_secs(5)));
        let s = load(&path).unwrap().unwrap();
        assert!(s
            .requests
            .iter()
            .any(|r| matches!(r, Request::Change(Change::AddService(c)) if c.key == key(81))));
        // no temporary file left behind
        let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(names.len(), 1);
        w.stop();
    }

    #[test]
    fn another_layout_version_is_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        std::fs::write(&path, br#"{"version": 99, "requests": []}"#).unwrap();
        let e = load(&path).unwrap_err().to_string();
        assert!(e.contains("version 99"), "{e}");
        std::fs::write(&path, b"garbage").unwrap();
        assert!(load(&path)
            .unwrap_err()
            .to_string()
            .contains("not an rvsd state file"));
        assert!(load(&dir.path().join("none")).unwrap().is_none());
    }
}
