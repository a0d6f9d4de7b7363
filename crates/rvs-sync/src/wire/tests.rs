//! The formats of `ip_vs_sync.c` byte by byte, and every way a message can be malformed.

use super::*;
use proptest::prelude::*;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn dr_conn() -> SyncEntry {
    SyncEntry {
        proto: 6,
        caddr: ip("10.9.0.7"),
        cport: 40000,
        vaddr: ip("10.0.0.1"),
        vport: 80,
        daddr: ip("192.168.1.2"),
        dport: 8080,
        fwmark: 0,
        flags: flags::DROUTE | flags::NOOUTPUT,
        state: 1,
        timeout: 900,
        seq: None,
        pe_name: None,
        pe_data: None,
    }
}

fn v6_conn() -> SyncEntry {
    SyncEntry {
        caddr: ip("2001:db8::7"),
        vaddr: ip("2001:db8::1"),
        daddr: ip("2001:db8:1::2"),
        ..dr_conn()
    }
}

/// What the backup keeps of what was sent: the mask and the SYNC bit.
fn as_received(mut e: SyncEntry) -> SyncEntry {
    e.flags = (e.flags & flags::BACKUP_MASK) | flags::SYNC;
    e
}

#[test]
fn version_1_ipv4_entry_has_the_kernel_layout() {
    let m = encode(1, 7, 1472, &[dr_conn()]);
    assert_eq!(m.len(), 1);
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        // header: reserved, syncid, size 44, nr_conns 1, version 1, spare
        0, 7, 0, 44, 1, 1, 0, 0,
        // type 0, TCP, ver_size 36
        0, 6, 0, 36,
        // flags DROUTE|NOOUTPUT
        0, 0, 0, 0x83,
        // state ESTABLISHED, cport 40000, vport 80, dport 8080
        0, 1, 0x9c, 0x40, 0, 80, 0x1f, 0x90,
        // fwmark 0, timeout 900
        0, 0, 0, 0, 0, 0, 3, 0x84,
        10, 9, 0, 7, 10, 0, 0, 1, 192, 168, 1, 2,
    ];
    assert_eq!(m[0], want);
    let got = decode(&m[0], 7).unwrap();
    assert_eq!(got.version, 1);
    assert_eq!(got.syncid, 7);
    assert_eq!(got.entries, vec![as_received(dr_conn())]);
}

#[test]
fn version_0_entry_has_the_kernel_layout_and_no_timeout() {
    let m = encode(0, 3, 1472, &[dr_conn()]);
    #[rustfmt::skip]
    let want: Vec<u8> = vec![
        // nr_conns 1, syncid 3, size 28
        1, 3, 0, 28,
        0, 6, 0x9c, 0x40, 0, 80, 0x1f, 0x90,
        10, 9, 0, 7, 10, 0, 0, 1, 192, 168, 1, 2,
        // flags, state
        0, 0x83, 0, 1,
    ];
    assert_eq!(m[0], want);
    let got = decode(&m[0], 0).unwrap();
    assert_eq!(got.version, 0);
    let mut e = dr_conn();
    e.flags |= flags::SYNC;
    e.timeout = 0;
    assert_eq!(got.entries, vec![e]);
}

#[test]
fn version_0_cannot_carry_ipv6() {
    assert!(encode(0, 0, 1472, &[v6_conn()]).is_empty());
    let m = encode(1, 0, 1472, &[v6_conn()]);
    assert_eq!(m[0].len(), HDR_V1 + V1_FIXED_V6);
    assert_eq!(
        decode(&m[0], 0).unwrap().entries,
        vec![as_received(v6_conn())]
    );
}

#[test]
fn options_round_trip_and_entries_stay_four_byte_aligned() {
    let mut a = dr_conn();
    a.flags |= flags::IN_SEQ;
    a.seq = Some([1, 2, 3, 4, 5, 6]);
    let mut b = dr_conn();
    b.flags |= flags::TEMPLATE;
    b.pe_name = Some("sip".into());
    b.pe_data = Some(b"call-1".to_vec());
    let c = v6_conn();
    let m = encode(1, 0, 1472, &[a.clone(), b.clone(), c.clone()]);
    assert_eq!(m.len(), 1);
    // a: 36 + 26 = 62 (+2 pad); b: 36 + 8 + 5 = 49 (+3 pad); c: 72
    assert_eq!(m[0].len(), 8 + 64 + 52 + 72);
    let got = decode(&m[0], 0).unwrap();
    assert_eq!(
        got.entries,
        vec![as_received(a), as_received(b), as_received(c)]
    );
}

#[test]
fn messages_respect_maxlen_and_255_entries() {
    let entries: Vec<SyncEntry> = (0..100)
        .map(|i| SyncEntry {
            cport: 1000 + i,
            ..dr_conn()
        })
        .collect();
    let m = encode(1, 0, 1472, &entries);
    // (1472 - 8) / 36 = 40 per message
    assert_eq!(
        m.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![8 + 40 * 36, 8 + 40 * 36, 8 + 20 * 36]
    );
    let back: Vec<SyncEntry> = m
        .iter()
        .flat_map(|x| decode(x, 0).unwrap().entries)
        .collect();
    assert_eq!(back.len(), 100);
    let many: Vec<SyncEntry> = (0..600).map(|_| dr_conn()).collect();
    let m = encode(1, 0, 65_000, &many);
    assert_eq!(
        m.iter()
            .map(|x| decode(x, 0).unwrap().entries.len())
            .collect::<Vec<_>>(),
        vec![255, 255, 90]
    );
}

#[test]
fn an_entry_longer_than_maxlen_gets_a_message_of_its_own() {
    let m = encode(1, 0, 10, &[dr_conn(), dr_conn()]);
    assert_eq!(m.len(), 2);
    assert!(m.iter().all(|x| decode(x, 0).unwrap().entries.len() == 1));
}

#[test]
fn syncid_filter_takes_matching_ids_and_backup_id_0_takes_all() {
    let m = &encode(1, 9, 1472, &[dr_conn()])[0];
    assert_eq!(decode(m, 8), Err(MsgDrop::SyncId));
    assert!(decode(m, 9).is_ok());
    assert!(decode(m, 0).is_ok());
}

fn msg() -> Vec<u8> {
    encode(1, 0, 1472, &[dr_conn(), dr_conn()]).remove(0)
}

fn set_size(m: &mut [u8]) {
    let n = m.len() as u16;
    m[2..4].copy_from_slice(&n.to_be_bytes());
}

#[test]
fn malformed_headers_are_dropped_with_their_reason() {
    assert_eq!(decode(&[0, 0, 0], 0), Err(MsgDrop::TooShort));
    let mut m = msg();
    m[3] ^= 1;
    assert_eq!(decode(&m, 0), Err(MsgDrop::BadSize));
    let mut m = msg();
    m[5] = 2;
    assert_eq!(decode(&m, 0), Err(MsgDrop::UnknownVersion));
    let mut m = msg();
    m.push(0xee);
    set_size(&mut m);
    assert_eq!(decode(&m, 0), Err(MsgDrop::TrailingBytes));
}

#[test]
fn counts_that_do_not_match_the_length_drop_the_message() {
    let mut m = msg();
    m[4] = 3; // three entries announced, two present
    assert_eq!(decode(&m, 0), Err(MsgDrop::Truncated));
    let mut m = msg();
    m[4] = 1; // one announced, two present
    assert_eq!(decode(&m, 0), Err(MsgDrop::TrailingBytes));
    // version 0 likewise
    let mut m = encode(0, 0, 1472, &[dr_conn()]).remove(0);
    m[0] = 2;
    assert_eq!(decode(&m, 0), Err(MsgDrop::Truncated));
}

#[test]
fn malformed_entries_drop_the_whole_message() {
    // entry size beyond the message
    let mut m = msg();
    m[8 + 3] = 200;
    assert_eq!(decode(&m, 0), Err(MsgDrop::Truncated));
    // an entry version
    let mut m = msg();
    m[8 + 2] = 0x10;
    assert_eq!(decode(&m, 0), Err(MsgDrop::EntryVersion));
    // a type other than 0/1
    let mut m = msg();
    m[8] = 2;
    assert_eq!(decode(&m, 0), Err(MsgDrop::EntryType));
    // an IPv6 type on an IPv4-sized entry
    let mut m = msg();
    m[8] = 1;
    assert_eq!(decode(&m, 0), Err(MsgDrop::EntrySize));
}

/// A one-entry message with raw option bytes after the fixed part.
fn with_options(opts: &[u8]) -> Vec<u8> {
    let mut m = encode(1, 0, 1472, &[dr_conn()]).remove(0);
    m.extend_from_slice(opts);
    let size = (V1_FIXED_V4 + opts.len()) as u16;
    m[8 + 2..8 + 4].copy_from_slice(&size.to_be_bytes());
    set_size(&mut m);
    m
}

#[test]
fn bad_options_drop_the_message_unknown_ones_skip_or_pass_the_entry() {
    // zero length
    assert_eq!(decode(&with_options(&[2, 0]), 0), Err(MsgDrop::BadOption));
    // overrun
    assert_eq!(
        decode(&with_options(&[2, 9, 1, 2]), 0),
        Err(MsgDrop::BadOption)
    );
    // a lone type byte
    assert_eq!(decode(&with_options(&[2]), 0), Err(MsgDrop::Truncated));
    // sequence data of the wrong length
    assert_eq!(
        decode(&with_options(&[1, 4, 0, 0, 0, 0]), 0),
        Err(MsgDrop::BadOption)
    );
    // the same option twice
    assert_eq!(
        decode(&with_options(&[3, 1, b's', 3, 1, b's']), 0),
        Err(MsgDrop::BadOption)
    );
    // an unknown mandatory option skips the entry, the message stays
    let m = decode(&with_options(&[9, 1, 0]), 0).unwrap();
    assert!(m.entries.is_empty());
    assert_eq!(m.skipped, vec![EntrySkip::MandatoryOption]);
    // an unknown optional one is ignored
    let m = decode(&with_options(&[9 | OPT_F_PARAM, 1, 0]), 0).unwrap();
    assert_eq!(m.entries.len(), 1);
    // PE data without a name
    let m = decode(&with_options(&[2, 1, b'x']), 0).unwrap();
    assert_eq!(m.skipped, vec![EntrySkip::PeWithoutName]);
}

fn arb_addr(v6: bool) -> impl Strategy<Value = IpAddr> {
    if v6 {
        any::<[u8; 16]>()
            .prop_map(|o| IpAddr::V6(Ipv6Addr::from(o)))
            .boxed()
    } else {
        any::<[u8; 4]>().prop_map(|o| IpAddr::V4(o.into())).boxed()
    }
}

fn arb_entry() -> impl Strategy<Value = SyncEntry> {
    any::<bool>().prop_flat_map(|v6| {
        (
            (any::<u8>(), arb_addr(v6), arb_addr(v6), arb_addr(v6)),
            (any::<u16>(), any::<u16>(), any::<u16>(), any::<u32>()),
            (any::<u32>(), any::<u16>(), any::<u32>()),
            proptest::option::of(any::<[u32; 6]>()),
            proptest::option::of((
                proptest::collection::vec(any::<u8>(), 1..=255),
                "[a-z]{1,16}",
            )),
        )
            .prop_map(
                |((proto, c, v, d), (cp, vp, dp, mark), (fl, st, tmo), seq, pe)| {
                    let mut flags = fl & flags::BACKUP_MASK & !flags::SEQ_MASK;
                    if seq.is_some() {
                        flags |= flags::IN_SEQ;
                    }
                    SyncEntry {
                        proto,
                        caddr: c,
                        cport: cp,
                        vaddr: v,
                        vport: vp,
                        daddr: d,
                        dport: dp,
                        fwmark: mark,
                        flags: flags | flags::SYNC,
                        state: st,
                        timeout: tmo,
                        seq,
                        pe_name: pe.as_ref().map(|p| p.1.clone()),
                        pe_data: pe.map(|p| p.0),
                    }
                },
            )
    })
}

proptest! {
    #[test]
    fn version_1_round_trips(entries in proptest::collection::vec(arb_entry(), 1..60),
                             maxlen in 64usize..4000) {
        let msgs = encode(1, 5, maxlen, &entries);
        let back: Vec<SyncEntry> = msgs.iter()
            .flat_map(|m| decode(m, 5).unwrap().entries)
            .collect();
        prop_assert_eq!(back, entries);
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_never_yield_more_than_announced(
        bytes in proptest::collection::vec(any::<u8>(), 0..2000)
    ) {
        let mut b = bytes;
        if b.len() >= 4 {
            set_size(&mut b);
        }
        if let Ok(m) = decode(&b, 0) {
            let announced = if m.version == 1 { b[4] } else { b[0] } as usize;
            prop_assert_eq!(m.entries.len() + m.skipped.len(), announced);
        }
    }

    #[test]
    fn corrupting_a_valid_message_never_panics(
        entries in proptest::collection::vec(arb_entry(), 1..10),
        at in any::<proptest::sample::Index>(), byte in any::<u8>()
    ) {
        let mut m = encode(1, 0, 65_000, &entries).remove(0);
        let i = at.index(m.len());
        m[i] = byte;
        let _ = decode(&m, 0);
    }
}
