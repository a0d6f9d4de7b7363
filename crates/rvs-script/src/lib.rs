//! # rvs-script — running keepalived's scripts
//!
//! Notify scripts (real server and quorum notifications, VRRP `notify*`: fire and forget)
//! and scripts that are waited for (MISC_CHECK, `vrrp_script`: killed on timeout). Like
//! keepalived, each script runs in its own process group (so a timeout kills its children
//! too) through `/bin/sh -c` with every argument single-quoted, as the user of the script
//! (`user [group]`), else the default script user. Shared by the health checkers
//! (`rvs-check`), keepalived's pool notifications (rvsd) and VRRP (`rvs-vrrp`).

use rvs_keepalived::Script;
use std::ffi::CString;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// How long a script gets after SIGTERM before SIGKILL (keepalived: 2 s).
pub const TERM_GRACE: Duration = Duration::from_secs(2);

/// The account scripts run as.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Account {
    pub uid: u32,
    pub gid: u32,
}

/// Where scripts run: the default account, if any (`script_user`, else
/// `keepalived_script` when it exists; `None` = the daemon's own).
#[derive(Clone, Debug, Default)]
pub struct ScriptEnv {
    pub default_account: Option<Account>,
}

impl ScriptEnv {
    /// keepalived's default: `script_user` if configured, else `keepalived_script` if that
    /// user exists, else the daemon's account. Only root can switch accounts.
    pub fn from_config(script_user: Option<&(String, Option<String>)>) -> ScriptEnv {
        if !is_root() {
            return ScriptEnv::default();
        }
        let account = match script_user {
            Some((u, g)) => resolve(u, g.as_deref()),
            None => resolve("keepalived_script", None),
        };
        ScriptEnv {
            default_account: account,
        }
    }

    /// A command ready to spawn. Like keepalived, an executable program (a path, or a
    /// name found in `PATH`) is executed directly; anything else goes through
    /// `/bin/sh -c` with every argument single-quoted (keepalived's `system()` path).
    pub fn command(&self, script: &Script, extra: &[String]) -> Command {
        let mut cmd = match script.args.first().and_then(|a| find_executable(a)) {
            Some(prog) => {
                let mut c = Command::new(prog);
                c.args(&script.args[1..]).args(extra);
                c
            }
            None => {
                let mut line = script.command_line();
                for a in extra {
                    line.push_str(" '");
                    line.push_str(&a.replace('\'', "'\\''"));
                    line.push('\'');
                }
                let mut c = Command::new("/bin/sh");
                c.arg("-c").arg(line);
                c
            }
        };
        cmd.stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .kill_on_drop(false);
        let account = match &script.user {
            Some(u) if is_root() => resolve(u, script.group.as_deref()),
            Some(u) => {
                tracing::warn!(user = %u, "not running as root: script runs as the daemon's user");
                None
            }
            None => self.default_account,
        };
        if let Some(a) = account {
            cmd.uid(a.uid).gid(a.gid);
        }
        cmd
    }

    /// Starts a notify script and reaps it in the background.
    pub fn spawn_notify(&self, script: &Script, why: &str) {
        match self.command(script, &[]).spawn() {
            Ok(mut child) => {
                tracing::info!(script = %script, why, "running notify script");
                tokio::spawn(async move {
                    let _ = child.wait().await;
                });
            }
            Err(e) => tracing::warn!(script = %script, why, "cannot run notify script: {e}"),
        }
    }
}

/// How a waited-for script ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    Code(u32),
    Signal { sig: i32, timed_out: bool },
}

/// Waits for `child` at most `timeout`; then SIGTERM to its process group, and SIGKILL
/// [`TERM_GRACE`] later if it is still there.
pub async fn wait_or_kill(child: &mut Child, timeout: Duration) -> std::io::Result<Exit> {
    use std::os::unix::process::ExitStatusExt;
    let convert = |s: std::process::ExitStatus, timed_out: bool| match (s.code(), s.signal()) {
        (Some(c), _) => Exit::Code(c as u32),
        (None, Some(sig)) => Exit::Signal { sig, timed_out },
        (None, None) => Exit::Code(255),
    };
    if let Ok(r) = tokio::time::timeout(timeout, child.wait()).await {
        return r.map(|s| convert(s, false));
    }
    let pgid = child.id().map(|p| p as i32);
    if let Some(p) = pgid {
        // SAFETY: kill(2) on our child's process group; no memory is touched.
        unsafe { libc::kill(-p, libc::SIGTERM) };
    }
    let status = match tokio::time::timeout(TERM_GRACE, child.wait()).await {
        Ok(r) => r?,
        Err(_) => {
            if let Some(p) = pgid {
                // SAFETY: as above.
                unsafe { libc::kill(-p, libc::SIGKILL) };
            }
            child.kill().await.ok();
            child.wait().await?
        }
    };
    if let Some(p) = pgid {
        // Anything the script left behind in its group goes too.
        // SAFETY: as above.
        unsafe { libc::kill(-p, libc::SIGKILL) };
    }
    Ok(match convert(status, true) {
        Exit::Code(c) => Exit::Code(c),
        Exit::Signal { sig, .. } => Exit::Signal {
            sig,
            timed_out: true,
        },
    })
}

/// `name` if it is an executable file, else its first executable match in `PATH`.
fn find_executable(name: &str) -> Option<std::path::PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let ok = |p: &std::path::Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if name.contains('/') {
        let p = std::path::PathBuf::from(name);
        return ok(&p).then_some(p);
    }
    if name.is_empty() {
        return None;
    }
    let path = std::env::var_os("PATH").unwrap_or_else(|| "/usr/sbin:/usr/bin:/sbin:/bin".into());
    std::env::split_paths(&path)
        .map(|d| d.join(name))
        .find(|p| ok(p))
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// `user[:group]` to ids (the user's primary group unless a group is given).
fn resolve(user: &str, group: Option<&str>) -> Option<Account> {
    let cu = CString::new(user).ok()?;
    let mut buf = vec![0u8; 16384];
    // SAFETY: getpwnam_r writes into `pw` and `buf`, both live and sized as passed.
    let mut pw: libc::passwd = unsafe { std::mem::zeroed() };
    let mut res: *mut libc::passwd = std::ptr::null_mut();
    let rc = unsafe {
        libc::getpwnam_r(
            cu.as_ptr(),
            &mut pw,
            buf.as_mut_ptr().cast(),
            buf.len(),
            &mut res,
        )
    };
    if rc != 0 || res.is_null() {
        return None;
    }
    let mut gid = pw.pw_gid;
    if let Some(g) = group {
        let cg = CString::new(g.trim_start_matches(':')).ok()?;
        // SAFETY: as above for getgrnam_r.
        let mut gr: libc::group = unsafe { std::mem::zeroed() };
        let mut gres: *mut libc::group = std::ptr::null_mut();
        let rc = unsafe {
            libc::getgrnam_r(
                cg.as_ptr(),
                &mut gr,
                buf.as_mut_ptr().cast(),
                buf.len(),
                &mut gres,
            )
        };
        if rc != 0 || gres.is_null() {
            return None;
        }
        gid = gr.gr_gid;
    }
    Some(Account {
        uid: pw.pw_uid,
        gid,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_resolves_to_zero() {
        assert_eq!(resolve("root", None), Some(Account { uid: 0, gid: 0 }));
        assert_eq!(resolve("no-such-user-rvs", None), None);
    }
}
