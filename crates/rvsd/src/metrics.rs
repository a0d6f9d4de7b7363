//! The metrics and dashboard listener ([`rvs_metrics`]) fed from the daemon: the same
//! requests `rvsadm` sends (`-Ln`, `--stats`, `--status`), each a short copy under the
//! table lock; rendering happens after.

use crate::Daemon;
use rvs_api::{Reply, Request, StatusReply};
use std::net::SocketAddr;
use std::sync::Arc;

struct Source(Arc<Daemon>);

impl rvs_metrics::Source for Source {
    fn view(&self) -> rvs_metrics::View {
        let services = match self.0.handle(Request::ListServices { key: None }) {
            Reply::Services(s) => s,
            _ => Vec::new(),
        };
        let global = match self.0.handle(Request::GlobalStats) {
            Reply::GlobalStats { stats, rates } => (stats, rates),
            _ => Default::default(),
        };
        let status = match self.0.handle(Request::Status) {
            Reply::Status(s) => s,
            _ => StatusReply {
                version: env!("CARGO_PKG_VERSION").into(),
                dataplane: self.0.plane().name().into(),
                checkers: Vec::new(),
                facts: Vec::new(),
            },
        };
        rvs_metrics::View {
            services,
            status,
            global,
        }
    }
}

/// The default listen address: localhost only.
pub fn default_addr() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], rvs_metrics::DEFAULT_PORT))
}

/// Binds `addr` and serves the metrics and the dashboard on it until the task ends.
///
/// # Errors
/// When the address cannot be bound.
pub async fn start(
    addr: SocketAddr,
    daemon: Arc<Daemon>,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let l = tokio::net::TcpListener::bind(addr).await?;
    let bound = l.local_addr()?;
    let h = tokio::spawn(async move {
        if let Err(e) = rvs_metrics::serve(l, Arc::new(Source(daemon))).await {
            tracing::error!("metrics listener: {e}");
        }
    });
    Ok((bound, h))
}
