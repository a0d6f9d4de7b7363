//! Network-namespace labs for end-to-end tests. Every namespace name carries a prefix
//! unique to the process and lab (`rvst<pid>x<n>-<name>`), and everything a lab created is
//! deleted by name when it is dropped, also when the test fails.

use anyhow::{bail, Context, Result};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

static LABS: AtomicU32 = AtomicU32::new(0);

fn run(cmd: &mut Command) -> Result<Output> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(out)
}

/// A set of namespaces that is torn down on drop.
pub struct Lab {
    prefix: String,
    namespaces: Vec<String>,
}

impl Lab {
    pub fn new() -> Lab {
        let n = LABS.fetch_add(1, Ordering::Relaxed);
        Lab {
            prefix: format!("rvst{}x{}-", std::process::id(), n),
            namespaces: Vec::new(),
        }
    }

    /// The full name of a namespace of this lab.
    pub fn ns(&self, name: &str) -> String {
        format!("{}{}", self.prefix, name)
    }

    /// Creates a namespace with its loopback up.
    pub fn add_ns(&mut self, name: &str) -> Result<String> {
        let full = self.ns(name);
        run(Command::new("ip").args(["netns", "add", &full]))?;
        self.namespaces.push(full.clone());
        self.exec(name, &["ip", "link", "set", "lo", "up"])?;
        Ok(full)
    }

    /// Runs a command inside a namespace of this lab and returns its stdout.
    pub fn exec(&self, name: &str, argv: &[&str]) -> Result<String> {
        let full = self.ns(name);
        let out = run(Command::new("ip").args(["netns", "exec", &full]).args(argv))?;
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    }

    /// A command prepared to run inside a namespace (for processes to spawn and keep).
    pub fn command(&self, name: &str, program: &str) -> Command {
        let mut c = Command::new("ip");
        c.args(["netns", "exec", &self.ns(name), program]);
        c
    }

    /// A veth pair between two namespaces, with addresses (CIDR) and links up.
    pub fn veth(
        &self,
        a: &str,
        a_if: &str,
        a_addr: &str,
        b: &str,
        b_if: &str,
        b_addr: &str,
    ) -> Result<()> {
        run(Command::new("ip").args([
            "link",
            "add",
            a_if,
            "netns",
            &self.ns(a),
            "type",
            "veth",
            "peer",
            "name",
            b_if,
            "netns",
            &self.ns(b),
        ]))?;
        for (ns, ifname, addr) in [(a, a_if, a_addr), (b, b_if, b_addr)] {
            if !addr.is_empty() {
                self.exec(ns, &["ip", "addr", "add", addr, "dev", ifname])?;
            }
            self.exec(ns, &["ip", "link", "set", ifname, "up"])?;
        }
        Ok(())
    }
}

/// Runs `f` on a thread that entered network namespace `ns` (a full name, as
/// [`Lab::ns`] gives it): the sockets it creates live there.
pub fn in_ns<T: Send>(ns: &str, f: impl FnOnce() -> T + Send) -> T {
    let path = format!("/var/run/netns/{ns}");
    std::thread::scope(|s| {
        s.spawn(|| {
            let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
            use std::os::fd::AsRawFd;
            // SAFETY: setns on a valid namespace descriptor; it only changes this thread.
            let rc = unsafe { libc::setns(file.as_raw_fd(), libc::CLONE_NEWNET) };
            assert_eq!(rc, 0, "setns {path}: {}", std::io::Error::last_os_error());
            f()
        })
        .join()
        .expect("thread in namespace panicked")
    })
}

impl Default for Lab {
    fn default() -> Self {
        Lab::new()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for ns in self.namespaces.iter().rev() {
            // Kill what still runs inside, then delete the namespace by name.
            if let Ok(out) = Command::new("ip").args(["netns", "pids", ns]).output() {
                for pid in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    if let Ok(pid) = pid.parse::<i32>() {
                        // SAFETY: sending a signal has no memory-safety preconditions.
                        unsafe {
                            libc::kill(pid, libc::SIGKILL);
                        }
                    }
                }
            }
            let _ = Command::new("ip").args(["netns", "del", ns]).status();
        }
    }
}
