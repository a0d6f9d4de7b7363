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

/// rvsadm's command line for its man page and completions: ipvsadm's own help text, and
/// every long option it lists (rvsadm parses its arguments the way ipvsadm does, not
/// with clap).
fn doc_command() -> clap::Command {
    let help = rvs_ipvsadm::format::usage("rvsadm");
    let mut longs: Vec<String> = Vec::new();
    for line in help.lines() {
        for word in line.split_whitespace() {
            for part in word.split('|') {
                if let Some(name) = part.strip_prefix("--") {
                    let name = name.trim_end_matches(',');
                    if !name.is_empty()
                        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
                        && !longs.iter().any(|l| l == name)
                    {
                        longs.push(name.to_string());
                    }
                }
            }
        }
    }
    for extra in ["status", "json", "socket"] {
        if !longs.iter().any(|l| l == extra) {
            longs.push(extra.to_string());
        }
    }
    let mut cmd = clap::Command::new("rvsadm")
        .version(env!("CARGO_PKG_VERSION"))
        .about("Linux Virtual Server administration for rvs: the ipvsadm command line")
        .long_about(format!(
            "rvsadm is ipvsadm for rvs: the same commands, options, messages, output and exit \
             statuses, acting on the table of rvsd through its control socket (--socket PATH, \
             else $RVS_SOCKET, else /run/rvs/rvsd.sock). Extensions: --status (data plane, health \
             checkers, VRRP), --json, --sysctl, --drain and --undrain (a fleet director's \
             announced addresses).\n\n{help}"
        ))
        .disable_help_flag(true)
        .disable_version_flag(true);
    for l in longs {
        let id: &'static str = Box::leak(l.into_boxed_str());
        cmd = cmd.arg(clap::Arg::new(id).long(id).action(clap::ArgAction::SetTrue));
    }
    cmd
}

fn main() {
    let args: Vec<String> = std::env::args_os()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    if let Some(what) = rvs_docs::requested(&args) {
        if let Err(e) = rvs_docs::generate(doc_command(), "8", what) {
            eprintln!("rvsadm: {e}");
            std::process::exit(2);
        }
        return;
    }
    let status = rvs_ipvsadm::run(
        &args,
        &mut std::io::stdin().lock(),
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
        &mut connect,
    );
    std::process::exit(status);
}
