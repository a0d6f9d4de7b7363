//! One virtual router as a pure state machine (RFC 3768 §6.4, RFC 5798 §6.4, with
//! keepalived's FAULT state and extensions). It does no I/O and reads no clock: every
//! call passes `now` (any monotonic origin) and returns the [`Action`]s the network side
//! must carry out, in order. Timers are deadlines kept here; the driver calls
//! [`Instance::step`] with [`Event::Tick`] at (or after) [`Instance::next_deadline`].
//!
//! ```text
//!            Startup                 Master_Down_Timer / owner at startup
//! Initialize -------> Backup ------------------------------------------> Master
//!     ^                 ^  <--- higher-priority advert (or equal, higher address)   |
//!     |                 |                                                          |
//!     +---- Shutdown ---+------------------ Shutdown (sends priority 0) -----------+
//!       any state --- unweighted tracked object down ---> Fault --- back up ---> Backup
//! ```

use crate::config::{InstanceConfig, Vip};
use crate::packet::{Advert, Version, PRIORITY_OWNER, PRIORITY_STOP};
use crate::timers;
use std::net::IpAddr;
use std::time::Duration;

/// RFC 5798 §6.4 states plus keepalived's FAULT.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum State {
    /// Not started, or stopped (§6.4.1).
    Initialize,
    /// Monitoring the master (§6.4.2).
    Backup,
    /// Forwarding for the virtual addresses (§6.4.3).
    Master,
    /// keepalived: a tracked interface or script is down; no adverts, no addresses.
    Fault,
}

impl State {
    /// keepalived's word for the state (notify scripts, logs, status).
    pub fn name(self) -> &'static str {
        match self {
            State::Initialize => "INIT",
            State::Backup => "BACKUP",
            State::Master => "MASTER",
            State::Fault => "FAULT",
        }
    }
}

/// What a notify script is told (keepalived's `notify` third argument).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NotifyKind {
    Master,
    Backup,
    Fault,
    Stop,
}

impl NotifyKind {
    pub fn name(self) -> &'static str {
        match self {
            NotifyKind::Master => "MASTER",
            NotifyKind::Backup => "BACKUP",
            NotifyKind::Fault => "FAULT",
            NotifyKind::Stop => "STOP",
        }
    }
}

/// The timers of an instance.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Timer {
    /// Master_Down_Timer (Backup).
    MasterDown,
    /// Adver_Timer (Master).
    Adver,
    /// keepalived's second gratuitous ARP burst (`garp_master_delay`).
    GarpDelay,
    /// keepalived's periodic gratuitous ARP (`garp_master_refresh`).
    GarpRefresh,
    /// keepalived's second burst after a lower-priority advert (`garp_lower_prio_delay`).
    GarpLowerPrio,
}

impl Timer {
    const ALL: [Timer; 5] = [
        Timer::MasterDown,
        Timer::Adver,
        Timer::GarpDelay,
        Timer::GarpRefresh,
        Timer::GarpLowerPrio,
    ];

    fn index(self) -> usize {
        self as usize
    }
}

/// Input to the machine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// RFC 5798 §6.4.1 Startup.
    Startup,
    /// Shutdown (daemon stop, instance deleted by a reload).
    Shutdown,
    /// An ADVERTISEMENT that passed every receive check ([`crate::validate`]) and the IP
    /// source it came from.
    Advert { advert: Advert, src: IpAddr },
    /// Timers whose deadline is `<= now` fire.
    Tick,
    /// Tracked objects changed: `fault` if an unweighted one is down, `weight` the sum
    /// of the weights that apply ([`crate::track`]).
    Tracking { fault: bool, weight: i32 },
}

/// Output of the machine, to be carried out in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Send an ADVERTISEMENT with this priority (0 when leaving).
    SendAdvert { priority: u8 },
    /// Install these addresses.
    AddVips(Vec<Vip>),
    /// Remove these addresses.
    RemoveVips(Vec<Vip>),
    /// A burst of gratuitous ARPs (IPv4) / unsolicited NAs (IPv6): `repeat` per address.
    SendGarp { addrs: Vec<IpAddr>, repeat: u32 },
    /// Run the notify scripts for a state change, with the priority to report.
    Notify { kind: NotifyKind, priority: u8 },
    /// keepalived `notify_master_rx_lower_pri`.
    NotifyMasterRxLowerPri { from: IpAddr, priority: u8 },
    /// A timer was (re)armed to fire at this time.
    SetTimer { timer: Timer, at: Duration },
    /// A timer was stopped.
    CancelTimer(Timer),
}

/// What the machine counted (keepalived's `vrrp->stats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MachineStats {
    /// Valid adverts acted upon.
    pub adverts_rx: u64,
    pub adverts_tx: u64,
    pub priority_zero_rx: u64,
    pub priority_zero_tx: u64,
    pub became_master: u64,
    pub released_master: u64,
}

/// One virtual router.
#[derive(Clone, Debug)]
pub struct Instance {
    cfg: InstanceConfig,
    state: State,
    /// The configured priority, unless an owner conflict lowered it (keepalived).
    base: u8,
    effective: u8,
    track_weight: i32,
    own_fault: bool,
    /// Set by a sync group when another member is in FAULT.
    group_fault: bool,
    master_adver_int: Duration,
    timers: [Option<Duration>; 5],
    /// End of `preempt_delay`, once a lower-priority master was first seen.
    preempt_at: Option<Duration>,
    /// The last master heard: address and priority.
    master: Option<(IpAddr, u8)>,
    /// Our address as peers see it (tie-break of RFC 5798 §6.4.3).
    local: Option<IpAddr>,
    stats: MachineStats,
}

impl Instance {
    pub fn new(cfg: InstanceConfig) -> Instance {
        let base = cfg.priority;
        let master_adver_int = cfg.advert_int;
        Instance {
            cfg,
            state: State::Initialize,
            base,
            effective: base,
            track_weight: 0,
            own_fault: false,
            group_fault: false,
            master_adver_int,
            timers: [None; 5],
            preempt_at: None,
            master: None,
            local: None,
            stats: MachineStats::default(),
        }
    }

    pub fn config(&self) -> &InstanceConfig {
        &self.cfg
    }

    pub fn state(&self) -> State {
        self.state
    }

    /// The priority sent in adverts: configured plus tracking weights, kept in 1..254
    /// for non-owners (an owner stays 255), as keepalived.
    pub fn effective_priority(&self) -> u8 {
        self.effective
    }

    pub fn base_priority(&self) -> u8 {
        self.base
    }

    pub fn master_adver_int(&self) -> Duration {
        self.master_adver_int
    }

    /// The master last heard from (Backup), with its priority.
    pub fn master(&self) -> Option<(IpAddr, u8)> {
        self.master
    }

    pub fn stats(&self) -> &MachineStats {
        &self.stats
    }

    /// Own tracking says FAULT (not counting a sync group's).
    pub fn own_fault(&self) -> bool {
        self.own_fault
    }

    pub fn deadline(&self, t: Timer) -> Option<Duration> {
        self.timers[t.index()]
    }

    /// The earliest armed timer.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.timers.iter().flatten().min().copied()
    }

    /// Our primary address on the interface (or `unicast_src_ip`/`mcast_src_ip`): the
    /// equal-priority tie-break compares it with the sender's.
    pub fn set_local_address(&mut self, a: Option<IpAddr>) {
        self.local = a;
    }

    pub fn local_address(&self) -> Option<IpAddr> {
        self.local
    }

    /// Skew_Time with the current effective priority.
    pub fn skew(&self) -> Duration {
        timers::skew(self.cfg.version, self.effective, self.master_adver_int)
    }

    /// Master_Down_Interval with the current Master_Adver_Interval and priority.
    pub fn master_down_interval(&self) -> Duration {
        timers::master_down(
            self.cfg.version,
            self.effective,
            self.master_adver_int,
            self.cfg.down_timer_adverts,
        )
    }

    /// The advert to send with `priority`.
    pub fn advert(&self, priority: u8) -> Advert {
        advert_for(&self.cfg, priority)
    }

    /// Feeds one event.
    pub fn step(&mut self, now: Duration, ev: Event) -> Vec<Action> {
        let mut out = Vec::new();
        match ev {
            Event::Startup => self.startup(now, &mut out),
            Event::Shutdown => self.shutdown(&mut out),
            Event::Advert { advert, src } => self.on_advert(now, &advert, src, &mut out),
            Event::Tick => self.tick(now, &mut out),
            Event::Tracking { fault, weight } => {
                self.track_weight = weight;
                self.recompute_priority();
                self.own_fault = fault;
                self.apply_fault(now, &mut out);
            }
        }
        out
    }

    /// RFC 5798 §6.4.1. keepalived: only an address owner with `state MASTER` becomes
    /// master at once; everything else waits Master_Down_Interval in BACKUP.
    fn startup(&mut self, now: Duration, out: &mut Vec<Action>) {
        if self.state != State::Initialize {
            return;
        }
        self.master_adver_int = self.cfg.advert_int;
        if self.faulted() {
            self.state = State::Fault;
            out.push(self.notify(NotifyKind::Fault));
            return;
        }
        if self.base == PRIORITY_OWNER && self.cfg.wants_master {
            self.become_master(now, out);
        } else {
            self.enter_backup(now, self.master_down_interval(), out);
        }
    }

    /// Shutdown from any state: a master sends priority 0 so a backup takes over after
    /// Skew_Time (§6.4.3 "Shutdown"), removes its addresses; STOP is notified.
    fn shutdown(&mut self, out: &mut Vec<Action>) {
        if self.state == State::Master {
            self.send(PRIORITY_STOP, out);
            out.push(Action::RemoveVips(self.cfg.installed()));
            self.stats.released_master += 1;
        }
        if self.state != State::Initialize {
            self.cancel_all(out);
            self.state = State::Initialize;
            out.push(self.notify(NotifyKind::Stop));
        }
    }

    fn on_advert(&mut self, now: Duration, a: &Advert, src: IpAddr, out: &mut Vec<Action>) {
        match self.state {
            // keepalived ignores adverts while in FAULT or not started.
            State::Initialize | State::Fault => return,
            State::Backup => self.backup_rx(now, a, src, out),
            State::Master => self.master_rx(now, a, src, out),
        }
        self.stats.adverts_rx += 1;
        if a.priority == PRIORITY_STOP {
            self.stats.priority_zero_rx += 1;
        }
    }

    /// RFC 5798 §6.4.2 "If an ADVERTISEMENT is received".
    fn backup_rx(&mut self, now: Duration, a: &Advert, src: IpAddr, out: &mut Vec<Action>) {
        if a.priority == PRIORITY_STOP {
            // The master is leaving: take over after Skew_Time only.
            let skew = self.skew();
            self.arm(Timer::MasterDown, now + skew, out);
            return;
        }
        let delaying = !self.cfg.preempt_delay.is_zero() && self.preempt_at.is_none_or(|t| t > now);
        if !self.cfg.preempt || a.priority >= self.effective || delaying {
            if self.cfg.version == Version::V3 {
                // §6.4.2: Master_Adver_Interval = the advert's interval.
                self.master_adver_int = a.interval();
            }
            let down = self.master_down_interval();
            self.arm(Timer::MasterDown, now + down, out);
            self.master = Some((src, a.priority));
            if !self.cfg.preempt_delay.is_zero() {
                if a.priority >= self.effective {
                    self.preempt_at = None;
                } else if self.preempt_at.is_none() {
                    self.preempt_at = Some(now + self.cfg.preempt_delay);
                }
            }
        } else {
            // A lower-priority master and we preempt: discard, so Master_Down_Timer
            // keeps running and fires.
            self.master = Some((src, a.priority));
        }
    }

    /// RFC 5798 §6.4.3 "If an ADVERTISEMENT is received", with keepalived's answers.
    fn master_rx(&mut self, now: Duration, a: &Advert, src: IpAddr, out: &mut Vec<Action>) {
        let addr_cmp = self.local.map(|l| cmp_addr(&src, &l));
        let higher = a.priority > self.effective
            || (a.priority == self.effective && addr_cmp == Some(std::cmp::Ordering::Greater));
        if a.priority == PRIORITY_STOP {
            // Another master is leaving: assert ourselves at once.
            self.send_and_rearm(now, out);
            return;
        }
        if self.cfg.higher_prio_send_advert && higher {
            self.send(self.effective, out);
        }
        if a.priority == self.effective && self.effective == PRIORITY_OWNER {
            match addr_cmp {
                // keepalived: two address owners is a configuration error; the one with
                // the lower address backs off to 254.
                Some(std::cmp::Ordering::Greater) => {
                    self.base = PRIORITY_OWNER - 1;
                    self.recompute_priority();
                }
                Some(std::cmp::Ordering::Less) => {}
                _ => return,
            }
        }
        let lower = a.priority < self.effective
            || (a.priority == self.effective && addr_cmp == Some(std::cmp::Ordering::Less));
        if lower {
            // RFC 9568 / keepalived: answer with our own advert so the other router
            // backs off quickly (RFC 5798 says discard; `lower_prio_no_advert`).
            if !self.cfg.lower_prio_no_advert {
                self.send_and_rearm(now, out);
            }
            let g = self.cfg.garp;
            if g.lower_prio_repeat > 0 {
                out.push(self.garp(g.lower_prio_repeat));
                if !g.lower_prio_delay.is_zero() {
                    self.arm(Timer::GarpLowerPrio, now + g.lower_prio_delay, out);
                }
            }
            out.push(Action::NotifyMasterRxLowerPri {
                from: src,
                priority: a.priority,
            });
            return;
        }
        let higher = a.priority > self.effective
            || (a.priority == self.effective && addr_cmp == Some(std::cmp::Ordering::Greater));
        if higher {
            if self.cfg.version == Version::V3 {
                self.master_adver_int = a.interval();
            }
            self.master = Some((src, a.priority));
            self.leave_master(out);
            let down = self.master_down_interval();
            self.enter_backup(now, down, out);
        }
        // Equal priority from an address we cannot order (our own): ignored.
    }

    fn tick(&mut self, now: Duration, out: &mut Vec<Action>) {
        let due = |t: Option<Duration>| t.is_some_and(|d| d <= now);
        match self.state {
            State::Backup if due(self.deadline(Timer::MasterDown)) => {
                self.become_master(now, out);
            }
            State::Master => {
                if due(self.deadline(Timer::Adver)) {
                    self.send_and_rearm(now, out);
                }
                let g = self.cfg.garp;
                if due(self.deadline(Timer::GarpDelay)) {
                    self.cancel(Timer::GarpDelay, out);
                    out.push(self.garp(g.master_repeat));
                }
                if due(self.deadline(Timer::GarpLowerPrio)) {
                    self.cancel(Timer::GarpLowerPrio, out);
                    out.push(self.garp(g.lower_prio_repeat));
                }
                if due(self.deadline(Timer::GarpRefresh)) {
                    out.push(self.garp(g.refresh_repeat));
                    self.arm(Timer::GarpRefresh, now + g.refresh, out);
                }
            }
            _ => {}
        }
        // A timer still due here has no meaning in the current state: drop it rather than
        // let the driver wake up for it again and again.
        for t in Timer::ALL {
            if due(self.deadline(t)) {
                self.cancel(t, out);
            }
        }
    }

    /// Master_Down_Timer fired (§6.4.2) or owner at startup (§6.4.1): take the addresses,
    /// announce them, notify, advertise. keepalived's order: addresses, GARP, notify,
    /// advert.
    fn become_master(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.cancel(Timer::MasterDown, out);
        self.state = State::Master;
        self.master = None;
        self.preempt_at = None;
        self.stats.became_master += 1;
        out.push(Action::AddVips(self.cfg.installed()));
        let g = self.cfg.garp;
        out.push(self.garp(g.master_repeat));
        if !g.master_delay.is_zero() {
            self.arm(Timer::GarpDelay, now + g.master_delay, out);
        }
        if !g.refresh.is_zero() {
            self.arm(Timer::GarpRefresh, now + g.refresh, out);
        }
        out.push(self.notify(NotifyKind::Master));
        self.send_and_rearm(now, out);
    }

    /// Demotion by a better advert or a sync group: no priority-0 advert.
    fn leave_master(&mut self, out: &mut Vec<Action>) {
        self.cancel_all(out);
        out.push(Action::RemoveVips(self.cfg.installed()));
        self.stats.released_master += 1;
    }

    fn enter_backup(&mut self, now: Duration, down: Duration, out: &mut Vec<Action>) {
        self.state = State::Backup;
        self.preempt_at = None;
        self.arm(Timer::MasterDown, now + down, out);
        out.push(self.notify(NotifyKind::Backup));
    }

    /// Enters or leaves FAULT after tracking (or the sync group) changed.
    fn apply_fault(&mut self, now: Duration, out: &mut Vec<Action>) {
        let faulted = self.faulted();
        match (self.state, faulted) {
            (State::Backup | State::Master, true) => {
                if self.state == State::Master {
                    // keepalived: leaving master for FAULT sends priority 0.
                    self.send(PRIORITY_STOP, out);
                    out.push(Action::RemoveVips(self.cfg.installed()));
                    self.stats.released_master += 1;
                }
                self.cancel_all(out);
                self.master = None;
                self.state = State::Fault;
                out.push(self.notify(NotifyKind::Fault));
            }
            (State::Fault, false) => {
                self.master_adver_int = self.cfg.advert_int;
                // keepalived `try_up_instance`: an owner wishing MASTER waits one
                // interval plus skew, everyone else the full Master_Down_Interval.
                let down = if self.base == PRIORITY_OWNER && self.cfg.wants_master {
                    self.master_adver_int + self.skew()
                } else {
                    self.master_down_interval()
                };
                self.enter_backup(now, down, out);
            }
            _ => {}
        }
    }

    fn faulted(&self) -> bool {
        self.own_fault || self.group_fault
    }

    fn recompute_priority(&mut self) {
        self.effective = if self.base == PRIORITY_OWNER {
            PRIORITY_OWNER
        } else {
            (i32::from(self.base) + self.track_weight).clamp(1, 254) as u8
        };
    }

    // ---- sync group hooks (crate::engine) ----

    /// Another member of the sync group became master: follow it (keepalived
    /// `vrrp_sync_master`). Only a backup moves.
    pub fn sync_master(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Backup {
            self.become_master(now, &mut out);
        }
        out
    }

    /// Another member was demoted: follow it to BACKUP (keepalived `vrrp_sync_backup`).
    pub fn sync_backup(&mut self, now: Duration) -> Vec<Action> {
        let mut out = Vec::new();
        if self.state == State::Master {
            self.master_adver_int = self.cfg.advert_int;
            self.leave_master(&mut out);
            let down = self.master_down_interval();
            self.enter_backup(now, down, &mut out);
        }
        out
    }

    /// A member of the sync group is (or no longer is) in FAULT.
    pub fn set_group_fault(&mut self, now: Duration, fault: bool) -> Vec<Action> {
        let mut out = Vec::new();
        self.group_fault = fault;
        self.apply_fault(now, &mut out);
        out
    }

    /// A reload changed the configuration of a running instance (same VRID, interface
    /// and family). The state is kept; a master swaps the addresses that changed and
    /// announces the new ones.
    pub fn reconfigure(&mut self, now: Duration, cfg: InstanceConfig) -> Vec<Action> {
        let mut out = Vec::new();
        let old = std::mem::replace(&mut self.cfg, cfg);
        self.base = self.cfg.priority;
        self.recompute_priority();
        if self.state == State::Master {
            let (was, now_set) = (old.installed(), self.cfg.installed());
            let gone: Vec<Vip> = was
                .iter()
                .filter(|v| !now_set.contains(v))
                .cloned()
                .collect();
            let new: Vec<Vip> = now_set
                .iter()
                .filter(|v| !was.contains(v))
                .cloned()
                .collect();
            if !gone.is_empty() {
                out.push(Action::RemoveVips(gone));
            }
            if !new.is_empty() {
                let addrs = new.iter().map(|v| v.addr).collect();
                out.push(Action::AddVips(new));
                out.push(Action::SendGarp {
                    addrs,
                    repeat: self.cfg.garp.master_repeat,
                });
            }
            if old.advert_int != self.cfg.advert_int {
                let at = now + self.cfg.advert_int;
                self.arm(Timer::Adver, at, &mut out);
            }
        }
        if self.state == State::Backup && !self.cfg.preempt_delay.is_zero() {
            self.preempt_at = None;
        }
        out
    }

    // ---- helpers ----

    fn send(&mut self, priority: u8, out: &mut Vec<Action>) {
        self.stats.adverts_tx += 1;
        if priority == PRIORITY_STOP {
            self.stats.priority_zero_tx += 1;
        }
        out.push(Action::SendAdvert { priority });
    }

    fn send_and_rearm(&mut self, now: Duration, out: &mut Vec<Action>) {
        self.send(self.effective, out);
        let at = now + self.cfg.advert_int;
        self.arm(Timer::Adver, at, out);
    }

    fn garp(&self, repeat: u32) -> Action {
        Action::SendGarp {
            addrs: self.cfg.installed().iter().map(|v| v.addr).collect(),
            repeat,
        }
    }

    fn notify(&self, kind: NotifyKind) -> Action {
        Action::Notify {
            kind,
            priority: self.effective,
        }
    }

    fn arm(&mut self, t: Timer, at: Duration, out: &mut Vec<Action>) {
        self.timers[t.index()] = Some(at);
        out.push(Action::SetTimer { timer: t, at });
    }

    fn cancel(&mut self, t: Timer, out: &mut Vec<Action>) {
        if self.timers[t.index()].take().is_some() {
            out.push(Action::CancelTimer(t));
        }
    }

    fn cancel_all(&mut self, out: &mut Vec<Action>) {
        for t in Timer::ALL {
            self.cancel(t, out);
        }
    }
}

/// The ADVERTISEMENT `cfg` sends with `priority` (RFC 3768 §5.1 / RFC 5798 §5.1 fields).
pub fn advert_for(cfg: &InstanceConfig, priority: u8) -> Advert {
    let v2_pass = cfg.version == Version::V2 && cfg.auth_pass.is_some();
    Advert {
        version: cfg.version,
        vrid: cfg.vrid,
        priority,
        interval: timers::interval_field(cfg.version, cfg.advert_int),
        addrs: cfg.advertised(),
        auth_type: if v2_pass {
            crate::packet::AUTH_PASS
        } else {
            crate::packet::AUTH_NONE
        },
        auth_data: if v2_pass {
            cfg.auth_pass.unwrap_or_default()
        } else {
            [0; 8]
        },
    }
}

/// RFC 5798 §6.4.3: addresses compared as unsigned integers in network byte order.
fn cmp_addr(a: &IpAddr, b: &IpAddr) -> std::cmp::Ordering {
    match (a, b) {
        (IpAddr::V4(x), IpAddr::V4(y)) => u32::from(*x).cmp(&u32::from(*y)),
        (IpAddr::V6(x), IpAddr::V6(y)) => u128::from(*x).cmp(&u128::from(*y)),
        _ => std::cmp::Ordering::Equal,
    }
}
