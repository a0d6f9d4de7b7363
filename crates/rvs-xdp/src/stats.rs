//! Reading the counters the program keeps: per-CPU traffic per real server (added to the
//! table so that `--stats`, `--rate` and `-Z` work as for any data plane), the outcome
//! codes, and each server slot's connection counts (one shared array, `rvs_dest_state`).

use crate::abi::{self, Plain};
use crate::error::{map_err, Result};
use crate::loader::Director;
use crate::sys::possible_cpus;

/// A real server's traffic counters summed over the CPUs.
pub fn dest_stats(dir: &Director, slot: u16) -> Result<abi::DestStats> {
    let m = &dir.maps.dest_stats;
    let mut buf = vec![0u8; m.value_len()];
    m.lookup(&(slot as u32).to_ne_bytes(), &mut buf, 0)
        .map_err(map_err("rvs_dest_stats"))?;
    let stride = size_of::<abi::DestStats>().div_ceil(8) * 8;
    let mut sum = abi::DestStats::default();
    for cpu in 0..possible_cpus() {
        sum.add(&abi::DestStats::from_bytes(&buf[cpu * stride..]));
    }
    Ok(sum)
}

/// Reads a dest slot's shared counters.
pub fn dest_counts(dir: &Director, slot: u16) -> abi::DestState {
    let base = slot as usize * size_of::<abi::DestState>();
    let m = &dir.maps.dest_state_mem;
    let ld = |o: usize| {
        m.u32_at(base + o)
            .load(std::sync::atomic::Ordering::Relaxed)
    };
    abi::DestState {
        active: ld(0),
        inactive: ld(4),
        persist: ld(8),
        overloaded: ld(12),
        neigh_wanted: ld(16),
        pad: 0,
    }
}

/// Writes one u32 field (byte offset `off`) of a dest slot's shared counters.
pub(crate) fn store_dest_field(dir: &Director, slot: u16, off: usize, v: u32) {
    let base = slot as usize * size_of::<abi::DestState>();
    dir.maps
        .dest_state_mem
        .u32_at(base + off)
        .store(v, std::sync::atomic::Ordering::Relaxed);
}

pub fn clear_neigh_wanted(dir: &Director, slot: u16) {
    store_dest_field(dir, slot, 16, 0);
}

/// The name of an outcome code, as `facts()` and docs/xdp.md show it.
pub fn reason_name(code: i32) -> &'static str {
    match code {
        abi::RVS_R_FORWARDED => "forwarded",
        abi::RVS_R_NOT_IP => "not_ip",
        abi::RVS_R_TRUNCATED => "truncated",
        abi::RVS_R_BAD_IP => "bad_ip",
        abi::RVS_R_NOT_VIP => "not_vip",
        abi::RVS_R_FRAGMENT => "fragment",
        abi::RVS_R_UNKNOWN_PROTO => "unknown_proto",
        abi::RVS_R_NO_SERVICE => "no_service",
        abi::RVS_R_NO_CONN => "no_conn",
        abi::RVS_R_NO_DEST => "no_dest",
        abi::RVS_R_DEST_UNAVAILABLE => "dest_unavailable",
        abi::RVS_R_CONN_TABLE_FULL => "conn_table_full",
        abi::RVS_R_CONN_RACE => "conn_race",
        abi::RVS_R_NO_NEIGH => "no_neigh",
        abi::RVS_R_FIB => "fib",
        abi::RVS_R_DR_NOT_ONLINK => "dr_not_onlink",
        abi::RVS_R_FRAG_NEEDED => "frag_needed",
        abi::RVS_R_TOO_BIG => "too_big",
        abi::RVS_R_XDP_ADJUST => "xdp_adjust",
        abi::RVS_R_LOCAL => "local",
        abi::RVS_R_NO_PE_DATA => "no_pe_data",
        abi::RVS_R_ICMP_NO_CONN => "icmp_no_conn",
        abi::RVS_R_ICMP_FORWARDED => "icmp_forwarded",
        abi::RVS_R_NAT_REPLY => "nat_reply",
        abi::RVS_R_UNSUPPORTED => "unsupported",
        abi::RVS_R_IPV6_EXT => "ipv6_ext",
        abi::RVS_R_NO_CONFIG => "no_config",
        abi::RVS_R_ICMP_SENT => "icmp_sent",
        abi::RVS_R_FWD_DISABLED => "fwd_disabled",
        abi::RVS_R_OVERSIZE => "oversize",
        abi::RVS_R_MARTIAN => "martian_source",
        abi::RVS_R_VLAN => "vlan",
        abi::RVS_R_OTHER_HOST => "other_host",
        _ => "unknown",
    }
}

/// Every outcome code with its (packets, bytes) summed over the CPUs.
pub fn reasons(dir: &Director) -> Result<Vec<(i32, u64, u64)>> {
    let m = &dir.maps.reasons;
    let mut buf = vec![0u8; m.value_len()];
    let stride = size_of::<abi::ReasonCount>().div_ceil(8) * 8;
    let mut out = Vec::new();
    for idx in 0..abi::RVS_REASON_COUNT {
        // Pins adopted from an older build may have fewer codes: the rest count 0.
        buf.fill(0);
        m.lookup(&idx.to_ne_bytes(), &mut buf, 0)
            .map_err(map_err("rvs_reasons"))?;
        let (mut p, mut b) = (0, 0);
        for cpu in 0..possible_cpus() {
            let c = abi::ReasonCount::from_bytes(&buf[cpu * stride..]);
            p += c.packets;
            b += c.bytes;
        }
        out.push((-(abi::RVS_REASON_BASE + idx as i32), p, b));
    }
    Ok(out)
}

/// The packet count of one code.
pub fn reason_packets(dir: &Director, code: i32) -> Result<u64> {
    Ok(reasons(dir)?
        .into_iter()
        .find(|(c, ..)| *c == code)
        .map_or(0, |(_, p, _)| p))
}
