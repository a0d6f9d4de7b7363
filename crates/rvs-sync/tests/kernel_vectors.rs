//! Messages a kernel IPVS sync master sent (testdata/sync/kernel, captured in user-mode
//! Linux): rvs decodes every field as the kernel meant it, and encodes the same entries
//! into the same bytes.

use rvs_core::sync::flags;
use rvs_core::SyncEntry;
use rvs_sync::wire::{self, decode};
use std::net::IpAddr;
use std::path::PathBuf;

fn vector(name: &str) -> Vec<u8> {
    let p = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../testdata/sync/kernel")
        .join(name);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// The entry as the master had it (the SYNC bit is the receiver's).
fn as_sent(mut e: SyncEntry) -> SyncEntry {
    e.flags &= !flags::SYNC;
    e
}

#[test]
fn version_1_message_of_a_nat_director_decodes_field_by_field() {
    let m = decode(&vector("v1-nat-persistent-tcp-udp-ipv6.bin"), 7).unwrap();
    assert_eq!((m.version, m.syncid), (1, 7));
    assert!(m.skipped.is_empty());
    assert_eq!(m.entries.len(), 11);
    let tpl = &m.entries[0];
    assert!(tpl.is_template());
    assert_eq!(tpl.flags & !flags::SYNC, flags::TEMPLATE | flags::INACTIVE);
    assert_eq!(
        (tpl.proto, tpl.caddr, tpl.cport, tpl.vaddr, tpl.vport),
        (6, ip("10.1.0.0"), 0, ip("10.1.0.1"), 80)
    );
    assert_eq!(
        (tpl.daddr, tpl.dport, tpl.state, tpl.timeout),
        (ip("10.2.0.2"), 8080, 0, 300)
    );
    assert_eq!(
        m.entries[1].state, 1,
        "ASSURED once the child is established"
    );
    let conn = &m.entries[2];
    assert!(!conn.is_template() && !conn.is_inactive());
    assert_eq!(conn.flags & flags::FWD_MASK, flags::MASQ);
    assert_eq!(
        (conn.caddr, conn.cport, conn.state, conn.timeout),
        (ip("10.1.0.2"), 40000, 1, 900)
    );
    let v6 = &m.entries[4];
    assert_eq!(
        (v6.caddr, v6.cport, v6.vaddr, v6.daddr),
        (
            ip("2001:db8:1::2"),
            40010,
            ip("2001:db8:1::1"),
            ip("2001:db8:2::2")
        )
    );
    let udp = &m.entries[9];
    assert_eq!(
        (udp.proto, udp.state, udp.timeout, udp.is_inactive()),
        (17, 0, 300, true)
    );
    // every entry maps to a model state
    for e in &m.entries {
        e.conn_state().unwrap();
    }
}

#[test]
fn version_0_message_decodes_without_timeouts() {
    let m = decode(&vector("v0-nat-persistent.bin"), 7).unwrap();
    assert_eq!((m.version, m.syncid, m.entries.len()), (0, 7, 7));
    assert_eq!(m.entries[0].state, 5, "TIME_WAIT");
    assert!(m.entries.iter().all(|e| e.timeout == 0 && e.fwmark == 0));
    assert!(m.entries[1].is_template());
}

#[test]
fn rvs_encodes_the_kernels_entries_into_the_kernels_bytes() {
    for (name, version) in [
        ("v1-nat-persistent-tcp-udp-ipv6.bin", 1),
        ("v1-close-wait.bin", 1),
        ("v0-nat-persistent.bin", 0),
    ] {
        let bytes = vector(name);
        let m = decode(&bytes, 0).unwrap();
        let entries: Vec<SyncEntry> = m.entries.into_iter().map(as_sent).collect();
        let again = wire::encode(version, m.syncid, 1472, &entries);
        assert_eq!(again, vec![bytes], "{name}");
    }
}
