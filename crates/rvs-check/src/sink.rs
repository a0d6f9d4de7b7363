//! How decisions reach the table: the daemon passes a [`TableSink`] that runs a change
//! under the table's lock and then brings the data plane in line (`DataPlane::sync`),
//! exactly as a control request does.

use crate::engine::Action;
use rvs_core::{Errno, Table};
use rvs_dataplane::{DataPlane, Shared};
use std::sync::Arc;

/// "Apply this change": run `change` on the locked table, then sync the data plane.
pub trait TableSink: Send + Sync + 'static {
    fn apply(&self, change: &mut dyn FnMut(&mut Table));
}

/// Any `Fn(&mut dyn FnMut(&mut Table))` is a sink (rvsd passes a closure over its
/// daemon).
impl<F> TableSink for F
where
    F: Fn(&mut dyn FnMut(&mut Table)) + Send + Sync + 'static,
{
    fn apply(&self, change: &mut dyn FnMut(&mut Table)) {
        self(change)
    }
}

/// The table of a [`Shared`] and a data plane: what a daemon has.
pub struct SharedSink {
    pub shared: Arc<Shared>,
    pub plane: Arc<dyn DataPlane>,
}

impl TableSink for SharedSink {
    fn apply(&self, change: &mut dyn FnMut(&mut Table)) {
        let mut t = self.shared.table();
        change(&mut t);
        self.plane.sync(&t);
    }
}

/// Applies one table action idempotently: present-with-this-config or absent. A change
/// the operator made meanwhile (a server deleted by hand) does not stop the others.
pub fn apply_action(t: &mut Table, a: &Action) {
    let r = match a {
        Action::SetService(cfg) => match t.service_id(&cfg.key) {
            Some(id) if t.service(id).is_some_and(|s| s.cfg == *cfg) => Ok(()),
            Some(_) => t.edit_service(cfg.clone()),
            None => t.add_service(cfg.clone()).map(|_| ()),
        },
        Action::DelService(k) => t.del_service(k).or_else(ignore(Errno::NoService)),
        Action::SetDest { svc, dest } => {
            let existing = t
                .service_id(svc)
                .and_then(|sid| t.find_dest(sid, dest.addr, dest.port));
            match existing {
                Some(id) if t.dest(id).is_some_and(|d| d.cfg == *dest) => Ok(()),
                Some(_) => t.edit_dest(svc, dest.clone()),
                None => t.add_dest(svc, dest.clone()).map(|_| ()),
            }
        }
        Action::DelDest { svc, addr, port } => t
            .del_dest(svc, *addr, *port)
            .or_else(ignore(Errno::NotFound))
            .or_else(ignore(Errno::NoService)),
        Action::Flush => {
            t.flush();
            Ok(())
        }
        Action::SetTimeouts { tcp, tcpfin, udp } => {
            t.set_timeouts(*tcp, *tcpfin, *udp);
            Ok(())
        }
        Action::Run { .. } => Ok(()),
    };
    if let Err(e) = r {
        tracing::warn!(action = ?a, "table change failed: {e}");
    }
}

fn ignore(errno: Errno) -> impl Fn(rvs_core::TableError) -> Result<(), rvs_core::TableError> {
    move |e| if e.errno == errno { Ok(()) } else { Err(e) }
}
