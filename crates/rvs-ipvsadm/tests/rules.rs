//! Rules files (`-S` output, `-R` input) and the whole tool driven through `run` with a
//! scripted rvsd: what is sent, what is printed, which exit status.

mod common;

use common::*;
use rvs_api::{ApiError, Reply, Request};
use rvs_core::{Change, Errno, Forward};
use rvs_ipvsadm::rules::rule_lines;
use rvs_ipvsadm::run::Transport;
use rvs_ipvsadm::{format, parse_rules_with, requests, NoNames};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;

fn parse(text: &str) -> Result<Vec<rvs_ipvsadm::Rule>, rvs_ipvsadm::RuleError> {
    parse_rules_with(text, "ipvsadm", &Names)
}

#[test]
fn lines_are_split_like_ipvsadm_restore() {
    let text = "ipvsadm -A -t 1.2.3.4:80\n\n  \t \r\nipvsadm\n-a\t-t 1.2.3.4:80  -r 5.5.5.5\r\n";
    let lines: Vec<(usize, Vec<&str>)> = rule_lines(text).collect();
    assert_eq!(
        lines,
        [
            (1, vec!["-A", "-t", "1.2.3.4:80"]),
            (5, vec!["-a", "-t", "1.2.3.4:80", "-r", "5.5.5.5"]),
        ]
    );
}

#[test]
fn an_error_names_its_line_and_keeps_the_ipvsadm_message() {
    let text = "-A -t 1.2.3.4:80\n-a -t 1.2.3.4:80 -r 5.5.5.5 -w 99999\n-C\n";
    let e = parse(text).unwrap_err();
    assert_eq!((e.line, e.exit_status), (2, 2));
    assert_eq!(e.to_string(), "line 2: illegal weight specified");
    let e = parse("-A -t 1.2.3.4:80 # web\n").unwrap_err();
    assert_eq!(e.to_string(), "line 1: unexpected argument #");
    let e = parse("-C\n-A -t 1.2.3.4:80 --bogus\n").unwrap_err();
    assert_eq!(
        (e.line, e.exit_status, e.message.as_str()),
        (2, 255, "--bogus: unknown option")
    );
}

#[test]
fn nested_restore_and_stray_words_get_the_help_hint() {
    for text in ["-C\n-R\n", "foo\n"] {
        let e = parse(text).unwrap_err();
        assert_eq!(e.exit_status, 255);
        assert_eq!(
            e.message,
            "Try `ipvsadm -h' or 'ipvsadm --help' for more information."
        );
    }
    assert!(parse("-C --socket /x\n").is_err());
}

/// What restoring `rich()`'s `-S` output must send: each service, then its servers, in
/// listing order; `Local` servers come back as direct routing, as with ipvsadm.
fn expected_restore() -> Vec<Request> {
    let mut want = Vec::new();
    for svc in rvs_ipvsadm::sort::sorted_services(&rich(), false) {
        want.push(Request::Change(Change::AddService(svc.cfg.clone())));
        for d in &svc.dests {
            let mut dest = d.cfg.clone();
            if dest.forward == Forward::Local {
                dest.forward = Forward::Route;
            }
            want.push(Request::Change(Change::AddDest {
                svc: svc.cfg.key,
                dest,
            }));
        }
    }
    want
}

fn all_requests(text: &str) -> Vec<Request> {
    parse(text)
        .unwrap()
        .iter()
        .flat_map(|r| requests(&r.command))
        .collect()
}

#[test]
fn save_then_restore_reproduces_the_table() {
    let saved = format::save(&rich(), true, &NoNames);
    assert_eq!(all_requests(&saved), expected_restore());
}

#[test]
fn save_with_names_then_restore_reproduces_the_table() {
    let saved = format::save(&rich(), false, &Names);
    assert!(saved.contains("localhost:http"));
    assert_eq!(all_requests(&saved), expected_restore());
}

#[test]
fn restore_requests_skip_listing_lines() {
    let reqs = rvs_ipvsadm::restore_requests("-C\n-Ln\n-A -t 10.0.0.1:80 -s rr\n-S\n").unwrap();
    assert_eq!(reqs.len(), 2);
    assert_eq!(reqs[0], Request::Change(Change::Flush));
    assert!(matches!(reqs[1], Request::Change(Change::AddService(_))));
}

// ----- the tool end to end, with a scripted rvsd -----

type Log = Rc<RefCell<Vec<Request>>>;

/// Answers `Ok` to every change, except the ones `fail` names; lists the seed table.
struct Scripted {
    log: Log,
    fail: fn(&Request) -> Option<Errno>,
}

impl Scripted {
    fn answer(&self, req: &Request) -> Reply {
        if let Some(errno) = (self.fail)(req) {
            return Reply::Error(ApiError {
                errno: Some(errno),
                message: "refused".into(),
                refused: false,
            });
        }
        match req {
            Request::Info => Reply::Info(info()),
            Request::ListServices { .. } => Reply::Services(seed001()),
            Request::Batch(reqs) => Reply::Batch(reqs.iter().map(|r| self.answer(r)).collect()),
            _ => Reply::Ok,
        }
    }
}

impl Transport for Scripted {
    fn call(&mut self, req: &Request) -> Result<Reply, String> {
        self.log.borrow_mut().push(req.clone());
        Ok(self.answer(req))
    }
}

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
    sent: Vec<Request>,
    socket: Option<String>,
}

fn run_with(
    args: &[&str],
    stdin: &str,
    fail: fn(&Request) -> Option<Errno>,
    reachable: bool,
) -> Run {
    let args: Vec<String> = std::iter::once("rvsadm")
        .chain(args.iter().copied())
        .map(String::from)
        .collect();
    let log: Log = Rc::default();
    let socket = RefCell::new(None);
    let (mut out, mut err) = (Vec::new(), Vec::new());
    let mut connect = |p: &Path| -> Result<Box<dyn Transport>, String> {
        *socket.borrow_mut() = Some(p.display().to_string());
        if !reachable {
            return Err("No such file or directory".into());
        }
        Ok(Box::new(Scripted {
            log: log.clone(),
            fail,
        }))
    };
    let status = rvs_ipvsadm::run(
        &args,
        &mut stdin.as_bytes(),
        &mut out,
        &mut err,
        &mut connect,
    );
    let sent = log.borrow().clone();
    Run {
        status,
        stdout: String::from_utf8(out).unwrap(),
        stderr: String::from_utf8(err).unwrap(),
        sent,
        socket: socket.into_inner(),
    }
}

fn never(_: &Request) -> Option<Errno> {
    None
}

#[test]
fn listing_prints_ipvsadm_bytes() {
    let r = run_with(&["-Ln"], "", never, true);
    assert_eq!((r.status, r.stderr.as_str()), (0, ""));
    assert_eq!(r.stdout, include_str!("golden/seed001_Ln.txt"));
    assert_eq!(r.sent, [Request::Info, Request::ListServices { key: None }]);
}

#[test]
fn table_errors_print_ipvsadm_text_and_exit_255() {
    let r = run_with(
        &["-A", "-t", "10.0.0.1:80"],
        "",
        |_| Some(Errno::Exists),
        true,
    );
    assert_eq!(
        (r.status, r.stderr.as_str(), r.stdout.as_str()),
        (255, "Service already exists\n", "")
    );
    let r = run_with(
        &["-d", "-t", "10.0.0.1:80", "-r", "1.1.1.1"],
        "",
        |_| Some(Errno::NotFound),
        true,
    );
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (255, "No such destination\n")
    );
}

#[test]
fn help_version_and_option_errors_need_no_daemon() {
    let r = run_with(&["-h"], "", never, false);
    assert_eq!(r.status, 0);
    assert!(r.stdout.starts_with("ipvsadm v1.31"));
    assert!(r.stdout.contains("  rvsadm -A|E virtual-service"));
    assert_eq!(r.socket, None);
    let r = run_with(&["-v"], "", never, false);
    assert_eq!(r.status, 0);
    let r = run_with(&["-A", "-t", "10.0.0.1:0"], "", never, false);
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (2, "Zero port specified for non-persistent service\n")
    );
    assert_eq!(r.socket, None);
}

#[test]
fn unreachable_daemon_is_one_line_and_exit_2() {
    let r = run_with(
        &["--socket", "/nonexistent/rvsd.sock", "-Ln"],
        "",
        never,
        false,
    );
    assert_eq!(r.status, 2);
    assert_eq!(
        r.stderr,
        "rvsadm: cannot reach rvsd at /nonexistent/rvsd.sock: No such file or directory (start it with: rvsd [--socket PATH])\n"
    );
    assert_eq!(r.stdout, "");
}

#[test]
fn restore_sends_one_batch_and_reports_each_failure() {
    let rules = "-C\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 192.168.1.1 -m\n-a -t 10.0.0.1:80 -r 192.168.1.2 -m\n";
    let fail_second_server = |r: &Request| match r {
        Request::Change(Change::AddDest { dest, .. }) if dest.addr.to_string() == "192.168.1.1" => {
            Some(Errno::Exists)
        }
        _ => None,
    };
    let r = run_with(&["-R"], rules, fail_second_server, true);
    assert_eq!(r.sent.len(), 1, "{:?}", r.sent);
    let Request::Batch(batch) = &r.sent[0] else {
        panic!("not a batch: {:?}", r.sent)
    };
    assert_eq!(batch.len(), 4);
    assert_eq!(r.stderr, "Destination already exists\n");
    // As ipvsadm: the last line succeeded, so the restore exits 0.
    assert_eq!(r.status, 0);
    let r = run_with(
        &["-R"],
        "-A -t 10.0.0.1:80\n-A -t 10.0.0.1:80\n",
        |r| match r {
            Request::Change(Change::AddService(_)) => Some(Errno::Exists),
            _ => None,
        },
        true,
    );
    assert_eq!(
        (r.status, r.stderr.as_str()),
        (255, "Service already exists\nService already exists\n")
    );
}

#[test]
fn restore_with_a_bad_line_applies_nothing() {
    let r = run_with(
        &["-R"],
        "-C\n-A -t 10.0.0.1:80\n-a -t 10.0.0.1:80 -r 1.1.1.1 -w 70000\n",
        never,
        true,
    );
    assert_eq!(r.status, 2);
    assert_eq!(r.stderr, "line 3: illegal weight specified\n");
    assert!(r.sent.is_empty());
    assert_eq!(r.socket, None, "no need to reach rvsd");
}

#[test]
fn restore_runs_listing_lines_in_order() {
    let r = run_with(&["-R"], "-C\n-Ln\n-A -t 10.0.0.1:80\n", never, true);
    assert_eq!(r.status, 0);
    assert_eq!(r.stdout, include_str!("golden/seed001_Ln.txt"));
    assert_eq!(r.sent.len(), 4);
    assert!(matches!(r.sent[0], Request::Batch(ref b) if b == &[Request::Change(Change::Flush)]));
    assert_eq!(r.sent[1], Request::Info);
    assert!(matches!(r.sent[3], Request::Batch(ref b) if b.len() == 1));
}

#[test]
fn large_restore_is_chunked() {
    let text: String = (0..10_000)
        .map(|i| format!("-A -t 10.{}.{}.1:80 -s rr\n", i / 256, i % 256))
        .collect();
    let r = run_with(&["-R"], &text, never, true);
    assert_eq!(r.status, 0);
    let sizes: Vec<usize> = r
        .sent
        .iter()
        .map(|q| match q {
            Request::Batch(b) => b.len(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 10_000);
    assert!(
        sizes.len() >= 2 && sizes.iter().all(|&n| n <= 4096),
        "{sizes:?}"
    );
}

#[test]
fn socket_from_option() {
    let r = run_with(&["-C", "--socket", "/tmp/alt.sock"], "", never, true);
    assert_eq!(r.socket.as_deref(), Some("/tmp/alt.sock"));
    assert_eq!(r.sent, [Request::Change(Change::Flush)]);
}
