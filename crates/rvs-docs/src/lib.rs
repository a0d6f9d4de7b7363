//! # rvs-docs — man pages and shell completions from each binary's own command line
//!
//! Every rvs binary answers a hidden `--generate WHAT` (`man`, `bash`, `zsh`, `fish`) by
//! printing its man page (clap_mangen) or completion script (clap_complete) built from the
//! same clap definition that parses its arguments, so they never drift apart. The Debian
//! package (`scripts/package.sh`) collects them.

use std::io::Write;

/// What `--generate` accepts.
pub const WHAT: [&str; 4] = ["man", "bash", "zsh", "fish"];

/// Prints the man page (section `section`) or the completion script of `cmd`.
///
/// # Errors
/// An unknown `what`, or stdout failing.
pub fn generate(cmd: clap::Command, section: &str, what: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    let name = cmd.get_name().to_string();
    let shell = match what {
        "man" => {
            let man = clap_mangen::Man::new(cmd).section(section);
            man.render(&mut out)?;
            return out.flush();
        }
        "bash" => clap_complete::Shell::Bash,
        "zsh" => clap_complete::Shell::Zsh,
        "fish" => clap_complete::Shell::Fish,
        other => {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                format!("--generate {other}: one of {}", WHAT.join(", ")),
            ))
        }
    };
    let mut cmd = cmd;
    clap_complete::generate(shell, &mut cmd, name, &mut out);
    out.flush()
}

/// If `args` is `PROG --generate WHAT`, the WHAT (binaries without clap check this first).
pub fn requested(args: &[String]) -> Option<&str> {
    match args {
        [_, flag, what] if flag == "--generate" => Some(what.as_str()),
        _ => None,
    }
}
