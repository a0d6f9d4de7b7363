//! fwmark services on the real director object (BPF_PROG_TEST_RUN): a frame rvsd runs
//! again for the netfilter program carries its mark as metadata, and only then does a
//! fwmark service take it; metadata without rvs's magic is no mark. The end-to-end path
//! (nftables marks, the netfilter program, the live re-run) is in rvsd's
//! `tests/xdp_fwmark.rs`.

mod common;

use common::packet::*;
use common::*;
use rvs_core::{Forward, ServiceConfig, ServiceKey};
use rvs_xdp::abi::{self, Plain};
use rvs_xdp::Build;

fn meta(magic: u32, mark: u32) -> Vec<u8> {
    abi::FwmarkMeta { magic, mark }.as_bytes().to_vec()
}

fn syn(src: &str, dst: &str, sport: u16, dport: u16) -> Vec<u8> {
    let l4 = L4::Tcp {
        sport,
        dport,
        flags: 0x02,
        payload: vec![],
    };
    frame(D0_MAC, GW_MAC, &ip_packet(ip(src), ip(dst), &l4))
}

#[test]
fn only_rvs_metadata_carries_a_mark_to_a_fwmark_service() {
    if !root_or_skip("fwmark metadata") {
        return;
    }
    let mut rig = Rig::new("fwmark-meta", Build::Production);
    let svc = rig.service_cfg(ServiceConfig::new(ServiceKey::Fwmark {
        mark: 5,
        family: rvs_core::Family::V4,
    }));
    rig.dest(&svc, "10.0.0.11", 0, Forward::Route, 1);
    let dir = rig.plane.director();
    let magic = abi::RVS_FWMARK_MAGIC;

    // no metadata, the wrong magic, or a mark no service has: not for the director
    for (m, sport) in [
        (vec![], 40001),
        (meta(magic ^ 1, 5), 40002),
        (meta(magic, 6), 40003),
    ] {
        let f = syn("10.9.0.2", "10.0.0.77", sport, 443);
        let (v, out) = dir.run_xdp_meta(&m, &f, rig.if0).expect("run");
        assert_eq!(v, XDP_PASS, "metadata {m:?}");
        assert_eq!(out, f, "untouched");
    }
    assert_eq!(rig.conn_count(), 0);

    // the mark of the service: scheduled to its server (DR: the frame's own port) and
    // an entry made, so the next packet matches without a mark
    let f = syn("10.9.0.2", "10.0.0.77", 40004, 443);
    let (v, out) = dir.run_xdp_meta(&meta(magic, 5), &f, rig.if0).expect("run");
    assert!(v == XDP_TX || v == XDP_REDIRECT, "verdict {v}");
    assert_eq!(&out[14..], &f[14..], "DR leaves the packet as it is");
    assert_eq!(rig.conn_count(), 1);
    let ack = frame(
        D0_MAC,
        GW_MAC,
        &ip_packet(
            ip("10.9.0.2"),
            ip("10.0.0.77"),
            &L4::Tcp {
                sport: 40004,
                dport: 443,
                flags: 0x10,
                payload: vec![],
            },
        ),
    );
    let (v, _) = rig.run(&ack);
    assert!(v == XDP_TX || v == XDP_REDIRECT, "verdict {v}");
    assert_eq!(
        rig.counts(&svc, "10.0.0.11", 0).0,
        1,
        "one active connection"
    );
}
