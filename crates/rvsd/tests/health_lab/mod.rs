//! Test rig for keepalived's health checks in rvsd: a daemon (no data plane) whose
//! checkers' verdicts reach the table through the pool and the daemon's writer, as in
//! `rvsd -f`; loopback real servers the test starts and stops; bounded waits (poll a
//! condition until a deadline, never sleep-and-hope).
#![allow(dead_code)]

use rvs_check::{Options, ReloadReport};
use rvs_core::{ServiceKey, Table};
use rvs_dataplane::{NoDataPlane, Shared};
use rvs_keepalived::{parse_str, Config};
use rvsd::health::HealthChecks;
use rvsd::Daemon;
use std::net::{IpAddr, SocketAddr};
use std::path::Path;
use std::sync::atomic::{AtomicU16, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};
use tokio::task::JoinHandle;

pub fn config(text: &str) -> Config {
    parse_str(Path::new("test.conf"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// The health checks of one configuration, as the tests drive them.
pub struct Checks {
    health: HealthChecks,
    daemon: Arc<Daemon>,
}

impl Checks {
    pub fn status(&self) -> Vec<rvs_api::CheckerStatus> {
        self.health.status()
    }

    pub fn running(&self) -> usize {
        self.health.running()
    }

    /// SIGHUP with `cfg`; returns once its changes are in the table.
    pub async fn reload(&self, cfg: &Config) -> ReloadReport {
        self.health
            .reload(cfg, self.daemon.plane())
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

pub struct Lab {
    pub shared: Arc<Shared>,
    pub sup: Checks,
}

impl Lab {
    pub async fn start(cfg: &Config) -> Lab {
        let daemon = Arc::new(Daemon::new(
            Arc::new(Shared::new(Table::new())),
            Box::new(NoDataPlane),
        ));
        let health = HealthChecks::start(
            cfg,
            daemon.clone(),
            Options {
                bootstrap: Duration::from_millis(20),
            },
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        Lab {
            shared: daemon.shared().clone(),
            sup: Checks { health, daemon },
        }
    }

    /// Weight of `addr:port` in the service, `None` if absent.
    pub fn weight(&self, svc: &str, addr: SocketAddr) -> Option<u32> {
        let t = self.shared.table();
        let key = service_key(svc);
        let sid = t.service_id(&key)?;
        let d = t.find_dest(sid, addr.ip(), addr.port())?;
        Some(t.dest(d)?.cfg.weight)
    }

    pub fn dest_id(&self, svc: &str, addr: SocketAddr) -> Option<rvs_core::DestId> {
        let t = self.shared.table();
        let sid = t.service_id(&service_key(svc))?;
        t.find_dest(sid, addr.ip(), addr.port())
    }

    pub fn dests(&self, svc: &str) -> Vec<(SocketAddr, u32)> {
        let t = self.shared.table();
        let Some(sid) = t.service_id(&service_key(svc)) else {
            return Vec::new();
        };
        let mut v: Vec<_> = t
            .dests_of(sid)
            .iter()
            .map(|(_, d)| (SocketAddr::new(d.cfg.addr, d.cfg.port), d.cfg.weight))
            .collect();
        v.sort();
        v
    }
}

/// `"tcp 127.0.0.1:80"` to a key.
pub fn service_key(s: &str) -> ServiceKey {
    let (proto, addr) = s.split_once(' ').expect("proto addr");
    let a: SocketAddr = addr.parse().expect("socket address");
    ServiceKey::Addr {
        proto: match proto {
            "tcp" => rvs_core::Protocol::Tcp,
            _ => rvs_core::Protocol::Udp,
        },
        addr: a.ip(),
        port: a.port(),
    }
}

/// Polls `cond` every 5 ms until it holds; returns how long it took. Panics after
/// `limit` with `what`.
pub async fn wait_for(what: &str, limit: Duration, mut cond: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    loop {
        if cond() {
            return start.elapsed();
        }
        if start.elapsed() > limit {
            panic!("timed out after {limit:?} waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// What a test real server answers (HTTP).
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
}

/// A TCP real server on loopback that can be stopped and started again on the same
/// address. Plain mode accepts and closes; HTTP mode answers `reply`.
pub struct RealServer {
    pub addr: SocketAddr,
    pub reply: Arc<Mutex<Option<Reply>>>,
    /// Requests seen (HTTP mode).
    pub requests: Arc<Mutex<Vec<String>>>,
    /// Source addresses of accepted connections.
    pub peers: Arc<Mutex<Vec<SocketAddr>>>,
    task: Option<JoinHandle<()>>,
}

impl RealServer {
    pub async fn tcp(ip: &str) -> RealServer {
        Self::start_at(SocketAddr::new(ip.parse().unwrap(), 0), None).await
    }

    pub async fn tcp_at(addr: SocketAddr) -> RealServer {
        Self::start_at(addr, None).await
    }

    pub async fn start_if_stopped(&mut self) {
        if self.task.is_none() {
            self.start().await;
        }
    }

    pub async fn http(ip: &str, status: u16, body: &[u8]) -> RealServer {
        Self::start_at(
            SocketAddr::new(ip.parse().unwrap(), 0),
            Some(Reply {
                status,
                body: body.to_vec(),
            }),
        )
        .await
    }

    async fn start_at(addr: SocketAddr, reply: Option<Reply>) -> RealServer {
        let mut s = RealServer {
            addr,
            reply: Arc::new(Mutex::new(reply)),
            requests: Arc::new(Mutex::new(Vec::new())),
            peers: Arc::new(Mutex::new(Vec::new())),
            task: None,
        };
        s.start().await;
        s
    }

    /// (Re)starts listening on the same address.
    pub async fn start(&mut self) {
        let l = TcpListener::bind(self.addr)
            .await
            .expect("bind test server");
        self.addr = l.local_addr().unwrap();
        let reply = self.reply.clone();
        let requests = self.requests.clone();
        let peers = self.peers.clone();
        self.task = Some(tokio::spawn(async move {
            loop {
                let Ok((mut s, peer)) = l.accept().await else {
                    continue;
                };
                peers.lock().unwrap().push(peer);
                let r = reply.lock().unwrap().clone();
                let requests = requests.clone();
                tokio::spawn(async move {
                    let Some(r) = r else { return };
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match s.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    requests
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(&head).into_owned());
                    let resp = format!(
                        "HTTP/1.0 {} X\r\nContent-Length: {}\r\n\r\n",
                        r.status,
                        r.body.len()
                    );
                    let _ = s.write_all(resp.as_bytes()).await;
                    let _ = s.write_all(&r.body).await;
                });
            }
        }));
    }

    /// Stops listening: connections are refused from now on.
    pub async fn stop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
            let _ = t.await;
        }
    }
}

impl Drop for RealServer {
    fn drop(&mut self) {
        if let Some(t) = self.task.take() {
            t.abort();
        }
    }
}

/// A UDP DNS responder: answers every query with QR set and `rcode`; 255 = silence.
pub struct DnsServer {
    pub addr: SocketAddr,
    pub rcode: Arc<AtomicU8>,
    pub last_query: Arc<Mutex<Vec<u8>>>,
    pub answered: Arc<AtomicU16>,
    task: JoinHandle<()>,
}

impl DnsServer {
    pub async fn start(ip: &str) -> DnsServer {
        let sock = UdpSocket::bind(SocketAddr::new(ip.parse::<IpAddr>().unwrap(), 0))
            .await
            .unwrap();
        let addr = sock.local_addr().unwrap();
        let rcode = Arc::new(AtomicU8::new(0));
        let last_query = Arc::new(Mutex::new(Vec::new()));
        let answered = Arc::new(AtomicU16::new(0));
        let (rc, lq, an) = (rcode.clone(), last_query.clone(), answered.clone());
        let task = tokio::spawn(async move {
            let mut buf = [0u8; 512];
            loop {
                let Ok((n, from)) = sock.recv_from(&mut buf).await else {
                    continue;
                };
                *lq.lock().unwrap() = buf[..n].to_vec();
                let code = rc.load(Ordering::SeqCst);
                if code == 255 || n < 12 {
                    continue;
                }
                let mut resp = buf[..n].to_vec();
                resp[2] = 0x81; // QR, RD
                resp[3] = 0x80 | code; // RA, rcode
                let _ = sock.send_to(&resp, from).await;
                an.fetch_add(1, Ordering::SeqCst);
            }
        });
        DnsServer {
            addr,
            rcode,
            last_query,
            answered,
            task,
        }
    }
}

impl Drop for DnsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A scratch directory with executable scripts.
pub struct Scripts {
    pub dir: tempfile::TempDir,
}

impl Scripts {
    pub fn new() -> Scripts {
        Scripts {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// Writes an executable `/bin/sh` script.
    pub fn script(&self, name: &str, body: &str) -> String {
        use std::os::unix::fs::PermissionsExt;
        let p = self.dir.path().join(name);
        std::fs::write(&p, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
        p.display().to_string()
    }

    pub fn read(&self, name: &str) -> String {
        std::fs::read_to_string(self.dir.path().join(name)).unwrap_or_default()
    }
}
