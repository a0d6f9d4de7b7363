//! SSL_GET against a rustls server with a self-signed certificate (rcgen): accepted, as
//! keepalived accepts any certificate; SNI sent only with enable_sni.

mod health_lab;

use health_lab::*;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

struct TlsServer {
    addr: SocketAddr,
    /// SNI of each handshake (None when the client sent none).
    sni: Arc<Mutex<Vec<Option<String>>>>,
    status: Arc<Mutex<u16>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn tls_server(ip: &str) -> TlsServer {
    let ck = rcgen::generate_simple_self_signed(vec!["rs.test.invalid".to_string()]).unwrap();
    let cert = CertificateDer::from(ck.cert.der().to_vec());
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(ck.signing_key.serialize_der()));
    let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_no_client_auth()
    .with_single_cert(vec![cert], key)
    .unwrap();
    let acceptor = TlsAcceptor::from(Arc::new(cfg));
    let l = TcpListener::bind(SocketAddr::new(ip.parse().unwrap(), 0))
        .await
        .unwrap();
    let addr = l.local_addr().unwrap();
    let sni = Arc::new(Mutex::new(Vec::new()));
    let status = Arc::new(Mutex::new(200u16));
    let (sni2, status2) = (sni.clone(), status.clone());
    let task = tokio::spawn(async move {
        loop {
            let Ok((s, _)) = l.accept().await else {
                continue;
            };
            let acceptor = acceptor.clone();
            let (sni, status) = (sni2.clone(), status2.clone());
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(s).await else {
                    return;
                };
                sni.lock()
                    .unwrap()
                    .push(tls.get_ref().1.server_name().map(str::to_string));
                let mut buf = [0u8; 2048];
                let mut head = Vec::new();
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                let code = *status.lock().unwrap();
                let _ = tls
                    .write_all(
                        format!("HTTP/1.1 {code} X\r\nContent-Length: 2\r\n\r\nok").as_bytes(),
                    )
                    .await;
                let _ = tls.shutdown().await;
            });
        }
    });
    TlsServer {
        addr,
        sni,
        status,
        task,
    }
}

fn conf(vip: &str, rs: SocketAddr, extra: &str) -> String {
    format!(
        "virtual_server {vip} 443 {{\n protocol TCP\n lb_kind NAT\n delay_loop 0.3\n warmup 0\n\
         real_server {} {} {{\n  SSL_GET {{\n   url {{\n    path /\n   }}\n   connect_timeout 1\n   delay_before_retry 0.2\n {extra}\n  }}\n }}\n}}\n",
        rs.ip(),
        rs.port()
    )
}

#[tokio::test]
async fn ssl_get_accepts_a_self_signed_certificate_and_judges_the_status() {
    let srv = tls_server("127.0.20.1").await;
    let cfg = config(&conf("127.0.20.100", srv.addr, ""));
    let lab = Lab::start(&cfg).await;
    let svc = "tcp 127.0.20.100:443";
    wait_for("two handshakes", Duration::from_secs(3), || {
        srv.sni.lock().unwrap().len() >= 2
    })
    .await;
    assert_eq!(lab.weight(svc, srv.addr), Some(1));
    assert!(lab.sup.status()[0].up);
    assert_eq!(lab.sup.status()[0].failures, 0, "{:?}", lab.sup.status());
    assert_eq!(
        srv.sni.lock().unwrap()[0],
        None,
        "no SNI without enable_sni"
    );

    *srv.status.lock().unwrap() = 500;
    wait_for("down on 500", Duration::from_secs(5), || {
        lab.weight(svc, srv.addr).is_none()
    })
    .await;
    *srv.status.lock().unwrap() = 200;
    wait_for("up on 200", Duration::from_secs(3), || {
        lab.weight(svc, srv.addr) == Some(1)
    })
    .await;
}

#[tokio::test]
async fn ssl_get_sends_sni_when_enabled() {
    let srv = tls_server("127.0.21.1").await;
    let cfg = config(&conf(
        "127.0.21.100",
        srv.addr,
        "enable_sni\n virtualhost www.sni.invalid",
    ));
    let _lab = Lab::start(&cfg).await;
    wait_for("a handshake", Duration::from_secs(3), || {
        !srv.sni.lock().unwrap().is_empty()
    })
    .await;
    assert_eq!(
        srv.sni.lock().unwrap()[0].as_deref(),
        Some("www.sni.invalid")
    );
    let cfg = config(&conf(
        "127.0.21.101",
        srv.addr,
        "sni_name other.sni.invalid",
    ));
    let _lab2 = Lab::start(&cfg).await;
    wait_for("sni_name used", Duration::from_secs(3), || {
        srv.sni
            .lock()
            .unwrap()
            .iter()
            .any(|s| s.as_deref() == Some("other.sni.invalid"))
    })
    .await;
}

#[tokio::test]
async fn ssl_get_fails_against_a_plain_http_server() {
    let rs = RealServer::http("127.0.22.1", 200, b"x").await;
    let cfg = config(&conf("127.0.22.100", rs.addr, ""));
    let lab = Lab::start(&cfg).await;
    wait_for("down", Duration::from_secs(5), || {
        lab.dests("tcp 127.0.22.100:443").is_empty()
    })
    .await;
    let e = lab.sup.status()[0].last_error.clone().unwrap();
    assert!(e.contains("SSL"), "{e}");
}
