//! A stable text form of a loaded configuration: the table entries in `ipvsadm -S`
//! style, the resolved checkers and VRRP instances, then the diagnostics. Golden tests
//! compare it; `rvsd -t -v` could print it.

use crate::checker::{CheckerKind, HttpProtocol};
use crate::config::Config;
use crate::lvs::VsTarget;
use crate::ops::to_table_ops;
use rvs_core::{DestConfig, Forward, ServiceConfig, ServiceKey, SockAddr};
use std::fmt::Write;
use std::time::Duration;

fn service_arg(k: &ServiceKey) -> String {
    match k {
        ServiceKey::Addr { proto, addr, port } => {
            let flag = match proto {
                rvs_core::Protocol::Tcp => "-t",
                rvs_core::Protocol::Udp => "-u",
                rvs_core::Protocol::Sctp => "--sctp-service",
            };
            format!("{flag} {}", SockAddr(*addr, *port))
        }
        ServiceKey::Fwmark { mark, family } => match family {
            rvs_core::Family::V4 => format!("-f {mark}"),
            rvs_core::Family::V6 => format!("-f {mark} -6"),
        },
    }
}

fn service_line(s: &ServiceConfig) -> String {
    let mut l = format!("-A {} -s {}", service_arg(&s.key), s.scheduler);
    if s.sched_flags.0 != 0 {
        let _ = write!(l, " -b 0x{:x}", s.sched_flags.0);
    }
    if let Some(p) = s.persistence {
        let _ = write!(l, " -p {p}");
        if s.netmask.0 != s.key.family().max_prefix() {
            let _ = write!(l, " -M {}", s.netmask.0);
        }
    }
    if let Some(pe) = &s.pe {
        let _ = write!(l, " --pe {pe}");
    }
    if s.ops {
        l.push_str(" -o");
    }
    l
}

fn dest_line(k: &ServiceKey, d: &DestConfig) -> String {
    let m = match d.forward {
        Forward::Masq => "-m",
        Forward::Route | Forward::Local => "-g",
        Forward::Tunnel => "-i",
    };
    let mut l = format!(
        "-a {} -r {} {m} -w {}",
        service_arg(k),
        SockAddr(d.addr, d.port),
        d.weight
    );
    if d.u_threshold != 0 {
        let _ = write!(l, " -x {}", d.u_threshold);
    }
    if d.l_threshold != 0 {
        let _ = write!(l, " -y {}", d.l_threshold);
    }
    l
}

fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    format!("{s}s")
}

/// The canonical dump.
pub fn dump(cfg: &Config) -> String {
    let mut out = String::new();
    let desired = to_table_ops(cfg);
    out.push_str("# table\n");
    for v in &desired.vss {
        for (i, s) in v.services.iter().enumerate() {
            let _ = writeln!(out, "{}", service_line(s));
            for d in &v.dests[i] {
                let _ = writeln!(out, "{}", dest_line(&s.key, d));
            }
            if let Some(ss) = &v.sorry {
                let _ = writeln!(out, "# sorry {}", dest_line(&s.key, &ss[i]));
            }
        }
    }
    out.push_str("# checkers\n");
    for vs in &cfg.virtual_servers {
        let vsname = match &vs.target {
            VsTarget::Addr { ip, port } => SockAddr(*ip, *port).to_string(),
            VsTarget::Fwmark(m) => format!("fwmark {m}"),
            VsTarget::Group(g) => format!("group {g}"),
        };
        let _ = writeln!(
            out,
            "vs {vsname} quorum={} hysteresis={} alpha={} omega={} inhibit={}",
            vs.quorum, vs.hysteresis, vs.alpha, vs.omega, vs.inhibit_on_failure
        );
        for rs in &vs.real_servers {
            let _ = write!(
                out,
                "  rs {} weight={} inhibit={}",
                SockAddr(rs.addr, rs.port),
                vs.weight_of(rs),
                vs.inhibit(rs)
            );
            if let Some(s) = &rs.notify_up {
                let _ = write!(out, " notify_up=[{}]", s.args.join("|"));
            }
            if let Some(s) = &rs.notify_down {
                let _ = write!(out, " notify_down=[{}]", s.args.join("|"));
            }
            out.push('\n');
            for ck in &rs.checkers {
                let t = vs.timing(rs, ck);
                let c = &ck.common;
                let target = SockAddr(
                    c.connect_ip.unwrap_or(rs.addr),
                    c.connect_port.unwrap_or(rs.port),
                );
                let _ = write!(
                    out,
                    "    {} {target} delay_loop={} retry={} delay_before_retry={} warmup={} connect_timeout={} alpha={}",
                    ck.kind.name(),
                    secs(t.delay_loop),
                    t.retry,
                    secs(t.delay_before_retry),
                    secs(t.warmup),
                    secs(t.connect_timeout),
                    t.alpha
                );
                match &ck.kind {
                    CheckerKind::Http(h) | CheckerKind::Ssl(h) => {
                        let proto = match h.http_protocol {
                            HttpProtocol::Http10 => "1.0",
                            HttpProtocol::Http10Close => "1.0C",
                            HttpProtocol::Http11 => "1.1",
                        };
                        let _ = write!(out, " http={proto}");
                        for u in &h.urls {
                            let codes: Vec<String> = u
                                .status_codes
                                .iter()
                                .map(|(a, b)| format!("{a}-{b}"))
                                .collect();
                            let _ = write!(out, " url={}[{}]", u.path, codes.join(","));
                            if u.digest.is_some() {
                                out.push_str("+md5");
                            }
                        }
                    }
                    CheckerKind::Misc(m) => {
                        let _ = write!(
                            out,
                            " script=[{}] timeout={:?} dynamic={}",
                            m.script.args.join("|"),
                            m.timeout,
                            m.dynamic
                        );
                    }
                    CheckerKind::Dns(dn) => {
                        let _ = write!(out, " type={} name={:?}", dn.qtype, dn.name);
                    }
                    _ => {}
                }
                out.push('\n');
            }
        }
    }
    out.push_str("# vrrp\n");
    for v in &cfg.vrrp_instances {
        let vips: Vec<String> = v
            .virtual_ipaddress
            .iter()
            .map(|a| format!("{}/{}", a.addr, a.prefix))
            .collect();
        let _ = writeln!(
            out,
            "vrrp_instance {} state={:?} interface={} vrid={} priority={} advert_int={} version={} auth={:?} vips={} preempt={}",
            v.name,
            v.initial_state(),
            v.interface.as_deref().unwrap_or("-"),
            v.virtual_router_id,
            v.effective_priority(),
            secs(v.effective_advert_int()),
            v.effective_version(cfg.global.vrrp.version),
            v.authentication.as_ref().map(|a| (a.auth_type, String::from_utf8_lossy(&a.auth_pass).to_string())),
            vips.join(","),
            v.preempt
        );
    }
    out.push_str("# diagnostics\n");
    for d in &cfg.diagnostics {
        let name = d
            .pos
            .file
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_default();
        let mut p = d.pos.clone();
        p.file = std::sync::Arc::from(std::path::Path::new(&name));
        let dd = crate::diag::Diagnostic {
            pos: p,
            ..d.clone()
        };
        let _ = writeln!(out, "{dd}");
    }
    out
}
