//! Golden tests: every `testdata/keepalived/**/*.conf` that has a `.golden` next to it is
//! loaded and its dump (or its errors) compared with the file. `RVS_BLESS=1 cargo test`
//! rewrites the golden files after a deliberate change; review the diff.

use rvs_keepalived::{dump::dump, load, LoadError};
use std::path::{Path, PathBuf};

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/keepalived")
}

/// The dump, or the load error, with the test data directory removed from paths.
fn render(conf: &Path) -> String {
    let out = match load(conf) {
        Ok(cfg) => dump(&cfg),
        Err(e @ LoadError::Invalid(_)) => {
            let mut s = String::from("# load refused\n");
            for d in e.diagnostics() {
                s.push_str(&d.to_string());
                s.push('\n');
            }
            s
        }
        Err(e) => format!("# load refused\n{e}\n"),
    };
    let dir = format!("{}/", testdata().display());
    out.replace(&dir, "")
}

fn check(rel: &str) {
    let conf = testdata().join(rel);
    let golden = conf.with_extension("golden");
    let got = render(&conf);
    if std::env::var_os("RVS_BLESS").is_some() {
        std::fs::write(&golden, &got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(&golden).unwrap_or_else(|e| {
        panic!(
            "{}: {e} (run with RVS_BLESS=1 to create it)",
            golden.display()
        )
    });
    if got != want {
        panic!(
            "{rel}: dump differs from {}\n--- want\n{want}\n--- got\n{got}",
            golden.display()
        );
    }
}

#[test]
fn seed000_master() {
    check("seed000_master.conf");
}

#[test]
fn seed000_backup() {
    check("seed000_backup.conf");
}

#[test]
fn seed003_master() {
    check("seed003_master.conf");
}

#[test]
fn seed003_backup() {
    check("seed003_backup.conf");
}

#[test]
fn features() {
    check("features.conf");
}

#[test]
fn includes_with_globs_and_braces() {
    check("include/main.conf");
}

#[test]
fn error_bad_weight() {
    check("errors/bad_weight.conf");
}

#[test]
fn error_inside_included_file() {
    check("errors/in_include.conf");
}

#[test]
fn error_unbalanced_braces() {
    check("errors/unbalanced.conf");
}

#[test]
fn error_several_at_once() {
    check("errors/several.conf");
}

#[test]
fn unknown_keyword_loads_with_a_report() {
    check("errors/unknown_keyword.conf");
}
