//! The Rust mirror of `bpf/include/rvs_abi.h` is checked against the header itself: a C
//! program compiled with the host `cc` prints `offsetof`/`sizeof` of every field and the
//! value of every constant, which must equal what `rvs_xdp::abi` says; and every field and
//! constant the header declares must be listed on the Rust side.

use rvs_xdp::abi::{CONSTANTS, STRUCTS};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

fn header() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bpf/include/rvs_abi.h")
}

/// Names the header declares: constants (#define RVS_*, enum members) and struct fields.
fn declared(text: &str) -> (BTreeSet<String>, BTreeMap<String, Vec<String>>) {
    let mut consts = BTreeSet::new();
    let mut structs: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for raw in text.lines() {
        let line = raw.split("/*").next().unwrap_or("").trim();
        if let Some(rest) = line.strip_prefix("#define ") {
            let name = rest.split_whitespace().next().unwrap_or("");
            let value = rest.split_whitespace().nth(1);
            // function-like macros (accessors) have no value to compare
            if name.starts_with("RVS_")
                && name != "RVS_ABI_H"
                && value.is_some()
                && !name.contains('(')
            {
                consts.insert(name.to_string());
            }
            continue;
        }
        if let Some(rest) = line.strip_prefix("struct ") {
            if let Some(name) = rest.strip_suffix(" {") {
                current = Some(name.to_string());
                structs.entry(name.to_string()).or_default();
                continue;
            }
        }
        if line.starts_with("};") {
            current = None;
            continue;
        }
        if let Some(s) = &current {
            if let Some(decl) = line.strip_suffix(';') {
                let name = decl
                    .split_whitespace()
                    .last()
                    .expect("a field name")
                    .split('[')
                    .next()
                    .expect("name");
                structs
                    .get_mut(s)
                    .expect("open struct")
                    .push(name.to_string());
            }
        } else if let Some((name, _)) = line.split_once(" = ") {
            if name.starts_with("RVS_") {
                consts.insert(name.trim().to_string());
            }
        }
    }
    (consts, structs)
}

#[test]
fn every_header_field_and_constant_has_a_rust_counterpart() {
    let text = std::fs::read_to_string(header()).expect("the ABI header");
    let (consts, structs) = declared(&text);
    let rust_consts: BTreeSet<&str> = CONSTANTS.iter().map(|(n, _)| *n).collect();
    let missing: Vec<&String> = consts
        .iter()
        .filter(|c| !rust_consts.contains(c.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "constants without a Rust counterpart: {missing:?}"
    );
    for (name, fields) in &structs {
        let (_, _, rust) = STRUCTS
            .iter()
            .find(|(c, ..)| c == name)
            .unwrap_or_else(|| panic!("struct {name} has no Rust counterpart"));
        let rust: Vec<&str> = rust.iter().map(|(f, ..)| *f).collect();
        assert_eq!(&rust, fields, "fields of struct {name} (in order)");
    }
    assert_eq!(
        structs.len(),
        STRUCTS.len(),
        "the Rust side lists a struct the header lacks"
    );
}

#[test]
fn c_layouts_and_values_equal_the_rust_mirror() {
    let dir = std::env::temp_dir().join(format!("rvs-abi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let mut c = String::from(
        "#include <stdio.h>\n#include <stddef.h>\n#include \"rvs_abi.h\"\nint main(void) {\n",
    );
    for (name, _) in CONSTANTS {
        c.push_str(&format!(
            "printf(\"const {name} %lld\\n\", (long long)({name}));\n"
        ));
    }
    for (s, _, fields) in STRUCTS {
        c.push_str(&format!(
            "printf(\"size {s} %zu\\n\", sizeof(struct {s}));\n"
        ));
        for (f, _, _) in *fields {
            c.push_str(&format!(
                "printf(\"field {s}.{f} %zu %zu\\n\", offsetof(struct {s}, {f}), sizeof(((struct {s} *)0)->{f}));\n"
            ));
        }
    }
    c.push_str("return 0;\n}\n");
    let src = dir.join("abi.c");
    let exe = dir.join("abi");
    std::fs::write(&src, c).expect("write C");
    let include = header().parent().expect("dir").to_path_buf();
    let out = Command::new("cc")
        .arg("-I")
        .arg(&include)
        .arg(&src)
        .arg("-o")
        .arg(&exe)
        .output()
        .expect("the host C compiler (cc)");
    assert!(
        out.status.success(),
        "cc: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let run = Command::new(&exe).output().expect("run the layout program");
    let text = String::from_utf8(run.stdout).expect("utf-8");
    let _ = std::fs::remove_dir_all(&dir);

    let mut lines = text.lines();
    for (name, value) in CONSTANTS {
        assert_eq!(
            lines.next(),
            Some(format!("const {name} {value}").as_str()),
            "constant {name}"
        );
    }
    for (s, size, fields) in STRUCTS {
        assert_eq!(
            lines.next(),
            Some(format!("size {s} {size}").as_str()),
            "sizeof(struct {s})"
        );
        for (f, off, sz) in *fields {
            assert_eq!(
                lines.next(),
                Some(format!("field {s}.{f} {off} {sz}").as_str()),
                "offset/size of {s}.{f}"
            );
        }
    }
}
