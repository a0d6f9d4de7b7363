//! The command line: the seeds' ipvsadm lines, every option, and ipvsadm's refusals with
//! their exact messages and exit statuses (checked against ipvsadm 1.31 built from source).

mod common;

use common::{tcp, udp, Names};
use rvs_core::*;
use rvs_ipvsadm::{parse_args, CliError, Command, Format, List, ListWhat};
use std::net::IpAddr;

fn argv(args: &[&str]) -> Vec<String> {
    std::iter::once("ipvsadm")
        .chain(args.iter().copied())
        .map(String::from)
        .collect()
}

fn ok(args: &[&str]) -> Command {
    match parse_args(&argv(args), &Names) {
        Ok(inv) => inv.command,
        Err(e) => panic!("{args:?} refused: {e}"),
    }
}

/// The text ipvsadm prints on stderr and its exit status.
fn err(args: &[&str]) -> (String, i32) {
    match parse_args(&argv(args), &Names) {
        Ok(inv) => panic!("{args:?} accepted: {:?}", inv.command),
        Err(e) => (e.render("ipvsadm"), e.exit_status()),
    }
}

fn fails(args: &[&str], message: &str) {
    assert_eq!(err(args), (format!("{message}\n"), 2), "{args:?}");
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn add_service(cmd: Command) -> ServiceConfig {
    match cmd {
        Command::Change(Change::AddService(cfg)) => cfg,
        other => panic!("not -A: {other:?}"),
    }
}

fn add_dest(cmd: Command) -> (ServiceKey, DestConfig) {
    match cmd {
        Command::Change(Change::AddDest { svc, dest }) => (svc, dest),
        other => panic!("not -a: {other:?}"),
    }
}

fn list(cmd: Command) -> List {
    match cmd {
        Command::List(l) => l,
        other => panic!("not -L: {other:?}"),
    }
}

// ----- the seeds' command lines -----

#[test]
fn seed_nat_script() {
    assert_eq!(ok(&["-C"]), Command::Change(Change::Flush));
    assert_eq!(
        add_service(ok(&["-A", "-t", "172.16.254.200:80", "-s", "wrr"])),
        ServiceConfig::new(tcp("172.16.254.200", 80)).with_scheduler("wrr")
    );
    for rs in ["192.168.0.18", "192.168.0.28"] {
        let (svc, dest) = add_dest(ok(&[
            "-a",
            "-t",
            "172.16.254.200:80",
            "-r",
            &format!("{rs}:80"),
            "-m",
            "-w",
            "1",
        ]));
        assert_eq!(svc, tcp("172.16.254.200", 80));
        assert_eq!(
            dest,
            DestConfig::new(ip(rs), 80).with_forward(Forward::Masq)
        );
    }
    assert_eq!(
        list(ok(&["-ln"])),
        List {
            what: ListWhat::All,
            format: Format::numeric()
        }
    );
}

#[test]
fn seed_dr_script() {
    assert_eq!(
        add_service(ok(&["-A", "-t", "192.168.0.38:80", "-s", "wrr"])).scheduler,
        "wrr"
    );
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "192.168.0.38:80",
        "-r",
        "192.168.0.18:80",
        "-g",
        "-w",
        "3",
    ]));
    assert_eq!(d, DestConfig::new(ip("192.168.0.18"), 80).with_weight(3));
}

#[test]
fn seed_port_mapping_keeps_the_server_port_with_nat() {
    assert_eq!(
        add_service(ok(&["-A", "-t", "172.16.132.18:80", "-s", "rr"])).scheduler,
        "rr"
    );
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "172.16.132.18:80",
        "-r",
        "192.168.99.130:888",
        "-m",
    ]));
    assert_eq!(d.port, 888);
    assert_eq!(d.forward, Forward::Masq);
    assert_eq!(d.weight, 1);
}

#[test]
fn seed_listing_and_save_restore_lines() {
    assert_eq!(list(ok(&["-Ln"])).format, Format::numeric());
    let l = list(ok(&["-L", "-n", "--stats"]));
    assert!(l.format.numeric && l.format.stats);
    assert_eq!(ok(&["-S"]), Command::Save { numeric: false });
    assert_eq!(ok(&["-R"]), Command::Restore);
    assert_eq!(
        ok(&["-d", "-t", "172.16.132.18:80", "-r", "192.168.99.130"]),
        Command::Change(Change::DelDest {
            svc: tcp("172.16.132.18", 80),
            addr: ip("192.168.99.130"),
            port: 80
        })
    );
    assert_eq!(list(ok(&[])).what, ListWhat::All);
    assert!(!list(ok(&[])).format.numeric);
}

// ----- options, one by one -----

#[test]
fn defaults_of_add_service() {
    let cfg = add_service(ok(&["-A", "-t", "10.0.0.1:80"]));
    assert_eq!(cfg, ServiceConfig::new(tcp("10.0.0.1", 80)));
    assert_eq!(cfg.scheduler, "wlc");
    assert_eq!(cfg.netmask, Netmask(32));
}

#[test]
fn persistent_value_is_optional() {
    let p = |args: &[&str]| add_service(ok(args)).persistence;
    assert_eq!(p(&["-A", "-t", "10.0.0.1:80", "-p"]), Some(360));
    assert_eq!(p(&["-A", "-t", "10.0.0.1:80", "-p", "-s", "rr"]), Some(360));
    assert_eq!(p(&["-A", "-t", "10.0.0.1:80", "-p", "90"]), Some(90));
    assert_eq!(p(&["-A", "-t", "10.0.0.1:80", "-p90"]), Some(90));
    assert_eq!(p(&["-A", "-t", "10.0.0.1:80", "--persistent=90"]), Some(90));
    assert_eq!(
        p(&["-A", "-t", "10.0.0.1:80", "-p", "2678400"]),
        Some(2_678_400)
    );
    assert_eq!(p(&["-A", "-t", "10.0.0.1:80"]), None);
    // Port 0 is fine for a persistent service.
    assert_eq!(
        add_service(ok(&["-A", "-t", "10.0.0.1", "-p"])).key,
        tcp("10.0.0.1", 0)
    );
}

#[test]
fn netmask_ipv4_and_ipv6() {
    let cfg = add_service(ok(&[
        "-A",
        "-t",
        "10.0.0.1:80",
        "-p",
        "-M",
        "255.255.255.0",
    ]));
    assert_eq!(cfg.netmask, Netmask(24));
    let cfg = add_service(ok(&["-A", "-t", "[2001:db8::1]:80", "-p", "-M", "64"]));
    assert_eq!(cfg.netmask, Netmask(64));
    // The family is the service's so far: before -t, -M is an IPv4 mask, then reset.
    let cfg = add_service(ok(&["-A", "-M", "64", "-t", "[2001:db8::1]:80"]));
    assert_eq!(cfg.netmask, Netmask(128));
    let cfg = add_service(ok(&["-A", "-f", "3", "-6", "-M", "48", "-p"]));
    assert_eq!(cfg.netmask, Netmask(48));
}

#[test]
fn schedulers_pe_ops_and_flags() {
    let cfg = add_service(ok(&[
        "-A",
        "-u",
        "10.0.0.1:53",
        "-s",
        "sh",
        "-b",
        "sh-fallback,sh-port",
        "-o",
        "--pe",
        "sip",
        "-p",
    ]));
    assert_eq!(cfg.scheduler, "sh");
    assert_eq!(
        cfg.sched_flags,
        SchedFlags(SchedFlags::SCHED1 | SchedFlags::SCHED2)
    );
    assert!(cfg.ops);
    assert_eq!(cfg.pe.as_deref(), Some("sip"));
    // -b is checked against -s wherever -s comes.
    let cfg = add_service(ok(&[
        "-A",
        "-t",
        "10.0.0.1:80",
        "-b",
        "mh-port",
        "-s",
        "mh",
    ]));
    assert_eq!(cfg.sched_flags, SchedFlags(SchedFlags::SCHED2));
    let cfg = add_service(ok(&["-A", "-t", "10.0.0.1:80", "-b", "flag-1,,flag-3"]));
    assert_eq!(
        cfg.sched_flags,
        SchedFlags(SchedFlags::SCHED1 | SchedFlags::SCHED3)
    );
    // Long names are cut as ipvsadm's fixed buffers cut them.
    let cfg = add_service(ok(&[
        "-A",
        "-t",
        "10.0.0.1:80",
        "-s",
        "abcdefghijklmnopqrstuvwxyz",
        "--pe",
        "abcdefghijklmnopqrstuvwxyz",
    ]));
    assert_eq!(cfg.scheduler, "abcdefghijklmno");
    assert_eq!(cfg.pe.as_deref(), Some("abcdefghijklmnop"));
}

#[test]
fn service_address_forms() {
    let key = |a: &str| add_service(ok(&["-A", "-t", a, "-p"])).key;
    assert_eq!(key("10.0.0.1:80"), tcp("10.0.0.1", 80));
    assert_eq!(key("10.0.0.1:http"), tcp("10.0.0.1", 80));
    assert_eq!(key("localhost:80"), tcp("127.0.0.1", 80));
    assert_eq!(key("10.1:80"), tcp("10.0.0.1", 80));
    assert_eq!(key("[2001:db8::1]:443"), tcp("2001:db8::1", 443));
    assert_eq!(key("2001:db8::1"), tcp("2001:db8::1", 0));
    // A bracketed IPv4 address loses the port after the brackets, as in ipvsadm.
    assert_eq!(key("[10.0.0.1]:80"), tcp("10.0.0.1", 0));
    assert_eq!(
        add_service(ok(&["-A", "-u", "10.0.0.1:domain"])).key,
        udp("10.0.0.1", 53)
    );
    assert_eq!(
        add_service(ok(&["-A", "--sctp-service", "10.0.0.1:5060"])).key,
        ServiceKey::Addr {
            proto: Protocol::Sctp,
            addr: ip("10.0.0.1"),
            port: 5060
        }
    );
    assert_eq!(
        add_service(ok(&["-A", "-f", "4294967295"])).key,
        ServiceKey::Fwmark {
            mark: u32::MAX,
            family: Family::V4
        }
    );
    assert_eq!(
        add_service(ok(&["-A", "-f", "5", "-6"])).key,
        ServiceKey::Fwmark {
            mark: 5,
            family: Family::V6
        }
    );
}

#[test]
fn popt_syntax_variants() {
    let want = ServiceConfig::new(tcp("1.2.3.4", 80));
    for args in [
        &["-A", "-t1.2.3.4:80"][..],
        &["-At", "1.2.3.4:80"],
        &["-A", "--tcp-service=1.2.3.4:80"],
        &["-A", "--tcp-service", "1.2.3.4:80"],
        &["--add-service", "-t=1.2.3.4:80"],
        &["-A", "-t", "1.2.3.4:80", "--"],
        &["-A", "-t", "1.2.3.4:80", "--sort"],
    ] {
        assert_eq!(add_service(ok(args)), want, "{args:?}");
    }
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "1.2.3.4:80",
        "-r",
        "2.2.2.2",
        "-w=5",
        "-x5",
        "-y",
        "6",
    ]));
    assert_eq!((d.weight, d.u_threshold, d.l_threshold), (5, 5, 6));
}

#[test]
fn real_server_options() {
    let (svc, d) = add_dest(ok(&["-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8:90", "-g"]));
    assert_eq!(svc, tcp("1.2.3.4", 80));
    // Direct routing cannot map ports: the service port wins.
    assert_eq!((d.port, d.forward), (80, Forward::Route));
    let (_, d) = add_dest(ok(&["-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8:90", "-i"]));
    assert_eq!((d.port, d.forward), (80, Forward::Tunnel));
    let (_, d) = add_dest(ok(&["-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-m"]));
    assert_eq!(d.port, 80);
    // -r before -t: no service port to copy yet.
    let (_, d) = add_dest(ok(&["-a", "-r", "2.2.2.2", "-m", "-t", "1.1.1.1:80"]));
    assert_eq!(d.port, 0);
    // fwmark services keep the given port even with DR.
    let (_, d) = add_dest(ok(&["-a", "-f", "3", "-r", "2.2.2.2:99", "-g"]));
    assert_eq!(d.port, 99);
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "1.1.1.1:80",
        "-r",
        "2.2.2.2",
        "-w",
        "0",
        "-x",
        "2147483647",
        "-y",
        "0",
    ]));
    assert_eq!(
        (d.weight, d.u_threshold, d.l_threshold),
        (0, 2_147_483_647, 0)
    );
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "1.1.1.1:80",
        "-r",
        "[2001:db8::5]:8080",
        "-i",
    ]));
    assert_eq!(d.addr, ip("2001:db8::5"));
    match ok(&["-e", "-t", "1.1.1.1:80", "-r", "2.2.2.2", "-w", "7"]) {
        Command::Change(Change::EditDest { dest, .. }) => {
            assert_eq!((dest.weight, dest.forward), (7, Forward::Route))
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn tunnel_options() {
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "1.1.1.1:80",
        "-r",
        "2.2.2.2",
        "-i",
        "--tun-type",
        "gue",
        "--tun-port",
        "6080",
        "--tun-csum",
    ]));
    assert_eq!(
        d.tunnel,
        TunnelConfig {
            kind: TunnelType::Gue,
            port: 6080,
            csum: TunnelCsum::Csum
        }
    );
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "1.1.1.1:80",
        "-r",
        "2.2.2.2",
        "-i",
        "--tun-type",
        "gre",
        "--tun-nocsum",
    ]));
    assert_eq!(d.tunnel.kind, TunnelType::Gre);
    assert_eq!(d.tunnel.csum, TunnelCsum::NoCsum);
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "1.1.1.1:80",
        "-r",
        "2.2.2.2",
        "-i",
        "--tun-type",
        "gue",
        "--tun-port",
        "7",
        "--tun-remcsum",
    ]));
    assert_eq!(d.tunnel.csum, TunnelCsum::RemCsum);
    let (_, d) = add_dest(ok(&[
        "-a",
        "-t",
        "1.1.1.1:80",
        "-r",
        "2.2.2.2",
        "-i",
        "--tun-type",
        "ipip",
    ]));
    assert_eq!(d.tunnel, TunnelConfig::default());
}

#[test]
fn list_options() {
    let l = list(ok(&["-L", "-t", "10.0.0.1:80", "--stats", "--exact"]));
    assert_eq!(l.what, ListWhat::Service(tcp("10.0.0.1", 80)));
    assert!(l.format.stats && l.format.exact && !l.format.numeric);
    let l = list(ok(&[
        "-l",
        "--thresholds",
        "--persistent-conn",
        "--tun-info",
        "--nosort",
        "--sort",
        "--sort",
        "--rate",
    ]));
    assert!(
        l.format.thresholds
            && l.format.persistent_conn
            && l.format.tun_info
            && l.format.nosort
            && l.format.rate
    );
    assert_eq!(list(ok(&["-Lnc"])).what, ListWhat::Conns);
    assert!(
        list(ok(&["-Lnc", "--persistent-conn"]))
            .format
            .persistent_conn
    );
    assert_eq!(list(ok(&["-L", "--timeout"])).what, ListWhat::Timeouts);
    assert_eq!(list(ok(&["-L", "--daemon"])).what, ListWhat::Daemons);
    assert_eq!(list(ok(&["-L", "--syncid", "3"])).what, ListWhat::All);
    assert!(list(ok(&["-L", "--json"])).format.json);
    assert_eq!(
        list(ok(&["-L", "-f", "8", "-6"])).what,
        ListWhat::Service(ServiceKey::Fwmark {
            mark: 8,
            family: Family::V6
        })
    );
}

#[test]
fn other_commands() {
    assert_eq!(ok(&["-Z"]), Command::Change(Change::Zero(None)));
    assert_eq!(
        ok(&["-Z", "-t", "1.2.3.4:80"]),
        Command::Change(Change::Zero(Some(tcp("1.2.3.4", 80))))
    );
    assert_eq!(
        ok(&["-D", "-u", "1.2.3.4:53"]),
        Command::Change(Change::DelService(udp("1.2.3.4", 53)))
    );
    assert_eq!(ok(&["-Sn"]), Command::Save { numeric: true });
    assert_eq!(
        ok(&["--set", "900", "120", "300"]),
        Command::Change(Change::SetTimeouts {
            tcp: 900,
            tcpfin: 120,
            udp: 300
        })
    );
    assert_eq!(
        ok(&["1", "--set", "2", "3"]),
        Command::Change(Change::SetTimeouts {
            tcp: 1,
            tcpfin: 2,
            udp: 3
        })
    );
    assert_eq!(ok(&["-h", "--bogus"]), Command::Help);
    assert_eq!(ok(&["--help"]), Command::Help);
    assert_eq!(ok(&["-v"]), Command::Version);
    assert_eq!(ok(&["--status", "--json"]), Command::Status { json: true });
    match ok(&["-E", "-t", "1.2.3.4:80", "-s", "rr"]) {
        Command::Change(Change::EditService(cfg)) => assert_eq!(cfg.scheduler, "rr"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn sync_daemon_options() {
    let Command::Change(Change::StartDaemon(d)) = ok(&["--start-daemon", "master"]) else {
        panic!()
    };
    assert_eq!(
        d,
        SyncDaemonConfig {
            master: true,
            mcast_ifn: "eth0".into(),
            syncid: 0,
            sync_maxlen: 0,
            mcast_group: None,
            mcast_port: 0,
            mcast_ttl: 0
        }
    );
    let Command::Change(Change::StartDaemon(d)) = ok(&[
        "--start-daemon=backup",
        "--mcast-interface",
        "eth1",
        "--syncid",
        "5",
        "--sync-maxlen",
        "1400",
        "--mcast-group",
        "239.1.1.1",
        "--mcast-port",
        "9000",
        "--mcast-ttl",
        "5",
    ]) else {
        panic!()
    };
    assert_eq!(
        (
            d.master,
            d.mcast_ifn.as_str(),
            d.syncid,
            d.sync_maxlen,
            d.mcast_group,
            d.mcast_port,
            d.mcast_ttl
        ),
        (false, "eth1", 5, 1400, Some(ip("239.1.1.1")), 9000, 5)
    );
    let Command::Change(Change::StartDaemon(d)) =
        ok(&["--start-daemon", "master", "--mcast-group", "ff02::1:81"])
    else {
        panic!()
    };
    assert_eq!(d.mcast_group, Some(ip("ff02::1:81")));
    assert_eq!(
        ok(&["--stop-daemon", "backup", "--syncid", "3"]),
        Command::Change(Change::StopDaemon { master: false })
    );
}

#[test]
fn socket_option_may_come_first_or_alone() {
    let inv = parse_args(&argv(&["--socket", "/tmp/x.sock", "-Ln"]), &Names).unwrap();
    assert_eq!(
        inv.socket.as_deref(),
        Some(std::path::Path::new("/tmp/x.sock"))
    );
    assert_eq!(list(inv.command).what, ListWhat::All);
    let inv = parse_args(&argv(&["-A", "-t", "1.2.3.4:80", "--socket=/s"]), &Names).unwrap();
    assert_eq!(inv.socket.as_deref(), Some(std::path::Path::new("/s")));
    let inv = parse_args(&argv(&["--socket", "/s"]), &Names).unwrap();
    assert_eq!(list(inv.command).what, ListWhat::All);
}

// ----- refusals -----

#[test]
fn no_command_first() {
    let hint = "Try `ipvsadm -h' or 'ipvsadm --help' for more information.\n".to_string();
    for args in [
        &["-n", "-L"][..],
        &["foo"],
        &["--", "-L"],
        &["--lis"],
        &["--list=x"],
        &["-L=n"],
        &["-t", "1.2.3.4:80", "-A"],
    ] {
        assert_eq!(err(args), (hint.clone(), 255), "{args:?}");
    }
}

#[test]
fn popt_errors_name_the_word() {
    assert_eq!(
        err(&["-L", "--foo"]),
        ("--foo: unknown option\n".into(), 255)
    );
    assert_eq!(err(&["-Lq"]), ("-Lq: unknown option\n".into(), 255));
    assert_eq!(err(&["-L", "-t"]), ("-t: missing argument\n".into(), 255));
    assert_eq!(
        err(&["-A", "-t", "1.2.3.4:80", "-s"]),
        ("-s: missing argument\n".into(), 255)
    );
    assert_eq!(
        err(&["-L", "--nosort=1"]),
        ("--nosort=1: option does not take an argument\n".into(), 255)
    );
    // -p does not take "-5": it is read as an option.
    assert_eq!(
        err(&["-A", "-t", "1.2.3.4:80", "-p", "-5"]),
        ("-5: unknown option\n".into(), 255)
    );
}

#[test]
fn duplicate_command_is_an_invalid_option() {
    // ipvsadm built with popt reports a second command this way, not as "multiple commands".
    fails(&["-L", "-A"], "invalid option `-A'");
    fails(&["-A", "-A"], "invalid option `-A'");
    fails(&["-LA"], "invalid option `-LA'");
    fails(&["-L", "--set"], "invalid option `--set'");
    fails(&["-L", "-h"], "invalid option `-h'");
    fails(
        &["-L", "--start-daemon", "master"],
        "invalid option `master'",
    );
}

#[test]
fn multiple_same_option() {
    fails(&["-L", "-n", "-n"], "multiple 'numeric' options specified");
    fails(
        &["-A", "-t", "1.2.3.4:80", "-t", "1.2.3.4:81"],
        "multiple 'service-address' options specified",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "-u", "1.2.3.4:81"],
        "multiple 'service-address' options specified",
    );
    fails(
        &["-a", "-t", "1.2.3.4:80", "-r", "1.1.1.1", "-m", "-g"],
        "multiple 'forwarding-method' options specified",
    );
    fails(
        &[
            "-A",
            "-t",
            "1.2.3.4:80",
            "-s",
            "sh",
            "-b",
            "sh-port",
            "-b",
            "flag-1",
        ],
        "multiple 'sched-flags' options specified",
    );
}

#[test]
fn illegal_options_for_the_command() {
    fails(
        &["-d", "-t", "1.2.3.4:80", "-r", "1.1.1.1", "-w", "3"],
        "Illegal 'weight' option with the 'delete-server' command",
    );
    fails(
        &["-S", "-c"],
        "Illegal 'connection' option with the 'save' command",
    );
    fails(
        &["-C", "-n"],
        "Illegal 'numeric' option with the 'flush' command",
    );
    fails(
        &["-R", "-n"],
        "Illegal 'numeric' option with the 'restore' command",
    );
    fails(
        &["-Z", "-n"],
        "Illegal 'numeric' option with the 'zero' command",
    );
    fails(
        &["-E", "-t", "1.2.3.4:80", "-s", "rr", "-r", "1.1.1.1"],
        "Illegal 'real-server' option with the 'edit-service' command",
    );
    fails(
        &["-D", "-t", "1.2.3.4:80", "-s", "rr"],
        "Illegal 'scheduler' option with the 'delete-service' command",
    );
    fails(
        &["--stop-daemon", "backup", "--mcast-ttl", "3"],
        "Illegal 'mcast-ttl' option with the 'stop-daemon' command",
    );
    fails(
        &["-list"],
        "Illegal 'scheduler' option with the 'list' command",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "--json"],
        "Illegal 'json' option with the 'add-service' command",
    );
}

#[test]
fn missing_service_or_server() {
    fails(
        &["-a", "-r", "1.1.1.1"],
        "You need to supply the 'service-address' option for the 'add-server' command",
    );
    fails(
        &["-a", "-t", "1.2.3.4:80", "-x", "5"],
        "You need to supply the 'real-server' option for the 'add-server' command",
    );
    fails(
        &["-A", "-s", "rr"],
        "You need to supply the 'service-address' option for the 'add-service' command",
    );
    fails(
        &["-D"],
        "You need to supply the 'service-address' option for the 'delete-service' command",
    );
}

#[test]
fn bad_addresses_and_ports() {
    let bad_vip = "illegal virtual server address[:port] specified";
    fails(&["-A", "-t", "123"], bad_vip);
    fails(&["-A", "-t", ""], bad_vip);
    fails(&["-A", "-t", "1.2.3.4:70000"], bad_vip);
    fails(&["-A", "-t", "1.2.3.4:nosuchservice"], bad_vip);
    fails(&["-A", "-t", "[::1]80"], bad_vip);
    fails(&["-A", "-t", "nonexistent.invalid:80"], bad_vip);
    fails(&["-A", "--tcp-service="], bad_vip);
    fails(
        &["-a", "-t", "1.2.3.4:80", "-r", "1.1.1.1:99999"],
        "illegal real server address[:port] specified",
    );
    // Before -t there is no protocol to look the port name up in.
    fails(
        &["-a", "-r", "2.2.2.2:http", "-t", "1.1.1.1:80"],
        "illegal real server address[:port] specified",
    );
    fails(&["-A", "-f", "0"], "invalid fwmark value `0' specified");
    fails(
        &["-A", "-f", "4294967296"],
        "invalid fwmark value `4294967296' specified",
    );
    fails(&["-A", "-f", "0x5"], "invalid fwmark value `0x5' specified");
}

#[test]
fn weight_and_threshold_ranges() {
    fails(
        &["-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-w", "65536"],
        "illegal weight specified",
    );
    fails(
        &["-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-w", "-1"],
        "illegal weight specified",
    );
    fails(
        &["-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-w", "1x"],
        "illegal weight specified",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "5.6.7.8",
            "-x",
            "2147483648",
        ],
        "illegal u_threshold specified",
    );
    fails(
        &["-a", "-t", "1.2.3.4:80", "-r", "5.6.7.8", "-y", "x"],
        "illegal l_threshold specified",
    );
}

#[test]
fn timeouts() {
    fails(
        &["-A", "-t", "1.2.3.4:80", "-p", "0"],
        "invalid timeout value `0' specified",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "-p", "2678401"],
        "invalid timeout value `2678401' specified",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "--persistent="],
        "invalid timeout value `' specified",
    );
    fails(
        &["--set", "1", "2"],
        "--set option requires 3 timeout values",
    );
    fails(
        &["--set", "1", "2", "x"],
        "invalid timeout value `x' specified",
    );
    fails(
        &["--set", "1", "2", "2678401"],
        "invalid timeout value `2678401' specified",
    );
    fails(&["--set", "1", "2", "3", "4"], "unexpected argument 4");
}

#[test]
fn unexpected_arguments() {
    fails(
        &["-A", "-t", "1.2.3.4:80", "extra"],
        "unexpected argument extra",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "--", "-s", "rr"],
        "unexpected argument -s",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "#", "comment"],
        "unexpected argument #",
    );
    fails(&["-", "-L"], "unexpected argument -");
}

#[test]
fn zero_port_needs_persistence() {
    fails(
        &["-A", "-t", "1.2.3.4:0"],
        "Zero port specified for non-persistent service",
    );
    fails(
        &["-E", "-u", "1.2.3.4"],
        "Zero port specified for non-persistent service",
    );
}

#[test]
fn one_packet_scheduling_only_for_udp_or_fwmark() {
    fails(
        &["-A", "-t", "1.2.3.4:80", "-o"],
        "One-Packet Scheduling is only for UDP virtual services",
    );
    fails(
        &["-A", "--sctp-service", "1.2.3.4:80", "--ops"],
        "One-Packet Scheduling is only for UDP virtual services",
    );
    assert!(add_service(ok(&["-A", "-f", "1", "-o"])).ops);
}

#[test]
fn scheduler_flags_must_suit_the_scheduler() {
    fails(
        &["-A", "-f", "5", "-b", "sh-port"],
        "incompatible scheduler flag `sh-port'",
    );
    fails(
        &[
            "-A",
            "-t",
            "1.2.3.4:80",
            "-s",
            "mh",
            "-b",
            "mh-fallback,sh-port",
        ],
        "incompatible scheduler flag `sh-port'",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "-b", "foo"],
        "invalid scheduler flag `foo'",
    );
    fails(
        &["-A", "-t", "1.2.3.4:80", "-b", ","],
        "invalid scheduler flag `,'",
    );
}

#[test]
fn ipv6_flag_only_after_fwmark() {
    assert_eq!(
        err(&["-A", "-6", "-f", "5"]),
        ("-6 used before -f\n\n".into(), 2)
    );
    assert_eq!(err(&["-Ln6"]), ("-6 used before -f\n\n".into(), 2));
    assert_eq!(
        err(&["-A", "-t", "1.2.3.4:80", "-6"]),
        ("-6 used before -f\n\n".into(), 2)
    );
}

#[test]
fn netmask_errors() {
    fails(
        &["-A", "-t", "1.2.3.4:80", "-M", "foo.invalid"],
        "illegal virtual server persistent mask specified",
    );
    fails(
        &["-A", "-t", "[2001:db8::1]:80", "-M", "129"],
        "illegal ipv6 netmask specified",
    );
    fails(
        &["-A", "-t", "[2001:db8::1]:80", "-M", "abc"],
        "illegal ipv6 netmask specified",
    );
    // rvs keeps masks as prefixes: a mask with holes is refused.
    fails(
        &["-A", "-t", "1.2.3.4:80", "-p", "-M", "255.0.255.0"],
        "illegal virtual server persistent mask specified",
    );
}

#[test]
fn family_mixing_only_for_tunnels() {
    fails(
        &["-a", "-t", "1.2.3.4:80", "-r", "::1", "-m"],
        "Different address family is allowed only for tunneling servers",
    );
    fails(
        &["-a", "-f", "3", "-r", "2.2.2.2", "-6"],
        "Different address family is allowed only for tunneling servers",
    );
    assert_eq!(
        add_dest(ok(&["-a", "-t", "1.2.3.4:80", "-r", "::1", "-i"]))
            .1
            .addr,
        ip("::1")
    );
}

#[test]
fn tunnel_option_rules() {
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "--tun-type",
            "gue",
        ],
        "Tunnel options conflict with forward method",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-m",
            "--tun-csum",
        ],
        "Tunnel options conflict with forward method",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-type",
            "gue",
        ],
        "You need to supply the 'tun-port' option for the 'gue' tunnel type",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-port",
            "5",
        ],
        "Illegal 'tun-port' option with the 'ipip' tunnel type",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-type",
            "gre",
            "--tun-port",
            "5",
        ],
        "Illegal 'tun-port' option with the 'gre' tunnel type",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-type",
            "gre",
            "--tun-remcsum",
        ],
        "Illegal 'tun-remcsum' option with the 'gre' tunnel type",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-csum",
        ],
        "Illegal 'tun-csum' option with the 'ipip' tunnel type",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-type",
            "gue",
            "--tun-port",
            "6080",
            "--tun-csum",
            "--tun-remcsum",
        ],
        "The option 'tun-remcsum' conflicts with the 'tun-csum' option in the 'gue' tunnel type",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-type",
            "vxlan",
        ],
        "illegal tunnel type specified",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-type",
            "gue",
            "--tun-port",
            "0",
        ],
        "illegal tunnel port specified",
    );
    fails(
        &[
            "-a",
            "-t",
            "1.2.3.4:80",
            "-r",
            "1.1.1.1",
            "-i",
            "--tun-type",
            "gue",
            "--tun-port",
            "65536",
        ],
        "illegal tunnel port specified",
    );
}

#[test]
fn list_option_conflicts() {
    fails(
        &["-L", "-c", "--stats"],
        "options conflicts in the list command",
    );
    fails(
        &["-L", "--timeout", "--rate"],
        "options conflicts in the list command",
    );
    fails(
        &["-L", "--daemon", "--thresholds"],
        "options conflicts in the list command",
    );
    fails(
        &["-L", "--timeout", "--persistent-conn"],
        "options conflicts in the list command",
    );
    fails(
        &["-L", "-c", "--timeout"],
        "The option 'timeout' conflicts with the 'connection' option in the 'list' command",
    );
    fails(
        &["-L", "--daemon", "-t", "1.2.3.4:80"],
        "The option 'daemon' conflicts with the 'service-address' option in the 'list' command",
    );
    fails(
        &["-L", "-c", "-t", "1.1.1.1:80"],
        "The option 'service-address' conflicts with the 'connection' option in the 'list' command",
    );
}

#[test]
fn daemon_argument_errors() {
    fails(
        &["--start-daemon", "foo"],
        "illegal start-daemon parameter specified",
    );
    fails(&["--stop-daemon", "foo"], "illegal start_daemon specified");
    fails(
        &["--start-daemon", "master", "--syncid", "256"],
        "illegal syncid specified",
    );
    fails(
        &["--start-daemon", "master", "--mcast-group", "1.2.3.4"],
        "invalid IPv4 mcast-group `1.2.3.4'",
    );
    fails(
        &["--start-daemon", "master", "--mcast-group", "2001:db8::1"],
        "invalid IPv6 mcast-group `2001:db8::1'",
    );
    fails(
        &["--start-daemon", "master", "--mcast-port", "0"],
        "illegal mcast-port specified",
    );
    fails(
        &["--start-daemon", "master", "--mcast-ttl", "256"],
        "illegal mcast-ttl specified",
    );
    fails(
        &["--start-daemon", "master", "--sync-maxlen", "65508"],
        "illegal sync-maxlen specified",
    );
}

#[test]
fn errors_carry_ipvsadm_exit_statuses() {
    assert_eq!(CliError::fail("x").exit_status(), 2);
    assert_eq!(CliError::TryHelp.exit_status(), 255);
}

#[test]
fn drain_and_undrain_are_commands_without_options() {
    use rvs_api::{ApiError, Reply, Request};
    use rvs_ipvsadm::{render, requests, NoNames};
    assert_eq!(ok(&["--drain"]), Command::Drain { drain: true });
    assert_eq!(ok(&["--undrain"]), Command::Drain { drain: false });
    assert_eq!(
        requests(&ok(&["--undrain"])),
        [Request::Drain { drain: false }]
    );
    fails(
        &["--drain", "-t", "1.2.3.4:80"],
        "Illegal 'service-address' option with the 'drain' command",
    );
    fails(
        &["--undrain", "-n"],
        "Illegal 'numeric' option with the 'undrain' command",
    );
    let cmd = ok(&["--drain"]);
    assert_eq!(render(&cmd, &[Reply::Ok], &NoNames).status, 0);
    // an rvsd that announces nothing refuses with its reason, as changes are refused
    let refused = Reply::Error(ApiError {
        errno: None,
        message: "this rvsd announces no addresses".into(),
        refused: true,
    });
    let out = render(&cmd, &[refused], &NoNames);
    assert_eq!(
        (out.stderr.as_str(), out.status),
        ("this rvsd announces no addresses\n", 255)
    );
}
