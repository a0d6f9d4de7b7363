//! The VRRP state machine stepped without a network (Seesaw's habit): every test names
//! the RFC 3768 / RFC 5798 (or keepalived) rule it pins down.

use rvs_vrrp::config::{InstanceConfig, Track, TrackTarget, Vip};
use rvs_vrrp::machine::{Action, Event, Instance, NotifyKind, State, Timer};
use rvs_vrrp::packet::{Advert, Version};
use rvs_vrrp::timers;
use std::net::IpAddr;
use std::time::Duration;

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn us(n: u64) -> Duration {
    Duration::from_micros(n)
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

const VIP: &str = "192.168.0.38";
const LOCAL: &str = "10.0.0.2";
const PEER_LOW: &str = "10.0.0.1";
const PEER_HIGH: &str = "10.0.0.3";

fn cfg(priority: u8) -> InstanceConfig {
    InstanceConfig::new("VI_1", 51, &[ip(VIP)]).with_priority(priority)
}

fn instance(c: InstanceConfig) -> Instance {
    let mut i = Instance::new(c);
    i.set_local_address(Some(ip(LOCAL)));
    i
}

/// An advert as the peer would send it for the same instance, with `priority`.
fn advert_from(i: &Instance, priority: u8) -> Advert {
    let mut a = i.advert(priority);
    a.priority = priority;
    a
}

fn rx(i: &mut Instance, now: Duration, priority: u8, src: &str) -> Vec<Action> {
    let advert = advert_from(i, priority);
    i.step(
        now,
        Event::Advert {
            advert,
            src: ip(src),
        },
    )
}

fn sent(acts: &[Action]) -> Vec<u8> {
    acts.iter()
        .filter_map(|a| match a {
            Action::SendAdvert { priority } => Some(*priority),
            _ => None,
        })
        .collect()
}

fn notified(acts: &[Action]) -> Vec<NotifyKind> {
    acts.iter()
        .filter_map(|a| match a {
            Action::Notify { kind, .. } => Some(*kind),
            _ => None,
        })
        .collect()
}

fn has_add(acts: &[Action]) -> bool {
    acts.iter()
        .any(|a| matches!(a, Action::AddVips(v) if v.iter().any(|x| x.addr == ip(VIP))))
}

fn has_remove(acts: &[Action]) -> bool {
    acts.iter()
        .any(|a| matches!(a, Action::RemoveVips(v) if v.iter().any(|x| x.addr == ip(VIP))))
}

/// A backup started at t=0 and made master by its down timer.
fn master(priority: u8) -> (Instance, Duration) {
    let mut i = instance(cfg(priority));
    i.step(Duration::ZERO, Event::Startup);
    let t = i.deadline(Timer::MasterDown).unwrap();
    i.step(t, Event::Tick);
    assert_eq!(i.state(), State::Master);
    (i, t)
}

#[test]
fn rfc5798_6_4_1_owner_with_state_master_becomes_master_at_startup() {
    let mut c = cfg(255);
    c.wants_master = true;
    let mut i = instance(c);
    let acts = i.step(secs(10), Event::Startup);
    assert_eq!(i.state(), State::Master);
    assert!(has_add(&acts));
    assert_eq!(sent(&acts), vec![255]);
    assert_eq!(notified(&acts), vec![NotifyKind::Master]);
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::SendGarp { repeat: 5, .. })));
    assert_eq!(i.deadline(Timer::Adver), Some(secs(11)));
    assert_eq!(i.deadline(Timer::MasterDown), None);
}

#[test]
fn rfc5798_6_4_1_non_owner_starts_backup_with_master_down_interval() {
    let mut i = instance(cfg(100));
    let acts = i.step(secs(1), Event::Startup);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(notified(&acts), vec![NotifyKind::Backup]);
    assert!(sent(&acts).is_empty() && !has_add(&acts));
    // 3 × 1 s + (256 − 100)/256 s.
    assert_eq!(i.deadline(Timer::MasterDown), Some(secs(1) + us(3_609_375)));
}

#[test]
fn keepalived_state_master_below_255_still_waits_master_down_interval() {
    let mut c = cfg(100);
    c.wants_master = true;
    let mut i = instance(c);
    i.step(Duration::ZERO, Event::Startup);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn rfc5798_6_4_2_master_down_timer_expiry_makes_the_backup_master() {
    let mut i = instance(cfg(100));
    i.step(Duration::ZERO, Event::Startup);
    let t = i.deadline(Timer::MasterDown).unwrap();
    assert!(i.step(t - us(1), Event::Tick).is_empty());
    assert_eq!(i.state(), State::Backup);
    let acts = i.step(t, Event::Tick);
    assert_eq!(i.state(), State::Master);
    assert!(has_add(&acts));
    assert_eq!(sent(&acts), vec![100]);
    assert_eq!(i.deadline(Timer::Adver), Some(t + secs(1)));
}

#[test]
fn rfc5798_6_4_3_adver_timer_sends_an_advert_every_interval() {
    let (mut i, t) = master(100);
    let acts = i.step(t + secs(1), Event::Tick);
    assert_eq!(sent(&acts), vec![100]);
    assert_eq!(i.deadline(Timer::Adver), Some(t + secs(2)));
}

#[test]
fn rfc5798_6_4_2_advert_with_higher_priority_resets_master_down_timer() {
    let mut i = instance(cfg(100));
    i.step(Duration::ZERO, Event::Startup);
    rx(&mut i, secs(3), 150, PEER_LOW);
    assert_eq!(i.deadline(Timer::MasterDown), Some(secs(3) + us(3_609_375)));
    assert_eq!(i.master(), Some((ip(PEER_LOW), 150)));
    // Equal priority also resets it (Priority >= local).
    rx(&mut i, secs(4), 100, PEER_LOW);
    assert_eq!(i.deadline(Timer::MasterDown), Some(secs(4) + us(3_609_375)));
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn rfc5798_6_4_2_backup_preempts_on_lower_priority_advert() {
    let mut i = instance(cfg(150));
    i.step(Duration::ZERO, Event::Startup);
    let deadline = i.deadline(Timer::MasterDown).unwrap();
    // A lower-priority master keeps advertising: discarded, the timer keeps running.
    for s in 1..=3 {
        assert!(rx(&mut i, secs(s), 100, PEER_LOW).is_empty());
    }
    assert_eq!(i.deadline(Timer::MasterDown), Some(deadline));
    i.step(deadline, Event::Tick);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn rfc5798_6_4_2_nopreempt_backup_accepts_a_lower_priority_master() {
    let mut c = cfg(150);
    c.preempt = false;
    let mut i = instance(c);
    i.step(Duration::ZERO, Event::Startup);
    for s in 1..=10 {
        rx(&mut i, secs(s), 100, PEER_LOW);
        i.step(secs(s) + Duration::from_millis(999), Event::Tick);
        assert_eq!(i.state(), State::Backup, "preempted at {s} s");
    }
}

#[test]
fn rfc5798_6_4_2_priority_zero_sets_master_down_timer_to_skew_time() {
    let mut i = instance(cfg(100));
    i.step(Duration::ZERO, Event::Startup);
    rx(&mut i, secs(1), 200, PEER_LOW);
    rx(&mut i, secs(2), 0, PEER_LOW);
    let skew = timers::skew(Version::V2, 100, secs(1));
    assert_eq!(skew, us(609_375));
    assert_eq!(i.deadline(Timer::MasterDown), Some(secs(2) + skew));
    i.step(secs(2) + skew, Event::Tick);
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.stats().priority_zero_rx, 1);
}

#[test]
fn rfc5798_6_4_3_shutdown_sends_priority_zero_and_removes_the_addresses() {
    let (mut i, t) = master(100);
    let acts = i.step(t + us(5), Event::Shutdown);
    assert_eq!(sent(&acts), vec![0]);
    assert!(has_remove(&acts));
    assert_eq!(notified(&acts), vec![NotifyKind::Stop]);
    assert_eq!(i.state(), State::Initialize);
    assert_eq!(i.next_deadline(), None);
    assert_eq!(i.stats().priority_zero_tx, 1);
}

#[test]
fn rfc5798_6_4_2_backup_shutdown_sends_nothing() {
    let mut i = instance(cfg(100));
    i.step(Duration::ZERO, Event::Startup);
    let acts = i.step(secs(1), Event::Shutdown);
    assert!(sent(&acts).is_empty() && !has_remove(&acts));
    assert_eq!(notified(&acts), vec![NotifyKind::Stop]);
}

#[test]
fn rfc5798_6_4_3_master_yields_to_a_higher_priority_advert_without_priority_zero() {
    let (mut i, t) = master(100);
    let now = t + us(10);
    let acts = rx(&mut i, now, 200, PEER_LOW);
    assert_eq!(i.state(), State::Backup);
    assert!(sent(&acts).is_empty(), "demotion sends no advert");
    assert!(has_remove(&acts));
    assert_eq!(notified(&acts), vec![NotifyKind::Backup]);
    assert_eq!(i.deadline(Timer::Adver), None);
    assert_eq!(i.deadline(Timer::MasterDown), Some(now + us(3_609_375)));
    assert_eq!(i.stats().released_master, 1);
}

#[test]
fn rfc5798_6_4_3_equal_priority_higher_sender_address_wins() {
    let (mut i, t) = master(100);
    rx(&mut i, t + us(1), 100, PEER_HIGH);
    assert_eq!(i.state(), State::Backup);
}

#[test]
fn rfc5798_6_4_3_equal_priority_lower_sender_address_loses() {
    let (mut i, t) = master(100);
    let acts = rx(&mut i, t + us(1), 100, PEER_LOW);
    assert_eq!(i.state(), State::Master);
    assert_eq!(
        sent(&acts),
        vec![100],
        "keepalived answers with its own advert"
    );
}

#[test]
fn rfc9568_master_answers_a_lower_priority_advert_with_its_own() {
    let (mut i, t) = master(100);
    let now = t + Duration::from_millis(300);
    let acts = rx(&mut i, now, 50, PEER_HIGH);
    assert_eq!(i.state(), State::Master);
    assert_eq!(sent(&acts), vec![100]);
    assert_eq!(i.deadline(Timer::Adver), Some(now + secs(1)));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::NotifyMasterRxLowerPri { priority: 50, .. })));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::SendGarp { repeat: 5, .. })));
}

#[test]
fn rfc5798_6_4_3_lower_prio_no_advert_discards_as_the_rfc_says() {
    let mut c = cfg(100);
    c.lower_prio_no_advert = true;
    c.garp.lower_prio_repeat = 0;
    let mut i = instance(c);
    i.step(Duration::ZERO, Event::Startup);
    let t = i.deadline(Timer::MasterDown).unwrap();
    i.step(t, Event::Tick);
    let acts = rx(&mut i, t + us(1), 50, PEER_HIGH);
    assert!(sent(&acts).is_empty());
    assert_eq!(i.state(), State::Master);
}

#[test]
fn rfc5798_6_4_3_master_answers_priority_zero_with_an_advert() {
    let (mut i, t) = master(100);
    let acts = rx(&mut i, t + us(100), 0, PEER_HIGH);
    assert_eq!(sent(&acts), vec![100]);
    assert_eq!(i.state(), State::Master);
    assert_eq!(i.deadline(Timer::Adver), Some(t + us(100) + secs(1)));
}

#[test]
fn rfc5798_6_4_2_v3_backup_learns_master_adver_interval() {
    let c = cfg(100).with_version(Version::V3);
    let mut i = instance(c);
    i.step(Duration::ZERO, Event::Startup);
    let mut a = i.advert(200);
    a.interval = 50; // the master advertises every 0.5 s
    i.step(
        secs(1),
        Event::Advert {
            advert: a,
            src: ip(PEER_LOW),
        },
    );
    assert_eq!(i.master_adver_int(), Duration::from_millis(500));
    // 3 × 0.5 s + (156 × 50 cs × 625 / 16) µs.
    assert_eq!(i.deadline(Timer::MasterDown), Some(secs(1) + us(1_804_687)));
}

#[test]
fn rfc5798_6_4_3_v3_demoted_master_adopts_the_new_masters_interval() {
    let mut i = instance(cfg(100).with_version(Version::V3));
    i.step(Duration::ZERO, Event::Startup);
    let t = i.deadline(Timer::MasterDown).unwrap();
    i.step(t, Event::Tick);
    let mut a = i.advert(200);
    a.interval = 200;
    i.step(
        t,
        Event::Advert {
            advert: a,
            src: ip(PEER_LOW),
        },
    );
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.master_adver_int(), secs(2));
    assert_eq!(i.master_down_interval(), secs(6) + us(1_218_750));
}

#[test]
fn rfc3768_6_1_v2_skew_uses_the_local_priority() {
    let i = instance(cfg(200));
    assert_eq!(i.master_down_interval(), secs(3) + us(218_750));
}

#[test]
fn keepalived_down_timer_adverts_lengthens_master_down() {
    let mut c = cfg(100);
    c.down_timer_adverts = 5;
    let mut i = instance(c);
    i.step(Duration::ZERO, Event::Startup);
    assert_eq!(i.deadline(Timer::MasterDown), Some(secs(5) + us(609_375)));
}

#[test]
fn keepalived_preempt_delay_holds_preemption_until_it_has_elapsed() {
    let mut c = cfg(150);
    c.preempt_delay = secs(10);
    let mut i = instance(c);
    i.step(Duration::ZERO, Event::Startup);
    // The lower-priority master's adverts are accepted (timer reset) for 10 s.
    for s in 1..=10 {
        rx(&mut i, secs(s), 100, PEER_LOW);
        i.step(secs(s) + Duration::from_millis(999), Event::Tick);
        assert_eq!(i.state(), State::Backup, "preempted at {s} s");
    }
    // From then on they are discarded: the last reset (at 10 s) expires.
    let deadline = i.deadline(Timer::MasterDown).unwrap();
    assert_eq!(deadline, secs(10) + i.master_down_interval());
    rx(&mut i, secs(11), 100, PEER_LOW);
    assert_eq!(i.deadline(Timer::MasterDown), Some(deadline));
    i.step(deadline, Event::Tick);
    assert_eq!(i.state(), State::Master);
}

#[test]
fn keepalived_unweighted_track_down_enters_fault_with_priority_zero() {
    let (mut i, t) = master(100);
    let acts = i.step(
        t + us(1),
        Event::Tracking {
            fault: true,
            weight: 0,
        },
    );
    assert_eq!(i.state(), State::Fault);
    assert_eq!(sent(&acts), vec![0]);
    assert!(has_remove(&acts));
    assert_eq!(notified(&acts), vec![NotifyKind::Fault]);
    assert_eq!(i.next_deadline(), None, "no adverts in FAULT");
    // Adverts are ignored in FAULT.
    assert!(rx(&mut i, t + secs(1), 200, PEER_LOW).is_empty());
    // Back up: BACKUP with a full Master_Down_Interval.
    let acts = i.step(
        t + secs(2),
        Event::Tracking {
            fault: false,
            weight: 0,
        },
    );
    assert_eq!(i.state(), State::Backup);
    assert_eq!(notified(&acts), vec![NotifyKind::Backup]);
    assert_eq!(
        i.deadline(Timer::MasterDown),
        Some(t + secs(2) + us(3_609_375))
    );
}

#[test]
fn keepalived_fault_at_startup_starts_in_fault() {
    let mut i = instance(cfg(100));
    i.step(
        Duration::ZERO,
        Event::Tracking {
            fault: true,
            weight: 0,
        },
    );
    let acts = i.step(Duration::ZERO, Event::Startup);
    assert_eq!(i.state(), State::Fault);
    assert_eq!(notified(&acts), vec![NotifyKind::Fault]);
}

#[test]
fn keepalived_track_weights_change_the_effective_priority_within_1_to_254() {
    let mut i = instance(cfg(100));
    i.step(
        Duration::ZERO,
        Event::Tracking {
            fault: false,
            weight: -30,
        },
    );
    assert_eq!(i.effective_priority(), 70);
    assert_eq!(i.advert(i.effective_priority()).priority, 70);
    i.step(
        Duration::ZERO,
        Event::Tracking {
            fault: false,
            weight: 200,
        },
    );
    assert_eq!(i.effective_priority(), 254);
    i.step(
        Duration::ZERO,
        Event::Tracking {
            fault: false,
            weight: -200,
        },
    );
    assert_eq!(i.effective_priority(), 1);
    // An address owner is never adjusted.
    let mut o = instance(cfg(255));
    o.step(
        Duration::ZERO,
        Event::Tracking {
            fault: false,
            weight: -50,
        },
    );
    assert_eq!(o.effective_priority(), 255);
}

#[test]
fn keepalived_weighted_priority_drop_lets_a_backup_preempt() {
    // The master's priority falls below the backup's: the backup's discarding of the
    // master's now-lower adverts lets its timer run out.
    let (mut m, t) = master(150);
    m.step(
        t,
        Event::Tracking {
            fault: false,
            weight: -60,
        },
    );
    let mut b = instance(cfg(120));
    b.step(t, Event::Startup);
    let deadline = b.deadline(Timer::MasterDown).unwrap();
    let a = m.advert(m.effective_priority());
    assert_eq!(a.priority, 90);
    b.step(
        t + secs(1),
        Event::Advert {
            advert: a,
            src: ip(PEER_LOW),
        },
    );
    assert_eq!(b.deadline(Timer::MasterDown), Some(deadline));
}

#[test]
fn keepalived_second_garp_burst_after_garp_master_delay() {
    let (mut i, t) = master(100);
    assert_eq!(i.deadline(Timer::GarpDelay), Some(t + secs(5)));
    let acts = i.step(t + secs(5), Event::Tick);
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::SendGarp { repeat: 5, addrs } if addrs == &vec![ip(VIP)])));
    assert_eq!(i.deadline(Timer::GarpDelay), None);
}

#[test]
fn keepalived_garp_refresh_repeats_while_master() {
    let mut c = cfg(100);
    c.garp.master_delay = Duration::ZERO;
    c.garp.refresh = secs(30);
    c.garp.refresh_repeat = 2;
    let mut i = instance(c);
    i.step(Duration::ZERO, Event::Startup);
    let t = i.deadline(Timer::MasterDown).unwrap();
    i.step(t, Event::Tick);
    assert_eq!(i.deadline(Timer::GarpDelay), None);
    let acts = i.step(t + secs(30), Event::Tick);
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::SendGarp { repeat: 2, .. })));
    assert_eq!(i.deadline(Timer::GarpRefresh), Some(t + secs(60)));
}

#[test]
fn keepalived_two_address_owners_the_lower_address_backs_off() {
    let mut c = cfg(255);
    c.wants_master = true;
    let mut i = instance(c.clone());
    i.step(Duration::ZERO, Event::Startup);
    rx(&mut i, secs(1), 255, PEER_LOW);
    assert_eq!(
        i.state(),
        State::Master,
        "the other owner has the lower address"
    );
    rx(&mut i, secs(1), 255, PEER_HIGH);
    assert_eq!(i.state(), State::Backup);
    assert_eq!(i.effective_priority(), 254);
}

#[test]
fn rfc5798_6_4_tick_before_any_deadline_does_nothing() {
    let mut i = instance(cfg(100));
    assert!(i.step(secs(100), Event::Tick).is_empty());
    assert_eq!(i.state(), State::Initialize);
}

#[test]
fn reload_swaps_the_addresses_of_a_running_master() {
    let (mut i, t) = master(100);
    let mut c = cfg(100);
    c.vips = vec![Vip::host(ip("192.168.0.39"))];
    let acts = i.reconfigure(t, c);
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::RemoveVips(v) if v[0].addr == ip(VIP))));
    assert!(acts
        .iter()
        .any(|a| matches!(a, Action::AddVips(v) if v[0].addr == ip("192.168.0.39"))));
    assert_eq!(i.state(), State::Master);
    // A priority change is taken as is.
    let acts = i.reconfigure(t, cfg(120).clone());
    assert!(!acts.iter().any(|a| matches!(a, Action::SendAdvert { .. })));
    assert_eq!(i.effective_priority(), 120);
}

#[test]
fn track_configuration_is_carried_by_the_instance() {
    let mut c = cfg(100);
    c.track.push(Track {
        target: TrackTarget::Interface("eth0".into()),
        weight: 0,
        reverse: false,
    });
    assert_eq!(instance(c).config().track.len(), 1);
}
