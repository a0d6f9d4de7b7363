//! The checks ipvsadm makes once the whole command line is read, and the typed command.

use super::state::State;
use super::values::fail;
use crate::check::{check_command_options, check_tunnel_options};
use crate::command::{Command, Invocation, List, ListWhat};
use crate::error::CliError;
use crate::options::{Cmd, OptId};
use rvs_core::config::DEFAULT_SCHEDULER;
use rvs_core::{
    Change, DestConfig, Forward, Protocol, SchedFlags, ServiceConfig, SyncDaemonConfig,
    TunnelConfig, TunnelCsum,
};

const DEFAULT_MCAST_IFN: &str = "eth0";

impl State {
    /// The checks ipvsadm makes once the command line is read, then the command.
    pub(super) fn finish(mut self, cmd: Cmd) -> Result<Invocation, CliError> {
        check_command_options(cmd, self.options)?;
        let o = self.options;
        match cmd {
            Cmd::AddService | Cmd::EditService => {
                if self.svc.fwmark == 0 && self.svc.port == 0 && self.svc.persistence.is_none() {
                    return Err(fail("Zero port specified for non-persistent service"));
                }
                if self.svc.ops && self.svc.fwmark == 0 && self.svc.proto != Protocol::Udp.number()
                {
                    return Err(fail(
                        "One-Packet Scheduling is only for UDP virtual services",
                    ));
                }
                if self.svc.scheduler.is_empty() {
                    self.svc.scheduler = DEFAULT_SCHEDULER.to_string();
                }
            }
            Cmd::StartDaemon if self.daemon.ifn.is_empty() => {
                self.daemon.ifn = DEFAULT_MCAST_IFN.to_string();
            }
            Cmd::AddServer | Cmd::EditServer => {
                let fwd = self.dest.forward;
                // Only NAT can map ports: DR and tunnel servers get the service's port.
                if self.svc.fwmark == 0 && matches!(fwd, Forward::Tunnel | Forward::Route) {
                    self.dest.port = self.svc.port;
                }
                if self.dest.family != self.svc.family && fwd != Forward::Tunnel {
                    return Err(fail(
                        "Different address family is allowed only for tunneling servers",
                    ));
                }
                let tunnel_opts = [
                    OptId::TunType,
                    OptId::TunPort,
                    OptId::TunNoCsum,
                    OptId::TunCsum,
                    OptId::TunRemCsum,
                ];
                if o.any(&tunnel_opts) && fwd != Forward::Tunnel {
                    return Err(fail("Tunnel options conflict with forward method"));
                }
                check_tunnel_options(self.dest.tun_type, o)?;
            }
            Cmd::List => {
                let conn_like = o.any(&[OptId::Connection, OptId::Timeout, OptId::Daemon]);
                let stats_like = o.any(&[OptId::Stats, OptId::Rate, OptId::Thresholds]);
                let info_like = o.any(&[OptId::Timeout, OptId::Daemon]);
                if (conn_like && stats_like) || (info_like && o.contains(OptId::PersistentConn)) {
                    return Err(fail("options conflicts in the list command"));
                }
            }
            _ => {}
        }
        let command = self.command(cmd)?;
        Ok(Invocation {
            command,
            socket: self.socket,
        })
    }

    fn service_config(&self) -> Result<ServiceConfig, CliError> {
        Ok(ServiceConfig {
            key: self.required_key(),
            scheduler: self.svc.scheduler.clone(),
            sched_flags: SchedFlags(self.svc.sched_flags),
            persistence: self.svc.persistence,
            netmask: self.netmask()?,
            pe: (!self.svc.pe.is_empty()).then(|| self.svc.pe.clone()),
            ops: self.svc.ops,
        })
    }

    fn dest_config(&self) -> DestConfig {
        let o = self.options;
        let csum = if o.contains(OptId::TunRemCsum) {
            TunnelCsum::RemCsum
        } else if o.contains(OptId::TunCsum) {
            TunnelCsum::Csum
        } else {
            TunnelCsum::NoCsum
        };
        DestConfig {
            addr: self.dest.addr,
            port: self.dest.port,
            forward: self.dest.forward,
            weight: self.dest.weight,
            u_threshold: self.dest.u_threshold,
            l_threshold: self.dest.l_threshold,
            tunnel: TunnelConfig {
                kind: self.dest.tun_type,
                port: self.dest.tun_port,
                csum,
            },
        }
    }

    fn command(&self, cmd: Cmd) -> Result<Command, CliError> {
        let o = self.options;
        Ok(match cmd {
            Cmd::AddService => Command::Change(Change::AddService(self.service_config()?)),
            Cmd::EditService => Command::Change(Change::EditService(self.service_config()?)),
            Cmd::DelService => Command::Change(Change::DelService(self.required_key())),
            Cmd::Flush => Command::Change(Change::Flush),
            Cmd::AddServer => Command::Change(Change::AddDest {
                svc: self.required_key(),
                dest: self.dest_config(),
            }),
            Cmd::EditServer => Command::Change(Change::EditDest {
                svc: self.required_key(),
                dest: self.dest_config(),
            }),
            Cmd::DelServer => Command::Change(Change::DelDest {
                svc: self.required_key(),
                addr: self.dest.addr,
                port: self.dest.port,
            }),
            Cmd::List => {
                let what = if o.contains(OptId::Connection) {
                    ListWhat::Conns
                } else if o.contains(OptId::Service) {
                    ListWhat::Service(self.required_key())
                } else if o.contains(OptId::Timeout) {
                    ListWhat::Timeouts
                } else if o.contains(OptId::Daemon) {
                    ListWhat::Daemons
                } else {
                    ListWhat::All
                };
                Command::List(List {
                    what,
                    format: self.format,
                })
            }
            Cmd::Zero => Command::Change(Change::Zero(self.key())),
            Cmd::Save => Command::Save {
                numeric: self.format.numeric,
            },
            Cmd::Restore => Command::Restore,
            Cmd::SetTimeout => Command::Change(Change::SetTimeouts {
                tcp: self.timeouts[0],
                tcpfin: self.timeouts[1],
                udp: self.timeouts[2],
            }),
            Cmd::StartDaemon => Command::Change(Change::StartDaemon(SyncDaemonConfig {
                master: self.daemon.master,
                mcast_ifn: self.daemon.ifn.clone(),
                syncid: self.daemon.syncid,
                sync_maxlen: self.daemon.maxlen,
                mcast_group: self.daemon.group,
                mcast_port: self.daemon.port,
                mcast_ttl: self.daemon.ttl,
            })),
            Cmd::StopDaemon => Command::Change(Change::StopDaemon {
                master: self.daemon.master,
            }),
            Cmd::Drain => Command::Drain { drain: true },
            Cmd::Undrain => Command::Drain { drain: false },
            Cmd::Status => Command::Status {
                json: self.format.json,
            },
            Cmd::Sysctl => match self.sysctl.split_once('=') {
                Some((name, value)) => Command::Change(Change::SetSysctl {
                    name: name.trim().to_string(),
                    value: value.trim().to_string(),
                }),
                None if self.sysctl == "all" => Command::Sysctl { name: None },
                None => Command::Sysctl {
                    name: Some(self.sysctl.clone()),
                },
            },
        })
    }
}
