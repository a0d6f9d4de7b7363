//! Signals as keepalived reads them (`keepalived --signum`), and none that kills rvsd by
//! surprise.
//!
//! | signal | keepalived name | rvsd |
//! |---|---|---|
//! | SIGTERM, SIGINT | STOP | stop (VRRP masters send priority 0 first) |
//! | SIGHUP | RELOAD | reload keepalived.conf |
//! | SIGUSR1 | DATA | write `keepalived.data` and `keepalived_check.data` |
//! | SIGUSR2 | STATS | write `keepalived.stats` |
//! | SIGRTMIN+2 (36 with glibc) | JSON | write `keepalived.json` |
//! | SIGRTMAX-1 (63) | STATS_CLEAR | write `keepalived.stats` (counters are not cleared: logged) |
//!
//! Every other signal whose default action ends the process and that is not a fault
//! (SIGALRM, SIGIO, SIGPROF, SIGVTALRM, SIGPWR, SIGSTKFLT, SIGXFSZ, every other real-time
//! signal) is caught and logged. SIGPIPE is ignored (Rust's runtime does it; children get
//! it back). Fault signals (SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP, SIGSYS),
//! SIGQUIT (a core on request) and SIGXCPU keep their default.

use tokio::signal::unix::{signal, Signal, SignalKind};

/// What a signal asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Stop(&'static str),
    Reload,
    DumpData,
    DumpStats,
    DumpJson,
    StatsClear,
}

/// keepalived's `SIGJSON`.
pub fn sigjson() -> i32 {
    libc::SIGRTMIN() + 2
}

/// keepalived's `SIGSTATS_CLEAR` (63 with glibc, as `keepalived --signum=STATS_CLEAR`).
pub fn sigstats_clear() -> i32 {
    libc::SIGRTMAX() - 1
}

/// `--signum=SIGFUNC`: the number keepalived prints for the name.
pub fn signum(name: &str) -> Option<i32> {
    Some(match name {
        "STOP" => libc::SIGTERM,
        "RELOAD" => libc::SIGHUP,
        "DATA" => libc::SIGUSR1,
        "STATS" => libc::SIGUSR2,
        "STATS_CLEAR" => sigstats_clear(),
        "JSON" => sigjson(),
        _ => return None,
    })
}

/// Signals caught only to be logged.
fn harmless() -> Vec<i32> {
    let mut v = vec![
        libc::SIGALRM,
        libc::SIGIO,
        libc::SIGPROF,
        libc::SIGVTALRM,
        libc::SIGPWR,
        libc::SIGSTKFLT,
        libc::SIGXFSZ,
    ];
    v.extend(
        (libc::SIGRTMIN()..=libc::SIGRTMAX()).filter(|s| *s != sigjson() && *s != sigstats_clear()),
    );
    v
}

extern "C" fn ignore(_: libc::c_int) {}

pub struct Signals {
    term: Signal,
    int: Signal,
    hup: Signal,
    usr1: Signal,
    usr2: Signal,
    json: Signal,
    clear: Signal,
}

impl Signals {
    /// Installs every handler. Call from within the runtime, before the daemon is ready,
    /// so a signal sent as soon as the PID file or READY=1 appears is handled.
    pub fn install() -> std::io::Result<Signals> {
        let s = Signals {
            term: signal(SignalKind::terminate())?,
            int: signal(SignalKind::interrupt())?,
            hup: signal(SignalKind::hangup())?,
            usr1: signal(SignalKind::user_defined1())?,
            usr2: signal(SignalKind::user_defined2())?,
            json: signal(SignalKind::from_raw(sigjson()))?,
            clear: signal(SignalKind::from_raw(sigstats_clear()))?,
        };
        for n in harmless() {
            match signal(SignalKind::from_raw(n)) {
                Ok(mut stream) => {
                    tokio::spawn(async move {
                        while stream.recv().await.is_some() {
                            tracing::info!("signal {n} ({}) ignored", name(n));
                        }
                    });
                }
                Err(_) => {
                    // tokio has no slot for it (SIGRTMAX): a handler that does nothing
                    // (a handler, unlike SIG_IGN, is not inherited by scripts rvsd runs).
                    // SAFETY: installing an async-signal-safe no-op handler.
                    unsafe {
                        let mut sa: libc::sigaction = std::mem::zeroed();
                        sa.sa_sigaction = ignore as *const () as usize;
                        sa.sa_flags = libc::SA_RESTART;
                        libc::sigemptyset(&mut sa.sa_mask);
                        libc::sigaction(n, &sa, std::ptr::null_mut());
                    }
                }
            }
        }
        Ok(s)
    }

    /// Waits for SIGTERM or SIGINT only (a reload in progress gives way to them).
    pub async fn stop(&mut self) -> &'static str {
        tokio::select! {
            _ = self.term.recv() => "SIGTERM",
            _ = self.int.recv() => "SIGINT",
        }
    }

    pub async fn next(&mut self) -> Event {
        tokio::select! {
            _ = self.term.recv() => Event::Stop("SIGTERM"),
            _ = self.int.recv() => Event::Stop("SIGINT"),
            _ = self.hup.recv() => Event::Reload,
            _ = self.usr1.recv() => Event::DumpData,
            _ = self.usr2.recv() => Event::DumpStats,
            _ = self.json.recv() => Event::DumpJson,
            _ = self.clear.recv() => Event::StatsClear,
        }
    }
}

/// A signal's name for the log.
pub fn name(n: i32) -> String {
    let fixed = [
        (libc::SIGALRM, "SIGALRM"),
        (libc::SIGIO, "SIGIO"),
        (libc::SIGPROF, "SIGPROF"),
        (libc::SIGVTALRM, "SIGVTALRM"),
        (libc::SIGPWR, "SIGPWR"),
        (libc::SIGSTKFLT, "SIGSTKFLT"),
        (libc::SIGXFSZ, "SIGXFSZ"),
    ];
    if let Some((_, s)) = fixed.iter().find(|(k, _)| *k == n) {
        return s.to_string();
    }
    format!("SIGRTMIN+{}", n - libc::SIGRTMIN())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signum_matches_keepalived_2_2() {
        // `keepalived --signum=X` of Debian 12's keepalived 2.2.7 on glibc
        assert_eq!(signum("JSON"), Some(36));
        assert_eq!(signum("STATS_CLEAR"), Some(63));
        assert_eq!(signum("DATA"), Some(10));
        assert_eq!(signum("STATS"), Some(12));
        assert_eq!(signum("RELOAD"), Some(1));
        assert_eq!(signum("STOP"), Some(15));
        assert_eq!(signum("TDUMP"), None);
    }
}
