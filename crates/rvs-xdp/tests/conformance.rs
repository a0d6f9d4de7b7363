//! Scheduler conformance: every decision vector of `testdata/sched/*.vec` (parsed by
//! `rvs_core::vectors`, the same files the core replays) is replayed through the BPF
//! program. Configuration steps go through the real `sync(&Table)`; picks are real SYNs /
//! datagrams through BPF_PROG_TEST_RUN; time and random draws come from the test build's
//! mocked helpers (`-DRVS_TEST`); timers run through the real sweeper and lblc collector.
//! The BPF side must pick the same server (or none) at every step, show the same
//! counters at every `expect`, and use exactly the scripted draws.

mod common;

use common::packet::*;
use common::*;
use rvs_core::vectors::{parse_file, Action, Expect, Step, Vector};
use rvs_core::{DestId, Protocol, SchedFlags, ServiceKey};
use rvs_xdp::abi::{self, Plain};
use rvs_xdp::{testenv, Build};
use std::collections::HashMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

const MS: u64 = 1_000_000;

fn vector_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/sched");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("testdata/sched")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "vec"))
        .collect();
    files.sort();
    files
}

/// A connection a pick opened: its inbound key.
#[derive(Clone, Copy)]
struct Opened {
    client: (IpAddr, u16),
    to: (IpAddr, u16),
}

struct Runner<'a> {
    rig: &'a mut Rig,
    key: ServiceKey,
    proto: Protocol,
    mark: u32,
    now_ms: u64,
    names: HashMap<String, DestId>,
    opened: Vec<Opened>,
    /// The bound each scripted draw must be asked with, by draw index.
    want_bounds: Vec<Option<u32>>,
}

impl Runner<'_> {
    fn dest(&self, name: &str) -> Result<DestId, String> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| format!("unknown server {name}"))
    }

    fn slot(&self, id: DestId) -> Option<u16> {
        self.rig.plane.inner().state().dest_slot(id)
    }

    fn name_of_slot(&self, slot: u16) -> String {
        self.names
            .iter()
            .find(|(_, id)| self.slot(**id) == Some(slot))
            .map_or_else(|| format!("<slot {slot}>"), |(n, _)| n.clone())
    }

    fn set_now(&mut self, ms: u64) {
        self.now_ms = ms;
        testenv::set_now(self.rig.plane.director(), ms * MS).expect("clock");
    }

    /// Timers due now, then lblc/lblcr collection, as one tick of the core's runner.
    fn tick(&mut self) -> Result<(), String> {
        let now = self.now_ms * MS;
        let inner = self.rig.plane.inner();
        inner.sweep_at(now).map_err(|e| e.to_string())?;
        inner.gc_at(now).map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Time passes in 1 s ticks (the core's TICK_MS); ticks where nothing is due are
    /// skipped, which changes nothing.
    fn advance(&mut self, ms: u64) -> Result<(), String> {
        let start = self.now_ms;
        let end = start + ms;
        while self.now_ms < end {
            let inner = self.rig.plane.inner();
            let next_due = rvs_xdp::sweep::entries(self.rig.plane.director())
                .map_err(|e| e.to_string())?
                .iter()
                .filter(|e| e.conn.flags() & abi::RVS_CF_DEAD == 0)
                .map(|e| e.due_ns().div_ceil(MS))
                .chain(inner.gc_next_check().map(|n| n.div_ceil(MS)))
                .min();
            let next_tick = match next_due {
                Some(due) if due <= end => {
                    let k = due.saturating_sub(start).div_ceil(1000).max(1);
                    (start + k * 1000).min(end).max(self.now_ms + 1)
                }
                _ => end,
            };
            self.set_now(next_tick);
            self.tick()?;
        }
        Ok(())
    }

    fn packet(&self, client: (IpAddr, u16), to: (IpAddr, u16), tcp_flags: u8) -> Vec<u8> {
        let l4 = match self.proto {
            Protocol::Udp => L4::Udp {
                sport: client.1,
                dport: to.1,
                payload: b"pick".to_vec(),
                csum: true,
            },
            _ => L4::Tcp {
                sport: client.1,
                dport: to.1,
                flags: tcp_flags,
                payload: vec![],
            },
        };
        frame(D0_MAC, GW_MAC, &ip_packet(client.0, to.0, &l4))
    }

    fn pick(
        &mut self,
        client: (IpAddr, u16),
        to: (IpAddr, u16),
        expect: &Expect,
    ) -> Result<(), String> {
        let dir = self.rig.plane.director();
        let mut env = testenv::read(dir).map_err(|e| e.to_string())?;
        env.fwmark = self.mark;
        env.last_created = 0;
        env.last_code = 0;
        testenv::write(dir, &env).map_err(|e| e.to_string())?;
        self.rig.run(&self.packet(client, to, SYN));
        let env = testenv::read(dir).map_err(|e| e.to_string())?;
        let got = if env.last_created == 1 {
            self.opened.push(Opened { client, to });
            Expect::Server(self.name_of_slot(env.last_dest as u16))
        } else if env.last_code == abi::RVS_R_NO_DEST {
            Expect::NoServer
        } else {
            return Err(format!(
                "the packet did not open a connection: {}",
                rvs_xdp::stats::reason_name(env.last_code)
            ));
        };
        let show = |e: &Expect| match e {
            Expect::Server(n) => n.clone(),
            Expect::NoServer => "none".to_string(),
        };
        if &got != expect {
            return Err(format!(
                "from {}:{} expected {}, got {}",
                client.0,
                client.1,
                show(expect),
                show(&got)
            ));
        }
        Ok(())
    }

    /// The BPF entry of an opened connection, if it is still there.
    fn entry(&self, o: &Opened) -> Option<(abi::ConnKey6, u8, abi::Conn)> {
        let dir = self.rig.plane.director();
        let proto = self.proto.number();
        let (family, key, map) = match (o.client.0, o.to.0) {
            (IpAddr::V4(c), IpAddr::V4(v)) => {
                let k = abi::ConnKey4 {
                    caddr: c.octets(),
                    vaddr: v.octets(),
                    cport: o.client.1.to_be(),
                    vport: o.to.1.to_be(),
                    proto,
                    ..Default::default()
                };
                let mut k6 = abi::ConnKey6::default();
                k6.as_bytes_mut()[..16].copy_from_slice(k.as_bytes());
                (abi::RVS_AF_INET, k6, &dir.maps.conns4)
            }
            (IpAddr::V6(c), IpAddr::V6(v)) => {
                let k = abi::ConnKey6 {
                    caddr: c.octets(),
                    vaddr: v.octets(),
                    cport: o.client.1.to_be(),
                    vport: o.to.1.to_be(),
                    proto,
                    ..Default::default()
                };
                (abi::RVS_AF_INET6, k, &dir.maps.conns6)
            }
            _ => return None,
        };
        let mut v = abi::Conn::default();
        let kb = &key.as_bytes()[..map.key_size];
        match map.lookup(kb, v.as_bytes_mut(), 0) {
            Ok(true) if v.flags() & abi::RVS_CF_DEAD == 0 => Some((key, family, v)),
            _ => None,
        }
    }

    /// The oldest opened connection of a server (active ones only if asked).
    fn oldest(&mut self, id: DestId, active_only: bool) -> Option<(Opened, abi::ConnKey6, u8)> {
        let slot = self.slot(id)?;
        let opened = self.opened.clone();
        let mut live = Vec::new();
        let mut found = None;
        for o in opened {
            if let Some((key, family, c)) = self.entry(&o) {
                live.push(o);
                if found.is_none()
                    && c.dest == slot
                    && (!active_only || c.flags() & abi::RVS_CF_INACTIVE == 0)
                {
                    found = Some((o, key, family));
                }
            }
        }
        self.opened = live;
        found
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match &step.action {
            Action::AddServer { name, cfg } => {
                let id = self
                    .rig
                    .table
                    .add_dest(&self.key, cfg.clone())
                    .map_err(|e| format!("add_dest {name}: {e}"))?;
                self.names.insert(name.clone(), id);
                self.rig.sync();
            }
            Action::EditServer {
                name,
                weight,
                upper,
                lower,
            } => {
                let id = self.dest(name)?;
                let mut cfg = self.rig.table.dest(id).ok_or("server is gone")?.cfg.clone();
                cfg.weight = weight.unwrap_or(cfg.weight);
                cfg.u_threshold = upper.unwrap_or(cfg.u_threshold);
                cfg.l_threshold = lower.unwrap_or(cfg.l_threshold);
                self.rig
                    .table
                    .edit_dest(&self.key, cfg)
                    .map_err(|e| format!("edit_dest {name}: {e}"))?;
                self.rig.sync();
            }
            Action::RemoveServer { name } => {
                let id = self.dest(name)?;
                let cfg = self.rig.table.dest(id).ok_or("server is gone")?.cfg.clone();
                self.rig
                    .table
                    .del_dest(&self.key, cfg.addr, cfg.port)
                    .map_err(|e| format!("del_dest {name}: {e}"))?;
                self.rig.sync();
            }
            Action::SetFlags(bits) => {
                let sid = self
                    .rig
                    .table
                    .service_id(&self.key)
                    .ok_or("service is gone")?;
                let mut cfg = self
                    .rig
                    .table
                    .service(sid)
                    .ok_or("service is gone")?
                    .cfg
                    .clone();
                cfg.sched_flags = SchedFlags(*bits);
                self.rig
                    .table
                    .edit_service(cfg)
                    .map_err(|e| format!("edit_service: {e}"))?;
                self.rig.sync();
            }
            Action::SetScheduler(kind) => {
                let sid = self
                    .rig
                    .table
                    .service_id(&self.key)
                    .ok_or("service is gone")?;
                let mut cfg = self
                    .rig
                    .table
                    .service(sid)
                    .ok_or("service is gone")?
                    .cfg
                    .clone();
                cfg.scheduler = kind.name().to_string();
                self.rig
                    .table
                    .edit_service(cfg)
                    .map_err(|e| format!("edit_service: {e}"))?;
                self.rig.sync();
            }
            Action::Pick { client, to, expect } => self.pick(*client, *to, expect)?,
            Action::Close { server } => {
                let id = self.dest(server)?;
                let (o, ..) = self
                    .oldest(id, true)
                    .ok_or(format!("{server} has no active connection"))?;
                let f = self.packet(o.client, o.to, FIN | ACK);
                self.rig.run(&f);
            }
            Action::End { server } => {
                let id = self.dest(server)?;
                let (_, key, family) = self
                    .oldest(id, false)
                    .ok_or(format!("{server} has no connection"))?;
                rvs_xdp::sweep::expire(self.rig.plane.director(), &[(family, key)], true)
                    .map_err(|e| e.to_string())?;
            }
            Action::Advance { ms } => self.advance(*ms)?,
            Action::Rand { draws, below } => {
                let dir = self.rig.plane.director();
                let env = testenv::read(dir).map_err(|e| e.to_string())?;
                if env.next_draw >= env.n_draws {
                    self.want_bounds.clear();
                }
                testenv::push_draws(dir, draws).map_err(|e| e.to_string())?;
                self.want_bounds.extend(draws.iter().map(|_| *below));
            }
            Action::Expect {
                server,
                active,
                inactive,
                persist,
                overloaded,
            } => {
                let id = self.dest(server)?;
                let slot = self.slot(id).ok_or("server has no slot")?;
                let c = rvs_xdp::stats::dest_counts(self.rig.plane.director(), slot);
                let mut wrong = Vec::new();
                for (what, want, got) in [
                    ("active", active, c.active),
                    ("inactive", inactive, c.inactive),
                    ("persist", persist, c.persist),
                ] {
                    if want.is_some_and(|w| w != got) {
                        wrong.push(format!("{what} {got} (expected {})", want.unwrap_or(0)));
                    }
                }
                if overloaded.is_some_and(|o| o != (c.overloaded != 0)) {
                    wrong.push(format!("overloaded {}", c.overloaded != 0));
                }
                if !wrong.is_empty() {
                    return Err(format!("{server}: {}", wrong.join(", ")));
                }
            }
            Action::Sysctl { name, value } => {
                let s = &mut self.rig.table.sysctl;
                match name.as_str() {
                    "expire_nodest_conn" => s.expire_nodest_conn = *value != 0,
                    "expire_quiescent_template" => s.expire_quiescent_template = *value != 0,
                    "conn_reuse_mode" => s.conn_reuse_mode = *value as u8,
                    "sloppy_tcp" => s.sloppy_tcp = *value != 0,
                    _ => return Err(format!("unknown sysctl {name}")),
                }
                self.rig.sync();
            }
        }
        Ok(())
    }

    /// Draw checks after a step: every draw asked for was scripted, with its bound.
    fn check_draws(&self) -> Vec<String> {
        let env = testenv::read(self.rig.plane.director()).expect("env");
        let mut errs = Vec::new();
        if env.bad_draws > 0 {
            errs.push(format!(
                "{} random draw(s) were not scripted",
                env.bad_draws
            ));
        }
        for i in 0..env.next_draw.min(env.n_draws) as usize {
            if let Some(Some(b)) = self.want_bounds.get(i) {
                if env.bounds[i] != *b {
                    errs.push(format!(
                        "draw {} was scripted below {b}, asked below {}",
                        env.draws[i], env.bounds[i]
                    ));
                }
            }
        }
        errs
    }
}

fn replay(rig: &mut Rig, v: &Vector) -> Vec<String> {
    rig.plane.inner().reset_for_tests().expect("reset");
    rig.table = rvs_core::Table::new();
    rig.sync();
    let mut out = Vec::new();
    if let Err(e) = rig.table.add_service(v.service.clone()) {
        return vec![format!("add_service: {e}")];
    }
    rig.sync();
    let key = v.service.key;
    let mut r = Runner {
        rig,
        key,
        proto: key.protocol().unwrap_or(Protocol::Tcp),
        mark: match key {
            ServiceKey::Fwmark { mark, .. } => mark,
            _ => 0,
        },
        now_ms: 0,
        names: HashMap::new(),
        opened: Vec::new(),
        want_bounds: Vec::new(),
    };
    r.set_now(0);
    if let Err(e) = r.tick() {
        out.push(format!("line {}: {e}", v.line));
    }
    let mut checked_draws = 0;
    for step in &v.steps {
        if let Err(e) = r.step(step) {
            out.push(format!("line {}: {e}", step.line));
        }
        let errs = r.check_draws();
        for e in errs.into_iter().skip(checked_draws) {
            out.push(format!("line {}: {e}", step.line));
            checked_draws += 1;
        }
    }
    let env = testenv::read(r.rig.plane.director()).expect("env");
    if env.n_draws > env.next_draw {
        out.push(format!(
            "{} scripted random draw(s) were never used",
            env.n_draws - env.next_draw
        ));
    }
    out
}

#[test]
fn every_decision_vector_picks_the_same_servers_in_bpf() {
    if !root_or_skip("scheduler conformance") {
        return;
    }
    let mut rig = Rig::new("conformance", Build::Test);
    let mut vectors = 0;
    let mut failures = Vec::new();
    for file in vector_files() {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for v in parse_file(&file).unwrap_or_else(|e| panic!("{e}")) {
            vectors += 1;
            for m in replay(&mut rig, &v) {
                failures.push(format!("{name}: {}: {m}", v.name));
            }
        }
    }
    assert!(vectors >= 122, "only {vectors} vectors found");
    assert!(
        failures.is_empty(),
        "{} mismatch(es) in {vectors} vectors:\n{}",
        failures.len(),
        failures.join("\n")
    );
}
