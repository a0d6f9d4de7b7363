//! rvsadm: `ipvsadm` for rvs. Same command line, messages, output and exit statuses;
//! the virtual-service table lives in rvsd, reached over its Unix socket
//! (`--socket PATH`, else `$RVS_SOCKET`, else /run/rvs/rvsd.sock).
//! All the work is in the `rvs-ipvsadm` library; this file only wires in the real
//! socket and the process's streams.

use rvs_ipvsadm::run::{os_reason, Transport};
use std::path::Path;

fn connect(path: &Path) -> Result<Box<dyn Transport>, String> {
    match rvs_api::Client::connect(path) {
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
