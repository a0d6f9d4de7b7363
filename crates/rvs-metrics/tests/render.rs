//! The exposition: node_exporter's IPVS names and labels, and rvs's facts as metrics.

use rvs_api::{CheckerStatus, StatusReply};
use rvs_core::{
    Counters, DestConfig, DestInfo, Family, Protocol, Rates, ServiceConfig, ServiceInfo, ServiceKey,
};
use rvs_metrics::{prometheus::render, View};

fn dest(addr: &str, port: u16, weight: u32, active: u32, inactive: u32, conns: u64) -> DestInfo {
    let mut cfg = DestConfig::new(addr.parse().unwrap(), port);
    cfg.weight = weight;
    DestInfo {
        cfg,
        activeconns: active,
        inactconns: inactive,
        persistconns: 0,
        overloaded: false,
        last_weight: weight,
        stats: Counters {
            conns,
            inpkts: conns * 5,
            outpkts: conns * 4,
            inbytes: conns * 500,
            outbytes: conns * 4000,
        },
        rates: Rates::default(),
    }
}

fn view() -> View {
    let tcp = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "10.0.0.1".parse().unwrap(),
        port: 80,
    };
    let fwm = ServiceKey::Fwmark {
        mark: 10,
        family: Family::V4,
    };
    let svc = |key, dests| ServiceInfo {
        cfg: ServiceConfig::new(key),
        stats: Counters::default(),
        rates: Rates::default(),
        dests,
    };
    View {
        services: vec![
            svc(
                tcp,
                vec![
                    dest("10.0.1.1", 8080, 3, 7, 2, 11),
                    dest("2001:db8::2", 8080, 1, 0, 1, 4),
                ],
            ),
            svc(fwm, vec![dest("10.0.1.3", 0, 2, 1, 0, 1)]),
        ],
        status: StatusReply {
            version: "0.1.0".into(),
            dataplane: "xdp".into(),
            checkers: vec![CheckerStatus {
                service: tcp,
                addr: "10.0.1.1".parse().unwrap(),
                port: 8080,
                kind: "TCP_CHECK".into(),
                up: false,
                last_error: Some("connection refused".into()),
                failures: 3,
            }],
            facts: vec![
                ("xdp.reason.ttl_exceeded".into(), "17".into()),
                ("xdp.connections".into(), "9".into()),
                ("vrrp.VI_1.state".into(), "MASTER".into()),
                ("vrrp.VI_1.adverts_tx".into(), "40".into()),
                ("vrrp.VI_1.drop.checksum".into(), "2".into()),
                ("vrrp.VI_1.vips".into(), "10.0.0.1".into()),
                ("sync.master.sent_messages".into(), "120".into()),
                ("sync.backup.dropped.bad_version".into(), "3".into()),
                ("sync.master.interface".into(), "eth0".into()),
                ("announce.interface".into(), "rvs-vip".into()),
                ("announce.drained".into(), "no".into()),
                ("announce.vip.10.0.0.1".into(), "announced".into()),
                ("announce.vip.10.0.0.2".into(), "withdrawn (drained)".into()),
                ("xdp.fwmark".into(), "served (netfilter hook)".into()),
                ("xdp.fwmark.diverted".into(), "5".into()),
                ("xdp.sync.ring_lost".into(), "0".into()),
            ],
        },
        global: (
            Counters {
                conns: 16,
                inpkts: 80,
                outpkts: 64,
                inbytes: 8000,
                outbytes: 64000,
            },
            Rates::default(),
        ),
    }
}

fn has(text: &str, line: &str) {
    assert!(
        text.lines().any(|l| l == line),
        "missing `{line}` in:\n{text}"
    );
}

#[test]
fn node_exporter_ipvs_names_and_labels() {
    let t = render(&view());
    has(&t, "node_ipvs_connections_total 16");
    has(&t, "node_ipvs_incoming_packets_total 80");
    has(&t, "node_ipvs_outgoing_packets_total 64");
    has(&t, "node_ipvs_incoming_bytes_total 8000");
    has(&t, "node_ipvs_outgoing_bytes_total 64000");
    has(&t, "# TYPE node_ipvs_connections_total counter");
    has(&t, "# TYPE node_ipvs_backend_weight gauge");
    let l = r#"{local_address="10.0.0.1",local_port="80",remote_address="10.0.1.1",remote_port="8080",proto="TCP",local_mark=""}"#;
    has(&t, &format!("node_ipvs_backend_connections_active{l} 7"));
    has(&t, &format!("node_ipvs_backend_connections_inactive{l} 2"));
    has(&t, &format!("node_ipvs_backend_weight{l} 3"));
    has(&t, &format!("rvs_backend_connections_total{l} 11"));
    has(
        &t,
        r#"node_ipvs_backend_weight{local_address="10.0.0.1",local_port="80",remote_address="2001:db8::2",remote_port="8080",proto="TCP",local_mark=""} 1"#,
    );
    // a fwmark service as /proc/net/ip_vs shows it: no address, port 0, the mark in hex
    has(
        &t,
        r#"node_ipvs_backend_weight{local_address="",local_port="0",remote_address="10.0.1.3",remote_port="0",proto="FWM",local_mark="0000000A"} 2"#,
    );
}

#[test]
fn checkers_drops_vrrp_and_sync_facts() {
    let t = render(&view());
    has(
        &t,
        r#"rvs_checker_up{local_address="10.0.0.1",local_port="80",remote_address="10.0.1.1",remote_port="8080",proto="TCP",local_mark="",checker="TCP_CHECK"} 0"#,
    );
    has(&t, r#"rvs_drop_packets_total{reason="ttl_exceeded"} 17"#);
    has(&t, "rvs_xdp_connections 9");
    has(&t, "rvs_xdp_fwmark_diverted 5");
    has(&t, "rvs_xdp_sync_ring_lost 0");
    assert!(!t.contains("rvs_xdp_fwmark "), "a text fact is no metric");
    has(&t, r#"rvs_vrrp_state{instance="VI_1",state="MASTER"} 2"#);
    has(&t, r#"rvs_vrrp_adverts_tx{instance="VI_1"} 40"#);
    has(
        &t,
        r#"rvs_vrrp_drops_total{instance="VI_1",reason="checksum"} 2"#,
    );
    has(&t, "rvs_sync_master_sent_messages 120");
    has(&t, "rvs_sync_backup_dropped_bad_version 3");
    has(&t, "rvs_announce_drained 0");
    has(&t, r#"rvs_announce_vip{vip="10.0.0.1"} 1"#);
    has(&t, r#"rvs_announce_vip{vip="10.0.0.2"} 0"#);
    // text facts are not numbers: no metric
    assert!(!t.contains("rvs_sync_master_interface"));
    assert!(!t.contains("vips"));
    // every sample line has a TYPE line before it
    for l in t.lines().filter(|l| !l.starts_with('#')) {
        let name = l.split(['{', ' ']).next().unwrap();
        assert!(t.contains(&format!("# TYPE {name} ")), "{name} has no TYPE");
    }
}
