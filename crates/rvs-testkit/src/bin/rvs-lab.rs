//! `rvs-lab`: a demo real server and a load generator (see `rvs-lab --help`).

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::net::SocketAddr;

#[derive(Parser)]
#[command(
    name = "rvs-lab",
    about = "rvs demo kit: a named HTTP real server and a load generator"
)]
struct Args {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Serve HTTP on ADDR, answering every request with NAME.
    Backend {
        #[arg(long)]
        name: String,
        #[arg(long)]
        listen: SocketAddr,
    },
    /// Accept TCP connections (or UDP datagrams with --udp) on ADDR and discard what
    /// arrives (a real server for connection-table scenarios).
    Sink {
        #[arg(long)]
        listen: SocketAddr,
        #[arg(long)]
        udp: bool,
    },
    /// Open a connection to ADDR (or a UDP flow with --udp), send one byte N times every
    /// INTERVAL ms, then keep it open for HOLD ms (an established entry that stays).
    Hold {
        #[arg(long)]
        target: SocketAddr,
        #[arg(long)]
        bind: Option<SocketAddr>,
        #[arg(long, default_value_t = 5)]
        packets: u32,
        #[arg(long, default_value_t = 20)]
        interval_ms: u64,
        #[arg(long, default_value_t = 0)]
        hold_ms: u64,
        #[arg(long)]
        udp: bool,
    },
    /// Send N requests (new connection each) to ADDR and print which server answered.
    Load {
        #[arg(long)]
        target: SocketAddr,
        #[arg(short = 'n', long, default_value_t = 600)]
        requests: u64,
        #[arg(short = 'c', long, default_value_t = 4)]
        concurrency: u64,
    },
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    match Args::parse().cmd {
        Cmd::Backend { name, listen } => {
            let l = tokio::net::TcpListener::bind(listen)
                .await
                .with_context(|| format!("binding {listen}"))?;
            rvs_testkit::http::serve(l, name).await;
            Ok(())
        }
        Cmd::Sink { listen, udp } => sink(listen, udp),
        Cmd::Hold {
            target,
            bind,
            packets,
            interval_ms,
            hold_ms,
            udp,
        } => hold(target, bind, packets, interval_ms, hold_ms, udp),
        Cmd::Load {
            target,
            requests,
            concurrency,
        } => {
            let r = rvs_testkit::http::load(target, requests, concurrency).await;
            let total: u64 = r.by_server.values().sum();
            println!(
                "{total} responses in {:.2} s ({:.0} req/s, new connection each), {} errors",
                r.elapsed.as_secs_f64(),
                total as f64 / r.elapsed.as_secs_f64().max(1e-9),
                r.errors
            );
            println!("{:<12} {:>8} {:>7}", "server", "replies", "share");
            for (name, n) in &r.by_server {
                println!(
                    "{:<12} {:>8} {:>6.1}%",
                    name,
                    n,
                    100.0 * *n as f64 / total.max(1) as f64
                );
            }
            if r.errors > 0 && total == 0 {
                anyhow::bail!("no request succeeded");
            }
            Ok(())
        }
    }
}

fn sink(listen: SocketAddr, udp: bool) -> Result<()> {
    use std::io::Read;
    if udp {
        let s = std::net::UdpSocket::bind(listen).with_context(|| format!("binding {listen}"))?;
        let mut buf = [0u8; 2048];
        loop {
            s.recv_from(&mut buf)?;
        }
    }
    let l = std::net::TcpListener::bind(listen).with_context(|| format!("binding {listen}"))?;
    for c in l.incoming() {
        let Ok(mut c) = c else { continue };
        std::thread::spawn(move || {
            let mut buf = [0u8; 4096];
            while matches!(c.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
    Ok(())
}

fn hold(
    target: SocketAddr,
    bind: Option<SocketAddr>,
    packets: u32,
    interval_ms: u64,
    hold_ms: u64,
    udp: bool,
) -> Result<()> {
    use std::io::Write;
    let gap = std::time::Duration::from_millis(interval_ms);
    if udp {
        let any: SocketAddr = if target.is_ipv4() {
            "0.0.0.0:0".parse()?
        } else {
            "[::]:0".parse()?
        };
        let s = std::net::UdpSocket::bind(bind.unwrap_or(any))?;
        for _ in 0..packets {
            s.send_to(b"x", target)?;
            std::thread::sleep(gap);
        }
    } else {
        let s = match bind {
            Some(b) => {
                let d = if b.is_ipv4() {
                    socket2::Domain::IPV4
                } else {
                    socket2::Domain::IPV6
                };
                let s = socket2::Socket::new(d, socket2::Type::STREAM, None)?;
                s.bind(&b.into())?;
                s.connect(&target.into())
                    .with_context(|| format!("connecting to {target}"))?;
                std::net::TcpStream::from(s)
            }
            None => std::net::TcpStream::connect(target)
                .with_context(|| format!("connecting to {target}"))?,
        };
        let mut s = s;
        s.set_nodelay(true)?;
        for _ in 0..packets {
            s.write_all(b"x")?;
            std::thread::sleep(gap);
        }
        std::thread::sleep(std::time::Duration::from_millis(hold_ms));
    }
    Ok(())
}
