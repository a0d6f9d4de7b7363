//! systemd's readiness protocol (`Type=notify`): READY=1 once the data plane is attached
//! and the configuration applied; RELOADING=1 (with MONOTONIC_USEC, as systemd 253's
//! `Type=notify-reload` wants) on SIGHUP, then READY=1; STOPPING=1 on the way out; STATUS=
//! lines an operator sees in `systemctl status`. The watchdog is fed when the unit sets
//! `WatchdogSec=`.
//!
//! The `sd-notify` crate speaks the protocol (a datagram to `$NOTIFY_SOCKET`); outside
//! systemd every call is a no-op.

use sd_notify::NotifyState;
use std::time::Duration;

fn send(states: &[NotifyState]) {
    if let Err(e) = sd_notify::notify(false, states) {
        tracing::warn!("systemd notify: {e}");
    }
}

pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

pub fn reloading() {
    match NotifyState::monotonic_usec_now() {
        Ok(now) => send(&[NotifyState::Reloading, now]),
        Err(_) => send(&[NotifyState::Reloading]),
    }
}

pub fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings the watchdog at half its period while the runtime runs, if the unit has one.
pub fn spawn_watchdog() {
    let mut usec = 0;
    if !sd_notify::watchdog_enabled(false, &mut usec) || usec == 0 {
        return;
    }
    let period = Duration::from_micros(usec / 2);
    tokio::spawn(async move {
        let mut t = tokio::time::interval(period);
        loop {
            t.tick().await;
            send(&[NotifyState::Watchdog]);
        }
    });
}
