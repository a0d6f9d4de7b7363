//! The checker state machine and the pool logic, without sockets: outcomes in, the
//! checkers' verdicts through the pool (`rvs_keepalived::pool`), table changes and scripts
//! out (keepalived.md §7; `check_tcp.c`, `check_misc.c`, `check_http.c`, `ipwrapper.c`).

use rvs_check::engine::{CheckerId, Engine};
use rvs_check::epilog::{Next, Outcome};
use rvs_check::plan::plan;
use rvs_core::Change;
use rvs_keepalived::pool::{Effect, Pool};
use rvs_keepalived::{parse_str, Config};
use std::path::Path;
use std::time::Duration;

fn cfg(text: &str) -> Config {
    parse_str(Path::new("t.conf"), text).unwrap_or_else(|e| panic!("{e}"))
}

/// The checkers (`Engine`) and the pool, wired as rvsd wires them.
struct Rig {
    e: Engine,
    pool: Pool,
    log: Vec<Effect>,
}

impl Rig {
    fn new(text: &str) -> Rig {
        let c = cfg(text);
        let mut e = Engine::new();
        e.init(plan(&c));
        let mut pool = Pool::default();
        let log = pool.load(&c, &e);
        Rig { e, pool, log }
    }

    /// Feeds an outcome to checker `n` (1-based creation order); returns the effects.
    fn feed(&mut self, n: u64, o: Outcome) -> (Vec<Effect>, Next) {
        let mut verdicts = Vec::new();
        let next = self
            .e
            .on_result(CheckerId(n), o, &mut verdicts)
            .expect("checker exists");
        let mut out = Vec::new();
        for v in &verdicts {
            self.pool.on_verdict(v, &mut out);
        }
        self.log.extend(out.clone());
        (out, next)
    }

    fn fail(&mut self, n: u64) -> (Vec<Effect>, Next) {
        self.feed(n, Outcome::Fail("refused".into()))
    }

    fn ok(&mut self, n: u64) -> (Vec<Effect>, Next) {
        self.feed(n, Outcome::Ok)
    }

    /// A reload: the checkers first, then the pool with their health.
    fn reload(&mut self, text: &str) -> (rvs_check::ReloadReport, Vec<Effect>) {
        let c = cfg(text);
        let rep = self.e.reload(plan(&c));
        let out = self.pool.reload(&c, &self.e);
        (rep, out)
    }
}

/// Summaries: `+addr:port/w`, `-addr:port`, `run script-word`, `svc`.
fn summary(a: &[Effect]) -> Vec<String> {
    a.iter()
        .map(|a| match a {
            Effect::Change(Change::SetService(s)) => format!("svc {}", s.key),
            Effect::Change(Change::DelService(k)) => format!("-svc {k}"),
            Effect::Change(Change::SetDest { dest, .. }) => {
                format!("+{}:{}/{}", dest.addr, dest.port, dest.weight)
            }
            Effect::Change(Change::DelDest { addr, port, .. }) => format!("-{addr}:{port}"),
            Effect::Run { script, .. } => format!("run {}", script.args.join(" ")),
            Effect::Change(Change::Flush) => "flush".into(),
            Effect::Change(Change::SetTimeouts { .. }) => "timeouts".into(),
            Effect::Change(other) => panic!("the pool does not ask for {other:?}"),
        })
        .collect()
}

const TWO_TCP: &str = "virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_kind DR
    lb_algo rr
    delay_loop 6
    real_server 10.0.0.2 80 {
        weight 3
        notify_up \"/bin/up a\"
        notify_down \"/bin/down b\"
        TCP_CHECK {
            retry 2
            delay_before_retry 1.5
        }
    }
    real_server 10.0.0.3 80 {
        TCP_CHECK {
        }
    }
}";

#[test]
fn startup_adds_every_server_with_its_weight() {
    let r = Rig::new(TWO_TCP);
    assert_eq!(
        summary(&r.log),
        ["svc TCP 10.0.0.1:80", "+10.0.0.2:80/3", "+10.0.0.3:80/1"]
    );
}

#[test]
fn first_ever_failure_takes_a_server_down_at_once() {
    // keepalived sets retry_it = retry at start: "one failure is enough initially".
    let mut r = Rig::new(TWO_TCP);
    let (a, next) = r.fail(1);
    assert_eq!(summary(&a), ["-10.0.0.2:80", "run /bin/down b"]);
    assert_eq!(next, Next::After(Duration::from_secs(6)));
}

#[test]
fn an_up_server_goes_down_after_retry_plus_one_failures() {
    let mut r = Rig::new(TWO_TCP);
    r.ok(1);
    let (a, n1) = r.fail(1);
    assert!(a.is_empty());
    assert_eq!(n1, Next::After(Duration::from_millis(1500)));
    let (a, n2) = r.fail(1);
    assert!(a.is_empty());
    assert_eq!(n2, Next::After(Duration::from_millis(1500)));
    let (a, n3) = r.fail(1);
    assert_eq!(summary(&a), ["-10.0.0.2:80", "run /bin/down b"]);
    assert_eq!(n3, Next::After(Duration::from_secs(6)));
    // Down: probes every delay_loop, nothing more happens on failure.
    let (a, n4) = r.fail(1);
    assert!(a.is_empty());
    assert_eq!(n4, Next::After(Duration::from_secs(6)));
    // One success: back with its configured weight.
    let (a, _) = r.ok(1);
    assert_eq!(summary(&a), ["+10.0.0.2:80/3", "run /bin/up a"]);
    let st = &r.e.checker(CheckerId(1)).unwrap().st;
    assert!(st.is_up);
    assert_eq!(st.failures, 0);
    assert_eq!(st.last_error.as_deref(), Some("refused"));
}

#[test]
fn a_success_between_failures_resets_the_retries() {
    let mut r = Rig::new(TWO_TCP);
    r.ok(1);
    r.fail(1);
    r.fail(1);
    r.ok(1);
    assert!(r.fail(1).0.is_empty());
    assert!(r.fail(1).0.is_empty());
    assert_eq!(summary(&r.fail(1).0)[0], "-10.0.0.2:80");
}

#[test]
fn inhibit_on_failure_sets_weight_zero_and_recovery_restores_it() {
    let mut r = Rig::new(&TWO_TCP.replace("weight 3", "weight 3\n inhibit_on_failure"));
    let (a, _) = r.fail(1);
    assert_eq!(summary(&a), ["+10.0.0.2:80/0", "run /bin/down b"]);
    let (a, _) = r.ok(1);
    assert_eq!(summary(&a), ["+10.0.0.2:80/3", "run /bin/up a"]);
}

#[test]
fn alpha_servers_start_outside_and_join_after_one_success() {
    let mut r = Rig::new(&TWO_TCP.replace("delay_loop 6", "delay_loop 6\nalpha"));
    assert_eq!(summary(&r.log), ["svc TCP 10.0.0.1:80"]);
    let (a, _) = r.ok(2);
    assert_eq!(summary(&a), ["+10.0.0.3:80/1"]);
    // An alpha checker failing its first probe: the server stays out, notify_down runs.
    let (a, _) = r.fail(1);
    assert_eq!(summary(&a), ["run /bin/down b"]);
}

#[test]
fn alpha_inhibited_servers_start_in_the_table_with_weight_zero() {
    let r = Rig::new(&TWO_TCP.replace("delay_loop 6", "delay_loop 6\nalpha\ninhibit_on_failure"));
    assert_eq!(
        summary(&r.log),
        ["svc TCP 10.0.0.1:80", "+10.0.0.2:80/0", "+10.0.0.3:80/0"]
    );
}

#[test]
fn a_server_is_alive_only_when_none_of_its_checkers_fails() {
    let mut r = Rig::new(
        "virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            real_server 10.0.0.2 80 {
                TCP_CHECK {
                }
                TCP_CHECK {
                    connect_port 81
                }
            }
        }",
    );
    assert_eq!(summary(&r.fail(1).0), ["-10.0.0.2:80"]);
    assert!(r.fail(2).0.is_empty(), "already out");
    assert!(r.ok(1).0.is_empty(), "the other checker still fails");
    assert_eq!(summary(&r.ok(2).0), ["+10.0.0.2:80/1"]);
}

const QUORUM: &str = "virtual_server 10.0.0.1 80 {
    protocol TCP
    lb_kind NAT
    quorum 2
    hysteresis 1
    quorum_up \"/bin/qup\"
    quorum_down \"/bin/qdown\"
    sorry_server 10.0.0.9 8080
    real_server 10.0.0.2 80 {
        TCP_CHECK {
        }
    }
    real_server 10.0.0.3 80 {
        weight 2
        TCP_CHECK {
        }
    }
}";

#[test]
fn quorum_lost_brings_the_sorry_server_and_regained_removes_it() {
    let mut r = Rig::new(QUORUM);
    // Start: weight 3 >= quorum 2 + hysteresis 1: quorum gained, quorum_up runs.
    assert_eq!(
        summary(&r.log),
        [
            "svc TCP 10.0.0.1:80",
            "+10.0.0.2:80/1",
            "+10.0.0.3:80/2",
            "run /bin/qup"
        ]
    );
    // 10.0.0.3 down: 1 < 2 - 1? no: quorum kept (hysteresis).
    assert_eq!(summary(&r.fail(2).0), ["-10.0.0.3:80"]);
    // 10.0.0.2 down too: weight 0: quorum lost, sorry server in, quorum_down.
    assert_eq!(
        summary(&r.fail(1).0),
        ["-10.0.0.2:80", "+10.0.0.9:8080/1", "run /bin/qdown"]
    );
    // 10.0.0.2 back: 1 < 2 + 1: still lost, the server is tracked but not pushed.
    assert!(summary(&r.ok(1).0).is_empty());
    // 10.0.0.3 back: 3 >= 3: sorry out, alive servers in, quorum_up.
    assert_eq!(
        summary(&r.ok(2).0),
        [
            "-10.0.0.9:8080",
            "+10.0.0.2:80/1",
            "+10.0.0.3:80/2",
            "run /bin/qup"
        ]
    );
}

#[test]
fn misc_dynamic_exit_status_sets_the_weight() {
    let mut r = Rig::new(
        "virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            real_server 10.0.0.2 80 {
                weight 10
                MISC_CHECK {
                    misc_path /bin/true
                    misc_dynamic
                    delay_before_retry 0.5
                }
            }
        }",
    );
    let (a, next) = r.feed(1, Outcome::Exit(0));
    assert!(a.is_empty());
    assert_eq!(next, Next::FromStart(Duration::from_secs(60)));
    assert_eq!(summary(&r.feed(1, Outcome::Exit(7)).0), ["+10.0.0.2:80/5"]);
    assert_eq!(summary(&r.feed(1, Outcome::Exit(2)).0), ["+10.0.0.2:80/0"]);
    assert_eq!(summary(&r.feed(1, Outcome::Exit(0)).0), ["+10.0.0.2:80/10"]);
    // Exit 1 is down (MISC_CHECK retries 0 times by default).
    assert_eq!(summary(&r.feed(1, Outcome::Exit(1)).0), ["-10.0.0.2:80"]);
    // Up again with a dynamic weight.
    assert_eq!(summary(&r.feed(1, Outcome::Exit(4)).0), ["+10.0.0.2:80/2"]);
}

#[test]
fn misc_without_dynamic_treats_status_2_as_failure_and_timeouts_as_failure() {
    let mut r = Rig::new(
        "virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            real_server 10.0.0.2 80 {
                MISC_CHECK {
                    misc_path /bin/true
                    retry 1
                }
            }
        }",
    );
    r.feed(1, Outcome::Exit(0));
    let (a, next) = r.feed(1, Outcome::Exit(2));
    assert!(a.is_empty());
    assert_eq!(
        next,
        Next::FromStart(Duration::from_secs(1)),
        "delay_before_retry"
    );
    let (a, _) = r.feed(
        1,
        Outcome::Signal {
            sig: 15,
            timed_out: true,
        },
    );
    assert_eq!(summary(&a), ["-10.0.0.2:80"]);
    let st = &r.e.checker(CheckerId(1)).unwrap().st;
    assert_eq!(
        st.last_error.as_deref(),
        Some("timed out (killed, signal 15)")
    );
    assert_eq!(st.failures, 2);
}

#[test]
fn http_checks_every_url_in_turn_and_recovers_url_by_url() {
    let mut r = Rig::new(
        "virtual_server 10.0.0.1 80 {
            protocol TCP
            lb_kind DR
            delay_loop 2
            real_server 10.0.0.2 80 {
                HTTP_GET {
                    url {
                        path /a
                    }
                    url {
                        path /b
                    }
                    retry 1
                    delay_before_retry 0.5
                }
            }
        }",
    );
    let id = CheckerId(1);
    assert_eq!(r.e.url_index(id), Some(0));
    assert_eq!(r.ok(1).1, Next::After(Duration::from_secs(2)));
    assert_eq!(r.e.url_index(id), Some(1));
    r.ok(1);
    assert_eq!(r.e.url_index(id), Some(0));
    // /a fails twice (retry 1): down; the failed URL is retried every delay_loop.
    assert_eq!(r.fail(1).1, Next::After(Duration::from_millis(500)));
    let (a, n) = r.fail(1);
    assert_eq!(summary(&a), ["-10.0.0.2:80"]);
    assert_eq!(n, Next::After(Duration::from_secs(2)));
    assert_eq!(r.e.url_index(id), Some(0));
    // /a passes: every URL is checked again before the server comes back.
    assert!(r.ok(1).0.is_empty());
    assert_eq!(r.e.url_index(id), Some(0));
    assert!(r.ok(1).0.is_empty());
    assert_eq!(r.e.url_index(id), Some(1));
    assert_eq!(summary(&r.ok(1).0), ["+10.0.0.2:80/1"]);
}

#[test]
fn group_servers_go_in_and_out_of_every_service() {
    let mut r = Rig::new(
        "virtual_server_group G {
            10.0.0.1-2 80
        }
        virtual_server group G {
            protocol TCP
            lb_kind DR
            real_server 10.0.0.9 80 {
                TCP_CHECK {
                }
            }
        }",
    );
    assert_eq!(summary(&r.fail(1).0), ["-10.0.0.9:80", "-10.0.0.9:80"]);
    let a = r.ok(1).0;
    let svcs: Vec<String> = a
        .iter()
        .filter_map(|a| match a {
            Effect::Change(Change::SetDest { svc, .. }) => Some(svc.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(svcs, ["TCP 10.0.0.1:80", "TCP 10.0.0.2:80"]);
}

#[test]
fn status_shows_kind_state_error_and_failures() {
    let mut r = Rig::new(TWO_TCP);
    r.ok(1);
    r.fail(1);
    let s = r.e.status();
    assert_eq!(s.len(), 2);
    assert_eq!(s[0].kind, "TCP_CHECK");
    assert!(s[0].up, "one failure of three");
    assert_eq!(s[0].failures, 1);
    assert_eq!(s[0].last_error.as_deref(), Some("refused"));
    assert_eq!(s[0].service.to_string(), "TCP 10.0.0.1:80");
}

#[test]
fn reload_keeps_unchanged_checkers_and_their_state() {
    let mut r = Rig::new(TWO_TCP);
    r.fail(1); // 10.0.0.2 down
    r.ok(2);
    // New config: 10.0.0.3 gets a different checker, a new server 10.0.0.4, the
    // scheduler changes.
    let next = TWO_TCP
        .replace("lb_algo rr", "lb_algo wrr")
        .replace(
            "real_server 10.0.0.3 80 {\n        TCP_CHECK {\n        }",
            "real_server 10.0.0.3 80 {\n        TCP_CHECK {\n connect_timeout 2\n }",
        )
        .replace(
            "real_server 10.0.0.3",
            "real_server 10.0.0.4 80 {\n}\nreal_server 10.0.0.3",
        );
    let (rep, out) = r.reload(&next);
    assert_eq!(rep.kept, [CheckerId(1)]);
    assert_eq!(rep.stopped, [CheckerId(2)]);
    assert_eq!(rep.started.len(), 1);
    // The down server stays down (no re-add); the new one goes in; the scheduler edit.
    let s = summary(&out);
    assert!(s.contains(&"svc TCP 10.0.0.1:80".to_string()), "{s:?}");
    assert!(s.contains(&"+10.0.0.4:80/1".to_string()), "{s:?}");
    assert!(!s.iter().any(|x| x.starts_with("+10.0.0.2")), "{s:?}");
    assert!(!s.iter().any(|x| x.starts_with("-")), "{s:?}");
    assert!(!r.e.checker(CheckerId(1)).unwrap().st.is_up);
}

#[test]
fn reload_removes_what_left_and_applies_new_weights() {
    let mut r = Rig::new(TWO_TCP);
    let next = TWO_TCP.replace("weight 3", "weight 7").replace(
        "real_server 10.0.0.3 80 {\n        TCP_CHECK {\n        }\n    }",
        "",
    );
    let (_, out) = r.reload(&next);
    let s = summary(&out);
    assert_eq!(s, ["-10.0.0.3:80", "+10.0.0.2:80/7"]);
}

#[test]
fn the_first_probe_waits_bootstrap_plus_a_random_part_of_warmup() {
    let c = cfg(&TWO_TCP.replace("delay_loop 6", "delay_loop 6\nwarmup 2"));
    let p = &plan(&c)[0].rss[0].checkers[0];
    let boot = Duration::from_millis(100);
    let draws: Vec<Duration> = (0..200).map(|_| Engine::first_delay(p, boot)).collect();
    assert!(draws
        .iter()
        .all(|d| *d >= boot && *d <= boot + Duration::from_secs(2)));
    assert!(
        draws.iter().any(|d| *d > boot + Duration::from_secs(1)),
        "spread over warmup"
    );
    // warmup defaults to delay_loop; warmup 0 starts right after the bootstrap delay.
    let c = cfg(&TWO_TCP.replace("delay_loop 6", "delay_loop 6\nwarmup 0"));
    assert_eq!(
        Engine::first_delay(&plan(&c)[0].rss[0].checkers[0], boot),
        boot
    );
    assert_eq!(
        plan(&cfg(TWO_TCP))[0].rss[0].checkers[0].timing.warmup,
        Duration::from_secs(6)
    );
}

#[test]
fn reload_deletes_a_removed_virtual_server_but_not_a_service_that_moved() {
    let a = "virtual_server 10.0.0.1 80 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n }\n }\n}\n\
             virtual_server 10.0.0.1 81 {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.2 81 {\n }\n}\n";
    let mut r = Rig::new(a);
    // :80 moves into a group, :81 goes away.
    let b = "virtual_server_group G {\n 10.0.0.1 80\n}\n\
             virtual_server group G {\n protocol TCP\n lb_kind DR\n real_server 10.0.0.2 80 {\n TCP_CHECK {\n }\n }\n}\n";
    let (rep, out) = r.reload(b);
    let s = summary(&out);
    assert!(s.contains(&"-svc TCP 10.0.0.1:81".to_string()), "{s:?}");
    assert!(!s.contains(&"-svc TCP 10.0.0.1:80".to_string()), "{s:?}");
    assert!(s.contains(&"+10.0.0.2:80/1".to_string()), "{s:?}");
    assert_eq!((rep.stopped.len(), rep.started.len()), (1, 1));
}

/// Applies the table changes of `effects` (the pool's) to `t`.
fn apply(t: &mut rvs_core::Table, effects: &[Effect]) {
    for e in effects {
        if let Effect::Change(c) = e {
            t.apply(c).unwrap_or_else(|err| panic!("{c:?}: {err}"));
        }
    }
}

/// The one reload diff: services and servers added, removed and changed, and the checker
/// that changed restarting; the same file again changes nothing.
#[test]
fn reload_diff_adds_removes_and_edits_only_what_changed() {
    let base = "virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_kind DR\nlb_algo rr\n\
        real_server 10.0.0.2 80 {\nweight 1\nTCP_CHECK {\n}\n}\n\
        real_server 10.0.0.3 80 {\nTCP_CHECK {\n}\n}\n}\n\
        virtual_server 10.0.0.1 81 {\nprotocol TCP\nlb_kind DR\nlb_algo rr\nreal_server 10.0.0.2 81 {\n}\n}\n";
    let next = "virtual_server 10.0.0.1 80 {\nprotocol TCP\nlb_kind DR\nlb_algo wrr\n\
        real_server 10.0.0.2 80 {\nweight 5\nTCP_CHECK {\n}\n}\n\
        real_server 10.0.0.4 80 {\nTCP_CHECK {\n}\n}\n\
        real_server 10.0.0.3 80 {\nTCP_CHECK {\nconnect_timeout 1\n}\n}\n}\n\
        virtual_server 10.0.0.1 82 {\nprotocol TCP\nlb_kind DR\nlb_algo rr\nreal_server 10.0.0.2 82 {\n}\n}\n";
    let mut r = Rig::new(base);
    let mut table = rvs_core::Table::new();
    apply(&mut table, &r.log);
    let (rep, out) = r.reload(next);
    let ports = |f: &dyn Fn(&Change) -> Option<u16>| -> Vec<u16> {
        out.iter()
            .filter_map(|e| match e {
                Effect::Change(c) => f(c),
                Effect::Run { .. } => None,
            })
            .collect()
    };
    // Services: :82 added, :81 removed, :80 edited to wrr.
    let set: Vec<(u16, String)> = out
        .iter()
        .filter_map(|e| match e {
            Effect::Change(Change::SetService(s)) => Some((s.key.port(), s.scheduler.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(set, [(80, "wrr".to_string()), (82, "rr".to_string())]);
    let removed = ports(&|c| match c {
        Change::DelService(k) => Some(k.port()),
        _ => None,
    });
    assert_eq!(removed, [81]);
    // Servers: none removed but with their service, 10.0.0.4 added, 10.0.0.2's weight
    // 1 -> 5.
    let gone = ports(&|c| match c {
        Change::DelDest { svc, .. } => Some(svc.port()),
        _ => None,
    });
    assert_eq!(gone, [81]);
    let s = summary(&out);
    assert!(s.contains(&"+10.0.0.4:80/1".to_string()), "{s:?}");
    assert!(s.contains(&"+10.0.0.2:80/5".to_string()), "{s:?}");
    assert!(!s.iter().any(|x| x.starts_with("+10.0.0.2:81")), "{s:?}");
    // Checkers: 10.0.0.2's goes on, 10.0.0.3's changed and restarts, 10.0.0.4's starts.
    assert_eq!(rep.kept, [CheckerId(1)]);
    assert_eq!(rep.stopped, [CheckerId(2)]);
    let started: Vec<String> = rep
        .started
        .iter()
        .map(|id| {
            let (v, rs, _) = r.e.locate(*id).expect("running");
            r.e.vss[v].rss[rs].plan.addr.to_string()
        })
        .collect();
    assert_eq!(started, ["10.0.0.4", "10.0.0.3"]);
    apply(&mut table, &out);
    // The same file again: nothing is added, removed or changed.
    let before = table.snapshot();
    let (rep, out) = r.reload(next);
    assert!(rep.started.is_empty() && rep.stopped.is_empty(), "{rep:?}");
    assert!(
        !summary(&out)
            .iter()
            .any(|x| x.starts_with('-') || x.starts_with("svc")),
        "{out:?}"
    );
    apply(&mut table, &out);
    assert_eq!(table.snapshot(), before);
}
