//! IP forwarding on the attached interfaces. `bpf_fib_lookup` — how the program finds the
//! next hop of every packet it sends — answers only where forwarding is on for the
//! ingress interface, as the kernel's own forwarding path would. rvsd turns it on for the
//! interfaces it attaches to (IPv4 and IPv6; an IPv6 `accept_ra` of 1 becomes 2 so the
//! host keeps learning its routes from router advertisements) and puts the old values back
//! when it detaches.

use std::path::PathBuf;

/// A sysctl value to put back.
#[derive(Clone, Debug)]
pub struct Saved {
    path: PathBuf,
    value: String,
}

fn set(path: PathBuf, value: &str, saved: &mut Vec<Saved>) -> std::io::Result<()> {
    let old = std::fs::read_to_string(&path)?.trim().to_string();
    if old != value {
        std::fs::write(&path, value)?;
        saved.push(Saved { path, value: old });
    }
    Ok(())
}

/// Turns forwarding on for `iface`; returns what to restore.
///
/// # Errors
/// When a sysctl cannot be written (not root, no such interface).
pub fn enable(iface: &str) -> std::io::Result<Vec<Saved>> {
    let mut saved = Vec::new();
    set(
        PathBuf::from(format!("/proc/sys/net/ipv4/conf/{iface}/forwarding")),
        "1",
        &mut saved,
    )?;
    let v6 = PathBuf::from(format!("/proc/sys/net/ipv6/conf/{iface}"));
    if v6.exists() {
        let ra = v6.join("accept_ra");
        if std::fs::read_to_string(&ra).is_ok_and(|v| v.trim() == "1") {
            set(ra, "2", &mut saved)?;
        }
        set(v6.join("forwarding"), "1", &mut saved)?;
    }
    Ok(saved)
}

/// Puts saved values back (in reverse order).
pub fn restore(saved: &[Saved]) {
    for s in saved.iter().rev() {
        if let Err(e) = std::fs::write(&s.path, &s.value) {
            tracing::warn!(path = %s.path.display(), "restoring a sysctl: {e}");
        }
    }
}
