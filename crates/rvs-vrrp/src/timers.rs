//! Timer arithmetic (RFC 3768 §6.1, RFC 5798 §6.1) in keepalived's microseconds.
//!
//! | | v2 | v3 |
//! |---|---|---|
//! | Skew_Time | (256 − Priority) / 256 s | ((256 − Priority) × Master_Adver_Interval) / 256 |
//! | Master_Down_Interval | 3 × Advertisement_Interval + Skew_Time | 3 × Master_Adver_Interval + Skew_Time |
//!
//! keepalived (`vrrp.h`) computes the v3 skew as `(256 − p) × centiseconds × 625 / 16` µs
//! (integer arithmetic, truncating) and the v2 one as `(256 − p) × 10⁶ / 256` µs, with the
//! *effective* priority, and replaces the constant 3 by `down_timer_adverts`.

use crate::packet::Version;
use std::time::Duration;

fn skew_units(version: Version, units: u64, master_adver_int: Duration) -> Duration {
    let us = match version {
        Version::V2 => units * 1_000_000 / 256,
        Version::V3 => {
            let cs = master_adver_int.as_micros() as u64 / 10_000;
            units * cs * 625 / 16
        }
    };
    Duration::from_micros(us)
}

/// Skew_Time for the local `priority`.
pub fn skew(version: Version, priority: u8, master_adver_int: Duration) -> Duration {
    skew_units(version, 256 - u64::from(priority), master_adver_int)
}

/// The smallest skew (priority 255), keepalived's `VRRP_TIMER_SKEW_MIN`.
pub fn skew_min(version: Version, master_adver_int: Duration) -> Duration {
    skew_units(version, 1, master_adver_int)
}

/// Master_Down_Interval = `down_timer_adverts` × Master_Adver_Interval + Skew_Time.
pub fn master_down(
    version: Version,
    priority: u8,
    master_adver_int: Duration,
    down_timer_adverts: u32,
) -> Duration {
    master_adver_int * down_timer_adverts + skew(version, priority, master_adver_int)
}

/// An `advert_int` as the version can carry it: v2 whole seconds 1..255 (rounded, as
/// keepalived does); v3 centiseconds 1..4095 (rounded to 10 ms).
pub fn round_interval(version: Version, d: Duration) -> Duration {
    match version {
        Version::V2 => {
            let s = ((d.as_millis() + 500) / 1000).clamp(1, 255) as u64;
            Duration::from_secs(s)
        }
        Version::V3 => {
            let cs = ((d.as_micros() + 5_000) / 10_000).clamp(1, 4095) as u64;
            Duration::from_millis(cs * 10)
        }
    }
}

/// The interval field of an advert for `d` (already rounded): seconds (v2) or
/// centiseconds (v3).
pub fn interval_field(version: Version, d: Duration) -> u16 {
    match version {
        Version::V2 => d.as_secs().clamp(1, 255) as u16,
        Version::V3 => (d.as_millis() / 10).clamp(1, 4095) as u16,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S1: Duration = Duration::from_secs(1);

    #[test]
    fn rfc3768_6_1_skew_and_master_down_for_priority_100() {
        // (256 - 100) / 256 s = 0.609375 s; master down 3.609375 s.
        assert_eq!(skew(Version::V2, 100, S1), Duration::from_micros(609_375));
        assert_eq!(
            master_down(Version::V2, 100, S1, 3),
            Duration::from_micros(3_609_375)
        );
    }

    #[test]
    fn rfc5798_6_1_v3_skew_scales_with_master_adver_interval() {
        assert_eq!(skew(Version::V3, 100, S1), Duration::from_micros(609_375));
        // 0.5 s interval: skew 0.3047 s (keepalived truncates to whole µs), down 1.805 s.
        let half = Duration::from_millis(500);
        assert_eq!(skew(Version::V3, 100, half), Duration::from_micros(304_687));
        assert_eq!(
            master_down(Version::V3, 100, half, 3),
            Duration::from_micros(1_804_687)
        );
    }

    #[test]
    fn keepalived_down_timer_adverts_replaces_the_constant_3() {
        assert_eq!(
            master_down(Version::V2, 255, S1, 5),
            Duration::from_micros(5_003_906)
        );
        assert_eq!(skew_min(Version::V2, S1), Duration::from_micros(3_906));
    }

    #[test]
    fn keepalived_rounds_intervals_per_version() {
        let ms = Duration::from_millis;
        assert_eq!(round_interval(Version::V2, ms(500)), S1);
        assert_eq!(
            round_interval(Version::V2, ms(2400)),
            Duration::from_secs(2)
        );
        assert_eq!(round_interval(Version::V3, ms(123)), ms(120));
        assert_eq!(round_interval(Version::V3, ms(1)), ms(10));
        assert_eq!(interval_field(Version::V3, ms(500)), 50);
        assert_eq!(interval_field(Version::V2, Duration::from_secs(3)), 3);
    }
}
