//! The core's backend: a vector replayed through the reference [`Table`], admin calls for
//! the server steps and real packets through [`Table::process`] for picks, so persistence
//! templates, connection states and counters (and thus OVERLOAD) behave exactly as on the
//! data path.

use super::interp::{self, Backend, ConnView, Counts, Mismatch, Picked};
use super::Vector;
use crate::conn::ConnId;
use crate::dest::DestId;
use crate::packet::{Packet, Verdict};
use crate::sched::Random;
use crate::state::{Dir, TcpFlags};
use crate::table::Table;
use crate::types::{Millis, Protocol, ServiceKey};
use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

/// Housekeeping granularity while time advances.
const TICK_MS: Millis = 1000;

/// Runs a vector on a fresh [`Table`] and returns every mismatch (empty = pass).
pub fn run_on_table(v: &Vector) -> Vec<Mismatch> {
    interp::run(&mut Model::new(), v)
}

/// Draws scripted by `rand` steps, shared between the backend and the table's random
/// source.
#[derive(Default)]
struct Script {
    draws: VecDeque<(u32, Option<u32>)>,
    errors: Vec<String>,
}

struct ScriptedRandom(Arc<Mutex<Script>>);

impl Random for ScriptedRandom {
    fn below(&mut self, bound: u32) -> u32 {
        let mut s = self.0.lock().expect("script lock");
        let Some((v, want)) = s.draws.pop_front() else {
            s.errors
                .push(format!("a random draw below {bound} was not scripted"));
            return 0;
        };
        if want.is_some_and(|w| w != bound) {
            s.errors.push(format!(
                "draw {v} was scripted below {}, asked below {bound}",
                want.unwrap_or(0)
            ));
        }
        if v >= bound {
            s.errors
                .push(format!("scripted draw {v} is not below {bound}"));
            return bound.saturating_sub(1);
        }
        v
    }
}

/// The reference table with a scripted random source and its own clock.
struct Model {
    table: Table,
    key: Option<ServiceKey>,
    now: Millis,
    script: Arc<Mutex<Script>>,
}

impl Model {
    fn new() -> Model {
        let script = Arc::new(Mutex::new(Script::default()));
        let mut table = Table::new();
        table.set_rng(Box::new(ScriptedRandom(script.clone())));
        Model {
            table,
            key: None,
            now: 0,
            script,
        }
    }

    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script.lock().expect("script lock")
    }
}

impl Backend for Model {
    type Conn = ConnId;

    fn table(&mut self) -> &mut Table {
        &mut self.table
    }

    /// The table is the data plane: nothing to push.
    fn commit(&mut self) -> Result<(), String> {
        Ok(())
    }

    fn start(&mut self, key: ServiceKey) -> Result<(), String> {
        self.key = Some(key);
        // The kernel starts a scheduler's timers when the service is created.
        self.table.tick(0);
        Ok(())
    }

    fn pick(&mut self, client: (IpAddr, u16), to: (IpAddr, u16)) -> Result<Picked<ConnId>, String> {
        let key = self.key.ok_or("no service")?;
        let mut pkt = match key.protocol().unwrap_or(Protocol::Tcp) {
            Protocol::Tcp => Packet::tcp(client.0, client.1, to.0, to.1, TcpFlags::SYN, 60),
            Protocol::Udp => Packet::udp(client.0, client.1, to.0, to.1, 100),
            Protocol::Sctp => {
                let mut p = Packet::udp(client.0, client.1, to.0, to.1, 100);
                p.proto = Protocol::Sctp.number();
                p.sctp_init = true;
                p
            }
        };
        if let ServiceKey::Fwmark { mark, .. } = key {
            pkt.fwmark = mark;
        }
        match self.table.process(self.now, &pkt, Dir::In) {
            Verdict::Forward(f) if f.created => Ok(Picked::Opened {
                dest: f.dest,
                conn: f.conn,
            }),
            Verdict::Unreachable => Ok(Picked::NoServer),
            other => Err(format!("the packet did not open a connection: {other:?}")),
        }
    }

    fn conn(&mut self, c: &ConnId) -> Option<ConnView> {
        self.table.conn(*c).map(|c| ConnView {
            dest: c.dest,
            active: !c.inactive,
        })
    }

    fn close(&mut self, c: &ConnId) -> Result<(), String> {
        let c = self.table.conn(*c).ok_or("the connection is gone")?;
        let pkt = Packet::tcp(c.caddr, c.cport, c.vaddr, c.vport, TcpFlags::FIN_ACK, 52);
        self.table.process(self.now, &pkt, Dir::In);
        Ok(())
    }

    fn end(&mut self, c: &ConnId) -> Result<(), String> {
        self.table.expire_now(self.now, *c);
        Ok(())
    }

    fn advance(&mut self, ms: u64) -> Result<(), String> {
        let end = self.now + ms;
        while self.now < end {
            self.now = (self.now + TICK_MS).min(end);
            self.table.expire(self.now);
            self.table.tick(self.now);
        }
        Ok(())
    }

    fn script_draws(&mut self, draws: &[u32], below: Option<u32>) -> Result<(), String> {
        self.script()
            .draws
            .extend(draws.iter().map(|d| (*d, below)));
        Ok(())
    }

    fn draw_errors(&mut self) -> Vec<String> {
        std::mem::take(&mut self.script().errors)
    }

    fn unused_draws(&mut self) -> usize {
        self.script().draws.len()
    }

    fn counts(&mut self, dest: DestId) -> Result<Counts, String> {
        let d = self.table.dest(dest).ok_or("server is gone")?;
        Ok(Counts {
            active: d.activeconns,
            inactive: d.inactconns,
            persist: d.persistconns,
            overloaded: d.overloaded,
        })
    }
}
