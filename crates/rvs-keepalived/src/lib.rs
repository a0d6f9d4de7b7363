//! # rvs-keepalived — keepalived.conf for rvs
//!
//! Reads a keepalived configuration with keepalived's own lexical rules ([`lexer`]:
//! comments, quoting, line continuation, `include` globs, `$NAME` parameters, `@id`
//! conditional lines), builds a keyword tree ([`tree`]) and from it a typed model
//! ([`Config`]): `global_defs`, `virtual_server` / `virtual_server_group` with their real
//! servers and health checkers, and the VRRP blocks (`vrrp_script`, `vrrp_sync_group`,
//! `vrrp_instance`).
//!
//! * [`to_table_ops`] turns the model into the services and real servers of the rvs table
//!   (keepalived's default `lb_kind` is NAT ⇒ [`rvs_core::Forward::Masq`]; DR ⇒ Route;
//!   TUN ⇒ Tunnel).
//! * [`pool`] is the one owner of keepalived's mapping to the table while it runs
//!   (`ipwrapper.c`): the health checkers' verdicts, inhibit, sorry server, quorum, and the
//!   reload diff, as [`rvs_core::Change`]s and notify scripts.
//! * Errors name `file:line:col` and nothing is applied ([`LoadError::Invalid`]);
//!   deprecated, obsolete and not-yet-supported keywords are warnings
//!   ([`Config::diagnostics`]), each reported once.
//!
//! * Hostile input is bounded ([`Limits`]): file size, line length, `$NAME` expansion,
//!   nesting, include cycles and non-regular files are refused with `file:line:col`.
//!
//! No I/O besides reading the configuration files.

pub mod checker;
pub mod config;
pub mod diag;
pub mod dump;
mod finalize;
pub mod global;
pub mod lexer;
pub mod limits;
pub mod lvs;
pub mod ops;
pub mod pool;
pub mod script;
pub mod tree;
pub mod value;
pub mod vrrp;
pub mod vsg;

pub use checker::{
    Checker, CheckerCommon, CheckerKind, DnsCheck, HttpCheck, HttpProtocol, MiscCheck, Url,
};
pub use config::{load, load_with, parse_str, parse_str_with, Config};
pub use diag::{Diagnostic, LoadError, Pos, Severity};
pub use lexer::LoadOptions;
pub use limits::Limits;
pub use lvs::{LvsMethod, RealServer, SorryServer, Timing, VirtualServer, VsTarget};
pub use ops::{entries, to_table_ops, DesiredState, DesiredVs, Entry};
pub use script::Script;
