//! rvsadm: `ipvsadm` for rvs. Same command line, messages, output and exit statuses;
//! the virtual-service table lives in rvsd, reached over its Unix socket
//! (`--socket PATH`, else `$RVS_SOCKET`, else /run/rvs/rvsd.sock). It waits at most
//! `$RVS_TIMEOUT` seconds (default 30) for a reply, then says so and exits 2.
//! All the work is in the `rvs-ipvsadm` library; this file only wires in the real
//! socket and the process's streams.

use rvs_ipvsadm::run::{os_reason, Transport};
use std::path::Path;
use std::time::Duration;

/// Environment variable: seconds to wait for rvsd's reply (fractions allowed; 0 waits
/// forever). Default [`rvs_api::DEFAULT_TIMEOUT`].
const TIMEOUT_ENV: &str = "RVS_TIMEOUT";

fn timeout() -> Duration {
    std::env::var(TIMEOUT_ENV)
        .ok()
        .and_then(|v| v.trim().parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map_or(rvs_api::DEFAULT_TIMEOUT, Duration::from_secs_f64)
}

fn connect(path: &Path) -> Result<Box<dyn Transport>, String> {
    match rvs_api::Client::connect_timeout(path, timeout()) {
        Ok(client) => Ok(Box::new(client)),
        Err(rvs_api::ClientError::Connect { source, .. }) => Err(os_reason(&source)),
        Err(other) => Err(other.to_string()),
    }
}

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let status = rvs_ipvsadm::run(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        &mut connect,
    );
    std::process::exit(status);
}
