//! Where pins must go so that they outlive rvsd.
//!
//! `ip netns exec NS rvsd ...` runs rvsd in a private mount namespace whose /sys is
//! remounted for NS: the host's bpffs is not there, and the bpffs rvsd would mount on
//! /sys/fs/bpf belongs to that mount namespace and vanishes when rvsd exits, taking every
//! pinned map (every flow) with it. rvsd sees it by its mount namespace differing from an
//! ancestor's (the process that ran `ip netns exec`, or the one before a shell it started).
//! When that ancestor's /sys/fs/bpf is a bpffs, the pins go there instead: rvsd opens the
//! directory through `/proc/PID/root` once and pins below `/proc/self/fd/N` (the open
//! directory keeps the host's bpffs reachable whatever the ancestor does next). When it is
//! not, rvsd says loudly at start that a restart will drop every flow, and how to avoid it.
//!
//! The default pin directory of an rvsd in another network namespace is named after that
//! namespace (`/sys/fs/bpf/rvs/netns-NAME`), so directors in several namespaces of one
//! host never adopt each other's maps.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// What was decided, and what to tell the operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub dir: PathBuf,
    pub note: Option<String>,
    pub warning: Option<String>,
}

fn ns_inode(pid: &str, kind: &str) -> Option<u64> {
    std::fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .ok()
        .map(|m| m.ino())
}

/// The name `ip netns` knows the current network namespace by, if any.
pub fn netns_name() -> Option<String> {
    let me = ns_inode("self", "net")?;
    std::fs::read_dir("/run/netns")
        .ok()?
        .flatten()
        .find_map(|e| {
            let m = std::fs::metadata(e.path()).ok()?;
            (m.ino() == me).then(|| e.file_name().to_string_lossy().into_owned())
        })
}

/// Keeps the host's bpffs directory open for the life of the process; its `/proc/self/fd`
/// path names it from this mount namespace.
fn host_bpffs(parent: u32) -> Option<PathBuf> {
    use std::os::fd::IntoRawFd;
    let host = PathBuf::from(format!("/proc/{parent}/root/sys/fs/bpf"));
    if !crate::loader::is_bpffs(&host) {
        return None;
    }
    let dir = std::fs::File::open(&host).ok()?;
    // deliberately never closed: the pins live below it for as long as rvsd runs
    let fd = dir.into_raw_fd();
    Some(PathBuf::from(format!("/proc/self/fd/{fd}")))
}

/// The parent of process `pid` (field 4 of /proc/PID/stat, after the command's parens).
fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The nearest ancestor in another mount namespace (the process that ran `ip netns exec`,
/// also through a shell started by it); else the parent.
fn outside_ancestor() -> u32 {
    let mine = ns_inode("self", "mnt");
    let parent = std::os::unix::process::parent_id();
    let mut pid = parent;
    for _ in 0..32 {
        let theirs = ns_inode(&pid.to_string(), "mnt");
        if theirs.is_none() {
            break;
        }
        if theirs != mine {
            return pid;
        }
        match parent_of(pid) {
            Some(p) if p > 1 => pid = p,
            _ => break,
        }
    }
    parent
}

/// Decides the pin directory for `requested` (`default` when the operator gave none).
pub fn resolve(requested: &Path, default: bool, detach_on_exit: bool) -> Resolved {
    let root = Path::new(crate::loader::DEFAULT_PIN_ROOT);
    let mut dir = requested.to_path_buf();
    let mut note = None;
    let parent = outside_ancestor();
    let other_netns = ns_inode("self", "net") != ns_inode(&parent.to_string(), "net")
        && ns_inode(&parent.to_string(), "net").is_some();
    if default && (other_netns || netns_name().is_some()) {
        let name =
            netns_name().unwrap_or_else(|| format!("{}", ns_inode("self", "net").unwrap_or(0)));
        dir = root.join("rvs").join(format!("netns-{name}"));
        note = Some(format!(
            "network namespace {name}: pin directory {}",
            dir.display()
        ));
    }
    let theirs = ns_inode(&parent.to_string(), "mnt");
    let private_mounts = theirs.is_some() && ns_inode("self", "mnt") != theirs;
    if !private_mounts || !dir.starts_with(root) || crate::loader::is_bpffs(root) {
        return Resolved {
            dir,
            note,
            warning: None,
        };
    }
    if let Some(host) = host_bpffs(parent) {
        let rel = dir.strip_prefix(root).unwrap_or(&dir);
        let host_dir = host.join(rel);
        return Resolved {
            note: Some(format!(
                "private mount namespace (ip netns exec?): pinning in the host's bpffs ({} as the parent process sees it) so flows survive a restart",
                dir.display()
            )),
            dir: host_dir,
            warning: None,
        };
    }
    let warning = (!detach_on_exit).then(|| {
        "rvsd runs in a private mount namespace (ip netns exec?) and the host has no bpffs on /sys/fs/bpf: \
         the XDP maps are pinned in a bpffs of this process's own and die with it, so a restart of rvsd \
         drops every flow. Mount bpffs on the host (mount -t bpf bpf /sys/fs/bpf), or start rvsd with \
         -s NAME (--namespace) instead of ip netns exec"
            .to_string()
    });
    Resolved { dir, note, warning }
}
