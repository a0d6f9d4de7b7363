//! `rvsd --restore FILE`: load an `ipvsadm -S` rules file before serving.

use anyhow::{Context, Result};
use rvs_core::Table;
use std::path::Path;

pub fn restore_file(_table: &mut Table, file: &Path) -> Result<()> {
    let _text = std::fs::read_to_string(file).with_context(|| format!("reading {}", file.display()))?;
    anyhow::bail!("--restore is not wired yet")
}
