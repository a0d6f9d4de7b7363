//! Replays a [`Vector`] through the reference [`Table`]: admin calls for the server
//! steps, real packets through [`Table::process`] for picks, so persistence templates,
//! connection states and counters (and thus OVERLOAD) behave exactly as on the data path.

use super::{Action, Expect, Step, Vector};
use crate::conn::ConnId;
use crate::dest::DestId;
use crate::packet::{Packet, Verdict};
use crate::sched::Random;
use crate::state::{Dir, TcpFlags};
use crate::table::Table;
use crate::types::{Millis, Protocol, SchedFlags, ServiceKey};
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::sync::{Arc, Mutex};

/// Housekeeping granularity while time advances.
const TICK_MS: Millis = 1000;

/// A step whose outcome differs from the vector's expectation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    pub vector: String,
    pub line: usize,
    pub message: String,
}

impl fmt::Display for Mismatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (line {}): {}", self.vector, self.line, self.message)
    }
}

/// Draws scripted by `rand` steps, shared between the runner and the table's random source.
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

/// State of one replay.
struct Runner {
    table: Table,
    key: ServiceKey,
    proto: Protocol,
    now: Millis,
    names: HashMap<String, DestId>,
    /// Connections opened by picks, oldest first.
    conns: Vec<ConnId>,
    script: Arc<Mutex<Script>>,
}

/// Runs a vector on a fresh [`Table`] and returns every mismatch (empty = pass).
pub fn run_on_table(v: &Vector) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut fail = |line: usize, message: String| {
        out.push(Mismatch {
            vector: v.name.clone(),
            line,
            message,
        })
    };
    let script = Arc::new(Mutex::new(Script::default()));
    let mut table = Table::new();
    table.set_rng(Box::new(ScriptedRandom(script.clone())));
    if let Err(e) = table.add_service(v.service.clone()) {
        fail(v.line, format!("add_service failed: {e}"));
        return out;
    }
    // The kernel starts a scheduler's timers when the service is created.
    table.tick(0);
    let mut r = Runner {
        table,
        key: v.service.key,
        proto: v.service.key.protocol().unwrap_or(Protocol::Tcp),
        now: 0,
        names: HashMap::new(),
        conns: Vec::new(),
        script,
    };
    for step in &v.steps {
        if let Err(message) = r.step(step) {
            fail(step.line, message);
        }
        let errors = std::mem::take(&mut r.script.lock().expect("script lock").errors);
        for e in errors {
            fail(step.line, e);
        }
    }
    let left = r.script.lock().expect("script lock").draws.len();
    if left > 0 {
        let line = v.steps.last().map_or(v.line, |s| s.line);
        fail(
            line,
            format!("{left} scripted random draw(s) were never used"),
        );
    }
    out
}

impl Runner {
    fn dest(&self, name: &str) -> Result<DestId, String> {
        self.names
            .get(name)
            .copied()
            .ok_or_else(|| format!("unknown server {name}"))
    }

    fn name_of(&self, id: DestId) -> String {
        self.names
            .iter()
            .find(|(_, d)| **d == id)
            .map_or_else(|| "<unnamed server>".to_string(), |(n, _)| n.clone())
    }

    fn step(&mut self, step: &Step) -> Result<(), String> {
        match &step.action {
            Action::AddServer { name, cfg } => {
                let id = self
                    .table
                    .add_dest(&self.key, cfg.clone())
                    .map_err(|e| format!("add_dest {name}: {e}"))?;
                self.names.insert(name.clone(), id);
            }
            Action::EditServer {
                name,
                weight,
                upper,
                lower,
            } => {
                let id = self.dest(name)?;
                let mut cfg = self.table.dest(id).ok_or("server is gone")?.cfg.clone();
                cfg.weight = weight.unwrap_or(cfg.weight);
                cfg.u_threshold = upper.unwrap_or(cfg.u_threshold);
                cfg.l_threshold = lower.unwrap_or(cfg.l_threshold);
                self.table
                    .edit_dest(&self.key, cfg)
                    .map_err(|e| format!("edit_dest {name}: {e}"))?;
            }
            Action::RemoveServer { name } => {
                let id = self.dest(name)?;
                let cfg = self.table.dest(id).ok_or("server is gone")?.cfg.clone();
                self.table
                    .del_dest(&self.key, cfg.addr, cfg.port)
                    .map_err(|e| format!("del_dest {name}: {e}"))?;
            }
            Action::SetFlags(bits) => {
                let sid = self.table.service_id(&self.key).ok_or("service is gone")?;
                let mut cfg = self
                    .table
                    .service(sid)
                    .ok_or("service is gone")?
                    .cfg
                    .clone();
                cfg.sched_flags = SchedFlags(*bits);
                self.table
                    .edit_service(cfg)
                    .map_err(|e| format!("edit_service: {e}"))?;
            }
            Action::SetScheduler(kind) => {
                let sid = self.table.service_id(&self.key).ok_or("service is gone")?;
                let mut cfg = self
                    .table
                    .service(sid)
                    .ok_or("service is gone")?
                    .cfg
                    .clone();
                cfg.scheduler = kind.name().to_string();
                self.table
                    .edit_service(cfg)
                    .map_err(|e| format!("edit_service: {e}"))?;
            }
            Action::Pick { client, to, expect } => self.pick(*client, *to, expect)?,
            Action::Close { server } => {
                let id = self.dest(server)?;
                let conn = self
                    .oldest(id, true)
                    .ok_or(format!("{server} has no active connection"))?;
                let c = self.table.conn(conn).expect("live");
                let pkt = Packet::tcp(c.caddr, c.cport, c.vaddr, c.vport, TcpFlags::FIN_ACK, 52);
                self.table.process(self.now, &pkt, Dir::In);
            }
            Action::End { server } => {
                let id = self.dest(server)?;
                let conn = self
                    .oldest(id, false)
                    .ok_or(format!("{server} has no connection"))?;
                self.table.expire_now(self.now, conn);
            }
            Action::Advance { ms } => {
                let end = self.now + ms;
                while self.now < end {
                    self.now = (self.now + TICK_MS).min(end);
                    self.table.expire(self.now);
                    self.table.tick(self.now);
                }
            }
            Action::Rand { draws, below } => {
                let mut s = self.script.lock().expect("script lock");
                s.draws.extend(draws.iter().map(|d| (*d, *below)));
            }
            Action::Expect {
                server,
                active,
                inactive,
                persist,
                overloaded,
            } => self.expect(server, *active, *inactive, *persist, *overloaded)?,
            Action::Sysctl { name, value } => {
                let s = &mut self.table.sysctl;
                match name.as_str() {
                    "expire_nodest_conn" => s.expire_nodest_conn = *value != 0,
                    "expire_quiescent_template" => s.expire_quiescent_template = *value != 0,
                    "conn_reuse_mode" => s.conn_reuse_mode = *value as u8,
                    "sloppy_tcp" => s.sloppy_tcp = *value != 0,
                    _ => return Err(format!("unknown sysctl {name}")),
                }
            }
        }
        Ok(())
    }

    /// Oldest live connection of this run to the server (active ones only if asked).
    fn oldest(&mut self, dest: DestId, active_only: bool) -> Option<ConnId> {
        let table = &self.table;
        self.conns.retain(|c| table.conn(*c).is_some());
        self.conns.iter().copied().find(|c| {
            let c = table.conn(*c).expect("live");
            c.dest == dest && (!active_only || !c.inactive)
        })
    }

    fn pick(
        &mut self,
        client: (std::net::IpAddr, u16),
        to: (std::net::IpAddr, u16),
        expect: &Expect,
    ) -> Result<(), String> {
        let mut pkt = match self.proto {
            Protocol::Tcp => Packet::tcp(client.0, client.1, to.0, to.1, TcpFlags::SYN, 60),
            Protocol::Udp => Packet::udp(client.0, client.1, to.0, to.1, 100),
            Protocol::Sctp => {
                let mut p = Packet::udp(client.0, client.1, to.0, to.1, 100);
                p.proto = Protocol::Sctp.number();
                p.sctp_init = true;
                p
            }
        };
        if let ServiceKey::Fwmark { mark, .. } = self.key {
            pkt.fwmark = mark;
        }
        let got = match self.table.process(self.now, &pkt, Dir::In) {
            Verdict::Forward(f) if f.created => {
                self.conns.push(f.conn);
                Expect::Server(self.name_of(f.dest))
            }
            Verdict::Unreachable => Expect::NoServer,
            other => return Err(format!("the packet did not open a connection: {other:?}")),
        };
        if got != *expect {
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

    fn expect(
        &self,
        server: &str,
        active: Option<u32>,
        inactive: Option<u32>,
        persist: Option<u32>,
        overloaded: Option<bool>,
    ) -> Result<(), String> {
        let d = self
            .table
            .dest(self.dest(server)?)
            .ok_or("server is gone")?;
        let mut wrong = Vec::new();
        let mut check = |what: &str, want: Option<u32>, got: u32| {
            if want.is_some_and(|w| w != got) {
                wrong.push(format!("{what} {got} (expected {})", want.unwrap_or(0)));
            }
        };
        check("active", active, d.activeconns);
        check("inactive", inactive, d.inactconns);
        check("persist", persist, d.persistconns);
        if overloaded.is_some_and(|o| o != d.overloaded) {
            wrong.push(format!("overloaded {}", d.overloaded));
        }
        if wrong.is_empty() {
            Ok(())
        } else {
            Err(format!("{server}: {}", wrong.join(", ")))
        }
    }
}

fn show(e: &Expect) -> &str {
    match e {
        Expect::Server(n) => n,
        Expect::NoServer => "none",
    }
}
