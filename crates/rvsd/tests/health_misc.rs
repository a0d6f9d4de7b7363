//! MISC_CHECK: exit codes, misc_dynamic weights, a script that outlives misc_timeout
//! (SIGTERM to its process group) and one that ignores SIGTERM (SIGKILL 2 s later).

mod health_lab;

use health_lab::*;
use std::time::Duration;

fn conf(vip: &str, script: &str, extra: &str) -> String {
    format!(
        "virtual_server {vip} 80 {{\n protocol TCP\n lb_kind DR\n delay_loop 0.3\n warmup 0\n\
         real_server 127.0.30.50 80 {{\n  weight 10\n  MISC_CHECK {{\n   misc_path \"{script}\"\n {extra}\n  }}\n }}\n}}\n"
    )
}

/// A process that exists and is not a zombie (orphans may never be reaped here).
fn pid_alive(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test]
async fn misc_exit_codes_and_dynamic_weights() {
    let sc = Scripts::new();
    let code = sc.path("code");
    std::fs::write(&code, "0").unwrap();
    let s = sc.script("check.sh", &format!("exit $(cat {code})"));
    let cfg = config(&conf("127.0.30.100", &s, "misc_dynamic"));
    let lab = Lab::start(&cfg).await;
    let svc = "tcp 127.0.30.100:80";
    let rs = "127.0.30.50:80".parse().unwrap();
    assert_eq!(lab.weight(svc, rs), Some(10));
    for (exit, weight) in [
        ("7", Some(5)),
        ("2", Some(0)),
        ("0", Some(10)),
        ("1", None),
        ("12", Some(10)),
    ] {
        std::fs::write(&code, exit).unwrap();
        wait_for(
            &format!("exit {exit} => {weight:?}"),
            Duration::from_secs(3),
            || lab.weight(svc, rs) == weight,
        )
        .await;
    }
}

#[tokio::test]
async fn a_script_outliving_misc_timeout_is_killed_with_its_children() {
    let sc = Scripts::new();
    // Every run appends its child's pid: the checker starts the next run a delay_loop
    // after the first timed out, and that run's child is rightly alive for a while.
    let pidfile = sc.path("pids");
    let s = sc.script(
        "slow.sh",
        &format!("sleep 100 &\necho $! >> {pidfile}\nwait"),
    );
    let cfg = config(&conf("127.0.31.100", &s, "misc_timeout 1"));
    let lab = Lab::start(&cfg).await;
    let took = wait_for("removed after the timeout", Duration::from_secs(4), || {
        lab.dests("tcp 127.0.31.100:80").is_empty()
    })
    .await;
    eprintln!("MISC_CHECK misc_timeout 1 s: removed after {took:?}");
    assert!(took >= Duration::from_millis(900), "{took:?}");
    let e = lab.sup.status()[0].last_error.clone().unwrap();
    assert!(e.contains("timed out"), "{e}");
    let first = sc
        .read("pids")
        .lines()
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(!first.is_empty());
    wait_for(
        "the first script's child is gone",
        Duration::from_secs(1),
        || !pid_alive(&first),
    )
    .await;
}

#[tokio::test]
async fn a_script_ignoring_sigterm_is_killed() {
    let sc = Scripts::new();
    let pidfile = sc.path("pids");
    let s = sc.script(
        "stubborn.sh",
        &format!("trap '' TERM\necho $$ >> {pidfile}\nwhile true; do sleep 0.05; done"),
    );
    let cfg = config(&conf("127.0.32.100", &s, "misc_timeout 1"));
    let lab = Lab::start(&cfg).await;
    let took = wait_for(
        "removed after timeout + grace",
        Duration::from_secs(6),
        || lab.dests("tcp 127.0.32.100:80").is_empty(),
    )
    .await;
    eprintln!("MISC_CHECK ignoring SIGTERM: removed after {took:?} (1 s + 2 s grace)");
    assert!(took >= Duration::from_millis(2900), "{took:?}");
    assert!(lab.sup.status()[0]
        .last_error
        .as_deref()
        .unwrap()
        .contains("signal 9"));
    let first = sc.read("pids").lines().next().unwrap().to_string();
    assert!(!pid_alive(&first), "the killed script is gone");
    // Stopping the checkers kills a script still running.
    drop(lab);
    let pids = sc.read("pids");
    wait_for("every script is gone", Duration::from_secs(1), || {
        pids.lines().all(|p| !pid_alive(p))
    })
    .await;
}
