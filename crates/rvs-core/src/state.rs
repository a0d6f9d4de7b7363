//! Connection states, the IPVS TCP transition tables and the per-state timeouts
//! (`ip_vs_proto_tcp.c`, `ip_vs_proto_udp.c`, `ip_vs_proto_sctp.c` of Linux 6.12).

use serde::{Deserialize, Serialize};

/// TCP connection states in kernel order (`IP_VS_TCP_S_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[repr(u8)]
pub enum TcpState {
    None = 0,
    Established = 1,
    SynSent = 2,
    SynRecv = 3,
    FinWait = 4,
    TimeWait = 5,
    Close = 6,
    CloseWait = 7,
    LastAck = 8,
    Listen = 9,
    SynAck = 10,
}

impl TcpState {
    pub const ALL: [TcpState; 11] = [
        TcpState::None,
        TcpState::Established,
        TcpState::SynSent,
        TcpState::SynRecv,
        TcpState::FinWait,
        TcpState::TimeWait,
        TcpState::Close,
        TcpState::CloseWait,
        TcpState::LastAck,
        TcpState::Listen,
        TcpState::SynAck,
    ];

    /// Name shown by `ipvsadm -Lc`.
    pub fn name(self) -> &'static str {
        match self {
            TcpState::None => "NONE",
            TcpState::Established => "ESTABLISHED",
            TcpState::SynSent => "SYN_SENT",
            TcpState::SynRecv => "SYN_RECV",
            TcpState::FinWait => "FIN_WAIT",
            TcpState::TimeWait => "TIME_WAIT",
            TcpState::Close => "CLOSE",
            TcpState::CloseWait => "CLOSE_WAIT",
            TcpState::LastAck => "LAST_ACK",
            TcpState::Listen => "LISTEN",
            TcpState::SynAck => "SYNACK",
        }
    }

    /// States that count in `activeconns` (`tcp_state_active`).
    pub fn is_active(self) -> bool {
        matches!(
            self,
            TcpState::Established | TcpState::SynSent | TcpState::SynRecv | TcpState::SynAck
        )
    }
}

/// Which half of the connection a packet belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Dir {
    /// Client to real server.
    In,
    /// Real server to client, seen by the director (NAT replies).
    Out,
}

/// TCP header flags the state machine looks at.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TcpFlags {
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
}

impl TcpFlags {
    pub const SYN: TcpFlags = TcpFlags {
        syn: true,
        ack: false,
        fin: false,
        rst: false,
    };
    pub const ACK: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: false,
        rst: false,
    };
    pub const FIN_ACK: TcpFlags = TcpFlags {
        syn: false,
        ack: true,
        fin: true,
        rst: false,
    };
    pub const RST: TcpFlags = TcpFlags {
        syn: false,
        ack: false,
        fin: false,
        rst: true,
    };
    pub const SYN_ACK: TcpFlags = TcpFlags {
        syn: true,
        ack: true,
        fin: false,
        rst: false,
    };

    /// From the flags byte of a TCP header.
    pub fn from_byte(b: u8) -> TcpFlags {
        TcpFlags {
            fin: b & 0x01 != 0,
            syn: b & 0x02 != 0,
            rst: b & 0x04 != 0,
            ack: b & 0x10 != 0,
        }
    }

    /// Event index by priority RST > SYN > FIN > ACK (`tcp_state_idx`); `None` = no flag.
    fn event(self) -> Option<usize> {
        if self.rst {
            Some(3)
        } else if self.syn {
            Some(0)
        } else if self.fin {
            Some(1)
        } else if self.ack {
            Some(2)
        } else {
            None
        }
    }
}

use TcpState::{
    Close as CL, CloseWait as CW, Established as ES, FinWait as FW, LastAck as LA, Listen as LI,
    SynAck as SA, SynRecv as SR, SynSent as SS, TimeWait as TW,
};

/// Rows: [syn, fin, ack, rst]; columns: current state in kernel order
/// NONE ES SS SR FW TW CL CW LA LI SA.
type Table = [[TcpState; 11]; 4];

const TCP_INPUT: Table = [
    /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, SR],
];

const TCP_OUTPUT: Table = [
    /*syn*/ [SS, ES, SS, SR, SS, SS, SS, SS, SS, LI, SR],
    /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];

const TCP_INPUT_ONLY: Table = [
    /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SR],
    /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// `secure_tcp` tables (`tcp_states_dos`): ESTABLISHED only after the whole handshake.
const TCP_INPUT_DOS: Table = [
    /*syn*/ [SR, ES, ES, SR, SR, SR, SR, SR, SR, SR, SA],
    /*fin*/ [CL, CW, SS, TW, TW, TW, CL, CW, LA, LI, SA],
    /*ack*/ [ES, ES, SS, SR, FW, TW, CL, CW, CL, LI, SA],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

const TCP_OUTPUT_DOS: Table = [
    /*syn*/ [SS, ES, SS, SA, SS, SS, SS, SS, SS, LI, SA],
    /*fin*/ [TW, FW, SS, TW, FW, TW, CL, TW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, LA, ES, ES],
    /*rst*/ [CL, CL, SS, CL, CL, TW, CL, CL, CL, CL, CL],
];

const TCP_INPUT_ONLY_DOS: Table = [
    /*syn*/ [SA, ES, ES, SR, SA, SA, SA, SA, SA, SA, SA],
    /*fin*/ [CL, FW, SS, TW, FW, TW, CL, CW, LA, LI, TW],
    /*ack*/ [ES, ES, SS, ES, FW, TW, CL, CW, CL, LI, ES],
    /*rst*/ [CL, CL, CL, SR, CL, CL, CL, CL, LA, LI, CL],
];

/// Next TCP state (`set_tcp_state`). `input_only` is true while the entry has NOOUTPUT
/// (DR/TUN, where the director never sees replies). A segment with none of RST/SYN/FIN/ACK
/// moves the entry to CLOSE.
pub fn tcp_next(
    cur: TcpState,
    dir: Dir,
    input_only: bool,
    flags: TcpFlags,
    secure: bool,
) -> TcpState {
    let Some(ev) = flags.event() else {
        return TcpState::Close;
    };
    let table = match (dir, input_only, secure) {
        (Dir::Out, _, false) => &TCP_OUTPUT,
        (Dir::Out, _, true) => &TCP_OUTPUT_DOS,
        (Dir::In, true, false) => &TCP_INPUT_ONLY,
        (Dir::In, true, true) => &TCP_INPUT_ONLY_DOS,
        (Dir::In, false, false) => &TCP_INPUT,
        (Dir::In, false, true) => &TCP_INPUT_DOS,
    };
    table[ev][cur as usize]
}

/// State of a connection entry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ConnState {
    Tcp(TcpState),
    /// UDP has a single state, shown as `UDP`.
    Udp,
    /// SCTP entries: rvs tracks them only coarsely (no data plane forwards SCTP yet).
    Sctp(SctpState),
    /// Persistence template; `assured` once a child reached ESTABLISHED.
    Template {
        assured: bool,
    },
}

impl ConnState {
    pub fn name(self) -> &'static str {
        match self {
            ConnState::Tcp(s) => s.name(),
            ConnState::Udp => "UDP",
            ConnState::Sctp(s) => s.name(),
            ConnState::Template { assured: false } => "NONE",
            ConnState::Template { assured: true } => "ASSURED",
        }
    }

    pub fn is_active(self) -> bool {
        match self {
            ConnState::Tcp(s) => s.is_active(),
            ConnState::Sctp(s) => s == SctpState::Established,
            _ => false,
        }
    }
}

/// SCTP states as the kernel names them; rvs moves INIT → ESTABLISHED → CLOSED only.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum SctpState {
    None,
    Init,
    Established,
    Closed,
}

impl SctpState {
    pub fn name(self) -> &'static str {
        match self {
            SctpState::None => "NONE",
            SctpState::Init => "INIT",
            SctpState::Established => "ESTABLISHED",
            SctpState::Closed => "CLOSED",
        }
    }
}

/// Per-state timeouts in seconds. `ipvsadm --set tcp tcpfin udp` changes three of them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Timeouts {
    /// Indexed by [`TcpState`].
    pub tcp: [u32; 11],
    pub udp: u32,
    pub sctp_init: u32,
    pub sctp_established: u32,
    pub sctp_closed: u32,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            // NONE ES SS SR FW TW CL CW LA LI SA
            tcp: [2, 900, 120, 60, 120, 120, 10, 60, 30, 120, 120],
            udp: 300,
            sctp_init: 61,
            sctp_established: 900,
            sctp_closed: 61,
        }
    }
}

impl Timeouts {
    pub fn of(&self, state: ConnState) -> u32 {
        match state {
            ConnState::Tcp(s) => self.tcp[s as usize],
            ConnState::Udp => self.udp,
            ConnState::Sctp(SctpState::None) => 2,
            ConnState::Sctp(SctpState::Init) => self.sctp_init,
            ConnState::Sctp(SctpState::Established) => self.sctp_established,
            ConnState::Sctp(SctpState::Closed) => self.sctp_closed,
            // Templates carry the service's persistence timeout.
            ConnState::Template { .. } => 0,
        }
    }

    /// The three values of `ipvsadm --timeout`: tcp (ESTABLISHED), tcpfin (FIN_WAIT), udp.
    pub fn triple(&self) -> (u32, u32, u32) {
        (
            self.tcp[TcpState::Established as usize],
            self.tcp[TcpState::FinWait as usize],
            self.udp,
        )
    }

    /// `ipvsadm --set`: 0 leaves a value unchanged.
    pub fn set_triple(&mut self, tcp: u32, tcpfin: u32, udp: u32) {
        if tcp != 0 {
            self.tcp[TcpState::Established as usize] = tcp;
        }
        if tcpfin != 0 {
            self.tcp[TcpState::FinWait as usize] = tcpfin;
        }
        if udp != 0 {
            self.udp = udp;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(start: TcpState, steps: &[(Dir, TcpFlags)], input_only: bool) -> Vec<TcpState> {
        let mut s = start;
        steps
            .iter()
            .map(|(d, f)| {
                s = tcp_next(s, *d, input_only, *f, false);
                s
            })
            .collect()
    }

    #[test]
    fn dr_handshake_and_client_close_walks_the_input_only_table() {
        // semantics.md §2: client SYN → SYN_RECV, ACK → ESTABLISHED, FIN → FIN_WAIT.
        let got = run(
            TcpState::None,
            &[
                (Dir::In, TcpFlags::SYN),
                (Dir::In, TcpFlags::ACK),
                (Dir::In, TcpFlags::FIN_ACK),
                (Dir::In, TcpFlags::ACK),
            ],
            true,
        );
        assert_eq!(got, vec![SR, ES, FW, FW]);
    }

    #[test]
    fn nat_close_orders_reach_time_wait_both_ways() {
        // client FIN first → CLOSE_WAIT, then server FIN → TIME_WAIT
        let got = run(
            ES,
            &[(Dir::In, TcpFlags::FIN_ACK), (Dir::Out, TcpFlags::FIN_ACK)],
            false,
        );
        assert_eq!(got, vec![CW, TW]);
        // server FIN first → FIN_WAIT, then client FIN → TIME_WAIT
        let got = run(
            ES,
            &[(Dir::Out, TcpFlags::FIN_ACK), (Dir::In, TcpFlags::FIN_ACK)],
            false,
        );
        assert_eq!(got, vec![FW, TW]);
    }

    #[test]
    fn rst_beats_syn_and_no_flags_closes() {
        let rst_syn = TcpFlags {
            syn: true,
            rst: true,
            ..Default::default()
        };
        assert_eq!(tcp_next(ES, Dir::In, false, rst_syn, false), CL);
        assert_eq!(tcp_next(ES, Dir::In, false, TcpFlags::default(), false), CL);
    }

    #[test]
    fn secure_tcp_needs_the_server_synack_before_established() {
        // With secure_tcp, input-only SYN goes to SYNACK... and a bare client ACK in SYN_RECV
        // stays SYN_RECV in the normal-direction table.
        assert_eq!(tcp_next(SR, Dir::In, false, TcpFlags::ACK, true), SR);
        assert_eq!(tcp_next(SR, Dir::Out, false, TcpFlags::SYN_ACK, true), SA);
        assert_eq!(tcp_next(SA, Dir::In, false, TcpFlags::ACK, true), SA);
    }

    #[test]
    fn last_ack_and_listen_are_only_reached_from_themselves() {
        for t in [&TCP_INPUT, &TCP_OUTPUT, &TCP_INPUT_ONLY] {
            for row in t.iter() {
                for (col, next) in row.iter().enumerate() {
                    if *next == LA {
                        assert_eq!(col, LA as usize);
                    }
                    if *next == LI {
                        assert_eq!(col, LI as usize);
                    }
                }
            }
        }
    }

    #[test]
    fn set_triple_zero_keeps_value() {
        let mut t = Timeouts::default();
        t.set_triple(0, 30, 0);
        assert_eq!(t.triple(), (900, 30, 300));
    }
}
