//! Interfaces and addresses through rtnetlink: what an interface looks like (index, up,
//! MAC, addresses) and adding/removing virtual addresses the way keepalived does
//! (`ip addr add VIP/32 dev IF`; IPv6 ones with `nodad`, as they move between routers).

use crate::config::Vip;
use futures_util::TryStreamExt;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressHeaderFlags};
use rtnetlink::packet_route::link::{LinkAttribute, LinkFlags};
use rtnetlink::{AddressMessageBuilder, Handle};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// An interface as seen now.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinkInfo {
    pub name: String,
    pub index: u32,
    /// Administratively up and carrier present (keepalived's `IF_ISUP`: `IFF_UP` and
    /// `IFF_RUNNING`).
    pub up: bool,
    pub mac: [u8; 6],
    /// IPv4 addresses in kernel order (the first is the primary).
    pub v4: Vec<Ipv4Addr>,
    /// IPv6 link-local addresses.
    pub v6_link_local: Vec<Ipv6Addr>,
}

/// A netlink route socket (its connection runs as a task of the current runtime).
#[derive(Clone)]
pub struct Netlink {
    handle: Handle,
}

fn nl_err(e: rtnetlink::Error) -> io::Error {
    match e {
        rtnetlink::Error::NetlinkError(m) => io::Error::from_raw_os_error(-m.raw_code()),
        other => io::Error::other(other.to_string()),
    }
}

impl Netlink {
    /// Opens the socket and spawns its connection task.
    ///
    /// # Errors
    /// Socket creation failures.
    pub fn new() -> io::Result<Netlink> {
        let (conn, handle, _) = rtnetlink::new_connection()?;
        tokio::spawn(conn);
        Ok(Netlink { handle })
    }

    /// The interface `name`, None if it does not exist.
    ///
    /// # Errors
    /// Netlink failures other than "no such device".
    pub async fn link(&self, name: &str) -> io::Result<Option<LinkInfo>> {
        let mut links = self
            .handle
            .link()
            .get()
            .match_name(name.to_string())
            .execute();
        let msg = match links.try_next().await {
            Ok(Some(m)) => m,
            Ok(None) => return Ok(None),
            Err(e) => {
                let e = nl_err(e);
                if e.raw_os_error() == Some(libc::ENODEV) {
                    return Ok(None);
                }
                return Err(e);
            }
        };
        let index = msg.header.index;
        let flags = msg.header.flags;
        let mut mac = [0u8; 6];
        for a in &msg.attributes {
            if let LinkAttribute::Address(m) = a {
                if m.len() == 6 {
                    mac.copy_from_slice(m);
                }
            }
        }
        let mut info = LinkInfo {
            name: name.to_string(),
            index,
            up: flags.contains(LinkFlags::Up) && flags.contains(LinkFlags::Running),
            mac,
            v4: Vec::new(),
            v6_link_local: Vec::new(),
        };
        let mut addrs = self
            .handle
            .address()
            .get()
            .set_link_index_filter(index)
            .execute();
        while let Some(m) = addrs.try_next().await.map_err(nl_err)? {
            for a in &m.attributes {
                match a {
                    AddressAttribute::Local(IpAddr::V4(v)) => info.v4.push(*v),
                    AddressAttribute::Address(IpAddr::V6(v))
                        if v.segments()[0] & 0xffc0 == 0xfe80 =>
                    {
                        info.v6_link_local.push(*v)
                    }
                    _ => {}
                }
            }
        }
        Ok(Some(info))
    }

    /// Adds a virtual address; already present is fine.
    ///
    /// # Errors
    /// Netlink failures.
    pub async fn add_vip(&self, ifindex: u32, vip: &Vip) -> io::Result<()> {
        let mut msg = match vip.addr {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix)
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix)
                .build(),
        };
        if vip.addr.is_ipv6() {
            msg.header.flags |= AddressHeaderFlags::Nodad;
            msg.attributes
                .push(AddressAttribute::Flags(AddressFlags::Nodad));
        }
        if let (Some(l), IpAddr::V4(_)) = (&vip.label, vip.addr) {
            msg.attributes.push(AddressAttribute::Label(l.clone()));
        }
        let mut req = self.handle.address().add(ifindex, vip.addr, vip.prefix);
        *req.message_mut() = msg;
        match req.execute().await.map_err(nl_err) {
            Err(e) if e.raw_os_error() == Some(libc::EEXIST) => Ok(()),
            r => r,
        }
    }

    /// Removes a virtual address; already absent is fine.
    ///
    /// # Errors
    /// Netlink failures.
    pub async fn del_vip(&self, ifindex: u32, vip: &Vip) -> io::Result<()> {
        let msg = match vip.addr {
            IpAddr::V4(a) => AddressMessageBuilder::<Ipv4Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix)
                .build(),
            IpAddr::V6(a) => AddressMessageBuilder::<Ipv6Addr>::new()
                .index(ifindex)
                .address(a, vip.prefix)
                .build(),
        };
        match self
            .handle
            .address()
            .del(msg)
            .execute()
            .await
            .map_err(nl_err)
        {
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::EADDRNOTAVAIL) | Some(libc::ENODEV)
                ) =>
            {
                Ok(())
            }
            r => r,
        }
    }
}

/// IPv6 forwarding on the interface (the Router flag of unsolicited NAs, as keepalived).
pub fn ipv6_forwarding(ifname: &str) -> bool {
    std::fs::read_to_string(format!("/proc/sys/net/ipv6/conf/{ifname}/forwarding"))
        .is_ok_and(|s| s.trim() == "1")
}
