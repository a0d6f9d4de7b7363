//! Kernel IPVS as an oracle: a user-mode Linux kernel with the real `ip_vs` modules, the
//! host's `ipvsadm` and tools, booted in a few seconds to run a shell scenario as root.
//!
//! The host kernel has no IPVS; Debian unstable's `user-mode-linux` package has it built
//! as modules (older UML kernels die on this CPU). [`Uml::get`] downloads that package and
//! the `libc6` it is linked against from the Debian archive the host's apt already uses,
//! unpacks both into a cache (`$RVS_UML_CACHE`, default `~/.cache/rvs-uml`) and points the
//! binary's interpreter at that libc. Inside, the host's `/` is the read-only root
//! (hostfs), `/run`, `/tmp` and `/var` are tmpfs, and the scenario's output directory is
//! `$OUT`. [`Uml::spawn`] can give the kernel NICs bound (raw sockets) to interfaces of a
//! lab namespace, so a kernel director sits on the same segment as rvsd.

use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The modules a scenario may need, loaded at boot.
const MODULES: &[&str] = &[
    "ip_vs",
    "ip_vs_rr",
    "ip_vs_wrr",
    "ip_vs_lc",
    "ip_vs_wlc",
    "ip_vs_sh",
    "ip_vs_mh",
    "ip_vs_dh",
    "veth",
    "bridge",
    "dummy",
];

/// A prepared user-mode Linux kernel.
#[derive(Clone, Debug)]
pub struct Uml {
    linux: PathBuf,
    modroot: PathBuf,
}

/// The Debian packages the host needs to prepare and run UML scenarios.
pub const HOST_PACKAGES: &[&str] = &["patchelf", "kmod", "ipvsadm", "iproute2"];

fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os("RVS_UML_CACHE") {
        return PathBuf::from(d);
    }
    let home = std::env::var_os("HOME").unwrap_or_else(|| "/root".into());
    Path::new(&home).join(".cache/rvs-uml")
}

fn run(cmd: &mut Command) -> Result<()> {
    let out = cmd.output().with_context(|| format!("running {cmd:?}"))?;
    if !out.status.success() {
        bail!(
            "{cmd:?} failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The first Debian archive in the host's apt sources (not the security one).
fn archive() -> Result<String> {
    let mut texts = Vec::new();
    if let Ok(rd) = std::fs::read_dir("/etc/apt/sources.list.d") {
        for e in rd.flatten() {
            if e.path()
                .extension()
                .is_some_and(|x| x == "sources" || x == "list")
            {
                texts.push(std::fs::read_to_string(e.path()).unwrap_or_default());
            }
        }
    }
    texts.push(std::fs::read_to_string("/etc/apt/sources.list").unwrap_or_default());
    for t in &texts {
        for line in t.lines() {
            let line = line.trim();
            let uri = if let Some(u) = line.strip_prefix("URIs:") {
                u.split_whitespace().next()
            } else if line.starts_with("deb ") {
                line.split_whitespace()
                    .find(|w| w.starts_with("http://") || w.starts_with("https://"))
            } else {
                None
            };
            if let Some(u) = uri {
                if !u.contains("security") {
                    return Ok(u.to_string());
                }
            }
        }
    }
    bail!("no Debian archive in the apt sources")
}

impl Uml {
    /// The kernel, prepared on first use (a download of two packages; later calls reuse
    /// the cache). Concurrent callers wait for one another.
    ///
    /// # Errors
    /// No network to the Debian archive, a missing host tool ([`HOST_PACKAGES`]).
    pub fn get() -> Result<Uml> {
        let cache = cache_dir();
        std::fs::create_dir_all(&cache).with_context(|| format!("creating {}", cache.display()))?;
        let lock = std::fs::File::create(cache.join(".lock"))?;
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file we keep open for the duration.
        unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };
        let uml = Uml {
            linux: cache.join("linux.uml"),
            modroot: cache.join("modroot"),
        };
        if !uml.linux.exists() {
            prepare(&cache).context("preparing user-mode Linux")?;
        }
        Ok(uml)
    }

    /// Boots the kernel and runs `script` (sh) as root; returns at once. `netns`: the
    /// namespace UML runs in (its NICs `vec0`, `vec1`... are bound to `ifaces` there);
    /// `out`: a host directory the script sees as `$OUT` (its stdout and stderr go to
    /// `out/stdout` and `out/stderr`, its exit status to `out/rc`).
    ///
    /// # Errors
    /// The out directory cannot be written, UML cannot be started.
    pub fn spawn(
        &self,
        netns: Option<&str>,
        ifaces: &[&str],
        script: &str,
        out: &Path,
    ) -> Result<UmlRun> {
        std::fs::create_dir_all(out)?;
        let out = out.canonicalize()?;
        std::fs::write(out.join(".scenario"), script)?;
        let _ = std::fs::remove_file(out.join("rc"));
        let init = out.join(".init");
        std::fs::write(&init, init_script(&self.modroot, &out))?;
        use std::os::unix::fs::PermissionsExt;
        for f in [&init, &out.join(".scenario")] {
            std::fs::set_permissions(f, std::fs::Permissions::from_mode(0o755))?;
        }
        let mut cmd = match netns {
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(&self.linux);
                c
            }
            None => Command::new(&self.linux),
        };
        let mem = std::env::var("RVS_UML_MEM").unwrap_or_else(|_| "384M".into());
        cmd.arg(format!("mem={mem}"))
            .args(["rootfstype=hostfs", "ro"])
            .arg(format!("init={}", init.display()))
            .args(["con=null", "con0=fd:0,fd:1"]);
        for (i, ifn) in ifaces.iter().enumerate() {
            cmd.arg(format!("vec{i}:transport=raw,ifname={ifn}"));
        }
        let console = std::fs::File::create(out.join("console.log"))?;
        let child = cmd
            .stdin(Stdio::null())
            .stdout(console.try_clone()?)
            .stderr(console)
            .spawn()
            .context("starting user-mode Linux")?;
        Ok(UmlRun { child, out })
    }

    /// [`Uml::spawn`] and wait.
    ///
    /// # Errors
    /// As `spawn`, or the scenario did not finish within `timeout`.
    pub fn run(
        &self,
        netns: Option<&str>,
        ifaces: &[&str],
        script: &str,
        out: &Path,
        timeout: Duration,
    ) -> Result<Finished> {
        self.spawn(netns, ifaces, script, out)?.wait(timeout)
    }
}

/// A running scenario.
pub struct UmlRun {
    child: Child,
    out: PathBuf,
}

/// What a scenario left.
#[derive(Debug)]
pub struct Finished {
    pub rc: i32,
    pub stdout: String,
    pub stderr: String,
}

impl UmlRun {
    pub fn out(&self) -> &Path {
        &self.out
    }

    /// Waits until the scenario created `$OUT/name` (bounded).
    ///
    /// # Errors
    /// Not within `within`, or the kernel stopped first.
    pub fn wait_file(&mut self, name: &str, within: Duration) -> Result<()> {
        let end = Instant::now() + within;
        while Instant::now() < end {
            if self.out.join(name).exists() {
                return Ok(());
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                bail!(
                    "user-mode Linux stopped ({st}) before {name}: {}",
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        bail!("no {name} within {within:?}: {}", self.tail())
    }

    fn tail(&self) -> String {
        let read = |n: &str| std::fs::read_to_string(self.out.join(n)).unwrap_or_default();
        format!(
            "\n--- stdout\n{}\n--- stderr\n{}\n--- console (last lines)\n{}",
            read("stdout"),
            read("stderr"),
            read("console.log")
                .lines()
                .rev()
                .take(20)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect::<Vec<_>>()
                .join("\n")
        )
    }

    /// Waits for the kernel to halt (killed after `timeout`).
    ///
    /// # Errors
    /// The scenario did not finish.
    pub fn wait(mut self, timeout: Duration) -> Result<Finished> {
        let end = Instant::now() + timeout;
        loop {
            if let Some(_st) = self.child.try_wait()? {
                break;
            }
            if Instant::now() >= end {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "user-mode Linux did not finish within {timeout:?}: {}",
                    self.tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let rc = std::fs::read_to_string(self.out.join("rc"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let Some(rc) = rc else {
            bail!("the scenario did not finish: {}", self.tail());
        };
        Ok(Finished {
            rc,
            stdout: std::fs::read_to_string(self.out.join("stdout")).unwrap_or_default(),
            stderr: std::fs::read_to_string(self.out.join("stderr")).unwrap_or_default(),
        })
    }
}

impl Drop for UmlRun {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// The init the kernel runs: filesystems, modules, the scenario, its status, halt.
fn init_script(modroot: &Path, out: &Path) -> String {
    let m = modroot.display();
    let o = out.display();
    let mods = MODULES.join(" ");
    format!(
        "#!/bin/sh\n\
         export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/tmp\n\
         mount -t proc proc /proc; mount -t sysfs sys /sys\n\
         mount -t tmpfs tmpfs /run; mount -t tmpfs tmpfs /tmp; mount -t tmpfs tmpfs /var\n\
         mkdir -p /var/run /var/lib /var/tmp /run/netns /tmp/out\n\
         mount -t hostfs none /tmp/out -o {o}\n\
         for m in {mods}; do modprobe -d {m} $m 2>/dev/null || echo \"uml: no module $m\" >&2; done\n\
         ip link set lo up\n\
         cd /tmp/out && OUT=/tmp/out ./.scenario > /tmp/out/stdout 2> /tmp/out/stderr\n\
         echo $? > /tmp/out/rc\n\
         sync\n\
         halt -f\n"
    )
}

/// Downloads and unpacks user-mode-linux and its libc into `cache`.
fn prepare(cache: &Path) -> Result<()> {
    for tool in ["patchelf", "dpkg", "apt-get"] {
        if !crate::has_command(tool) {
            bail!(
                "`{tool}` is needed (Debian packages: {})",
                HOST_PACKAGES.join(" ")
            );
        }
    }
    let list = cache.join("sid.list");
    std::fs::write(&list, format!("deb {} sid main\n", archive()?))?;
    let opts = |c: &mut Command| {
        c.arg("-o")
            .arg(format!("Dir::Etc::SourceList={}", list.display()))
            .args(["-o", "Dir::Etc::SourceParts=/dev/null"])
            .arg("-o")
            .arg(format!(
                "Dir::State::Lists={}",
                cache.join("lists").display()
            ))
            .arg("-o")
            .arg(format!("Dir::Cache={}", cache.join("apt").display()));
    };
    for d in ["lists/partial", "apt/archives/partial", "debs", "x"] {
        std::fs::create_dir_all(cache.join(d))?;
    }
    let mut update = Command::new("apt-get");
    opts(&mut update);
    run(update.args(["-qq", "update"]))?;
    let mut dl = Command::new("apt-get");
    opts(&mut dl);
    run(dl
        .current_dir(cache.join("debs"))
        .args(["-qq", "download", "user-mode-linux", "libc6"]))?;
    for e in std::fs::read_dir(cache.join("debs"))?.flatten() {
        if e.path().extension().is_some_and(|x| x == "deb") {
            run(Command::new("dpkg")
                .arg("-x")
                .arg(e.path())
                .arg(cache.join("x")))?;
        }
    }
    let x = cache.join("x");
    let tmp = cache.join("linux.uml.tmp");
    std::fs::copy(x.join("usr/bin/linux.uml"), &tmp)?;
    run(Command::new("patchelf")
        .arg("--set-interpreter")
        .arg(x.join("usr/lib64/ld-linux-x86-64.so.2"))
        .arg("--set-rpath")
        .arg(x.join("usr/lib/x86_64-linux-gnu"))
        .arg(&tmp))?;
    let mods = x.join("usr/lib/uml/modules");
    let version = std::fs::read_dir(&mods)?
        .flatten()
        .next()
        .context("no modules in the package")?
        .file_name();
    let lm = cache.join("modroot/lib/modules");
    std::fs::create_dir_all(&lm)?;
    let link = lm.join(&version);
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(mods.join(&version), &link)?;
    std::fs::rename(&tmp, cache.join("linux.uml"))?;
    Ok(())
}

/// True when UML scenarios can run here (root, the host tools); outside CI a missing
/// prerequisite skips with a printed reason, under `CI=true` it is a failure.
pub fn available(what: &str) -> bool {
    crate::require_root(what)
        && HOST_PACKAGES.iter().all(|p| {
            let cmd = match *p {
                "kmod" => "modprobe",
                "iproute2" => "ip",
                other => other,
            };
            crate::require_command(what, cmd)
        })
}
