//! Traffic counters and the IPVS rate estimator (`ip_vs_est.c`).
//!
//! Every 2 seconds each stats object folds the counter deltas into an exponentially weighted
//! moving average with weight 1/4, kept in fixed point (2^10 for conns and packets, 2^5 for
//! bytes) exactly as the kernel does, so `--rate` shows the same numbers for the same traffic.

use serde::{Deserialize, Serialize};

/// The five counters of a service, a real server or the whole table.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    pub conns: u64,
    pub inpkts: u64,
    pub outpkts: u64,
    pub inbytes: u64,
    pub outbytes: u64,
}

impl Counters {
    pub fn saturating_sub(&self, o: &Counters) -> Counters {
        Counters {
            conns: self.conns.saturating_sub(o.conns),
            inpkts: self.inpkts.saturating_sub(o.inpkts),
            outpkts: self.outpkts.saturating_sub(o.outpkts),
            inbytes: self.inbytes.saturating_sub(o.inbytes),
            outbytes: self.outbytes.saturating_sub(o.outbytes),
        }
    }

    pub fn add(&mut self, o: &Counters) {
        self.conns += o.conns;
        self.inpkts += o.inpkts;
        self.outpkts += o.outpkts;
        self.inbytes += o.inbytes;
        self.outbytes += o.outbytes;
    }
}

/// Rates as `ipvsadm --rate` shows them: per second, rounded as the kernel rounds.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rates {
    pub cps: u64,
    pub inpps: u64,
    pub outpps: u64,
    pub inbps: u64,
    pub outbps: u64,
}

/// Estimator period in milliseconds.
pub const ESTIMATOR_PERIOD_MS: u64 = 2000;

/// Counters plus zero point plus estimator state of one stats object.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Running totals since creation.
    total: Counters,
    /// Totals at the last `-Z` (`kstats0`).
    zero: Counters,
    /// Totals seen at the previous estimator tick.
    last: Counters,
    /// Scaled averages: cps, inpps, outpps (<<10), inbps, outbps (<<5).
    cps: u64,
    inpps: u64,
    outpps: u64,
    inbps: u64,
    outbps: u64,
}

impl Stats {
    pub fn add_conn(&mut self) {
        self.total.conns += 1;
    }

    pub fn add_in(&mut self, bytes: u64) {
        self.total.inpkts += 1;
        self.total.inbytes += bytes;
    }

    pub fn add_out(&mut self, bytes: u64) {
        self.total.outpkts += 1;
        self.total.outbytes += bytes;
    }

    /// Adds counts measured elsewhere (a data plane's per-CPU counters).
    pub fn add_counters(&mut self, c: &Counters) {
        self.total.add(c);
    }

    /// Totals as `--stats` shows them: since the last `-Z`.
    pub fn shown(&self) -> Counters {
        self.total.saturating_sub(&self.zero)
    }

    /// Totals since creation, ignoring `-Z`.
    pub fn total(&self) -> Counters {
        self.total
    }

    /// `ipvsadm -Z`: records the zero point and clears the rates.
    pub fn zero(&mut self) {
        self.zero = self.total;
        self.last = self.total;
        self.cps = 0;
        self.inpps = 0;
        self.outpps = 0;
        self.inbps = 0;
        self.outbps = 0;
    }

    /// One estimator step; call every [`ESTIMATOR_PERIOD_MS`].
    pub fn estimate(&mut self) {
        let d = self.total.saturating_sub(&self.last);
        self.last = self.total;
        // avg += (rate - avg) / 4, where rate = delta/2 s, in fixed point: a delta shifted
        // left by 9 is (delta / 2) << 10; by 4 is (delta / 2) << 5.
        fn ewma(avg: &mut u64, delta: u64, shift: u32) {
            let sample = (delta << shift) as i128;
            let cur = *avg as i128;
            *avg = (cur + ((sample - cur) >> 2)) as u64;
        }
        ewma(&mut self.cps, d.conns, 9);
        ewma(&mut self.inpps, d.inpkts, 9);
        ewma(&mut self.outpps, d.outpkts, 9);
        ewma(&mut self.inbps, d.inbytes, 4);
        ewma(&mut self.outbps, d.outbytes, 4);
    }

    pub fn rates(&self) -> Rates {
        Rates {
            cps: (self.cps + 0x1FF) >> 10,
            inpps: (self.inpps + 0x1FF) >> 10,
            outpps: (self.outpps + 0x1FF) >> 10,
            inbps: (self.inbps + 0xF) >> 5,
            outbps: (self.outbps + 0xF) >> 5,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimator_converges_to_the_per_second_rate() {
        let mut s = Stats::default();
        // 100 connections and 1000 packets of 100 bytes every 2 s: 50 cps, 500 pps, 50 kB/s.
        // (3/4)^80 of the start value is left: far below the read-out's rounding.
        for _ in 0..80 {
            for _ in 0..100 {
                s.add_conn();
            }
            for _ in 0..1000 {
                s.add_in(100);
            }
            s.estimate();
        }
        let r = s.rates();
        assert_eq!(r.cps, 50);
        assert_eq!(r.inpps, 500);
        assert_eq!(r.inbps, 50_000);
        assert_eq!(r.outpps, 0);
    }

    #[test]
    fn estimator_first_step_is_a_quarter_of_the_rate() {
        let mut s = Stats::default();
        for _ in 0..400 {
            s.add_conn();
        }
        s.estimate();
        // rate 200/s, avg = 200/4 = 50.
        assert_eq!(s.rates().cps, 50);
        s.estimate();
        // No new conns: 51200·3/4 = 38400 in 2^10 units = 37.5; the read-out adds 0x1FF
        // (just under a half) before shifting, so it shows 37.
        assert_eq!(s.rates().cps, 37);
    }

    #[test]
    fn zero_keeps_totals_but_shows_from_zero_point() {
        let mut s = Stats::default();
        s.add_conn();
        s.add_in(60);
        s.estimate();
        s.zero();
        assert_eq!(s.shown(), Counters::default());
        assert_eq!(s.total().conns, 1);
        assert_eq!(s.rates(), Rates::default());
        s.add_in(40);
        assert_eq!(s.shown().inbytes, 40);
    }
}
