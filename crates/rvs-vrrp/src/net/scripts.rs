//! `vrrp_script`s: each runs every `interval` (killed after `timeout`), its exit status
//! (0 = success) sent to the runner, which applies `rise`/`fall` ([`crate::track`]).

use super::runner::Msg;
use crate::keepalived::ScriptSetup;
use rvs_script::{wait_or_kill, Exit, ScriptEnv};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub(crate) fn spawn(s: ScriptSetup, env: ScriptEnv, tx: mpsc::Sender<Msg>) -> JoinHandle<()> {
    tokio::spawn(async move {
        let name = s.hysteresis.name.clone();
        loop {
            let ok = match env.command(&s.script, &[]).spawn() {
                Ok(mut child) => {
                    matches!(wait_or_kill(&mut child, s.timeout).await, Ok(Exit::Code(0)))
                }
                Err(e) => {
                    tracing::warn!(script = %name, "vrrp_script cannot run: {e}");
                    false
                }
            };
            let msg = Msg::Script {
                name: name.clone(),
                ok,
            };
            if tx.send(msg).await.is_err() {
                return;
            }
            tokio::time::sleep(s.interval).await;
        }
    })
}
