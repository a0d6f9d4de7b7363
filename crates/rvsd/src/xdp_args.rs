//! rvsd's command-line options for the XDP plane (flattened into `rvsd`'s own) and the
//! construction of the plane from them.

use rvs_dataplane::Shared;
use rvs_xdp::loader::{self, AttachMode};
use rvs_xdp::{abi, XdpError, XdpOptions, XdpPlane};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModeArg {
    /// Native (driver) XDP where the driver has it, generic otherwise.
    Auto,
    Native,
    Generic,
}

/// `rvsd` options of the XDP data plane.
#[derive(Clone, Debug, clap::Args)]
pub struct XdpArgs {
    /// XDP plane: an interface to attach to (repeat for a second, server-facing one). IP
    /// forwarding is turned on for it.
    #[arg(long = "interface", value_name = "IF")]
    pub interfaces: Vec<String>,

    /// XDP plane: attach mode.
    #[arg(long, value_enum, default_value_t = ModeArg::Auto)]
    pub xdp_mode: ModeArg,

    /// XDP plane: bpffs directory for the pinned program, links and maps (a restarted rvsd
    /// adopts them: no flow is dropped).
    #[arg(long, value_name = "DIR", default_value = loader::DEFAULT_PIN_DIR)]
    pub xdp_pin_dir: PathBuf,

    /// XDP plane: capacity of the connection table (per address family), for a new table.
    #[arg(long, value_name = "N", default_value_t = abi::RVS_CONN_MAX_DEFAULT)]
    pub xdp_conn_max: u32,

    /// XDP plane: detach and remove every pin when rvsd exits (by default forwarding goes
    /// on while rvsd is down, and the next rvsd adopts it).
    #[arg(long)]
    pub xdp_detach_on_exit: bool,

    /// XDP plane: seconds a restarted rvsd keeps adopted services it was not (yet) given.
    #[arg(long, value_name = "SECS", default_value_t = 30)]
    pub xdp_adopt_grace: u64,

    /// Remove the XDP plane's pins (detaching it and dropping its flows) and exit.
    #[arg(long)]
    pub xdp_unpin: bool,
}

impl XdpArgs {
    pub fn options(&self) -> XdpOptions {
        XdpOptions {
            interfaces: self.interfaces.clone(),
            mode: match self.xdp_mode {
                ModeArg::Auto => AttachMode::Auto,
                ModeArg::Native => AttachMode::Native,
                ModeArg::Generic => AttachMode::Generic,
            },
            pin_dir: self.xdp_pin_dir.clone(),
            conn_max: self.xdp_conn_max,
            detach_on_exit: self.xdp_detach_on_exit,
            adopt_grace: Duration::from_secs(self.xdp_adopt_grace),
            ..XdpOptions::default()
        }
    }

    /// Why XDP cannot be used here, if it cannot (what `--dataplane auto` checks):
    /// root, BTF, an interface, and bpffs (mounted on demand).
    pub fn unavailable(&self) -> Option<String> {
        // SAFETY: geteuid has no preconditions.
        if unsafe { libc::geteuid() } != 0 {
            return Some("not root".into());
        }
        if !Path::new("/sys/kernel/btf/vmlinux").exists() {
            return Some("the kernel has no BTF (/sys/kernel/btf/vmlinux)".into());
        }
        if self.interfaces.is_empty() {
            return Some("no --interface given".into());
        }
        if let Some(i) = self
            .interfaces
            .iter()
            .find(|i| loader::ifindex(i).is_none())
        {
            return Some(format!("no interface {i}"));
        }
        if let Err(e) = loader::ensure_bpffs() {
            return Some(e.to_string());
        }
        None
    }

    /// `--xdp-unpin`: removes the pins of the pin directory.
    ///
    /// # Errors
    /// When the pins cannot be removed.
    pub fn unpin(&self) -> std::io::Result<()> {
        let r = rvs_xdp::pinning::resolve(
            &self.xdp_pin_dir,
            self.xdp_pin_dir == Path::new(loader::DEFAULT_PIN_DIR),
            true,
        );
        loader::unpin_all(&r.dir)
    }
}

/// Builds the XDP plane for rvsd.
///
/// # Errors
/// See [`XdpPlane::new`].
pub fn build(args: &XdpArgs, shared: &Arc<Shared>) -> rvs_xdp::Result<XdpPlane> {
    if args.interfaces.is_empty() {
        return Err(XdpError::Other(
            "the XDP data plane needs --interface IF (the client-facing interface; repeat for a server-facing one)".into(),
        ));
    }
    let mut opts = args.options();
    let r = rvs_xdp::pinning::resolve(
        &opts.pin_dir,
        args.xdp_pin_dir == Path::new(loader::DEFAULT_PIN_DIR),
        opts.detach_on_exit,
    );
    if let Some(n) = &r.note {
        tracing::info!("{n}");
    }
    if let Some(w) = &r.warning {
        tracing::warn!("{w}");
    }
    opts.pin_dir = r.dir;
    XdpPlane::new(shared.clone(), opts)
}
