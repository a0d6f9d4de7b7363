//! The metrics and the dashboard of a running director, after real traffic: rvsd with the
//! proxy plane on loopback, HTTP real servers, `/metrics` scraped and read as Prometheus
//! would, and the dashboard opened in headless Chromium (Debian's, driven through
//! chromedriver's WebDriver API) and checked by its DOM and by the pixels of screenshots
//! taken before and after a real server fails (kept in the target's tmp directory,
//! `dashboard-{before,after}.png`, for a human to look at).

use rvs_api::{Client, Reply, Request};
use rvs_core::{DestConfig, Forward, Protocol, ServiceConfig, ServiceKey};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

struct Killed(Child);
impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// HTTP real servers on loopback, each answering with its name; dropped = stopped.
struct Backends {
    rt: tokio::runtime::Runtime,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    addrs: Vec<SocketAddr>,
}

impl Backends {
    fn start(ips: &[&str]) -> Backends {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut tasks = Vec::new();
        let mut addrs = Vec::new();
        for (i, ip) in ips.iter().enumerate() {
            let l = TcpListener::bind(format!("{ip}:0")).unwrap();
            l.set_nonblocking(true).unwrap();
            addrs.push(l.local_addr().unwrap());
            let name = format!("rs{}", i + 1);
            tasks.push(rt.spawn(async move {
                let l = tokio::net::TcpListener::from_std(l).unwrap();
                rvs_testkit::http::serve(l, name).await;
            }));
        }
        Backends { rt, tasks, addrs }
    }

    /// Stops server `i`: its listener closes, its checker fails.
    fn stop(&mut self, i: usize) {
        self.tasks[i].abort();
        let _ = self.rt.block_on(async { (&mut self.tasks[i]).await });
    }
}

struct Director {
    _child: Killed,
    dir: PathBuf,
    socket: PathBuf,
    http: SocketAddr,
}

impl Drop for Director {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn start_rvsd(tag: &str, conf: Option<&str>) -> Director {
    let dir = std::env::temp_dir().join(format!("rvsd-metrics-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let socket = dir.join("rvsd.sock");
    let log = dir.join("rvsd.log");
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rvsd"));
    cmd.args([
        "--dataplane",
        "proxy",
        "--proxy-workers",
        "1",
        "--threads",
        "2",
    ])
    .arg("--socket")
    .arg(&socket)
    .args(["--metrics", "127.0.0.1:0"])
    .env_remove("RUST_LOG")
    .stdout(Stdio::null())
    .stderr(std::fs::File::create(&log).unwrap());
    if let Some(c) = conf {
        let p = dir.join("keepalived.conf");
        std::fs::write(&p, c).unwrap();
        cmd.arg("-f").arg(p);
    }
    let child = Killed(cmd.spawn().unwrap());
    let http = wait_for("the metrics listener", Duration::from_secs(10), || {
        let text = std::fs::read_to_string(&log).ok()?;
        let at = text.find("metrics on http://")? + "metrics on http://".len();
        let rest = &text[at..];
        rest[..rest.find('/')?].parse().ok()
    });
    Director {
        _child: child,
        dir,
        socket,
        http,
    }
}

/// A GET over HTTP/1.0 (no chunking): the status line and the body.
fn get(addr: SocketAddr, path: &str) -> (String, String) {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(s, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let (head, body) = buf.split_once("\r\n\r\n").unwrap();
    (head.lines().next().unwrap().to_string(), body.to_string())
}

/// Prometheus text → (name with labels) → value.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let (k, v) = l.rsplit_once(' ')?;
            Some((k.to_string(), v.parse().ok()?))
        })
        .collect()
}

fn free_port(ip: &str) -> u16 {
    TcpListener::bind(format!("{ip}:0"))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn add_service(socket: &Path, vip: SocketAddr, rs: &[(SocketAddr, u32)]) -> ServiceKey {
    let mut c = Client::connect(socket).unwrap();
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: vip.ip(),
        port: vip.port(),
    };
    assert_eq!(
        c.call(&Request::Change(rvs_core::Change::AddService(
            ServiceConfig::new(key).with_scheduler("wrr")
        )))
        .unwrap(),
        Reply::Ok
    );
    for (a, w) in rs {
        let mut d = DestConfig::new(a.ip(), a.port());
        d.weight = *w;
        d.forward = Forward::Masq;
        assert_eq!(
            c.call(&Request::Change(rvs_core::Change::AddDest {
                svc: key,
                dest: d
            }))
            .unwrap(),
            Reply::Ok
        );
    }
    key
}

#[test]
fn metrics_count_the_traffic_under_node_exporter_s_names() {
    let b = Backends::start(&["127.0.72.11", "127.0.72.12"]);
    let d = start_rvsd("traffic", None);
    let vip: SocketAddr = format!("127.0.72.1:{}", free_port("127.0.72.1"))
        .parse()
        .unwrap();
    add_service(&d.socket, vip, &[(b.addrs[0], 2), (b.addrs[1], 1)]);
    // wait until the proxy listens on the VIP
    wait_for("the VIP", Duration::from_secs(10), || {
        TcpStream::connect(vip).ok()
    });
    let report = b.rt.block_on(rvs_testkit::http::load(vip, 30, 3));
    assert_eq!(report.errors, 0, "{report:?}");

    let lab = |rs: SocketAddr| {
        format!(
            "{{local_address=\"127.0.72.1\",local_port=\"{}\",remote_address=\"{}\",remote_port=\"{}\",proto=\"TCP\",local_mark=\"\"}}",
            vip.port(),
            rs.ip(),
            rs.port()
        )
    };
    // the probe connection above counts too: 31 connections in all
    let m = wait_for("the counters", Duration::from_secs(10), || {
        let (status, body) = get(d.http, "/metrics");
        assert!(status.contains("200"), "{status}");
        let m = samples(&body);
        (m.get("node_ipvs_connections_total") == Some(&31.0)).then_some(m)
    });
    let c0 = m[&format!("rvs_backend_connections_total{}", lab(b.addrs[0]))];
    let c1 = m[&format!("rvs_backend_connections_total{}", lab(b.addrs[1]))];
    assert_eq!(c0 + c1, 31.0);
    // wrr 2:1
    assert!((c0 - 2.0 * c1).abs() <= 2.0, "{c0} vs {c1}");
    assert_eq!(
        m[&format!("node_ipvs_backend_weight{}", lab(b.addrs[0]))],
        2.0
    );
    assert_eq!(
        m[&format!("node_ipvs_backend_weight{}", lab(b.addrs[1]))],
        1.0
    );
    assert!(m.contains_key(&format!(
        "node_ipvs_backend_connections_active{}",
        lab(b.addrs[0])
    )));
    assert!(m.contains_key(&format!(
        "node_ipvs_backend_connections_inactive{}",
        lab(b.addrs[1])
    )));
    assert!(m["node_ipvs_incoming_bytes_total"] > 0.0);
    assert!(m["node_ipvs_outgoing_bytes_total"] > m["node_ipvs_incoming_bytes_total"]);
    assert!(m["node_ipvs_incoming_packets_total"] > 0.0);
    assert_eq!(m["rvs_virtual_services"], 1.0);
}

// ---- the dashboard in a real browser ----

struct WebDriver {
    _driver: Killed,
    addr: SocketAddr,
    session: String,
    _profile: tempfile::TempDir,
}

/// chromedriver speaks HTTP/1.1 only: a request with `Connection: close`, and the body
/// read to the end (de-chunked when it is chunked).
fn http_json(
    addr: SocketAddr,
    method: &str,
    path: &str,
    body: &serde_json::Value,
) -> serde_json::Value {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let b = if body.is_null() {
        String::new()
    } else {
        body.to_string()
    };
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{b}",
        b.len()
    )
    .unwrap();
    // chromedriver keeps the connection open: read by Content-Length (or to the last chunk)
    let mut buf = Vec::new();
    let mut chunk = [0u8; 65536];
    loop {
        let n = s.read(&mut chunk).unwrap();
        buf.extend_from_slice(&chunk[..n]);
        let text = String::from_utf8_lossy(&buf);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let h = head.to_ascii_lowercase();
            let len = h
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok());
            let done = match len {
                Some(len) => body.len() >= len,
                None => body.ends_with("0\r\n\r\n"),
            };
            if done || n == 0 {
                break;
            }
        } else if n == 0 {
            break;
        }
    }
    let text = String::from_utf8_lossy(&buf).into_owned();
    let (head, raw) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let body = if head
        .to_ascii_lowercase()
        .contains("transfer-encoding: chunked")
    {
        let mut out = String::new();
        let mut rest = raw;
        while let Some((size, tail)) = rest.split_once("\r\n") {
            let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
            if n == 0 {
                break;
            }
            out.push_str(&tail[..n]);
            rest = &tail[n + 2..];
        }
        out
    } else {
        raw.to_string()
    };
    serde_json::from_str(&body).unwrap_or_else(|e| panic!("{method} {path}: {e}: {text}"))
}

impl WebDriver {
    fn start() -> WebDriver {
        let port = free_port("127.0.0.1");
        let driver = Killed(
            Command::new("chromedriver")
                .arg(format!("--port={port}"))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        wait_for("chromedriver", Duration::from_secs(20), || {
            TcpStream::connect(addr).ok()
        });
        let profile = tempfile::tempdir().unwrap();
        let caps = serde_json::json!({"capabilities": {"alwaysMatch": {
        "browserName": "chrome",
        "goog:chromeOptions": {
            "binary": "/usr/bin/chromium",
            "args": ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                     "--disable-background-networking", "--disable-component-update",
                     "--disable-sync", "--no-first-run", "--window-size=1280,900",
                     format!("--user-data-dir={}", profile.path().display())]
        }}}});
        let r = http_json(addr, "POST", "/session", &caps);
        let session = r["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no WebDriver session: {r}"))
            .to_string();
        WebDriver {
            _driver: driver,
            addr,
            session,
            _profile: profile,
        }
    }

    fn call(&self, method: &str, what: &str, body: serde_json::Value) -> serde_json::Value {
        let path = format!("/session/{}/{what}", self.session);
        http_json(self.addr, method, &path, &body)["value"].clone()
    }

    fn open(&self, url: &str) {
        self.call("POST", "url", serde_json::json!({ "url": url }));
    }

    fn js(&self, script: &str) -> serde_json::Value {
        self.call(
            "POST",
            "execute/sync",
            serde_json::json!({ "script": script, "args": [] }),
        )
    }

    fn screenshot(&self, to: &Path) -> png_pixels::Image {
        let b64 = self.call("GET", "screenshot", serde_json::Value::Null);
        let bytes = png_pixels::base64(b64.as_str().unwrap());
        std::fs::write(to, &bytes).unwrap();
        png_pixels::decode(&bytes)
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        let path = format!("/session/{}", self.session);
        let _ = std::panic::catch_unwind(|| {
            http_json(self.addr, "DELETE", &path, &serde_json::Value::Null)
        });
    }
}

mod png_pixels {
    pub struct Image {
        pub width: usize,
        pub rgba: Vec<u8>,
    }

    pub fn base64(s: &str) -> Vec<u8> {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.decode(s).unwrap()
    }

    pub fn decode(bytes: &[u8]) -> Image {
        let mut d = png::Decoder::new(std::io::Cursor::new(bytes));
        d.set_transformations(
            png::Transformations::normalize_to_color8() | png::Transformations::ALPHA,
        );
        let mut r = d.read_info().unwrap();
        let mut buf = vec![0; r.output_buffer_size().unwrap()];
        let info = r.next_frame(&mut buf).unwrap();
        buf.truncate(info.buffer_size());
        assert_eq!(info.color_type, png::ColorType::Rgba);
        Image {
            width: info.width as usize,
            rgba: buf,
        }
    }

    impl Image {
        /// Pixels within `tol` of an RGB colour.
        pub fn count(&self, rgb: (u8, u8, u8), tol: u8) -> usize {
            let _ = self.width;
            self.rgba
                .chunks_exact(4)
                .filter(|p| {
                    p[0].abs_diff(rgb.0) <= tol
                        && p[1].abs_diff(rgb.1) <= tol
                        && p[2].abs_diff(rgb.2) <= tol
                })
                .count()
        }
    }
}

/// The dashboard's colour of a `down` badge (`--down`).
const DOWN_RED: (u8, u8, u8) = (0xd9, 0x30, 0x25);
/// And of an `up` one (`--up`).
const UP_GREEN: (u8, u8, u8) = (0x1e, 0x8e, 0x3e);

#[test]
fn the_dashboard_follows_a_failing_server_and_a_weight_change_live() {
    if !rvs_testkit::require_command("dashboard in headless Chromium", "chromedriver")
        || !rvs_testkit::require_command("dashboard in headless Chromium", "chromium")
    {
        return;
    }
    let mut b = Backends::start(&["127.0.73.11", "127.0.73.12"]);
    let vport = free_port("127.0.73.1");
    let conf = format!(
        "virtual_server 127.0.73.1 {vport} {{\n protocol TCP\n lb_kind NAT\n lb_algo wrr\n delay_loop 0.3\n warmup 0\n{}}}\n",
        b.addrs
            .iter()
            .map(|a| format!(
                " real_server {} {} {{\n  weight 2\n  TCP_CHECK {{\n   connect_timeout 0.3\n  }}\n }}\n",
                a.ip(),
                a.port()
            ))
            .collect::<String>()
    );
    let d = start_rvsd("dashboard", Some(&conf));
    let wd = WebDriver::start();
    wd.open(&format!("http://{}/", d.http));

    let health = |rs: SocketAddr| -> String {
        wd.js(&format!(
            "const r = document.querySelector('tr[data-server=\"{rs}\"]'); return r ? r.dataset.health : ''"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    };
    let weight = |rs: SocketAddr| -> String {
        wd.js(&format!(
            "const r = document.querySelector('tr[data-server=\"{rs}\"] td.weight'); return r ? r.textContent : ''"
        ))
        .as_str()
        .unwrap_or_default()
        .to_string()
    };
    // both checkers pass
    wait_for(
        "both servers up on the page",
        Duration::from_secs(20),
        || (health(b.addrs[0]) == "up" && health(b.addrs[1]) == "up").then_some(()),
    );
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let before = wd.screenshot(&shots.join("dashboard-before.png"));
    assert!(
        before.count(UP_GREEN, 12) > 500,
        "no green 'up' badges drawn"
    );
    assert!(
        before.count(DOWN_RED, 12) < 50,
        "red drawn while every server is up"
    );

    // a real server dies: the page shows it down without a reload
    let updates_before = wd.js("return Number(document.body.dataset.updates)");
    b.stop(1);
    wait_for(
        "the failed server on the page",
        Duration::from_secs(20),
        || (health(b.addrs[1]) == "down").then_some(()),
    );
    assert_eq!(health(b.addrs[0]), "up");
    let after = wd.screenshot(&shots.join("dashboard-after.png"));
    let red = after.count(DOWN_RED, 12);
    assert!(
        red > 500,
        "the 'down' badge is not drawn ({red} red pixels)"
    );
    let updates_after = wd.js("return Number(document.body.dataset.updates)");
    assert!(
        updates_after.as_f64() > updates_before.as_f64(),
        "the page did not update itself"
    );

    // an operator changes a weight: the page follows
    let mut c = Client::connect(&d.socket).unwrap();
    let key = ServiceKey::Addr {
        proto: Protocol::Tcp,
        addr: "127.0.73.1".parse().unwrap(),
        port: vport,
    };
    let mut dest = DestConfig::new(b.addrs[0].ip(), b.addrs[0].port());
    dest.weight = 7;
    dest.forward = Forward::Masq;
    assert_eq!(
        c.call(&Request::Change(rvs_core::Change::EditDest {
            svc: key,
            dest
        }))
        .unwrap(),
        Reply::Ok
    );
    wait_for(
        "the new weight on the page",
        Duration::from_secs(10),
        || (weight(b.addrs[0]) == "7").then_some(()),
    );
}
