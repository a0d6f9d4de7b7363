//! Errors of the XDP data plane, by area, with the context an operator needs.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum XdpError {
    #[error("bpffs: {0}")]
    Bpffs(String),
    #[error("loading the BPF object: {0}")]
    Load(#[source] Box<aya::EbpfError>),
    #[error("the verifier refused program {program}: {error}")]
    Verifier {
        program: &'static str,
        #[source]
        error: Box<aya::programs::ProgramError>,
    },
    #[error("pinned maps in {dir} belong to another rvs version ({why}); `rvsd --xdp-unpin` removes them (drops the flows they hold)")]
    PinMismatch { dir: PathBuf, why: String },
    #[error("interface {0}: no such interface")]
    NoInterface(String),
    #[error("attaching XDP to {iface}: {error}")]
    Attach {
        iface: String,
        #[source]
        error: Box<aya::programs::ProgramError>,
    },
    #[error("pinning {path}: {error}")]
    Pin { path: PathBuf, error: String },
    #[error("map {map}: {error}")]
    Map {
        map: &'static str,
        #[source]
        error: std::io::Error,
    },
    #[error("test run of {program}: {error}")]
    TestRun {
        program: &'static str,
        #[source]
        error: Box<aya::programs::ProgramError>,
    },
    #[error("{0}")]
    Other(String),
}

pub type Result<T> = std::result::Result<T, XdpError>;

pub(crate) fn map_err(map: &'static str) -> impl FnOnce(std::io::Error) -> XdpError {
    move |error| XdpError::Map { map, error }
}
