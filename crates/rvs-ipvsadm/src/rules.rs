//! Rules files: what `ipvsadm -S` writes and `ipvsadm -R` / `ipvsadm-restore` read.
//!
//! Like ipvsadm's reader, each line is split on spaces, tabs and carriage returns, words
//! equal to `ipvsadm` are dropped (so `ipvsadm -A -t ...` lines work too), and lines left
//! empty are skipped. There is no comment syntax (`#` is an unexpected argument).
//!
//! Unlike ipvsadm, which applies each line as it reads it and stops at the first bad
//! one, every line is parsed before anything is applied: an option error anywhere means
//! nothing changes.

use crate::command::Command;
use crate::error::CliError;
use crate::names::{Resolver, SystemResolver};
use crate::parse::parse_args;
use crate::request::requests;
use rvs_api::Request;
use std::fmt;

/// One command of a rules file, with its 1-based line number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub line: usize,
    pub command: Command,
}

/// A line ipvsadm would refuse: its number, the ipvsadm message and exit status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RuleError {
    pub line: usize,
    /// The message as ipvsadm prints it (without the final newline).
    pub message: String,
    /// The exit status ipvsadm would end with (2, or 255 for popt errors).
    pub exit_status: i32,
}

impl fmt::Display for RuleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RuleError {}

/// The words of each non-empty line, with line numbers.
pub fn rule_lines(text: &str) -> impl Iterator<Item = (usize, Vec<&str>)> {
    text.split('\n').enumerate().filter_map(|(i, line)| {
        let words: Vec<&str> = line
            .split([' ', '\t', '\r'])
            .filter(|w| !w.is_empty() && *w != "ipvsadm")
            .collect();
        (!words.is_empty()).then_some((i + 1, words))
    })
}

/// Parses every line of a rules file. `prog` stands in for `argv[0]` in messages.
///
/// # Errors
/// The first line ipvsadm would refuse. A nested `-R` is refused as ipvsadm refuses it
/// (the "Try `prog -h'" hint); so is `--socket`, which has no meaning there.
pub fn parse_rules_with(
    text: &str,
    prog: &str,
    names: &dyn Resolver,
) -> Result<Vec<Rule>, RuleError> {
    let mut rules = Vec::new();
    for (line, words) in rule_lines(text) {
        let argv: Vec<String> = std::iter::once(prog)
            .chain(words)
            .map(String::from)
            .collect();
        let err = |e: CliError| {
            let text = e.render(prog);
            RuleError {
                line,
                message: text.strip_suffix('\n').unwrap_or(&text).to_string(),
                exit_status: e.exit_status(),
            }
        };
        let inv = parse_args(&argv, names).map_err(err)?;
        if inv.command == Command::Restore {
            return Err(err(CliError::TryHelp));
        }
        if inv.socket.is_some() {
            return Err(err(CliError::fail(
                "the --socket option has no meaning in a rules file",
            )));
        }
        rules.push(Rule {
            line,
            command: inv.command,
        });
    }
    Ok(rules)
}

/// [`parse_rules_with`] with the system resolver and `ipvsadm` as the program name.
///
/// # Errors
/// See [`parse_rules_with`].
pub fn parse_rules(text: &str) -> Result<Vec<Rule>, RuleError> {
    parse_rules_with(text, "ipvsadm", &SystemResolver::new())
}

/// The requests that apply a rules file, in order (what `rvsd --restore FILE` needs).
/// Lines that only print (`-L`, `-S`, `-h`, ...) have nothing to apply and are left out.
///
/// # Errors
/// See [`parse_rules_with`].
pub fn restore_requests(text: &str) -> Result<Vec<Request>, RuleError> {
    Ok(parse_rules(text)?
        .iter()
        .filter(|r| r.command.is_mutation())
        .flat_map(|r| requests(&r.command))
        .collect())
}
