//! Where rvsd's log goes, as keepalived decides it:
//!
//! * started by systemd with stderr on the journal (`$JOURNAL_STREAM` names stderr):
//!   journald, with priorities (ERROR → err, WARN → warning, INFO → info, DEBUG → debug);
//! * `-S FACILITY` (keepalived's syslog facility), or forked into the background (`--fork`):
//!   syslog through libc's `syslog(3)`, tagged `rvsd[PID]`;
//! * otherwise stderr. `-l` adds stderr to either of the others.
//!
//! Text on stderr has ANSI colours only when stderr is a terminal (and `NO_COLOR` is not
//! set): a file or a pipe gets plain lines. `-D` adds the debug messages of rvs's crates and
//! the source of each line; `RUST_LOG` overrides the levels.
//!
//! The syslog writer is written here: it is a few lines over libc's `openlog`/`syslog`,
//! which do the transport, and the crates that wrap them add little.

use std::ffi::CString;
use std::fmt::Write as _;
use std::io::IsTerminal;
use std::os::unix::fs::MetadataExt;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

#[derive(Clone, Debug, Default)]
pub struct LogOptions {
    /// `-l`: stderr as well.
    pub console: bool,
    /// `-D`.
    pub detail: bool,
    /// `-S`: syslog with this facility.
    pub facility: Option<libc::c_int>,
    /// `-G`: never syslog.
    pub no_syslog: bool,
    /// Running in the background: stderr is gone.
    pub forked: bool,
}

/// Where the lines go, decided from the options and the environment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Sinks {
    pub stderr: bool,
    pub journald: bool,
    pub syslog: Option<libc::c_int>,
}

/// True when stderr is the journal stream systemd set up for this service.
pub fn stderr_is_journal() -> bool {
    let Some(v) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let v = v.to_string_lossy().into_owned();
    let Some((dev, ino)) = v.split_once(':') else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// The decision, apart from the environment (tested directly).
pub fn sinks(o: &LogOptions, journal: bool) -> Sinks {
    let syslog = if o.no_syslog {
        None
    } else {
        o.facility
            .or_else(|| (o.forked && !journal).then_some(libc::LOG_DAEMON))
    };
    let journald = journal && syslog.is_none();
    let stderr = o.console || (!journald && syslog.is_none() && !o.forked);
    Sinks {
        stderr,
        journald,
        syslog,
    }
}

fn filter(detail: bool) -> EnvFilter {
    if let Ok(f) = EnvFilter::try_from_default_env() {
        return f;
    }
    if detail {
        EnvFilter::new(
            "info,rvsd=debug,rvs_check=debug,rvs_vrrp=debug,rvs_xdp=debug,rvs_proxy=debug,rvs_core=debug",
        )
    } else {
        EnvFilter::new("info")
    }
}

/// Sets up the global subscriber.
pub fn init(o: &LogOptions) {
    let journal = stderr_is_journal();
    let s = sinks(o, journal);
    let ansi = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let stderr = s.stderr.then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(ansi)
            .with_target(o.detail)
    });
    let journald = if s.journald {
        match tracing_journald::layer() {
            Ok(l) => Some(
                l.with_priority_mappings(tracing_journald::PriorityMappings {
                    info: tracing_journald::Priority::Informational,
                    debug: tracing_journald::Priority::Debug,
                    ..tracing_journald::PriorityMappings::new()
                }),
            ),
            Err(e) => {
                eprintln!("rvsd: journald unreachable ({e}); logging to stderr");
                None
            }
        }
    } else {
        None
    };
    // journald failed: stderr still reaches the journal, as plain text
    let fallback = (s.journald && journald.is_none() && !s.stderr).then(|| {
        tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false)
    });
    let syslog = s.syslog.map(|f| Syslog::open(f, o.detail));
    tracing_subscriber::registry()
        .with(filter(o.detail))
        .with(stderr)
        .with(fallback)
        .with(journald)
        .with(syslog)
        .init();
}

/// A layer writing each event as one `syslog(3)` line.
pub struct Syslog {
    detail: bool,
}

impl Syslog {
    fn open(facility: libc::c_int, detail: bool) -> Syslog {
        // openlog keeps the pointer: the ident must live for the process.
        static IDENT: &std::ffi::CStr = c"rvsd";
        // SAFETY: a static NUL-terminated ident; flags and facility are plain ints.
        unsafe { libc::openlog(IDENT.as_ptr(), libc::LOG_PID | libc::LOG_NDELAY, facility) };
        Syslog { detail }
    }
}

/// One line: the message, then `key=value` for every other field.
#[derive(Default)]
pub struct Line {
    pub message: String,
    pub fields: String,
}

impl Visit for Line {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}

fn priority(level: &Level) -> libc::c_int {
    match *level {
        Level::ERROR => libc::LOG_ERR,
        Level::WARN => libc::LOG_WARNING,
        Level::INFO => libc::LOG_INFO,
        _ => libc::LOG_DEBUG,
    }
}

impl<S: Subscriber> Layer<S> for Syslog {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        let mut line = Line::default();
        event.record(&mut line);
        let meta = event.metadata();
        let text = if self.detail {
            format!("{}: {}{}", meta.target(), line.message, line.fields)
        } else {
            format!("{}{}", line.message, line.fields)
        };
        let Ok(c) = CString::new(text.replace('\0', " ")) else {
            return;
        };
        // SAFETY: "%s" with a NUL-terminated string.
        unsafe { libc::syslog(priority(meta.level()), c"%s".as_ptr(), c.as_ptr()) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn where_lines_go() {
        let o = LogOptions::default();
        // a terminal or a file: stderr only
        assert_eq!(
            sinks(&o, false),
            Sinks {
                stderr: true,
                journald: false,
                syslog: None
            }
        );
        // systemd: the journal, not the same lines twice on stderr
        assert_eq!(
            sinks(&o, true),
            Sinks {
                stderr: false,
                journald: true,
                syslog: None
            }
        );
        // -S 3: syslog local3; -l adds the console
        let s = LogOptions {
            facility: Some(libc::LOG_LOCAL3),
            console: true,
            ..o.clone()
        };
        assert_eq!(
            sinks(&s, true),
            Sinks {
                stderr: true,
                journald: false,
                syslog: Some(libc::LOG_LOCAL3)
            }
        );
        // forked: syslog daemon, stderr is gone
        let f = LogOptions {
            forked: true,
            ..o.clone()
        };
        assert_eq!(sinks(&f, false).syslog, Some(libc::LOG_DAEMON));
        assert!(!sinks(&f, false).stderr);
        // -G: never syslog
        let g = LogOptions {
            forked: true,
            no_syslog: true,
            console: true,
            ..o
        };
        assert_eq!(sinks(&g, false).syslog, None);
    }
}
