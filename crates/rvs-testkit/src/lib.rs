//! # rvs-testkit — what tests, the demo and the benchmark share
//!
//! * [`netns`]: network-namespace labs with unique names, deleted by name on drop.
//! * [`require_root`]: the rule for privileged tests — skip with a printed reason outside CI,
//!   fail under `CI=true`.
//! * [`uml`]: kernel IPVS in user-mode Linux, the oracle for differential tests.
//! * [`http`]: a tiny HTTP/1.1 real server that answers with its name, and a load generator
//!   that counts which server answered (the `rvs-lab` binary wraps both).

pub mod http;
pub mod netns;
pub mod uml;

/// True when the test may use root-only facilities (network namespaces, BPF). Outside CI a
/// missing privilege skips the test with a printed reason; with `CI=true` it is a failure.
pub fn require_root(what: &str) -> bool {
    // SAFETY: geteuid has no preconditions.
    let root = unsafe { libc::geteuid() } == 0;
    if root {
        return true;
    }
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    if ci {
        panic!("{what}: needs root, and CI=true makes a missing prerequisite a failure");
    }
    eprintln!("skipped: {what}: needs root (run as root, or under CI)");
    false
}

/// True when `cmd` is on PATH.
pub fn has_command(cmd: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|p| std::env::split_paths(&p).any(|d| d.join(cmd).is_file()))
}

/// True when `cmd` is on PATH; under `CI=true` its absence is a failure.
pub fn require_command(what: &str, cmd: &str) -> bool {
    let found = has_command(cmd);
    if found {
        return true;
    }
    if std::env::var("CI").is_ok_and(|v| v == "true" || v == "1") {
        panic!("{what}: `{cmd}` is not installed, and CI=true makes that a failure");
    }
    eprintln!("skipped: {what}: `{cmd}` is not installed");
    false
}
