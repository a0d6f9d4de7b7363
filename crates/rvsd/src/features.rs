//! What this kernel can run, said at start (and by `--dataplane xdp` refusing to start):
//!
//! | feature | needs | why |
//! |---|---|---|
//! | proxy data plane | any Linux with epoll and splice | userspace TCP/UDP |
//! | health checkers, VRRP | any Linux (raw sockets, netlink) | |
//! | XDP data plane | Linux 6.7, BTF, bpffs, root | `bpf_fib_lookup` with `BPF_FIB_LOOKUP_SRC` (6.7) picks the source of NAT replies; bpf_link for XDP (5.9); mmapable arrays (5.5) |
//!
//! Debian 12 ships Linux 6.1: its stock kernel runs the proxy plane; the XDP plane needs
//! a newer kernel (bookworm-backports has 6.12).

/// The kernel release, `uname -r`.
pub fn kernel_release() -> String {
    // SAFETY: uname fills a zeroed struct.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return "unknown".into();
    }
    // SAFETY: release is NUL-terminated by uname.
    unsafe { std::ffi::CStr::from_ptr(u.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

/// `6.1.0-28-amd64` → (6, 1).
pub fn version(release: &str) -> Option<(u32, u32)> {
    let mut it = release.split(|c: char| !c.is_ascii_digit());
    let major = it.next()?.parse().ok()?;
    let minor = it.next()?.parse().ok()?;
    Some((major, minor))
}

/// The XDP data plane's kernel floor.
pub const XDP_FLOOR: (u32, u32) = (6, 7);

/// Why the XDP plane cannot run on this release, if it cannot.
pub fn xdp_unavailable(release: &str) -> Option<String> {
    match version(release) {
        Some(v) if v >= XDP_FLOOR => None,
        Some((a, b)) => Some(format!(
            "the XDP data plane needs Linux {}.{} or later (bpf_fib_lookup with BPF_FIB_LOOKUP_SRC); this kernel is {a}.{b} ({release})",
            XDP_FLOOR.0, XDP_FLOOR.1
        )),
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floors_of_debian_kernels() {
        assert_eq!(version("6.1.0-28-amd64"), Some((6, 1)));
        assert_eq!(version("6.12.9+bpo-amd64"), Some((6, 12)));
        let why = xdp_unavailable("6.1.0-28-amd64").unwrap();
        assert!(why.contains("6.7") && why.contains("6.1"), "{why}");
        assert_eq!(xdp_unavailable("6.7.0"), None);
        assert_eq!(xdp_unavailable("6.18.44-fc-v1300"), None);
    }
}
