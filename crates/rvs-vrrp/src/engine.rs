//! Every instance of a configuration, their tracked objects and `vrrp_sync_group`s,
//! still without I/O. The network side feeds events here and carries out the
//! [`Output`]s.
//!
//! Sync groups (keepalived `vrrp_sync.c`): members change state together — one becoming
//! master takes the others (in BACKUP) with it, one demoted to BACKUP by a better advert
//! takes the other masters down, and while any member is in FAULT (its own tracking) all
//! are.

use crate::config::InstanceConfig;
use crate::machine::{Action, Event, Instance, NotifyKind, State};
use crate::packet::Advert;
use crate::track::{Objects, ScriptConfig};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::Duration;

/// A stable instance handle (never reused within an engine).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct InstanceId(pub u32);

/// `vrrp_sync_group NAME { group { … } }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupConfig {
    pub name: String,
    /// Member instance names.
    pub members: Vec<String>,
}

/// What the network side must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    Instance {
        id: InstanceId,
        action: Action,
    },
    /// A sync group changed state: run its notify scripts.
    Group {
        group: String,
        kind: NotifyKind,
    },
}

#[derive(Clone, Debug)]
struct Group {
    name: String,
    members: Vec<InstanceId>,
    state: Option<NotifyKind>,
}

#[derive(Clone, Debug, Default)]
pub struct Engine {
    instances: BTreeMap<InstanceId, Instance>,
    groups: Vec<Group>,
    objects: Objects,
    next_id: u32,
}

impl Engine {
    pub fn new() -> Engine {
        Engine::default()
    }

    /// Adds an instance (in Initialize; [`Self::start`] starts it).
    pub fn add(&mut self, cfg: InstanceConfig) -> InstanceId {
        let id = InstanceId(self.next_id);
        self.next_id += 1;
        self.instances.insert(id, Instance::new(cfg));
        id
    }

    pub fn ids(&self) -> impl Iterator<Item = InstanceId> + '_ {
        self.instances.keys().copied()
    }

    pub fn get(&self, id: InstanceId) -> Option<&Instance> {
        self.instances.get(&id)
    }

    pub fn get_mut(&mut self, id: InstanceId) -> Option<&mut Instance> {
        self.instances.get_mut(&id)
    }

    pub fn find(&self, name: &str) -> Option<InstanceId> {
        self.instances
            .iter()
            .find(|(_, i)| i.config().name == name)
            .map(|(id, _)| *id)
    }

    /// Replaces the sync groups (names resolved now; unknown members are ignored).
    pub fn set_groups(&mut self, groups: Vec<GroupConfig>) {
        let old: BTreeMap<String, Option<NotifyKind>> =
            self.groups.drain(..).map(|g| (g.name, g.state)).collect();
        for g in groups {
            let members: Vec<InstanceId> = g.members.iter().filter_map(|m| self.find(m)).collect();
            self.groups.push(Group {
                state: old.get(&g.name).copied().flatten(),
                name: g.name,
                members,
            });
        }
    }

    /// Replaces the `vrrp_script` definitions (a script keeping its name keeps its
    /// state).
    pub fn set_scripts(&mut self, scripts: Vec<ScriptConfig>) {
        self.objects.set_scripts(scripts);
    }

    pub fn group_of(&self, id: InstanceId) -> Option<&str> {
        self.groups
            .iter()
            .find(|g| g.members.contains(&id))
            .map(|g| g.name.as_str())
    }

    /// Starts instances (tracking is evaluated first, so an instance whose tracked
    /// objects are down starts in FAULT); members of a group that has a master follow it.
    pub fn start(&mut self, now: Duration, ids: &[InstanceId]) -> Vec<Output> {
        let mut out = Vec::new();
        for &id in ids {
            let Some(inst) = self.instances.get_mut(&id) else {
                continue;
            };
            let (fault, weight) = self.objects.evaluate(&inst.config().track);
            let acts = inst.step(now, Event::Tracking { fault, weight });
            push(&mut out, id, acts);
            self.drive(now, id, Event::Startup, &mut out);
        }
        for gi in 0..self.groups.len() {
            let members = self.groups[gi].members.clone();
            let has_master = members.iter().any(|m| {
                self.instances
                    .get(m)
                    .is_some_and(|i| i.state() == State::Master)
            });
            if has_master {
                for m in members {
                    if let Some(i) = self.instances.get_mut(&m) {
                        let acts = i.sync_master(now);
                        push(&mut out, m, acts);
                    }
                }
            }
            self.group_state(gi, &mut out);
        }
        out
    }

    /// Stops an instance and forgets it (a reload deleted it, or the daemon stops).
    pub fn remove(&mut self, now: Duration, id: InstanceId) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(mut inst) = self.instances.remove(&id) {
            push(&mut out, id, inst.step(now, Event::Shutdown));
        }
        for g in &mut self.groups {
            g.members.retain(|m| *m != id);
        }
        out
    }

    /// Stops every instance (SIGTERM): masters send priority 0.
    pub fn shutdown(&mut self, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        for (id, inst) in self.instances.iter_mut() {
            push(&mut out, *id, inst.step(now, Event::Shutdown));
        }
        for g in &mut self.groups {
            if g.state.take().is_some() {
                out.push(Output::Group {
                    group: g.name.clone(),
                    kind: NotifyKind::Stop,
                });
            }
        }
        out
    }

    /// A reload changed the configuration of a kept instance.
    pub fn reconfigure(
        &mut self,
        now: Duration,
        id: InstanceId,
        cfg: InstanceConfig,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        if let Some(inst) = self.instances.get_mut(&id) {
            let acts = inst.reconfigure(now, cfg);
            push(&mut out, id, acts);
            self.retrack(now, id, &mut out);
        }
        out
    }

    /// A valid advert for `id` from `src`.
    pub fn advert(
        &mut self,
        now: Duration,
        id: InstanceId,
        advert: Advert,
        src: IpAddr,
    ) -> Vec<Output> {
        let mut out = Vec::new();
        self.drive(now, id, Event::Advert { advert, src }, &mut out);
        out
    }

    /// Fires every due timer.
    pub fn tick(&mut self, now: Duration) -> Vec<Output> {
        let mut out = Vec::new();
        let due: Vec<InstanceId> = self
            .instances
            .iter()
            .filter(|(_, i)| i.next_deadline().is_some_and(|d| d <= now))
            .map(|(id, _)| *id)
            .collect();
        for id in due {
            self.drive(now, id, Event::Tick, &mut out);
        }
        out
    }

    /// The earliest deadline of all instances.
    pub fn next_deadline(&self) -> Option<Duration> {
        self.instances
            .values()
            .filter_map(Instance::next_deadline)
            .min()
    }

    /// An interface went up or down.
    pub fn set_interface(&mut self, now: Duration, name: &str, up: bool) -> Vec<Output> {
        let mut out = Vec::new();
        if self.objects.set_interface(name, up) {
            self.retrack_all(now, &mut out);
        }
        out
    }

    /// A `vrrp_script` run finished.
    pub fn script_result(&mut self, now: Duration, name: &str, ok: bool) -> Vec<Output> {
        let mut out = Vec::new();
        if self.objects.script_result(name, ok) {
            self.retrack_all(now, &mut out);
        }
        out
    }

    pub fn script_up(&self, name: &str) -> Option<bool> {
        self.objects.script_up(name)
    }

    fn retrack_all(&mut self, now: Duration, out: &mut Vec<Output>) {
        let ids: Vec<InstanceId> = self.instances.keys().copied().collect();
        for id in ids {
            self.retrack(now, id, out);
        }
    }

    fn retrack(&mut self, now: Duration, id: InstanceId, out: &mut Vec<Output>) {
        let Some(inst) = self.instances.get(&id) else {
            return;
        };
        let (fault, weight) = self.objects.evaluate(&inst.config().track);
        if fault == inst.own_fault()
            && inst.effective_priority() == self.priority_with(inst, weight)
        {
            return;
        }
        self.drive(now, id, Event::Tracking { fault, weight }, out);
    }

    fn priority_with(&self, inst: &Instance, weight: i32) -> u8 {
        let base = inst.base_priority();
        if base == crate::packet::PRIORITY_OWNER {
            base
        } else {
            (i32::from(base) + weight).clamp(1, 254) as u8
        }
    }

    /// Steps one instance, then lets its sync group follow.
    fn drive(&mut self, now: Duration, id: InstanceId, ev: Event, out: &mut Vec<Output>) {
        let Some(inst) = self.instances.get_mut(&id) else {
            return;
        };
        let before = inst.state();
        let acts = inst.step(now, ev);
        let after = inst.state();
        push(out, id, acts);
        let Some(gi) = self.groups.iter().position(|g| g.members.contains(&id)) else {
            return;
        };
        let members = self.groups[gi].members.clone();
        // FAULT: the group is faulted while any member's own tracking says so.
        let any_fault = members
            .iter()
            .any(|m| self.instances.get(m).is_some_and(Instance::own_fault));
        for m in &members {
            if let Some(i) = self.instances.get_mut(m) {
                if i.state() != State::Initialize {
                    let acts = i.set_group_fault(now, any_fault);
                    push(out, *m, acts);
                }
            }
        }
        match (before, after) {
            (State::Backup, State::Master) => {
                for m in members.iter().filter(|m| **m != id) {
                    if let Some(i) = self.instances.get_mut(m) {
                        let acts = i.sync_master(now);
                        push(out, *m, acts);
                    }
                }
            }
            (State::Master, State::Backup) => {
                for m in members.iter().filter(|m| **m != id) {
                    if let Some(i) = self.instances.get_mut(m) {
                        let acts = i.sync_backup(now);
                        push(out, *m, acts);
                    }
                }
            }
            _ => {}
        }
        self.group_state(gi, out);
    }

    /// Notifies the group's new state when it changed: FAULT if any member is, MASTER if
    /// any is master, BACKUP when all are backups.
    fn group_state(&mut self, gi: usize, out: &mut Vec<Output>) {
        let g = &self.groups[gi];
        let states: Vec<State> = g
            .members
            .iter()
            .filter_map(|m| self.instances.get(m).map(Instance::state))
            .collect();
        let kind = if states.contains(&State::Fault) {
            Some(NotifyKind::Fault)
        } else if states.contains(&State::Master) {
            Some(NotifyKind::Master)
        } else if !states.is_empty() && states.iter().all(|s| *s == State::Backup) {
            Some(NotifyKind::Backup)
        } else {
            None
        };
        if kind.is_some() && kind != g.state {
            let g = &mut self.groups[gi];
            g.state = kind;
            out.push(Output::Group {
                group: g.name.clone(),
                kind: kind.unwrap_or(NotifyKind::Backup),
            });
        }
    }
}

fn push(out: &mut Vec<Output>, id: InstanceId, acts: Vec<Action>) {
    out.extend(
        acts.into_iter()
            .map(|action| Output::Instance { id, action }),
    );
}
