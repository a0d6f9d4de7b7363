//! What a checker does with a probe's outcome, per checker type, as keepalived's
//! epilogs do (`check_tcp.c tcp_epilog`, `check_dns.c dns_final`, `check_misc.c
//! misc_check_child_thread`, `check_http.c epilog/timeout_epilog`):
//!
//! * an up checker that fails is retried `retry` times, `delay_before_retry` apart; the
//!   next failure takes it down (so `retry + 1` consecutive failures);
//! * a checker that has never run goes down at its first failure ("one failure is
//!   enough initially"), and starts up unless `alpha`;
//! * a down checker is probed every `delay_loop`; one success brings it up
//!   (HTTP: every URL in turn, one per `delay_loop`, unless `fast_recovery`).

use crate::engine::{CheckerId, Engine, Loc};
use crate::plan::ProbeSpec;
use rvs_keepalived::pool::Verdict;
use std::time::Duration;

/// What a probe found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Ok,
    Fail(String),
    /// MISC_CHECK: the script exited with this status.
    Exit(u32),
    /// MISC_CHECK: the script died of a signal; `timed_out` when we killed it.
    Signal {
        sig: i32,
        timed_out: bool,
    },
}

/// When to probe again.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Next {
    /// This long after the probe ended.
    After(Duration),
    /// This long after the probe started (MISC_CHECK schedules from `last_ran`).
    FromStart(Duration),
}

impl Engine {
    /// Feeds a probe outcome. `None` if the checker no longer exists (a reload removed
    /// it while it was probing).
    pub fn on_result(
        &mut self,
        id: CheckerId,
        outcome: Outcome,
        out: &mut Vec<Verdict>,
    ) -> Option<Next> {
        let loc = self.locate(id)?;
        let (vi, ri, ci) = loc;
        let ck = &mut self.vss[vi].rss[ri].checkers[ci];
        let failed = match &outcome {
            Outcome::Ok => None,
            Outcome::Fail(e) => Some(e.clone()),
            Outcome::Exit(s) => {
                let ok = *s == 0 || (misc_dynamic(&ck.plan.probe) && (2..=255).contains(s));
                (!ok).then(|| format!("exited with status {s}"))
            }
            Outcome::Signal {
                sig,
                timed_out: true,
            } => Some(format!("timed out (killed, signal {sig})")),
            Outcome::Signal { sig, .. } => Some(format!("killed by signal {sig}")),
        };
        match &failed {
            None => ck.st.failures = 0,
            Some(e) => {
                ck.st.failures += 1;
                if ck.plan.log_all_failures || ck.st.is_up {
                    tracing::debug!(checker = ck.plan.kind(), error = %e, "probe failed");
                }
                ck.st.last_error = Some(e.clone());
            }
        }
        let next = match &ck.plan.probe {
            ProbeSpec::Tcp(_) | ProbeSpec::Dns(_) => {
                self.generic_epilog(loc, failed.is_none(), out)
            }
            ProbeSpec::Misc(_) => self.misc_epilog(loc, &outcome, failed.is_none(), out),
            ProbeSpec::Http { .. } => {
                if failed.is_none() {
                    self.http_epilog(loc, HttpStep::New, out)
                } else {
                    self.http_timeout_epilog(loc, out)
                }
            }
        };
        Some(next)
    }

    /// The URL an HTTP checker fetches next.
    pub fn url_index(&self, id: CheckerId) -> Option<usize> {
        let c = self.checker(id)?;
        Some(c.st.failed_url.or(c.st.url_it).unwrap_or(0))
    }

    fn log_transition(&self, (vi, ri, ci): Loc, up: bool) {
        let vs = &self.vss[vi];
        let rs = &vs.rss[ri];
        let ck = &rs.checkers[ci];
        let rs_addr = crate::engine::sock(rs.plan.addr, rs.plan.port);
        if up {
            tracing::info!(checker = ck.plan.kind(), rs = %rs_addr, vs = %vs.plan.name, "check succeeded");
        } else {
            let error = ck.st.last_error.as_deref().unwrap_or("");
            tracing::info!(checker = ck.plan.kind(), rs = %rs_addr, vs = %vs.plan.name, error, "check failed");
        }
    }

    /// TCP_CHECK and DNS_CHECK.
    fn generic_epilog(&mut self, loc: Loc, ok: bool, out: &mut Vec<Verdict>) -> Next {
        let (vi, ri, ci) = loc;
        let st = &self.vss[vi].rss[ri].checkers[ci].st;
        let t = self.vss[vi].rss[ri].checkers[ci].plan.timing;
        let mut delay = t.delay_loop;
        if ok || ((st.is_up || !st.has_run) && st.retry_it >= t.retry) {
            let (is_up, has_run) = (st.is_up, st.has_run);
            self.vss[vi].rss[ri].checkers[ci].st.retry_it = 0;
            if ok && (!is_up || !has_run) {
                if !is_up {
                    self.log_transition(loc, true);
                }
                self.update_checker_state(loc, true, out);
            } else if !ok && (is_up || !has_run) {
                self.log_transition(loc, false);
                self.update_checker_state(loc, false, out);
            }
        } else if st.is_up {
            delay = t.delay_before_retry;
            self.vss[vi].rss[ri].checkers[ci].st.retry_it += 1;
        }
        self.vss[vi].rss[ri].checkers[ci].st.has_run = true;
        Next::After(delay)
    }

    /// MISC_CHECK (`misc_check_child_thread`).
    fn misc_epilog(
        &mut self,
        loc: Loc,
        outcome: &Outcome,
        ok: bool,
        out: &mut Vec<Verdict>,
    ) -> Next {
        let (vi, ri, ci) = loc;
        let t = self.vss[vi].rss[ri].checkers[ci].plan.timing;
        let mut state_change = None;
        match outcome {
            Outcome::Exit(status) if ok => {
                let st = &self.vss[vi].rss[ri].checkers[ci].st;
                if *status != st.last_exit {
                    let rs = &self.vss[vi].rss[ri];
                    let old_cur = st.cur_weight;
                    let cur = if *status != 0 {
                        i64::from(*status) - 2 - i64::from(rs.plan.iweight)
                    } else {
                        0
                    };
                    let eff = rs.effective_weight - old_cur + cur;
                    let ck = &mut self.vss[vi].rss[ri].checkers[ci].st;
                    ck.cur_weight = cur;
                    ck.last_exit = *status;
                    self.update_weight(vi, ri, eff, out);
                }
                let st = &self.vss[vi].rss[ri].checkers[ci].st;
                if !st.is_up || !st.has_run {
                    state_change = Some(true);
                }
                self.vss[vi].rss[ri].checkers[ci].st.retry_it = 0;
            }
            Outcome::Exit(status) => {
                let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
                if st.is_up || !st.has_run {
                    if st.retry_it < t.retry {
                        st.retry_it += 1;
                    } else {
                        st.retry_it = 0;
                        let cur = std::mem::take(&mut st.cur_weight);
                        st.last_exit = *status;
                        self.vss[vi].rss[ri].effective_weight -= cur;
                        state_change = Some(false);
                    }
                } else {
                    st.last_exit = *status;
                }
            }
            _ => {
                // Killed (timeout or a signal): a failure.
                let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
                if st.is_up || !st.has_run {
                    if st.retry_it < t.retry {
                        st.retry_it += 1;
                    } else {
                        st.retry_it = 0;
                        state_change = Some(false);
                    }
                }
            }
        }
        if let Some(up) = state_change {
            self.log_transition(loc, up);
            self.update_checker_state(loc, up, out);
            if !up {
                let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
                let cur = std::mem::take(&mut st.cur_weight);
                self.vss[vi].rss[ri].effective_weight -= cur;
            }
        }
        let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
        st.has_run = true;
        Next::FromStart(if st.retry_it > 0 {
            t.delay_before_retry
        } else {
            t.delay_loop
        })
    }

    /// HTTP_GET/SSL_GET `timeout_epilog`: a failed URL.
    fn http_timeout_epilog(&mut self, loc: Loc, out: &mut Vec<Verdict>) -> Next {
        let (vi, ri, ci) = loc;
        let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
        if st.is_up || !st.has_run {
            st.has_run = true;
            self.http_epilog(loc, HttpStep::Retry, out)
        } else {
            self.http_epilog(loc, HttpStep::Failed, out)
        }
    }

    /// HTTP_GET/SSL_GET `epilog`.
    fn http_epilog(&mut self, loc: Loc, step: HttpStep, out: &mut Vec<Verdict>) -> Next {
        let (vi, ri, ci) = loc;
        let plan = self.vss[vi].rss[ri].checkers[ci].plan.clone();
        let t = plan.timing;
        let (nurls, fast) = match &plan.probe {
            ProbeSpec::Http { http, .. } => (http.urls.len(), http.fast_recovery),
            _ => (1, false),
        };
        {
            let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
            match step {
                HttpStep::New => {
                    st.url_it = st.url_it.map(|u| u + 1).filter(|u| *u < nurls);
                    st.retry_it = 0;
                }
                HttpStep::Retry => st.retry_it += 1,
                HttpStep::Failed => {}
            }
        }
        let st = self.vss[vi].rss[ri].checkers[ci].st.clone();
        if step == HttpStep::New && st.url_it.is_none() && st.failed_url.is_none() {
            if !st.is_up || !st.has_run {
                if !st.is_up {
                    self.log_transition(loc, true);
                }
                self.update_checker_state(loc, true, out);
                self.vss[vi].rss[ri].checkers[ci].st.has_run = true;
            }
            let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
            st.url_it = Some(0);
            st.retry_it = 0;
        } else if step == HttpStep::Retry && st.retry_it > t.retry {
            if st.is_up || !st.has_run {
                self.log_transition(loc, false);
                self.update_checker_state(loc, false, out);
            }
            let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
            st.failed_url = st.url_it;
        } else if step == HttpStep::New && st.failed_url.is_some() {
            let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
            st.failed_url = None;
            st.url_it = Some(0);
            st.retry_it = 0;
        }
        let st = &mut self.vss[vi].rss[ri].checkers[ci].st;
        let delay = if step == HttpStep::New {
            if !st.has_run {
                st.retry_it = t.retry;
            }
            t.delay_loop
        } else if st.failed_url.is_some() {
            t.delay_before_retry.max(t.delay_loop)
        } else {
            t.delay_before_retry
        };
        if fast && (!st.has_run || (!st.is_up && st.failed_url.is_none())) {
            return Next::After(Duration::ZERO);
        }
        Next::After(delay)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum HttpStep {
    /// REGISTER_CHECKER_NEW: the URL passed.
    New,
    /// REGISTER_CHECKER_RETRY: it failed while up (or before the first run finished).
    Retry,
    /// REGISTER_CHECKER_FAILED: it failed while down.
    Failed,
}

fn misc_dynamic(p: &ProbeSpec) -> bool {
    matches!(p, ProbeSpec::Misc(m) if m.dynamic)
}
