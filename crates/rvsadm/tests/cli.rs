//! The rvsadm binary without a daemon: help, version, option errors (exact stderr and exit
//! status), and the one-line message when rvsd cannot be reached.

use std::io::Write;
use std::process::{Command, Output, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_rvsadm");
const NO_SOCKET: &str = "/nonexistent/rvs-test/rvsd.sock";

fn rvsadm(args: &[&str], stdin: &str) -> Output {
    let mut child = Command::new(BIN)
        .args(args)
        .env("RVS_SOCKET", NO_SOCKET)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run rvsadm");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

fn result(o: &Output) -> (i32, String, String) {
    (
        o.status.code().expect("exited normally"),
        String::from_utf8_lossy(&o.stdout).into_owned(),
        String::from_utf8_lossy(&o.stderr).into_owned(),
    )
}

/// Exit status 2 and exactly `message` on stderr, nothing on stdout.
fn refused(args: &[&str], message: &str) {
    let (code, out, err) = result(&rvsadm(args, ""));
    assert_eq!(
        (code, out.as_str(), err.as_str()),
        (2, "", &*format!("{message}\n")),
        "{args:?}"
    );
}

#[test]
fn help_works_without_a_daemon() {
    let (code, out, err) = result(&rvsadm(&["-h"], ""));
    assert_eq!((code, err.as_str()), (0, ""));
    assert!(
        out.starts_with("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nUsage:\n")
    );
    assert!(out.contains(&format!("  {BIN} -L|l [virtual-service] [options]\n")));
    assert!(out.contains("rvs extensions (not in ipvsadm):\n  --status"));
}

#[test]
fn version_works_without_a_daemon() {
    let (code, out, _) = result(&rvsadm(&["-v"], ""));
    assert_eq!(code, 0);
    assert!(
        out.starts_with("ipvsadm v1.31 2019/12/24 (compiled with popt and IPVS v1.2.1)\nrvsadm ")
    );
}

#[test]
fn unreachable_daemon_gives_one_line_and_exit_2() {
    let (code, out, err) = result(&rvsadm(&["-Ln"], ""));
    assert_eq!(code, 2);
    assert_eq!(out, "");
    assert_eq!(
        err,
        format!("rvsadm: cannot reach rvsd at {NO_SOCKET}: No such file or directory (start it with: rvsd [--socket PATH])\n")
    );
    // --socket wins over $RVS_SOCKET.
    let (code, _, err) = result(&rvsadm(&["--socket", "/nonexistent/other.sock", "-C"], ""));
    assert_eq!(code, 2);
    assert!(
        err.starts_with("rvsadm: cannot reach rvsd at /nonexistent/other.sock: "),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1);
    // A bare rvsadm lists, so it needs the daemon too.
    assert_eq!(result(&rvsadm(&[], "")).0, 2);
}

#[test]
fn try_help_names_the_program_and_exits_255() {
    let (code, out, err) = result(&rvsadm(&["-n", "-L"], ""));
    assert_eq!((code, out.as_str()), (255, ""));
    assert_eq!(
        err,
        format!("Try `{BIN} -h' or '{BIN} --help' for more information.\n")
    );
}

#[test]
fn popt_errors_exit_255() {
    let (code, _, err) = result(&rvsadm(&["-L", "--bogus"], ""));
    assert_eq!((code, err.as_str()), (255, "--bogus: unknown option\n"));
    let (code, _, err) = result(&rvsadm(&["-A", "-t"], ""));
    assert_eq!((code, err.as_str()), (255, "-t: missing argument\n"));
}

#[test]
fn option_errors_exit_2_with_ipvsadm_messages() {
    refused(&["-L", "-A"], "invalid option `-A'");
    refused(
        &["-d", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "2"],
        "Illegal 'weight' option with the 'delete-server' command",
    );
    refused(
        &["-a", "-r", "10.0.0.2"],
        "You need to supply the 'service-address' option for the 'add-server' command",
    );
    refused(
        &["-A", "-t", "10.0.0.1:99999"],
        "illegal virtual server address[:port] specified",
    );
    refused(
        &["-A", "-t", "80"],
        "illegal virtual server address[:port] specified",
    );
    refused(
        &["-a", "-t", "10.0.0.1:80", "-r", "10.0.0.2", "-w", "65536"],
        "illegal weight specified",
    );
    refused(
        &["-A", "-t", "10.0.0.1:80", "-o"],
        "One-Packet Scheduling is only for UDP virtual services",
    );
    refused(
        &["-A", "-t", "10.0.0.1:80", "-b", "sh-port"],
        "incompatible scheduler flag `sh-port'",
    );
    refused(
        &[
            "-a",
            "-t",
            "10.0.0.1:80",
            "-r",
            "10.0.0.2",
            "--tun-type",
            "gre",
        ],
        "Tunnel options conflict with forward method",
    );
    refused(
        &[
            "-a",
            "-t",
            "10.0.0.1:80",
            "-r",
            "10.0.0.2",
            "-i",
            "--tun-type",
            "gue",
        ],
        "You need to supply the 'tun-port' option for the 'gue' tunnel type",
    );
    refused(
        &[
            "-a",
            "-t",
            "10.0.0.1:80",
            "-r",
            "10.0.0.2",
            "-i",
            "--tun-port",
            "6080",
        ],
        "Illegal 'tun-port' option with the 'ipip' tunnel type",
    );
    refused(
        &["-A", "-t", "10.0.0.1"],
        "Zero port specified for non-persistent service",
    );
    refused(
        &["-A", "-t", "10.0.0.1:80", "-s", "rr", "-s", "wrr"],
        "multiple 'scheduler' options specified",
    );
    refused(
        &["-L", "-c", "--stats"],
        "options conflicts in the list command",
    );
    refused(&["-L", "--set"], "invalid option `--set'");
    let (code, _, err) = result(&rvsadm(&["-A", "-6", "-f", "1"], ""));
    assert_eq!((code, err.as_str()), (2, "-6 used before -f\n\n"));
}

#[test]
fn restore_checks_every_line_before_needing_the_daemon() {
    let rules = "-C\n-A -t 10.0.0.1:80 -s rr\n-a -t 10.0.0.1:80 -r 10.0.0.2 -o\n";
    let (code, out, err) = result(&rvsadm(&["-R"], rules));
    assert_eq!((code, out.as_str()), (2, ""));
    assert_eq!(
        err,
        "line 3: Illegal 'ops' option with the 'add-server' command\n"
    );
    // Good rules, no daemon: the connection message.
    let (code, _, err) = result(&rvsadm(&["-R"], "-C\n"));
    assert_eq!(code, 2);
    assert!(err.starts_with("rvsadm: cannot reach rvsd at "), "{err}");
}
