//! # rvs-rs — the real server's side of LVS/DR and LVS/TUN
//!
//! The library behind the `rvs-rs` binary: what the seeds' `lvs_dr_rs.sh` does and a bit
//! more:
//!
//! * **DR**: each VIP on `lo` as a host address (/32, /128), and `arp_ignore=1`,
//!   `arp_announce=2` on `lo` and `all`, so the server accepts packets for the VIP but
//!   never answers ARP for it (the director must get them).
//! * **TUN**: the same, plus the `tc_decap` classifier on the interface the tunnelled
//!   packets arrive on (this kernel may have no ipip module), told which outer addresses
//!   are this host's and which GUE ports to open; `rp_filter` relaxed to loose (2) where it
//!   was strict, since decapsulated packets come from clients the interface may not route.
//!
//! Every change is recorded in a state file first, so `stop` undoes exactly what `start`
//! did (sysctls back to their old values, only the addresses it added removed).

use aya::programs::links::FdLink;
use aya::programs::{SchedClassifier, TcAttachType};
use rvs_xdp::encode::addr_bytes;
use rvs_xdp::{abi, abi::Plain, loader};
pub use rvs_xdp::{Result, XdpError};
use std::net::IpAddr;
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::process::Command;

pub const DEFAULT_STATE: &str = "/run/rvs-rs/state";
pub const DEFAULT_PIN_DIR: &str = "/sys/fs/bpf/rvs-rs";

/// What `start` changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct State {
    /// (sysctl path, old value).
    pub sysctls: Vec<(String, String)>,
    /// Addresses added to lo, as `ip` wants them (`10.0.0.100/32`).
    pub lo_addrs: Vec<String>,
    /// Pin directory of an attached decap program.
    pub decap_pin_dir: Option<String>,
}

impl State {
    /// Line format: `sysctl PATH OLD`, `lo ADDR`, `decap DIR`.
    pub fn to_text(&self) -> String {
        let mut s = String::new();
        for (p, v) in &self.sysctls {
            s.push_str(&format!("sysctl {p} {v}\n"));
        }
        for a in &self.lo_addrs {
            s.push_str(&format!("lo {a}\n"));
        }
        if let Some(d) = &self.decap_pin_dir {
            s.push_str(&format!("decap {d}\n"));
        }
        s
    }

    pub fn from_text(t: &str) -> State {
        let mut st = State::default();
        for line in t.lines() {
            let mut w = line.splitn(3, ' ');
            match (w.next(), w.next(), w.next()) {
                (Some("sysctl"), Some(p), Some(v)) => st.sysctls.push((p.into(), v.into())),
                (Some("lo"), Some(a), None) => st.lo_addrs.push(a.into()),
                (Some("decap"), Some(d), None) => st.decap_pin_dir = Some(d.into()),
                _ => {}
            }
        }
        st
    }
}

fn other(e: impl std::fmt::Display) -> XdpError {
    XdpError::Other(e.to_string())
}

fn save(path: &Path, st: &State) -> Result<()> {
    if let Some(d) = path.parent() {
        std::fs::create_dir_all(d).map_err(other)?;
    }
    std::fs::write(path, st.to_text()).map_err(|e| other(format!("{}: {e}", path.display())))
}

fn set_sysctl(st: &mut State, path: &str, value: &str) -> Result<()> {
    let old = std::fs::read_to_string(path)
        .map_err(|e| other(format!("{path}: {e}")))?
        .trim()
        .to_string();
    if old == value {
        return Ok(());
    }
    std::fs::write(path, value).map_err(|e| other(format!("{path}: {e}")))?;
    if !st.sysctls.iter().any(|(p, _)| p == path) {
        st.sysctls.push((path.to_string(), old));
    }
    Ok(())
}

fn ip_cmd(args: &[&str]) -> std::io::Result<std::process::Output> {
    Command::new("ip").args(args).output()
}

fn add_lo_addr(st: &mut State, vip: IpAddr) -> Result<()> {
    let a = match vip {
        IpAddr::V4(_) => format!("{vip}/32"),
        IpAddr::V6(_) => format!("{vip}/128"),
    };
    let out = ip_cmd(&["addr", "add", &a, "dev", "lo"]).map_err(other)?;
    if out.status.success() {
        st.lo_addrs.push(a);
    } else if !String::from_utf8_lossy(&out.stderr).contains("exists") {
        return Err(other(format!(
            "ip addr add {a} dev lo: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )));
    }
    Ok(())
}

/// The ARP settings of a DR/TUN real server.
fn arp_settings(st: &mut State) -> Result<()> {
    for dev in ["lo", "all"] {
        set_sysctl(
            st,
            &format!("/proc/sys/net/ipv4/conf/{dev}/arp_ignore"),
            "1",
        )?;
        set_sysctl(
            st,
            &format!("/proc/sys/net/ipv4/conf/{dev}/arp_announce"),
            "2",
        )?;
    }
    Ok(())
}

/// `rvs-rs dr start`: VIPs on lo, ARP for them suppressed.
///
/// # Errors
/// A sysctl or address that cannot be set (the state file records what was done).
pub fn dr_start(state: &Path, vips: &[IpAddr]) -> Result<State> {
    let mut st = load(state);
    let r = (|| {
        arp_settings(&mut st)?;
        for v in vips {
            add_lo_addr(&mut st, *v)?;
        }
        Ok(())
    })();
    save(state, &st)?;
    r.map(|()| st)
}

/// The host addresses of an interface (outer destinations the decap opens).
pub fn iface_addrs(iface: &str) -> Result<Vec<IpAddr>> {
    let out = ip_cmd(&["-o", "addr", "show", "dev", iface]).map_err(other)?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            let mut w = l.split_whitespace();
            while let Some(x) = w.next() {
                if x == "inet" || x == "inet6" {
                    return w.next()?.split('/').next()?.parse().ok();
                }
            }
            None
        })
        .collect())
}

/// `rvs-rs tun start`: as DR, plus the decapsulating classifier on `iface`.
///
/// # Errors
/// Loading or attaching the classifier, or the settings of [`dr_start`].
pub fn tun_start(
    state: &Path,
    pin_dir: &Path,
    iface: &str,
    vips: &[IpAddr],
    gue_ports: &[u16],
) -> Result<State> {
    let mut st = dr_start(state, vips)?;
    let r = (|| {
        for dev in ["all", iface] {
            let p = format!("/proc/sys/net/ipv4/conf/{dev}/rp_filter");
            if std::fs::read_to_string(&p).is_ok_and(|v| v.trim() == "1") {
                set_sysctl(&mut st, &p, "2")?;
            }
        }
        st.decap_pin_dir = Some(pin_dir.display().to_string());
        save(state, &st)?;
        attach_decap(pin_dir, iface, &iface_addrs(iface)?, gue_ports)
    })();
    save(state, &st)?;
    r.map(|()| st)
}

/// Loads `tc_decap` with its maps pinned in `pin_dir` and attaches it (tcx ingress) to
/// `iface` with a pinned link; replaces an earlier attachment of the same pin directory.
///
/// # Errors
/// No bpffs, the verifier, or the attach.
pub fn attach_decap(
    pin_dir: &Path,
    iface: &str,
    addrs: &[IpAddr],
    gue_ports: &[u16],
) -> Result<()> {
    if pin_dir.starts_with(loader::DEFAULT_PIN_ROOT) {
        loader::ensure_bpffs()?;
    }
    std::fs::create_dir_all(pin_dir).map_err(other)?;
    let mut ebpf = aya::EbpfLoader::new()
        .default_map_pin_directory(pin_dir)
        .load(rvs_xdp::object::decap())
        .map_err(|e| XdpError::Load(Box::new(e)))?;
    fill_decap_maps(&ebpf, addrs, gue_ports)?;
    let prog: &mut SchedClassifier = ebpf
        .program_mut("rvs_decap")
        .ok_or_else(|| other("the decap object has no rvs_decap"))?
        .try_into()
        .map_err(other)?;
    prog.load().map_err(|e| XdpError::Verifier {
        program: "rvs_decap",
        error: Box::new(e),
    })?;
    let link_path = pin_dir.join(format!("link_{iface}"));
    let _ = std::fs::remove_file(&link_path);
    let id = prog
        .attach(iface, TcAttachType::Ingress)
        .map_err(|e| XdpError::Attach {
            iface: iface.to_string(),
            error: Box::new(e),
        })?;
    let link: FdLink = prog.take_link(id).map_err(other)?.try_into().map_err(|e| {
        other(format!(
            "{iface}: the classifier was attached without a link (tcx needs Linux 6.6): {e}"
        ))
    })?;
    link.pin(&link_path).map_err(|e| XdpError::Pin {
        path: link_path,
        error: e.to_string(),
    })?;
    Ok(())
}

fn fill_decap_maps(ebpf: &aya::Ebpf, addrs: &[IpAddr], gue_ports: &[u16]) -> Result<()> {
    let fd = |name: &str| -> Result<rvs_xdp::sys::RawMap> {
        let m = ebpf
            .map(name)
            .ok_or_else(|| other(format!("no map {name}")))?;
        let aya::maps::Map::HashMap(d) = m else {
            return Err(other(format!("{name}: unexpected map type")));
        };
        let (ks, vs) = if name == "rvs_decap_addrs" {
            (size_of::<abi::VipKey>(), 4)
        } else {
            (2, 4)
        };
        rvs_xdp::sys::RawMap::new(d.fd().as_fd(), ks, vs, false).map_err(other)
    };
    let am = fd("rvs_decap_addrs")?;
    for a in addrs {
        let k = abi::VipKey {
            addr: addr_bytes(a),
            family: if a.is_ipv4() {
                abi::RVS_AF_INET
            } else {
                abi::RVS_AF_INET6
            } as u32,
        };
        am.update(k.as_bytes(), &1u32.to_ne_bytes(), 0)
            .map_err(other)?;
    }
    let pm = fd("rvs_decap_gue_ports")?;
    for p in gue_ports {
        pm.update(&p.to_be().to_ne_bytes(), &1u32.to_ne_bytes(), 0)
            .map_err(other)?;
    }
    Ok(())
}

/// Decapsulated packets so far: (IPIP/IP6IP6, GUE, GRE).
///
/// # Errors
/// No such pinned map.
pub fn decap_stats(pin_dir: &Path) -> Result<(u64, u64, u64)> {
    let m = aya::maps::MapData::from_pin(pin_dir.join("rvs_decap_stats")).map_err(other)?;
    let raw = rvs_xdp::sys::RawMap::new(m.fd().as_fd(), 4, 8, true).map_err(other)?;
    let mut out = [0u64; 3];
    let mut buf = vec![0u8; raw.value_len()];
    for (i, o) in out.iter_mut().enumerate() {
        raw.lookup(&(i as u32).to_ne_bytes(), &mut buf, 0)
            .map_err(other)?;
        *o = buf
            .chunks(8)
            .map(|c| u64::from_ne_bytes(c.try_into().expect("8 bytes")))
            .sum();
    }
    Ok((out[0], out[1], out[2]))
}

fn load(state: &Path) -> State {
    std::fs::read_to_string(state)
        .map(|t| State::from_text(&t))
        .unwrap_or_default()
}

/// `rvs-rs stop`: undoes everything the state file records, newest first.
///
/// # Errors
/// A value that cannot be restored (the others are still restored).
pub fn stop(state: &Path) -> Result<()> {
    let st = load(state);
    let mut errors = Vec::new();
    if let Some(d) = &st.decap_pin_dir {
        if let Err(e) = loader::unpin_all(Path::new(d)) {
            errors.push(format!("{d}: {e}"));
        }
    }
    for a in st.lo_addrs.iter().rev() {
        if let Ok(o) = ip_cmd(&["addr", "del", a, "dev", "lo"]) {
            if !o.status.success() {
                errors.push(format!(
                    "ip addr del {a}: {}",
                    String::from_utf8_lossy(&o.stderr).trim()
                ));
            }
        }
    }
    for (p, v) in st.sysctls.iter().rev() {
        if let Err(e) = std::fs::write(p, v) {
            errors.push(format!("{p}: {e}"));
        }
    }
    let _ = std::fs::remove_file(state);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(other(errors.join("; ")))
    }
}

/// The default pin directory for a state file's decap program.
pub fn default_pin_dir() -> PathBuf {
    PathBuf::from(DEFAULT_PIN_DIR)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_through_its_text_form() {
        let st = State {
            sysctls: vec![("/proc/sys/net/ipv4/conf/lo/arp_ignore".into(), "0".into())],
            lo_addrs: vec!["10.0.0.100/32".into(), "fd00::100/128".into()],
            decap_pin_dir: Some("/sys/fs/bpf/rvs-rs".into()),
        };
        assert_eq!(State::from_text(&st.to_text()), st);
    }
}
