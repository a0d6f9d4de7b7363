//! The option vocabulary of ipvsadm 1.31 as data: what a user can type (`Switch`, with
//! its long name, short letter and argument kind), the commands they select ([`Cmd`]), and
//! the option classes the legality rules talk about ([`OptId`], whose names appear in
//! messages such as `Illegal 'weight' option with the 'delete-server' command`).

/// Whether a switch takes a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ArgKind {
    None,
    Required,
    /// `-p [timeout]`: the value is taken only if the next word does not start with `-`.
    Optional,
}

/// Everything a user can type, one variant per entry of ipvsadm's option table (plus the
/// rvs extensions at the end).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Switch {
    AddService,
    EditService,
    DelService,
    Clear,
    List,
    Zero,
    AddServer,
    EditServer,
    DelServer,
    Set,
    Help,
    Version,
    Restore,
    Save,
    StartDaemon,
    StopDaemon,
    Tcp,
    Udp,
    Sctp,
    Fwmark,
    Scheduler,
    Persistent,
    Netmask,
    RealServer,
    Masquerading,
    Ipip,
    Gatewaying,
    Weight,
    UThreshold,
    LThreshold,
    Numeric,
    Connection,
    McastInterface,
    SyncId,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    Sort,
    Exact,
    Ipv6,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
    // rvs extensions
    Status,
    Sysctl,
    Drain,
    Undrain,
    Json,
    Socket,
}

pub(crate) struct Spec {
    pub long: &'static str,
    pub short: Option<u8>,
    pub arg: ArgKind,
    pub switch: Switch,
}

const fn spec(long: &'static str, short: Option<u8>, arg: ArgKind, switch: Switch) -> Spec {
    Spec {
        long,
        short,
        arg,
        switch,
    }
}

use ArgKind::{None as NoArg, Optional as OptArg, Required as ReqArg};

/// Lookup order matters only for `--list`, which both `-L` and `-l` carry.
pub(crate) static TABLE: &[Spec] = &[
    spec("add-service", Some(b'A'), NoArg, Switch::AddService),
    spec("edit-service", Some(b'E'), NoArg, Switch::EditService),
    spec("delete-service", Some(b'D'), NoArg, Switch::DelService),
    spec("clear", Some(b'C'), NoArg, Switch::Clear),
    spec("list", Some(b'L'), NoArg, Switch::List),
    spec("list", Some(b'l'), NoArg, Switch::List),
    spec("zero", Some(b'Z'), NoArg, Switch::Zero),
    spec("add-server", Some(b'a'), NoArg, Switch::AddServer),
    spec("edit-server", Some(b'e'), NoArg, Switch::EditServer),
    spec("delete-server", Some(b'd'), NoArg, Switch::DelServer),
    spec("set", None, NoArg, Switch::Set),
    spec("help", Some(b'h'), NoArg, Switch::Help),
    spec("version", Some(b'v'), NoArg, Switch::Version),
    spec("restore", Some(b'R'), NoArg, Switch::Restore),
    spec("save", Some(b'S'), NoArg, Switch::Save),
    spec("start-daemon", None, ReqArg, Switch::StartDaemon),
    spec("stop-daemon", None, ReqArg, Switch::StopDaemon),
    spec("tcp-service", Some(b't'), ReqArg, Switch::Tcp),
    spec("udp-service", Some(b'u'), ReqArg, Switch::Udp),
    spec("sctp-service", None, ReqArg, Switch::Sctp),
    spec("fwmark-service", Some(b'f'), ReqArg, Switch::Fwmark),
    spec("scheduler", Some(b's'), ReqArg, Switch::Scheduler),
    spec("persistent", Some(b'p'), OptArg, Switch::Persistent),
    spec("netmask", Some(b'M'), ReqArg, Switch::Netmask),
    spec("real-server", Some(b'r'), ReqArg, Switch::RealServer),
    spec("masquerading", Some(b'm'), NoArg, Switch::Masquerading),
    spec("ipip", Some(b'i'), NoArg, Switch::Ipip),
    spec("gatewaying", Some(b'g'), NoArg, Switch::Gatewaying),
    spec("weight", Some(b'w'), ReqArg, Switch::Weight),
    spec("u-threshold", Some(b'x'), ReqArg, Switch::UThreshold),
    spec("l-threshold", Some(b'y'), ReqArg, Switch::LThreshold),
    spec("numeric", Some(b'n'), NoArg, Switch::Numeric),
    spec("connection", Some(b'c'), NoArg, Switch::Connection),
    spec("mcast-interface", None, ReqArg, Switch::McastInterface),
    spec("syncid", None, ReqArg, Switch::SyncId),
    spec("timeout", None, NoArg, Switch::Timeout),
    spec("daemon", None, NoArg, Switch::Daemon),
    spec("stats", None, NoArg, Switch::Stats),
    spec("rate", None, NoArg, Switch::Rate),
    spec("thresholds", None, NoArg, Switch::Thresholds),
    spec("persistent-conn", None, NoArg, Switch::PersistentConn),
    spec("nosort", None, NoArg, Switch::NoSort),
    spec("sort", None, NoArg, Switch::Sort),
    spec("exact", Some(b'X'), NoArg, Switch::Exact),
    spec("ipv6", Some(b'6'), NoArg, Switch::Ipv6),
    spec("ops", Some(b'o'), NoArg, Switch::Ops),
    spec("pe", None, ReqArg, Switch::Pe),
    spec("sched-flags", Some(b'b'), ReqArg, Switch::SchedFlags),
    spec("mcast-group", None, ReqArg, Switch::McastGroup),
    spec("mcast-port", None, ReqArg, Switch::McastPort),
    spec("mcast-ttl", None, ReqArg, Switch::McastTtl),
    spec("sync-maxlen", None, ReqArg, Switch::SyncMaxlen),
    spec("tun-info", None, NoArg, Switch::TunInfo),
    spec("tun-type", None, ReqArg, Switch::TunType),
    spec("tun-port", None, ReqArg, Switch::TunPort),
    spec("tun-nocsum", None, NoArg, Switch::TunNoCsum),
    spec("tun-csum", None, NoArg, Switch::TunCsum),
    spec("tun-remcsum", None, NoArg, Switch::TunRemCsum),
    spec("status", None, NoArg, Switch::Status),
    spec("sysctl", None, ReqArg, Switch::Sysctl),
    spec("drain", None, NoArg, Switch::Drain),
    spec("undrain", None, NoArg, Switch::Undrain),
    spec("json", None, NoArg, Switch::Json),
    spec("socket", None, ReqArg, Switch::Socket),
];

pub(crate) fn find_long(name: &str) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.long == name)
}

pub(crate) fn find_short(c: u8) -> Option<&'static Spec> {
    TABLE.iter().find(|s| s.short == Some(c))
}

/// The commands, named as ipvsadm names them in its messages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Cmd {
    AddService,
    EditService,
    DelService,
    Flush,
    List,
    AddServer,
    DelServer,
    EditServer,
    SetTimeout,
    StartDaemon,
    StopDaemon,
    Restore,
    Save,
    Zero,
    /// rvs extension: `--status`.
    Status,
    /// rvs extension: `--sysctl NAME[=VALUE]|all`.
    Sysctl,
    /// rvs extension: `--drain` (a fleet director withdraws its addresses).
    Drain,
    /// rvs extension: `--undrain`.
    Undrain,
}

impl Cmd {
    pub fn name(self) -> &'static str {
        match self {
            Cmd::AddService => "add-service",
            Cmd::EditService => "edit-service",
            Cmd::DelService => "delete-service",
            Cmd::Flush => "flush",
            Cmd::List => "list",
            Cmd::AddServer => "add-server",
            Cmd::DelServer => "delete-server",
            Cmd::EditServer => "edit-server",
            Cmd::SetTimeout => "set",
            Cmd::StartDaemon => "start-daemon",
            Cmd::StopDaemon => "stop-daemon",
            Cmd::Restore => "restore",
            Cmd::Save => "save",
            Cmd::Zero => "zero",
            Cmd::Status => "status",
            Cmd::Sysctl => "sysctl",
            Cmd::Drain => "drain",
            Cmd::Undrain => "undrain",
        }
    }
}

impl Switch {
    /// The command a switch selects when it comes first (`-h`/`-v` are handled apart).
    pub(crate) fn command(self) -> Option<Cmd> {
        Some(match self {
            Switch::AddService => Cmd::AddService,
            Switch::EditService => Cmd::EditService,
            Switch::DelService => Cmd::DelService,
            Switch::Clear => Cmd::Flush,
            Switch::List => Cmd::List,
            Switch::Zero => Cmd::Zero,
            Switch::AddServer => Cmd::AddServer,
            Switch::EditServer => Cmd::EditServer,
            Switch::DelServer => Cmd::DelServer,
            Switch::Set => Cmd::SetTimeout,
            Switch::Restore => Cmd::Restore,
            Switch::Save => Cmd::Save,
            Switch::StartDaemon => Cmd::StartDaemon,
            Switch::StopDaemon => Cmd::StopDaemon,
            Switch::Status => Cmd::Status,
            Switch::Sysctl => Cmd::Sysctl,
            Switch::Drain => Cmd::Drain,
            Switch::Undrain => Cmd::Undrain,
            _ => return None,
        })
    }
}

/// Option classes, in ipvsadm's order: the legality check walks them in this order, so the
/// first offending class is the one reported.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum OptId {
    Numeric,
    Connection,
    Service,
    Scheduler,
    Persistent,
    Netmask,
    Server,
    Forward,
    Weight,
    UThreshold,
    LThreshold,
    McastInterface,
    Timeout,
    Daemon,
    Stats,
    Rate,
    Thresholds,
    PersistentConn,
    NoSort,
    SyncId,
    Exact,
    Ops,
    Pe,
    SchedFlags,
    McastGroup,
    McastPort,
    McastTtl,
    SyncMaxlen,
    TunInfo,
    TunType,
    TunPort,
    TunNoCsum,
    TunCsum,
    TunRemCsum,
    Json,
    Socket,
}

impl OptId {
    pub const ALL: [OptId; 36] = [
        OptId::Numeric,
        OptId::Connection,
        OptId::Service,
        OptId::Scheduler,
        OptId::Persistent,
        OptId::Netmask,
        OptId::Server,
        OptId::Forward,
        OptId::Weight,
        OptId::UThreshold,
        OptId::LThreshold,
        OptId::McastInterface,
        OptId::Timeout,
        OptId::Daemon,
        OptId::Stats,
        OptId::Rate,
        OptId::Thresholds,
        OptId::PersistentConn,
        OptId::NoSort,
        OptId::SyncId,
        OptId::Exact,
        OptId::Ops,
        OptId::Pe,
        OptId::SchedFlags,
        OptId::McastGroup,
        OptId::McastPort,
        OptId::McastTtl,
        OptId::SyncMaxlen,
        OptId::TunInfo,
        OptId::TunType,
        OptId::TunPort,
        OptId::TunNoCsum,
        OptId::TunCsum,
        OptId::TunRemCsum,
        OptId::Json,
        OptId::Socket,
    ];

    pub fn name(self) -> &'static str {
        match self {
            OptId::Numeric => "numeric",
            OptId::Connection => "connection",
            OptId::Service => "service-address",
            OptId::Scheduler => "scheduler",
            OptId::Persistent => "persistent",
            OptId::Netmask => "netmask",
            OptId::Server => "real-server",
            OptId::Forward => "forwarding-method",
            OptId::Weight => "weight",
            OptId::UThreshold => "u-threshold",
            OptId::LThreshold => "l-threshold",
            OptId::McastInterface => "mcast-interface",
            OptId::Timeout => "timeout",
            OptId::Daemon => "daemon",
            OptId::Stats => "stats",
            OptId::Rate => "rate",
            OptId::Thresholds => "thresholds",
            OptId::PersistentConn => "persistent-conn",
            OptId::NoSort => "nosort",
            OptId::SyncId => "syncid",
            OptId::Exact => "exact",
            OptId::Ops => "ops",
            OptId::Pe => "pe",
            OptId::SchedFlags => "sched-flags",
            OptId::McastGroup => "mcast-group",
            OptId::McastPort => "mcast-port",
            OptId::McastTtl => "mcast-ttl",
            OptId::SyncMaxlen => "sync-maxlen",
            OptId::TunInfo => "tun-info",
            OptId::TunType => "tun-type",
            OptId::TunPort => "tun-port",
            OptId::TunNoCsum => "tun-nocsum",
            OptId::TunCsum => "tun-csum",
            OptId::TunRemCsum => "tun-remcsum",
            OptId::Json => "json",
            OptId::Socket => "socket",
        }
    }

    fn bit(self) -> u64 {
        1u64 << (self as u32)
    }
}

/// The set of option classes given on one command line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct OptSet(u64);

impl OptSet {
    pub fn contains(self, id: OptId) -> bool {
        self.0 & id.bit() != 0
    }

    /// Adds `id`; false if it was already there.
    pub fn insert(&mut self, id: OptId) -> bool {
        let fresh = !self.contains(id);
        self.0 |= id.bit();
        fresh
    }

    pub fn any(self, ids: &[OptId]) -> bool {
        ids.iter().any(|&id| self.contains(id))
    }
}
