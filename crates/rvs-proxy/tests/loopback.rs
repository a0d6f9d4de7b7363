//! The proxy data plane end to end on loopback (no root needed): real sockets, a real
//! table, real servers started by the test. Every wait is bounded.

use rvs_core::{
    DestConfig, Dir, Forward, Packet, Protocol, ServiceConfig, ServiceKey, Table, TcpFlags, Verdict,
};
use rvs_dataplane::{DataPlane, Shared};
use rvs_proxy::{Proxy, ProxyOptions, Transfer};
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream, UdpSocket};
use tokio::task::JoinHandle;
use tokio::time::timeout;

const T: Duration = Duration::from_secs(10);

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

/// A VIP of its own for each test: 127.0.0.0/8 is all local, and the proxy binds with
/// SO_REUSEPORT, so two tests sharing an address and port would share connections. The
/// process id keeps parallel test processes apart too.
fn unique_vip() -> SocketAddr {
    use std::sync::atomic::{AtomicU8, Ordering};
    static NEXT: AtomicU8 = AtomicU8::new(1);
    let pid = std::process::id();
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let addr = std::net::Ipv4Addr::new(127, 10 + (pid % 200) as u8, n, 1);
    SocketAddr::new(addr.into(), 20_000 + (pid % 20_000) as u16)
}

/// A real server that answers each connection with its name, then echoes everything until
/// the client half-closes, then closes.
async fn name_server(name: &'static str) -> (SocketAddr, JoinHandle<()>) {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    let h = tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let _ = s.write_all(name.as_bytes()).await;
                let _ = s.write_all(b"\n").await;
                let mut buf = vec![0u8; 65536];
                loop {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => {
                            if s.write_all(&buf[..n]).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let _ = s.shutdown().await;
            });
        }
    });
    (addr, h)
}

struct Lab {
    shared: Arc<Shared>,
    proxy: Proxy,
    key: ServiceKey,
    vip: SocketAddr,
}

impl Lab {
    fn new(sched: &str, persistent: Option<u32>, transfer: Transfer) -> Lab {
        let vip = unique_vip();
        let port = vip.port();
        let key = ServiceKey::Addr {
            proto: Protocol::Tcp,
            addr: vip.ip(),
            port,
        };
        let mut cfg = ServiceConfig::new(key).with_scheduler(sched);
        cfg.persistence = persistent;
        let mut table = Table::new();
        table.add_service(cfg).unwrap();
        let shared = Arc::new(Shared::new(table));
        let proxy = Proxy::new(
            shared.clone(),
            ProxyOptions {
                transfer,
                connect_timeout: Duration::from_secs(2),
                ..ProxyOptions::default()
            },
        );
        let lab = Lab {
            shared,
            proxy,
            key,
            vip,
        };
        lab.sync();
        lab
    }

    fn sync(&self) {
        let t = self.shared.table();
        self.proxy.sync(&t);
    }

    fn add(&self, server: SocketAddr, weight: u32) {
        self.shared
            .table()
            .add_dest(
                &self.key,
                DestConfig::new(server.ip(), server.port())
                    .with_weight(weight)
                    .with_forward(Forward::Masq),
            )
            .unwrap();
        self.sync();
    }

    fn set_weight(&self, server: SocketAddr, weight: u32) {
        self.shared
            .table()
            .set_weight(&self.key, server.ip(), server.port(), weight)
            .unwrap();
        self.sync();
    }

    fn remove(&self, server: SocketAddr) {
        self.shared
            .table()
            .del_dest(&self.key, server.ip(), server.port())
            .unwrap();
        self.sync();
    }

    /// Connects (retrying while the listener comes up) and reads the server's name line.
    async fn open(&self) -> (TcpStream, String) {
        let mut s = None;
        for _ in 0..100 {
            match TcpStream::connect(self.vip).await {
                Ok(c) => {
                    s = Some(c);
                    break;
                }
                Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                    tokio::time::sleep(Duration::from_millis(20)).await
                }
                Err(e) => panic!("connect to the proxy: {e}"),
            }
        }
        let mut s = s.expect("proxy listens within 2 s");
        let name = read_line(&mut s).await;
        (s, name)
    }

    fn counts(&self, server: SocketAddr) -> (u32, u32) {
        let t = self.shared.table();
        let sid = t.service_id(&self.key).unwrap();
        let d = t.find_dest(sid, server.ip(), server.port()).unwrap();
        let d = t.dest(d).unwrap();
        (d.activeconns, d.inactconns)
    }
}

async fn read_line(s: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut b = [0u8; 1];
    timeout(T, async {
        loop {
            match s.read(&mut b).await {
                Ok(1) if b[0] != b'\n' => out.push(b[0]),
                _ => break,
            }
        }
    })
    .await
    .expect("server name within 10 s");
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rr_and_wrr_picks_through_the_proxy_match_the_core() {
    for (sched, weights) in [("rr", [1u32, 1, 1]), ("wrr", [4, 3, 2])] {
        let lab = Lab::new(sched, None, Transfer::Copy);
        let (a, _ha) = name_server("A").await;
        let (b, _hb) = name_server("B").await;
        let (c, _hc) = name_server("C").await;
        // Add C, B, A so that A is first in list order.
        lab.add(c, weights[2]);
        lab.add(b, weights[1]);
        lab.add(a, weights[0]);

        // The reference: the same service in a bare core table, fed SYNs.
        let mut reference = Table::new();
        reference
            .add_service(ServiceConfig::new(lab.key).with_scheduler(sched))
            .unwrap();
        for (s, w) in [(c, weights[2]), (b, weights[1]), (a, weights[0])] {
            reference
                .add_dest(&lab.key, DestConfig::new(s.ip(), s.port()).with_weight(w))
                .unwrap();
        }
        let name_of = |addr: IpAddr, port: u16| -> &'static str {
            let sa = SocketAddr::new(addr, port);
            if sa == a {
                "A"
            } else if sa == b {
                "B"
            } else {
                "C"
            }
        };
        let mut got = Vec::new();
        let mut want = Vec::new();
        for i in 0..9u16 {
            let (mut s, name) = lab.open().await;
            got.push(name);
            let syn = Packet::tcp(
                ip("1.1.1.1"),
                1000 + i,
                lab.vip.ip(),
                lab.vip.port(),
                TcpFlags::SYN,
                60,
            );
            match reference.process(0, &syn, Dir::In) {
                Verdict::Forward(f) => want.push(name_of(f.daddr, f.dport).to_string()),
                v => panic!("{v:?}"),
            }
            s.shutdown().await.unwrap();
        }
        assert_eq!(got, want, "{sched}");
        // Over one period (the sum of weights) each server is picked weight times.
        for (name, w) in [("A", weights[0]), ("B", weights[1]), ("C", weights[2])] {
            let n = got.iter().filter(|g| *g == name).count() as u32;
            assert_eq!(
                n,
                if sched == "wrr" { w } else { 3 },
                "{sched} {name}: {got:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn least_connection_follows_open_connections() {
    let lab = Lab::new("lc", None, Transfer::Copy);
    let (a, _ha) = name_server("A").await;
    let (b, _hb) = name_server("B").await;
    lab.add(b, 1);
    lab.add(a, 1);
    // Ties go to the newest (A); then the one with fewer active connections.
    let (_s1, n1) = lab.open().await;
    let (_s2, n2) = lab.open().await;
    let (_s3, n3) = lab.open().await;
    assert_eq!((n1.as_str(), n2.as_str(), n3.as_str()), ("A", "B", "A"));
    assert_eq!(lab.counts(a), (2, 0));
    assert_eq!(lab.counts(b), (1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn half_close_and_byte_exact_transfer_both_ways() {
    for transfer in [Transfer::Copy, Transfer::Splice] {
        let lab = Lab::new("rr", None, transfer);
        let (a, _ha) = name_server("A").await;
        lab.add(a, 1);
        let (s, name) = lab.open().await;
        assert_eq!(name, "A");
        // 8 MiB of a non-repeating pattern up; the server echoes it down.
        let payload: Vec<u8> = (0..8u32 << 20)
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let (mut r, mut w) = s.into_split();
        let up = payload.clone();
        let writer = tokio::spawn(async move {
            w.write_all(&up).await.unwrap();
            w.shutdown().await.unwrap(); // half-close: the echo must still come back
        });
        let mut back = Vec::new();
        timeout(T, r.read_to_end(&mut back)).await.unwrap().unwrap();
        writer.await.unwrap();
        assert_eq!(back.len(), payload.len(), "{transfer:?}");
        assert!(back == payload, "{transfer:?}: echoed bytes differ");
        // Both FINs seen: the entry is inactive (TIME_WAIT) and the bytes are counted.
        let t0 = std::time::Instant::now();
        while lab.counts(a) != (0, 1) && t0.elapsed() < T {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(lab.counts(a), (0, 1));
        let t = lab.shared.table();
        let s = &t.snapshot()[0];
        assert_eq!(s.stats.conns, 1);
        assert_eq!(s.stats.inbytes, payload.len() as u64);
        assert_eq!(s.stats.outbytes, payload.len() as u64 + 2);
        assert!(s.stats.inpkts > 0 && s.stats.outpkts > 0);
        let conns = t.conn_snapshot(lab.shared.now());
        assert_eq!(conns[0].state, "TIME_WAIT");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weight_zero_drains_and_removal_resets() {
    let lab = Lab::new("rr", None, Transfer::Copy);
    let (a, _ha) = name_server("A").await;
    let (b, _hb) = name_server("B").await;
    lab.add(b, 1);
    lab.add(a, 1);
    let (mut on_a, n) = lab.open().await;
    assert_eq!(n, "A");
    lab.set_weight(a, 0);
    for _ in 0..4 {
        let (_s, n) = lab.open().await;
        assert_eq!(n, "B", "a quiesced server gets no new connections");
    }
    // The established connection to A still works.
    on_a.write_all(b"ping").await.unwrap();
    let mut buf = [0u8; 4];
    timeout(T, on_a.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"ping");
    // Deleting A resets its connections; B's are untouched.
    let (mut on_b, n) = lab.open().await;
    assert_eq!(n, "B");
    lab.remove(a);
    let mut rest = Vec::new();
    let r = timeout(T, on_a.read_to_end(&mut rest)).await.unwrap();
    assert!(
        r.is_err() || rest.is_empty(),
        "connection to a deleted server ends"
    );
    on_b.write_all(b"pong").await.unwrap();
    timeout(T, on_b.read_exact(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(&buf, b"pong");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_killed_mid_stream_costs_only_its_connections() {
    let lab = Lab::new("rr", None, Transfer::Copy);
    // A server we can kill: it accepts, names itself, then we drop its sockets with RST.
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dying = l.local_addr().unwrap();
    let (b, _hb) = name_server("B").await;
    lab.add(b, 1);
    lab.add(dying, 1);
    let killer = tokio::spawn(async move {
        let (mut s, _) = l.accept().await.unwrap();
        s.write_all(b"D\n").await.unwrap();
        let mut buf = [0u8; 4];
        s.read_exact(&mut buf).await.unwrap();
        rvs_proxy::sock::reset_on_close(&s);
        drop(s);
        drop(l); // the server is gone: later connects are refused
    });
    let (mut c1, n1) = lab.open().await;
    assert_eq!(n1, "D");
    let (mut c2, n2) = lab.open().await;
    assert_eq!(n2, "B");
    c1.write_all(b"data").await.unwrap();
    killer.await.unwrap();
    let mut rest = Vec::new();
    let r = timeout(T, c1.read_to_end(&mut rest)).await.unwrap();
    assert!(r.is_err(), "the client sees the reset: {r:?}");
    // The other connection is unaffected, and new clients skip the dead server.
    c2.write_all(b"ok").await.unwrap();
    let mut buf = [0u8; 2];
    timeout(T, c2.read_exact(&mut buf)).await.unwrap().unwrap();
    for _ in 0..3 {
        let (_s, n) = lab.open().await;
        assert_eq!(n, "B", "a refused connect tries the next server");
    }
    let facts: std::collections::HashMap<_, _> = lab.proxy.facts().into_iter().collect();
    assert!(facts["proxy.connect_failed"].parse::<u64>().unwrap() >= 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistence_keeps_a_client_on_one_server() {
    let lab = Lab::new("rr", Some(300), Transfer::Copy);
    let (a, _ha) = name_server("A").await;
    let (b, _hb) = name_server("B").await;
    lab.add(b, 1);
    lab.add(a, 1);
    let (_s, first) = lab.open().await;
    for _ in 0..5 {
        let (_s, n) = lab.open().await;
        assert_eq!(n, first, "all connections of 127.0.0.1 stick to one server");
    }
    let t = lab.shared.table();
    assert!(t.conn_snapshot(0).iter().any(|c| c.template));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unreachable_when_no_server_is_eligible() {
    let lab = Lab::new("wlc", None, Transfer::Copy);
    let (a, _ha) = name_server("A").await;
    lab.add(a, 0);
    // Retry only while the listener is not up; the proxy's reset may even beat connect().
    let mut outcome = None;
    for _ in 0..100 {
        match TcpStream::connect(lab.vip).await {
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            r => {
                outcome = Some(r);
                break;
            }
        }
    }
    if let Ok(mut s) = outcome.expect("proxy listens within 2 s") {
        let mut buf = Vec::new();
        let r = timeout(T, s.read_to_end(&mut buf)).await.unwrap();
        assert!(r.is_err() || buf.is_empty(), "no server answers");
    }
    let facts: std::collections::HashMap<_, _> = lab.proxy.facts().into_iter().collect();
    assert_eq!(facts["proxy.no_dest"], "1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn udp_sessions_reply_from_the_vip_to_the_right_client() {
    // Two UDP echo servers that prefix their name.
    async fn udp_server(name: &'static str) -> SocketAddr {
        let s = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let addr = s.local_addr().unwrap();
        tokio::spawn(async move {
            let mut buf = [0u8; 2048];
            loop {
                let Ok((n, peer)) = s.recv_from(&mut buf).await else {
                    return;
                };
                let mut out = name.as_bytes().to_vec();
                out.extend_from_slice(&buf[..n]);
                let _ = s.send_to(&out, peer).await;
            }
        });
        addr
    }
    let vip = unique_vip();
    let port = vip.port();
    let key = ServiceKey::Addr {
        proto: Protocol::Udp,
        addr: vip.ip(),
        port,
    };
    let mut table = Table::new();
    table
        .add_service(ServiceConfig::new(key).with_scheduler("rr"))
        .unwrap();
    let a = udp_server("A").await;
    let b = udp_server("B").await;
    for s in [b, a] {
        table
            .add_dest(
                &key,
                DestConfig::new(s.ip(), s.port()).with_forward(Forward::Masq),
            )
            .unwrap();
    }
    let shared = Arc::new(Shared::new(table));
    let proxy = Proxy::new(shared.clone(), ProxyOptions::default());
    proxy.sync(&shared.table());
    let c1 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let c2 = UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let r1 = ask(&c1, vip, b"one").await;
    let r2 = ask(&c2, vip, b"two").await;
    assert_eq!(&r1[1..], b"one");
    assert_eq!(&r2[1..], b"two");
    assert_ne!(r1[0], r2[0], "two clients, two sessions, rr spreads them");
    // The same client stays in its session.
    let r1b = ask(&c1, vip, b"again").await;
    assert_eq!(r1b[0], r1[0]);
    let t = shared.table();
    let conns = t.conn_snapshot(shared.now());
    assert_eq!(conns.len(), 2);
    assert!(conns.iter().all(|c| c.state == "UDP"));
    // Replies are counted before they are sent: the three seen are counted already.
    assert!(t.snapshot()[0].stats.outpkts >= 3);
}

/// Sends `msg` to the VIP until a reply comes (the service socket may still be binding).
async fn ask(c: &UdpSocket, vip: SocketAddr, msg: &[u8]) -> Vec<u8> {
    let mut buf = [0u8; 2048];
    for _ in 0..50 {
        c.send_to(msg, vip).await.unwrap();
        if let Ok(Ok((n, from))) = timeout(Duration::from_millis(200), c.recv_from(&mut buf)).await
        {
            assert_eq!(from, vip, "replies come from the VIP");
            return buf[..n].to_vec();
        }
    }
    panic!("no UDP reply within 10 s");
}
