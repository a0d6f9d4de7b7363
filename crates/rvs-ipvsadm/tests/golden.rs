//! Every output format against ipvsadm's own bytes (see `common` for where the goldens
//! come from). A failure prints both texts with visible line ends.

mod common;

use common::*;
use rvs_api::{CheckerStatus, StatusReply, TimeoutsReply};
use rvs_core::SyncDaemonConfig;
use rvs_ipvsadm::format::{self, json};
use rvs_ipvsadm::{Format, NoNames};

fn same(got: &str, want: &str) {
    if got != want {
        let show = |s: &str| s.replace(' ', "·").replace('\n', "$\n");
        panic!(
            "output differs\n--- got\n{}\n--- want\n{}",
            show(got),
            show(want)
        );
    }
}

fn fmt(f: impl FnOnce(&mut Format)) -> Format {
    let mut format = Format::numeric();
    f(&mut format);
    format
}

#[test]
fn seed_001_nat_example_lists_exactly() {
    let got = format::list_table(&info(), &seed001(), &Format::numeric(), &NoNames);
    same(&got, include_str!("golden/seed001_Ln.txt"));
    // The document's copy lost some trailing spaces; the words are the same.
    let from_seed = "IP Virtual Server version 1.2.1 (size=4096)
Prot LocalAddress:Port Scheduler Flags
  -> RemoteAddress:Port           Forward Weight ActiveConn InActConn
TCP  172.16.132.18:80 rr
  -> 192.168.99.130:888           Masq    1      0          0
  -> 192.168.99.140:888           Masq    1      0          0         ";
    let trimmed: Vec<&str> = got.lines().map(str::trim_end).collect();
    assert_eq!(
        trimmed,
        from_seed.lines().map(str::trim_end).collect::<Vec<_>>()
    );
}

#[test]
fn list_numeric_default_view() {
    let got = format::list_table(&info(), &rich(), &Format::numeric(), &NoNames);
    same(&got, include_str!("golden/list_Ln.txt"));
}

#[test]
fn list_with_names_uses_hosts_and_services() {
    let got = format::list_table(&info(), &rich(), &Format::default(), &Names);
    same(&got, include_str!("golden/list_L.txt"));
}

#[test]
fn list_stats() {
    let got = format::list_table(&info(), &rich(), &fmt(|f| f.stats = true), &NoNames);
    same(&got, include_str!("golden/list_stats.txt"));
}

#[test]
fn list_stats_with_names() {
    let f = Format {
        stats: true,
        ..Format::default()
    };
    let got = format::list_table(&info(), &rich(), &f, &Names);
    same(&got, include_str!("golden/list_stats_names.txt"));
}

#[test]
fn list_stats_exact() {
    let f = fmt(|f| {
        f.stats = true;
        f.exact = true;
    });
    let got = format::list_table(&info(), &rich(), &f, &NoNames);
    same(&got, include_str!("golden/list_stats_exact.txt"));
}

#[test]
fn list_rate() {
    let got = format::list_table(&info(), &rich(), &fmt(|f| f.rate = true), &NoNames);
    same(&got, include_str!("golden/list_rate.txt"));
}

#[test]
fn list_rate_exact() {
    let f = fmt(|f| {
        f.rate = true;
        f.exact = true;
    });
    let got = format::list_table(&info(), &rich(), &f, &NoNames);
    same(&got, include_str!("golden/list_rate_exact.txt"));
}

#[test]
fn list_thresholds() {
    let got = format::list_table(&info(), &rich(), &fmt(|f| f.thresholds = true), &NoNames);
    same(&got, include_str!("golden/list_thresholds.txt"));
}

#[test]
fn stats_wins_over_thresholds() {
    let f = fmt(|f| {
        f.thresholds = true;
        f.stats = true;
    });
    let got = format::list_table(&info(), &rich(), &f, &NoNames);
    same(&got, include_str!("golden/list_prio.txt"));
}

#[test]
fn list_persistent_conn() {
    let got = format::list_table(
        &info(),
        &rich(),
        &fmt(|f| f.persistent_conn = true),
        &NoNames,
    );
    same(&got, include_str!("golden/list_pconn.txt"));
}

#[test]
fn list_tun_info() {
    let got = format::list_table(&info(), &rich(), &fmt(|f| f.tun_info = true), &NoNames);
    same(&got, include_str!("golden/list_tuninfo.txt"));
}

#[test]
fn list_nosort_keeps_creation_and_kernel_order() {
    let got = format::list_table(&info(), &rich(), &fmt(|f| f.nosort = true), &NoNames);
    same(&got, include_str!("golden/list_nosort.txt"));
}

#[test]
fn list_one_service_has_no_version_header() {
    let svc = &rich()[1];
    let got = format::list_service(svc, &Format::numeric(), &NoNames);
    same(&got, include_str!("golden/list_svc.txt"));
    let fwm6 = &rich()[4];
    let got = format::list_service(fwm6, &fmt(|f| f.tun_info = true), &NoNames);
    same(&got, include_str!("golden/list_svc_fwm6.txt"));
}

// The `-S` goldens are ipvsadm's output plus ` -x 100 -y 10` on the one server with
// thresholds, which ipvsadm 1.31 would drop (see `save_adds_thresholds_only_where_set`).
#[test]
fn save_numeric() {
    same(
        &format::save(&rich(), true, &NoNames),
        include_str!("golden/list_Sn.txt"),
    );
}

#[test]
fn save_with_names() {
    same(
        &format::save(&rich(), false, &Names),
        include_str!("golden/list_S.txt"),
    );
}

#[test]
fn save_adds_thresholds_only_where_set() {
    let mut table = seed001();
    table[0].dests[0].cfg.u_threshold = 200;
    table[0].dests[0].cfg.l_threshold = 150;
    table[0].dests[1].cfg.u_threshold = 50;
    let got = format::save(&table, true, &NoNames);
    same(
        &got,
        "-A -t 172.16.132.18:80 -s rr\n\
         -a -t 172.16.132.18:80 -r 192.168.99.130:888 -m -w 1 -x 50\n\
         -a -t 172.16.132.18:80 -r 192.168.99.140:888 -m -w 1 -x 200 -y 150\n",
    );
}

#[test]
fn flag_3_of_sh_is_named() {
    let mut table = seed001();
    table[0].cfg.scheduler = "sh".into();
    table[0].cfg.sched_flags = rvs_core::SchedFlags(rvs_core::SchedFlags::SCHED3);
    table[0].dests.clear();
    let got = format::list_table(&info(), &table, &Format::numeric(), &NoNames);
    assert!(
        got.ends_with("TCP  172.16.132.18:80 sh (flag-3)\n"),
        "{got}"
    );
    let got = format::save(&table, true, &NoNames);
    same(&got, "-A -t 172.16.132.18:80 -s sh -b flag-3\n");
}

#[test]
fn connections_numeric() {
    let got = format::list_conns(&conns(), &Format::numeric(), &NoNames);
    same(&got, include_str!("golden/conns_n.txt"));
}

#[test]
fn connections_with_persistence_engine_data() {
    let got = format::list_conns(&conns(), &fmt(|f| f.persistent_conn = true), &NoNames);
    same(&got, include_str!("golden/conns_pe.txt"));
}

#[test]
fn connections_with_names() {
    let got = format::list_conns(&conns(), &Format::default(), &Names);
    same(&got, include_str!("golden/conns_names.txt"));
}

#[test]
fn timeouts_line() {
    let t = TimeoutsReply {
        tcp: 900,
        tcpfin: 120,
        udp: 300,
    };
    same(&format::timeouts(&t), include_str!("golden/timeout.txt"));
}

fn daemon(master: bool, syncid: u8) -> SyncDaemonConfig {
    SyncDaemonConfig {
        master,
        mcast_ifn: "eth0".into(),
        syncid,
        sync_maxlen: 0,
        mcast_group: None,
        mcast_port: 0,
        mcast_ttl: 0,
    }
}

#[test]
fn daemon_line_shows_the_kernel_defaults() {
    same(
        &format::daemons(&[daemon(true, 3)]),
        include_str!("golden/daemon.txt"),
    );
}

#[test]
fn daemons_master_first_with_given_settings() {
    let mut backup = daemon(false, 9);
    backup.mcast_ifn = "eth1".into();
    backup.sync_maxlen = 1400;
    backup.mcast_group = Some("ff02::1:81".parse().unwrap());
    backup.mcast_port = 9000;
    backup.mcast_ttl = 5;
    same(
        &format::daemons(&[backup, daemon(true, 0)]),
        "master sync daemon (mcast=eth0, syncid=0, maxlen=1472, group=224.0.0.81, port=8848, ttl=1)\n\
         backup sync daemon (mcast=eth1, syncid=9, maxlen=1400, group=ff02::1:81, port=9000, ttl=5)\n",
    );
}

#[test]
fn help_is_ipvsadm_usage_plus_extensions() {
    let got = format::usage("ipvsadm");
    let ipvsadm_part = include_str!("golden/help_ipvsadm.txt");
    assert!(got.starts_with(ipvsadm_part), "{got}");
    let rest = &got[ipvsadm_part.len()..];
    assert!(
        rest.starts_with("rvs extensions (not in ipvsadm):\n"),
        "{rest}"
    );
    for ext in ["--status", "--json", "--socket", "--drain", "--undrain"] {
        assert!(rest.contains(ext), "{ext} undocumented");
    }
    assert!(format::usage("/sbin/rvsadm").contains("\n  /sbin/rvsadm -Z [virtual-service]\n"));
}

#[test]
fn version_starts_with_ipvsadm_line() {
    let v = format::version();
    let mut lines = v.lines();
    assert_eq!(
        lines.next(),
        Some("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)")
    );
    assert!(lines.next().unwrap().starts_with("rvsadm "));
    assert!(v.ends_with('\n'));
}

#[test]
fn json_listing_carries_services_servers_stats_and_rates() {
    let text = json::table(&info(), &rich(), false);
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["version"], "1.2.1");
    assert_eq!(v["size"], 4096);
    let svcs = v["services"].as_array().unwrap();
    assert_eq!(svcs.len(), 8);
    // Same order as the text listing.
    assert_eq!(svcs[0]["address"], "127.0.0.1");
    let sh = svcs
        .iter()
        .find(|s| s["scheduler"] == "sh")
        .expect("sh service");
    assert_eq!(sh["protocol"], "UDP");
    assert_eq!(sh["port"], 53);
    assert_eq!(sh["persistent"], 360);
    assert_eq!(sh["netmask"], "255.255.255.0");
    assert_eq!(sh["pe"], "sip");
    assert_eq!(sh["flags"], serde_json::json!(["sh-fallback", "sh-port"]));
    assert_eq!(sh["stats"]["inbytes"], 100_000_000_000_000u64);
    assert_eq!(sh["rates"]["inbps"], 123_456_789_012u64);
    let servers = sh["servers"].as_array().unwrap();
    assert_eq!(servers[0]["address"], "10.1.0.1");
    assert_eq!(servers[1]["tunnel"]["type"], "gue");
    assert_eq!(servers[1]["tunnel"]["port"], 6080);
    assert_eq!(servers[1]["u_threshold"], 100);
    assert_eq!(servers[1]["persistent_conns"], 6);
    let fwm = svcs.iter().find(|s| s["fwmark"] == 8).unwrap();
    assert_eq!(fwm["family"], "ipv6");
    assert_eq!(fwm["netmask"], 64);
    assert!(fwm["address"].is_null());
}

#[test]
fn json_connections() {
    let v: serde_json::Value = serde_json::from_str(&json::conns(&conns())).unwrap();
    let c = &v["connections"][0];
    assert_eq!(c["protocol"], "TCP");
    assert_eq!(c["expires"], 898);
    assert_eq!(c["source"]["address"], "10.9.9.9");
    assert_eq!(c["destination"]["port"], 80);
    assert_eq!(v["connections"][4]["pe_data"], "1234567890abcdef@host");
}

#[test]
fn status_text_and_json() {
    let s = StatusReply {
        version: "0.1.0".into(),
        dataplane: "proxy".into(),
        checkers: vec![
            CheckerStatus {
                service: tcp("10.0.0.1", 80),
                addr: "192.168.1.10".parse().unwrap(),
                port: 80,
                kind: "HTTP_GET".into(),
                up: true,
                last_error: None,
                failures: 0,
            },
            CheckerStatus {
                service: tcp("10.0.0.1", 80),
                addr: "192.168.1.11".parse().unwrap(),
                port: 80,
                kind: "TCP_CHECK".into(),
                up: false,
                last_error: Some("connection refused".into()),
                failures: 3,
            },
        ],
        facts: vec![("vrrp VI_1".into(), "MASTER".into())],
    };
    same(
        &format::status(&s),
        "rvsd 0.1.0\nData plane: proxy\nHealth checkers: 2 (1 up, 1 down)\n  \
         TCP 10.0.0.1:80 -> 192.168.1.10:80 HTTP_GET UP\n  \
         TCP 10.0.0.1:80 -> 192.168.1.11:80 TCP_CHECK DOWN failures=3 last_error=\"connection refused\"\n\
         vrrp VI_1: MASTER\n",
    );
    let v: serde_json::Value = serde_json::from_str(&json::status(&s)).unwrap();
    assert_eq!(v["dataplane"], "proxy");
    assert_eq!(v["checkers"][1]["up"], false);
    assert_eq!(v["facts"]["vrrp VI_1"], "MASTER");
}
