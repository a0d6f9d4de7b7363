//! From the `vrrp_instance`, `vrrp_sync_group` and `vrrp_script` blocks of a
//! keepalived.conf ([`rvs_keepalived::Config`]) to what the engine and the network side
//! run, resolving keepalived's defaults (instance value, else `global_defs`, else the
//! built-in default). What rvs cannot do is reported as a warning and left out.

use crate::config::{GarpTiming, InstanceConfig, Track, TrackTarget, Vip};
use crate::engine::GroupConfig;
use crate::packet::{self, Family, Version};
use crate::timers;
use crate::track::ScriptConfig;
use rvs_keepalived::vrrp::{AuthType, Notify, VrrpInstance, VrrpScript, VrrpSyncGroup};
use rvs_keepalived::{Config, Script};
use std::net::IpAddr;
use std::time::Duration;

/// `unicast_peer` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub addr: IpAddr,
}

/// One instance: protocol parameters plus where and how it talks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstanceSetup {
    pub vrrp: InstanceConfig,
    /// `interface`.
    pub interface: String,
    /// `unicast_src_ip` / `mcast_src_ip`: the source of adverts (default: the interface's
    /// primary address, or its link-local address for IPv6).
    pub src_ip: Option<IpAddr>,
    /// `unicast_peer`: adverts go to each, unicast.
    pub peers: Vec<Peer>,
    /// `unicast_ttl` (255).
    pub unicast_ttl: u8,
    /// `mcast_dst_ip`, else the global group.
    pub dst: IpAddr,
    /// `vrrp_check_unicast_src` / `check_unicast_src`.
    pub check_unicast_src: bool,
    pub notify: Notify,
}

impl InstanceSetup {
    /// What identifies the virtual router on the wire and its socket: changing any of
    /// these on reload replaces the instance instead of reconfiguring it.
    pub fn identity(&self) -> (String, u8, Family, Version, bool) {
        (
            self.interface.clone(),
            self.vrrp.vrid,
            self.vrrp.family,
            self.vrrp.version,
            self.vrrp.unicast,
        )
    }
}

/// A `vrrp_script` to run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptSetup {
    pub hysteresis: ScriptConfig,
    pub script: Script,
    pub interval: Duration,
    /// keepalived: `timeout`, else the interval.
    pub timeout: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupSetup {
    pub group: GroupConfig,
    pub notify: Notify,
}

/// Everything VRRP of a configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouterConfig {
    pub instances: Vec<InstanceSetup>,
    pub groups: Vec<GroupSetup>,
    pub scripts: Vec<ScriptSetup>,
    /// `script_user USER [GROUP]`.
    pub script_user: Option<(String, Option<String>)>,
}

impl RouterConfig {
    pub fn is_empty(&self) -> bool {
        self.instances.is_empty()
    }
}

/// Maps the VRRP part of `cfg`; the second value lists what was left out and why.
pub fn router_config(cfg: &Config) -> (RouterConfig, Vec<String>) {
    let mut warnings = Vec::new();
    let mut instances = Vec::new();
    for vi in &cfg.vrrp_instances {
        let group = cfg
            .vrrp_sync_groups
            .iter()
            .find(|g| g.group.contains(&vi.name));
        match instance(cfg, vi, group, &mut warnings) {
            Ok(i) => instances.push(i),
            Err(e) => warnings.push(format!("vrrp_instance {}: {e} - instance not run", vi.name)),
        }
    }
    let groups = cfg
        .vrrp_sync_groups
        .iter()
        .map(|g| GroupSetup {
            group: GroupConfig {
                name: g.name.clone(),
                members: g.group.clone(),
            },
            notify: g.notify.clone(),
        })
        .collect();
    let scripts = cfg.vrrp_scripts.iter().map(script).collect();
    (
        RouterConfig {
            instances,
            groups,
            scripts,
            script_user: cfg.global.script_user.clone(),
        },
        warnings,
    )
}

fn script(s: &VrrpScript) -> ScriptSetup {
    ScriptSetup {
        hysteresis: ScriptConfig {
            name: s.name.clone(),
            rise: s.rise.max(1),
            fall: s.fall.max(1),
            init_fail: s.init_fail,
        },
        script: s.script.clone(),
        interval: s.interval,
        timeout: s.timeout.unwrap_or(s.interval),
    }
}

fn instance(
    cfg: &Config,
    vi: &VrrpInstance,
    group: Option<&VrrpSyncGroup>,
    warn: &mut Vec<String>,
) -> Result<InstanceSetup, String> {
    let g = &cfg.global.vrrp;
    let interface = vi
        .interface
        .clone()
        .or_else(|| g.default_interface.clone())
        .ok_or("no interface")?;
    let version = match vi.effective_version(g.version) {
        3 => Version::V3,
        _ => Version::V2,
    };
    let family = vi
        .virtual_ipaddress
        .first()
        .map(|v| Family::of(&v.addr))
        .or_else(|| vi.unicast_peer.first().map(|p| Family::of(&p.addr)))
        .unwrap_or(Family::V4);
    let vips = |list: &[rvs_keepalived::vrrp::VirtualIp], what: &str, warn: &mut Vec<String>| {
        let mut out = Vec::new();
        for v in list {
            if Family::of(&v.addr) != family {
                warn.push(format!(
                    "vrrp_instance {}: {what} {} is not of the instance's address family - ignored",
                    vi.name, v.addr
                ));
                continue;
            }
            if v.use_vmac {
                warn.push(format!(
                    "vrrp_instance {}: use_vmac on {} is not supported - the interface MAC is used",
                    vi.name, v.addr
                ));
            }
            out.push(Vip {
                addr: v.addr,
                prefix: v.prefix,
                dev: v.dev.clone(),
                label: v.label.clone(),
            });
        }
        out
    };
    let advertised = vips(&vi.virtual_ipaddress, "virtual_ipaddress", warn);
    let excluded = vips(
        &vi.virtual_ipaddress_excluded,
        "virtual_ipaddress_excluded",
        warn,
    );
    if advertised.len() > 255 {
        return Err("more than 255 virtual addresses".into());
    }
    if vi.use_vmac.is_some() {
        warn.push(format!(
            "vrrp_instance {}: use_vmac is not supported - adverts and ARP use the interface MAC",
            vi.name
        ));
    }
    let auth_pass = match (&vi.authentication, version) {
        (Some(a), Version::V2) if a.auth_type == AuthType::Pass => {
            Some(packet::pass_data(&a.auth_pass))
        }
        (Some(a), Version::V2) => {
            warn.push(format!(
                "vrrp_instance {}: auth_type {:?} (IPsec AH) is not supported - sending no authentication",
                vi.name, a.auth_type
            ));
            None
        }
        (Some(_), Version::V3) => {
            warn.push(format!(
                "vrrp_instance {}: authentication is not part of VRRPv3 - ignored",
                vi.name
            ));
            None
        }
        (None, _) => None,
    };
    let mut track = Vec::new();
    if !vi.dont_track_primary {
        track.push(Track {
            target: TrackTarget::Interface(interface.clone()),
            weight: 0,
            reverse: false,
        });
    }
    let weights_ok = group.is_none_or(|g| g.sync_group_tracking_weight);
    let mut add_tracks = |ifs: &[rvs_keepalived::vrrp::TrackInterface],
                          scs: &[rvs_keepalived::vrrp::TrackScript],
                          warn: &mut Vec<String>| {
        for t in ifs {
            push_track(
                &mut track,
                TrackTarget::Interface(t.name.clone()),
                t.weight.unwrap_or(0),
                t.reverse,
                weights_ok,
                &vi.name,
                warn,
            );
        }
        for t in scs {
            let Some(def) = cfg.vrrp_scripts.iter().find(|s| s.name == t.name) else {
                warn.push(format!(
                    "vrrp_instance {}: track_script {} has no vrrp_script - ignored",
                    vi.name, t.name
                ));
                continue;
            };
            push_track(
                &mut track,
                TrackTarget::Script(t.name.clone()),
                t.weight.unwrap_or(def.weight),
                t.reverse.unwrap_or(def.weight_reverse),
                weights_ok,
                &vi.name,
                warn,
            );
        }
    };
    add_tracks(&vi.track_interface, &vi.track_script, warn);
    if let Some(g) = group {
        add_tracks(&g.track_interface, &g.track_script, warn);
    }
    let advert_int = timers::round_interval(version, vi.effective_advert_int());
    let garp = garp(vi, cfg);
    let pick = |inst: Option<bool>, global: bool| inst.unwrap_or(global);
    let vrrp = InstanceConfig {
        name: vi.name.clone(),
        vrid: vi.virtual_router_id,
        version,
        family,
        priority: vi.effective_priority(),
        advert_int,
        wants_master: vi.initial_state() == rvs_keepalived::vrrp::VrrpState::Master,
        preempt: vi.preempt,
        preempt_delay: vi.preempt_delay.unwrap_or_default(),
        down_timer_adverts: vi.down_timer_adverts.or(g.down_timer_adverts).unwrap_or(3),
        vips: advertised,
        excluded_vips: excluded,
        auth_pass,
        garp,
        lower_prio_no_advert: pick(vi.lower_prio_no_advert, g.lower_prio_no_advert),
        higher_prio_send_advert: pick(vi.higher_prio_send_advert, g.higher_prio_send_advert),
        skip_check_adv_addr: pick(vi.skip_check_adv_addr, g.skip_check_adv_addr),
        unicast: !vi.unicast_peer.is_empty(),
        track,
    };
    let dst = vi.mcast_dst_ip.unwrap_or(match family {
        Family::V4 => IpAddr::V4(g.mcast_group4.unwrap_or(packet::MCAST_V4)),
        Family::V6 => IpAddr::V6(g.mcast_group6.unwrap_or(packet::MCAST_V6)),
    });
    Ok(InstanceSetup {
        vrrp,
        interface,
        src_ip: vi.unicast_src_ip.or(vi.mcast_src_ip),
        peers: vi
            .unicast_peer
            .iter()
            .map(|p| Peer { addr: p.addr })
            .collect(),
        unicast_ttl: vi.unicast_ttl.unwrap_or(packet::TTL),
        dst,
        check_unicast_src: vi.check_unicast_src || g.check_unicast_src,
        notify: vi.notify.clone(),
    })
}

fn push_track(
    track: &mut Vec<Track>,
    target: TrackTarget,
    weight: i32,
    reverse: bool,
    weights_ok: bool,
    name: &str,
    warn: &mut Vec<String>,
) {
    if weight != 0 && !weights_ok {
        warn.push(format!(
            "vrrp_instance {name}: weighted tracking of {target:?} ignored in a sync group \
             (set sync_group_tracking_weight)"
        ));
        return;
    }
    track.push(Track {
        target,
        weight,
        reverse,
    });
}

/// GARP timing: instance value, else global, else keepalived's default;
/// `vrrp_min_garp` means one packet and no second burst.
fn garp(vi: &VrrpInstance, cfg: &Config) -> GarpTiming {
    let g = &cfg.global.vrrp;
    let d = GarpTiming::default();
    let (def_delay, def_repeat) = if g.min_garp {
        (Duration::ZERO, 1)
    } else {
        (d.master_delay, d.master_repeat)
    };
    let master_delay = vi
        .garp
        .master_delay
        .or(g.garp_master_delay)
        .unwrap_or(def_delay);
    let master_repeat = vi
        .garp
        .master_repeat
        .or(g.garp_master_repeat)
        .unwrap_or(def_repeat);
    GarpTiming {
        master_delay,
        master_repeat,
        refresh: vi
            .garp
            .master_refresh
            .or(g.garp_master_refresh)
            .unwrap_or_default(),
        refresh_repeat: vi
            .garp
            .master_refresh_repeat
            .or(g.garp_master_refresh_repeat)
            .unwrap_or(1),
        lower_prio_delay: vi
            .garp
            .lower_prio_delay
            .or(g.garp_lower_prio_delay)
            .unwrap_or(master_delay),
        lower_prio_repeat: vi
            .garp
            .lower_prio_repeat
            .or(g.garp_lower_prio_repeat)
            .unwrap_or(master_repeat),
        interval: match vi.virtual_ipaddress.first().map(|v| v.addr) {
            Some(IpAddr::V6(_)) => g.gna_interval.unwrap_or_default(),
            _ => g.garp_interval.unwrap_or_default(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn parse(text: &str) -> (RouterConfig, Vec<String>) {
        let cfg = rvs_keepalived::parse_str(Path::new("/tmp/k.conf"), text).unwrap();
        router_config(&cfg)
    }

    #[test]
    fn seed_000_master_block_maps_to_keepalived_defaults() {
        let text = std::fs::read_to_string(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../testdata/keepalived/seed000_master.conf"),
        )
        .unwrap();
        let (rc, warnings) = parse(&text);
        assert!(warnings.is_empty(), "{warnings:?}");
        let i = &rc.instances[0];
        assert_eq!(i.interface, "lo");
        let v = &i.vrrp;
        assert_eq!((v.vrid, v.priority, v.version), (51, 100, Version::V2));
        assert!(v.wants_master, "state MASTER");
        assert_eq!(v.advert_int, Duration::from_secs(1));
        assert_eq!(v.auth_pass, Some(*b"1111\0\0\0\0"));
        assert_eq!(v.vips[0].addr, "127.0.0.38".parse::<IpAddr>().unwrap());
        assert_eq!(v.vips[0].prefix, 32);
        assert_eq!(v.garp, GarpTiming::default());
        assert_eq!(i.dst, IpAddr::V4(packet::MCAST_V4));
        // The own interface is tracked, unweighted.
        assert_eq!(v.track[0].target, TrackTarget::Interface("lo".into()));
    }

    #[test]
    fn globals_scripts_groups_and_v3_are_resolved() {
        let (rc, warnings) = parse(
            "global_defs {\n vrrp_version 3\n vrrp_garp_master_repeat 2\n vrrp_garp_master_delay 0\n}\n\
             vrrp_script chk {\n script \"/bin/true\"\n interval 2\n weight -20\n fall 3\n}\n\
             vrrp_sync_group G {\n group {\n VI_1\n }\n}\n\
             vrrp_instance VI_1 {\n interface eth0\n virtual_router_id 7\n priority 90\n advert_int 0.25\n\
             nopreempt\n authentication {\n auth_type PASS\n auth_pass secret\n }\n\
             track_script {\n chk\n }\n virtual_ipaddress {\n 10.0.0.100/24 dev eth1\n }\n}\n",
        );
        let v = &rc.instances[0].vrrp;
        assert_eq!(v.version, Version::V3);
        assert_eq!(v.advert_int, Duration::from_millis(250));
        assert_eq!(v.auth_pass, None);
        assert!(!v.preempt && !v.wants_master);
        assert_eq!(
            (v.garp.master_repeat, v.garp.master_delay),
            (2, Duration::ZERO)
        );
        assert_eq!(v.garp.lower_prio_repeat, 2);
        assert_eq!(v.vips[0].dev.as_deref(), Some("eth1"));
        assert_eq!(v.vips[0].prefix, 24);
        // In a sync group without sync_group_tracking_weight the weighted script is
        // ignored, with a warning (and v3 drops the authentication).
        assert_eq!(v.track.len(), 1);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert_eq!(rc.groups[0].group.members, vec!["VI_1".to_string()]);
        assert_eq!(rc.scripts[0].hysteresis.fall, 3);
        assert_eq!(rc.scripts[0].timeout, Duration::from_secs(2));
    }

    #[test]
    fn ipv6_instances_are_v3_and_track_script_weights_apply_outside_groups() {
        let (rc, _) = parse(
            "vrrp_script chk {\n script \"/bin/true\"\n weight 10\n}\n\
             vrrp_instance V6 {\n interface eth0\n virtual_router_id 8\n\
             track_script {\n chk weight -5 reverse\n }\n\
             virtual_ipaddress {\n fe80::1/64\n 2001:db8::1\n }\n}\n",
        );
        let v = &rc.instances[0].vrrp;
        assert_eq!((v.version, v.family), (Version::V3, Family::V6));
        assert_eq!(rc.instances[0].dst, IpAddr::V6(packet::MCAST_V6));
        let t = &v.track[1];
        assert_eq!((t.weight, t.reverse), (-5, true));
    }
}
