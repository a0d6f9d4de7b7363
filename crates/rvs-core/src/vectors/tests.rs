use super::*;
use crate::types::{SchedFlags, ServiceKey};

const SAMPLE: &str = "
# a comment
vector wrr-basics
service tcp 10.0.0.1:80 wrr persistent 360 netmask 255.255.255.0
server A 192.168.1.1:80 weight 4 upper 10 lower 5   # trailing comment
edit A weight 0
pick from 1.2.3.4:1000 -> A
picks A none
pick from 1.2.3.4 to 10.0.0.1:8080 -> none
rand 3 5 below 8
advance 90s
advance 1500ms

vector sh-flags
service fwmark 7 v6 sh flags sh-fallback,sh-port
pick -> B
";

#[test]
fn parses_every_statement_into_concrete_steps() {
    let vs = parse_str(SAMPLE, "sample").unwrap();
    assert_eq!(vs.len(), 2);
    let v = &vs[0];
    assert_eq!(v.name, "wrr-basics");
    assert_eq!(v.service.scheduler, "wrr");
    assert_eq!(v.service.persistence, Some(360));
    assert_eq!(v.service.netmask.0, 24);
    let actions: Vec<&Action> = v.steps.iter().map(|s| &s.action).collect();
    let Action::AddServer { name, cfg } = actions[0] else {
        panic!("{:?}", actions[0]);
    };
    assert_eq!(
        (name.as_str(), cfg.weight, cfg.u_threshold, cfg.l_threshold),
        ("A", 4, 10, 5)
    );
    assert_eq!(
        *actions[2],
        Action::Pick {
            client: ("1.2.3.4".parse().unwrap(), 1000),
            to: ("10.0.0.1".parse().unwrap(), 80),
            expect: Expect::Server("A".into()),
        }
    );
    // `picks` expands to one pick per word, each from the next auto client.
    assert_eq!(
        *actions[3],
        Action::Pick {
            client: ("172.16.0.2".parse().unwrap(), 10_002),
            to: ("10.0.0.1".parse().unwrap(), 80),
            expect: Expect::Server("A".into()),
        }
    );
    assert!(matches!(
        actions[4],
        Action::Pick {
            expect: Expect::NoServer,
            ..
        }
    ));
    let Action::Pick { client, to, .. } = actions[5] else {
        panic!()
    };
    assert_eq!(
        client.1, 10_004,
        "an address without port gets the auto port"
    );
    assert_eq!(to.1, 8080);
    assert_eq!(
        *actions[6],
        Action::Rand {
            draws: vec![3, 5],
            below: Some(8)
        }
    );
    assert_eq!(*actions[7], Action::Advance { ms: 90_000 });
    assert_eq!(*actions[8], Action::Advance { ms: 1500 });

    let v = &vs[1];
    assert!(matches!(v.service.key, ServiceKey::Fwmark { mark: 7, .. }));
    assert_eq!(
        v.service.sched_flags,
        SchedFlags(SchedFlags::SCHED1 | SchedFlags::SCHED2)
    );
    let Action::Pick { client, to, .. } = &v.steps[0].action else {
        panic!()
    };
    assert_eq!(
        client.0,
        "2001:db8:c::1".parse::<std::net::IpAddr>().unwrap()
    );
    assert_eq!(to.0, "2001:db8:d::1".parse::<std::net::IpAddr>().unwrap());
}

#[test]
fn rejects_malformed_lines_with_their_line_number() {
    for (text, line) in [
        ("server A 1.2.3.4:80", 1),
        ("vector x\nserver A 1.2.3.4:80", 2),
        ("vector x\nservice tcp 10.0.0.1:80 nosuch", 2),
        ("vector x\nservice tcp 10.0.0.1:80 rr\npick from 1.2.3.4", 3),
        ("vector x\nservice tcp 10.0.0.1:80 rr\nserver A 1.2.3.4", 3),
        (
            "vector x\nservice tcp 10.0.0.1:80 rr\nvector x\nservice tcp 10.0.0.1:80 rr",
            3,
        ),
    ] {
        let e = parse_str(text, "t").unwrap_err();
        assert_eq!(e.line, line, "{text:?}: {e}");
    }
}

#[test]
fn runner_reports_a_wrong_expectation_and_an_unscripted_draw() {
    let text = "
vector wrong
service tcp 10.0.0.1:80 rr
server A 192.168.1.1:80
server B 192.168.1.2:80
picks A
vector unscripted
service tcp 10.0.0.1:80 twos
server A 192.168.1.1:80
picks A
";
    let vs = parse_str(text, "t").unwrap();
    let m = run_on_table(&vs[0]);
    assert_eq!(m.len(), 1, "{m:?}");
    assert!(m[0].message.contains("expected A, got B"), "{}", m[0]);
    // twos draws twice per pick, and both draws are reported.
    let m = run_on_table(&vs[1]);
    assert_eq!(m.len(), 2, "{m:?}");
    assert!(
        m.iter()
            .all(|m| m.message.contains("below 2 was not scripted")),
        "{m:?}"
    );
}
