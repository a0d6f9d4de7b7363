//! ipvsadm's command line, option by option, into a [`Command`].
//!
//! The parser is hand-written: no argument library reproduces popt's syntax (see
//! [`crate::popt`]) together with ipvsadm's order of checks and its messages, which
//! scripts and operators rely on. It follows ipvsadm 1.31 step by step:
//!
//! 1. The first option must be a command (`-A`, `-L`, `--set`, ...); `-h`/`-v` act at once.
//!    Anything else first gives the "Try `prog -h'" hint (exit 255).
//! 2. The other options are applied in order, each checked as it comes (`illegal weight
//!    specified`, `multiple 'weight' options specified`, `-6 used before -f`, ...). A
//!    second command is an `invalid option`.
//! 3. Then `--set`'s three values, leftover words (`unexpected argument`), `-b` flags.
//! 4. Then the per-command legality table, and the command-specific rules: zero port
//!    without persistence, one-packet scheduling only for UDP, DR/TUN servers take the
//!    service port, mixed families only for tunnels, tunnel options only with `-i`.
//!
//! rvs extensions: `--socket PATH` (anywhere, even before the command), `--json` (with
//! `-L` and `--status`), and the `--status` command. A command line of only `--socket`
//! lists the table, like a bare `ipvsadm`.

mod finish;
mod state;
mod values;

use crate::command::{Command, Format, Invocation, List, ListWhat};
use crate::error::CliError;
use crate::names::Resolver;
use crate::options::{Cmd, OptId, Switch};
use crate::popt::Popt;
use state::State;
use values::parse_timeout;

/// Parses one command line; `argv[0]` is the program name.
///
/// # Errors
/// The [`CliError`] ipvsadm would report, with its exit status.
pub fn parse_args(argv: &[String], names: &dyn Resolver) -> Result<Invocation, CliError> {
    if argv.len() <= 1 {
        return Ok(Invocation {
            command: list_all(Format::default()),
            socket: None,
        });
    }
    let mut p = Parser {
        popt: Popt::new(argv),
        names,
        st: State::default(),
    };
    let cmd = match p.command()? {
        First::Command(cmd) => cmd,
        First::Immediate(command) => {
            return Ok(Invocation {
                command,
                socket: p.st.socket,
            })
        }
    };
    p.options()?;
    p.positional(cmd)?;
    p.st.apply_sched_flags()?;
    p.st.finish(cmd)
}

fn list_all(format: Format) -> Command {
    Command::List(List {
        what: ListWhat::All,
        format,
    })
}

enum First {
    Command(Cmd),
    /// `-h`, `-v`: done, whatever follows.
    Immediate(Command),
}

struct Parser<'a> {
    popt: Popt<'a>,
    names: &'a dyn Resolver,
    st: State,
}

impl Parser<'_> {
    fn command(&mut self) -> Result<First, CliError> {
        loop {
            let (switch, value) = match self.popt.next_opt() {
                None if self.st.options.contains(OptId::Socket) && self.popt.args().is_empty() => {
                    return Ok(First::Command(Cmd::List))
                }
                None | Some(Err(_)) => return Err(CliError::TryHelp),
                Some(Ok(opt)) => opt,
            };
            match switch {
                Switch::Socket => self.st.socket(value)?,
                Switch::Help => return Ok(First::Immediate(Command::Help)),
                Switch::Version => return Ok(First::Immediate(Command::Version)),
                other => {
                    let Some(cmd) = other.command() else {
                        return Err(CliError::TryHelp);
                    };
                    if cmd == Cmd::Sysctl {
                        self.st.sysctl = value.clone().unwrap_or_default();
                    }
                    if matches!(cmd, Cmd::StartDaemon | Cmd::StopDaemon) {
                        self.st.daemon.master = match value.as_deref() {
                            Some("master") => true,
                            Some("backup") => false,
                            _ if cmd == Cmd::StartDaemon => {
                                return Err(CliError::fail(
                                    "illegal start-daemon parameter specified",
                                ))
                            }
                            _ => return Err(CliError::fail("illegal start_daemon specified")),
                        };
                    }
                    return Ok(First::Command(cmd));
                }
            }
        }
    }

    fn options(&mut self) -> Result<(), CliError> {
        while let Some(next) = self.popt.next_opt() {
            match next {
                Ok((switch, value)) => {
                    let handled = self.st.apply(switch, value, self.names)?;
                    if !handled {
                        return Err(CliError::fail(format!(
                            "invalid option `{}'",
                            self.popt.last_word()
                        )));
                    }
                }
                Err(e) => {
                    return Err(CliError::Popt {
                        word: self.popt.last_word().to_string(),
                        reason: e.text(),
                    })
                }
            }
        }
        Ok(())
    }

    /// `--set`'s three timeouts, then no other word may be left.
    fn positional(&mut self, cmd: Cmd) -> Result<(), CliError> {
        let args = self.popt.args();
        let mut rest = args;
        if cmd == Cmd::SetTimeout {
            if args.len() < 3 {
                return Err(CliError::fail("--set option requires 3 timeout values"));
            }
            let t = |s: &str| parse_timeout(s, 0);
            self.st.timeouts = [t(&args[0])?, t(&args[1])?, t(&args[2])?];
            rest = &args[3..];
        }
        match rest.first() {
            Some(extra) => Err(CliError::fail(format!("unexpected argument {extra}"))),
            None => Ok(()),
        }
    }
}
