//! Defaults, aliases, warnings and errors of the parser, each pinned by name.

use rvs_core::{Forward, Netmask, Protocol, ServiceKey, TunnelType};
use rvs_keepalived::{
    parse_str, parse_str_with, to_table_ops, CheckerKind, Config, HttpProtocol, LoadError,
    LoadOptions, Severity,
};
use std::path::Path;
use std::time::Duration;

fn load(text: &str) -> Config {
    match parse_str(Path::new("k.conf"), text) {
        Ok(c) => c,
        Err(e) => panic!("load failed:\n{e}"),
    }
}

fn error(text: &str) -> String {
    match parse_str(Path::new("k.conf"), text) {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.first_error().expect("an error").to_string(),
    }
}

fn warnings(c: &Config) -> Vec<String> {
    c.diagnostics.iter().map(|d| d.to_string()).collect()
}

fn vs(body: &str) -> Config {
    load(&format!(
        "virtual_server 10.0.0.1 80 {{\n{body}\n real_server 10.0.0.2 80 {{\n TCP_CHECK {{\n }}\n }}\n}}\n"
    ))
}

#[test]
fn lb_kind_defaults_to_nat_with_a_warning() {
    let c = vs("protocol TCP\nlb_algo rr");
    let d = to_table_ops(&c);
    assert_eq!(d.vss[0].dests[0][0].forward, Forward::Masq);
    assert!(warnings(&c).iter().any(|w| w.contains("using NAT")));
}

#[test]
fn lb_kind_and_lvs_method_map_to_forwarding() {
    for (word, fwd) in [
        ("lb_kind DR", Forward::Route),
        ("lvs_method DR", Forward::Route),
        ("lb_kind NAT", Forward::Masq),
        ("lb_kind TUN", Forward::Tunnel),
    ] {
        let c = vs(&format!("protocol TCP\nlb_algo rr\n{word}"));
        assert_eq!(to_table_ops(&c).vss[0].dests[0][0].forward, fwd, "{word}");
    }
    let c = vs("protocol TCP\nlb_algo rr\nlvs_method TUN type gue port 6080 remcsum");
    let dst = &to_table_ops(&c).vss[0].dests[0][0];
    assert_eq!(dst.tunnel.kind, TunnelType::Gue);
    assert_eq!(dst.tunnel.port, 6080);
    assert!(
        error("virtual_server 10.0.0.1 80 {\nlb_kind TUN type gue\n}\n")
            .contains("gue tunnels require a port")
    );
}

#[test]
fn lb_algo_and_lvs_sched_are_aliases_default_wlc() {
    let a = vs("protocol TCP\nlb_kind DR\nlb_algo sh");
    let b = vs("protocol TCP\nlb_kind DR\nlvs_sched sh");
    assert_eq!(to_table_ops(&a).vss[0].services[0].scheduler, "sh");
    assert_eq!(to_table_ops(&a), to_table_ops(&b));
    let c = vs("protocol TCP\nlb_kind DR");
    assert_eq!(to_table_ops(&c).vss[0].services[0].scheduler, "wlc");
}

#[test]
fn persistence_timeout_alone_is_360_and_zero_is_not_persistent() {
    let c = vs("protocol TCP\nlb_kind DR\npersistence_timeout");
    assert_eq!(to_table_ops(&c).vss[0].services[0].persistence, Some(360));
    let c = vs("protocol TCP\nlb_kind DR\npersistence_timeout 0");
    assert_eq!(to_table_ops(&c).vss[0].services[0].persistence, None);
    let c =
        vs("protocol TCP\nlb_kind DR\npersistence_timeout 50\npersistence_granularity 255.255.0.0");
    let s = &to_table_ops(&c).vss[0].services[0];
    assert_eq!((s.persistence, s.netmask), (Some(50), Netmask(16)));
    // A granularity alone makes the service persistent, as keepalived does.
    let c = vs("protocol TCP\nlb_kind DR\npersistence_granularity 255.255.255.0");
    assert_eq!(to_table_ops(&c).vss[0].services[0].persistence, Some(360));
}

#[test]
fn missing_protocol_is_udp_with_a_warning() {
    let c = vs("lb_kind DR\nlb_algo rr");
    let key = to_table_ops(&c).vss[0].services[0].key;
    assert_eq!(key.protocol(), Some(Protocol::Udp));
    assert!(warnings(&c).contains(
        &"k.conf:1: warning: no protocol set - defaulting to UDP (as keepalived does)".to_string()
    ));
}

#[test]
fn nb_get_retry_is_retry_and_warned_once() {
    let c = load(
        "virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_kind DR\nlb_algo rr\n\
         real_server 10.0.0.2 80 {\nTCP_CHECK {\nnb_get_retry 3\n}\n}\n\
         real_server 10.0.0.3 80 {\nHTTP_GET {\nnb_get_retry 5\nurl {\npath /\n}\n}\n}\n}\n",
    );
    let v = &c.virtual_servers[0];
    let t0 = v.timing(&v.real_servers[0], &v.real_servers[0].checkers[0]);
    let t1 = v.timing(&v.real_servers[1], &v.real_servers[1].checkers[0]);
    assert_eq!((t0.retry, t1.retry), (3, 5));
    let w = warnings(&c);
    assert_eq!(
        w,
        ["k.conf:7: warning: 'nb_get_retry' is deprecated - use 'retry'"]
    );
}

#[test]
fn checker_defaults_follow_keepalived() {
    let c = load(
        "virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_kind DR\nlb_algo rr\ndelay_loop 7\n\
         real_server 10.0.0.2 80 {\nTCP_CHECK {\n}\nHTTP_GET {\nurl {\npath /\n}\n}\n\
         MISC_CHECK {\nmisc_path /bin/true\n}\nDNS_CHECK {\n}\n}\n}\n",
    );
    let v = &c.virtual_servers[0];
    let rs = &v.real_servers[0];
    let t: Vec<_> = rs.checkers.iter().map(|ck| v.timing(rs, ck)).collect();
    let s = Duration::from_secs;
    // retry: TCP 1, HTTP 1, MISC 0, DNS 3; delay_before_retry: 1 s, 3 s, 1 s, delay_loop.
    assert_eq!(t.iter().map(|t| t.retry).collect::<Vec<_>>(), [1, 1, 0, 3]);
    assert_eq!(
        t.iter().map(|t| t.delay_before_retry).collect::<Vec<_>>(),
        [s(1), s(3), s(1), s(7)]
    );
    // warmup defaults to delay_loop; connect_timeout to 5 s; alpha off.
    assert!(t
        .iter()
        .all(|t| t.warmup == s(7) && t.connect_timeout == s(5) && !t.alpha));
    match &rs.checkers[1].kind {
        CheckerKind::Http(h) => {
            assert_eq!(h.urls[0].status_codes, [(200, 299)]);
            assert_eq!(h.http_protocol, HttpProtocol::Http10);
        }
        k => panic!("{k:?}"),
    }
    match &rs.checkers[3].kind {
        CheckerKind::Dns(d) => assert_eq!((d.qtype, d.name.as_str()), (6, "")),
        k => panic!("{k:?}"),
    }
    match &rs.checkers[2].kind {
        CheckerKind::Misc(m) => assert_eq!((m.timeout, m.dynamic), (None, false)),
        k => panic!("{k:?}"),
    }
}

#[test]
fn timers_inherit_checker_then_real_server_then_virtual_server() {
    let c = load(
        "virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_kind DR\nlb_algo rr\ndelay_loop 9\n\
         retry 4\nconnect_timeout 2\nalpha\n\
         real_server 10.0.0.2 80 {\ndelay_loop 0.5\ndelay_before_retry 0.25\n\
         TCP_CHECK {\nretry 1\n}\n}\n}\n",
    );
    let v = &c.virtual_servers[0];
    let t = v.timing(&v.real_servers[0], &v.real_servers[0].checkers[0]);
    assert_eq!(t.delay_loop, Duration::from_millis(500));
    assert_eq!(t.delay_before_retry, Duration::from_millis(250));
    assert_eq!(t.retry, 1);
    assert_eq!(t.connect_timeout, Duration::from_secs(2));
    assert_eq!(t.warmup, Duration::from_millis(500));
    assert!(t.alpha);
}

#[test]
fn non_nat_real_server_ports_follow_the_service() {
    let c = load(
        "virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_kind DR\nlb_algo rr\n\
         real_server 10.0.0.2 {\n}\nreal_server 10.0.0.3 8080 {\n}\n\
         real_server 10.0.0.4 8080 {\nlvs_method NAT\n}\n}\n",
    );
    let d = &to_table_ops(&c).vss[0].dests[0];
    assert_eq!(d.iter().map(|d| d.port).collect::<Vec<_>>(), [80, 80, 8080]);
    assert!(warnings(&c)
        .iter()
        .any(|w| w.starts_with("k.conf:7: warning: real server port 8080 differs")));
}

#[test]
fn quorum_above_total_weight_is_reduced() {
    let c = vs("protocol TCP\nlb_kind DR\nlb_algo rr\nquorum 10\nhysteresis 5");
    assert_eq!(
        (c.virtual_servers[0].quorum, c.virtual_servers[0].hysteresis),
        (1, 0)
    );
}

#[test]
fn obsolete_and_unsupported_keywords_warn_once_and_load() {
    let c = load(
        "global_defs {\nnotification_email {\na@b\n}\nsmtp_server 127.0.0.1\nenable_dbus\n}\n\
         virtual_server 10.0.0.1 80 {\nnat_mask 255.255.255.0\nprotocol TCP\nlb_kind DR\nlb_algo rr\n\
         real_server 10.0.0.2 80 {\nSMTP_CHECK {\n}\n}\n}\n\
         virtual_server 10.0.0.1 81 {\nnat_mask 255.255.255.0\nprotocol TCP\nlb_kind DR\nlb_algo rr\n\
         real_server 10.0.0.2 81 {\n}\n}\n",
    );
    assert_eq!(
        warnings(&c),
        [
            "k.conf:2: warning: 'notification_email': e-mail alerts are not supported by rvs yet - ignored",
            "k.conf:6: warning: 'enable_dbus' is not supported by rvs - ignored",
            "k.conf:9: warning: 'nat_mask' is obsolete (keepalived no longer has it) - ignored",
            "k.conf:14: warning: SMTP_CHECK is not supported by rvs yet - the checker is ignored",
        ]
    );
    assert!(!c.has_unknown_keywords());
}

#[test]
fn unknown_keyword_is_reported_skipped_and_marks_the_config() {
    let c = vs("protocol TCP\nlb_kind DR\nlb_algo rr\nfrobnicate 3 {\n weight 9\n}");
    assert!(c.has_unknown_keywords());
    let u: Vec<_> = c
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Unknown)
        .collect();
    assert_eq!(u.len(), 1);
    assert_eq!(u[0].pos.line, 5);
}

#[test]
fn value_errors_name_file_line_column_and_refuse_everything() {
    assert_eq!(
        error("virtual_server 10.0.0.1 80 {\n  delay_loop -1\n}\n"),
        "k.conf:2:14: error: invalid delay_loop '-1' (expected seconds, at least 0.000001 s)"
    );
    assert_eq!(
        error("virtual_server 10.0.0.1 80 {\n  protocol TCP\n  real_server 10.0.0.2 80 {\n    weight\n  }\n}\n"),
        "k.conf:4:5: error: 'weight' needs a value"
    );
    let e = parse_str(Path::new("k.conf"), "virtual_server 10.0.0.1 99999 {\n}\n").unwrap_err();
    assert!(matches!(e, LoadError::Invalid(_)));
    assert_eq!(
        e.first_error().unwrap().to_string(),
        "k.conf:1:25: error: invalid virtual_server port '99999' (expected an integer 0..65535)"
    );
}

#[test]
fn fwmark_and_group_services() {
    let c = load(
        "virtual_server_group G {\n10.0.0.1-2 80\nfwmark 5\n}\n\
         virtual_server group G {\nprotocol TCP\nlb_kind NAT\nlb_algo rr\nreal_server 10.0.0.9 8080 {\n}\n}\n\
         virtual_server fwmark 7 {\nlb_kind DR\nlb_algo rr\nreal_server 10.0.0.9 {\n}\n}\n",
    );
    let d = to_table_ops(&c);
    let keys: Vec<String> = d.services().map(|(s, _)| s.key.to_string()).collect();
    assert_eq!(
        keys,
        ["TCP 10.0.0.1:80", "TCP 10.0.0.2:80", "FWM 5", "FWM 7"]
    );
    assert_eq!(
        d.vss[1].services[0].key,
        ServiceKey::Fwmark {
            mark: 7,
            family: rvs_core::Family::V4
        }
    );
}

#[test]
fn conditional_lines_follow_the_config_id() {
    let text = "@a virtual_server 10.0.0.1 80 {\n@a protocol TCP\n@a lb_kind DR\n@a real_server 10.0.0.2 80 {\n@a }\n@a }\n";
    let opts = LoadOptions {
        config_id: Some("a".into()),
        instance: None,
        ..LoadOptions::default()
    };
    let c = parse_str_with(Path::new("k.conf"), text, &opts).unwrap();
    assert_eq!(c.virtual_servers.len(), 1);
    let c = parse_str(Path::new("k.conf"), text).unwrap();
    assert_eq!(c.virtual_servers.len(), 0);
}

#[test]
fn vrrp_defaults_priority_state_and_version() {
    let c = load(
        "vrrp_instance A {\ninterface lo\nvirtual_router_id 1\nstate MASTER\n}\n\
         vrrp_instance B {\ninterface lo\nvirtual_router_id 2\n}\n\
         vrrp_instance C {\ninterface lo\nvirtual_router_id 3\npriority 255\n}\n",
    );
    let p: Vec<_> = c
        .vrrp_instances
        .iter()
        .map(|v| {
            (
                v.effective_priority(),
                v.initial_state(),
                v.effective_version(None),
            )
        })
        .collect();
    use rvs_keepalived::vrrp::VrrpState::*;
    assert_eq!(p, [(255, Master, 2), (100, Backup, 2), (255, Master, 2)]);
}

#[test]
fn vrrp_instance_is_fully_parsed() {
    let c = load(
        "vrrp_script chk {\nscript \"/bin/check 'a b'\"\nweight -5 reverse\ninterval 2\nfall 3\nrise 2\n}\n\
         vrrp_instance A {\ninterface eth9\nvirtual_router_id 9\nadvert_int 0.1\nversion 3\n\
         virtual_ipaddress {\n10.1.1.1/24 brd 10.1.1.255 dev eth9 label eth9:1 scope global\n}\n\
         track_script {\nchk weight 10\n}\ntrack_interface {\neth8 weight -3 reverse\n}\n\
         unicast_src_ip 10.0.0.1\nunicast_peer {\n10.0.0.2\n}\n\
         notify \"/bin/notify x\" root wheel\ngarp_master_refresh 30\nuse_vmac vrrp9 02:00:00:00:00:09\n}\n",
    );
    let v = &c.vrrp_instances[0];
    assert_eq!(v.advert_int, Some(Duration::from_millis(100)));
    let vip = &v.virtual_ipaddress[0];
    assert_eq!(
        (vip.prefix, vip.dev.as_deref(), vip.label.as_deref()),
        (24, Some("eth9"), Some("eth9:1"))
    );
    assert_eq!(v.track_script[0].weight, Some(10));
    assert_eq!(
        (v.track_interface[0].weight, v.track_interface[0].reverse),
        (Some(-3), true)
    );
    let n = v.notify.generic.as_ref().unwrap();
    assert_eq!(
        (n.args.as_slice(), n.user.as_deref(), n.group.as_deref()),
        (
            &["/bin/notify".to_string(), "x".to_string()][..],
            Some("root"),
            Some("wheel")
        )
    );
    assert_eq!(v.use_vmac.as_ref().unwrap().name.as_deref(), Some("vrrp9"));
    let s = &c.vrrp_scripts[0];
    assert_eq!(s.script.args, ["/bin/check", "a b"]);
    assert_eq!(
        (s.weight, s.weight_reverse, s.fall, s.rise),
        (-5, true, 3, 2)
    );
}
