//! Where the checkers' reports go: the daemon passes a [`VerdictSink`]. The checkers never
//! see the table; the sink maps what they report to table changes
//! (`rvs_keepalived::pool`) and hands those to the daemon's writer.

use rvs_keepalived::pool::{Health, Verdict};
use rvs_keepalived::Config;

/// Receives what the checkers report, in order. Both calls are made with the checkers'
/// state locked, so a verdict never comes between a configuration and its health: they
/// must not block (queue the work).
pub trait VerdictSink: Send + Sync + 'static {
    /// The checkers run `cfg` from now on (`first`: the start, else a reload); `health`
    /// is every real server's state at that moment.
    fn configured(&self, cfg: &Config, health: &dyn Health, first: bool);

    /// Verdicts, in the order the checkers reached them.
    fn verdicts(&self, verdicts: Vec<Verdict>);
}
