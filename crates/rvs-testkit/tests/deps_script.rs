//! `scripts/deps.sh` installs what the tests need without touching the host's services:
//! no `systemctl`, no `pkill`, and no service started by the packages it installs (a
//! policy-rc.d denies it while apt runs, and a policy-rc.d of the host's own comes back).
//!
//! The script runs against stubs (`apt-get`, `dpkg-query`, `id`, `systemctl`, `pkill`,
//! `kill`) that record how they were called, so nothing is installed and no root is needed.

use std::path::Path;
use std::process::Command;

fn stub(dir: &Path, name: &str, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    let p = dir.join(name);
    std::fs::write(&p, format!("#!/bin/bash\n{body}\n")).unwrap();
    std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o755)).unwrap();
}

fn run_install(existing_policy: Option<&str>) -> (String, Option<String>) {
    let dir = tempfile::tempdir().unwrap();
    let bin = dir.path().join("bin");
    std::fs::create_dir(&bin).unwrap();
    let log = dir.path().join("calls.log");
    let policy = dir.path().join("policy-rc.d");
    if let Some(p) = existing_policy {
        std::fs::write(&policy, p).unwrap();
    }
    let rec = format!("echo \"$(basename \"$0\") $*\" >> {}", log.display());
    stub(&bin, "id", "echo 0");
    // every package is missing
    stub(&bin, "dpkg-query", "exit 1");
    // apt-get records what policy-rc.d says while it runs (what invoke-rc.d would ask)
    stub(
        &bin,
        "apt-get",
        &format!(
            "{rec}\nif [ -x {p} ]; then {p} nginx start; echo \"policy-rc.d exit $?\" >> {l}; \
             else echo 'no policy-rc.d' >> {l}; fi",
            p = policy.display(),
            l = log.display()
        ),
    );
    for s in ["systemctl", "pkill", "killall", "kill", "service"] {
        stub(&bin, s, &rec);
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../scripts/deps.sh");
    let path = format!("{}:{}", bin.display(), std::env::var("PATH").unwrap());
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(". {} && rvs_install_deps", script.display()))
        .env("PATH", path)
        .env("RVS_POLICY_RC_D", &policy)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "rvs_install_deps failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = std::fs::read_to_string(&log).unwrap_or_default();
    let after = std::fs::read_to_string(&policy).ok();
    (calls, after)
}

#[test]
fn installing_packages_stops_no_service_and_starts_none() {
    let (calls, after) = run_install(None);
    assert!(
        calls.contains("apt-get install"),
        "apt-get not run: {calls}"
    );
    assert!(
        calls.contains("policy-rc.d exit 101"),
        "services could start during the install: {calls}"
    );
    for forbidden in ["systemctl", "pkill", "killall", "kill ", "service"] {
        assert!(
            !calls.lines().any(|l| l.starts_with(forbidden)),
            "deps.sh ran {forbidden}: {calls}"
        );
    }
    assert_eq!(after, None, "the temporary policy-rc.d stayed behind");
}

#[test]
fn a_policy_rc_d_of_the_host_is_put_back() {
    let mine = "#!/bin/sh\n# the host's own\nexit 0\n";
    let (calls, after) = run_install(Some(mine));
    assert!(calls.contains("policy-rc.d exit 101"), "{calls}");
    assert_eq!(after.as_deref(), Some(mine));
}
