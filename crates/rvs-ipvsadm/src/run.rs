//! rvsadm from argv to exit status: parse, (for `-R`) read and parse the rules, connect,
//! send, print. The binary only supplies the real socket; tests supply a fake.

use crate::command::Command;
use crate::format;
use crate::names::{Resolver, SystemResolver};
use crate::parse::parse_args;
use crate::request::{render, requests, Output};
use crate::rules::{parse_rules_with, Rule};
use rvs_api::{Reply, Request};
use std::io::{Read, Write};
use std::path::Path;

/// A connection to rvsd: one reply per request.
pub trait Transport {
    /// # Errors
    /// The connection failed (a sentence for the operator).
    fn call(&mut self, req: &Request) -> Result<Reply, String>;
}

impl Transport for rvs_api::Client {
    fn call(&mut self, req: &Request) -> Result<Reply, String> {
        rvs_api::Client::call(self, req).map_err(|e| match e {
            // strerror's words, then ours (ipvsadm's messages are strerror texts)
            rvs_api::ClientError::TimedOut(t) => {
                format!(
                    "Connection timed out (no reply within {} s)",
                    t.as_secs_f64()
                )
            }
            other => other.to_string(),
        })
    }
}

/// Opens a [`Transport`] to the socket at the given path; the error is the reason, e.g.
/// `No such file or directory`.
pub type Connector<'a> = dyn FnMut(&Path) -> Result<Box<dyn Transport>, String> + 'a;

/// Sends one command's requests and renders the replies.
///
/// # Errors
/// The connection failed.
pub fn execute(
    cmd: &Command,
    t: &mut dyn Transport,
    names: &dyn Resolver,
) -> Result<Output, String> {
    let replies = requests(cmd)
        .iter()
        .map(|r| t.call(r))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(render(cmd, &replies, names))
}

/// Requests per batch frame: keeps each frame far below rvsd's request size limit.
const BATCH_CHUNK: usize = 4096;

/// Applies parsed rules the way `ipvsadm -R` does, but with runs of changes sent as
/// [`Request::Batch`]es. A failing line prints its message and the rest go on; the exit
/// status is the last line's (0, or 255 after a table error), as ipvsadm's. `-h`/`-v`
/// print and end the restore there, as they end ipvsadm.
///
/// # Errors
/// The connection failed.
pub fn restore(
    rules: &[Rule],
    prog: &str,
    t: &mut dyn Transport,
    names: &dyn Resolver,
) -> Result<Output, String> {
    let mut out = Output::default();
    let mut i = 0;
    while i < rules.len() {
        let cmd = &rules[i].command;
        match cmd {
            Command::Help | Command::Version => {
                out.then(Output {
                    stdout: immediate_text(cmd, prog),
                    ..Output::default()
                });
                return Ok(out);
            }
            c if c.is_mutation() => {
                let mut end = i;
                while end < rules.len() && end - i < BATCH_CHUNK && rules[end].command.is_mutation()
                {
                    end += 1;
                }
                apply_batch(&rules[i..end], t, names, &mut out)?;
                i = end;
            }
            _ => {
                out.then(execute(cmd, t, names)?);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Sends a run of changes as one batch; each change is one request with one reply.
fn apply_batch(
    chunk: &[Rule],
    t: &mut dyn Transport,
    names: &dyn Resolver,
    out: &mut Output,
) -> Result<(), String> {
    let batch: Vec<Request> = chunk.iter().flat_map(|r| requests(&r.command)).collect();
    debug_assert_eq!(batch.len(), chunk.len());
    let replies = match t.call(&Request::Batch(batch))? {
        Reply::Batch(replies) if replies.len() == chunk.len() => replies,
        // A refusal of the whole batch is every line's failure.
        Reply::Error(e) => vec![Reply::Error(e); chunk.len()],
        _ => return Err("rvsd answered the batch with the wrong number of replies".into()),
    };
    for (rule, reply) in chunk.iter().zip(&replies) {
        out.then(render(&rule.command, std::slice::from_ref(reply), names));
    }
    Ok(())
}

fn immediate_text(cmd: &Command, prog: &str) -> String {
    match cmd {
        Command::Help => format::usage(prog),
        _ => format::version(),
    }
}

/// `io::Error`'s text without Rust's ` (os error N)` suffix, as C's `strerror` gives it.
pub fn os_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(i) => s[..i].to_string(),
        None => s,
    }
}

/// The reason a connection failed, with what to do about it: start rvsd when nothing
/// listens there; be root when the socket (mode 0600) or its directory refuses us, in
/// ipvsadm's words for EPERM ("Permission denied (you must be root)").
fn connect_advice(reason: &str) -> String {
    match reason {
        "No such file or directory" | "Connection refused" => {
            format!("{reason} (start it with: rvsd [--socket PATH])")
        }
        "Permission denied" | "Operation not permitted" => {
            "Permission denied (you must be root)".to_string()
        }
        other => other.to_string(),
    }
}

fn basename(prog: &str) -> &str {
    prog.rsplit('/').next().unwrap_or(prog)
}

/// The whole of rvsadm: returns the exit status. `args[0]` is the program name.
pub fn run(
    args: &[String],
    stdin: &mut dyn Read,
    stdout: &mut dyn Write,
    stderr: &mut dyn Write,
    connect: &mut Connector<'_>,
) -> i32 {
    let prog = args.first().map_or("rvsadm", String::as_str);
    let names = SystemResolver::new();
    // Output errors (a closed pipe, as in `rvsadm -Ln | head`) are not worth a message.
    let mut emit = |o: &Output| {
        let _ = stdout.write_all(o.stdout.as_bytes());
        let _ = stdout.flush();
        let _ = stderr.write_all(o.stderr.as_bytes());
        o.status
    };
    let inv = match parse_args(args, &names) {
        Ok(inv) => inv,
        Err(e) => {
            return emit(&Output {
                stderr: e.render(prog),
                status: e.exit_status(),
                ..Output::default()
            })
        }
    };
    if matches!(inv.command, Command::Help | Command::Version) {
        return emit(&Output {
            stdout: immediate_text(&inv.command, prog),
            ..Output::default()
        });
    }
    let rules = if inv.command == Command::Restore {
        let mut raw = Vec::new();
        if let Err(e) = stdin.read_to_end(&mut raw) {
            return emit(&Output {
                stderr: format!("{prog}: cannot read rules from stdin: {}\n", os_reason(&e)),
                status: 2,
                ..Output::default()
            });
        }
        match parse_rules_with(&String::from_utf8_lossy(&raw), prog, &names) {
            Ok(rules) => Some(rules),
            Err(e) => {
                return emit(&Output {
                    stderr: format!("{e}\n"),
                    status: e.exit_status,
                    ..Output::default()
                })
            }
        }
    } else {
        None
    };
    let socket = rvs_api::socket_path(inv.socket.as_deref());
    let mut transport = match connect(&socket) {
        Ok(t) => t,
        Err(reason) => {
            return emit(&Output {
                stderr: format!(
                    "{}: cannot reach rvsd at {}: {}\n",
                    basename(prog),
                    socket.display(),
                    connect_advice(&reason)
                ),
                status: 2,
                ..Output::default()
            })
        }
    };
    let result = match &rules {
        Some(rules) => restore(rules, prog, transport.as_mut(), &names),
        None => execute(&inv.command, transport.as_mut(), &names),
    };
    match result {
        Ok(out) => emit(&out),
        Err(reason) => emit(&Output {
            stderr: format!(
                "{}: lost rvsd at {}: {reason}\n",
                basename(prog),
                socket.display()
            ),
            status: 2,
            ..Output::default()
        }),
    }
}
