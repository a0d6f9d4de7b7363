//! The typed result of parsing one ipvsadm command line.

use rvs_core::{Change, ServiceKey};
use std::path::PathBuf;

/// One parsed command line: the command and the rvs-only `--socket` override.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Invocation {
    pub command: Command,
    pub socket: Option<PathBuf>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `-h`: print the usage text, exit 0.
    Help,
    /// `-v`: print the version line, exit 0.
    Version,
    /// `-A -E -D -C -a -e -d -Z --set --start-daemon --stop-daemon`: a change to the table
    /// (what a rules file is made of).
    Change(Change),
    List(List),
    /// `-S [-n]`.
    Save {
        numeric: bool,
    },
    /// `-R`: rules on stdin.
    Restore,
    /// rvs extension `--status`.
    Status {
        json: bool,
    },
    /// rvs extension `--sysctl NAME|all`: show sysctls (`--sysctl NAME=VALUE` is a
    /// change).
    Sysctl {
        name: Option<String>,
    },
    /// rvs extensions `--drain` / `--undrain`: a fleet director withdraws its virtual
    /// addresses from the router, or announces them again (docs/fleet.md).
    Drain {
        drain: bool,
    },
}

impl Command {
    /// True for commands that change rvsd's state (what a rules file is made of).
    pub fn is_mutation(&self) -> bool {
        matches!(self, Command::Change(_))
    }
}

/// What `-L` lists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ListWhat {
    /// The whole table (with the version header).
    All,
    /// One service (`-L -t ...`), without the version header.
    Service(ServiceKey),
    /// `-c`: the connection table.
    Conns,
    /// `--timeout`.
    Timeouts,
    /// `--daemon`.
    Daemons,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct List {
    pub what: ListWhat,
    pub format: Format,
}

/// Listing format switches. When several views are asked for, the first of
/// stats > rate > thresholds > persistent-conn > tun-info wins, as in ipvsadm.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Format {
    pub numeric: bool,
    pub exact: bool,
    pub nosort: bool,
    pub stats: bool,
    pub rate: bool,
    pub thresholds: bool,
    pub persistent_conn: bool,
    pub tun_info: bool,
    /// rvs extension: JSON instead of ipvsadm's text.
    pub json: bool,
}

impl Format {
    pub fn numeric() -> Format {
        Format {
            numeric: true,
            ..Format::default()
        }
    }
}
