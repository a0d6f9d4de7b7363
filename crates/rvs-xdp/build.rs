//! Compiles the BPF programs of `bpf/` with clang (`-O2 -g -target bpf -mcpu=v3`,
//! `-Wall -Wextra -Werror`) into OUT_DIR:
//!
//! * `xdp_director.o` — the director, as rvsd loads it;
//! * `xdp_director_test.o` — the same source with `-DRVS_TEST` (mocked clock, random
//!   draws and packet mark) for the conformance tests;
//! * `nf_fwmark.o` — the netfilter program that hands marked first packets to rvsd
//!   (fwmark services);
//! * `tc_decap.o` — the real server's tunnel decapsulation;
//! * `xdp_pass.o` — an XDP_PASS program for veth labs (see `bpf/xdp_pass.c`).
//!
//! A missing clang or libbpf headers stop the build with one message naming the Debian
//! package to install.

use std::path::{Path, PathBuf};
use std::process::Command;

fn fail(msg: &str) -> ! {
    eprintln!("\nerror: {msg}\n");
    panic!("{msg}");
}

/// `clang` from $CLANG, or the first of clang, clang-14 .. clang-19 on PATH.
fn find_clang() -> PathBuf {
    if let Some(c) = std::env::var_os("CLANG") {
        return PathBuf::from(c);
    }
    let names = [
        "clang", "clang-19", "clang-18", "clang-17", "clang-16", "clang-15", "clang-14",
    ];
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in names {
        for dir in std::env::split_paths(&path) {
            let p = dir.join(name);
            if p.is_file() {
                return p;
            }
        }
    }
    fail(
        "rvs-xdp: clang is needed to compile the BPF programs in bpf/ and was not found; \
         install the Debian package `clang` (apt-get install clang)",
    )
}

/// The multiarch include directory holding asm/types.h (e.g. /usr/include/x86_64-linux-gnu).
fn multiarch_include() -> Option<PathBuf> {
    let arch = match std::env::var("CARGO_CFG_TARGET_ARCH").as_deref() {
        Ok("x86_64") => "x86_64-linux-gnu",
        Ok("aarch64") => "aarch64-linux-gnu",
        _ => return None,
    };
    let p = Path::new("/usr/include").join(arch);
    p.is_dir().then_some(p)
}

fn compile(clang: &Path, src: &Path, out: &Path, defines: &[&str], include: &[PathBuf]) {
    let mut cmd = Command::new(clang);
    cmd.args([
        "-O2", "-g", "-target", "bpf", "-mcpu=v3", "-Wall", "-Wextra", "-Werror",
    ]);
    for d in defines {
        cmd.arg(format!("-D{d}"));
    }
    for i in include {
        cmd.arg("-I").arg(i);
    }
    // extra flags for experiments (e.g. RVS_BPF_CFLAGS=-DSOMETHING)
    if let Ok(extra) = std::env::var("RVS_BPF_CFLAGS") {
        cmd.args(extra.split_whitespace());
    }
    cmd.arg("-c").arg(src).arg("-o").arg(out);
    let output = cmd
        .output()
        .unwrap_or_else(|e| fail(&format!("rvs-xdp: cannot run {}: {e}", clang.display())));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        if stderr.contains("bpf/bpf_helpers.h") && stderr.contains("not found") {
            fail(
                "rvs-xdp: the libbpf headers (bpf/bpf_helpers.h) are missing; install the \
                 Debian package `libbpf-dev` (apt-get install libbpf-dev)",
            );
        }
        if stderr.contains("asm/types.h") && stderr.contains("not found") {
            fail(
                "rvs-xdp: the kernel UAPI headers (asm/types.h) are missing; install the \
                 Debian package `linux-libc-dev`",
            );
        }
        fail(&format!(
            "rvs-xdp: clang failed on {}:\n{stderr}",
            src.display()
        ));
    }
}

fn main() {
    let manifest = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
    let bpf = manifest.join("../../bpf");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it"));
    println!("cargo:rerun-if-changed={}", bpf.display());
    for sub in ["include", "lib"] {
        if let Ok(rd) = std::fs::read_dir(bpf.join(sub)) {
            for e in rd.flatten() {
                println!("cargo:rerun-if-changed={}", e.path().display());
            }
        }
    }
    for f in ["xdp_director.c", "nf_fwmark.c", "tc_decap.c", "xdp_pass.c"] {
        println!("cargo:rerun-if-changed={}", bpf.join(f).display());
    }
    println!("cargo:rerun-if-env-changed=CLANG");
    println!("cargo:rerun-if-env-changed=RVS_BPF_CFLAGS");

    let clang = find_clang();
    let include: Vec<PathBuf> = multiarch_include().into_iter().collect();
    let director = bpf.join("xdp_director.c");
    compile(
        &clang,
        &director,
        &out.join("xdp_director.o"),
        &[],
        &include,
    );
    compile(
        &clang,
        &director,
        &out.join("xdp_director_test.o"),
        &["RVS_TEST"],
        &include,
    );
    compile(
        &clang,
        &bpf.join("nf_fwmark.c"),
        &out.join("nf_fwmark.o"),
        &[],
        &include,
    );
    compile(
        &clang,
        &bpf.join("tc_decap.c"),
        &out.join("tc_decap.o"),
        &[],
        &include,
    );
    compile(
        &clang,
        &bpf.join("xdp_pass.c"),
        &out.join("xdp_pass.o"),
        &[],
        &include,
    );
}
