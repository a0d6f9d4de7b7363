//! One probe of a checker: connect, ask, judge. Each probe is a future on the shared
//! runtime (no thread per checker); every step is bounded by the checker's
//! `connect_timeout` (MISC_CHECK: `misc_timeout`).

mod dns;
mod http;
mod misc;
mod tcp;
pub mod tls;

pub use dns::build_query;
pub use http::{fetch, parse_head, Fetched, Head, MAX_SHOWN_BODY};

use crate::epilog::Outcome;
use crate::plan::ProbeSpec;
use rvs_script::ScriptEnv;

/// Runs one probe. `url`: the URL an HTTP checker fetches this time.
pub async fn run(spec: &ProbeSpec, url: usize, env: &ScriptEnv) -> Outcome {
    match spec {
        ProbeSpec::Tcp(c) => tcp::probe(c).await,
        ProbeSpec::Http { conn, http, tls } => http::probe(conn, http, tls.as_ref(), url).await,
        ProbeSpec::Misc(m) => misc::probe(m, env).await,
        ProbeSpec::Dns(d) => dns::probe(d).await,
    }
}
