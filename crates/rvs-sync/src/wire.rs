//! The IPVS sync message formats, version 0 and version 1 (`ip_vs_sync.c`), both ways.
//!
//! Sending: [`Builder`] packs entries into messages of at most `sync_maxlen` bytes as the
//! kernel's master does (entries 4-byte aligned, padding before the next entry, a message
//! per 255 entries at most).
//!
//! Receiving: [`decode`] checks a whole message before it yields any entry. A structural
//! error (a length that does not add up, a truncated entry or option, an option twice,
//! an entry version other than 0) drops the whole message with a [`MsgDrop`] reason; the
//! kernel installs the entries before the bad one, rvs installs none of a malformed
//! message. An entry the kernel would skip (an unknown mandatory option, persistence-engine
//! data without a name) is skipped with an [`EntrySkip`] reason and the others are kept.
//! Protocol and state are judged by the installer (`rvs_core::SyncEntry::conn_state`).
//!
//! Byte order: network order for every field, except the sequence options of version 0,
//! which the kernel copies from its own memory (host order); they are read as this host's
//! order and not used.

use rvs_core::sync::flags;
use rvs_core::SyncEntry;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// `SYNC_PROTO_VER`.
pub const SYNC_PROTO_VER: u8 = 1;
/// Version 0 header: nr_conns, syncid, size.
pub const HDR_V0: usize = 4;
/// Version 1 header: reserved, syncid, size, nr_conns, version, spare.
pub const HDR_V1: usize = 8;
/// Version 0 entry without options (`SIMPLE_CONN_SIZE`), and with them (`FULL_CONN_SIZE`).
pub const V0_SIMPLE: usize = 24;
pub const V0_FULL: usize = 48;
/// Version 1 entry before its options.
pub const V1_FIXED_V4: usize = 36;
pub const V1_FIXED_V6: usize = 72;
/// Option types and the "optional" bit.
pub const OPT_SEQ_DATA: u8 = 1;
pub const OPT_PE_DATA: u8 = 2;
pub const OPT_PE_NAME: u8 = 3;
pub const OPT_F_PARAM: u8 = 0x40;
/// Sequence option payload: in_seq and out_seq, three 32-bit words each.
pub const SEQ_LEN: usize = 24;
/// `IP_VS_PEDATA_MAXLEN`, `IP_VS_PENAME_MAXLEN`.
pub const PEDATA_MAXLEN: usize = 255;
pub const PENAME_MAXLEN: usize = 16;
/// nr_conns is one byte.
pub const MAX_CONNS_PER_MESSAGE: usize = 255;
/// Largest entry length the 12-bit size field holds.
const SVER_MASK: u16 = 0x0fff;
const STYPE_F_INET6: u8 = 1;

/// Why a whole message was dropped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MsgDrop {
    /// Shorter than the 4-byte header.
    TooShort,
    /// The header's size is not the datagram's length.
    BadSize,
    /// A syncid other than the backup's (a backup with syncid 0 takes every id).
    SyncId,
    /// A version-1-looking header with another version number (a future format).
    UnknownVersion,
    /// An entry or its options run past the end of the message, or the entries do not
    /// fill the message (nr_conns does not match the length).
    Truncated,
    /// Bytes left after the last entry (beyond alignment padding).
    TrailingBytes,
    /// An entry version other than 0 (`ver_size` top bits).
    EntryVersion,
    /// An entry type other than IPv4 (0) or IPv6 (1).
    EntryType,
    /// An entry whose length is shorter than its fixed part.
    EntrySize,
    /// An option of length 0, an option twice, or a sequence option not 24 bytes long,
    /// persistence-engine data or name too long.
    BadOption,
}

impl MsgDrop {
    pub const ALL: [MsgDrop; 10] = [
        MsgDrop::TooShort,
        MsgDrop::BadSize,
        MsgDrop::SyncId,
        MsgDrop::UnknownVersion,
        MsgDrop::Truncated,
        MsgDrop::TrailingBytes,
        MsgDrop::EntryVersion,
        MsgDrop::EntryType,
        MsgDrop::EntrySize,
        MsgDrop::BadOption,
    ];

    pub fn name(self) -> &'static str {
        match self {
            MsgDrop::TooShort => "too_short",
            MsgDrop::BadSize => "bad_size",
            MsgDrop::SyncId => "syncid",
            MsgDrop::UnknownVersion => "unknown_version",
            MsgDrop::Truncated => "truncated",
            MsgDrop::TrailingBytes => "trailing_bytes",
            MsgDrop::EntryVersion => "entry_version",
            MsgDrop::EntryType => "entry_type",
            MsgDrop::EntrySize => "entry_size",
            MsgDrop::BadOption => "bad_option",
        }
    }
}

/// Why one entry of a well-formed message was skipped.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntrySkip {
    /// An option this receiver does not know, not marked optional.
    MandatoryOption,
    /// Persistence-engine data without an engine name.
    PeWithoutName,
}

impl EntrySkip {
    pub const ALL: [EntrySkip; 2] = [EntrySkip::MandatoryOption, EntrySkip::PeWithoutName];

    pub fn name(self) -> &'static str {
        match self {
            EntrySkip::MandatoryOption => "mandatory_option",
            EntrySkip::PeWithoutName => "pe_without_name",
        }
    }
}

/// A received message, checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    pub version: u8,
    pub syncid: u8,
    pub entries: Vec<SyncEntry>,
    pub skipped: Vec<EntrySkip>,
}

struct Reader<'a> {
    b: &'a [u8],
}

impl Reader<'_> {
    fn u8(&self, at: usize) -> u8 {
        self.b[at]
    }
    fn u16(&self, at: usize) -> u16 {
        u16::from_be_bytes([self.b[at], self.b[at + 1]])
    }
    fn u32(&self, at: usize) -> u32 {
        u32::from_be_bytes(self.b[at..at + 4].try_into().expect("4 bytes"))
    }
    fn v4(&self, at: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(
            self.b[at],
            self.b[at + 1],
            self.b[at + 2],
            self.b[at + 3],
        ))
    }
    fn v6(&self, at: usize) -> IpAddr {
        let o: [u8; 16] = self.b[at..at + 16].try_into().expect("16 bytes");
        IpAddr::V6(Ipv6Addr::from(o))
    }
}

/// Checks and decodes one datagram. `syncid` is the backup's: 0 accepts every id.
///
/// # Errors
/// The reason the whole message is dropped.
pub fn decode(buf: &[u8], syncid: u8) -> Result<Message, MsgDrop> {
    if buf.len() < HDR_V0 {
        return Err(MsgDrop::TooShort);
    }
    let r = Reader { b: buf };
    if r.u16(2) as usize != buf.len() {
        return Err(MsgDrop::BadSize);
    }
    let msg_syncid = r.u8(1);
    if syncid != 0 && msg_syncid != syncid {
        return Err(MsgDrop::SyncId);
    }
    let reserved = r.u8(0);
    if buf.len() >= HDR_V1 && reserved == 0 {
        if r.u8(5) == SYNC_PROTO_VER && r.u16(6) == 0 {
            return decode_v1(&r, msg_syncid);
        }
        return Err(MsgDrop::UnknownVersion);
    }
    decode_v0(&r, msg_syncid)
}

fn decode_v0(r: &Reader, syncid: u8) -> Result<Message, MsgDrop> {
    let n = r.u8(0) as usize;
    let end = r.b.len();
    let mut p = HDR_V0;
    let mut entries = Vec::with_capacity(n);
    for _ in 0..n {
        if p + V0_SIMPLE > end {
            return Err(MsgDrop::Truncated);
        }
        let fl = (r.u16(p + 20) as u32 | flags::SYNC) & !flags::HASHED;
        let with_seq = fl & flags::SEQ_MASK != 0;
        let size = if with_seq { V0_FULL } else { V0_SIMPLE };
        if p + size > end {
            return Err(MsgDrop::Truncated);
        }
        let seq = with_seq.then(|| {
            let mut s = [0u32; 6];
            for (i, w) in s.iter_mut().enumerate() {
                let at = p + V0_SIMPLE + 4 * i;
                *w = u32::from_ne_bytes(r.b[at..at + 4].try_into().expect("4 bytes"));
            }
            s
        });
        entries.push(SyncEntry {
            proto: r.u8(p + 1),
            cport: r.u16(p + 2),
            vport: r.u16(p + 4),
            dport: r.u16(p + 6),
            caddr: r.v4(p + 8),
            vaddr: r.v4(p + 12),
            daddr: r.v4(p + 16),
            fwmark: 0,
            flags: fl,
            state: r.u16(p + 22),
            timeout: 0,
            seq,
            pe_name: None,
            pe_data: None,
        });
        p += size;
    }
    if p != end {
        return Err(MsgDrop::TrailingBytes);
    }
    Ok(Message {
        version: 0,
        syncid,
        entries,
        skipped: Vec::new(),
    })
}

fn decode_v1(r: &Reader, syncid: u8) -> Result<Message, MsgDrop> {
    let n = r.u8(4) as usize;
    let end = r.b.len();
    let mut p = HDR_V1;
    let mut entries = Vec::with_capacity(n);
    let mut skipped = Vec::new();
    for i in 0..n {
        if i > 0 {
            p = (p + 3) & !3;
        }
        if p + V1_FIXED_V4 > end {
            return Err(MsgDrop::Truncated);
        }
        let ver_size = r.u16(p + 2);
        if ver_size >> 12 != 0 {
            return Err(MsgDrop::EntryVersion);
        }
        let size = (ver_size & SVER_MASK) as usize;
        let entry_end = p + size;
        if entry_end > end {
            return Err(MsgDrop::Truncated);
        }
        match decode_entry(r, p, entry_end)? {
            Ok(e) => entries.push(e),
            Err(skip) => skipped.push(skip),
        }
        p = entry_end;
    }
    // The kernel's master pads before an entry, never after the last one.
    if p != end {
        return Err(if p < end {
            MsgDrop::TrailingBytes
        } else {
            MsgDrop::Truncated
        });
    }
    Ok(Message {
        version: 1,
        syncid,
        entries,
        skipped,
    })
}

/// One version-1 entry in `[p, end)`.
fn decode_entry(r: &Reader, p: usize, end: usize) -> Result<Result<SyncEntry, EntrySkip>, MsgDrop> {
    let v6 = match r.u8(p) {
        0 => false,
        STYPE_F_INET6 => true,
        _ => return Err(MsgDrop::EntryType),
    };
    let fixed = if v6 { V1_FIXED_V6 } else { V1_FIXED_V4 };
    if p + fixed > end {
        return Err(MsgDrop::EntrySize);
    }
    let addr = |i: usize| {
        if v6 {
            r.v6(p + 24 + 16 * i)
        } else {
            r.v4(p + 24 + 4 * i)
        }
    };
    let mut e = SyncEntry {
        proto: r.u8(p + 1),
        flags: (r.u32(p + 4) & flags::BACKUP_MASK) | flags::SYNC,
        state: r.u16(p + 8),
        cport: r.u16(p + 10),
        vport: r.u16(p + 12),
        dport: r.u16(p + 14),
        fwmark: r.u32(p + 16),
        timeout: r.u32(p + 20),
        caddr: addr(0),
        vaddr: addr(1),
        daddr: addr(2),
        seq: None,
        pe_name: None,
        pe_data: None,
    };
    let mut q = p + fixed;
    let mut skip = None;
    while q < end {
        if q + 2 > end {
            return Err(MsgDrop::Truncated);
        }
        let (ty, len) = (r.u8(q), r.u8(q + 1) as usize);
        let data = q + 2;
        if len == 0 || data + len > end {
            return Err(MsgDrop::BadOption);
        }
        let bytes = &r.b[data..data + len];
        match ty & !OPT_F_PARAM {
            OPT_SEQ_DATA => {
                if len != SEQ_LEN || e.seq.is_some() {
                    return Err(MsgDrop::BadOption);
                }
                let mut s = [0u32; 6];
                for (i, w) in s.iter_mut().enumerate() {
                    *w = r.u32(data + 4 * i);
                }
                e.seq = Some(s);
            }
            OPT_PE_DATA => {
                if len > PEDATA_MAXLEN || e.pe_data.is_some() {
                    return Err(MsgDrop::BadOption);
                }
                e.pe_data = Some(bytes.to_vec());
            }
            OPT_PE_NAME => {
                if len > PENAME_MAXLEN || e.pe_name.is_some() {
                    return Err(MsgDrop::BadOption);
                }
                e.pe_name = Some(String::from_utf8_lossy(bytes).into_owned());
            }
            _ if ty & OPT_F_PARAM == 0 => skip = Some(EntrySkip::MandatoryOption),
            _ => {}
        }
        q = data + len;
    }
    if skip.is_none() && e.pe_data.is_some() && e.pe_name.is_none() {
        skip = Some(EntrySkip::PeWithoutName);
    }
    Ok(match skip {
        Some(s) => Err(s),
        None => Ok(e),
    })
}

/// The encoded length of an entry in version 1, options included, padding excluded.
pub fn entry_len_v1(e: &SyncEntry) -> usize {
    let mut len = if e.caddr.is_ipv6() {
        V1_FIXED_V6
    } else {
        V1_FIXED_V4
    };
    if e.flags & flags::SEQ_MASK != 0 && e.seq.is_some() {
        len += SEQ_LEN + 2;
    }
    if let Some(d) = &e.pe_data {
        len += d.len().min(PEDATA_MAXLEN) + 2;
        if let Some(n) = &e.pe_name {
            len += n.len().min(PENAME_MAXLEN) + 2;
        }
    }
    len
}

fn put_addr(out: &mut Vec<u8>, a: &IpAddr) {
    match a {
        IpAddr::V4(v) => out.extend_from_slice(&v.octets()),
        IpAddr::V6(v) => out.extend_from_slice(&v.octets()),
    }
}

/// Appends one entry in version 1 (`ip_vs_sync_conn`).
fn put_entry_v1(out: &mut Vec<u8>, e: &SyncEntry) {
    let len = entry_len_v1(e);
    out.push(if e.caddr.is_ipv6() { STYPE_F_INET6 } else { 0 });
    out.push(e.proto);
    out.extend_from_slice(&((len as u16) & SVER_MASK).to_be_bytes());
    out.extend_from_slice(&(e.flags & !flags::HASHED).to_be_bytes());
    out.extend_from_slice(&e.state.to_be_bytes());
    out.extend_from_slice(&e.cport.to_be_bytes());
    out.extend_from_slice(&e.vport.to_be_bytes());
    out.extend_from_slice(&e.dport.to_be_bytes());
    out.extend_from_slice(&e.fwmark.to_be_bytes());
    out.extend_from_slice(&e.timeout.to_be_bytes());
    put_addr(out, &e.caddr);
    put_addr(out, &e.vaddr);
    put_addr(out, &e.daddr);
    if let (true, Some(s)) = (e.flags & flags::SEQ_MASK != 0, &e.seq) {
        out.push(OPT_SEQ_DATA);
        out.push(SEQ_LEN as u8);
        for w in s {
            out.extend_from_slice(&w.to_be_bytes());
        }
    }
    if let Some(d) = &e.pe_data {
        let d = &d[..d.len().min(PEDATA_MAXLEN)];
        out.push(OPT_PE_DATA);
        out.push(d.len() as u8);
        out.extend_from_slice(d);
        if let Some(n) = &e.pe_name {
            let n = &n.as_bytes()[..n.len().min(PENAME_MAXLEN)];
            out.push(OPT_PE_NAME);
            out.push(n.len() as u8);
            out.extend_from_slice(n);
        }
    }
}

/// Appends one entry in version 0 (`ip_vs_sync_conn_v0`); IPv4 only.
fn put_entry_v0(out: &mut Vec<u8>, e: &SyncEntry) {
    out.push(0);
    out.push(e.proto);
    out.extend_from_slice(&e.cport.to_be_bytes());
    out.extend_from_slice(&e.vport.to_be_bytes());
    out.extend_from_slice(&e.dport.to_be_bytes());
    put_addr(out, &e.caddr);
    put_addr(out, &e.vaddr);
    put_addr(out, &e.daddr);
    out.extend_from_slice(&((e.flags & !flags::HASHED) as u16).to_be_bytes());
    out.extend_from_slice(&e.state.to_be_bytes());
    if e.flags & flags::SEQ_MASK != 0 {
        let s = e.seq.unwrap_or_default();
        for w in s {
            out.extend_from_slice(&w.to_ne_bytes());
        }
    }
}

fn entry_len_v0(e: &SyncEntry) -> usize {
    if e.flags & flags::SEQ_MASK != 0 {
        V0_FULL
    } else {
        V0_SIMPLE
    }
}

/// Packs entries into messages of at most `maxlen` bytes (an entry longer than that alone
/// gets a message of its own, as the kernel sizes its buffer).
#[derive(Debug)]
pub struct Builder {
    version: u8,
    syncid: u8,
    maxlen: usize,
    buf: Vec<u8>,
    count: usize,
}

impl Builder {
    pub fn new(version: u8, syncid: u8, maxlen: usize) -> Builder {
        Builder {
            version,
            syncid,
            maxlen,
            buf: Vec::new(),
            count: 0,
        }
    }

    fn header_len(&self) -> usize {
        if self.version == 0 {
            HDR_V0
        } else {
            HDR_V1
        }
    }

    /// Whether the format can carry the entry (version 0 has no IPv6).
    pub fn carries(&self, e: &SyncEntry) -> bool {
        self.version != 0 || !e.caddr.is_ipv6()
    }

    /// Adds an entry. When it does not fit the message being filled, that message is
    /// finished and returned, and the entry starts the next one. An entry the format
    /// cannot carry is left out (see [`Builder::carries`]).
    pub fn push(&mut self, e: &SyncEntry) -> Option<Vec<u8>> {
        if !self.carries(e) {
            return None;
        }
        let (len, pad) = if self.version == 0 {
            (entry_len_v0(e), 0)
        } else {
            let pad = if self.count == 0 {
                0
            } else {
                (4 - self.buf.len() % 4) % 4
            };
            (entry_len_v1(e), pad)
        };
        let full = self.count > 0
            && (self.buf.len() + pad + len > self.maxlen || self.count >= MAX_CONNS_PER_MESSAGE);
        let done = if full { self.finish() } else { None };
        if self.count == 0 {
            self.start();
        } else {
            self.buf.resize(self.buf.len() + pad, 0);
        }
        if self.version == 0 {
            put_entry_v0(&mut self.buf, e);
        } else {
            put_entry_v1(&mut self.buf, e);
        }
        self.count += 1;
        done
    }

    fn start(&mut self) {
        self.buf.clear();
        self.buf.resize(self.header_len(), 0);
    }

    /// Finishes the message being filled, if it holds an entry.
    pub fn finish(&mut self) -> Option<Vec<u8>> {
        if self.count == 0 {
            return None;
        }
        let size = (self.buf.len() as u16).to_be_bytes();
        if self.version == 0 {
            self.buf[0] = self.count as u8;
            self.buf[1] = self.syncid;
            self.buf[2..4].copy_from_slice(&size);
        } else {
            self.buf[0] = 0;
            self.buf[1] = self.syncid;
            self.buf[2..4].copy_from_slice(&size);
            self.buf[4] = self.count as u8;
            self.buf[5] = SYNC_PROTO_VER;
            self.buf[6] = 0;
            self.buf[7] = 0;
        }
        self.count = 0;
        Some(std::mem::take(&mut self.buf))
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    pub fn version(&self) -> u8 {
        self.version
    }
}

/// Encodes entries into as many messages as they need (tests, tools).
pub fn encode(version: u8, syncid: u8, maxlen: usize, entries: &[SyncEntry]) -> Vec<Vec<u8>> {
    let mut b = Builder::new(version, syncid, maxlen);
    let mut out: Vec<Vec<u8>> = entries.iter().filter_map(|e| b.push(e)).collect();
    out.extend(b.finish());
    out
}

#[cfg(test)]
mod tests;
