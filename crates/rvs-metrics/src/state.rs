//! The dashboard's JSON (`/api/v1/state`): flat, named for a page, rates per second.
//!
//! A real server appears with the health of its checkers: `up`, `down` (with the last
//! error), or `unchecked`. A server its checker took out of the table (keepalived deletes
//! a failed server unless `inhibit_on_failure`) is still listed, as `down`, weight 0.

use crate::View;
use rvs_core::{Forward, Protocol, ServiceKey};
use serde::Serialize;
use std::net::{IpAddr, SocketAddr};

#[derive(Debug, Serialize)]
pub struct State {
    pub version: String,
    pub dataplane: String,
    pub services: Vec<Service>,
    pub drops: Vec<Drop>,
    pub vrrp: Vec<Vrrp>,
    pub totals: Totals,
}

#[derive(Debug, Serialize)]
pub struct Totals {
    pub connections: u64,
    pub cps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

#[derive(Debug, Serialize)]
pub struct Service {
    /// `TCP 10.0.0.1:80`, `FWM 10`.
    pub name: String,
    pub scheduler: String,
    pub persistent: Option<u32>,
    pub connections: u64,
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
    pub servers: Vec<Server>,
}

#[derive(Debug, Serialize)]
pub struct Server {
    pub address: String,
    pub forward: &'static str,
    pub weight: u32,
    pub active: u32,
    pub inactive: u32,
    pub connections: u64,
    pub cps: u64,
    pub inbps: u64,
    pub outbps: u64,
    /// `up`, `down` or `unchecked`.
    pub health: &'static str,
    pub checker: Option<String>,
    pub error: Option<String>,
    /// In the table (false: a checker took it out).
    pub in_table: bool,
}

#[derive(Debug, Serialize)]
pub struct Drop {
    pub reason: String,
    pub packets: u64,
}

#[derive(Debug, Serialize)]
pub struct Vrrp {
    pub instance: String,
    pub state: String,
    pub priority: Option<String>,
}

fn sock(a: IpAddr, p: u16) -> String {
    SocketAddr::new(a, p).to_string()
}

pub fn service_name(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr { proto, addr, port } => {
            let p = match proto {
                Protocol::Tcp => "TCP",
                Protocol::Udp => "UDP",
                Protocol::Sctp => "SCTP",
            };
            format!("{p} {}", sock(*addr, *port))
        }
        ServiceKey::Fwmark { mark, .. } => format!("FWM {mark}"),
    }
}

fn forward(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "Masq",
        Forward::Local => "Local",
        Forward::Tunnel => "Tunnel",
        Forward::Route => "Route",
    }
}

pub fn build(v: &View) -> State {
    let checkers = &v.status.checkers;
    let services = v
        .services
        .iter()
        .map(|s| {
            let mine: Vec<_> = checkers.iter().filter(|c| c.service == s.cfg.key).collect();
            let mut servers: Vec<Server> = s
                .dests
                .iter()
                .map(|d| {
                    let c = mine
                        .iter()
                        .find(|c| c.addr == d.cfg.addr && c.port == d.cfg.port);
                    Server {
                        address: sock(d.cfg.addr, d.cfg.port),
                        forward: forward(d.cfg.forward),
                        weight: d.cfg.weight,
                        active: d.activeconns,
                        inactive: d.inactconns,
                        connections: d.stats.conns,
                        cps: d.rates.cps,
                        inbps: d.rates.inbps,
                        outbps: d.rates.outbps,
                        health: match c {
                            Some(c) if c.up => "up",
                            Some(_) => "down",
                            None => "unchecked",
                        },
                        checker: c.map(|c| c.kind.clone()),
                        error: c.and_then(|c| c.last_error.clone()),
                        in_table: true,
                    }
                })
                .collect();
            for c in &mine {
                if !s
                    .dests
                    .iter()
                    .any(|d| d.cfg.addr == c.addr && d.cfg.port == c.port)
                {
                    servers.push(Server {
                        address: sock(c.addr, c.port),
                        forward: "-",
                        weight: 0,
                        active: 0,
                        inactive: 0,
                        connections: 0,
                        cps: 0,
                        inbps: 0,
                        outbps: 0,
                        health: if c.up { "up" } else { "down" },
                        checker: Some(c.kind.clone()),
                        error: c.last_error.clone(),
                        in_table: false,
                    });
                }
            }
            Service {
                name: service_name(&s.cfg.key),
                scheduler: s.cfg.scheduler.to_string(),
                persistent: s.cfg.persistence,
                connections: s.stats.conns,
                cps: s.rates.cps,
                inpps: s.rates.inpps,
                outpps: s.rates.outpps,
                inbps: s.rates.inbps,
                outbps: s.rates.outbps,
                servers,
            }
        })
        .collect();
    let mut drops = Vec::new();
    let mut vrrp: Vec<Vrrp> = Vec::new();
    for (k, val) in &v.status.facts {
        if let Some(r) = k.strip_prefix("xdp.reason.") {
            if let Ok(n) = val.parse() {
                drops.push(Drop {
                    reason: r.to_string(),
                    packets: n,
                });
            }
        } else if let Some(rest) = k.strip_prefix("vrrp.") {
            if let Some((inst, what)) = rest.split_once('.') {
                if inst == "drop" {
                    continue;
                }
                match what {
                    "state" => vrrp.push(Vrrp {
                        instance: inst.to_string(),
                        state: val.clone(),
                        priority: None,
                    }),
                    "effective_priority" => {
                        if let Some(x) = vrrp.iter_mut().find(|x| x.instance == inst) {
                            x.priority = Some(val.clone());
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let (g, r) = &v.global;
    State {
        version: v.status.version.clone(),
        dataplane: v.status.dataplane.clone(),
        services,
        drops,
        vrrp,
        totals: Totals {
            connections: g.conns,
            cps: r.cps,
            inbps: r.inbps,
            outbps: r.outbps,
        },
    }
}
