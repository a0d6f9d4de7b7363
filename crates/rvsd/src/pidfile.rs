//! keepalived's PID files (`-p`, `-r`, `-c`): written once the daemon runs, removed when
//! it stops, and a file that names a live process stops a second daemon from starting
//! (keepalived: "daemon is already running").

use std::io;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum PidError {
    #[error("{path} names process {pid}, which is running: is another rvsd or keepalived running? (remove the file if not)")]
    Running { path: PathBuf, pid: i32 },
    #[error("cannot write the PID file {path}: {err}")]
    Write { path: PathBuf, err: io::Error },
}

/// A PID file this process wrote; removed on drop if it still names this process.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    pid: i32,
}

fn read_pid(path: &Path) -> Option<i32> {
    std::fs::read_to_string(path).ok()?.trim().parse().ok()
}

fn alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    pid > 0
        && (unsafe { libc::kill(pid, 0) } == 0
            || io::Error::last_os_error().raw_os_error() == Some(libc::EPERM))
}

impl PidFile {
    /// Writes this process's PID to `path` (its directory is created).
    ///
    /// # Errors
    /// The file names another live process, or cannot be written.
    pub fn create(path: &Path) -> Result<PidFile, PidError> {
        // SAFETY: getpid has no preconditions.
        let me = unsafe { libc::getpid() };
        if let Some(pid) = read_pid(path) {
            if pid != me && alive(pid) {
                return Err(PidError::Running {
                    path: path.to_path_buf(),
                    pid,
                });
            }
        }
        let write = |err| PidError::Write {
            path: path.to_path_buf(),
            err,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(write)?;
        }
        crate::state_file::write_atomic(path, format!("{me}\n").as_bytes(), 0o644)
            .map_err(write)?;
        Ok(PidFile {
            path: path.to_path_buf(),
            pid: me,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if read_pid(&self.path) == Some(self.pid) {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_refuses_a_live_owner_replaces_a_stale_one_and_goes_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("run/rvsd.pid");
        // a live process that is not us: our parent
        let parent = unsafe { libc::getppid() };
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, format!("{parent}\n")).unwrap();
        assert!(matches!(PidFile::create(&p), Err(PidError::Running { .. })));
        // a stale one (no such process)
        std::fs::write(&p, "2147483000\n").unwrap();
        let f = PidFile::create(&p).unwrap();
        let me = std::process::id().to_string();
        assert_eq!(std::fs::read_to_string(&p).unwrap().trim(), me);
        drop(f);
        assert!(!p.exists());
    }
}
