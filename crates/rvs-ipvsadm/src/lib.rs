//! # rvs-ipvsadm — ipvsadm compatibility for rvs
//!
//! Everything `rvsadm` needs to behave as `ipvsadm` 1.31 does; the socket and the
//! process's streams are supplied by the caller, so all of it is testable without rvsd:
//!
//! * [`parse_args`]: the command line, with popt's syntax (module `popt`) and
//!   ipvsadm's validation, messages and exit statuses ([`CliError`]), into a [`Command`];
//! * [`requests`] / [`render`]: a command as `rvs_api` requests, and replies as the exact
//!   bytes ipvsadm prints ([`mod@format`]: `-L` in all its views, `-c`, `-S`, `--timeout`,
//!   `--daemon`, `-h`, `-v`, plus `--json` and `--status`);
//! * [`parse_rules`] / [`restore_requests`]: rules files (`-S` output, `-R` input), also
//!   used by `rvsd --restore FILE`;
//! * [`run()`](fn@run): the whole tool from argv to exit status, given a way to reach rvsd.
//!
//! The command-line parser is hand-written on purpose: no argument-parsing library
//! reproduces popt's syntax (combined short options such as `-Ln`, `-p`'s optional
//! value, `--` handling) together with ipvsadm's order of checks and its messages.
//!
//! Known differences from ipvsadm 1.31, all deliberate:
//! * `-M` with a non-contiguous IPv4 mask is refused (the model stores prefixes);
//! * `-S` adds `-x`/`-y` for real servers with thresholds, so save/restore keeps them;
//! * sh/mh services with `flag-3` list it by name (ipvsadm prints an empty flag list);
//! * `-b ,` is an error (ipvsadm crashes);
//! * `-R` parses every line before applying any, and sends them in batches;
//! * popt's `!#:+` substitution inside option values is not supported.

mod check;
pub mod command;
pub mod error;
pub mod format;
pub mod names;
mod numbers;
pub mod options;
mod parse;
mod popt;
pub mod request;
pub mod rules;
pub mod run;
pub mod sort;

pub use command::{Command, Format, Invocation, List, ListWhat};
pub use error::{ipvs_strerror, CliError, Op};
pub use names::{NoNames, Resolver, SystemResolver};
pub use parse::parse_args;
pub use request::{render, requests, Output};
pub use rules::{parse_rules, parse_rules_with, restore_requests, Rule, RuleError};
pub use run::{execute, restore, run, Transport};
