//! From a command to rvsd requests, and from rvsd's replies to what ipvsadm prints.
//!
//! [`requests`] and [`render`] are pure: a test feeds replies and compares output bytes
//! and exit status, no daemon needed.

use crate::command::{Command, ListWhat};
use crate::error::{ipvs_strerror, Op};
use crate::format;
use crate::names::Resolver;
use rvs_api::{ApiError, Reply, Request};
use rvs_core::Change;

/// The requests one command sends, in order (none for `-h`, `-v`, `-R`).
pub fn requests(cmd: &Command) -> Vec<Request> {
    match cmd {
        Command::Help | Command::Version | Command::Restore => vec![],
        Command::Change(change) => vec![Request::Change(change.clone())],
        Command::Save { .. } => vec![Request::ListServices { key: None }],
        Command::Status { .. } => vec![Request::Status],
        Command::Sysctl { .. } => vec![Request::Sysctls],
        Command::Drain { drain } => vec![Request::Drain { drain: *drain }],
        Command::List(list) => match list.what {
            ListWhat::All => vec![Request::Info, Request::ListServices { key: None }],
            ListWhat::Service(key) => vec![Request::ListServices { key: Some(key) }],
            ListWhat::Conns => vec![Request::ListConns],
            ListWhat::Timeouts => vec![Request::GetTimeouts],
            ListWhat::Daemons => vec![Request::ListDaemons],
        },
    }
}

/// What a command prints and the exit status it ends with.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub stdout: String,
    pub stderr: String,
    pub status: i32,
}

impl Output {
    fn out(stdout: String) -> Output {
        Output {
            stdout,
            ..Output::default()
        }
    }

    fn err(stderr: String, status: i32) -> Output {
        Output {
            stderr,
            status,
            ..Output::default()
        }
    }

    /// Appends another command's output; the status becomes the later one's.
    pub fn then(&mut self, next: Output) {
        self.stdout.push_str(&next.stdout);
        self.stderr.push_str(&next.stderr);
        self.status = next.status;
    }
}

/// The libipvs call a change is, whose messages apply to its failure.
fn change_op(change: &Change) -> Op {
    match change {
        Change::AddService(_) | Change::SetService(_) => Op::AddService,
        Change::EditService(_) => Op::EditService,
        Change::DelService(_) => Op::DelService,
        Change::Flush => Op::Flush,
        Change::AddDest { .. } | Change::SetDest { .. } => Op::AddDest,
        Change::EditDest { .. } => Op::EditDest,
        Change::DelDest { .. } => Op::DelDest,
        Change::Zero(_) => Op::Zero,
        Change::SetTimeouts { .. } => Op::SetTimeout,
        Change::StartDaemon(_) => Op::StartDaemon,
        Change::StopDaemon { .. } => Op::StopDaemon,
        Change::SetSysctl { .. } => Op::Sysctl,
    }
}

/// ipvsadm's text for a failed call: its own table, else the errno's `strerror`. A
/// change the data plane refused, and a failure without errno (a protocol-level refusal),
/// print rvsd's message: ipvsadm has no words for them.
pub fn error_text(op: Op, e: &ApiError) -> String {
    match e.errno {
        Some(errno) if !e.refused => ipvs_strerror(op, errno).to_string(),
        _ => e.message.clone(),
    }
}

fn unexpected(reply: &Reply) -> Output {
    let kind = match reply {
        Reply::Ok => "Ok",
        Reply::Error(_) => "Error",
        Reply::Info(_) => "Info",
        Reply::Services(_) => "Services",
        Reply::Conns(_) => "Conns",
        Reply::GlobalStats { .. } => "GlobalStats",
        Reply::Timeouts(_) => "Timeouts",
        Reply::Daemons(_) => "Daemons",
        Reply::Batch(_) => "Batch",
        Reply::Status(_) => "Status",
        Reply::Sysctls(_) => "Sysctls",
    };
    Output::err(format!("unexpected reply from rvsd: {kind}\n"), 255)
}

/// Listing failures: ipvsadm prints the message and exits with 1.
fn list_error(op: Op, reply: &Reply) -> Output {
    match reply {
        Reply::Error(e) => Output::err(format!("{}\n", error_text(op, e)), 1),
        other => unexpected(other),
    }
}

/// Turns the replies to [`requests`]`(cmd)` into output and exit status.
pub fn render(cmd: &Command, replies: &[Reply], names: &dyn Resolver) -> Output {
    if replies.len() != requests(cmd).len() {
        return Output::err("rvsd answered the wrong number of requests\n".into(), 255);
    }
    match cmd {
        Command::Help | Command::Version | Command::Restore => Output::default(),
        Command::List(list) => render_list(list, replies, names),
        Command::Save { numeric } => match &replies[0] {
            Reply::Services(s) => Output::out(format::save(s, *numeric, names)),
            other => list_error(Op::GetServices, other),
        },
        Command::Status { json } => match &replies[0] {
            Reply::Status(s) if *json => Output::out(format::json::status(s)),
            Reply::Status(s) => Output::out(format::status(s)),
            other => list_error(Op::Status, other),
        },
        Command::Sysctl { name } => match &replies[0] {
            Reply::Sysctls(all) => render_sysctls(all, name.as_deref()),
            other => list_error(Op::Sysctl, other),
        },
        Command::Drain { .. } => match &replies[0] {
            Reply::Ok => Output::default(),
            Reply::Error(e) => Output::err(format!("{}\n", e.message), 255),
            other => unexpected(other),
        },
        Command::Change(Change::SetSysctl { name, value }) => match &replies[0] {
            Reply::Ok => Output::default(),
            Reply::Error(e) => Output::err(
                format!(
                    "setting {}{}={value}: {}\n",
                    rvs_core::sysctl::PREFIX,
                    name.trim_start_matches(rvs_core::sysctl::PREFIX),
                    e.message
                ),
                255,
            ),
            other => unexpected(other),
        },
        Command::Change(change) => match &replies[0] {
            Reply::Ok => Output::default(),
            // ipvsadm prints the message and returns -1 from main: exit status 255.
            Reply::Error(e) => Output::err(format!("{}\n", error_text(change_op(change), e)), 255),
            other => unexpected(other),
        },
    }
}

fn render_list(list: &crate::command::List, replies: &[Reply], names: &dyn Resolver) -> Output {
    let f = &list.format;
    match list.what {
        ListWhat::All => {
            let info = match &replies[0] {
                Reply::Info(info) => info,
                other => return list_error(Op::GetInfo, other),
            };
            match &replies[1] {
                Reply::Services(s) if f.json => Output::out(format::json::table(info, s, f.nosort)),
                Reply::Services(s) => Output::out(format::list_table(info, s, f, names)),
                other => {
                    // ipvsadm has printed its version line before asking for services.
                    let mut out = list_error(Op::GetServices, other);
                    if !f.json {
                        let (a, b, c) = info.version;
                        out.stdout = format!(
                            "IP Virtual Server version {a}.{b}.{c} (size={})\n",
                            info.size
                        );
                    }
                    out
                }
            }
        }
        ListWhat::Service(_) => match &replies[0] {
            Reply::Services(s) => match s.first() {
                Some(svc) if f.json => Output::out(format::json::one_service(svc, f.nosort)),
                Some(svc) => Output::out(format::list_service(svc, f, names)),
                None => Output::err("No such service\n".into(), 1),
            },
            other => list_error(Op::GetService, other),
        },
        ListWhat::Conns => match &replies[0] {
            Reply::Conns(c) if f.json => Output::out(format::json::conns(c)),
            Reply::Conns(c) => Output::out(format::list_conns(c, f, names)),
            other => list_error(Op::GetConns, other),
        },
        ListWhat::Timeouts => match &replies[0] {
            Reply::Timeouts(t) if f.json => Output::out(format::json::timeouts(t)),
            Reply::Timeouts(t) => Output::out(format::timeouts(t)),
            other => list_error(Op::GetTimeout, other),
        },
        ListWhat::Daemons => match &replies[0] {
            Reply::Daemons(d) if f.json => Output::out(format::json::daemons(d)),
            Reply::Daemons(d) => Output::out(format::daemons(d)),
            other => list_error(Op::GetDaemon, other),
        },
    }
}

/// `net.ipv4.vs.NAME = VALUE` lines, as sysctl(8) prints them: all, or the one named.
fn render_sysctls(all: &[(String, String)], name: Option<&str>) -> Output {
    let prefix = rvs_core::sysctl::PREFIX;
    let line = |(n, v): &(String, String)| format!("{prefix}{n} = {v}\n");
    match name {
        None => Output::out(all.iter().map(line).collect()),
        Some(n) => {
            let n = n.trim_start_matches(prefix);
            match all.iter().find(|(k, _)| k == n) {
                Some(kv) => Output::out(line(kv)),
                None => Output::err(format!("no sysctl {prefix}{n}\n"), 1),
            }
        }
    }
}
