//! Which options each command requires, allows or forbids, and which tunnel options each
//! tunnel type takes — ipvsadm's two legality tables, with its messages.

use crate::error::CliError;
use crate::options::{Cmd, OptId, OptSet};
use rvs_core::TunnelType;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Rule {
    Required,
    Optional,
    /// At most one option of this class may be given.
    OneOf,
    Illegal,
}

fn command_rule(cmd: Cmd, opt: OptId) -> Rule {
    use OptId::*;
    use Rule::*;
    if opt == Socket {
        return Optional;
    }
    match cmd {
        Cmd::AddService | Cmd::EditService => match opt {
            Service => Required,
            Scheduler | Persistent | Netmask | Ops | Pe | SchedFlags => Optional,
            _ => Illegal,
        },
        Cmd::DelService => match opt {
            Service => Required,
            _ => Illegal,
        },
        Cmd::AddServer | Cmd::EditServer => match opt {
            Service | Server => Required,
            Forward | Weight | UThreshold | LThreshold | TunType | TunPort | TunNoCsum
            | TunCsum | TunRemCsum => Optional,
            _ => Illegal,
        },
        Cmd::DelServer => match opt {
            Service | Server => Required,
            _ => Illegal,
        },
        Cmd::List => match opt {
            Connection | Service | Timeout | Daemon => OneOf,
            // --syncid is accepted (and ignored) by ipvsadm's list command.
            Numeric | Stats | Rate | Thresholds | PersistentConn | NoSort | SyncId | Exact
            | TunInfo | Json => Optional,
            _ => Illegal,
        },
        Cmd::Zero => match opt {
            Service => Optional,
            _ => Illegal,
        },
        Cmd::Save => match opt {
            Numeric => Optional,
            _ => Illegal,
        },
        Cmd::StartDaemon => match opt {
            McastInterface | SyncId | McastGroup | McastPort | McastTtl | SyncMaxlen => Optional,
            _ => Illegal,
        },
        Cmd::StopDaemon => match opt {
            SyncId => Optional,
            _ => Illegal,
        },
        Cmd::Status => match opt {
            Json => Optional,
            _ => Illegal,
        },
        Cmd::Sysctl | Cmd::Drain | Cmd::Undrain => Illegal,
        Cmd::Flush | Cmd::Restore | Cmd::SetTimeout => Illegal,
    }
}

/// ipvsadm's `generic_opt_check`: the first class (in [`OptId`] order) that breaks a rule
/// is reported.
pub(crate) fn check_command_options(cmd: Cmd, given: OptSet) -> Result<(), CliError> {
    let mut first_of_group: Option<OptId> = None;
    for opt in OptId::ALL {
        let rule = command_rule(cmd, opt);
        if !given.contains(opt) {
            if rule == Rule::Required {
                return Err(CliError::fail(format!(
                    "You need to supply the '{}' option for the '{}' command",
                    opt.name(),
                    cmd.name()
                )));
            }
            continue;
        }
        match rule {
            Rule::Illegal => {
                return Err(CliError::fail(format!(
                    "Illegal '{}' option with the '{}' command",
                    opt.name(),
                    cmd.name()
                )))
            }
            Rule::OneOf => match first_of_group {
                None => first_of_group = Some(opt),
                Some(first) => {
                    return Err(CliError::fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' command",
                        opt.name(),
                        first.name(),
                        cmd.name()
                    )))
                }
            },
            Rule::Required | Rule::Optional => {}
        }
    }
    Ok(())
}

pub(crate) fn tunnel_name(t: TunnelType) -> &'static str {
    match t {
        TunnelType::Ipip => "ipip",
        TunnelType::Gue => "gue",
        TunnelType::Gre => "gre",
    }
}

fn tunnel_rule(t: TunnelType, opt: OptId) -> Rule {
    use OptId::*;
    use Rule::*;
    match (t, opt) {
        (TunnelType::Ipip, _) => Illegal,
        (TunnelType::Gue, TunPort) => Required,
        (TunnelType::Gue, TunNoCsum | TunCsum | TunRemCsum) => OneOf,
        (TunnelType::Gre, TunNoCsum | TunCsum) => OneOf,
        (TunnelType::Gre, _) => Illegal,
        (TunnelType::Gue, _) => Illegal,
    }
}

/// ipvsadm's `tunnel_opt_check`: `--tun-port` is required for GUE and illegal otherwise;
/// one checksum option at most, and none for IPIP.
pub(crate) fn check_tunnel_options(t: TunnelType, given: OptSet) -> Result<(), CliError> {
    let mut first_of_group: Option<OptId> = None;
    for opt in [
        OptId::TunPort,
        OptId::TunNoCsum,
        OptId::TunCsum,
        OptId::TunRemCsum,
    ] {
        let rule = tunnel_rule(t, opt);
        if !given.contains(opt) {
            if rule == Rule::Required {
                return Err(CliError::fail(format!(
                    "You need to supply the '{}' option for the '{}' tunnel type",
                    opt.name(),
                    tunnel_name(t)
                )));
            }
            continue;
        }
        match rule {
            Rule::Illegal => {
                return Err(CliError::fail(format!(
                    "Illegal '{}' option with the '{}' tunnel type",
                    opt.name(),
                    tunnel_name(t)
                )))
            }
            Rule::OneOf => match first_of_group {
                None => first_of_group = Some(opt),
                Some(first) => {
                    return Err(CliError::fail(format!(
                        "The option '{}' conflicts with the '{}' option in the '{}' tunnel type",
                        opt.name(),
                        first.name(),
                        tunnel_name(t)
                    )))
                }
            },
            Rule::Required | Rule::Optional => {}
        }
    }
    Ok(())
}
