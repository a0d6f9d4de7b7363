//! What goes wrong, in ipvsadm's words and with its exit statuses.
//!
//! * Option errors (`fail(2, ...)` in ipvsadm): the message, exit status 2.
//! * A command line popt cannot read: `<word>: unknown option` (or `missing argument`,
//!   `option does not take an argument`), exit status 255.
//! * No command first, or nothing to do: the "Try ... -h" hint, exit status 255.
//! * Table errors reported by rvsd: [`ipvs_strerror`] picks the text ipvsadm prints for
//!   the failed operation and errno; the command then exits with 255 (ipvsadm returns -1
//!   from `main`), listings with 1.

use rvs_core::Errno;
use std::fmt;

/// A command line ipvsadm would refuse.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CliError {
    /// `fail(2, msg)`: printed as `msg` and a newline, exit status 2.
    Fail(String),
    /// popt could not read an option: `<word>: <reason>`, exit status 255.
    Popt { word: String, reason: &'static str },
    /// The "Try `prog -h'" hint, exit status 255.
    TryHelp,
}

impl CliError {
    pub fn fail(msg: impl Into<String>) -> CliError {
        CliError::Fail(msg.into())
    }

    /// The process exit status ipvsadm gives for this error.
    pub fn exit_status(&self) -> i32 {
        match self {
            CliError::Fail(_) => 2,
            CliError::Popt { .. } | CliError::TryHelp => 255,
        }
    }

    /// The text written to stderr (with its final newline); `prog` is `argv[0]`.
    pub fn render(&self, prog: &str) -> String {
        match self {
            CliError::Fail(msg) => format!("{msg}\n"),
            CliError::Popt { word, reason } => format!("{word}: {reason}\n"),
            CliError::TryHelp => {
                format!("Try `{prog} -h' or '{prog} --help' for more information.\n")
            }
        }
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = self.render("ipvsadm");
        f.write_str(text.strip_suffix('\n').unwrap_or(&text))
    }
}

impl std::error::Error for CliError {}

/// The libipvs call that failed, which selects the message for an errno.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    AddService,
    EditService,
    DelService,
    Zero,
    AddDest,
    EditDest,
    DelDest,
    StartDaemon,
    StopDaemon,
    GetServices,
    GetService,
    GetDests,
    Flush,
    SetTimeout,
    GetTimeout,
    GetDaemon,
    GetInfo,
    GetConns,
    Status,
    Sysctl,
}

/// `ipvs_strerror`: the message ipvsadm prints for a failed operation.
pub fn ipvs_strerror(op: Op, errno: Errno) -> &'static str {
    use Errno::*;
    let specific = match (op, errno) {
        (Op::AddService, Exists) => Some("Service already exists"),
        (Op::AddService | Op::EditService, NotFound) => {
            Some("Scheduler or persistence engine not found")
        }
        (Op::EditService | Op::DelService | Op::Zero, NoService) => Some("No such service"),
        (Op::AddDest | Op::EditDest | Op::DelDest, NoService) => Some("Service not defined"),
        (Op::AddDest, Exists) => Some("Destination already exists"),
        (Op::EditDest | Op::DelDest, NotFound) => Some("No such destination"),
        (Op::StartDaemon, Exists) => Some("Daemon has already run"),
        (Op::StopDaemon, NoService) => Some("No daemon is running"),
        (Op::GetServices | Op::GetService | Op::GetDests, NoService) => Some("No such service"),
        _ => None,
    };
    specific.unwrap_or(match errno {
        Invalid => "Invalid operation.  Possibly wrong module version, address not unicast, ...",
        NoMemory => "Memory allocation problem",
        NotSupported => "Operation not supported with IPv6",
        AfNotSupported => "Operation not supported with specified address family",
        other => other.strerror(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strerror_depends_on_the_operation() {
        assert_eq!(
            ipvs_strerror(Op::AddService, Errno::Exists),
            "Service already exists"
        );
        assert_eq!(
            ipvs_strerror(Op::AddDest, Errno::Exists),
            "Destination already exists"
        );
        assert_eq!(
            ipvs_strerror(Op::DelService, Errno::NoService),
            "No such service"
        );
        assert_eq!(
            ipvs_strerror(Op::DelDest, Errno::NoService),
            "Service not defined"
        );
        assert_eq!(
            ipvs_strerror(Op::DelDest, Errno::NotFound),
            "No such destination"
        );
        assert_eq!(
            ipvs_strerror(Op::AddDest, Errno::NotFound),
            "No such file or directory"
        );
        assert_eq!(
            ipvs_strerror(Op::StopDaemon, Errno::NoService),
            "No daemon is running"
        );
        assert_eq!(
            ipvs_strerror(Op::StartDaemon, Errno::Exists),
            "Daemon has already run"
        );
        assert_eq!(ipvs_strerror(Op::Flush, Errno::Exists), "File exists");
        assert_eq!(
            ipvs_strerror(Op::AddDest, Errno::Range),
            "Numerical result out of range"
        );
        assert_eq!(
            ipvs_strerror(Op::AddService, Errno::NoMemory),
            "Memory allocation problem"
        );
        assert_eq!(
            ipvs_strerror(Op::AddDest, Errno::Invalid),
            "Invalid operation.  Possibly wrong module version, address not unicast, ..."
        );
    }

    #[test]
    fn cli_errors_render_like_ipvsadm() {
        assert_eq!(CliError::TryHelp.exit_status(), 255);
        assert_eq!(
            CliError::TryHelp.render("rvsadm"),
            "Try `rvsadm -h' or 'rvsadm --help' for more information.\n"
        );
        let e = CliError::Popt {
            word: "--foo".into(),
            reason: "unknown option",
        };
        assert_eq!(
            (e.render("x"), e.exit_status()),
            ("--foo: unknown option\n".into(), 255)
        );
        assert_eq!(
            CliError::fail("multiple 'weight' options specified").exit_status(),
            2
        );
    }
}
