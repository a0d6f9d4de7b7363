//! A tokenizer with popt's command-line syntax, the library ipvsadm is built with.
//!
//! Written by hand because no argument crate reproduces popt's rules, and scripts depend
//! on them:
//! * short options combine (`-Ln`, `-At 10.0.0.1:80`); once a short option takes a value,
//!   the rest of the word is that value (`-p10`, `-w=5`: one `=` is skipped);
//! * long options take their value as `--name=value` or as the next word, whatever that
//!   word looks like (`-s -n` schedules with `-n`);
//! * an optional value (`-p [timeout]`) is taken from the next word only when that word
//!   does not start with `-`;
//! * `--` makes every later word an argument; a lone `-` and words without a dash are
//!   arguments, collected in order for the caller (`--set tcp tcpfin udp`);
//! * a value given to an option that takes none (`--nosort=1`, `-L=n`) is an error.
//!
//! Errors carry popt's wording; the word popt blames is the last word it consumed.
//! Not reproduced: popt's `!#:+` next-argument substitution inside option values.

use crate::options::{find_long, find_short, ArgKind, Switch};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum PoptError {
    BadOpt,
    NoArg,
    UnwantedArg,
}

impl PoptError {
    pub fn text(self) -> &'static str {
        match self {
            PoptError::BadOpt => "unknown option",
            PoptError::NoArg => "missing argument",
            PoptError::UnwantedArg => "option does not take an argument",
        }
    }
}

pub(crate) struct Popt<'a> {
    argv: &'a [String],
    /// Index of the next word to read (0 is the program name).
    next: usize,
    /// Within a cluster of short options: (word index, byte offset of the next letter).
    in_cluster: Option<(usize, usize)>,
    rest_are_args: bool,
    args: Vec<String>,
}

impl<'a> Popt<'a> {
    pub fn new(argv: &'a [String]) -> Self {
        Popt {
            argv,
            next: 1,
            in_cluster: None,
            rest_are_args: false,
            args: Vec::new(),
        }
    }

    /// The word popt blames in messages: the last one it consumed.
    pub fn last_word(&self) -> &str {
        self.argv
            .get(self.next.saturating_sub(1))
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Non-option words, in command-line order.
    pub fn args(&self) -> &[String] {
        &self.args
    }

    /// The next option and its value; `None` once the command line is exhausted.
    pub fn next_opt(&mut self) -> Option<Result<(Switch, Option<String>), PoptError>> {
        loop {
            if self.in_cluster.is_none() && self.next >= self.argv.len() {
                return None;
            }
            let mut found = None;
            let mut long_value: Option<String> = None;
            if self.in_cluster.is_none() {
                let idx = self.next;
                let word = &self.argv[idx];
                self.next += 1;
                if self.rest_are_args || !word.starts_with('-') || word == "-" {
                    self.args.push(word.clone());
                    continue;
                }
                if word == "--" {
                    self.rest_are_args = true;
                    continue;
                }
                if let Some(body) = word.strip_prefix("--") {
                    let (name, value) = match body.split_once('=') {
                        Some((n, v)) => (n, Some(v.to_string())),
                        None => (body, None),
                    };
                    match find_long(name) {
                        Some(spec) => {
                            found = Some(spec);
                            long_value = value;
                        }
                        None => return Some(Err(PoptError::BadOpt)),
                    }
                } else {
                    // No option of ipvsadm accepts a single-dash long name, so a single
                    // dash always starts a cluster of short options.
                    self.in_cluster = Some((idx, 1));
                }
            }
            if let Some((w, off)) = self.in_cluster.take() {
                let bytes = self.argv[w].as_bytes();
                let Some(spec) = find_short(bytes[off]) else {
                    return Some(Err(PoptError::BadOpt));
                };
                found = Some(spec);
                if off + 1 < bytes.len() {
                    self.in_cluster = Some((w, off + 1));
                }
            }
            let spec = found.expect("an option was found above");
            let value = match spec.arg {
                ArgKind::None => {
                    let eq_follows = self
                        .in_cluster
                        .is_some_and(|(w, off)| self.argv[w].as_bytes()[off] == b'=');
                    if long_value.is_some() || eq_follows {
                        return Some(Err(PoptError::UnwantedArg));
                    }
                    None
                }
                ArgKind::Required | ArgKind::Optional => {
                    if long_value.is_some() {
                        long_value
                    } else if let Some((w, off)) = self.in_cluster.take() {
                        let rest = &self.argv[w][off..];
                        Some(rest.strip_prefix('=').unwrap_or(rest).to_string())
                    } else if self.next >= self.argv.len() {
                        if spec.arg == ArgKind::Required {
                            return Some(Err(PoptError::NoArg));
                        }
                        None
                    } else if spec.arg == ArgKind::Optional && self.argv[self.next].starts_with('-')
                    {
                        None
                    } else {
                        self.next += 1;
                        Some(self.argv[self.next - 1].clone())
                    }
                }
            };
            return Some(Ok((spec.switch, value)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(words: &[&str]) -> (Vec<String>, Vec<String>) {
        let argv: Vec<String> = std::iter::once("ipvsadm")
            .chain(words.iter().copied())
            .map(String::from)
            .collect();
        let mut p = Popt::new(&argv);
        let mut out = Vec::new();
        while let Some(r) = p.next_opt() {
            match r {
                Ok((sw, v)) => out.push(format!("{sw:?}={v:?}")),
                Err(e) => {
                    out.push(format!("{}: {}", p.last_word(), e.text()));
                    break;
                }
            }
        }
        (out, p.args().to_vec())
    }

    #[test]
    fn short_options_combine_and_the_rest_of_a_word_is_a_value() {
        let (opts, _) = run(&["-Ln", "-t1.2.3.4:80", "-p10", "-w=5"]);
        assert_eq!(
            opts,
            [
                "List=None",
                "Numeric=None",
                "Tcp=Some(\"1.2.3.4:80\")",
                "Persistent=Some(\"10\")",
                "Weight=Some(\"5\")"
            ]
        );
    }

    #[test]
    fn optional_value_is_not_taken_from_a_dash_word() {
        let (opts, _) = run(&["-A", "-p", "-M", "x", "-p"]);
        assert_eq!(
            opts,
            [
                "AddService=None",
                "Persistent=None",
                "Netmask=Some(\"x\")",
                "Persistent=None"
            ]
        );
        let (opts, _) = run(&["--persistent", "30", "--persistent="]);
        assert_eq!(opts, ["Persistent=Some(\"30\")", "Persistent=Some(\"\")"]);
    }

    #[test]
    fn required_value_takes_the_next_word_even_with_a_dash() {
        let (opts, _) = run(&["-s", "-n"]);
        assert_eq!(opts, ["Scheduler=Some(\"-n\")"]);
    }

    #[test]
    fn errors_blame_the_last_consumed_word() {
        assert_eq!(
            run(&["-L", "--foo"]).0,
            ["List=None", "--foo: unknown option"]
        );
        assert_eq!(run(&["-Lq"]).0, ["List=None", "-Lq: unknown option"]);
        assert_eq!(run(&["-L", "-t"]).0, ["List=None", "-t: missing argument"]);
        assert_eq!(
            run(&["--nosort=1"]).0,
            ["--nosort=1: option does not take an argument"]
        );
        assert_eq!(run(&["-L=n"]).0, ["-L=n: option does not take an argument"]);
        assert_eq!(run(&["---L"]).0, ["---L: unknown option"]);
    }

    #[test]
    fn arguments_and_double_dash() {
        let (opts, args) = run(&["1", "--set", "-", "2", "--", "-3", "--x"]);
        assert_eq!(opts, ["Set=None"]);
        assert_eq!(args, ["1", "-", "2", "-3", "--x"]);
    }
}
