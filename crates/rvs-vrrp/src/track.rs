//! Tracked objects (keepalived `track_interface`, `track_script`): their up/down state,
//! `vrrp_script`'s `rise`/`fall` hysteresis, and what they mean for an instance — FAULT
//! when an unweighted one is down, else a priority adjustment.
//!
//! * weight 0: down ⇒ FAULT.
//! * weight > 0: added to the priority while up.
//! * weight < 0: added (so subtracted) while down.
//! * `reverse` reads the object's state inverted.
//!
//! Objects not heard of yet count as up (a script that has not run yet; keepalived
//! instead holds the instance in its INIT state until the first result).

use crate::config::{Track, TrackTarget};
use std::collections::BTreeMap;

/// A `vrrp_script`'s hysteresis.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScriptConfig {
    pub name: String,
    /// Consecutive successes to go up (1).
    pub rise: u32,
    /// Consecutive failures to go down (1).
    pub fall: u32,
    /// Start down (`init_fail`).
    pub init_fail: bool,
}

#[derive(Clone, Debug)]
struct ScriptState {
    cfg: ScriptConfig,
    up: Option<bool>,
    successes: u32,
    failures: u32,
}

impl ScriptState {
    fn new(cfg: ScriptConfig) -> ScriptState {
        ScriptState {
            up: cfg.init_fail.then_some(false),
            cfg,
            successes: 0,
            failures: 0,
        }
    }

    /// One run's result; true if the state changed. The very first result decides at
    /// once (keepalived: "one success is enough" from the initial state).
    fn result(&mut self, ok: bool) -> bool {
        let before = self.up;
        if ok {
            self.successes += 1;
            self.failures = 0;
            if self.up.is_none() || (self.up == Some(false) && self.successes >= self.cfg.rise) {
                self.up = Some(true);
            }
        } else {
            self.failures += 1;
            self.successes = 0;
            if self.up.is_none() || (self.up == Some(true) && self.failures >= self.cfg.fall) {
                self.up = Some(false);
            }
        }
        before != self.up
    }
}

/// The state of every tracked object.
#[derive(Clone, Debug, Default)]
pub struct Objects {
    scripts: BTreeMap<String, ScriptState>,
    interfaces: BTreeMap<String, bool>,
}

impl Objects {
    /// Replaces the script definitions; scripts that keep their name keep their state.
    pub fn set_scripts(&mut self, cfgs: Vec<ScriptConfig>) {
        let mut old = std::mem::take(&mut self.scripts);
        for c in cfgs {
            let st = match old.remove(&c.name) {
                Some(mut s) => {
                    s.cfg = c.clone();
                    s
                }
                None => ScriptState::new(c.clone()),
            };
            self.scripts.insert(c.name, st);
        }
    }

    /// Records a script run; true if its up/down state changed.
    pub fn script_result(&mut self, name: &str, ok: bool) -> bool {
        self.scripts.get_mut(name).is_some_and(|s| s.result(ok))
    }

    pub fn script_up(&self, name: &str) -> Option<bool> {
        self.scripts.get(name).and_then(|s| s.up)
    }

    /// Records an interface's state; true if it changed.
    pub fn set_interface(&mut self, name: &str, up: bool) -> bool {
        self.interfaces.insert(name.to_string(), up) != Some(up)
    }

    fn is_up(&self, t: &TrackTarget) -> bool {
        match t {
            TrackTarget::Interface(n) => self.interfaces.get(n).copied().unwrap_or(true),
            TrackTarget::Script(n) => self.script_up(n).unwrap_or(true),
        }
    }

    /// (fault, weight) for an instance tracking `tracks`.
    pub fn evaluate(&self, tracks: &[Track]) -> (bool, i32) {
        let mut fault = false;
        let mut weight = 0;
        for t in tracks {
            let up = self.is_up(&t.target) != t.reverse;
            match t.weight {
                0 if !up => fault = true,
                w if w > 0 && up => weight += w,
                w if w < 0 && !up => weight += w,
                _ => {}
            }
        }
        (fault, weight)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(rise: u32, fall: u32) -> ScriptConfig {
        ScriptConfig {
            name: "chk".into(),
            rise,
            fall,
            init_fail: false,
        }
    }

    fn track(w: i32, reverse: bool) -> Track {
        Track {
            target: TrackTarget::Script("chk".into()),
            weight: w,
            reverse,
        }
    }

    #[test]
    fn keepalived_rise_and_fall_need_consecutive_results() {
        let mut o = Objects::default();
        o.set_scripts(vec![script(2, 3)]);
        assert_eq!(o.script_up("chk"), None);
        assert!(o.script_result("chk", true), "first result decides");
        assert!(!o.script_result("chk", false));
        assert!(!o.script_result("chk", false));
        assert!(
            !o.script_result("chk", true),
            "a success resets the failures"
        );
        assert!(!o.script_result("chk", false));
        assert!(!o.script_result("chk", false));
        assert!(o.script_result("chk", false), "third consecutive failure");
        assert_eq!(o.script_up("chk"), Some(false));
        assert!(!o.script_result("chk", true));
        assert!(o.script_result("chk", true), "second consecutive success");
    }

    #[test]
    fn keepalived_weights_fault_and_reverse() {
        let mut o = Objects::default();
        o.set_scripts(vec![script(1, 1)]);
        o.script_result("chk", true);
        assert_eq!(o.evaluate(&[track(0, false)]), (false, 0));
        assert_eq!(o.evaluate(&[track(10, false)]), (false, 10));
        assert_eq!(o.evaluate(&[track(-10, false)]), (false, 0));
        assert_eq!(o.evaluate(&[track(0, true)]), (true, 0));
        o.script_result("chk", false);
        assert_eq!(o.evaluate(&[track(0, false)]), (true, 0));
        assert_eq!(o.evaluate(&[track(10, false)]), (false, 0));
        assert_eq!(o.evaluate(&[track(-10, false)]), (false, -10));
        assert_eq!(o.evaluate(&[track(10, true)]), (false, 10));
    }

    #[test]
    fn interfaces_unknown_count_as_up_and_changes_are_reported() {
        let mut o = Objects::default();
        let t = Track {
            target: TrackTarget::Interface("eth0".into()),
            weight: 0,
            reverse: false,
        };
        assert_eq!(o.evaluate(std::slice::from_ref(&t)), (false, 0));
        assert!(o.set_interface("eth0", false));
        assert!(!o.set_interface("eth0", false));
        assert_eq!(o.evaluate(&[t]), (true, 0));
    }

    #[test]
    fn init_fail_starts_down() {
        let mut o = Objects::default();
        o.set_scripts(vec![ScriptConfig {
            init_fail: true,
            ..script(1, 1)
        }]);
        assert_eq!(o.script_up("chk"), Some(false));
    }
}
