//! Positions and diagnostics. Every message names `file:line:col` (or `file:line` for
//! whole-keyword warnings), the way an operator edits the file.
//!
//! Severities follow keepalived's split (`lib/parser.h` `config_err_t`):
//! * [`Severity::Error`]: a syntax or value error. rvs applies **nothing** from such a
//!   configuration (keepalived logs and skips the one item; we refuse the whole file so a
//!   typo never removes a service).
//! * [`Severity::Unknown`]: a keyword keepalived does not know either. Reported and
//!   skipped (with its block); the rest loads, as keepalived does, but `rvsd -t` fails.
//! * [`Severity::Warning`]: deprecated, obsolete or not-yet-supported keywords, defaults
//!   keepalived reports (no protocol, no lb_kind...). The configuration loads.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// A place in a configuration file: 1-based line and column (in characters).
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Pos {
    pub file: Arc<Path>,
    pub line: u32,
    pub col: u32,
}

impl Pos {
    pub fn new(file: &Arc<Path>, line: u32, col: u32) -> Pos {
        Pos {
            file: file.clone(),
            line,
            col,
        }
    }

    /// `file:line`, for messages about a whole keyword line.
    pub fn line_only(&self) -> String {
        format!("{}:{}", self.file.display(), self.line)
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file.display(), self.line, self.col)
    }
}

impl fmt::Debug for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    Warning,
    Unknown,
    Error,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub pos: Pos,
    pub message: String,
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.severity {
            Severity::Error => write!(f, "{}: error: {}", self.pos, self.message),
            Severity::Unknown => write!(
                f,
                "{}: unknown keyword: {}",
                self.pos.line_only(),
                self.message
            ),
            Severity::Warning => write!(f, "{}: warning: {}", self.pos.line_only(), self.message),
        }
    }
}

/// Collects diagnostics while a configuration is read. At most `keep` of each severity
/// are kept (a file of a million bad lines must not cost a million messages); the rest
/// are counted and [`Diags::finish`] adds one line saying how many.
#[derive(Debug)]
pub struct Diags {
    pub list: Vec<Diagnostic>,
    /// Keywords already reported as unsupported or obsolete (reported once each).
    reported: std::collections::HashSet<String>,
    pub keep: usize,
    /// The lexer stopped at a bound: what it produced is cut short (its unclosed blocks
    /// are no news).
    pub stopped: bool,
    kept: [usize; 3],
    /// Not kept, per severity, with the place of the last one.
    dropped: [(usize, Option<Pos>); 3],
}

impl Default for Diags {
    fn default() -> Self {
        Diags {
            list: Vec::new(),
            reported: Default::default(),
            keep: crate::limits::Limits::default().diagnostics,
            stopped: false,
            kept: [0; 3],
            dropped: Default::default(),
        }
    }
}

impl Diags {
    pub fn with_limits(limits: &crate::limits::Limits) -> Diags {
        Diags {
            keep: limits.diagnostics,
            ..Diags::default()
        }
    }

    pub fn error(&mut self, pos: &Pos, msg: impl Into<String>) {
        self.push(Severity::Error, pos, msg.into());
    }

    pub fn warn(&mut self, pos: &Pos, msg: impl Into<String>) {
        self.push(Severity::Warning, pos, msg.into());
    }

    /// A keyword neither rvs nor keepalived knows.
    pub fn unknown(&mut self, pos: &Pos, keyword: &str) {
        self.push(Severity::Unknown, pos, format!("'{keyword}' - ignored"));
    }

    /// A warning given only for the first occurrence of `key` (a keyword name).
    pub fn warn_once(&mut self, key: &str, pos: &Pos, msg: impl Into<String>) {
        if self.reported.insert(key.to_string()) {
            self.warn(pos, msg);
        }
    }

    fn push(&mut self, severity: Severity, pos: &Pos, message: String) {
        let i = severity as usize;
        if self.kept[i] >= self.keep {
            self.dropped[i].0 += 1;
            self.dropped[i].1 = Some(pos.clone());
            return;
        }
        self.kept[i] += 1;
        self.list.push(Diagnostic {
            severity,
            pos: pos.clone(),
            message,
        });
    }

    /// The diagnostics, with one line per severity for those not kept.
    pub fn finish(mut self) -> Vec<Diagnostic> {
        for (i, severity) in [Severity::Warning, Severity::Unknown, Severity::Error]
            .into_iter()
            .enumerate()
        {
            if let (n @ 1.., Some(pos)) = std::mem::take(&mut self.dropped[i]) {
                let what = match severity {
                    Severity::Error => "errors",
                    Severity::Unknown => "unknown keywords",
                    Severity::Warning => "warnings",
                };
                self.list.push(Diagnostic {
                    severity,
                    pos,
                    message: format!("{n} more {what} not shown (the last one here)"),
                });
            }
        }
        self.list
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The main file (or a file a checked include variant requires) cannot be read.
    /// keepalived's `CONFIG_FILE_NOT_FOUND`.
    #[error("{}: cannot read configuration file: {source}", path.display())]
    NotFound {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Syntax or value errors: nothing of the file is applied.
    #[error("{}", render_errors(.0))]
    Invalid(Vec<Diagnostic>),
}

fn render_errors(d: &[Diagnostic]) -> String {
    let errors: Vec<String> = d
        .iter()
        .filter(|d| d.severity == Severity::Error)
        .map(|d| d.to_string())
        .collect();
    errors.join("\n")
}

impl LoadError {
    /// All diagnostics, errors and warnings, in file order.
    pub fn diagnostics(&self) -> &[Diagnostic] {
        match self {
            LoadError::Invalid(d) => d,
            LoadError::NotFound { .. } => &[],
        }
    }

    /// The first error (tests and one-line logs).
    pub fn first_error(&self) -> Option<&Diagnostic> {
        self.diagnostics()
            .iter()
            .find(|d| d.severity == Severity::Error)
    }
}
