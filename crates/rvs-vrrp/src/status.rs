//! What an operator sees of VRRP: per instance its state, priorities, master, counters
//! and drop reasons; rendered as `(name, value)` facts for `rvsadm --status`.

use crate::drop::DropCounters;
use crate::machine::MachineStats;
use std::net::IpAddr;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InstanceStatus {
    pub name: String,
    pub interface: String,
    pub vrid: u8,
    pub version: u8,
    /// `INIT`, `BACKUP`, `MASTER`, `FAULT`.
    pub state: &'static str,
    pub priority: u8,
    pub effective_priority: u8,
    /// The master heard last (Backup) and its priority.
    pub master: Option<(IpAddr, u8)>,
    pub vips: Vec<IpAddr>,
    pub group: Option<String>,
    pub stats: MachineStats,
    /// Adverts that could not be sent.
    pub send_errors: u64,
    /// Gratuitous ARPs / unsolicited NAs sent.
    pub garp_sent: u64,
    pub drops: DropCounters,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Status {
    pub instances: Vec<InstanceStatus>,
    /// Packets no instance could be named for (unknown VRID, unreadable header).
    pub unattributed: DropCounters,
}

impl Status {
    pub fn instance(&self, name: &str) -> Option<&InstanceStatus> {
        self.instances.iter().find(|i| i.name == name)
    }

    /// `vrrp.<instance>.<what>` facts, plus `vrrp.drop.<reason>` for packets no instance
    /// claimed. Counters are listed when non-zero, drops always as a total.
    pub fn facts(&self) -> Vec<(String, String)> {
        let mut f = Vec::new();
        for i in &self.instances {
            let k = |what: &str| format!("vrrp.{}.{what}", i.name);
            f.push((k("state"), i.state.to_string()));
            f.push((
                k("vrid"),
                format!("{} (v{}, {})", i.vrid, i.version, i.interface),
            ));
            f.push((k("priority"), i.priority.to_string()));
            f.push((k("effective_priority"), i.effective_priority.to_string()));
            if let Some((a, p)) = i.master {
                f.push((k("master"), format!("{a} (priority {p})")));
            }
            if let Some(g) = &i.group {
                f.push((k("sync_group"), g.clone()));
            }
            let vips: Vec<String> = i.vips.iter().map(ToString::to_string).collect();
            f.push((k("vips"), vips.join(" ")));
            let s = &i.stats;
            for (name, v) in [
                ("adverts_rx", s.adverts_rx),
                ("adverts_tx", s.adverts_tx),
                ("priority_zero_rx", s.priority_zero_rx),
                ("priority_zero_tx", s.priority_zero_tx),
                ("became_master", s.became_master),
                ("released_master", s.released_master),
                ("send_errors", i.send_errors),
                ("garp_sent", i.garp_sent),
            ] {
                f.push((k(name), v.to_string()));
            }
            f.push((k("drops"), i.drops.total().to_string()));
            for (r, n) in i.drops.nonzero() {
                f.push((k(&format!("drop.{}", r.name())), n.to_string()));
            }
        }
        for (r, n) in self.unattributed.nonzero() {
            f.push((format!("vrrp.drop.{}", r.name()), n.to_string()));
        }
        f
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::drop::DropReason;

    #[test]
    fn facts_name_the_instance_and_every_nonzero_drop() {
        let mut drops = DropCounters::default();
        drops.add(DropReason::Checksum);
        drops.add(DropReason::Checksum);
        let mut unattributed = DropCounters::default();
        unattributed.add(DropReason::UnknownVrid);
        let s = Status {
            instances: vec![InstanceStatus {
                name: "VI_1".into(),
                state: "MASTER",
                priority: 100,
                effective_priority: 90,
                drops,
                ..Default::default()
            }],
            unattributed,
        };
        let f: std::collections::HashMap<_, _> = s.facts().into_iter().collect();
        assert_eq!(f["vrrp.VI_1.state"], "MASTER");
        assert_eq!(f["vrrp.VI_1.effective_priority"], "90");
        assert_eq!(f["vrrp.VI_1.drops"], "2");
        assert_eq!(f["vrrp.VI_1.drop.checksum"], "2");
        assert_eq!(f["vrrp.drop.unknown_vrid"], "1");
        assert!(!f.contains_key("vrrp.VI_1.drop.ttl"));
    }
}
