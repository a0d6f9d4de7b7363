//! Hostile keepalived.conf files (issue 10): each is refused with `file:line:col`, nothing
//! of it is applied, and the load ends in bounded time and memory. Before the bounds of
//! `rvs_keepalived::limits`, these overflowed the stack (deep nesting), never ended (an
//! include of itself twice, of a FIFO or of /dev/zero), took minutes (100k continuation
//! lines) or grew to gigabytes (`$NAME` definitions doubling each other).

use rvs_keepalived::{load, load_with, parse_str, Limits, LoadError, LoadOptions};
use std::path::Path;
use std::time::{Duration, Instant};

/// Generous for a debug build on a busy 2-core machine; the unbounded versions of these
/// files take minutes, forever, or crash.
const BOUND: Duration = Duration::from_secs(20);

/// The errors of a refused load, rendered; panics if the load succeeded or took too long.
fn refused(path: &Path) -> Vec<String> {
    refused_with(path, &LoadOptions::default())
}

fn refused_with(path: &Path, opts: &LoadOptions) -> Vec<String> {
    let t = Instant::now();
    let r = load_with(path, opts);
    assert!(t.elapsed() < BOUND, "load took {:?}", t.elapsed());
    match r {
        Ok(_) => panic!("{} was accepted", path.display()),
        Err(e) => match e {
            LoadError::Invalid(_) => e
                .diagnostics()
                .iter()
                .filter(|d| d.severity == rvs_keepalived::Severity::Error)
                .map(|d| d.to_string())
                .collect(),
            other => vec![other.to_string()],
        },
    }
}

fn has(errors: &[String], needle: &str) -> bool {
    errors.iter().any(|e| e.contains(needle))
}

#[test]
fn deeply_nested_blocks_are_refused_at_the_first_brace_too_deep() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("deep.conf");
    let n = 150_000;
    std::fs::write(&f, "a {\n".repeat(n) + &"}\n".repeat(n)).unwrap();
    let errors = refused(&f);
    // Line 65 opens the 65th block.
    let want = format!(
        "{}:65:3: error: blocks nested deeper than 64 levels",
        f.display()
    );
    assert_eq!(errors, [want]);
}

#[test]
fn blocks_nested_64_deep_still_load() {
    // The limit is far above any real configuration, and exactly 64 is allowed.
    let text = "x {\n".repeat(64) + &"}\n".repeat(64);
    match parse_str(Path::new("k.conf"), &text) {
        Ok(c) => assert!(c.has_unknown_keywords()),
        Err(e) => panic!("{e}"),
    }
}

#[test]
fn a_file_including_itself_twice_is_an_include_cycle() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("self.conf");
    std::fs::write(&f, "include self.conf\ninclude self.conf\n").unwrap();
    let errors = refused(&f);
    assert!(
        has(
            &errors,
            &format!("{}:1:1: error: include cycle: ", f.display())
        ),
        "{errors:?}"
    );
}

#[test]
fn a_cycle_through_another_file_is_found_by_identity_not_by_name() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("sub")).unwrap();
    std::fs::write(dir.path().join("a.conf"), "include sub/b.conf\n").unwrap();
    // b names a through "..": another path, the same file.
    std::fs::write(dir.path().join("sub/b.conf"), "include ../sub/../a.conf\n").unwrap();
    let errors = refused(&dir.path().join("a.conf"));
    assert!(
        has(&errors, "sub/b.conf:1:1: error: include cycle: "),
        "{errors:?}"
    );
}

#[test]
fn the_same_file_included_twice_without_a_cycle_is_fine() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("vip.conf"), "$VIP=10.0.0.1\n").unwrap();
    let main = dir.path().join("k.conf");
    std::fs::write(
        &main,
        "include vip.conf\ninclude vip.conf\nglobal_defs {\n router_id $VIP\n}\n",
    )
    .unwrap();
    let c = load(&main).unwrap();
    assert_eq!(c.global.router_id.as_deref(), Some("10.0.0.1"));
}

fn mkfifo(p: &Path) {
    let c = std::ffi::CString::new(p.to_str().unwrap()).unwrap();
    // SAFETY: mkfifo on a NUL-terminated path in a temporary directory.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
}

#[test]
fn fifos_and_devices_are_refused_by_every_include_variant() {
    let dir = tempfile::tempdir().unwrap();
    mkfifo(&dir.path().join("pipe.conf"));
    for inc in ["include", "includer", "includea"] {
        for target in ["pipe.conf", "/dev/zero", "/dev/null"] {
            let f = dir.path().join("k.conf");
            std::fs::write(&f, format!("global_defs {{\n}}\n  {inc} {target}\n")).unwrap();
            let errors = refused(&f);
            let kind = if target == "pipe.conf" {
                "not a regular file (a FIFO)"
            } else {
                "not a regular file (a character device)"
            };
            assert!(
                has(
                    &errors,
                    &format!("{}:3:3: error: cannot read included file ", f.display())
                ) && has(&errors, kind),
                "{inc} {target}: {errors:?}"
            );
        }
    }
}

#[test]
fn a_fifo_or_a_device_as_the_main_file_is_unreadable() {
    let dir = tempfile::tempdir().unwrap();
    let fifo = dir.path().join("keepalived.conf");
    mkfifo(&fifo);
    for p in [fifo.as_path(), Path::new("/dev/zero")] {
        let t = Instant::now();
        match load(p) {
            Err(LoadError::NotFound { source, .. }) => {
                assert!(
                    source.to_string().contains("not a regular file"),
                    "{source}"
                )
            }
            other => panic!("{other:?}"),
        }
        assert!(t.elapsed() < BOUND);
    }
}

#[test]
fn a_hundred_thousand_continuation_lines_are_refused_quickly() {
    let dir = tempfile::tempdir().unwrap();
    for (name, line) in [
        ("words.conf", "b \\\n"),
        ("blank.conf", " \\\n"),
        ("def.conf", "x \\\n"),
    ] {
        let f = dir.path().join(name);
        let head = if name == "def.conf" {
            "$X=a \\\n"
        } else {
            "global_defs {\nrouter_id a \\\n"
        };
        std::fs::write(&f, head.to_string() + &line.repeat(100_000) + "c\n}\n").unwrap();
        let t = Instant::now();
        let r = load(&f);
        assert!(t.elapsed() < BOUND, "{name}: {:?}", t.elapsed());
        if name == "def.conf" {
            // A multi-line definition keeps each line apart: 100k short lines are fine
            // (and not quadratic).
            assert!(r.is_err(), "the stray '}}' is an error");
            continue;
        }
        let errors = refused(&f);
        assert!(
            has(
                &errors,
                &format!(
                    "{}:2:1: error: line continued beyond 65536 characters",
                    f.display()
                )
            ),
            "{name}: {errors:?}"
        );
    }
}

#[test]
fn doubling_definitions_stop_at_the_line_length() {
    // Under 1 KB that would expand to 12^8 * 64 characters (27 GB) in the eight rounds
    // of substitution keepalived allows.
    let mut text = format!("$A0={}\n", "x".repeat(64));
    for i in 1..=8 {
        text.push_str(&format!(
            "$A{i}={}\n",
            vec![format!("$A{}", i - 1); 12].join(" ")
        ));
    }
    text.push_str("global_defs {\n router_id $A8\n}\n");
    assert!(text.len() < 1000, "{}", text.len());
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("bomb.conf");
    std::fs::write(&f, &text).unwrap();
    let errors = refused(&f);
    assert_eq!(
        errors,
        [format!(
            "{}:11:2: error: line longer than 65536 characters after $NAME substitution",
            f.display()
        )]
    );
}

#[test]
fn many_lines_each_below_the_line_length_stop_at_the_expansion_budget() {
    let limits = Limits {
        expanded_chars: 1 << 20,
        ..Limits::default()
    };
    let opts = LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let mut text = String::from("$A=") + &"y".repeat(60_000) + "\n";
    for _ in 0..100 {
        text.push_str("x $A\n");
    }
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("wide.conf");
    std::fs::write(&f, &text).unwrap();
    let errors = refused_with(&f, &opts);
    assert_eq!(
        errors,
        [format!(
            "{}:19:1: error: $NAME substitutions produce more than 1048576 characters",
            f.display()
        )]
    );
}

#[test]
fn a_physical_line_longer_than_the_limit_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("long.conf");
    std::fs::write(
        &f,
        format!("global_defs {{\n router_id {}\n}}\n", "r".repeat(70_000)),
    )
    .unwrap();
    assert_eq!(
        refused(&f),
        [format!(
            "{}:2:65537: error: line longer than 65536 characters",
            f.display()
        )]
    );
}

#[test]
fn file_size_total_size_and_file_count_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.conf");
    std::fs::write(&big, "# comment\n".repeat(200)).unwrap(); // 2000 bytes
    let main = dir.path().join("k.conf");
    std::fs::write(&main, "include big.conf\n").unwrap();

    // One file over the per-file bound: refused at the include, whatever its variant.
    let opts = |limits: Limits| LoadOptions {
        limits,
        ..LoadOptions::default()
    };
    let errors = refused_with(
        &main,
        &opts(Limits {
            file_bytes: 1000,
            ..Limits::default()
        }),
    );
    assert!(
        has(
            &errors,
            &format!("{}:1:1: error: cannot read included file", main.display())
        ) && has(&errors, "larger than 1000 bytes"),
        "{errors:?}"
    );
    // The main file over the bound is unreadable.
    match load_with(
        &big,
        &opts(Limits {
            file_bytes: 1000,
            ..Limits::default()
        }),
    ) {
        Err(LoadError::NotFound { source, .. }) => {
            assert_eq!(source.to_string(), "larger than 1000 bytes")
        }
        other => panic!("{other:?}"),
    }

    // Files together over the total: twenty includes of the 2000-byte file.
    std::fs::write(&main, "include big.conf\n".repeat(20)).unwrap();
    let errors = refused_with(
        &main,
        &opts(Limits {
            read_bytes: 10_000,
            ..Limits::default()
        }),
    );
    assert_eq!(
        errors,
        [format!(
            "{}:5:1: error: configuration files together larger than 10000 bytes",
            main.display()
        )]
    );

    // Too many files read.
    let errors = refused_with(
        &main,
        &opts(Limits {
            files: 10,
            ..Limits::default()
        }),
    );
    assert_eq!(
        errors,
        [format!(
            "{}:10:1: error: more than 10 configuration files read",
            main.display()
        )]
    );
}

#[test]
fn a_diamond_of_includes_is_bounded_by_the_file_count() {
    // Each level includes the next twice: 2^30 reads without a bound, no cycle.
    let dir = tempfile::tempdir().unwrap();
    for i in 0..30 {
        std::fs::write(
            dir.path().join(format!("l{i}.conf")),
            format!("include l{n}.conf\ninclude l{n}.conf\n", n = i + 1),
        )
        .unwrap();
    }
    std::fs::write(dir.path().join("l30.conf"), "# leaf\n").unwrap();
    let errors = refused(&dir.path().join("l0.conf"));
    assert!(
        has(&errors, "error: more than 10000 configuration files read"),
        "{errors:?}"
    );
}

#[test]
fn brace_groups_in_an_include_pattern_are_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let f = dir.path().join("k.conf");
    std::fs::write(&f, format!("include {}\n", "{a,b}".repeat(30))).unwrap();
    assert_eq!(
        refused(&f),
        [format!(
            "{}:1:1: error: include pattern expands to more than 1024 patterns",
            f.display()
        )]
    );
}

#[test]
fn a_flood_of_errors_keeps_the_first_ones_and_counts_the_rest() {
    let text = "}\n".repeat(5000);
    let e = parse_str(Path::new("k.conf"), &text).unwrap_err();
    let d = e.diagnostics();
    assert_eq!(d.len(), 1001);
    assert_eq!(
        d[0].to_string(),
        "k.conf:1:1: error: unexpected '}' (no block is open)"
    );
    assert_eq!(
        d[1000].to_string(),
        "k.conf:5000:1: error: 4000 more errors not shown (the last one here)"
    );
}

#[test]
fn too_many_items_stop_the_load() {
    let opts = LoadOptions {
        limits: Limits {
            items: 1000,
            ..Limits::default()
        },
        ..LoadOptions::default()
    };
    let text = "a { }\n".repeat(400);
    let e = rvs_keepalived::parse_str_with(Path::new("k.conf"), &text, &opts).unwrap_err();
    assert_eq!(
        e.first_error().unwrap().to_string(),
        "k.conf:334:3: error: more than 1000 keyword lines and braces"
    );
}
