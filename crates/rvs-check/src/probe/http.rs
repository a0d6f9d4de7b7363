//! HTTP_GET and SSL_GET (`check_http.c`): one URL per probe. The request is keepalived's
//! (`GET path HTTP/1.x`, `User-Agent: KeepAliveClient`, `Connection: close` for 1.1 and
//! 1.0C, `Host:` the virtualhost or `ip:port`); the answer passes when its status code is
//! accepted and, with `digest`, the MD5 of its body matches. Every read is bounded by
//! connect_timeout; reading stops at end of stream or once Content-Length bytes arrived.

use super::{tcp, tls};
use crate::epilog::Outcome;
use crate::plan::{ConnSpec, HttpSpec, TlsSpec, UrlSpec};
use md5::{Digest, Md5};
use rvs_keepalived::HttpProtocol;
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Largest response head accepted.
const MAX_HEAD: usize = 64 * 1024;

/// The parts of a response head a checker looks at.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Head {
    pub status: u16,
    pub content_length: Option<usize>,
}

pub async fn probe(
    conn: &ConnSpec,
    http: &HttpSpec,
    tls_spec: Option<&TlsSpec>,
    url: usize,
) -> Outcome {
    let Some(u) = http.urls.get(url).or_else(|| http.urls.first()) else {
        return Outcome::Ok;
    };
    let stream = match tcp::connect(conn).await {
        Ok(s) => s,
        Err(e) => return Outcome::Fail(e),
    };
    let req = request(u, http.protocol);
    let r = match tls_spec {
        None => exchange(stream, &req, u, conn.timeout).await,
        Some(t) => {
            let sni = if t.enable_sni { u.sni.as_deref() } else { None };
            match tokio::time::timeout(conn.timeout, tls::connect(stream, sni, conn.dst.ip())).await
            {
                Ok(Ok(s)) => exchange(s, &req, u, conn.timeout).await,
                Ok(Err(e)) => Err(format!("SSL handshake with {}: {e}", conn.dst)),
                Err(_) => Err(format!("timeout in SSL handshake with {}", conn.dst)),
            }
        }
    };
    match r {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Fail(format!("{}{}: {e}", conn.dst, u.path)),
    }
}

fn request(u: &UrlSpec, p: HttpProtocol) -> Vec<u8> {
    let (minor, close) = match p {
        HttpProtocol::Http10 => (0, ""),
        HttpProtocol::Http10Close => (0, "Connection: close\r\n"),
        HttpProtocol::Http11 => (1, "Connection: close\r\n"),
    };
    format!(
        "GET {} HTTP/1.{minor}\r\nUser-Agent: KeepAliveClient\r\n{close}Host: {}\r\n\r\n",
        u.path, u.host
    )
    .into_bytes()
}

async fn exchange<S>(mut s: S, req: &[u8], u: &UrlSpec, timeout: Duration) -> Result<(), String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, s.write_all(req)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("cannot send the request: {e}")),
        Err(_) => return Err("timeout sending the request".into()),
    }
    let mut head: Vec<u8> = Vec::new();
    let mut parsed: Option<Head> = None;
    let mut md5 = Md5::new();
    let mut body = 0usize;
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some(h) = parsed {
            if h.content_length.is_some_and(|n| body >= n) {
                break;
            }
        }
        let n = match tokio::time::timeout(timeout, s.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            // TLS peers often close without close_notify; what arrived counts.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(Err(e)) => return Err(format!("read error: {e}")),
            Err(_) => return Err("timeout reading the response".into()),
        };
        if n == 0 {
            break;
        }
        let mut data = &buf[..n];
        if parsed.is_none() {
            head.extend_from_slice(data);
            let Some(end) = find_end(&head) else {
                if head.len() > MAX_HEAD {
                    return Err("response head too large".into());
                }
                continue;
            };
            parsed = Some(parse_head(&head[..end]).ok_or("malformed response")?);
            let rest = head.split_off(end);
            data = &rest;
            body += feed(&mut md5, data, parsed.and_then(|h| h.content_length), body);
            continue;
        }
        body += feed(&mut md5, data, parsed.and_then(|h| h.content_length), body);
    }
    let Some(h) = parsed else {
        return Err(if head.is_empty() {
            "no data received".into()
        } else {
            "incomplete response head".into()
        });
    };
    if !u.accepts(h.status) {
        return Err(format!("HTTP status code {}", h.status));
    }
    if let Some(want) = u.digest {
        let got: [u8; 16] = md5.finalize().into();
        if got != want {
            return Err(format!("MD5 digest mismatch (got {})", hex(&got)));
        }
    }
    Ok(())
}

/// What `genhash` shows of one GET: the head, the body as hashed (bounded), the digest.
#[derive(Clone, Debug)]
pub struct Fetched {
    pub head: Vec<u8>,
    pub status: u16,
    /// The body bytes the digest covers (at most [`MAX_SHOWN_BODY`] of them kept).
    pub body: Vec<u8>,
    pub digest: [u8; 16],
}

/// How much of a body [`fetch`] keeps for display (all of it is hashed).
pub const MAX_SHOWN_BODY: usize = 1 << 20;

/// One GET of `u`, made and read exactly as the HTTP_GET/SSL_GET checker does, so the
/// digest is the one a `digest` line must hold (`rvs-genhash`). `tls`: `Some(sni)` for
/// SSL_GET.
///
/// # Errors
/// Connection, TLS, timeout or a malformed response, in words.
pub async fn fetch(
    conn: &ConnSpec,
    u: &UrlSpec,
    protocol: HttpProtocol,
    tls: Option<Option<&str>>,
) -> Result<Fetched, String> {
    let stream = tcp::connect(conn).await?;
    let req = request(u, protocol);
    match tls {
        None => read_all(stream, &req, conn.timeout).await,
        Some(sni) => {
            match tokio::time::timeout(conn.timeout, tls::connect(stream, sni, conn.dst.ip())).await
            {
                Ok(Ok(s)) => read_all(s, &req, conn.timeout).await,
                Ok(Err(e)) => Err(format!("SSL handshake with {}: {e}", conn.dst)),
                Err(_) => Err(format!("timeout in SSL handshake with {}", conn.dst)),
            }
        }
    }
}

async fn read_all<S>(mut s: S, req: &[u8], timeout: Duration) -> Result<Fetched, String>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    match tokio::time::timeout(timeout, s.write_all(req)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return Err(format!("cannot send the request: {e}")),
        Err(_) => return Err("timeout sending the request".into()),
    }
    let mut head: Vec<u8> = Vec::new();
    let mut parsed: Option<(usize, Head)> = None;
    let mut md5 = Md5::new();
    let mut seen = 0usize;
    let mut body = Vec::new();
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        if let Some((_, h)) = parsed {
            if h.content_length.is_some_and(|n| seen >= n) {
                break;
            }
        }
        let n = match tokio::time::timeout(timeout, s.read(&mut buf)).await {
            Ok(Ok(n)) => n,
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(Err(e)) => return Err(format!("read error: {e}")),
            Err(_) => return Err("timeout reading the response".into()),
        };
        if n == 0 {
            break;
        }
        let data: Vec<u8> = if parsed.is_none() {
            head.extend_from_slice(&buf[..n]);
            let Some(end) = find_end(&head) else {
                if head.len() > MAX_HEAD {
                    return Err("response head too large".into());
                }
                continue;
            };
            parsed = Some((end, parse_head(&head[..end]).ok_or("malformed response")?));
            head.split_off(end)
        } else {
            buf[..n].to_vec()
        };
        let len = parsed.and_then(|(_, h)| h.content_length);
        let before = seen;
        seen += feed(&mut md5, &data, len, seen);
        let kept = (seen - before).min(MAX_SHOWN_BODY.saturating_sub(body.len()));
        body.extend_from_slice(&data[..kept]);
    }
    let Some((_, h)) = parsed else {
        return Err(if head.is_empty() {
            "no data received".into()
        } else {
            "incomplete response head".into()
        });
    };
    Ok(Fetched {
        head,
        status: h.status,
        body,
        digest: md5.finalize().into(),
    })
}

/// Hashes the body bytes of `data` (no further than Content-Length); returns how many.
fn feed(md5: &mut Md5, data: &[u8], len: Option<usize>, seen: usize) -> usize {
    let take = match len {
        Some(n) => data.len().min(n.saturating_sub(seen)),
        None => data.len(),
    };
    md5.update(&data[..take]);
    take
}

fn find_end(b: &[u8]) -> Option<usize> {
    b.windows(4).position(|w| w == b"\r\n\r\n").map(|p| p + 4)
}

/// Status line and Content-Length of a response head.
pub fn parse_head(h: &[u8]) -> Option<Head> {
    let text = String::from_utf8_lossy(h);
    let mut lines = text.split("\r\n");
    let status_line = lines.next()?;
    let mut parts = status_line.split_ascii_whitespace();
    let proto = parts.next()?;
    if !proto.starts_with("HTTP/") {
        return None;
    }
    let status: u16 = parts.next()?.parse().ok()?;
    let content_length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok());
    Some(Head {
        status,
        content_length,
    })
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_is_keepalived_s() {
        let u = UrlSpec {
            path: "/health".into(),
            codes: vec![(200, 299)],
            digest: None,
            host: "10.0.0.1:80".into(),
            sni: None,
        };
        assert_eq!(
            String::from_utf8(request(&u, HttpProtocol::Http11)).unwrap(),
            "GET /health HTTP/1.1\r\nUser-Agent: KeepAliveClient\r\nConnection: close\r\nHost: 10.0.0.1:80\r\n\r\n"
        );
        assert_eq!(
            String::from_utf8(request(&u, HttpProtocol::Http10)).unwrap(),
            "GET /health HTTP/1.0\r\nUser-Agent: KeepAliveClient\r\nHost: 10.0.0.1:80\r\n\r\n"
        );
    }

    #[test]
    fn head_parsing() {
        assert_eq!(
            parse_head(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\n\r\n"),
            Some(Head {
                status: 204,
                content_length: Some(0)
            })
        );
        assert_eq!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n"), None);
    }
}
