//! DNS_CHECK (`check_dns.c`): one UDP query (RD set, random id, class IN) to the real
//! server; a reply with the same id, QR set and RCODE 0 passes. Replies with another id,
//! or queries, are skipped until the timeout (connect_timeout).

use super::tcp::set_mark_fd;
use crate::epilog::Outcome;
use crate::plan::DnsSpec;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::net::UdpSocket;

/// The query keepalived sends: header (id, flags RD, one question), QNAME, QTYPE, IN.
/// `""` and `"."` both ask for the root.
pub fn build_query(id: u16, name: &str, qtype: u16) -> Vec<u8> {
    let mut q = Vec::with_capacity(32 + name.len());
    q.extend_from_slice(&id.to_be_bytes());
    q.extend_from_slice(&0x0100u16.to_be_bytes()); // RD
    q.extend_from_slice(&1u16.to_be_bytes()); // QDCOUNT
    q.extend_from_slice(&[0; 6]); // AN, NS, AR
    for label in name.split('.').filter(|l| !l.is_empty()) {
        q.push(label.len().min(63) as u8);
        q.extend_from_slice(&label.as_bytes()[..label.len().min(63)]);
    }
    q.push(0);
    q.extend_from_slice(&qtype.to_be_bytes());
    q.extend_from_slice(&1u16.to_be_bytes()); // IN
    q
}

pub async fn probe(d: &DnsSpec) -> Outcome {
    match query(d).await {
        Ok(()) => Outcome::Ok,
        Err(e) => Outcome::Fail(e),
    }
}

async fn query(d: &DnsSpec) -> Result<(), String> {
    let c = &d.conn;
    let local = c.bind.unwrap_or(if c.dst.is_ipv4() {
        SocketAddr::from(([0u8; 4], 0))
    } else {
        SocketAddr::from(([0u16; 8], 0))
    });
    let sock = UdpSocket::bind(local)
        .await
        .map_err(|e| format!("bind {local}: {e}"))?;
    if let Some(dev) = &c.bind_if {
        sock.bind_device(Some(dev.as_bytes()))
            .map_err(|e| format!("bind_if {dev}: {e}"))?;
    }
    if let Some(mark) = c.fwmark {
        set_mark_fd(sock.as_raw_fd(), mark).map_err(|e| format!("fwmark {mark}: {e}"))?;
    }
    sock.connect(c.dst)
        .await
        .map_err(|e| format!("connect {}: {e}", c.dst))?;
    let id = fastrand::u16(..);
    let q = build_query(id, &d.name, d.qtype);
    let exchange = async {
        sock.send(&q)
            .await
            .map_err(|e| format!("send to {}: {e}", c.dst))?;
        let mut buf = [0u8; 768];
        loop {
            let n = sock
                .recv(&mut buf)
                .await
                .map_err(|e| format!("read from {}: {e}", c.dst))?;
            if n < 12 || buf[..2] != id.to_be_bytes() {
                continue;
            }
            let flags = u16::from_be_bytes([buf[2], buf[3]]);
            if flags & 0x8000 == 0 {
                continue; // a query, not an answer
            }
            let rcode = flags & 0x000f;
            if rcode != 0 {
                return Err(format!("{} answered rcode {rcode}", c.dst));
            }
            return Ok(());
        }
    };
    match tokio::time::timeout(c.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!("read timeout from {}", c.dst)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_soa_query() {
        let q = build_query(0x1234, "", 6);
        assert_eq!(q, [0x12, 0x34, 1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 6, 0, 1]);
        assert_eq!(
            build_query(1, ".", 6),
            q.iter()
                .enumerate()
                .map(|(i, b)| if i < 2 { [0, 1][i] } else { *b })
                .collect::<Vec<_>>()
        );
        let q = build_query(1, "a.bc.", 1);
        assert_eq!(&q[12..], [1, b'a', 2, b'b', b'c', 0, 0, 1, 0, 1]);
    }
}
