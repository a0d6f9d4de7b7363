//! The `net.ipv4.vs.*` sysctls by name: set and read as `/proc/sys/net/ipv4/vs` does,
//! refused as the kernel's handlers refuse them (EINVAL) and unknown names as ENOENT.
//! `rvsd --sysctl NAME=VALUE` at start and `rvsadm --sysctl NAME=VALUE` at run time go
//! through here ([`crate::Change::SetSysctl`]).

use crate::error::{Errno, Result, TableError};
use crate::sync::SYNC_SYSCTLS;
use crate::table::Table;

/// The prefix an operator may write (`sysctl -w net.ipv4.vs.sloppy_tcp=1`).
pub const PREFIX: &str = "net.ipv4.vs.";

/// The names of the model's own switches (the `sync_*` ones are in [`SYNC_SYSCTLS`]).
pub const SYSCTLS: &[&str] = &[
    "conn_reuse_mode",
    "expire_nodest_conn",
    "expire_quiescent_template",
    "secure_tcp",
    "sloppy_sctp",
    "sloppy_tcp",
];

fn int(name: &str, value: &str) -> Result<i64> {
    value
        .trim()
        .parse()
        .map_err(|_| TableError::new(Errno::Invalid, format!("{name}: {value:?} is not a number")))
}

impl Table {
    /// Sets a sysctl from its text.
    ///
    /// # Errors
    /// ENOENT for a name rvs does not have, EINVAL for a value the kernel refuses; nothing
    /// changes then.
    pub fn set_sysctl(&mut self, name: &str, value: &str) -> Result<()> {
        let name = name.trim().strip_prefix(PREFIX).unwrap_or(name.trim());
        if SYNC_SYSCTLS.contains(&name) {
            return self.sync_params_mut().set(name, value);
        }
        let s = &mut self.sysctl;
        match name {
            "expire_nodest_conn" => s.expire_nodest_conn = int(name, value)? != 0,
            "expire_quiescent_template" => s.expire_quiescent_template = int(name, value)? != 0,
            "sloppy_tcp" => s.sloppy_tcp = int(name, value)? != 0,
            "sloppy_sctp" => s.sloppy_sctp = int(name, value)? != 0,
            "conn_reuse_mode" => s.conn_reuse_mode = int(name, value)? as u8,
            "secure_tcp" => {
                // proc_do_defense_mode: 0..3; 3 is "always on" (1 and 2 switch on under
                // memory pressure, which the model does not measure)
                let v = int(name, value)?;
                if !(0..=3).contains(&v) {
                    return Err(TableError::new(
                        Errno::Invalid,
                        format!("secure_tcp: {v} is not 0 to 3"),
                    ));
                }
                s.secure_tcp = v == 3;
            }
            _ => {
                return Err(TableError::new(
                    Errno::NotFound,
                    format!("no sysctl {name:?}"),
                ))
            }
        }
        Ok(())
    }

    /// A sysctl's value as `/proc` prints it.
    pub fn sysctl_value(&self, name: &str) -> Option<String> {
        let name = name.trim().strip_prefix(PREFIX).unwrap_or(name.trim());
        if SYNC_SYSCTLS.contains(&name) {
            return self.sync_params().get(name);
        }
        let s = &self.sysctl;
        let b = |v: bool| (v as u8).to_string();
        Some(match name {
            "expire_nodest_conn" => b(s.expire_nodest_conn),
            "expire_quiescent_template" => b(s.expire_quiescent_template),
            "sloppy_tcp" => b(s.sloppy_tcp),
            "sloppy_sctp" => b(s.sloppy_sctp),
            "conn_reuse_mode" => s.conn_reuse_mode.to_string(),
            "secure_tcp" => if s.secure_tcp { "3" } else { "0" }.to_string(),
            _ => return None,
        })
    }

    /// Every sysctl with its value, sorted by name.
    pub fn sysctls(&self) -> Vec<(String, String)> {
        let mut names: Vec<&str> = SYSCTLS.iter().chain(SYNC_SYSCTLS).copied().collect();
        names.sort_unstable();
        names
            .into_iter()
            .filter_map(|n| self.sysctl_value(n).map(|v| (n.to_string(), v)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_are_set_by_name_and_bad_values_change_nothing() {
        let mut t = Table::new();
        t.set_sysctl("net.ipv4.vs.sloppy_tcp", "1").unwrap();
        assert!(t.sysctl.sloppy_tcp);
        t.set_sysctl("sync_threshold", "4 40").unwrap();
        assert_eq!(t.sysctl_value("sync_threshold").unwrap(), "4\t40");
        assert_eq!(
            t.set_sysctl("secure_tcp", "4").unwrap_err().errno,
            Errno::Invalid
        );
        assert_eq!(
            t.set_sysctl("expire_nodest_conn", "yes").unwrap_err().errno,
            Errno::Invalid
        );
        assert_eq!(
            t.set_sysctl("no_such", "1").unwrap_err().errno,
            Errno::NotFound
        );
        assert!(!t.sysctl.expire_nodest_conn);
        let all = t.sysctls();
        assert!(all.iter().any(|(n, v)| n == "sloppy_tcp" && v == "1"));
        assert!(all.windows(2).all(|w| w[0].0 < w[1].0));
        assert_eq!(all.len(), SYSCTLS.len() + SYNC_SYSCTLS.len());
    }
}
