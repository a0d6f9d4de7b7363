//! One readable line per administrative change, as an operator would have typed it:
//! `admin: -a -t 10.0.0.1:80 -r 10.0.1.1:80 -m -w 1: ok (uid 0, pid 4242)`.
//!
//! Services and real servers are written the way `ipvsadm -S -n` writes them (the same
//! code renders both), so an audit line can be pasted back into `rvsadm`.

use rvs_api::{Reply, Request};
use rvs_core::{Change, DestConfig, DestInfo, ServiceConfig, ServiceInfo, ServiceKey};

fn service_rule(cfg: &ServiceConfig, dests: Vec<DestConfig>) -> String {
    let info = ServiceInfo {
        cfg: cfg.clone(),
        stats: Default::default(),
        rates: Default::default(),
        dests: dests
            .into_iter()
            .map(|cfg| DestInfo {
                cfg,
                activeconns: 0,
                inactconns: 0,
                persistconns: 0,
                overloaded: false,
                last_weight: 0,
                stats: Default::default(),
                rates: Default::default(),
            })
            .collect(),
    };
    rvs_ipvsadm::format::save(&[info], true, &rvs_ipvsadm::NoNames)
}

/// `-t 10.0.0.1:80` (the service part of a rule).
fn service_arg(key: &ServiceKey) -> String {
    let cfg = ServiceConfig::new(*key);
    let line = service_rule(&cfg, Vec::new());
    // "-A -t 10.0.0.1:80 -s wlc": keep what names the service
    let words: Vec<&str> = line.split_whitespace().collect();
    let end = words.iter().position(|w| *w == "-s").unwrap_or(words.len());
    words[1..end].join(" ")
}

fn dest_rule(svc: &ServiceKey, dest: &DestConfig) -> String {
    let text = service_rule(&ServiceConfig::new(*svc), vec![dest.clone()]);
    text.lines()
        .find(|l| l.starts_with("-a "))
        .unwrap_or_default()
        .to_string()
}

/// A change in ipvsadm's words.
pub fn change(c: &Change) -> String {
    match c {
        Change::AddService(c) => service_rule(c, Vec::new()).trim_end().to_string(),
        Change::EditService(c) => service_rule(c, Vec::new())
            .trim_end()
            .replacen("-A ", "-E ", 1),
        // keepalived's "present with this configuration" (added or edited)
        Change::SetService(c) => service_rule(c, Vec::new())
            .trim_end()
            .replacen("-A ", "-A|-E ", 1),
        Change::DelService(k) => format!("-D {}", service_arg(k)),
        Change::Flush => "-C".into(),
        Change::Zero(None) => "-Z".into(),
        Change::Zero(Some(k)) => format!("-Z {}", service_arg(k)),
        Change::AddDest { svc, dest } => dest_rule(svc, dest),
        Change::EditDest { svc, dest } => dest_rule(svc, dest).replacen("-a ", "-e ", 1),
        Change::SetDest { svc, dest } => dest_rule(svc, dest).replacen("-a ", "-a|-e ", 1),
        Change::DelDest { svc, addr, port } => {
            let r = match addr {
                std::net::IpAddr::V4(_) => format!("{addr}:{port}"),
                std::net::IpAddr::V6(_) => format!("[{addr}]:{port}"),
            };
            format!("-d {} -r {r}", service_arg(svc))
        }
        Change::SetTimeouts { tcp, tcpfin, udp } => format!("--set {tcp} {tcpfin} {udp}"),
        Change::StartDaemon(cfg) => format!("--start-daemon {cfg:?}"),
        Change::StopDaemon { master } => format!(
            "--stop-daemon {}",
            if *master { "master" } else { "backup" }
        ),
        Change::SetSysctl { name, value } => format!("--sysctl {name}={value}"),
    }
}

/// The request in ipvsadm's words.
pub fn describe(req: &Request) -> String {
    match req {
        Request::Change(c) => change(c),
        Request::Batch(list) => format!("-R ({} rules)", list.len()),
        Request::Info => "--version".into(),
        Request::ListServices { .. } => "-L".into(),
        Request::ListConns => "-Lc".into(),
        Request::GlobalStats => "-L --stats".into(),
        Request::GetTimeouts => "-L --timeout".into(),
        Request::ListDaemons => "-L --daemon".into(),
        Request::Status => "--status".into(),
        Request::Sysctls => "--sysctl".into(),
        Request::Drain { drain: true } => "--drain".into(),
        Request::Drain { drain: false } => "--undrain".into(),
    }
}

/// `ok`, or the error, in a few words.
pub fn outcome(reply: &Reply) -> String {
    match reply {
        Reply::Error(e) => format!("refused: {}", e.message),
        Reply::Batch(list) => {
            let failed: Vec<&str> = list
                .iter()
                .filter_map(|r| match r {
                    Reply::Error(e) => Some(e.message.as_str()),
                    _ => None,
                })
                .collect();
            match failed.first() {
                None => "ok".into(),
                Some(first) => format!(
                    "{} of {} refused (first: {first})",
                    failed.len(),
                    list.len()
                ),
            }
        }
        _ => "ok".into(),
    }
}

/// Who asked, from the socket's peer credentials.
#[derive(Clone, Copy, Debug, Default)]
pub struct Peer {
    pub uid: Option<u32>,
    pub pid: Option<i32>,
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.uid, self.pid) {
            (Some(u), Some(p)) => write!(f, "uid {u}, pid {p}"),
            (Some(u), None) => write!(f, "uid {u}"),
            _ => f.write_str("peer unknown"),
        }
    }
}

/// Logs one change (INFO when applied, WARN when refused).
pub fn log(req: &Request, reply: &Reply, peer: Peer) {
    let what = describe(req);
    let result = outcome(reply);
    if result == "ok" {
        tracing::info!(target: "rvsd::audit", "admin: {what}: ok ({peer})");
    } else {
        tracing::warn!(target: "rvsd::audit", "admin: {what}: {result} ({peer})");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rvs_core::{Forward, Protocol};

    fn key() -> ServiceKey {
        ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: "10.0.0.1".parse().unwrap(),
            port: 80,
        }
    }

    #[test]
    fn requests_read_as_ipvsadm_rules() {
        assert_eq!(
            describe(&Request::Change(Change::AddService(
                ServiceConfig::new(key()).with_scheduler("wrr")
            ))),
            "-A -t 10.0.0.1:80 -s wrr"
        );
        let mut d = DestConfig::new("10.0.1.1".parse().unwrap(), 8080);
        d.weight = 3;
        d.forward = Forward::Masq;
        assert_eq!(
            describe(&Request::Change(Change::AddDest {
                svc: key(),
                dest: d.clone()
            })),
            "-a -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 3"
        );
        assert_eq!(
            describe(&Request::Change(Change::EditDest {
                svc: key(),
                dest: d
            })),
            "-e -t 10.0.0.1:80 -r 10.0.1.1:8080 -m -w 3"
        );
        assert_eq!(
            describe(&Request::Change(Change::DelDest {
                svc: key(),
                addr: "10.0.1.1".parse().unwrap(),
                port: 8080
            })),
            "-d -t 10.0.0.1:80 -r 10.0.1.1:8080"
        );
        assert_eq!(
            describe(&Request::Change(Change::DelService(key()))),
            "-D -t 10.0.0.1:80"
        );
        assert_eq!(describe(&Request::Change(Change::Flush)), "-C");
        assert!(!describe(&Request::Change(Change::Flush)).contains('{'));
    }

    #[test]
    fn a_batch_outcome_counts_the_refusals() {
        let e = Reply::Error(rvs_api::ApiError {
            errno: None,
            message: "Service already exists".into(),
            refused: false,
        });
        assert_eq!(outcome(&Reply::Batch(vec![Reply::Ok, Reply::Ok])), "ok");
        assert_eq!(
            outcome(&Reply::Batch(vec![Reply::Ok, e.clone()])),
            "1 of 2 refused (first: Service already exists)"
        );
        assert_eq!(outcome(&e), "refused: Service already exists");
    }
}
