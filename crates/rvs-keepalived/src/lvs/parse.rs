//! Parsing of `virtual_server` and `real_server` blocks into the model of [`super`].

use super::*;
use crate::checker;
use crate::diag::Diags;
use crate::script;
use crate::tree::Node;
use crate::value::{self, arg, bool_opt, ip_tok, opt_arg, port_tok, timer, uint};

/// Parses `virtual_server …` and its block.
pub fn parse_vs(d: &mut Diags, n: &Node) -> Option<VirtualServer> {
    let target = parse_target(d, n)?;
    let mut vs = VirtualServer::new(n.pos().clone(), target);
    if !value::need_block(d, n) {
        return None;
    }
    for c in n.children() {
        vs_keyword(d, c, &mut vs);
    }
    Some(vs)
}

fn parse_target(d: &mut Diags, n: &Node) -> Option<VsTarget> {
    let first = arg(d, n, 1)?;
    match first.text.as_str() {
        "fwmark" => {
            let mark = uint(d, n, 2, 0, u32::MAX.into())? as u32;
            value::extra_args(d, n, 2);
            Some(VsTarget::Fwmark(mark))
        }
        "group" => {
            let name = arg(d, n, 2)?.text.clone();
            value::extra_args(d, n, 2);
            Some(VsTarget::Group(name))
        }
        _ => {
            let ip = ip_tok(d, "virtual_server", first)?;
            let port = match opt_arg(n, 2) {
                Some(t) => port_tok(d, "virtual_server", t)?,
                None => 0,
            };
            value::extra_args(d, n, 2);
            Some(VsTarget::Addr { ip, port })
        }
    }
}

fn vs_keyword(d: &mut Diags, c: &Node, vs: &mut VirtualServer) {
    let t =
        |d: &mut Diags, c: &Node, min_us: u64| timer(d, c, 1, Duration::from_micros(min_us), None);
    match c.name() {
        "ip_family" => {
            if let Some(a) = arg(d, c, 1) {
                vs.ip_family = match a.text.as_str() {
                    "inet" => Some(Family::V4),
                    "inet6" => Some(Family::V6),
                    other => {
                        d.error(
                            &a.pos,
                            format!("unknown address family '{other}' (inet or inet6)"),
                        );
                        None
                    }
                }
            }
        }
        "retry" => vs.retry = uint(d, c, 1, 1, u32::MAX.into()).map(|v| v as u32),
        "delay_before_retry" => vs.delay_before_retry = t(d, c, 0),
        "warmup" => vs.warmup = t(d, c, 0),
        "connect_timeout" => {
            if let Some(v) = timer(
                d,
                c,
                1,
                Duration::from_micros(1),
                Some(Duration::from_micros(u32::MAX.into())),
            ) {
                vs.connect_timeout = v;
            }
        }
        "delay_loop" => {
            if let Some(v) = t(d, c, 1) {
                vs.delay_loop = v;
            }
        }
        "inhibit_on_failure" => vs.inhibit_on_failure = true,
        "lb_algo" | "lvs_sched" => {
            if let Some(a) = arg(d, c, 1) {
                if rvs_core::SchedKind::from_name(&a.text).is_some() && a.text != "none" {
                    vs.lvs_sched = Some(a.text.clone());
                } else {
                    d.error(&a.pos, format!("invalid lvs_sched '{}'", a.text));
                }
            }
        }
        "hashed" => {}
        "ops" => vs.ops = true,
        w @ ("flag-1" | "flag-2" | "flag-3" | "sh-port" | "sh-fallback" | "mh-port"
        | "mh-fallback") => vs.sched_flag_words.push((w.to_string(), c.pos().clone())),
        "lb_kind" | "lvs_method" => vs.lvs_method = parse_method(d, c),
        "persistence_engine" => vs.persistence_engine = value::string(d, c),
        "persistence_timeout" => {
            vs.persistence_timeout = match opt_arg(c, 1) {
                None => Some(rvs_core::config::DEFAULT_PERSISTENCE),
                Some(_) => match uint(d, c, 1, 0, rvs_core::config::MAX_TIMEOUT.into()) {
                    Some(0) | None => None,
                    Some(v) => Some(v as u32),
                },
            }
        }
        "persistence_granularity" => {
            if let Some(a) = arg(d, c, 1) {
                vs.persistence_granularity = parse_granularity(d, &a.text, &a.pos);
            }
        }
        "protocol" => {
            if let Some(a) = arg(d, c, 1) {
                vs.protocol = match a.text.to_ascii_uppercase().as_str() {
                    "TCP" => Some(Protocol::Tcp),
                    "UDP" => Some(Protocol::Udp),
                    "SCTP" => Some(Protocol::Sctp),
                    _ => {
                        d.error(
                            &a.pos,
                            format!("unknown protocol '{}' (TCP, UDP or SCTP)", a.text),
                        );
                        None
                    }
                }
            }
        }
        "ha_suspend" => {
            vs.ha_suspend = true;
            d.warn_once(
                "ha_suspend",
                c.pos(),
                "'ha_suspend': rvs runs the checkers whether or not the VIP is local (no VRRP yet)",
            );
        }
        "smtp_alert" => {
            vs.smtp_alert = bool_opt(d, c);
            smtp_unsupported(d, c);
        }
        "virtualhost" => vs.virtualhost = value::string(d, c),
        "snmp_name" => d.warn_once(
            "snmp_name",
            c.pos(),
            "'snmp_name': SNMP is not supported by rvs - ignored",
        ),
        "alpha" => vs.alpha = true,
        "omega" => vs.omega = true,
        "quorum_up" => vs.quorum_up = script::parse(d, c, true),
        "quorum_down" => vs.quorum_down = script::parse(d, c, true),
        "quorum" => {
            if let Some(v) = uint(d, c, 1, 1, u32::MAX.into()) {
                vs.quorum = v as u32;
            }
        }
        "hysteresis" => {
            if let Some(v) = uint(d, c, 1, 0, u32::MAX.into()) {
                vs.hysteresis = v as u32;
            }
        }
        "weight" => {
            if let Some(v) = uint(d, c, 1, 1, rvs_core::table::MAX_WEIGHT.into()) {
                vs.weight = v as u32;
            }
        }
        "sorry_server" => vs.sorry_server = parse_sorry(d, c),
        "sorry_server_inhibit" => match &mut vs.sorry_server {
            Some(s) => s.inhibit = true,
            None => d.error(
                c.pos(),
                "'sorry_server_inhibit' before or without sorry_server",
            ),
        },
        "sorry_server_lvs_method" => {
            let m = parse_method(d, c);
            match &mut vs.sorry_server {
                Some(s) => s.lvs_method = m,
                None => d.error(
                    c.pos(),
                    "'sorry_server_lvs_method' before or without sorry_server",
                ),
            }
        }
        "real_server" => {
            if let Some(rs) = parse_rs(d, c) {
                vs.real_servers.push(rs);
            }
        }
        "nat_mask" => d.warn_once(
            "nat_mask",
            c.pos(),
            "'nat_mask' is obsolete (keepalived no longer has it) - ignored",
        ),
        other => d.unknown(c.pos(), other),
    }
}

pub(crate) fn smtp_unsupported(d: &mut Diags, c: &Node) {
    d.warn_once(
        "smtp_alert",
        c.pos(),
        "'smtp_alert': e-mail alerts are not supported by rvs yet - ignored",
    );
}

fn parse_sorry(d: &mut Diags, c: &Node) -> Option<SorryServer> {
    let a = arg(d, c, 1)?;
    let addr = ip_tok(d, "sorry_server", a)?;
    let port = match opt_arg(c, 2) {
        Some(t) => port_tok(d, "sorry_server", t)?,
        None => 0,
    };
    Some(SorryServer {
        pos: c.pos().clone(),
        addr,
        port,
        inhibit: false,
        lvs_method: None,
    })
}

/// `NAT|DR|TUN [type ipip|gue|gre] [port N] [nocsum|csum|remcsum]`.
pub fn parse_method(d: &mut Diags, c: &Node) -> Option<LvsMethod> {
    let a = arg(d, c, 1)?;
    let forward = match a.text.as_str() {
        "NAT" => Forward::Masq,
        "DR" => Forward::Route,
        "TUN" => Forward::Tunnel,
        other => {
            d.error(
                &a.pos,
                format!("unknown forwarding method '{other}' (NAT, DR or TUN)"),
            );
            return None;
        }
    };
    let mut tunnel = TunnelConfig::default();
    let mut i = 1;
    while i < c.args.len() {
        let w = &c.args[i];
        match w.text.as_str() {
            "type" | "port" => {
                let Some(v) = c.args.get(i + 1) else {
                    d.error(&w.pos, format!("'{}' needs a value", w.text));
                    return None;
                };
                if w.text == "type" {
                    tunnel.kind = match v.text.as_str() {
                        "ipip" => TunnelType::Ipip,
                        "gue" => TunnelType::Gue,
                        "gre" => TunnelType::Gre,
                        other => {
                            d.error(
                                &v.pos,
                                format!("unknown tunnel type '{other}' (ipip, gue or gre)"),
                            );
                            return None;
                        }
                    };
                } else {
                    tunnel.port = value::uint_tok(d, "tunnel port", v, 1, 65535)? as u16;
                }
                i += 2;
                continue;
            }
            "nocsum" => tunnel.csum = TunnelCsum::NoCsum,
            "csum" => tunnel.csum = TunnelCsum::Csum,
            "remcsum" => tunnel.csum = TunnelCsum::RemCsum,
            other => {
                d.error(&w.pos, format!("invalid tunnel option '{other}'"));
                return None;
            }
        }
        i += 1;
    }
    if forward == Forward::Tunnel || c.args.len() > 1 {
        if (tunnel.kind == TunnelType::Gue) != (tunnel.port != 0) {
            d.error(
                c.pos(),
                "gue tunnels require a port, other tunnels cannot have one",
            );
            return None;
        }
        if tunnel.kind == TunnelType::Ipip && tunnel.csum != TunnelCsum::NoCsum {
            d.error(c.pos(), "ipip tunnels do not support checksum options");
            return None;
        }
        if tunnel.kind == TunnelType::Gre && tunnel.csum == TunnelCsum::RemCsum {
            d.error(c.pos(), "gre tunnels do not support remcsum");
            return None;
        }
    }
    Some(LvsMethod { forward, tunnel })
}

/// IPv4 dotted mask (contiguous, as the table keeps a prefix) or an IPv6 prefix length.
fn parse_granularity(d: &mut Diags, s: &str, pos: &Pos) -> Option<Netmask> {
    if s.contains('.') {
        match s
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .map(Netmask::from_dotted)
        {
            Some(Some(m)) => Some(m),
            Some(None) => {
                d.error(
                    pos,
                    format!("persistence_granularity {s} is not a contiguous mask"),
                );
                None
            }
            None => {
                d.error(pos, format!("invalid IPv4 persistence_granularity '{s}'"));
                None
            }
        }
    } else {
        match s.parse::<u8>() {
            Ok(v) if (1..=128).contains(&v) => Some(Netmask(v)),
            _ => {
                d.error(
                    pos,
                    format!("invalid IPv6 persistence_granularity '{s}' (1..128)"),
                );
                None
            }
        }
    }
}

fn parse_rs(d: &mut Diags, n: &Node) -> Option<RealServer> {
    let a = arg(d, n, 1)?;
    let addr = ip_tok(d, "real_server", a)?;
    let port = match opt_arg(n, 2) {
        Some(t) => port_tok(d, "real_server", t)?,
        None => 0,
    };
    value::extra_args(d, n, 2);
    let mut rs = RealServer {
        pos: n.pos().clone(),
        addr,
        port,
        weight: None,
        lvs_method: None,
        inhibit_on_failure: None,
        notify_up: None,
        notify_down: None,
        uthreshold: 0,
        lthreshold: 0,
        alpha: None,
        retry: None,
        delay_before_retry: None,
        warmup: None,
        delay_loop: None,
        connect_timeout: None,
        virtualhost: None,
        smtp_alert: None,
        checkers: Vec::new(),
    };
    let t =
        |d: &mut Diags, c: &Node, min_us: u64| timer(d, c, 1, Duration::from_micros(min_us), None);
    for c in n.children() {
        match c.name() {
            "weight" => {
                rs.weight = uint(d, c, 1, 0, rvs_core::table::MAX_WEIGHT.into()).map(|v| v as u32)
            }
            "lvs_method" | "lb_kind" => rs.lvs_method = parse_method(d, c),
            "uthreshold" => rs.uthreshold = uint(d, c, 1, 0, u32::MAX.into()).unwrap_or(0) as u32,
            "lthreshold" => rs.lthreshold = uint(d, c, 1, 0, u32::MAX.into()).unwrap_or(0) as u32,
            "inhibit_on_failure" => rs.inhibit_on_failure = bool_opt(d, c),
            "notify_up" => rs.notify_up = script::parse(d, c, true),
            "notify_down" => rs.notify_down = script::parse(d, c, true),
            "alpha" => rs.alpha = bool_opt(d, c),
            "retry" => rs.retry = uint(d, c, 1, 1, u32::MAX.into()).map(|v| v as u32),
            "delay_before_retry" => rs.delay_before_retry = t(d, c, 0),
            "warmup" => rs.warmup = t(d, c, 0),
            "connect_timeout" => rs.connect_timeout = t(d, c, 1),
            "delay_loop" => rs.delay_loop = t(d, c, 1),
            "smtp_alert" => {
                rs.smtp_alert = bool_opt(d, c);
                smtp_unsupported(d, c);
            }
            "virtualhost" => rs.virtualhost = value::string(d, c),
            "snmp_name" => d.warn_once(
                "snmp_name",
                c.pos(),
                "'snmp_name': SNMP is not supported by rvs - ignored",
            ),
            "track_file" => d.warn_once(
                "track_file",
                c.pos(),
                "'track_file' is not supported by rvs yet - ignored",
            ),
            name if checker::is_checker(name) => {
                if value::need_block(d, c) {
                    if let Some(ck) = checker::parse(d, c) {
                        rs.checkers.push(ck);
                    }
                }
            }
            other => d.unknown(c.pos(), other),
        }
    }
    Some(rs)
}
