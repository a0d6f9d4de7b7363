//! Instances together: sync groups, tracked objects, and the receive path from raw bytes
//! (malformed or foreign packets never change state).

use rvs_vrrp::config::{InstanceConfig, Track, TrackTarget};
use rvs_vrrp::drop::DropReason;
use rvs_vrrp::engine::{Engine, GroupConfig, InstanceId, Output};
use rvs_vrrp::machine::{Action, NotifyKind, State, Timer};
use rvs_vrrp::packet::{pass_data, Family, MCAST_V4};
use rvs_vrrp::track::ScriptConfig;
use rvs_vrrp::validate::{receive, RxMeta, Verdict};
use std::net::IpAddr;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn inst(name: &str, vrid: u8, vip: &str, prio: u8) -> InstanceConfig {
    InstanceConfig::new(name, vrid, &[ip(vip)]).with_priority(prio)
}

fn state(e: &Engine, id: InstanceId) -> State {
    e.get(id).unwrap().state()
}

fn group_notifies(out: &[Output]) -> Vec<(String, NotifyKind)> {
    out.iter()
        .filter_map(|o| match o {
            Output::Group { group, kind } => Some((group.clone(), *kind)),
            _ => None,
        })
        .collect()
}

fn pair() -> (Engine, InstanceId, InstanceId) {
    let mut e = Engine::new();
    let a = e.add(inst("VI_1", 51, "192.168.0.38", 100));
    let b = e.add(inst("VI_2", 52, "192.168.1.38", 100));
    e.set_groups(vec![GroupConfig {
        name: "G".into(),
        members: vec!["VI_1".into(), "VI_2".into()],
    }]);
    for id in [a, b] {
        e.get_mut(id)
            .unwrap()
            .set_local_address(Some(ip("10.0.0.2")));
    }
    (e, a, b)
}

#[test]
fn keepalived_sync_group_members_become_master_together() {
    let (mut e, a, b) = pair();
    let out = e.start(Duration::ZERO, &[a, b]);
    assert_eq!(group_notifies(&out), vec![("G".into(), NotifyKind::Backup)]);
    // VI_2 keeps hearing its master; VI_1's master dies.
    let adv = e.get(b).unwrap().advert(200);
    e.advert(secs(3), b, adv, ip("10.0.0.9"));
    let t = e.get(a).unwrap().deadline(Timer::MasterDown).unwrap();
    let out = e.tick(t);
    assert_eq!(state(&e, a), State::Master);
    assert_eq!(state(&e, b), State::Master, "the group follows VI_1");
    assert!(out.iter().any(|o| matches!(o,
        Output::Instance { id, action: Action::AddVips(_) } if *id == b)));
    assert_eq!(group_notifies(&out), vec![("G".into(), NotifyKind::Master)]);
}

#[test]
fn keepalived_sync_group_members_are_demoted_together() {
    let (mut e, a, b) = pair();
    e.start(Duration::ZERO, &[a, b]);
    let t = e.get(a).unwrap().deadline(Timer::MasterDown).unwrap();
    e.tick(t);
    assert_eq!((state(&e, a), state(&e, b)), (State::Master, State::Master));
    let adv = e.get(a).unwrap().advert(200);
    let out = e.advert(t + secs(1), a, adv, ip("10.0.0.9"));
    assert_eq!((state(&e, a), state(&e, b)), (State::Backup, State::Backup));
    assert!(out.iter().any(|o| matches!(o,
        Output::Instance { id, action: Action::RemoveVips(_) } if *id == b)));
}

#[test]
fn keepalived_sync_group_fault_of_one_member_faults_all_until_it_recovers() {
    let (mut e, a, b) = pair();
    let mut c = inst("VI_1", 51, "192.168.0.38", 100);
    c.track.push(Track {
        target: TrackTarget::Interface("eth1".into()),
        weight: 0,
        reverse: false,
    });
    e.reconfigure(Duration::ZERO, a, c);
    e.start(Duration::ZERO, &[a, b]);
    let t = e.get(a).unwrap().deadline(Timer::MasterDown).unwrap();
    e.tick(t);
    let out = e.set_interface(t + secs(1), "eth1", false);
    assert_eq!((state(&e, a), state(&e, b)), (State::Fault, State::Fault));
    // Both masters announced their departure.
    let zeros = out
        .iter()
        .filter(|o| {
            matches!(
                o,
                Output::Instance {
                    action: Action::SendAdvert { priority: 0 },
                    ..
                }
            )
        })
        .count();
    assert_eq!(zeros, 2);
    assert_eq!(group_notifies(&out), vec![("G".into(), NotifyKind::Fault)]);
    e.set_interface(t + secs(2), "eth1", true);
    assert_eq!((state(&e, a), state(&e, b)), (State::Backup, State::Backup));
}

#[test]
fn keepalived_track_script_weight_adjusts_priority_through_rise_and_fall() {
    let mut e = Engine::new();
    let mut c = inst("VI_1", 51, "192.168.0.38", 100);
    c.track.push(Track {
        target: TrackTarget::Script("chk".into()),
        weight: -20,
        reverse: false,
    });
    let id = e.add(c);
    e.set_scripts(vec![ScriptConfig {
        name: "chk".into(),
        rise: 1,
        fall: 2,
        init_fail: false,
    }]);
    e.start(Duration::ZERO, &[id]);
    e.script_result(secs(1), "chk", true);
    assert_eq!(e.get(id).unwrap().effective_priority(), 100);
    e.script_result(secs(2), "chk", false);
    assert_eq!(e.get(id).unwrap().effective_priority(), 100, "fall 2");
    e.script_result(secs(3), "chk", false);
    assert_eq!(e.get(id).unwrap().effective_priority(), 80);
    e.script_result(secs(4), "chk", true);
    assert_eq!(e.get(id).unwrap().effective_priority(), 100);
}

#[test]
fn keepalived_shutdown_of_the_engine_sends_priority_zero_from_masters_only() {
    let mut e = Engine::new();
    let a = e.add(inst("VI_1", 51, "192.168.0.38", 100));
    let b = e.add(inst("VI_2", 52, "192.168.1.38", 100));
    e.start(Duration::ZERO, &[a, b]);
    let t = e.get(a).unwrap().deadline(Timer::MasterDown).unwrap();
    e.tick(t);
    // Both timed out together (same config); make VI_2 a backup again.
    let adv = e.get(b).unwrap().advert(200);
    e.advert(t, b, adv, ip("10.0.0.9"));
    let out = e.shutdown(t + secs(1));
    let zeros: Vec<InstanceId> = out
        .iter()
        .filter_map(|o| match o {
            Output::Instance {
                id,
                action: Action::SendAdvert { priority: 0 },
            } => Some(*id),
            _ => None,
        })
        .collect();
    assert_eq!(zeros, vec![a]);
}

/// A master receiving every single-bit corruption of a higher-priority advert: all are
/// dropped by the receive checks (the checksum catches any single-bit error), so the
/// master stays master.
#[test]
fn rfc5798_7_1_corrupted_adverts_never_change_state() {
    let mut e = Engine::new();
    let mut c = inst("VI_1", 51, "192.168.0.38", 100);
    c.auth_pass = Some(pass_data(b"1111"));
    let id = e.add(c);
    e.get_mut(id)
        .unwrap()
        .set_local_address(Some(ip("10.0.0.2")));
    e.start(Duration::ZERO, &[id]);
    let t = e.get(id).unwrap().deadline(Timer::MasterDown).unwrap();
    e.tick(t);
    let meta = RxMeta {
        src: ip("10.0.0.9"),
        dst: IpAddr::V4(MCAST_V4),
        ttl: Some(255),
    };
    let good = e.get(id).unwrap().advert(200).encode(meta.src, meta.dst);
    let mut dropped = 0;
    for byte in 0..good.len() {
        for bit in 0..8 {
            let mut b = good.clone();
            b[byte] ^= 1 << bit;
            let v = receive(
                &b,
                &meta,
                Family::V4,
                false,
                |vrid| (vrid == 51).then(|| (id, e.get(id).unwrap().config())),
                |_| false,
            );
            match v {
                Verdict::Accept(..) => panic!("corrupted byte {byte} bit {bit} accepted"),
                Verdict::Drop(_, r) => {
                    assert!(
                        matches!(
                            r,
                            DropReason::Checksum
                                | DropReason::Version
                                | DropReason::Type
                                | DropReason::Length
                                | DropReason::UnknownVrid
                        ),
                        "{r}"
                    );
                    dropped += 1;
                }
            }
        }
    }
    assert_eq!(dropped, good.len() * 8);
    assert_eq!(state(&e, id), State::Master);
    // The uncorrupted one does demote it.
    let Verdict::Accept(_, a) = receive(
        &good,
        &meta,
        Family::V4,
        false,
        |vrid| (vrid == 51).then(|| (id, e.get(id).unwrap().config())),
        |_| false,
    ) else {
        panic!("good advert dropped")
    };
    e.advert(t + secs(1), id, a, meta.src);
    assert_eq!(state(&e, id), State::Backup);
}

#[test]
fn rfc5798_7_1_wrong_ttl_foreign_vrid_and_bad_auth_never_reach_the_machine() {
    let mut e = Engine::new();
    let mut c = inst("VI_1", 51, "192.168.0.38", 100);
    c.auth_pass = Some(pass_data(b"1111"));
    let id = e.add(c.clone());
    e.start(Duration::ZERO, &[id]);
    let t = e.get(id).unwrap().deadline(Timer::MasterDown).unwrap();
    e.tick(t);
    let meta = RxMeta {
        src: ip("10.0.0.9"),
        dst: IpAddr::V4(MCAST_V4),
        ttl: Some(255),
    };
    let lookup = |vrid: u8| (vrid == 51).then_some((id, &c));
    let good = e.get(id).unwrap().advert(200);
    let ttl = RxMeta {
        ttl: Some(64),
        ..meta
    };
    assert_eq!(
        receive(
            &good.encode(meta.src, meta.dst),
            &ttl,
            Family::V4,
            false,
            lookup,
            |_| false
        ),
        Verdict::Drop(Some(id), DropReason::Ttl)
    );
    let mut foreign = good.clone();
    foreign.vrid = 99;
    assert_eq!(
        receive(
            &foreign.encode(meta.src, meta.dst),
            &meta,
            Family::V4,
            false,
            lookup,
            |_| false
        ),
        Verdict::Drop(None, DropReason::UnknownVrid)
    );
    let mut bad_pass = good.clone();
    bad_pass.auth_data = pass_data(b"x");
    assert_eq!(
        receive(
            &bad_pass.encode(meta.src, meta.dst),
            &meta,
            Family::V4,
            false,
            lookup,
            |_| false
        ),
        Verdict::Drop(Some(id), DropReason::AuthFailure)
    );
    assert_eq!(state(&e, id), State::Master);
}
