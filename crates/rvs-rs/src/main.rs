//! `rvs-rs`: prepares a real server for LVS/DR or LVS/TUN and undoes it (`rvs-rs --help`).

use anyhow::Result;
use clap::{Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;

#[derive(Parser)]
#[command(
    name = "rvs-rs",
    about = "rvs real-server helper: VIPs on lo, ARP settings, tunnel decapsulation"
)]
struct Args {
    /// Where the changes are recorded, so `stop` can undo exactly them.
    #[arg(long, default_value = rvs_rs::DEFAULT_STATE)]
    state: PathBuf,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Direct routing: the VIPs on lo (/32, /128); arp_ignore=1, arp_announce=2 on lo and all.
    Dr {
        #[command(subcommand)]
        action: Action,
    },
    /// Tunnelling: as dr, plus the decapsulating tc program on the interface.
    Tun {
        #[command(subcommand)]
        action: TunAction,
    },
    /// Undoes whatever `dr start` / `tun start` did.
    Stop,
}

#[derive(Subcommand)]
enum Action {
    Start {
        #[arg(long = "vip", required = true)]
        vips: Vec<IpAddr>,
    },
    Stop,
}

#[derive(Subcommand)]
enum TunAction {
    Start {
        #[arg(long = "vip", required = true)]
        vips: Vec<IpAddr>,
        /// The interface tunnelled packets arrive on.
        #[arg(long)]
        interface: String,
        /// UDP ports of GUE tunnels to open (the director's --tun-port).
        #[arg(long = "gue-port")]
        gue_ports: Vec<u16>,
        /// bpffs directory for the decap program's pins.
        #[arg(long, default_value = rvs_rs::DEFAULT_PIN_DIR)]
        pin_dir: PathBuf,
    },
    Stop,
}

fn main() -> Result<()> {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(what) = rvs_docs::requested(&argv) {
        use clap::CommandFactory;
        return Ok(rvs_docs::generate(Args::command(), "8", what)?);
    }
    let args = Args::parse();
    match args.cmd {
        Cmd::Dr {
            action: Action::Start { vips },
        } => {
            rvs_rs::dr_start(&args.state, &vips)?;
            println!("rvs-rs: DR real server ready for {}", list(&vips));
        }
        Cmd::Tun {
            action:
                TunAction::Start {
                    vips,
                    interface,
                    gue_ports,
                    pin_dir,
                },
        } => {
            rvs_rs::tun_start(&args.state, &pin_dir, &interface, &vips, &gue_ports)?;
            println!(
                "rvs-rs: TUN real server ready for {} (decap on {interface})",
                list(&vips)
            );
        }
        Cmd::Dr {
            action: Action::Stop,
        }
        | Cmd::Tun {
            action: TunAction::Stop,
        }
        | Cmd::Stop => {
            rvs_rs::stop(&args.state)?;
            println!("rvs-rs: stopped");
        }
    }
    Ok(())
}

fn list(v: &[IpAddr]) -> String {
    v.iter()
        .map(|a| a.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
