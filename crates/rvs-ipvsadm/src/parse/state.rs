//! The command being built, option by option, as ipvsadm keeps it in its
//! `ipvs_command_entry`: each option is checked and applied as it comes.

use super::values::*;
use crate::command::Format;
use crate::error::CliError;
use crate::names::{inet_aton, Resolver};
use crate::numbers::{atoi, number_in, strtol_full};
use crate::options::{OptId, OptSet, Switch};
use rvs_core::config::DEFAULT_PERSISTENCE;
use rvs_core::{Family, Forward, Netmask, Protocol, ServiceKey, TunnelType};
use std::net::{IpAddr, Ipv4Addr};
use std::path::PathBuf;

/// The virtual service as the options describe it so far.
pub(super) struct Svc {
    pub(super) family: Option<Family>,
    /// IPPROTO number; 0 until `-t`/`-u`/`--sctp-service`/`-f`.
    pub(super) proto: u8,
    pub(super) addr: IpAddr,
    pub(super) port: u16,
    pub(super) fwmark: u32,
    pub(super) scheduler: String,
    pub(super) persistence: Option<u32>,
    pub(super) ops: bool,
    /// A dotted IPv4 mask (as a number) or an IPv6 prefix length, like ipvsadm's field.
    pub(super) mask: u32,
    pub(super) pe: String,
    pub(super) sched_flags_arg: Option<String>,
    pub(super) sched_flags: u32,
}

impl Default for Svc {
    fn default() -> Self {
        Svc {
            family: None,
            proto: 0,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            fwmark: 0,
            scheduler: String::new(),
            persistence: None,
            ops: false,
            mask: u32::MAX,
            pe: String::new(),
            sched_flags_arg: None,
            sched_flags: 0,
        }
    }
}

pub(super) struct Dest {
    pub(super) family: Option<Family>,
    pub(super) addr: IpAddr,
    pub(super) port: u16,
    pub(super) forward: Forward,
    pub(super) weight: u32,
    pub(super) u_threshold: u32,
    pub(super) l_threshold: u32,
    pub(super) tun_type: TunnelType,
    pub(super) tun_port: u16,
}

impl Default for Dest {
    fn default() -> Self {
        Dest {
            family: None,
            addr: IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            port: 0,
            forward: Forward::Route,
            weight: 1,
            u_threshold: 0,
            l_threshold: 0,
            tun_type: TunnelType::Ipip,
            tun_port: 0,
        }
    }
}

#[derive(Default)]
pub(super) struct Daemon {
    pub(super) master: bool,
    pub(super) ifn: String,
    pub(super) syncid: u8,
    pub(super) maxlen: u16,
    pub(super) group: Option<IpAddr>,
    pub(super) port: u16,
    pub(super) ttl: u8,
}

#[derive(Default)]
pub(super) struct State {
    pub(super) options: OptSet,
    pub(super) svc: Svc,
    pub(super) dest: Dest,
    pub(super) daemon: Daemon,
    pub(super) timeouts: [u32; 3],
    pub(super) format: Format,
    pub(super) socket: Option<PathBuf>,
    /// `--sysctl`'s argument.
    pub(super) sysctl: String,
}

impl State {
    pub(super) fn set(&mut self, id: OptId) -> Result<(), CliError> {
        if self.options.insert(id) {
            Ok(())
        } else {
            Err(CliError::fail(format!(
                "multiple '{}' options specified",
                id.name()
            )))
        }
    }

    pub(super) fn socket(&mut self, value: Option<String>) -> Result<(), CliError> {
        self.set(OptId::Socket)?;
        self.socket = value.map(PathBuf::from);
        Ok(())
    }

    /// Applies one option after the command; `false` if it is not an option here
    /// (another command, `-h`, `-v`).
    pub(super) fn apply(
        &mut self,
        switch: Switch,
        value: Option<String>,
        names: &dyn Resolver,
    ) -> Result<bool, CliError> {
        let v = value.as_deref().unwrap_or("");
        match switch {
            Switch::Tcp | Switch::Udp | Switch::Sctp => {
                self.set(OptId::Service)?;
                let proto = match switch {
                    Switch::Tcp => Protocol::Tcp,
                    Switch::Udp => Protocol::Udp,
                    _ => Protocol::Sctp,
                };
                self.svc.proto = proto.number();
                let (addr, port) = parse_endpoint(v, Some(proto), names)
                    .ok_or_else(|| fail("illegal virtual server address[:port] specified"))?;
                self.svc.addr = addr;
                self.svc.family = Some(Family::of(&addr));
                if let Some(port) = port {
                    self.svc.port = port;
                }
                if addr.is_ipv6() {
                    self.svc.mask = 128;
                }
            }
            Switch::Fwmark => {
                self.set(OptId::Service)?;
                self.svc.family = Some(Family::V4);
                // ipvsadm gives fwmark services a protocol, used to look up port names.
                self.svc.proto = Protocol::Tcp.number();
                self.svc.fwmark = strtol_full(v)
                    .filter(|n| (1..=i64::from(u32::MAX)).contains(n))
                    .ok_or_else(|| {
                        CliError::fail(format!("invalid fwmark value `{v}' specified"))
                    })? as u32;
            }
            Switch::Scheduler => {
                self.set(OptId::Scheduler)?;
                self.svc.scheduler = cut(v, SCHED_NAME_MAX);
            }
            Switch::Persistent => {
                self.set(OptId::Persistent)?;
                self.svc.persistence = Some(match value.as_deref() {
                    None => DEFAULT_PERSISTENCE,
                    Some(t) => parse_timeout(t, 1)?,
                });
            }
            Switch::Netmask => {
                self.set(OptId::Netmask)?;
                if self.svc.family == Some(Family::V6) {
                    let n = atoi(v);
                    if !(1..=128).contains(&n) {
                        return Err(fail("illegal ipv6 netmask specified"));
                    }
                    self.svc.mask = n as u32;
                } else {
                    let mask = inet_aton(v)
                        .or_else(|| names.host_addr(v))
                        .ok_or_else(|| fail("illegal virtual server persistent mask specified"))?;
                    self.svc.mask = u32::from(mask);
                }
            }
            Switch::RealServer => {
                self.set(OptId::Server)?;
                let proto = Protocol::from_number(self.svc.proto);
                let (addr, port) = parse_endpoint(v, proto, names)
                    .ok_or_else(|| fail("illegal real server address[:port] specified"))?;
                self.dest.addr = addr;
                self.dest.family = Some(Family::of(&addr));
                self.dest.port = port.unwrap_or(self.svc.port);
            }
            Switch::Ipip | Switch::Gatewaying | Switch::Masquerading => {
                self.set(OptId::Forward)?;
                self.dest.forward = match switch {
                    Switch::Ipip => Forward::Tunnel,
                    Switch::Gatewaying => Forward::Route,
                    _ => Forward::Masq,
                };
            }
            Switch::Weight => {
                self.set(OptId::Weight)?;
                self.dest.weight =
                    number_in(v, 0, 65535).ok_or_else(|| fail("illegal weight specified"))? as u32;
            }
            Switch::UThreshold => {
                self.set(OptId::UThreshold)?;
                self.dest.u_threshold = number_in(v, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail("illegal u_threshold specified"))?
                    as u32;
            }
            Switch::LThreshold => {
                self.set(OptId::LThreshold)?;
                self.dest.l_threshold = number_in(v, 0, i64::from(i32::MAX))
                    .ok_or_else(|| fail("illegal l_threshold specified"))?
                    as u32;
            }
            Switch::Connection => self.set(OptId::Connection)?,
            Switch::Numeric => {
                self.set(OptId::Numeric)?;
                self.format.numeric = true;
            }
            Switch::McastInterface => {
                self.set(OptId::McastInterface)?;
                self.daemon.ifn = cut(v, IFNAME_MAX);
            }
            Switch::SyncId => {
                self.set(OptId::SyncId)?;
                self.daemon.syncid =
                    number_in(v, 0, 255).ok_or_else(|| fail("illegal syncid specified"))? as u8;
            }
            Switch::Timeout => self.set(OptId::Timeout)?,
            Switch::Daemon => self.set(OptId::Daemon)?,
            Switch::Stats => {
                self.set(OptId::Stats)?;
                self.format.stats = true;
            }
            Switch::Rate => {
                self.set(OptId::Rate)?;
                self.format.rate = true;
            }
            Switch::Thresholds => {
                self.set(OptId::Thresholds)?;
                self.format.thresholds = true;
            }
            Switch::PersistentConn => {
                self.set(OptId::PersistentConn)?;
                self.format.persistent_conn = true;
            }
            Switch::NoSort => {
                self.set(OptId::NoSort)?;
                self.format.nosort = true;
            }
            Switch::Sort => {}
            Switch::Exact => {
                self.set(OptId::Exact)?;
                self.format.exact = true;
            }
            Switch::Ipv6 => {
                if self.svc.fwmark == 0 {
                    return Err(fail("-6 used before -f\n"));
                }
                self.svc.family = Some(Family::V6);
                self.svc.mask = 128;
            }
            Switch::Ops => {
                self.set(OptId::Ops)?;
                self.svc.ops = true;
            }
            Switch::Pe => {
                self.set(OptId::Pe)?;
                self.svc.pe = cut(v, PE_NAME_MAX);
            }
            Switch::SchedFlags => {
                self.set(OptId::SchedFlags)?;
                self.svc.sched_flags_arg = Some(cut(v, SCHED_FLAGS_ARG_MAX));
            }
            Switch::McastGroup => {
                self.set(OptId::McastGroup)?;
                self.daemon.group = Some(parse_mcast_group(v)?);
            }
            Switch::McastPort => {
                self.set(OptId::McastPort)?;
                self.daemon.port = number_in(v, 1, 65535)
                    .ok_or_else(|| fail("illegal mcast-port specified"))?
                    as u16;
            }
            Switch::McastTtl => {
                self.set(OptId::McastTtl)?;
                self.daemon.ttl =
                    number_in(v, 1, 255).ok_or_else(|| fail("illegal mcast-ttl specified"))? as u8;
            }
            Switch::SyncMaxlen => {
                self.set(OptId::SyncMaxlen)?;
                self.daemon.maxlen = number_in(v, 1, 65535 - 20 - 8)
                    .ok_or_else(|| fail("illegal sync-maxlen specified"))?
                    as u16;
            }
            Switch::TunInfo => {
                self.set(OptId::TunInfo)?;
                self.format.tun_info = true;
            }
            Switch::TunType => {
                self.set(OptId::TunType)?;
                self.dest.tun_type = match v {
                    "ipip" => TunnelType::Ipip,
                    "gue" => TunnelType::Gue,
                    "gre" => TunnelType::Gre,
                    _ => return Err(fail("illegal tunnel type specified")),
                };
            }
            Switch::TunPort => {
                self.set(OptId::TunPort)?;
                self.dest.tun_port = number_in(v, 1, 65535)
                    .ok_or_else(|| fail("illegal tunnel port specified"))?
                    as u16;
            }
            Switch::TunNoCsum => self.set(OptId::TunNoCsum)?,
            Switch::TunCsum => self.set(OptId::TunCsum)?,
            Switch::TunRemCsum => self.set(OptId::TunRemCsum)?,
            Switch::Json => {
                self.set(OptId::Json)?;
                self.format.json = true;
            }
            Switch::Socket => self.socket(value)?,
            Switch::AddService
            | Switch::EditService
            | Switch::DelService
            | Switch::Clear
            | Switch::List
            | Switch::Zero
            | Switch::AddServer
            | Switch::EditServer
            | Switch::DelServer
            | Switch::Set
            | Switch::Help
            | Switch::Version
            | Switch::Restore
            | Switch::Save
            | Switch::StartDaemon
            | Switch::StopDaemon
            | Switch::Status
            | Switch::Sysctl
            | Switch::Drain
            | Switch::Undrain => return Ok(false),
        }
        Ok(true)
    }

    /// `-b`: applied once all options are known, since it depends on `-s`.
    pub(super) fn apply_sched_flags(&mut self) -> Result<(), CliError> {
        if let Some(arg) = self
            .svc
            .sched_flags_arg
            .as_deref()
            .filter(|a| !a.is_empty())
        {
            self.svc.sched_flags = parse_sched_flags(&self.svc.scheduler, arg)?;
        }
        Ok(())
    }

    pub(super) fn key(&self) -> Option<ServiceKey> {
        if self.svc.fwmark != 0 {
            return Some(ServiceKey::Fwmark {
                mark: self.svc.fwmark,
                family: self.svc.family.unwrap_or(Family::V4),
            });
        }
        self.svc.family?;
        Some(ServiceKey::Addr {
            proto: Protocol::from_number(self.svc.proto)?,
            addr: self.svc.addr,
            port: self.svc.port,
        })
    }

    pub(super) fn required_key(&self) -> ServiceKey {
        self.key()
            .expect("the legality check requires a service for this command")
    }

    pub(super) fn netmask(&self) -> Result<Netmask, CliError> {
        match self.svc.family {
            Some(Family::V6) => Ok(Netmask(self.svc.mask.min(128) as u8)),
            // The model keeps masks as prefixes, so a mask with holes is refused here
            // (ipvsadm passes it to the kernel, which would hash with it).
            _ => Netmask::from_dotted(Ipv4Addr::from(self.svc.mask))
                .ok_or_else(|| fail("illegal virtual server persistent mask specified")),
        }
    }
}
