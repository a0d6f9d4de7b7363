//! The one interpreter of decision vectors. It owns everything the steps mean: the table
//! edits (a step that changes the configuration edits the backend's [`Table`], then
//! [`Backend::commit`] pushes it), the server names, the connections opened in order, and
//! every comparison with what the vector expects. A [`Backend`] only moves packets, time
//! and random draws through its data plane and reports what it saw: the core's own
//! [`Table`] ([`run_on_table`](super::run_on_table)), or the XDP program
//! (`crates/rvs-xdp/tests/conformance.rs`).

use super::{Action, Expect, Step, Vector};
use crate::dest::DestId;
use crate::table::Table;
use crate::types::{SchedFlags, ServiceKey};
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

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

/// What a new connection met.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Picked<C> {
    /// Scheduled to `dest`; `conn` finds the connection again.
    Opened { dest: DestId, conn: C },
    /// "No destination available".
    NoServer,
}

/// A connection opened earlier, as the data plane holds it now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnView {
    pub dest: DestId,
    /// Counted as active (not inactive).
    pub active: bool,
}

/// A server's connection counters as the data plane keeps them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Counts {
    pub active: u32,
    pub inactive: u32,
    pub persist: u32,
    pub overloaded: bool,
}

/// A data plane the vectors are replayed on. Errors are messages for the mismatch list.
pub trait Backend {
    /// A connection a pick opened, as this backend finds it again.
    type Conn: Clone;

    /// The table the configuration steps edit.
    fn table(&mut self) -> &mut Table;

    /// The table changed: bring the data plane in line with it.
    fn commit(&mut self) -> Result<(), String>;

    /// The vector's service was just added: time is 0 and the scheduler's timers start.
    fn start(&mut self, key: ServiceKey) -> Result<(), String>;

    /// A new connection (TCP SYN, UDP datagram, SCTP INIT) from `client` to `to`.
    fn pick(
        &mut self,
        client: (IpAddr, u16),
        to: (IpAddr, u16),
    ) -> Result<Picked<Self::Conn>, String>;

    /// A connection opened earlier, if it is still there.
    fn conn(&mut self, c: &Self::Conn) -> Option<ConnView>;

    /// The client sends FIN+ACK on the connection.
    fn close(&mut self, c: &Self::Conn) -> Result<(), String>;

    /// The connection is removed now, as when its timer fires.
    fn end(&mut self, c: &Self::Conn) -> Result<(), String>;

    /// Time passes; due connection timers and scheduler housekeeping run on the way.
    fn advance(&mut self, ms: u64) -> Result<(), String>;

    /// Queues the next random draws, each to be asked for with the bound `below` if given.
    fn script_draws(&mut self, draws: &[u32], below: Option<u32>) -> Result<(), String>;

    /// Misuses of the random source not reported yet: a draw that was not scripted, or
    /// one asked for with another bound.
    fn draw_errors(&mut self) -> Vec<String>;

    /// Scripted draws never used.
    fn unused_draws(&mut self) -> usize;

    /// A server's counters.
    fn counts(&mut self, dest: DestId) -> Result<Counts, String>;
}

/// Replays a vector on a backend holding a fresh table; returns every mismatch (empty =
/// pass).
pub fn run<B: Backend>(b: &mut B, v: &Vector) -> Vec<Mismatch> {
    let mut out = Vec::new();
    let mut fail = |line: usize, message: String| {
        out.push(Mismatch {
            vector: v.name.clone(),
            line,
            message,
        })
    };
    if let Err(e) = b.table().add_service(v.service.clone()) {
        fail(v.line, format!("add_service failed: {e}"));
        return out;
    }
    if let Err(e) = b.commit().and_then(|()| b.start(v.service.key)) {
        fail(v.line, e);
    }
    let mut r = Interp {
        key: v.service.key,
        names: HashMap::new(),
        opened: Vec::new(),
    };
    for step in &v.steps {
        if let Err(message) = r.step(b, step) {
            fail(step.line, message);
        }
        for e in b.draw_errors() {
            fail(step.line, e);
        }
    }
    let left = b.unused_draws();
    if left > 0 {
        let line = v.steps.last().map_or(v.line, |s| s.line);
        fail(
            line,
            format!("{left} scripted random draw(s) were never used"),
        );
    }
    out
}

/// State of one replay.
struct Interp<C> {
    key: ServiceKey,
    names: HashMap<String, DestId>,
    /// Connections opened by picks, oldest first.
    opened: Vec<C>,
}

impl<C: Clone> Interp<C> {
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

    fn step<B: Backend<Conn = C>>(&mut self, b: &mut B, step: &Step) -> Result<(), String> {
        match &step.action {
            Action::AddServer { name, cfg } => {
                let id = b
                    .table()
                    .add_dest(&self.key, cfg.clone())
                    .map_err(|e| format!("add_dest {name}: {e}"))?;
                self.names.insert(name.clone(), id);
                b.commit()?;
            }
            Action::EditServer {
                name,
                weight,
                upper,
                lower,
            } => {
                let id = self.dest(name)?;
                let t = b.table();
                let mut cfg = t.dest(id).ok_or("server is gone")?.cfg.clone();
                cfg.weight = weight.unwrap_or(cfg.weight);
                cfg.u_threshold = upper.unwrap_or(cfg.u_threshold);
                cfg.l_threshold = lower.unwrap_or(cfg.l_threshold);
                t.edit_dest(&self.key, cfg)
                    .map_err(|e| format!("edit_dest {name}: {e}"))?;
                b.commit()?;
            }
            Action::RemoveServer { name } => {
                let id = self.dest(name)?;
                let t = b.table();
                let cfg = t.dest(id).ok_or("server is gone")?.cfg.clone();
                t.del_dest(&self.key, cfg.addr, cfg.port)
                    .map_err(|e| format!("del_dest {name}: {e}"))?;
                b.commit()?;
            }
            Action::SetFlags(bits) => {
                self.edit_service(b, |cfg| cfg.sched_flags = SchedFlags(*bits))?;
            }
            Action::SetScheduler(kind) => {
                self.edit_service(b, |cfg| cfg.scheduler = kind.name().to_string())?;
            }
            Action::Pick { client, to, expect } => {
                let got = match b.pick(*client, *to)? {
                    Picked::Opened { dest, conn } => {
                        self.opened.push(conn);
                        Expect::Server(self.name_of(dest))
                    }
                    Picked::NoServer => Expect::NoServer,
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
            }
            Action::Close { server } => {
                let id = self.dest(server)?;
                let c = self
                    .oldest(b, id, true)
                    .ok_or(format!("{server} has no active connection"))?;
                b.close(&c)?;
            }
            Action::End { server } => {
                let id = self.dest(server)?;
                let c = self
                    .oldest(b, id, false)
                    .ok_or(format!("{server} has no connection"))?;
                b.end(&c)?;
            }
            Action::Advance { ms } => b.advance(*ms)?,
            Action::Rand { draws, below } => b.script_draws(draws, *below)?,
            Action::Expect {
                server,
                active,
                inactive,
                persist,
                overloaded,
            } => {
                let c = b.counts(self.dest(server)?)?;
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
                if overloaded.is_some_and(|o| o != c.overloaded) {
                    wrong.push(format!("overloaded {}", c.overloaded));
                }
                if !wrong.is_empty() {
                    return Err(format!("{server}: {}", wrong.join(", ")));
                }
            }
            Action::Sysctl { name, value } => {
                let s = &mut b.table().sysctl;
                match name.as_str() {
                    "expire_nodest_conn" => s.expire_nodest_conn = *value != 0,
                    "expire_quiescent_template" => s.expire_quiescent_template = *value != 0,
                    "conn_reuse_mode" => s.conn_reuse_mode = *value as u8,
                    "sloppy_tcp" => s.sloppy_tcp = *value != 0,
                    _ => return Err(format!("unknown sysctl {name}")),
                }
                b.commit()?;
            }
        }
        Ok(())
    }

    /// Changes the service's configuration, as `ipvsadm -E` does.
    fn edit_service<B: Backend<Conn = C>>(
        &self,
        b: &mut B,
        change: impl FnOnce(&mut crate::config::ServiceConfig),
    ) -> Result<(), String> {
        let t = b.table();
        let sid = t.service_id(&self.key).ok_or("service is gone")?;
        let mut cfg = t.service(sid).ok_or("service is gone")?.cfg.clone();
        change(&mut cfg);
        t.edit_service(cfg)
            .map_err(|e| format!("edit_service: {e}"))?;
        b.commit()
    }

    /// The oldest connection of this run to the server that is still there (active ones
    /// only if asked); connections gone are forgotten on the way.
    fn oldest<B: Backend<Conn = C>>(
        &mut self,
        b: &mut B,
        dest: DestId,
        active_only: bool,
    ) -> Option<C> {
        let mut found = None;
        let mut live = Vec::with_capacity(self.opened.len());
        for c in std::mem::take(&mut self.opened) {
            let Some(v) = b.conn(&c) else {
                continue;
            };
            if found.is_none() && v.dest == dest && (!active_only || v.active) {
                found = Some(c.clone());
            }
            live.push(c);
        }
        self.opened = live;
        found
    }
}

fn show(e: &Expect) -> &str {
    match e {
        Expect::Server(n) => n,
        Expect::NoServer => "none",
    }
}
