//! `rvsd --restore FILE`: apply an `ipvsadm -S` rules file before serving.
//!
//! Every line is parsed first (ipvsadm's syntax and messages); a bad line stops the daemon
//! from starting with `FILE:LINE: message` and nothing applied. The rules then go through
//! the same dispatch as requests on the control socket; a rule the table refuses (a
//! duplicate service, say) also stops the start, naming its line.

use crate::Daemon;
use anyhow::{bail, Context, Result};
use rvs_api::Reply;
use std::path::Path;

/// Applies the rules of `file`; returns how many requests were applied.
pub fn restore_file(daemon: &Daemon, file: &Path) -> Result<usize> {
    let text =
        std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    let rules = rvs_ipvsadm::parse_rules(&text)
        .map_err(|e| anyhow::anyhow!("{}:{}: {}", file.display(), e.line, e.message))?;
    let mut applied = 0;
    for rule in rules.iter().filter(|r| r.command.is_mutation()) {
        for req in rvs_ipvsadm::requests(&rule.command) {
            if let Reply::Error(e) = daemon.handle(req) {
                bail!("{}:{}: {}", file.display(), rule.line, e.message);
            }
            applied += 1;
        }
    }
    Ok(applied)
}
