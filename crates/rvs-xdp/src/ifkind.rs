//! What kind of interface XDP is attached to, where it changes which attach mode can
//! forward.
//!
//! A veth in native (driver) mode transmits XDP_TX/XDP_REDIRECT frames into its peer's
//! receive ring, which exists only while the peer runs an XDP program or has GRO turned on
//! (its NAPI side, `veth_xdp_xmit` in drivers/net/veth.c): otherwise every forwarded frame
//! is dropped while the program counts it as forwarded. Generic mode forwards through the
//! normal stack and works whatever the peer does.

/// The driver of an interface (`ethtool -i`), if it says.
pub fn driver(iface: &str) -> Option<String> {
    // struct ethtool_drvinfo: cmd, then driver[32], version[32], fw_version[32],
    // bus_info[32], erom_version[32], reserved2[12], and five u32 counts.
    #[repr(C)]
    struct DrvInfo {
        cmd: u32,
        driver: [u8; 32],
        rest: [u8; 32 * 4 + 12 + 5 * 4],
    }
    const ETHTOOL_GDRVINFO: u32 = 0x0000_0003;
    let mut info = DrvInfo {
        cmd: ETHTOOL_GDRVINFO,
        driver: [0; 32],
        rest: [0; 32 * 4 + 12 + 5 * 4],
    };
    let name = iface.as_bytes();
    if name.len() >= libc::IFNAMSIZ {
        return None;
    }
    // SAFETY: a zeroed ifreq; the name is shorter than IFNAMSIZ (NUL-terminated by the
    // zeroing); ifr_data points at `info`, alive for the ioctl.
    unsafe {
        let fd = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
        if fd < 0 {
            return None;
        }
        let mut ifr: libc::ifreq = std::mem::zeroed();
        for (d, s) in ifr.ifr_name.iter_mut().zip(name) {
            *d = *s as libc::c_char;
        }
        ifr.ifr_ifru.ifru_data = (&mut info as *mut DrvInfo).cast();
        let rc = libc::ioctl(fd, libc::SIOCETHTOOL, &mut ifr);
        libc::close(fd);
        if rc != 0 {
            return None;
        }
    }
    let end = info.driver.iter().position(|b| *b == 0).unwrap_or(32);
    Some(String::from_utf8_lossy(&info.driver[..end]).into_owned())
}

/// True for a veth (see the module doc for why it matters).
pub fn is_veth(iface: &str) -> bool {
    driver(iface).as_deref() == Some("veth")
}

/// Why native mode would not forward on `iface`, if that is known.
pub fn native_cannot_forward(iface: &str) -> Option<String> {
    is_veth(iface).then(|| {
        format!(
            "{iface} is a veth: in native mode its forwarded frames reach the peer only while the peer runs an XDP program or has GRO on, and are dropped otherwise"
        )
    })
}
