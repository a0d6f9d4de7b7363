//! A minimal HTTP/1.1 real server that answers every request with its name, and a load
//! generator that counts which server answered. Enough to watch a director balance; the
//! benchmark uses nginx and wrk instead.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const MAX_HEAD: usize = 16 * 1024;

/// Serves `name` on `listener` forever: each request gets `200 OK` with body `name\n`;
/// keep-alive unless the client says `Connection: close`.
pub async fn serve(listener: TcpListener, name: String) {
    let name: &'static str = Box::leak(name.into_boxed_str());
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        tokio::spawn(handle(stream, name));
    }
}

async fn handle(mut s: TcpStream, name: &'static str) {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        // Read one request head.
        let end = loop {
            if let Some(p) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break p + 4;
            }
            if buf.len() > MAX_HEAD {
                return;
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
        let http10 = head
            .lines()
            .next()
            .is_some_and(|l| l.trim_end().ends_with("http/1.0"));
        let close = head.contains("\r\nconnection: close")
            || (http10 && !head.contains("\r\nconnection: keep-alive"));
        buf.drain(..end);
        let body = format!("{name}\n");
        let resp = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\nConnection: {}\r\n\r\n{}",
            body.len(),
            if close { "close" } else { "keep-alive" },
            body
        );
        if s.write_all(resp.as_bytes()).await.is_err() || close {
            let _ = s.shutdown().await;
            return;
        }
    }
}

/// What a load run saw.
#[derive(Debug, Default)]
pub struct LoadReport {
    /// Responses per server name.
    pub by_server: BTreeMap<String, u64>,
    pub errors: u64,
    pub elapsed: Duration,
}

/// One request on a new connection (`Connection: close`); returns the body's first line.
pub async fn fetch_once(target: SocketAddr, host: &str) -> std::io::Result<String> {
    let mut s = TcpStream::connect(target).await?;
    let req = format!("GET / HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await?;
    let mut resp = Vec::new();
    s.read_to_end(&mut resp).await?;
    let text = String::from_utf8_lossy(&resp);
    let body = text
        .split("\r\n\r\n")
        .nth(1)
        .ok_or_else(|| std::io::Error::other("no HTTP body"))?;
    Ok(body.lines().next().unwrap_or("").to_string())
}

/// `requests` requests, each on a new connection, `concurrency` at a time.
pub async fn load(target: SocketAddr, requests: u64, concurrency: u64) -> LoadReport {
    let start = Instant::now();
    let per = requests / concurrency.max(1);
    let extra = requests % concurrency.max(1);
    let host = target.to_string();
    let mut tasks = Vec::new();
    for i in 0..concurrency.max(1) {
        let n = per + u64::from(i < extra);
        let host = host.clone();
        tasks.push(tokio::spawn(async move {
            let mut r = LoadReport::default();
            for _ in 0..n {
                match tokio::time::timeout(Duration::from_secs(5), fetch_once(target, &host)).await
                {
                    Ok(Ok(name)) => *r.by_server.entry(name).or_default() += 1,
                    _ => r.errors += 1,
                }
            }
            r
        }));
    }
    let mut total = LoadReport::default();
    for t in tasks {
        if let Ok(r) = t.await {
            for (k, v) in r.by_server {
                *total.by_server.entry(k).or_default() += v;
            }
            total.errors += r.errors;
        }
    }
    total.elapsed = start.elapsed();
    total
}
