//! keepalived's command line, where it applies to rvsd (keepalived 2.2 `--help`), so a
//! keepalived unit, script or habit carries over. rvsd is one process (no VRRP and checker
//! children), stays in the foreground unless `--fork` asks otherwise, and refuses the
//! keepalived options it does not implement instead of ignoring them.

use std::path::PathBuf;

/// keepalived's `-S`: `0`..`7` or `local0`..`local7` (LOG_LOCALn), `user`, `daemon`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facility(pub libc::c_int);

impl std::str::FromStr for Facility {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let local = [
            libc::LOG_LOCAL0,
            libc::LOG_LOCAL1,
            libc::LOG_LOCAL2,
            libc::LOG_LOCAL3,
            libc::LOG_LOCAL4,
            libc::LOG_LOCAL5,
            libc::LOG_LOCAL6,
            libc::LOG_LOCAL7,
        ];
        let n = s.strip_prefix("local").unwrap_or(s);
        if let Ok(i) = n.parse::<usize>() {
            return local
                .get(i)
                .map(|f| Facility(*f))
                .ok_or_else(|| format!("facility {s:?}: 0-7, local0-local7, user or daemon"));
        }
        match s {
            "user" => Ok(Facility(libc::LOG_USER)),
            "daemon" => Ok(Facility(libc::LOG_DAEMON)),
            _ => Err(format!(
                "facility {s:?}: 0-7, local0-local7, user or daemon"
            )),
        }
    }
}

#[derive(Clone, Debug, clap::Args)]
pub struct KeepalivedArgs {
    /// Only run the VRRP subsystem of keepalived.conf: no virtual servers, no health
    /// checkers (keepalived -P).
    #[arg(short = 'P', long = "vrrp", conflicts_with = "check_only")]
    pub vrrp_only: bool,

    /// Only run the health-checker subsystem of keepalived.conf: virtual servers and
    /// checkers, no VRRP (keepalived -C).
    #[arg(short = 'C', long = "check")]
    pub check_only: bool,

    /// Log to the console (stderr) as well as to syslog/journald (keepalived -l).
    #[arg(short = 'l', long = "log-console")]
    pub log_console: bool,

    /// Detailed log messages: debug messages of rvs and the source of each (keepalived -D).
    #[arg(short = 'D', long = "log-detail")]
    pub log_detail: bool,

    /// Log to syslog with this facility: 0-7 or local0-local7 (LOG_LOCALn), user, daemon
    /// (keepalived -S).
    #[arg(short = 'S', long = "log-facility", value_name = "FACILITY")]
    pub log_facility: Option<Facility>,

    /// Do not log to syslog (keepalived -G).
    #[arg(short = 'G', long = "no-syslog")]
    pub no_syslog: bool,

    /// Stay in the foreground. This is rvsd's default (systemd's Type=notify, scripts and
    /// tests rely on it); accepted so keepalived's command lines work (keepalived -n).
    #[arg(short = 'n', long = "dont-fork", conflicts_with = "fork")]
    pub dont_fork: bool,

    /// Fork into the background as keepalived does by default; the parent exits once
    /// the daemon is ready (0) or failed (1). Logs go to syslog unless -l.
    #[arg(long)]
    pub fork: bool,

    /// Log the loaded keepalived.conf at start (keepalived -d).
    #[arg(short = 'd', long = "dump-conf")]
    pub dump_conf: bool,

    /// PID file of the daemon (keepalived -p). rvsd refuses to start while the file names
    /// a running process, and removes it on exit.
    #[arg(short = 'p', long = "pid", value_name = "FILE")]
    pub pid: Option<PathBuf>,

    /// PID file written while VRRP runs (keepalived -r; rvsd is one process: its own PID).
    #[arg(short = 'r', long = "vrrp_pid", value_name = "FILE")]
    pub vrrp_pid: Option<PathBuf>,

    /// PID file written while the health checkers run (keepalived -c; rvsd's own PID).
    #[arg(short = 'c', long = "checkers_pid", value_name = "FILE")]
    pub checkers_pid: Option<PathBuf>,

    /// Skip `@id` lines of keepalived.conf that do not match ID (keepalived -i; default:
    /// the host name up to its first dot).
    #[arg(short = 'i', long = "config-id", value_name = "ID")]
    pub config_id: Option<String>,

    /// Run in the network namespace NAME (/run/netns/NAME), as keepalived -s: unlike
    /// `ip netns exec`, the host's bpffs stays visible, so pinned XDP maps survive a
    /// restart.
    #[arg(short = 's', long = "namespace", value_name = "NAME")]
    pub namespace: Option<String>,

    /// umask for the files rvsd creates, in octal (keepalived -u).
    #[arg(short = 'u', long = "umask", value_name = "MASK")]
    pub umask: Option<String>,

    /// Never respawn children (keepalived -R): rvsd has none, accepted for compatibility.
    #[arg(short = 'R', long = "dont-respawn")]
    pub dont_respawn: bool,

    /// Keep the virtual servers when rvsd stops (keepalived -I). rvsd always does: its
    /// table and the XDP plane outlive it until the next rvsd adopts them.
    #[arg(short = 'I', long = "dont-release-ipvs")]
    pub dont_release_ipvs: bool,

    /// Print the number of a keepalived signal (STOP, RELOAD, DATA, STATS, STATS_CLEAR,
    /// JSON) and exit, as `keepalived --signum` (tools such as keepalived-exporter ask it).
    #[arg(long = "signum", value_name = "SIGFUNC")]
    pub signum: Option<String>,

    /// Directory of the SIGUSR1/SIGUSR2/JSON dumps (keepalived writes /tmp).
    #[arg(long = "dump-dir", value_name = "DIR", default_value = crate::dumps::DEFAULT_DIR)]
    pub dump_dir: PathBuf,

    // keepalived options rvsd does not implement: refused by name rather than ignored.
    #[arg(short = 'X', long = "release-vips", hide = true)]
    pub release_vips: bool,
    #[arg(short = 'V', long = "dont-release-vrrp", hide = true)]
    pub dont_release_vrrp: bool,
    #[arg(short = 'x', long = "snmp", hide = true)]
    pub snmp: bool,
    #[arg(short = 'm', long = "core-dump", hide = true)]
    pub core_dump: bool,
}

impl KeepalivedArgs {
    /// The keepalived options given that rvsd does not implement, with why.
    pub fn refused(&self) -> Option<String> {
        let (opt, why) = if self.release_vips {
            (
                "-X/--release-vips",
                "VIPs are released only by VRRP transitions",
            )
        } else if self.dont_release_vrrp {
            (
                "-V/--dont-release-vrrp",
                "a stopping master always releases its VIPs and sends priority 0",
            )
        } else if self.snmp {
            (
                "-x/--snmp",
                "there is no SNMP agent; use the Prometheus metrics (--metrics)",
            )
        } else if self.core_dump {
            (
                "-m/--core-dump",
                "set the core limit with ulimit or systemd's LimitCORE=",
            )
        } else {
            return None;
        };
        Some(format!("{opt} is not supported by rvsd: {why}"))
    }

    /// The umask given with -u, parsed as octal.
    pub fn umask(&self) -> Result<Option<libc::mode_t>, String> {
        self.umask
            .as_deref()
            .map(|m| {
                libc::mode_t::from_str_radix(m.trim_start_matches("0o"), 8)
                    .ok()
                    .filter(|v| *v <= 0o777)
                    .ok_or_else(|| format!("-u {m}: an octal mask such as 022"))
            })
            .transpose()
    }
}
