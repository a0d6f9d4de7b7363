//! `-L` (all its views) and `-S`: the virtual-service table as ipvsadm prints it.

use crate::check::tunnel_name;
use crate::command::Format;
use crate::names::{addr_port, truncate_bytes, Resolver};
use crate::sort::sorted_services;
use rvs_core::snapshot::{DestInfo, ServiceInfo, TableInfo};
use rvs_core::{Family, Forward, Protocol, SchedFlags, ServiceKey, TunnelCsum, TunnelType};

/// The one view a listing uses; when several are asked for, the first in this order wins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum View {
    Rule,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    TunInfo,
    Default,
}

impl View {
    fn of(f: &Format) -> View {
        if f.stats {
            View::Stats
        } else if f.rate {
            View::Rate
        } else if f.thresholds {
            View::Thresholds
        } else if f.persistent_conn {
            View::PersistentConn
        } else if f.tun_info {
            View::TunInfo
        } else {
            View::Default
        }
    }
}

struct Style<'a> {
    view: View,
    numeric: bool,
    exact: bool,
    names: &'a dyn Resolver,
}

/// `ipvsadm -L` of the whole table: version header, title, every service.
pub fn list_table(
    info: &TableInfo,
    services: &[ServiceInfo],
    format: &Format,
    names: &dyn Resolver,
) -> String {
    let (ma, mi, pa) = info.version;
    let mut out = format!(
        "IP Virtual Server version {ma}.{mi}.{pa} (size={})\n",
        info.size
    );
    let style = Style {
        view: View::of(format),
        numeric: format.numeric,
        exact: format.exact,
        names,
    };
    title(&mut out, style.view);
    for svc in sorted_services(services, format.nosort) {
        service_entry(&mut out, &svc, &style);
    }
    out
}

/// `ipvsadm -L -t|-u|-f ...`: title and that one service, no version header.
pub fn list_service(svc: &ServiceInfo, format: &Format, names: &dyn Resolver) -> String {
    let style = Style {
        view: View::of(format),
        numeric: format.numeric,
        exact: format.exact,
        names,
    };
    let mut out = String::new();
    title(&mut out, style.view);
    let sorted = sorted_services(std::slice::from_ref(svc), format.nosort);
    service_entry(&mut out, &sorted[0], &style);
    out
}

/// `ipvsadm -S [-n]`: rules that `-R` reads back.
///
/// One addition to ipvsadm 1.31's format: real servers with connection thresholds get
/// `-x`/`-y` (ipvsadm drops them, so a save/restore cycle would lose them). Lines without
/// thresholds are exactly ipvsadm's.
pub fn save(services: &[ServiceInfo], numeric: bool, names: &dyn Resolver) -> String {
    let style = Style {
        view: View::Rule,
        numeric,
        exact: false,
        names,
    };
    let mut out = String::new();
    for svc in sorted_services(services, false) {
        service_entry(&mut out, &svc, &style);
    }
    out
}

fn title(out: &mut String, view: View) {
    let row = "  -> RemoteAddress:Port\n";
    let head = "Prot LocalAddress:Port";
    match view {
        View::Stats => out.push_str(&format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{row}",
            "Conns", "InPkts", "OutPkts", "InBytes", "OutBytes"
        )),
        View::Rate => out.push_str(&format!(
            "{head:<33} {:>8} {:>8} {:>8} {:>8} {:>8}\n{row}",
            "CPS", "InPPS", "OutPPS", "InBPS", "OutBPS"
        )),
        View::Thresholds => out.push_str(&format!(
            "{head:<33} {:<10} {:<10} {:<10} {:<10}\n{row}",
            "Uthreshold", "Lthreshold", "ActiveConn", "InActConn"
        )),
        View::PersistentConn => out.push_str(&format!(
            "{head:<33} {:<9} {:<11} {:<10} {:<10}\n{row}",
            "Weight", "PersistConn", "ActiveConn", "InActConn"
        )),
        View::TunInfo => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward TunnelInfo    Weight ActiveConn InActConn\n",
        ),
        View::Default => out.push_str(
            "Prot LocalAddress:Port Scheduler Flags\n  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn\n",
        ),
        View::Rule => {}
    }
}

/// `print_largenum`: right-aligned in 9 columns, scaled to K/M/G/T unless `--exact`.
pub fn largenum(n: u64, exact: bool) -> String {
    if exact {
        let len = n.to_string().len();
        let width = if len <= 8 { 9 } else { len + 1 };
        return format!("{n:>width$}");
    }
    if n < 100_000_000 {
        format!("{n:>9}")
    } else if n < 1_000_000_000 {
        format!("{:>8}K", n / 1_000)
    } else if n < 100_000_000_000 {
        format!("{:>8}M", n / 1_000_000)
    } else if n < 100_000_000_000_000 {
        format!("{:>8}G", n / 1_000_000_000)
    } else {
        format!("{:>8}T", n / 1_000_000_000_000)
    }
}

/// Protocol used to name ports: fwmark services carry TCP, as ipvsadm creates them.
fn name_proto(key: &ServiceKey) -> Protocol {
    key.protocol().unwrap_or(Protocol::Tcp)
}

fn service_name(key: &ServiceKey, style: &Style) -> String {
    let rule = style.view == View::Rule;
    match *key {
        // ipvsadm prints the mark with %d.
        ServiceKey::Fwmark { mark, family } => {
            let v6 = family == Family::V6;
            match (rule, v6) {
                (true, false) => format!("-f {}", mark as i32),
                (true, true) => format!("-f {} -6", mark as i32),
                (false, false) => format!("FWM  {}", mark as i32),
                (false, true) => format!("FWM  {} IPv6", mark as i32),
            }
        }
        ServiceKey::Addr { proto, addr, port } => {
            let vname = addr_port(addr, port, Some(proto), style.numeric, style.names);
            if rule {
                let opt = match proto {
                    Protocol::Tcp => "-t",
                    Protocol::Udp => "-u",
                    Protocol::Sctp => "--sctp-service",
                };
                format!("{opt} {vname}")
            } else {
                let mut s = format!("{:<4} {vname}", proto.name());
                if addr.is_ipv4() {
                    truncate_bytes(&mut s, 33);
                }
                s
            }
        }
    }
}

/// Scheduler flags by name. (ipvsadm omits `flag-3` for sh/mh, printing an empty list;
/// it is named here so that `-S` output restores.)
pub(crate) fn sched_flag_names(scheduler: &str, flags: SchedFlags) -> Vec<&'static str> {
    let names = match scheduler {
        "sh" => ["sh-fallback", "sh-port", "flag-3"],
        "mh" => ["mh-fallback", "mh-port", "flag-3"],
        _ => ["flag-1", "flag-2", "flag-3"],
    };
    [SchedFlags::SCHED1, SchedFlags::SCHED2, SchedFlags::SCHED3]
        .iter()
        .zip(names)
        .filter(|(bit, _)| flags.0 & **bit != 0)
        .map(|(_, name)| name)
        .collect()
}

fn sched_flags_text(scheduler: &str, flags: SchedFlags) -> String {
    sched_flag_names(scheduler, flags).join(",")
}

fn has_sched_flags(flags: SchedFlags) -> bool {
    flags.0 & (SchedFlags::SCHED1 | SchedFlags::SCHED2 | SchedFlags::SCHED3) != 0
}

fn service_line(out: &mut String, svc: &ServiceInfo, name: &str, style: &Style) {
    let cfg = &svc.cfg;
    let v6 = cfg.key.family() == Family::V6;
    let mask = match (v6, cfg.netmask.0) {
        (false, m) if m < 32 => Some(cfg.netmask.dotted().to_string()),
        (true, m) if m < 128 => Some(m.to_string()),
        _ => None,
    };
    match style.view {
        View::Rule => {
            out.push_str(&format!("-A {name} -s {}", cfg.scheduler));
            if let Some(t) = cfg.persistence {
                out.push_str(&format!(" -p {t}"));
                if let Some(m) = &mask {
                    out.push_str(&format!(" -M {m}"));
                }
            }
            if let Some(pe) = cfg.pe.as_deref().filter(|p| !p.is_empty()) {
                out.push_str(&format!(" --pe {pe}"));
            }
            if cfg.ops {
                out.push_str(" -o");
            }
            if has_sched_flags(cfg.sched_flags) {
                out.push_str(" -b ");
                out.push_str(&sched_flags_text(&cfg.scheduler, cfg.sched_flags));
            }
        }
        View::Stats | View::Rate => {
            let s = &svc.stats;
            let r = &svc.rates;
            let fields = if style.view == View::Stats {
                [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes]
            } else {
                [r.cps, r.inpps, r.outpps, r.inbps, r.outbps]
            };
            out.push_str(&format!("{name:<33}"));
            for n in fields {
                out.push_str(&largenum(n, style.exact));
            }
        }
        _ => {
            out.push_str(&format!("{name} {}", cfg.scheduler));
            if has_sched_flags(cfg.sched_flags) {
                out.push_str(&format!(
                    " ({})",
                    sched_flags_text(&cfg.scheduler, cfg.sched_flags)
                ));
            }
            if let Some(t) = cfg.persistence {
                out.push_str(&format!(" persistent {t}"));
                if let Some(m) = &mask {
                    out.push_str(&format!(" mask {m}"));
                }
                if let Some(pe) = cfg.pe.as_deref().filter(|p| !p.is_empty()) {
                    out.push_str(&format!(" pe {pe}"));
                }
            }
            if cfg.ops {
                out.push_str(" ops");
            }
        }
    }
    out.push('\n');
}

fn forward_switch(f: Forward) -> &'static str {
    match f {
        Forward::Masq => "-m",
        Forward::Tunnel => "-i",
        Forward::Local | Forward::Route => "-g",
    }
}

fn csum_option(c: TunnelCsum) -> &'static str {
    match c {
        TunnelCsum::NoCsum => "--tun-nocsum",
        TunnelCsum::Csum => "--tun-csum",
        TunnelCsum::RemCsum => "--tun-remcsum",
    }
}

fn csum_short(c: TunnelCsum) -> &'static str {
    match c {
        TunnelCsum::NoCsum => "-c",
        TunnelCsum::Csum => "+c",
        TunnelCsum::RemCsum => "r+c",
    }
}

/// `--tun-info` column: `ipip`, `gue:<port>:<csum>`, `gre:<csum>`, or `n/a`.
fn tunnel_info(d: &DestInfo) -> String {
    if d.cfg.forward != Forward::Tunnel {
        return "n/a".to_string();
    }
    let t = &d.cfg.tunnel;
    match t.kind {
        TunnelType::Ipip => "ipip".to_string(),
        TunnelType::Gue => format!("gue:{}:{}", t.port, csum_short(t.csum)),
        TunnelType::Gre => format!("gre:{}", csum_short(t.csum)),
    }
}

fn dest_rule(out: &mut String, svc_name: &str, dname: &str, d: &DestInfo) {
    let c = &d.cfg;
    out.push_str(&format!(
        "-a {svc_name} -r {dname} {} -w {}",
        forward_switch(c.forward),
        c.weight
    ));
    if c.forward == Forward::Tunnel {
        let t = &c.tunnel;
        out.push_str(&format!(" --tun-type {}", tunnel_name(t.kind)));
        match t.kind {
            TunnelType::Ipip => {}
            TunnelType::Gue => {
                out.push_str(&format!(" --tun-port {} {}", t.port, csum_option(t.csum)))
            }
            TunnelType::Gre => out.push_str(&format!(" {}", csum_option(t.csum))),
        }
    }
    if c.u_threshold != 0 {
        out.push_str(&format!(" -x {}", c.u_threshold));
    }
    if c.l_threshold != 0 {
        out.push_str(&format!(" -y {}", c.l_threshold));
    }
    out.push('\n');
}

fn dest_line(out: &mut String, svc: &ServiceInfo, svc_name: &str, d: &DestInfo, style: &Style) {
    let c = &d.cfg;
    let mut dname = addr_port(
        c.addr,
        c.port,
        Some(name_proto(&svc.cfg.key)),
        style.numeric,
        style.names,
    );
    if style.view != View::Rule && c.addr.is_ipv4() {
        truncate_bytes(&mut dname, 28);
    }
    let row = match style.view {
        View::Rule => return dest_rule(out, svc_name, &dname, d),
        View::Stats => {
            let s = &d.stats;
            let mut row = format!("  -> {dname:<28}");
            for n in [s.conns, s.inpkts, s.outpkts, s.inbytes, s.outbytes] {
                row.push_str(&largenum(n, style.exact));
            }
            row
        }
        View::Rate => {
            let r = &d.rates;
            format!(
                "  -> {dname:<28} {:>8} {:>8} {:>8}{}{}",
                r.cps,
                r.inpps,
                r.outpps,
                largenum(r.inbps, style.exact),
                largenum(r.outbps, style.exact)
            )
        }
        View::Thresholds => format!(
            "  -> {dname:<28} {:<10} {:<10} {:<10} {:<10}",
            c.u_threshold, c.l_threshold, d.activeconns, d.inactconns
        ),
        View::PersistentConn => format!(
            "  -> {dname:<28} {:<9} {:<11} {:<10} {:<10}",
            c.weight, d.persistconns, d.activeconns, d.inactconns
        ),
        View::TunInfo => format!(
            "  -> {dname:<28} {:<7} {:<13} {:<6} {:<10} {:<10}",
            c.forward.name(),
            tunnel_info(d),
            c.weight,
            d.activeconns,
            d.inactconns
        ),
        View::Default => format!(
            "  -> {dname:<28} {:<7} {:<6} {:<10} {:<10}",
            c.forward.name(),
            c.weight,
            d.activeconns,
            d.inactconns
        ),
    };
    out.push_str(&row);
    out.push('\n');
}

fn service_entry(out: &mut String, svc: &ServiceInfo, style: &Style) {
    let name = service_name(&svc.cfg.key, style);
    service_line(out, svc, &name, style);
    for d in &svc.dests {
        dest_line(out, svc, &name, d, style);
    }
}

#[cfg(test)]
mod tests {
    use super::largenum;

    #[test]
    fn largenum_scales_like_ipvsadm() {
        assert_eq!(largenum(0, false), "        0");
        assert_eq!(largenum(99_999_999, false), " 99999999");
        assert_eq!(largenum(123_456_789, false), "  123456K");
        assert_eq!(largenum(1_000_000_000, false), "    1000M");
        assert_eq!(largenum(99_999_999_999_999, false), "   99999G");
        assert_eq!(largenum(100_000_000_000_000, false), "     100T");
        assert_eq!(largenum(123_456_789, true), " 123456789");
        assert_eq!(largenum(12_345_678, true), " 12345678");
    }
}
