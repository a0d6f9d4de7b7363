//! Replays every decision vector in `testdata/sched/*.vec` through the reference table.
//! The same files drive the XDP data plane's tests, so a failure here means either the
//! core or a vector is wrong: the vectors' expectations were worked out from the spec.

use rvs_core::vectors::{self, parse_file, run_on_table};
use rvs_core::SchedKind;
use std::path::PathBuf;

fn vector_dir() -> PathBuf {
    PathBuf::from(vectors::SHARED_DIR)
}

fn vector_files() -> Vec<PathBuf> {
    vectors::files(&vector_dir()).expect("testdata/sched exists")
}

#[test]
fn every_decision_vector_passes_on_the_reference_table() {
    let mut vectors = 0;
    let mut failures = Vec::new();
    for file in vector_files() {
        let name = file
            .file_name()
            .expect("file name")
            .to_string_lossy()
            .into_owned();
        let parsed = parse_file(&file).unwrap_or_else(|e| panic!("{e}"));
        assert!(!parsed.is_empty(), "{name} holds no vector");
        for v in &parsed {
            vectors += 1;
            failures.extend(run_on_table(v).into_iter().map(|m| format!("{name}: {m}")));
        }
    }
    assert!(vectors >= 100, "only {vectors} vectors found");
    assert!(
        failures.is_empty(),
        "{} mismatch(es):\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn every_scheduler_has_a_vector_file() {
    for kind in SchedKind::ALL {
        let file = vector_dir().join(format!("{}.vec", kind.name()));
        assert!(file.is_file(), "missing {}", file.display());
    }
}
