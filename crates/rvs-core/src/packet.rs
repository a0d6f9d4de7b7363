//! The reference packet path (`ip_vs_core.c` `ip_vs_in_hook` / `ip_vs_out_hook` for
//! TCP/UDP/SCTP): connection lookup, service lookup, scheduling with persistence templates,
//! the state machine, counters and timers. Both data planes are tested against it.

use crate::conn::{ConnId, InKey, NewConn, OutKey, TemplateKey};
use crate::dest::{DestId, DestView, ServiceId};
use crate::sched::{SchedEnv, SchedInput};
use crate::state::{tcp_next, ConnState, Dir, SctpState, TcpFlags, TcpState};
use crate::table::{Table, CONTROL_REARM_MS};
use crate::types::{Family, Forward, Millis, Protocol, ServiceKey};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const IPPROTO_IP: u8 = 0;

/// What the packet path needs to know of a packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Packet {
    /// Transport protocol number.
    pub proto: u8,
    pub saddr: IpAddr,
    pub sport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
    /// Firewall mark (0 = none).
    pub fwmark: u32,
    /// TCP flags (TCP only).
    pub tcp: TcpFlags,
    /// SCTP: the packet carries an INIT chunk (opens an association).
    pub sctp_init: bool,
    /// Length of the IP packet, headers included (counted in in/out bytes). 0 marks a
    /// synthetic event (the proxy plane reports socket events, not packets): it steps the
    /// state machine and timers but counts nothing.
    pub len: u32,
}

impl Packet {
    /// A TCP segment.
    pub fn tcp(
        saddr: IpAddr,
        sport: u16,
        daddr: IpAddr,
        dport: u16,
        flags: TcpFlags,
        len: u32,
    ) -> Self {
        Packet {
            proto: Protocol::Tcp.number(),
            saddr,
            sport,
            daddr,
            dport,
            fwmark: 0,
            tcp: flags,
            sctp_init: false,
            len,
        }
    }

    /// A UDP datagram.
    pub fn udp(saddr: IpAddr, sport: u16, daddr: IpAddr, dport: u16, len: u32) -> Self {
        Packet {
            proto: Protocol::Udp.number(),
            saddr,
            sport,
            daddr,
            dport,
            fwmark: 0,
            tcp: TcpFlags::default(),
            sctp_init: false,
            len,
        }
    }
}

/// Where the packet goes, for the data plane to carry out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Forwarding {
    pub conn: ConnId,
    /// The entry was created by this packet (a scheduling decision).
    pub created: bool,
    pub dest: DestId,
    pub method: Forward,
    pub caddr: IpAddr,
    pub cport: u16,
    pub vaddr: IpAddr,
    pub vport: u16,
    pub daddr: IpAddr,
    pub dport: u16,
}

/// Why a packet is dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DropReason {
    /// The entry's real server was deleted (`expire_nodest_conn=0`): dropped until it expires.
    DestUnavailable,
    /// A persistence engine needs data the packet does not carry.
    NoPeData,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Client → real server (inbound): forward by `method`.
    Forward(Forwarding),
    /// Real server → client reply of a NAT entry: rewrite the source to `vaddr:vport`.
    Reply(Forwarding),
    /// Not for a virtual service (or not a packet that opens one): the host handles it.
    Pass,
    /// A virtual service with no eligible server: ICMP port unreachable, drop.
    Unreachable,
    Drop(DropReason),
}

fn fwmark_addr(mark: u32, family: Family) -> IpAddr {
    match family {
        Family::V4 => IpAddr::V4(Ipv4Addr::from(mark)),
        Family::V6 => IpAddr::V6(Ipv6Addr::from(mark as u128)),
    }
}

impl Table {
    /// Finds the service of a new flow (`ip_vs_service_find`): fwmark first, then the exact
    /// (protocol, VIP, port), then a port-0 service of the VIP.
    pub fn find_service(
        &self,
        proto: Protocol,
        daddr: IpAddr,
        dport: u16,
        fwmark: u32,
    ) -> Option<ServiceId> {
        if fwmark != 0 && self.fwmark_services > 0 {
            let key = ServiceKey::Fwmark {
                mark: fwmark,
                family: Family::of(&daddr),
            };
            if let Some(id) = self.service_id(&key) {
                return Some(id);
            }
        }
        let key = ServiceKey::Addr {
            proto,
            addr: daddr,
            port: dport,
        };
        if let Some(id) = self.service_id(&key) {
            return Some(id);
        }
        if self.port0_services > 0 {
            let key = ServiceKey::Addr {
                proto,
                addr: daddr,
                port: 0,
            };
            return self.service_id(&key);
        }
        None
    }

    /// Processes one packet through the reference model.
    pub fn process(&mut self, now: Millis, pkt: &Packet, dir: Dir) -> Verdict {
        let Some(proto) = Protocol::from_number(pkt.proto) else {
            return Verdict::Pass;
        };
        match dir {
            Dir::In => self.process_in(now, proto, pkt),
            Dir::Out => self.process_out(now, pkt),
        }
    }

    fn process_in(&mut self, now: Millis, proto: Protocol, pkt: &Packet) -> Verdict {
        let key = InKey {
            proto: pkt.proto,
            caddr: pkt.saddr,
            cport: pkt.sport,
            vaddr: pkt.daddr,
            vport: pkt.dport,
        };
        let mut found = self.conns.lookup_in(&key);
        if let Some(id) = found {
            if self.should_reschedule(id, proto, pkt) {
                if self.conns.get(id).is_some_and(|c| c.n_control == 0) {
                    self.expire_now(now, id);
                } else {
                    self.conns.unhash(id);
                }
                found = None;
            }
        }
        if let Some(id) = found {
            let dest = self.conns.get(id).expect("live").dest;
            if !self.dests.get(dest).is_some_and(|d| d.available) {
                if !self.sysctl.expire_nodest_conn {
                    return Verdict::Drop(DropReason::DestUnavailable);
                }
                self.expire_now(now, id);
            } else {
                let before = self.conns.get(id).map(|c| c.state);
                let f = self.conn_in(now, id, pkt, false);
                let changed = self.conns.get(id).map(|c| c.state) != before;
                self.sync_in(now, id, changed);
                return Verdict::Forward(f);
            }
        }
        // No entry: only packets that open a connection are scheduled.
        let opens = match proto {
            Protocol::Tcp => !pkt.tcp.rst && (pkt.tcp.syn || self.sysctl.sloppy_tcp),
            Protocol::Udp => true,
            Protocol::Sctp => pkt.sctp_init || self.sysctl.sloppy_sctp,
        };
        if !opens {
            return Verdict::Pass;
        }
        let Some(sid) = self.find_service(proto, pkt.daddr, pkt.dport, pkt.fwmark) else {
            return Verdict::Pass;
        };
        match self.schedule(now, sid, proto, pkt) {
            Ok(Some(id)) => {
                let f = self.conn_in(now, id, pkt, true);
                self.sync_in(now, id, true);
                if self.conns.get(id).is_some_and(|c| c.one_packet) {
                    self.release(id, false);
                }
                Verdict::Forward(f)
            }
            Ok(None) => Verdict::Unreachable,
            Err(r) => Verdict::Drop(r),
        }
    }

    /// A SYN (INIT) that hits an old entry: re-schedule instead of reusing it
    /// (`conn_reuse_mode`, `expire_nodest_conn` with a quiesced server).
    fn should_reschedule(&self, id: ConnId, proto: Protocol, pkt: &Packet) -> bool {
        let is_new = match proto {
            Protocol::Tcp => pkt.tcp.syn && !pkt.tcp.rst,
            Protocol::Sctp => pkt.sctp_init,
            Protocol::Udp => false,
        };
        if !is_new || self.sysctl.conn_reuse_mode == 0 {
            return false;
        }
        let c = self.conns.get(id).expect("live");
        if self.sysctl.expire_nodest_conn && self.dests.get(c.dest).is_some_and(|d| d.weight() == 0)
        {
            return true;
        }
        if c.control.is_some() {
            return false;
        }
        match c.state {
            ConnState::Tcp(TcpState::TimeWait) | ConnState::Tcp(TcpState::Close) => true,
            ConnState::Tcp(TcpState::FinWait) => self.sysctl.conn_reuse_mode & 2 != 0 && c.nooutput,
            ConnState::Sctp(SctpState::Closed) => true,
            _ => false,
        }
    }

    /// Counts an inbound packet of an entry, steps its state and re-arms its timer.
    fn conn_in(&mut self, now: Millis, id: ConnId, pkt: &Packet, created: bool) -> Forwarding {
        self.account(id, Dir::In, pkt.len as u64);
        self.step_state(now, id, Dir::In, pkt);
        let c = self.conns.get(id).expect("live");
        Forwarding {
            conn: id,
            created,
            dest: c.dest,
            method: c.forward,
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
        }
    }

    /// The master's sync offer after an inbound packet (`ip_vs_in_hook`): one-packet
    /// entries count as at the threshold, others by their packet count. `event`: the
    /// packet made the entry or changed its state (its template is offered then too).
    fn sync_in(&mut self, now: Millis, id: ConnId, event: bool) {
        if self.sync_master().is_none() {
            return;
        }
        let Some(c) = self.conns.get(id) else {
            return;
        };
        let pkts = if c.one_packet {
            self.sync_params().threshold as u64
        } else {
            c.in_pkts
        };
        self.sync_conn(now, id, pkts, event);
    }

    fn process_out(&mut self, now: Millis, pkt: &Packet) -> Verdict {
        let key = OutKey {
            proto: pkt.proto,
            daddr: pkt.saddr,
            dport: pkt.sport,
            caddr: pkt.daddr,
            cport: pkt.dport,
        };
        let Some(id) = self.conns.lookup_out(&key) else {
            return Verdict::Pass;
        };
        self.account(id, Dir::Out, pkt.len as u64);
        self.step_state(now, id, Dir::Out, pkt);
        let c = self.conns.get(id).expect("live");
        Verdict::Reply(Forwarding {
            conn: id,
            created: false,
            dest: c.dest,
            method: c.forward,
            caddr: c.caddr,
            cport: c.cport,
            vaddr: c.vaddr,
            vport: c.vport,
            daddr: c.daddr,
            dport: c.dport,
        })
    }

    /// Feeds a packet of a known entry (the proxy plane, which holds the entry's handle).
    /// Returns false if the entry is gone.
    pub fn conn_packet(
        &mut self,
        now: Millis,
        id: ConnId,
        dir: Dir,
        tcp: TcpFlags,
        len: u32,
    ) -> bool {
        let Some(c) = self.conns.get(id) else {
            return false;
        };
        let pkt = Packet {
            proto: c.proto,
            saddr: c.caddr,
            sport: c.cport,
            daddr: c.vaddr,
            dport: c.vport,
            fwmark: c.fwmark,
            tcp,
            sctp_init: false,
            len,
        };
        self.account(id, dir, len as u64);
        self.step_state(now, id, dir, &pkt);
        true
    }

    /// Adds packets and bytes measured by a data plane to an entry's server, its service and
    /// the global counters, and re-arms the entry's timer as those packets would have; the
    /// state machine is not touched.
    pub fn conn_account(&mut self, now: Millis, id: ConnId, dir: Dir, pkts: u64, bytes: u64) {
        let Some(c) = self.conns.get(id) else {
            return;
        };
        let timeout = c.timeout;
        let dest = c.dest;
        self.conns.rearm(id, now, timeout);
        if pkts == 0 && bytes == 0 {
            return;
        }
        let Some(d) = self.dests.get_mut(dest) else {
            return;
        };
        if !d.available {
            return;
        }
        let c = crate::stats::Counters {
            conns: 0,
            inpkts: if dir == Dir::In { pkts } else { 0 },
            inbytes: if dir == Dir::In { bytes } else { 0 },
            outpkts: if dir == Dir::Out { pkts } else { 0 },
            outbytes: if dir == Dir::Out { bytes } else { 0 },
        };
        d.stats.add_counters(&c);
        let svc = d.svc;
        if let Some(s) = self.services.get_mut(svc) {
            s.stats.add_counters(&c);
        }
        self.stats.add_counters(&c);
    }

    /// Adds counts measured by a data plane for a real server (XDP per-CPU counters) to
    /// the server, its service and the global counters; `conns` included.
    pub fn add_dest_stats(&mut self, dest: DestId, c: &crate::stats::Counters) {
        let Some(d) = self.dests.get_mut(dest) else {
            return;
        };
        d.stats.add_counters(c);
        let svc = d.svc;
        if let Some(s) = self.services.get_mut(svc) {
            s.stats.add_counters(c);
        }
        self.stats.add_counters(c);
    }

    /// `ip_vs_in_stats` / `ip_vs_out_stats`: only while the server is available.
    fn account(&mut self, id: ConnId, dir: Dir, bytes: u64) {
        if bytes == 0 {
            return; // a synthetic event
        }
        let c = self.conns.get_mut(id).expect("live");
        if dir == Dir::In {
            c.in_pkts += 1;
        }
        let Some(d) = self.dests.get_mut(c.dest) else {
            return;
        };
        if !d.available {
            return;
        }
        let svc = d.svc;
        match dir {
            Dir::In => {
                d.stats.add_in(bytes);
                if let Some(s) = self.services.get_mut(svc) {
                    s.stats.add_in(bytes);
                }
                self.stats.add_in(bytes);
            }
            Dir::Out => {
                d.stats.add_out(bytes);
                if let Some(s) = self.services.get_mut(svc) {
                    s.stats.add_out(bytes);
                }
                self.stats.add_out(bytes);
            }
        }
    }

    /// `ip_vs_set_state`: next state, active/inactive move, template assured, timer.
    fn step_state(&mut self, now: Millis, id: ConnId, dir: Dir, pkt: &Packet) {
        let secure = self.sysctl.secure_tcp;
        let c = self.conns.get_mut(id).expect("live");
        let new_state = match c.state {
            ConnState::Tcp(cur) => {
                let mut input_only = false;
                if c.nooutput {
                    if dir == Dir::Out {
                        c.nooutput = false;
                    } else {
                        input_only = true;
                    }
                }
                ConnState::Tcp(tcp_next(cur, dir, input_only, pkt.tcp, secure))
            }
            ConnState::Udp => ConnState::Udp,
            ConnState::Sctp(cur) => ConnState::Sctp(match cur {
                SctpState::None | SctpState::Init if pkt.sctp_init => SctpState::Init,
                SctpState::None | SctpState::Init => SctpState::Established,
                s => s,
            }),
            t @ ConnState::Template { .. } => t,
        };
        let old_state = c.state;
        let control = c.control;
        let dest = c.dest;
        let mut moved = false;
        if new_state != old_state {
            let active = new_state.is_active();
            if let Some(d) = self.dests.get_mut(dest) {
                if !c.inactive && !active {
                    d.activeconns -= 1;
                    d.inactconns += 1;
                    c.inactive = true;
                    moved = true;
                } else if c.inactive && active {
                    d.activeconns += 1;
                    d.inactconns -= 1;
                    c.inactive = false;
                    moved = true;
                }
            }
            c.state = new_state;
            if new_state == ConnState::Tcp(TcpState::Established)
                || new_state == ConnState::Sctp(SctpState::Established)
            {
                if let Some(t) = control.and_then(|t| self.conns.get_mut(t)) {
                    t.state = ConnState::Template { assured: true };
                }
            }
        }
        let timeout = self.timeouts.of(new_state) as Millis * 1000;
        self.conns.rearm(id, now, timeout);
        if moved {
            self.notify_load(dest);
        }
    }

    /// Tells the server's scheduler that its counts or OVERLOAD flag changed.
    pub(crate) fn notify_load(&mut self, dest: DestId) {
        let Some(d) = self.dests.get(dest) else {
            return;
        };
        if !d.available {
            return; // not in any list: nothing ranks it
        }
        let Some(svc) = self.services.get_mut(d.svc) else {
            return;
        };
        let view = DestView::new(&svc.order, &self.dests);
        svc.sched.load_changed(&view, dest);
    }

    /// `ip_vs_schedule` / `ip_vs_sched_persist`: picks a server and creates the entry
    /// (and the template). `Ok(None)` = no server available.
    fn schedule(
        &mut self,
        now: Millis,
        sid: ServiceId,
        proto: Protocol,
        pkt: &Packet,
    ) -> Result<Option<ConnId>, DropReason> {
        let svc = &self.services[sid];
        let one_packet = svc.cfg.ops && proto == Protocol::Udp;
        let Some(persist) = svc.cfg.persistence else {
            let Some(dest) = self.pick(now, sid, proto, pkt) else {
                return Ok(None);
            };
            let d = &self.dests[dest];
            let dport = if d.cfg.port != 0 {
                d.cfg.port
            } else {
                pkt.dport
            };
            let id = self.new_conn(now, sid, dest, proto, pkt, dport, one_packet, None);
            self.count_new_conn(dest, sid);
            return Ok(Some(id));
        };
        let svc = &self.services[sid];
        if svc.cfg.pe.is_some() {
            // The SIP engine keys templates on the Call-ID, which the reference path does
            // not parse; such packets are dropped as the kernel drops unparsable ones.
            return Err(DropReason::NoPeData);
        }
        let snet = svc.cfg.netmask.apply(pkt.saddr);
        let svc_port = svc.cfg.key.port();
        let tkey = match svc.cfg.key {
            // One template per client net across every port and VIP of the mark.
            ServiceKey::Fwmark { mark, family } => TemplateKey {
                proto: IPPROTO_IP,
                snet,
                vaddr: fwmark_addr(mark, family),
                vport: 0,
                pe_data: Vec::new(),
            },
            _ if pkt.dport == svc_port && svc_port != 21 => TemplateKey {
                proto: pkt.proto,
                snet,
                vaddr: pkt.daddr,
                vport: pkt.dport,
                pe_data: Vec::new(),
            },
            _ => TemplateKey {
                proto: pkt.proto,
                snet,
                vaddr: pkt.daddr,
                vport: 0,
                pe_data: Vec::new(),
            },
        };
        let mut template = self.conns.lookup_template(&tkey);
        if let Some(t) = template {
            if !self.template_valid(t) {
                self.conns.unhash(t);
                template = None;
            }
        }
        let (tid, dest) = match template {
            Some(t) => (t, self.conns.get(t).expect("live").dest),
            None => {
                let Some(dest) = self.pick(now, sid, proto, pkt) else {
                    return Ok(None);
                };
                let d = &self.dests[dest];
                let tdport = if tkey.vport != 0 { d.cfg.port } else { 0 };
                let fwmark_svc = self.services[sid].cfg.key.is_fwmark();
                let n = NewConn {
                    proto: tkey.proto,
                    caddr: snet,
                    cport: 0,
                    vaddr: tkey.vaddr,
                    vport: tkey.vport,
                    daddr: d.cfg.addr,
                    dport: tdport,
                    fwmark: if fwmark_svc { pkt.fwmark } else { 0 },
                    forward: d.cfg.forward,
                    state: ConnState::Template { assured: false },
                    one_packet: false,
                    synced: false,
                    dest,
                    svc: sid,
                    tkey: Some(tkey),
                };
                let t = self.conns.insert(n, now, persist as Millis * 1000);
                self.bind(t);
                (t, dest)
            }
        };
        let d = &self.dests[dest];
        let dport = if pkt.dport == svc_port && d.cfg.port != 0 {
            d.cfg.port
        } else {
            pkt.dport
        };
        let id = self.new_conn(now, sid, dest, proto, pkt, dport, one_packet, Some(tid));
        // Every new child re-arms the template with its current timeout: the persistence
        // timeout, or 60 s once its timer has fired while children were alive (the kernel
        // sets `cp->timeout = 60*HZ` then and never restores it).
        let tt = self.conns.get(tid).expect("live").timeout;
        self.conns.rearm(tid, now, tt);
        self.count_new_conn(dest, sid);
        Ok(Some(id))
    }

    /// `ip_vs_check_template`: the template's server must still be available (and, with
    /// `expire_quiescent_template`, have weight > 0).
    fn template_valid(&self, t: ConnId) -> bool {
        let c = self.conns.get(t).expect("live");
        match self.dests.get(c.dest) {
            Some(d) if d.available => !(self.sysctl.expire_quiescent_template && d.weight() == 0),
            _ => false,
        }
    }

    fn pick(
        &mut self,
        now: Millis,
        sid: ServiceId,
        proto: Protocol,
        pkt: &Packet,
    ) -> Option<DestId> {
        let svc = &mut self.services[sid];
        let view = DestView::new(&svc.order, &self.dests);
        let input = SchedInput {
            proto: Some(proto),
            saddr: pkt.saddr,
            sport: pkt.sport,
            daddr: pkt.daddr,
            dport: pkt.dport,
        };
        let mut env = SchedEnv {
            now,
            flags: svc.cfg.sched_flags,
            rng: &mut *self.rng,
        };
        svc.sched.schedule(&view, &input, &mut env)
    }

    #[allow(clippy::too_many_arguments)]
    fn new_conn(
        &mut self,
        now: Millis,
        sid: ServiceId,
        dest: DestId,
        proto: Protocol,
        pkt: &Packet,
        dport: u16,
        one_packet: bool,
        control: Option<ConnId>,
    ) -> ConnId {
        let d = &self.dests[dest];
        let state = match proto {
            Protocol::Tcp => ConnState::Tcp(TcpState::None),
            Protocol::Udp => ConnState::Udp,
            Protocol::Sctp => ConnState::Sctp(SctpState::None),
        };
        let n = NewConn {
            proto: pkt.proto,
            caddr: pkt.saddr,
            cport: pkt.sport,
            vaddr: pkt.daddr,
            vport: pkt.dport,
            daddr: d.cfg.addr,
            dport,
            fwmark: pkt.fwmark,
            forward: d.cfg.forward,
            state,
            one_packet,
            synced: false,
            dest,
            svc: sid,
            tkey: None,
        };
        // The kernel's initial 3 s timeout; the first state step replaces it.
        let id = self.conns.insert(n, now, 3000);
        self.bind(id);
        if let Some(t) = control {
            self.conns.get_mut(id).expect("live").control = Some(t);
            self.conns.get_mut(t).expect("live").n_control += 1;
        }
        id
    }

    fn count_new_conn(&mut self, dest: DestId, sid: ServiceId) {
        self.dests[dest].stats.add_conn();
        self.services[sid].stats.add_conn();
        self.stats.add_conn();
    }

    /// `ip_vs_bind_dest`: counts the entry on its server and applies the upper threshold.
    pub(crate) fn bind(&mut self, id: ConnId) {
        let c = self.conns.get(id).expect("live");
        let template = c.is_template();
        let inactive = c.inactive;
        let d = &mut self.dests[c.dest];
        d.refs += 1;
        if template {
            d.persistconns += 1;
        } else if inactive {
            d.inactconns += 1;
        } else {
            d.activeconns += 1;
        }
        if d.cfg.u_threshold != 0 && d.total_conns() >= d.cfg.u_threshold {
            d.overloaded = true;
        }
        let dest = c.dest;
        self.notify_load(dest);
    }

    /// `ip_vs_unbind_dest`: uncounts the entry and applies the OVERLOAD hysteresis.
    fn unbind(&mut self, template: bool, inactive: bool, dest: DestId) {
        let Some(d) = self.dests.get_mut(dest) else {
            return;
        };
        d.refs -= 1;
        if template {
            d.persistconns -= 1;
        } else if inactive {
            d.inactconns -= 1;
        } else {
            d.activeconns -= 1;
        }
        let total = d.total_conns() as u64;
        if d.cfg.l_threshold != 0 {
            if total < d.cfg.l_threshold as u64 {
                d.overloaded = false;
            }
        } else if d.cfg.u_threshold != 0 {
            if total * 4 < d.cfg.u_threshold as u64 * 3 {
                d.overloaded = false;
            }
        } else {
            d.overloaded = false;
        }
        self.notify_load(dest);
    }

    /// Expires an entry now (`ip_vs_conn_expire_now`). An entry that still controls others
    /// is kept and retried in 60 s, as its timer would.
    pub fn expire_now(&mut self, now: Millis, id: ConnId) {
        let Some(c) = self.conns.get(id) else {
            return;
        };
        if c.n_control > 0 {
            self.conns.rearm(id, now, CONTROL_REARM_MS);
            return;
        }
        self.release(id, true);
    }

    /// Unlinks an entry: server counters, control link. A child that was force-expired
    /// takes its template along if the template controls nothing else and never saw an
    /// established connection.
    fn release(&mut self, id: ConnId, forced: bool) {
        let Some(c) = self.conns.remove(id) else {
            return;
        };
        self.unbind(c.is_template(), c.inactive, c.dest);
        if let Some(t) = c.control {
            let drop_template = match self.conns.get_mut(t) {
                Some(tc) => {
                    tc.n_control -= 1;
                    forced
                        && tc.n_control == 0
                        && tc.state == ConnState::Template { assured: false }
                }
                None => false,
            };
            if drop_template {
                self.release(t, false);
            }
        }
    }

    /// Runs every timer due by `now` (`ip_vs_conn_expire`). Returns the entries released.
    pub fn expire(&mut self, now: Millis) -> Vec<ConnId> {
        let mut gone = Vec::new();
        while let Some(id) = self.conns.next_due(now) {
            let c = self.conns.get(id).expect("due entry is live");
            if c.n_control > 0 {
                // Children still live: try again in a minute (and tell the backups).
                self.conns.rearm(id, now, CONTROL_REARM_MS);
                let threshold = self.sync_params().threshold as u64;
                self.sync_conn(now, id, threshold, true);
                continue;
            }
            self.release(id, false);
            gone.push(id);
        }
        gone
    }

    /// Milliseconds until the next timer, for a caller that sleeps in between.
    pub fn next_deadline(&self) -> Option<Millis> {
        self.conns.next_deadline()
    }
}
