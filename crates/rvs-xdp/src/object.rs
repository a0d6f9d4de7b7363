//! The compiled BPF objects, embedded at build time (see `build.rs`).

/// 8-byte aligned bytes: the ELF parser reads structs straight from the buffer.
#[repr(C, align(8))]
struct Aligned<B: ?Sized>(B);

static DIRECTOR: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/xdp_director.o")));
static DIRECTOR_TEST: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(
    env!("OUT_DIR"),
    "/xdp_director_test.o"
)));
static NF_FWMARK: &Aligned<[u8]> =
    &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/nf_fwmark.o")));
static DECAP: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/tc_decap.o")));
static PASS: &Aligned<[u8]> = &Aligned(*include_bytes!(concat!(env!("OUT_DIR"), "/xdp_pass.o")));

/// Which build of the director.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Build {
    /// What rvsd runs.
    Production,
    /// `-DRVS_TEST`: clock, random draws and packet mark from the `rvs_test_env` map.
    Test,
}

pub fn director(build: Build) -> &'static [u8] {
    match build {
        Build::Production => &DIRECTOR.0,
        Build::Test => &DIRECTOR_TEST.0,
    }
}

/// The netfilter program of fwmark services (`bpf/nf_fwmark.c`), loaded by
/// [`crate::fwmark`].
pub fn nf_fwmark() -> &'static [u8] {
    &NF_FWMARK.0
}

pub fn decap() -> &'static [u8] {
    &DECAP.0
}

/// An XDP program that passes everything (`bpf/xdp_pass.c`): veth labs attach it to the
/// peers of the director's interfaces so native XDP_TX/redirect frames are received.
pub fn pass() -> &'static [u8] {
    &PASS.0
}
