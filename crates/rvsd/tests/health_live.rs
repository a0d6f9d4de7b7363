//! Checkers against real servers on loopback that the tests start, stop and restart.
//! Timers are short (delay_loop 0.3 s) so the suite is quick; every wait is bounded.
//! Detection figures are printed (`cargo test -- --nocapture`).

mod health_lab;

use health_lab::*;
use std::net::SocketAddr;
use std::time::Duration;

/// keepalived.md §7 bound: delay_loop × (retry + 1) + connect_timeout.
fn removal_bound(delay_loop: f64, retry: u32, connect_timeout: f64) -> Duration {
    Duration::from_secs_f64(delay_loop * f64::from(retry + 1) + connect_timeout)
}

/// A generous margin for a loaded 2-core machine.
const MARGIN: Duration = Duration::from_millis(700);

fn tcp_conf(vip: &str, rs: &[(SocketAddr, u32)], extra_rs: &str, extra_vs: &str) -> String {
    let mut s = format!(
        "virtual_server {vip} 80 {{\n protocol TCP\n lb_kind NAT\n lb_algo wrr\n delay_loop 0.3\n warmup 0\n {extra_vs}\n"
    );
    for (a, w) in rs {
        s.push_str(&format!(
            " real_server {} {} {{\n  weight {w}\n  {extra_rs}\n  TCP_CHECK {{\n   connect_timeout 0.5\n   delay_before_retry 0.2\n  }}\n }}\n",
            a.ip(),
            a.port()
        ));
    }
    s.push_str("}\n");
    s
}

#[tokio::test]
async fn tcp_check_removes_a_dead_server_and_restores_its_weight() {
    let mut rs1 = RealServer::tcp("127.0.10.1").await;
    let rs2 = RealServer::tcp("127.0.10.2").await;
    let cfg = config(&tcp_conf(
        "127.0.10.100",
        &[(rs1.addr, 3), (rs2.addr, 1)],
        "",
        "",
    ));
    let lab = Lab::start(&cfg).await;
    let svc = "tcp 127.0.10.100:80";
    assert_eq!(lab.dests(svc), vec![(rs1.addr, 3), (rs2.addr, 1)]);
    // Let the checkers run once healthy.
    wait_for("a first success", Duration::from_secs(2), || {
        lab.sup.status().iter().all(|s| s.up && s.failures == 0)
    })
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;

    rs1.stop().await;
    let took = wait_for("rs1 removed", Duration::from_secs(5), || {
        lab.weight(svc, rs1.addr).is_none()
    })
    .await;
    let bound = removal_bound(0.3, 1, 0.5);
    eprintln!("TCP_CHECK removal: {took:?} (bound {bound:?})");
    assert!(
        took <= bound + MARGIN,
        "removal took {took:?}, bound {bound:?}"
    );
    assert_eq!(
        lab.weight(svc, rs2.addr),
        Some(1),
        "the healthy server stays"
    );
    let st = lab.sup.status();
    let s1 = st.iter().find(|s| s.addr == rs1.addr.ip()).unwrap();
    assert!(!s1.up);
    assert!(s1.failures >= 2);
    assert!(
        s1.last_error
            .as_deref()
            .unwrap()
            .contains("Connection refused"),
        "{s1:?}"
    );

    rs1.start().await;
    let took = wait_for("rs1 back", Duration::from_secs(3), || {
        lab.weight(svc, rs1.addr) == Some(3)
    })
    .await;
    eprintln!("TCP_CHECK recovery: {took:?} (delay_loop 0.3 s)");
    assert!(took <= Duration::from_millis(300) + MARGIN);
}

#[tokio::test]
async fn inhibit_on_failure_keeps_the_server_with_weight_zero() {
    let mut rs1 = RealServer::tcp("127.0.11.1").await;
    let cfg = config(&tcp_conf(
        "127.0.11.100",
        &[(rs1.addr, 4)],
        "inhibit_on_failure",
        "",
    ));
    let lab = Lab::start(&cfg).await;
    let svc = "tcp 127.0.11.100:80";
    rs1.stop().await;
    wait_for("weight 0", Duration::from_secs(5), || {
        lab.weight(svc, rs1.addr) == Some(0)
    })
    .await;
    rs1.start().await;
    wait_for("weight 4 again", Duration::from_secs(3), || {
        lab.weight(svc, rs1.addr) == Some(4)
    })
    .await;
}

/// A loopback listener that never accepts, its backlog full: further connects hang in
/// SYN-SENT, as towards a dead host (no packet leaves loopback).
async fn blackhole(
    ip: &str,
) -> (
    SocketAddr,
    tokio::net::TcpListener,
    Vec<tokio::net::TcpStream>,
) {
    let sock = tokio::net::TcpSocket::new_v4().unwrap();
    sock.bind(SocketAddr::new(ip.parse().unwrap(), 0)).unwrap();
    let l = sock.listen(0).unwrap();
    let addr = l.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..8 {
        match tokio::time::timeout(
            Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            Ok(Ok(s)) => held.push(s),
            _ => break,
        }
    }
    (addr, l, held)
}

#[tokio::test]
async fn connect_timeout_bounds_a_silent_server() {
    let (addr, _l, _held) = blackhole("127.0.12.1").await;
    let cfg = config(&format!(
        "virtual_server 127.0.12.100 80 {{\n protocol TCP\n lb_kind NAT\n delay_loop 0.3\n warmup 0\n\
         real_server {} {} {{\n  TCP_CHECK {{\n   connect_timeout 0.4\n  }}\n }}\n}}\n",
        addr.ip(),
        addr.port()
    ));
    let lab = Lab::start(&cfg).await;
    assert_eq!(lab.dests("tcp 127.0.12.100:80").len(), 1);
    let took = wait_for("silent server removed", Duration::from_secs(5), || {
        lab.dests("tcp 127.0.12.100:80").is_empty()
    })
    .await;
    eprintln!("TCP_CHECK silent server (connect_timeout 0.4 s), first check: {took:?}");
    // First check: bootstrap (20 ms) + connect_timeout; one failure is enough initially.
    assert!(took >= Duration::from_millis(400), "{took:?}");
    assert!(took <= Duration::from_millis(400) + MARGIN, "{took:?}");
    let e = lab.sup.status()[0].last_error.clone().unwrap_or_default();
    assert!(e.contains("timeout connecting"), "{e}");
}

fn http_conf(vip: &str, rs: SocketAddr, url: &str, extra: &str) -> String {
    format!(
        "virtual_server {vip} 80 {{\n protocol TCP\n lb_kind NAT\n delay_loop 0.3\n warmup 0\n\
         real_server {} {} {{\n  weight 2\n  HTTP_GET {{\n   url {{\n {url}\n   }}\n   connect_timeout 0.5\n   delay_before_retry 0.2\n {extra}\n  }}\n }}\n}}\n",
        rs.ip(),
        rs.port()
    )
}

#[tokio::test]
async fn http_status_mismatch_takes_the_server_down() {
    let rs = RealServer::http("127.0.13.1", 200, b"hello").await;
    let cfg = config(&http_conf(
        "127.0.13.100",
        rs.addr,
        "path /health\n status_code 200-204",
        "virtualhost www.test.invalid",
    ));
    let lab = Lab::start(&cfg).await;
    let svc = "tcp 127.0.13.100:80";
    wait_for("a request", Duration::from_secs(2), || {
        !rs.requests.lock().unwrap().is_empty()
    })
    .await;
    let req = rs.requests.lock().unwrap()[0].clone();
    assert!(req.starts_with("GET /health HTTP/1.0\r\n"), "{req}");
    assert!(req.contains("User-Agent: KeepAliveClient\r\n"), "{req}");
    assert!(req.contains("Host: www.test.invalid\r\n"), "{req}");
    assert_eq!(lab.weight(svc, rs.addr), Some(2));

    rs.reply.lock().unwrap().as_mut().unwrap().status = 503;
    let took = wait_for("down on 503", Duration::from_secs(5), || {
        lab.weight(svc, rs.addr).is_none()
    })
    .await;
    eprintln!("HTTP_GET status 503 removal: {took:?}");
    assert!(took <= removal_bound(0.3, 1, 0.5) + MARGIN);
    let st = lab.sup.status();
    assert!(
        st[0]
            .last_error
            .as_deref()
            .unwrap()
            .contains("HTTP status code 503"),
        "{st:?}"
    );

    rs.reply.lock().unwrap().as_mut().unwrap().status = 204;
    wait_for("up on 204", Duration::from_secs(3), || {
        lab.weight(svc, rs.addr) == Some(2)
    })
    .await;
}

#[tokio::test]
async fn http_digest_mismatch_takes_the_server_down() {
    // md5("hello") = 5d41402abc4b2a76b9719d911017c592
    let rs = RealServer::http("127.0.14.1", 200, b"hello").await;
    let cfg = config(&http_conf(
        "127.0.14.100",
        rs.addr,
        "path /\n digest 5d41402abc4b2a76b9719d911017c592",
        "http_protocol 1.1",
    ));
    let lab = Lab::start(&cfg).await;
    let svc = "tcp 127.0.14.100:80";
    wait_for("two good checks", Duration::from_secs(3), || {
        rs.requests.lock().unwrap().len() >= 2
    })
    .await;
    assert_eq!(lab.weight(svc, rs.addr), Some(2));
    let req = rs.requests.lock().unwrap()[0].clone();
    assert!(
        req.starts_with("GET / HTTP/1.1\r\n") && req.contains("Connection: close\r\n"),
        "{req}"
    );
    assert!(req.contains(&format!("Host: {}\r\n", rs.addr)), "{req}");

    rs.reply.lock().unwrap().as_mut().unwrap().body = b"HELLO".to_vec();
    wait_for("down on digest mismatch", Duration::from_secs(5), || {
        lab.weight(svc, rs.addr).is_none()
    })
    .await;
    assert!(lab.sup.status()[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("MD5 digest mismatch"));
    rs.reply.lock().unwrap().as_mut().unwrap().body = b"hello".to_vec();
    wait_for("up again", Duration::from_secs(3), || {
        lab.weight(svc, rs.addr) == Some(2)
    })
    .await;
}

#[tokio::test]
async fn dns_check_against_a_udp_responder() {
    let dns = DnsServer::start("127.0.15.1").await;
    let cfg = config(&format!(
        "virtual_server 127.0.15.100 53 {{\n protocol UDP\n lb_kind NAT\n delay_loop 0.3\n warmup 0\n\
         real_server {} {} {{\n  DNS_CHECK {{\n   type A\n   name www.example.invalid\n   connect_timeout 0.3\n   retry 1\n   delay_before_retry 0.1\n  }}\n }}\n}}\n",
        dns.addr.ip(),
        dns.addr.port()
    ));
    let lab = Lab::start(&cfg).await;
    let svc = "udp 127.0.15.100:53";
    wait_for("answers", Duration::from_secs(3), || {
        dns.answered.load(std::sync::atomic::Ordering::SeqCst) >= 2
    })
    .await;
    assert_eq!(lab.weight(svc, dns.addr), Some(1));
    let q = dns.last_query.lock().unwrap().clone();
    assert_eq!(q[2] & 0x01, 0x01, "RD set");
    assert_eq!(
        &q[12..],
        b"\x03www\x07example\x07invalid\x00\x00\x01\x00\x01"
    );

    dns.rcode.store(2, std::sync::atomic::Ordering::SeqCst); // SERVFAIL
    wait_for("down on SERVFAIL", Duration::from_secs(3), || {
        lab.weight(svc, dns.addr).is_none()
    })
    .await;
    assert!(lab.sup.status()[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("rcode 2"));
    dns.rcode.store(0, std::sync::atomic::Ordering::SeqCst);
    wait_for("up again", Duration::from_secs(3), || {
        lab.weight(svc, dns.addr) == Some(1)
    })
    .await;
    dns.rcode.store(255, std::sync::atomic::Ordering::SeqCst); // silence
    wait_for("down on silence", Duration::from_secs(3), || {
        lab.weight(svc, dns.addr).is_none()
    })
    .await;
    assert!(lab.sup.status()[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("timeout"));
}

#[tokio::test]
async fn notify_scripts_get_their_configured_arguments() {
    let sc = Scripts::new();
    let log = sc.path("notify.log");
    let notify = sc.script("notify.sh", &format!("echo \"$@\" >> {log}"));
    let mut rs = RealServer::tcp("127.0.16.1").await;
    let cfg = config(&tcp_conf(
        "127.0.16.100",
        &[(rs.addr, 1)],
        &format!("notify_up \"{notify} UP 'rs one'\"\n notify_down \"{notify} DOWN 'rs one'\""),
        "",
    ));
    let lab = Lab::start(&cfg).await;
    rs.stop().await;
    wait_for("notify_down ran", Duration::from_secs(5), || {
        sc.read("notify.log").contains("DOWN")
    })
    .await;
    rs.start().await;
    wait_for("notify_up ran", Duration::from_secs(5), || {
        sc.read("notify.log").contains("UP")
    })
    .await;
    assert_eq!(sc.read("notify.log"), "DOWN rs one\nUP rs one\n");
    drop(lab);
}

#[tokio::test]
async fn quorum_loss_brings_in_the_sorry_server_and_runs_quorum_scripts() {
    let sc = Scripts::new();
    let log = sc.path("quorum.log");
    let q = sc.script("q.sh", &format!("echo \"$1\" >> {log}"));
    let mut rs1 = RealServer::tcp("127.0.17.1").await;
    let mut rs2 = RealServer::tcp("127.0.17.2").await;
    let sorry: SocketAddr = "127.0.17.250:8080".parse().unwrap();
    let cfg = config(&tcp_conf(
        "127.0.17.100",
        &[(rs1.addr, 1), (rs2.addr, 1)],
        "",
        &format!(
            "quorum 2\n sorry_server {} {}\n quorum_up \"{q} up\"\n quorum_down \"{q} down\"",
            sorry.ip(),
            sorry.port()
        ),
    ));
    let lab = Lab::start(&cfg).await;
    let svc = "tcp 127.0.17.100:80";
    wait_for("quorum_up at start", Duration::from_secs(3), || {
        sc.read("quorum.log") == "up\n"
    })
    .await;
    rs1.stop().await;
    wait_for("sorry server alone", Duration::from_secs(5), || {
        lab.dests(svc) == vec![(sorry, 1)]
    })
    .await;
    wait_for("quorum_down ran", Duration::from_secs(3), || {
        sc.read("quorum.log") == "up\ndown\n"
    })
    .await;
    rs2.stop().await;
    rs1.start().await;
    rs2.start().await;
    wait_for("pool back, sorry gone", Duration::from_secs(5), || {
        lab.dests(svc) == {
            let mut v = vec![(rs1.addr, 1), (rs2.addr, 1)];
            v.sort();
            v
        }
    })
    .await;
    wait_for("quorum_up ran", Duration::from_secs(3), || {
        sc.read("quorum.log") == "up\ndown\nup\n"
    })
    .await;
}

#[tokio::test]
async fn reload_keeps_checker_state_and_only_changes_what_changed() {
    let mut rs1 = RealServer::tcp("127.0.18.1").await;
    let rs2 = RealServer::tcp("127.0.18.2").await;
    let rs3 = RealServer::tcp("127.0.18.3").await;
    let svc = "tcp 127.0.18.100:80";
    let cfg1 = config(&tcp_conf(
        "127.0.18.100",
        &[(rs1.addr, 1), (rs2.addr, 1)],
        "",
        "",
    ));
    let lab = Lab::start(&cfg1).await;
    rs1.stop().await;
    wait_for("rs1 down", Duration::from_secs(5), || {
        lab.weight(svc, rs1.addr).is_none()
    })
    .await;
    let rs2_id = lab.dest_id(svc, rs2.addr).unwrap();
    let ids_before: Vec<_> = lab.sup.status();

    // rs2's weight changes, rs3 is new, rs1 (down) is unchanged.
    let cfg2 = config(&tcp_conf(
        "127.0.18.100",
        &[(rs1.addr, 1), (rs2.addr, 5), (rs3.addr, 2)],
        "",
        "",
    ));
    let report = lab.sup.reload(&cfg2).await;
    assert_eq!(report.kept.len(), 2, "{report:?}");
    assert_eq!(report.started.len(), 1);
    assert!(report.stopped.is_empty());
    assert_eq!(
        lab.weight(svc, rs1.addr),
        None,
        "a down server stays down across a reload"
    );
    assert_eq!(lab.weight(svc, rs2.addr), Some(5));
    assert_eq!(
        lab.dest_id(svc, rs2.addr),
        Some(rs2_id),
        "edited in place, not re-added"
    );
    assert_eq!(lab.weight(svc, rs3.addr), Some(2));
    let after = lab.sup.status();
    let rs1_before = ids_before.iter().find(|s| s.addr == rs1.addr.ip()).unwrap();
    let rs1_after = after.iter().find(|s| s.addr == rs1.addr.ip()).unwrap();
    assert!(
        !rs1_after.up && rs1_after.failures >= rs1_before.failures,
        "state kept"
    );
    assert_eq!(lab.sup.running(), 3);

    rs1.start().await;
    wait_for("rs1 back after reload", Duration::from_secs(3), || {
        lab.weight(svc, rs1.addr) == Some(1)
    })
    .await;

    // Removing rs3 and the virtual server's scheduler change.
    let cfg3 = config(
        &tcp_conf("127.0.18.100", &[(rs1.addr, 1), (rs2.addr, 5)], "", "").replace("wrr", "rr"),
    );
    let report = lab.sup.reload(&cfg3).await;
    assert_eq!(report.stopped.len(), 1);
    assert_eq!(lab.weight(svc, rs3.addr), None);
    assert_eq!(lab.dest_id(svc, rs2.addr), Some(rs2_id));
    let t = lab.shared.table();
    let sid = t.service_id(&service_key(svc)).unwrap();
    assert_eq!(t.service(sid).unwrap().cfg.scheduler, "rr");
}

#[tokio::test]
async fn connect_ip_connect_port_and_bindto_shape_the_probe() {
    // The real server's own address has nothing listening; the checker probes another
    // address and port, from a chosen source address.
    let target = RealServer::tcp("127.0.19.2").await;
    let cfg = config(&format!(
        "virtual_server 127.0.19.100 80 {{\n protocol TCP\n lb_kind DR\n delay_loop 0.3\n warmup 0\n\
         real_server 127.0.19.1 80 {{\n  TCP_CHECK {{\n   connect_ip {}\n   connect_port {}\n   bindto 127.0.19.77\n  }}\n }}\n}}\n",
        target.addr.ip(),
        target.addr.port()
    ));
    let lab = Lab::start(&cfg).await;
    wait_for("two probes", Duration::from_secs(3), || {
        target.peers.lock().unwrap().len() >= 2
    })
    .await;
    assert!(target
        .peers
        .lock()
        .unwrap()
        .iter()
        .all(|p| p.ip().to_string() == "127.0.19.77"));
    assert_eq!(
        lab.weight("tcp 127.0.19.100:80", "127.0.19.1:80".parse().unwrap()),
        Some(1)
    );
}
