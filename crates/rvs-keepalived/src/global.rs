//! `global_defs` (`core/global_parser.c`): the subset that matters to LVS and VRRP is
//! typed; the other keepalived keywords are recognised and reported once as not supported.

use crate::diag::Diags;
use crate::tree::Node;
use crate::value::{self, arg, bool_opt, opt_arg, timer, uint};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::Duration;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GlobalDefs {
    /// `router_id` (default: the host name).
    pub router_id: Option<String>,
    pub enable_script_security: bool,
    /// `script_user USER [GROUP]`: default account of scripts.
    pub script_user: Option<(String, Option<String>)>,
    pub vrrp: VrrpGlobals,
    pub lvs_sync_daemon: Option<LvsSyncDaemon>,
    /// `lvs_timeouts`: as `ipvsadm --set` (None = unchanged).
    pub lvs_timeouts: Option<LvsTimeouts>,
    /// `lvs_flush`: flush the table at start.
    pub lvs_flush: bool,
    pub lvs_flush_on_stop: FlushOnStop,
    pub checker_log_all_failures: bool,
    /// `rs_init_notifies`: run notify_up for servers that start up.
    pub rs_init_notifies: bool,
}

/// VRRP-wide defaults (each instance may override).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VrrpGlobals {
    /// `vrrp_mcast_group4` (224.0.0.18).
    pub mcast_group4: Option<Ipv4Addr>,
    /// `vrrp_mcast_group6` (ff02::12).
    pub mcast_group6: Option<Ipv6Addr>,
    /// `vrrp_version` 2 or 3 (2).
    pub version: Option<u8>,
    /// `vrrp_garp_master_delay` (5 s; 0 = no second burst).
    pub garp_master_delay: Option<Duration>,
    /// `vrrp_garp_master_repeat` (5).
    pub garp_master_repeat: Option<u32>,
    /// `vrrp_garp_master_refresh` (0 = off).
    pub garp_master_refresh: Option<Duration>,
    /// `vrrp_garp_master_refresh_repeat` (1).
    pub garp_master_refresh_repeat: Option<u32>,
    /// `vrrp_garp_lower_prio_delay` (= master delay).
    pub garp_lower_prio_delay: Option<Duration>,
    /// `vrrp_garp_lower_prio_repeat` (= master repeat).
    pub garp_lower_prio_repeat: Option<u32>,
    /// `vrrp_garp_interval` (0).
    pub garp_interval: Option<Duration>,
    /// `vrrp_gna_interval` (0).
    pub gna_interval: Option<Duration>,
    /// `vrrp_min_garp`: one GARP, no second burst.
    pub min_garp: bool,
    pub lower_prio_no_advert: bool,
    pub higher_prio_send_advert: bool,
    /// `vrrp_strict`: strict RFC mode.
    pub strict: bool,
    pub skip_check_adv_addr: bool,
    pub check_unicast_src: bool,
    /// `vrrp_down_timer_adverts` (3).
    pub down_timer_adverts: Option<u32>,
    /// `default_interface`.
    pub default_interface: Option<String>,
}

/// `lvs_sync_daemon IF VI_NAME [id N] [maxlen N] [port N] [ttl N] [group IP]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LvsSyncDaemon {
    pub interface: String,
    /// The VRRP instance whose state decides master/backup.
    pub instance: Option<String>,
    pub syncid: Option<u8>,
    pub maxlen: Option<u16>,
    pub port: Option<u16>,
    pub ttl: Option<u8>,
    pub group: Option<IpAddr>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LvsTimeouts {
    pub tcp: Option<u32>,
    pub tcpfin: Option<u32>,
    pub udp: Option<u32>,
}

/// `lvs_flush_on_stop`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum FlushOnStop {
    /// Remove only what keepalived added (the default).
    #[default]
    No,
    /// Flush the whole table.
    Full,
    /// Remove the configured virtual servers.
    Vs,
}

/// keepalived `global_defs` keywords rvs recognises and does not act upon.
const UNSUPPORTED: &[&str] = &[
    "linkbeat_use_polling",
    "net_namespace",
    "net_namespace_ipvs",
    "namespace_with_ipsets",
    "use_pid_dir",
    "instance",
    "child_wait_time",
    "process_names",
    "process_name",
    "vrrp_process_name",
    "checker_process_name",
    "lvs_process_name",
    "bfd_process_name",
    "use_symlink_paths",
    "set_supplementary_groups",
    "startup_script",
    "startup_script_timeout",
    "shutdown_script",
    "shutdown_script_timeout",
    "max_auto_priority",
    "min_auto_priority_delay",
    "dynamic_interfaces",
    "no_email_faults",
    "disable_local_igmp",
    "v3_checksum_as_v2",
    "vrrp_garp_extra_if",
    "vrrp_vmac_garp_intvl",
    "vrrp_iptables",
    "vrrp_ipsets",
    "nftables",
    "nftables_priority",
    "nftables_ifindex",
    "vrrp_priority",
    "vrrp_no_swap",
    "vrrp_rt_priority",
    "vrrp_cpu_affinity",
    "vrrp_rlimit_rttime",
    "vrrp_rlimit_rtime",
    "nftables_ipvs",
    "nftables_ipvs_priority",
    "nftables_ipvs_start_fwmark",
    "nftables_counters",
    "notify_fifo",
    "notify_fifo_script",
    "vrrp_notify_fifo",
    "vrrp_notify_fifo_script",
    "vrrp_notify_priority_changes",
    "fifo_write_vrrp_states_on_reload",
    "lvs_notify_fifo",
    "lvs_notify_fifo_script",
    "checker_priority",
    "checker_no_swap",
    "checker_rt_priority",
    "checker_cpu_affinity",
    "checker_rlimit_rttime",
    "checker_rlimit_rtime",
    "bfd_priority",
    "bfd_no_swap",
    "bfd_rt_priority",
    "bfd_cpu_affinity",
    "bfd_rlimit_rttime",
    "bfd_rlimit_rtime",
    "snmp_socket",
    "enable_traps",
    "enable_snmp_vrrp",
    "enable_snmp_keepalived",
    "enable_snmp_rfc",
    "enable_snmp_rfcv2",
    "enable_snmp_rfcv3",
    "enable_snmp_checker",
    "snmp_vs_stats_update_interval",
    "snmp_rs_stats_update_interval",
    "enable_dbus",
    "dbus_service_name",
    "dbus_no_interface_name",
    "vrrp_netlink_cmd_rcv_bufs",
    "vrrp_netlink_cmd_rcv_bufs_force",
    "vrrp_netlink_monitor_rcv_bufs",
    "vrrp_netlink_monitor_rcv_bufs_force",
    "process_monitor_rcv_bufs",
    "process_monitor_rcv_bufs_force",
    "lvs_netlink_cmd_rcv_bufs",
    "lvs_netlink_cmd_rcv_bufs_force",
    "lvs_netlink_monitor_rcv_bufs",
    "lvs_netlink_monitor_rcv_bufs_force",
    "no_checker_emails",
    "vrrp_rx_bufs_policy",
    "vrrp_rx_bufs_multiplier",
    "vrrp_startup_delay",
    "vrrp_delay_after_boot",
    "log_unknown_vrids",
    "vrrp_owner_ignore_adverts",
    "vmac_prefix",
    "vmac_addr_prefix",
    "umask",
    "random_seed",
    "reload_check_config",
    "reload_time_file",
    "reload_repeat",
    "reload_file",
    "include_check",
    "config_save_dir",
    "tmp_config_directory",
    "data_use_instance",
    "json_version",
    "iproute_usr_dir",
    "iproute_etc_dir",
    "state_dump_file",
    "stats_dump_file",
    "json_dump_file",
];

/// E-mail alert keywords (one shared warning).
const SMTP: &[&str] = &[
    "notification_email",
    "notification_email_from",
    "smtp_server",
    "smtp_helo_name",
    "smtp_connect_timeout",
    "smtp_alert",
    "smtp_alert_vrrp",
    "smtp_alert_checker",
];

pub fn parse(d: &mut Diags, n: &Node, g: &mut GlobalDefs) {
    let secs = |d: &mut Diags, c: &Node| uint(d, c, 1, 0, u32::MAX.into()).map(Duration::from_secs);
    let count = |d: &mut Diags, c: &Node| uint(d, c, 1, 0, u32::MAX.into()).map(|v| v as u32);
    for c in n.children() {
        let v = &mut g.vrrp;
        match c.name() {
            "router_id" => g.router_id = value::string(d, c),
            "lvs_id" => {
                d.warn_once("lvs_id", c.pos(), "'lvs_id' is obsolete - use 'router_id'");
                g.router_id = value::string(d, c);
            }
            "enable_script_security" => g.enable_script_security = true,
            "script_user" => {
                if let Some(u) = arg(d, c, 1) {
                    g.script_user = Some((u.text.clone(), opt_arg(c, 2).map(|t| t.text.clone())));
                }
            }
            "vrrp_mcast_group4" => {
                if let Some(a) = arg(d, c, 1) {
                    match a.text.parse::<Ipv4Addr>() {
                        Ok(ip) if ip.is_multicast() => v.mcast_group4 = Some(ip),
                        _ => d.error(&a.pos, format!("invalid vrrp_mcast_group4 '{}'", a.text)),
                    }
                }
            }
            "vrrp_mcast_group6" => {
                if let Some(a) = arg(d, c, 1) {
                    match a.text.parse::<Ipv6Addr>() {
                        Ok(ip) if ip.is_multicast() => v.mcast_group6 = Some(ip),
                        _ => d.error(&a.pos, format!("invalid vrrp_mcast_group6 '{}'", a.text)),
                    }
                }
            }
            "vrrp_version" => v.version = uint(d, c, 1, 2, 3).map(|x| x as u8),
            "vrrp_garp_master_delay" => v.garp_master_delay = secs(d, c),
            "vrrp_garp_master_repeat" => v.garp_master_repeat = count(d, c),
            "vrrp_garp_master_refresh" => v.garp_master_refresh = secs(d, c),
            "vrrp_garp_master_refresh_repeat" => v.garp_master_refresh_repeat = count(d, c),
            "vrrp_garp_lower_prio_delay" => v.garp_lower_prio_delay = secs(d, c),
            "vrrp_garp_lower_prio_repeat" => v.garp_lower_prio_repeat = count(d, c),
            "vrrp_garp_interval" => v.garp_interval = timer(d, c, 1, Duration::ZERO, None),
            "vrrp_gna_interval" => v.gna_interval = timer(d, c, 1, Duration::ZERO, None),
            "vrrp_min_garp" => v.min_garp = bool_opt(d, c).unwrap_or(false),
            "vrrp_lower_prio_no_advert" => v.lower_prio_no_advert = bool_opt(d, c).unwrap_or(false),
            "vrrp_higher_prio_send_advert" => {
                v.higher_prio_send_advert = bool_opt(d, c).unwrap_or(false)
            }
            "vrrp_strict" => v.strict = true,
            "vrrp_skip_check_adv_addr" => v.skip_check_adv_addr = bool_opt(d, c).unwrap_or(false),
            "vrrp_check_unicast_src" => v.check_unicast_src = true,
            "vrrp_down_timer_adverts" => {
                v.down_timer_adverts = uint(d, c, 1, 1, 100).map(|x| x as u32)
            }
            "default_interface" => v.default_interface = value::string(d, c),
            "lvs_sync_daemon" => g.lvs_sync_daemon = parse_sync_daemon(d, c),
            "lvs_timeouts" => g.lvs_timeouts = parse_timeouts(d, c),
            "lvs_flush" => g.lvs_flush = true,
            "lvs_flush_on_stop" | "lvs_flush_onstop" => {
                g.lvs_flush_on_stop = match opt_arg(c, 1).map(|t| t.text.as_str()) {
                    None => FlushOnStop::Full,
                    Some("VS") => FlushOnStop::Vs,
                    Some(_) => {
                        d.error(&c.args[0].pos, "lvs_flush_on_stop takes no value or VS");
                        FlushOnStop::No
                    }
                }
            }
            "checker_log_all_failures" => {
                g.checker_log_all_failures = bool_opt(d, c).unwrap_or(false)
            }
            "rs_init_notifies" => g.rs_init_notifies = true,
            k if SMTP.contains(&k) => d.warn_once(
                "smtp_alert",
                c.pos(),
                format!("'{k}': e-mail alerts are not supported by rvs yet - ignored"),
            ),
            k if UNSUPPORTED.contains(&k) => d.warn_once(
                k,
                c.pos(),
                format!("'{k}' is not supported by rvs - ignored"),
            ),
            other => d.unknown(c.pos(), other),
        }
    }
}

fn parse_sync_daemon(d: &mut Diags, c: &Node) -> Option<LvsSyncDaemon> {
    let interface = arg(d, c, 1)?.text.clone();
    let mut s = LvsSyncDaemon {
        interface,
        instance: None,
        syncid: None,
        maxlen: None,
        port: None,
        ttl: None,
        group: None,
    };
    let mut i = 1;
    let words = &c.args;
    if let Some(t) = words.get(1) {
        if !matches!(t.text.as_str(), "id" | "maxlen" | "port" | "ttl" | "group") {
            s.instance = Some(t.text.clone());
            i = 2;
        }
    }
    while i < words.len() {
        let k = &words[i];
        let Some(v) = words.get(i + 1) else {
            d.error(
                &k.pos,
                format!("lvs_sync_daemon: '{}' needs a value", k.text),
            );
            return None;
        };
        match k.text.as_str() {
            "id" => s.syncid = Some(value::uint_tok(d, "sync id", v, 0, 255)? as u8),
            "maxlen" => s.maxlen = Some(value::uint_tok(d, "maxlen", v, 1, 65535 - 20 - 8)? as u16),
            "port" => s.port = Some(value::uint_tok(d, "port", v, 1, 65535)? as u16),
            "ttl" => s.ttl = Some(value::uint_tok(d, "ttl", v, 1, 255)? as u8),
            "group" => s.group = Some(value::ip_tok(d, "group", v)?),
            other => {
                d.error(&k.pos, format!("lvs_sync_daemon: unknown option '{other}'"));
                return None;
            }
        }
        i += 2;
    }
    Some(s)
}

fn parse_timeouts(d: &mut Diags, c: &Node) -> Option<LvsTimeouts> {
    let mut t = LvsTimeouts::default();
    let mut i = 0;
    while i < c.args.len() {
        let k = &c.args[i];
        let Some(v) = c.args.get(i + 1) else {
            d.error(&k.pos, format!("lvs_timeouts: '{}' needs a value", k.text));
            return None;
        };
        let secs = value::uint_tok(d, "timeout", v, 0, 86400 * 31)? as u32;
        match k.text.as_str() {
            "tcp" => t.tcp = Some(secs),
            "tcpfin" => t.tcpfin = Some(secs),
            "udp" => t.udp = Some(secs),
            other => {
                d.error(
                    &k.pos,
                    format!("lvs_timeouts: unknown protocol '{other}' (tcp, tcpfin, udp)"),
                );
                return None;
            }
        }
        i += 2;
    }
    Some(t)
}
