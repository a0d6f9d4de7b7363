//! Parsing of the VRRP blocks into the model of [`super`].

use super::*;
use crate::diag::Diags;
use crate::script;
use crate::tree::Node;
use crate::value::{self, arg, bool_opt, opt_arg, timer, uint};

/// Instance keywords keepalived has that rvs records nowhere yet.
const INSTANCE_UNSUPPORTED: &[&str] = &[
    "use_vmac_addr",
    "use_ipvlan",
    "unicast_fault_no_peer",
    "old_unicast_checksum",
    "native_ipv6",
    "vrf",
    "track_file",
    "track_process",
    "track_bfd",
    "track_src_ip",
    "no_virtual_ipaddress",
    "promote_secondaries",
    "linkbeat_use_polling",
    "v3_checksum_as_v2",
    "virtual_routes",
    "virtual_rules",
    "debug",
    "notify_priority_changes",
    "timer_expired_backup",
    "thread_timer_expired",
    "garp_extra_if",
    "owner_ignore_adverts",
    "kernel_rx_buf_size",
    "auth_hmac",
];

pub fn parse_instance(d: &mut Diags, n: &Node) -> Option<VrrpInstance> {
    let name = arg(d, n, 1)?.text.clone();
    value::need_block(d, n);
    let mut v = VrrpInstance {
        pos: n.pos().clone(),
        name,
        state: None,
        interface: None,
        virtual_router_id: 0,
        priority: None,
        advert_int: None,
        version: None,
        authentication: None,
        virtual_ipaddress: Vec::new(),
        virtual_ipaddress_excluded: Vec::new(),
        preempt: true,
        preempt_delay: None,
        track_interface: Vec::new(),
        track_script: Vec::new(),
        notify: Notify::default(),
        unicast_src_ip: None,
        unicast_peer: Vec::new(),
        unicast_ttl: None,
        mcast_src_ip: None,
        mcast_dst_ip: None,
        garp: Garp::default(),
        use_vmac: None,
        vmac_xmit_base: false,
        accept: None,
        strict_mode: None,
        dont_track_primary: false,
        down_timer_adverts: None,
        skip_check_adv_addr: None,
        lower_prio_no_advert: None,
        higher_prio_send_advert: None,
        check_unicast_src: false,
        lvs_sync_daemon_interface: None,
    };
    let secs = |d: &mut Diags, c: &Node| uint(d, c, 1, 0, u32::MAX.into()).map(Duration::from_secs);
    let count = |d: &mut Diags, c: &Node| uint(d, c, 1, 0, u32::MAX.into()).map(|x| x as u32);
    let mut vrid_given = false;
    for c in n.children() {
        if notify_keyword(d, c, &mut v.notify, true) {
            continue;
        }
        match c.name() {
            "state" => {
                if let Some(a) = arg(d, c, 1) {
                    v.state = match a.text.as_str() {
                        "MASTER" => Some(VrrpState::Master),
                        "BACKUP" => Some(VrrpState::Backup),
                        other => {
                            d.error(&a.pos, format!("unknown state '{other}' (MASTER or BACKUP)"));
                            None
                        }
                    }
                }
            }
            "interface" => v.interface = value::string(d, c),
            "virtual_router_id" => {
                vrid_given = true;
                v.virtual_router_id = uint(d, c, 1, 1, 255).unwrap_or(0) as u8;
            }
            "priority" => v.priority = uint(d, c, 1, 1, 255).map(|x| x as u8),
            "advert_int" => {
                v.advert_int = timer(d, c, 1, Duration::from_millis(10), Some(Duration::from_secs(255)))
            }
            "version" => v.version = uint(d, c, 1, 2, 3).map(|x| x as u8),
            "authentication" => v.authentication = parse_auth(d, c),
            "virtual_ipaddress" => v.virtual_ipaddress = parse_vips(d, c),
            "virtual_ipaddress_excluded" => v.virtual_ipaddress_excluded = parse_vips(d, c),
            "nopreempt" => v.preempt = false,
            "preempt" => v.preempt = true,
            "preempt_delay" => {
                v.preempt_delay = timer(d, c, 1, Duration::ZERO, Some(Duration::from_secs(1000)))
            }
            "track_interface" => v.track_interface = parse_track_if(d, c),
            "track_script" => v.track_script = parse_track_script(d, c),
            "unicast_src_ip" => v.unicast_src_ip = value::ip(d, c, 1),
            "unicast_peer" => v.unicast_peer = parse_peers(d, c),
            "unicast_ttl" => v.unicast_ttl = uint(d, c, 1, 1, 255).map(|x| x as u8),
            "mcast_src_ip" => v.mcast_src_ip = value::ip(d, c, 1),
            "mcast_dst_ip" => v.mcast_dst_ip = value::ip(d, c, 1),
            "garp_master_delay" => v.garp.master_delay = secs(d, c),
            "garp_master_repeat" => v.garp.master_repeat = count(d, c),
            "garp_master_refresh" => v.garp.master_refresh = secs(d, c),
            "garp_master_refresh_repeat" => v.garp.master_refresh_repeat = count(d, c),
            "garp_lower_prio_delay" => v.garp.lower_prio_delay = secs(d, c),
            "garp_lower_prio_repeat" => v.garp.lower_prio_repeat = count(d, c),
            "use_vmac" => {
                let mut vm = Vmac { name: None, mac: None };
                for t in &c.args {
                    if t.text.contains(':') {
                        vm.mac = Some(t.text.clone());
                    } else {
                        vm.name = Some(t.text.clone());
                    }
                }
                v.use_vmac = Some(vm);
            }
            "vmac_xmit_base" => v.vmac_xmit_base = true,
            "accept" => v.accept = Some(true),
            "no_accept" => v.accept = Some(false),
            "strict_mode" => v.strict_mode = bool_opt(d, c),
            "dont_track_primary" => v.dont_track_primary = true,
            "down_timer_adverts" => v.down_timer_adverts = uint(d, c, 1, 1, 100).map(|x| x as u32),
            "skip_check_adv_addr" => v.skip_check_adv_addr = bool_opt(d, c),
            "lower_prio_no_advert" => v.lower_prio_no_advert = bool_opt(d, c),
            "higher_prio_send_advert" => v.higher_prio_send_advert = bool_opt(d, c),
            "check_unicast_src" => v.check_unicast_src = true,
            "smtp_alert" => crate::lvs::smtp_unsupported(d, c),
            "lvs_sync_daemon_interface" => {
                d.warn_once(
                    "lvs_sync_daemon_interface",
                    c.pos(),
                    "'lvs_sync_daemon_interface' is deprecated - use global_defs lvs_sync_daemon",
                );
                v.lvs_sync_daemon_interface = value::string(d, c);
            }
            "vmac_garp_intvl" => d.warn_once(
                "vmac_garp_intvl",
                c.pos(),
                "'vmac_garp_intvl' is deprecated (use garp_extra_if) and not supported by rvs - ignored",
            ),
            k if INSTANCE_UNSUPPORTED.contains(&k) => d.warn_once(
                k,
                c.pos(),
                format!("'{k}' is not supported by rvs yet - ignored"),
            ),
            other => d.unknown(c.pos(), other),
        }
    }
    if !vrid_given {
        d.error(
            n.pos(),
            format!("vrrp_instance {} has no virtual_router_id (1..255)", v.name),
        );
        return None;
    }
    Some(v)
}

/// The notify keywords shared by instances and sync groups; true if `c` was one.
fn notify_keyword(d: &mut Diags, c: &Node, n: &mut Notify, instance: bool) -> bool {
    let slot = match c.name() {
        "notify_master" => &mut n.master,
        "notify_backup" => &mut n.backup,
        "notify_fault" => &mut n.fault,
        "notify_stop" => &mut n.stop,
        "notify" => &mut n.generic,
        "notify_deleted" if instance => &mut n.deleted,
        "notify_master_rx_lower_pri" if instance => &mut n.master_rx_lower_pri,
        _ => return false,
    };
    *slot = script::parse(d, c, true);
    true
}

fn parse_auth(d: &mut Diags, n: &Node) -> Option<Authentication> {
    let mut auth_type = None;
    let mut pass = Vec::new();
    for c in n.children() {
        match c.name() {
            "auth_type" => {
                let a = arg(d, c, 1)?;
                auth_type = match a.text.as_str() {
                    "PASS" => Some(AuthType::Pass),
                    "AH" => Some(AuthType::Ah),
                    other => {
                        d.error(&a.pos, format!("unknown auth_type '{other}' (PASS or AH)"));
                        return None;
                    }
                }
            }
            "auth_pass" => {
                let a = arg(d, c, 1)?;
                pass = a.text.as_bytes().to_vec();
                if pass.len() > 8 {
                    d.warn(&a.pos, "auth_pass longer than 8 characters - truncated");
                    pass.truncate(8);
                }
            }
            other => d.unknown(c.pos(), other),
        }
    }
    let Some(auth_type) = auth_type else {
        d.error(n.pos(), "authentication without auth_type");
        return None;
    };
    Some(Authentication {
        auth_type,
        auth_pass: pass,
    })
}

fn parse_vips(d: &mut Diags, n: &Node) -> Vec<VirtualIp> {
    let mut out = Vec::new();
    for c in n.children() {
        if let Some(v) = parse_vip(d, c) {
            out.push(v);
        }
    }
    out
}

fn parse_vip(d: &mut Diags, c: &Node) -> Option<VirtualIp> {
    let (addr, prefix) = match c.kw.text.split_once('/') {
        Some((a, p)) => (a, Some(p)),
        None => (c.kw.text.as_str(), None),
    };
    let Ok(ip) = addr.parse::<IpAddr>() else {
        d.error(c.pos(), format!("invalid virtual address '{}'", c.kw.text));
        return None;
    };
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let prefix = match prefix {
        None => max,
        Some(p) => match p.parse::<u8>() {
            Ok(v) if v <= max => v,
            _ => {
                d.error(c.pos(), format!("invalid prefix length in '{}'", c.kw.text));
                return None;
            }
        },
    };
    let mut v = VirtualIp {
        addr: ip,
        prefix,
        broadcast: None,
        dev: None,
        scope: None,
        label: None,
        peer: None,
        no_track: false,
        use_vmac: false,
        flags: Vec::new(),
        preferred_lft: None,
    };
    let mut i = 0;
    while i < c.args.len() {
        let w = &c.args[i];
        let needs_value = matches!(
            w.text.as_str(),
            "dev" | "scope" | "broadcast" | "brd" | "label" | "peer" | "preferred_lft"
        );
        let val = if needs_value {
            match c.args.get(i + 1) {
                Some(t) => Some(t),
                None => {
                    d.error(&w.pos, format!("'{}' needs a value", w.text));
                    return None;
                }
            }
        } else {
            None
        };
        match (w.text.as_str(), val) {
            ("dev", Some(t)) => v.dev = Some(t.text.clone()),
            ("scope", Some(t)) => v.scope = Some(t.text.clone()),
            ("broadcast" | "brd", Some(t)) => {
                if ip.is_ipv6() {
                    d.error(&w.pos, "a broadcast address for an IPv6 address");
                    return None;
                }
                if t.text != "+" && t.text != "-" && t.text.parse::<std::net::Ipv4Addr>().is_err() {
                    d.error(&t.pos, format!("invalid broadcast '{}'", t.text));
                    return None;
                }
                v.broadcast = Some(t.text.clone());
            }
            ("label", Some(t)) => {
                if t.text.len() >= 16 {
                    d.error(
                        &t.pos,
                        format!("address label '{}' longer than 15 characters", t.text),
                    );
                    return None;
                }
                v.label = Some(t.text.clone());
            }
            ("peer", Some(t)) => v.peer = Some(value::ip_tok(d, "peer", t)?),
            ("preferred_lft", Some(t)) => {
                v.preferred_lft = if t.text == "forever" {
                    None
                } else {
                    Some(value::uint_tok(d, "preferred_lft", t, 0, u32::MAX.into())? as u32)
                }
            }
            ("no_track", _) => v.no_track = true,
            ("use_vmac", _) => v.use_vmac = true,
            (f @ ("home" | "-nodad" | "mngtmpaddr" | "noprefixroute" | "autojoin"), _) => {
                v.flags.push(f.to_string())
            }
            (other, _) => {
                d.error(&w.pos, format!("unknown virtual address option '{other}'"));
                return None;
            }
        }
        i += if needs_value { 2 } else { 1 };
    }
    Some(v)
}

fn parse_track_if(d: &mut Diags, n: &Node) -> Vec<TrackInterface> {
    let mut out = Vec::new();
    for c in n.children() {
        let mut t = TrackInterface {
            name: c.kw.text.clone(),
            weight: None,
            reverse: false,
        };
        if let Some(w) = opt_arg(c, 1) {
            if w.text != "weight" {
                d.error(
                    &w.pos,
                    format!("track_interface: unknown option '{}'", w.text),
                );
                continue;
            }
            let Some(v) = c.args.get(1) else {
                d.error(&w.pos, "track_interface: 'weight' needs a value");
                continue;
            };
            t.weight = value::int_tok(d, "weight", v, -253, 253).map(|x| x as i32);
            t.reverse = opt_arg(c, 3).is_some_and(|r| r.text == "reverse");
        }
        out.push(t);
    }
    out
}

fn parse_track_script(d: &mut Diags, n: &Node) -> Vec<TrackScript> {
    let mut out = Vec::new();
    for c in n.children() {
        let mut t = TrackScript {
            name: c.kw.text.clone(),
            weight: None,
            reverse: None,
        };
        let mut i = 0;
        while i < c.args.len() {
            let w = &c.args[i];
            match w.text.as_str() {
                "weight" => {
                    if let Some(v) = c.args.get(i + 1) {
                        t.weight = value::int_tok(d, "weight", v, -253, 253).map(|x| x as i32);
                    } else {
                        d.error(&w.pos, "track_script: 'weight' needs a value");
                    }
                    i += 2;
                    continue;
                }
                "reverse" => t.reverse = Some(true),
                "noreverse" => t.reverse = Some(false),
                other => d.error(&w.pos, format!("track_script: unknown option '{other}'")),
            }
            i += 1;
        }
        out.push(t);
    }
    out
}

fn parse_peers(d: &mut Diags, n: &Node) -> Vec<UnicastPeer> {
    let mut out = Vec::new();
    for c in n.children() {
        let Some(addr) = value::ip_tok(d, "unicast_peer", &c.kw) else {
            continue;
        };
        let mut p = UnicastPeer {
            addr,
            min_ttl: None,
            max_ttl: None,
        };
        let mut i = 0;
        while i < c.args.len() {
            let w = &c.args[i];
            let v = c.args.get(i + 1);
            match (w.text.as_str(), v) {
                ("min_ttl", Some(v)) => {
                    p.min_ttl = value::uint_tok(d, "min_ttl", v, 0, 255).map(|x| x as u8)
                }
                ("max_ttl", Some(v)) => {
                    p.max_ttl = value::uint_tok(d, "max_ttl", v, 0, 255).map(|x| x as u8)
                }
                (other, _) => d.error(&w.pos, format!("unicast_peer: bad option '{other}'")),
            }
            i += 2;
        }
        out.push(p);
    }
    out
}

pub fn parse_script(d: &mut Diags, n: &Node) -> Option<VrrpScript> {
    let name = arg(d, n, 1)?.text.clone();
    value::need_block(d, n);
    let mut script = None;
    let mut s = VrrpScript {
        pos: n.pos().clone(),
        name,
        script: Script {
            args: Vec::new(),
            user: None,
            group: None,
        },
        interval: Duration::from_secs(1),
        timeout: None,
        weight: 0,
        weight_reverse: false,
        rise: 1,
        fall: 1,
        init_fail: false,
    };
    let mut user = None;
    for c in n.children() {
        match c.name() {
            "script" => script = script::parse(d, c, true),
            "interval" => {
                if let Some(v) = timer(d, c, 1, Duration::from_micros(1), None) {
                    s.interval = v;
                }
            }
            "timeout" => s.timeout = timer(d, c, 1, Duration::from_micros(1), None),
            "weight" => {
                if let Some(w) = arg(d, c, 1) {
                    s.weight = value::int_tok(d, "weight", w, -253, 253).unwrap_or(0) as i32;
                }
                match opt_arg(c, 2).map(|t| (t.text.as_str(), &t.pos)) {
                    None => {}
                    Some(("reverse", _)) => s.weight_reverse = true,
                    Some((other, pos)) => d.error(pos, format!("unknown weight option '{other}'")),
                }
            }
            "rise" => s.rise = uint(d, c, 1, 1, u32::MAX.into()).unwrap_or(1) as u32,
            "fall" => s.fall = uint(d, c, 1, 1, u32::MAX.into()).unwrap_or(1) as u32,
            "user" => {
                if let Some(u) = arg(d, c, 1) {
                    user = Some((u.text.clone(), opt_arg(c, 2).map(|g| g.text.clone())));
                }
            }
            "init_fail" => s.init_fail = true,
            other => d.unknown(c.pos(), other),
        }
    }
    let Some(mut sc) = script else {
        d.error(n.pos(), format!("vrrp_script {} has no script", s.name));
        return None;
    };
    if let Some((u, g)) = user {
        sc.user = Some(u);
        sc.group = g;
    }
    s.script = sc;
    Some(s)
}

pub fn parse_sync_group(d: &mut Diags, n: &Node) -> Option<VrrpSyncGroup> {
    let name = arg(d, n, 1)?.text.clone();
    value::need_block(d, n);
    let mut g = VrrpSyncGroup {
        pos: n.pos().clone(),
        name,
        group: Vec::new(),
        track_interface: Vec::new(),
        track_script: Vec::new(),
        notify: Notify::default(),
        sync_group_tracking_weight: false,
        notify_priority_changes: false,
    };
    for c in n.children() {
        if notify_keyword(d, c, &mut g.notify, false) {
            continue;
        }
        match c.name() {
            "group" => g.group = c.block_words().map(|t| t.text.clone()).collect(),
            "track_interface" => g.track_interface = parse_track_if(d, c),
            "track_script" => g.track_script = parse_track_script(d, c),
            "smtp_alert" => crate::lvs::smtp_unsupported(d, c),
            "global_tracking" => {
                d.warn_once(
                    "global_tracking",
                    c.pos(),
                    "'global_tracking' is deprecated - use sync_group_tracking_weight",
                );
                g.sync_group_tracking_weight = true;
            }
            "sync_group_tracking_weight" => g.sync_group_tracking_weight = true,
            "notify_priority_changes" => {
                g.notify_priority_changes = bool_opt(d, c).unwrap_or(false)
            }
            k @ ("track_file" | "track_process" | "track_bfd") => d.warn_once(
                k,
                c.pos(),
                format!("'{k}' is not supported by rvs yet - ignored"),
            ),
            other => d.unknown(c.pos(), other),
        }
    }
    Some(g)
}
