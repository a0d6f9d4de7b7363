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
