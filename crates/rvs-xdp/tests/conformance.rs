//! Scheduler conformance: every decision vector of `testdata/sched/*.vec` is replayed
//! through the BPF program by the same interpreter that replays them on the core's table
//! (`rvs_core::vectors::run`); this file is the XDP backend. Configuration steps go
//! through the real `sync(&Table)`; picks are real SYNs / datagrams through
//! BPF_PROG_TEST_RUN; time and random draws come from the test build's mocked helpers
//! (`-DRVS_TEST`); timers run through the real sweeper and lblc collector. The BPF side
//! must pick the same server (or none) at every step, show the same counters at every
//! `expect`, and use exactly the scripted draws.

mod common;

use common::packet::*;
use common::*;
use rvs_core::vectors::{self, parse_file, Backend, ConnView, Counts, Picked};
use rvs_core::{DestId, Protocol, ServiceKey, Table};
use rvs_xdp::abi::{self, Plain};
use rvs_xdp::{testenv, Build};
use std::net::IpAddr;
use std::path::Path;

const MS: u64 = 1_000_000;

/// A connection a pick opened: its inbound key.
#[derive(Clone, Copy)]
struct Opened {
    client: (IpAddr, u16),
    to: (IpAddr, u16),
}

/// The director (test build) as a vector backend.
struct Xdp<'a> {
    rig: &'a mut Rig,
    proto: Protocol,
    mark: u32,
    now_ms: u64,
    /// The bound each scripted draw must be asked with, by draw index.
    want_bounds: Vec<Option<u32>>,
    /// Draw errors already reported.
    reported: usize,
}

impl<'a> Xdp<'a> {
    /// Empties the maps and the table: a fresh director for the next vector.
    fn fresh(rig: &'a mut Rig) -> Xdp<'a> {
        rig.plane.inner().reset_for_tests().expect("reset");
        rig.table = Table::new();
        rig.sync();
        Xdp {
            rig,
            proto: Protocol::Tcp,
            mark: 0,
            now_ms: 0,
            want_bounds: Vec::new(),
            reported: 0,
        }
    }

    /// The table's server holding a dest slot.
    fn holder(&self, slot: u16) -> Option<DestId> {
        let st = self.rig.plane.inner().state();
        let id = st
            .slots()
            .find(|(s, _)| **s == slot)
            .and_then(|(_, d)| d.id);
        id
    }

    fn set_now(&mut self, ms: u64) {
        self.now_ms = ms;
        testenv::set_now(self.rig.plane.director(), ms * MS).expect("clock");
    }

    /// Timers due now, then lblc/lblcr collection, as one tick of the core's backend.
    fn tick(&mut self) -> Result<(), String> {
        let now = self.now_ms * MS;
        let inner = self.rig.plane.inner();
        inner.sweep_at(now).map_err(|e| e.to_string())?;
        inner.gc_at(now).map_err(|e| e.to_string())?;
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

    /// Every misuse of the random source so far: draws not scripted, bounds not as
    /// scripted.
    fn draw_checks(&self) -> Vec<String> {
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

impl Backend for Xdp<'_> {
    type Conn = Opened;

    fn table(&mut self) -> &mut Table {
        &mut self.rig.table
    }

    fn commit(&mut self) -> Result<(), String> {
        self.rig.sync();
        Ok(())
    }

    fn start(&mut self, key: ServiceKey) -> Result<(), String> {
        self.proto = key.protocol().unwrap_or(Protocol::Tcp);
        self.mark = match key {
            ServiceKey::Fwmark { mark, .. } => mark,
            _ => 0,
        };
        self.set_now(0);
        self.tick()
    }

    fn pick(&mut self, client: (IpAddr, u16), to: (IpAddr, u16)) -> Result<Picked<Opened>, String> {
        let dir = self.rig.plane.director();
        let mut env = testenv::read(dir).map_err(|e| e.to_string())?;
        env.fwmark = self.mark;
        env.last_created = 0;
        env.last_code = 0;
        testenv::write(dir, &env).map_err(|e| e.to_string())?;
        self.rig.run(&self.packet(client, to, SYN));
        let env = testenv::read(dir).map_err(|e| e.to_string())?;
        if env.last_created == 1 {
            let slot = env.last_dest as u16;
            let dest = self.holder(slot).ok_or(format!(
                "picked slot {slot}, which no server of the table holds"
            ))?;
            Ok(Picked::Opened {
                dest,
                conn: Opened { client, to },
            })
        } else if env.last_code == abi::RVS_R_NO_DEST {
            Ok(Picked::NoServer)
        } else {
            Err(format!(
                "the packet did not open a connection: {}",
                rvs_xdp::stats::reason_name(env.last_code)
            ))
        }
    }

    fn conn(&mut self, o: &Opened) -> Option<ConnView> {
        let (_, _, c) = self.entry(o)?;
        Some(ConnView {
            dest: self.holder(c.dest)?,
            active: c.flags() & abi::RVS_CF_INACTIVE == 0,
        })
    }

    fn close(&mut self, o: &Opened) -> Result<(), String> {
        let f = self.packet(o.client, o.to, FIN | ACK);
        self.rig.run(&f);
        Ok(())
    }

    fn end(&mut self, o: &Opened) -> Result<(), String> {
        let (key, family, _) = self.entry(o).ok_or("the connection is gone")?;
        rvs_xdp::sweep::expire(self.rig.plane.director(), &[(family, key)], true)
            .map(drop)
            .map_err(|e| e.to_string())
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

    fn script_draws(&mut self, draws: &[u32], below: Option<u32>) -> Result<(), String> {
        let dir = self.rig.plane.director();
        let env = testenv::read(dir).map_err(|e| e.to_string())?;
        if env.next_draw >= env.n_draws {
            self.want_bounds.clear();
        }
        testenv::push_draws(dir, draws).map_err(|e| e.to_string())?;
        self.want_bounds.extend(draws.iter().map(|_| below));
        Ok(())
    }

    fn draw_errors(&mut self) -> Vec<String> {
        let new: Vec<String> = self.draw_checks().into_iter().skip(self.reported).collect();
        self.reported += new.len();
        new
    }

    fn unused_draws(&mut self) -> usize {
        let env = testenv::read(self.rig.plane.director()).expect("env");
        env.n_draws.saturating_sub(env.next_draw) as usize
    }

    fn counts(&mut self, dest: DestId) -> Result<Counts, String> {
        let slot = self
            .rig
            .plane
            .inner()
            .state()
            .dest_slot(dest)
            .ok_or("server has no slot")?;
        let c = rvs_xdp::stats::dest_counts(self.rig.plane.director(), slot);
        Ok(Counts {
            active: c.active,
            inactive: c.inactive,
            persist: c.persist,
            overloaded: c.overloaded != 0,
        })
    }
}

#[test]
fn every_decision_vector_picks_the_same_servers_in_bpf() {
    if !root_or_skip("scheduler conformance") {
        return;
    }
    let mut rig = Rig::new("conformance", Build::Test);
    let mut vectors = 0;
    let mut failures = Vec::new();
    for file in vectors::files(Path::new(vectors::SHARED_DIR)).expect("testdata/sched") {
        let name = file
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        for v in parse_file(&file).unwrap_or_else(|e| panic!("{e}")) {
            vectors += 1;
            for m in vectors::run(&mut Xdp::fresh(&mut rig), &v) {
                failures.push(format!("{name}: {m}"));
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
