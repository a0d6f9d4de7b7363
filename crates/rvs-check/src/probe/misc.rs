//! MISC_CHECK (`check_misc.c`): runs the script and reports how it ended. The script
//! gets `misc_timeout` (default: the virtual server's delay_loop); then SIGTERM to its
//! process group and SIGKILL 2 s later. The verdict (0 up, 1 down, 2..255 with
//! misc_dynamic up with weight status − 2) is the epilog's.

use crate::epilog::Outcome;
use crate::plan::MiscSpec;
use rvs_script::{wait_or_kill, Exit, ScriptEnv};

/// Kills the script's process group if the probe is dropped before it ended (a reload
/// removed the checker, the daemon stops): no script outlives its checker.
struct GroupGuard(Option<i32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(pgid) = self.0 {
            // SAFETY: kill(2) on the process group we created; no memory is touched.
            unsafe { libc::kill(-pgid, libc::SIGKILL) };
        }
    }
}

pub async fn probe(m: &MiscSpec, env: &ScriptEnv) -> Outcome {
    let mut child = match env.command(&m.script, &[]).spawn() {
        Ok(c) => c,
        Err(e) => return Outcome::Fail(format!("cannot run {}: {e}", m.script)),
    };
    let mut guard = GroupGuard(child.id().map(|p| p as i32));
    let r = wait_or_kill(&mut child, m.timeout).await;
    guard.0 = None;
    match r {
        Ok(Exit::Code(c)) => Outcome::Exit(c),
        Ok(Exit::Signal { sig, timed_out }) => Outcome::Signal { sig, timed_out },
        Err(e) => Outcome::Fail(format!("waiting for {}: {e}", m.script)),
    }
}
