//! Process set-up done before any thread starts: entering a network namespace (`-s`) and
//! forking into the background (`--fork`).
//!
//! The fork is written here over libc: it must happen before the async runtime exists
//! (a forked multi-threaded process keeps only the calling thread), and the parent must
//! learn whether the daemon came up, which the small daemonizing crates do not offer.
//! The parent waits on a pipe: the child writes `ok` once ready (or an error), and the
//! parent exits 0 (or prints the error and exits 1).

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{FromRawFd, OwnedFd};

/// Enters network namespace `name` (`/run/netns/NAME`, as `ip netns add` makes it).
/// Must run while the process has one thread.
pub fn enter_netns(name: &str) -> std::io::Result<()> {
    let path = std::path::Path::new("/run/netns").join(name);
    let f = File::open(&path).map_err(|e| {
        std::io::Error::new(
            e.kind(),
            format!("network namespace {name} ({}): {e}", path.display()),
        )
    })?;
    use std::os::fd::AsRawFd;
    // SAFETY: setns on an open namespace file.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        let e = std::io::Error::last_os_error();
        return Err(std::io::Error::new(
            e.kind(),
            format!("entering network namespace {name}: {e}"),
        ));
    }
    Ok(())
}

/// The child's end: tells the waiting parent how the start went.
pub struct Readiness(Option<File>);

impl Readiness {
    /// Nobody waits (the daemon did not fork).
    pub fn none() -> Readiness {
        Readiness(None)
    }

    pub fn ready(&mut self) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(b"ok");
        }
    }

    pub fn failed(&mut self, why: &str) {
        if let Some(mut f) = self.0.take() {
            let _ = f.write_all(why.as_bytes());
        }
    }
}

fn pipe() -> std::io::Result<(File, File)> {
    let mut fds = [0; 2];
    // SAFETY: pipe2 fills two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: both are fresh descriptors we own.
    Ok(unsafe {
        (
            File::from(OwnedFd::from_raw_fd(fds[0])),
            File::from(OwnedFd::from_raw_fd(fds[1])),
        )
    })
}

/// Forks into the background: returns in the daemon (a new session, cwd `/`, stdio on
/// /dev/null); the original process never returns (it exits with the daemon's start
/// status). Must run while the process has one thread.
pub fn daemonize() -> std::io::Result<Readiness> {
    let (mut rx, tx) = pipe()?;
    // SAFETY: single-threaded here; the child only continues normal execution.
    match unsafe { libc::fork() } {
        -1 => return Err(std::io::Error::last_os_error()),
        0 => {}
        _ => {
            drop(tx);
            let mut msg = String::new();
            let _ = rx.read_to_string(&mut msg);
            if msg == "ok" {
                std::process::exit(0);
            }
            if msg.is_empty() {
                msg = "the daemon exited before it was ready".into();
            }
            eprintln!("rvsd: {msg}");
            std::process::exit(1);
        }
    }
    drop(rx);
    // SAFETY: plain libc calls in the child.
    unsafe {
        libc::setsid();
        let root = c"/";
        libc::chdir(root.as_ptr());
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if null >= 0 {
            libc::dup2(null, 0);
            libc::dup2(null, 1);
            libc::dup2(null, 2);
            if null > 2 {
                libc::close(null);
            }
        }
    }
    Ok(Readiness(Some(tx)))
}
