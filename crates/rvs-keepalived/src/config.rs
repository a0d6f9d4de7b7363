//! The whole configuration and the top-level blocks.

use crate::diag::{Diagnostic, Diags, LoadError, Severity};
use crate::global::{self, GlobalDefs};
use crate::lexer::{Lexer, LoadOptions};
use crate::lvs::{self, VirtualServer};
use crate::tree::{self, Node};
use crate::vrrp::{self, VrrpInstance, VrrpScript, VrrpSyncGroup};
use crate::vsg::{self, VirtualServerGroup};
use crate::{finalize, value};
use std::path::Path;

/// A loaded keepalived.conf.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Config {
    pub global: GlobalDefs,
    pub vrrp_scripts: Vec<VrrpScript>,
    pub vrrp_sync_groups: Vec<VrrpSyncGroup>,
    pub vrrp_instances: Vec<VrrpInstance>,
    pub virtual_server_groups: Vec<VirtualServerGroup>,
    pub virtual_servers: Vec<VirtualServer>,
    /// The global `SSL { … }` block (client certificate for SSL_GET).
    pub ssl: Option<SslContext>,
    /// Warnings and unknown keywords, in file order (errors make the load fail).
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SslContext {
    pub password: Option<String>,
    pub ca: Option<String>,
    pub certificate: Option<String>,
    pub key: Option<String>,
}

impl Config {
    /// True when keepalived would report a configuration error that still lets it run
    /// (an unknown keyword): `rvsd -t` then fails.
    pub fn has_unknown_keywords(&self) -> bool {
        self.diagnostics
            .iter()
            .any(|d| d.severity == Severity::Unknown)
    }

    pub fn group(&self, name: &str) -> Option<&VirtualServerGroup> {
        self.virtual_server_groups.iter().find(|g| g.name == name)
    }
}

/// Top-level blocks keepalived has and rvs does not (yet).
const TOP_UNSUPPORTED: &[&str] = &[
    "garp_group",
    "linkbeat_interfaces",
    "static_ipaddress",
    "static_routes",
    "static_rules",
    "track_group",
    "vrrp_track_process",
    "vrrp_track_file",
    "track_file",
    "bfd_instance",
    "interface_up_down_delays",
];

/// Reads `path` and the files it includes.
pub fn load(path: &Path) -> Result<Config, LoadError> {
    load_with(path, &LoadOptions::default())
}

pub fn load_with(path: &Path, opts: &LoadOptions) -> Result<Config, LoadError> {
    let mut d = Diags::with_limits(&opts.limits);
    let items = Lexer::new(opts, &mut d).run(path)?;
    build(items, d, opts)
}

/// Parses `text` as if it were the file `path` (includes are relative to its directory).
pub fn parse_str(path: &Path, text: &str) -> Result<Config, LoadError> {
    parse_str_with(path, text, &LoadOptions::default())
}

pub fn parse_str_with(path: &Path, text: &str, opts: &LoadOptions) -> Result<Config, LoadError> {
    let mut d = Diags::with_limits(&opts.limits);
    let items = Lexer::new(opts, &mut d).run_str(path, text);
    build(items, d, opts)
}

fn build(
    items: Vec<crate::lexer::Item>,
    mut d: Diags,
    opts: &LoadOptions,
) -> Result<Config, LoadError> {
    let nodes = tree::build(items, &mut d, opts.limits.depth);
    let mut cfg = Config::default();
    for n in &nodes {
        top(&mut d, n, &mut cfg);
    }
    finalize::run(&mut d, &mut cfg);
    let mut list = d.finish();
    list.sort_by(|a, b| a.pos.cmp(&b.pos));
    if list.iter().any(|x| x.severity == Severity::Error) {
        return Err(LoadError::Invalid(list));
    }
    cfg.diagnostics = list;
    Ok(cfg)
}

fn top(d: &mut Diags, n: &Node, cfg: &mut Config) {
    match n.name() {
        "global_defs" => {
            if value::need_block(d, n) {
                global::parse(d, n, &mut cfg.global);
            }
        }
        "vrrp_script" => {
            if let Some(s) = vrrp::parse_script(d, n) {
                cfg.vrrp_scripts.push(s);
            }
        }
        "vrrp_sync_group" => {
            if let Some(g) = vrrp::parse_sync_group(d, n) {
                cfg.vrrp_sync_groups.push(g);
            }
        }
        "vrrp_instance" => {
            if let Some(i) = vrrp::parse_instance(d, n) {
                cfg.vrrp_instances.push(i);
            }
        }
        "virtual_server_group" => {
            if let Some(g) = vsg::parse(d, n) {
                cfg.virtual_server_groups.push(g);
            }
        }
        "virtual_server" => {
            if let Some(vs) = lvs::parse_vs(d, n) {
                cfg.virtual_servers.push(vs);
            }
        }
        "SSL" => {
            d.warn_once(
                "SSL",
                n.pos(),
                "SSL block: rvs's SSL_GET presents no client certificate - ignored",
            );
            let mut s = SslContext::default();
            for c in n.children() {
                let v = value::string(d, c);
                match c.name() {
                    "password" => s.password = v,
                    "ca" => s.ca = v,
                    "certificate" => s.certificate = v,
                    "key" => s.key = v,
                    other => d.unknown(c.pos(), other),
                }
            }
            cfg.ssl = Some(s);
        }
        k if TOP_UNSUPPORTED.contains(&k) => d.warn_once(
            k,
            n.pos(),
            format!("'{k}' is not supported by rvs yet - block ignored"),
        ),
        other => d.unknown(n.pos(), other),
    }
}
