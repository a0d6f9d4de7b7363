//! Errors of table operations. Each carries the errno the kernel would return, so the
//! admin tool can print exactly what ipvsadm prints for the same failure
//! (`ipvs_strerror` picks the text from the operation and the errno).

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// The kernel errno of a failed IPVS operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Errno {
    /// EEXIST: service, destination or daemon already exists.
    Exists,
    /// ESRCH: no such service (or no daemon running).
    NoService,
    /// ENOENT: no such destination, or scheduler / persistence engine not found.
    NotFound,
    /// EINVAL: invalid argument (bad address, bad prefix, bad tunnel port...).
    Invalid,
    /// ERANGE: weight or thresholds out of range.
    Range,
    /// EAFNOSUPPORT: address family not allowed here.
    AfNotSupported,
    /// EOPNOTSUPP: operation not supported.
    NotSupported,
    /// ENOMEM: a table limit was reached.
    NoMemory,
    /// ENODEV: no such network interface (`--mcast-interface`).
    NoDevice,
}

impl Errno {
    /// The Linux errno value.
    pub fn value(self) -> i32 {
        match self {
            Errno::Exists => 17,
            Errno::NoService => 3,
            Errno::NotFound => 2,
            Errno::Invalid => 22,
            Errno::Range => 34,
            Errno::AfNotSupported => 97,
            Errno::NotSupported => 95,
            Errno::NoMemory => 12,
            Errno::NoDevice => 19,
        }
    }

    /// `strerror()` text, the fallback ipvsadm prints when its own table has no entry.
    pub fn strerror(self) -> &'static str {
        match self {
            Errno::Exists => "File exists",
            Errno::NoService => "No such process",
            Errno::NotFound => "No such file or directory",
            Errno::Invalid => "Invalid argument",
            Errno::Range => "Numerical result out of range",
            Errno::AfNotSupported => "Address family not supported by protocol",
            Errno::NotSupported => "Operation not supported",
            Errno::NoMemory => "Cannot allocate memory",
            Errno::NoDevice => "No such device",
        }
    }
}

/// A rejected table operation: the errno plus a sentence for logs and the JSON API.
#[derive(Clone, Debug, PartialEq, Eq, Error, Serialize, Deserialize)]
#[error("{detail}")]
pub struct TableError {
    pub errno: Errno,
    pub detail: String,
}

impl TableError {
    pub fn new(errno: Errno, detail: impl Into<String>) -> Self {
        TableError {
            errno,
            detail: detail.into(),
        }
    }
}

pub type Result<T, E = TableError> = std::result::Result<T, E>;
