//! The client's address: the connection's peer, or `X-Forwarded-For` behind trusted proxies.

use std::fmt;
use std::net::IpAddr;
use std::str::FromStr;

use ::http::HeaderMap;

/// An IP address or a CIDR block (`10.0.0.0/8`, `::1`, `fd00::/8`): a trusted proxy for
/// [`RequestLayer::trusted_proxies`](super::RequestLayer::trusted_proxies).
///
/// ```
/// use tracelight::http::IpRange;
/// let lan: IpRange = "10.0.0.0/8".parse()?;
/// assert!(lan.contains("10.1.2.3".parse().unwrap()));
/// assert!(!lan.contains("11.0.0.1".parse().unwrap()));
/// let one: IpRange = "::1".parse()?;
/// assert!(one.contains("::1".parse().unwrap()));
/// # Ok::<(), tracelight::http::InvalidIpRange>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// One address.
    ///
    /// ```
    /// let r = tracelight::http::IpRange::single([127, 0, 0, 1].into());
    /// assert!(r.contains([127, 0, 0, 1].into()));
    /// ```
    pub fn single(addr: IpAddr) -> IpRange {
        let prefix = if addr.is_ipv4() { 32 } else { 128 };
        IpRange { addr, prefix }
    }

    /// A CIDR block; `None` if `prefix` is longer than the address (32 or 128 bits).
    ///
    /// ```
    /// use tracelight::http::IpRange;
    /// assert!(IpRange::cidr([192, 168, 0, 0].into(), 16).is_some());
    /// assert!(IpRange::cidr([192, 168, 0, 0].into(), 33).is_none());
    /// ```
    pub fn cidr(addr: IpAddr, prefix: u8) -> Option<IpRange> {
        let max = if addr.is_ipv4() { 32 } else { 128 };
        (prefix <= max).then_some(IpRange { addr, prefix })
    }

    /// Whether `ip` is in the range. IPv4-mapped IPv6 addresses (`::ffff:10.0.0.1`) count as
    /// their IPv4 address.
    ///
    /// ```
    /// let r: tracelight::http::IpRange = "10.0.0.0/8".parse().unwrap();
    /// assert!(r.contains("::ffff:10.0.0.1".parse().unwrap()));
    /// ```
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr.to_canonical(), ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                masked(u128::from(u32::from(net)), 32, self.prefix)
                    == masked(u128::from(u32::from(ip)), 32, self.prefix)
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                masked(u128::from(net), 128, self.prefix)
                    == masked(u128::from(ip), 128, self.prefix)
            }
            _ => false,
        }
    }
}

fn masked(bits: u128, width: u32, prefix: u8) -> u128 {
    let prefix = u32::from(prefix).min(width);
    if prefix == 0 {
        return 0;
    }
    let keep = width - prefix; // low bits to clear
    (bits >> keep) << keep
}

impl FromStr for IpRange {
    type Err = InvalidIpRange;
    fn from_str(s: &str) -> Result<IpRange, InvalidIpRange> {
        let err = || InvalidIpRange {
            value: s.chars().take(64).collect(),
        };
        let s = s.trim();
        match s.split_once('/') {
            None => s.parse().map(IpRange::single).map_err(|_| err()),
            Some((addr, prefix)) => {
                let addr: IpAddr = addr.parse().map_err(|_| err())?;
                let prefix: u8 = prefix.parse().map_err(|_| err())?;
                IpRange::cidr(addr, prefix).ok_or_else(err)
            }
        }
    }
}

impl From<IpAddr> for IpRange {
    fn from(addr: IpAddr) -> IpRange {
        IpRange::single(addr)
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

/// A string that is not an IP address or CIDR block.
///
/// ```
/// let err = "10.0.0.0/40".parse::<tracelight::http::IpRange>().unwrap_err();
/// assert_eq!(err.to_string(), "invalid IP range \"10.0.0.0/40\": expected an address or a CIDR block such as 10.0.0.0/8");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid IP range {value:?}: expected an address or a CIDR block such as 10.0.0.0/8")]
pub struct InvalidIpRange {
    value: String,
}

/// The client's address: `peer` itself, unless `peer` is a trusted proxy; then the right-most
/// address of `X-Forwarded-For` that is not a trusted proxy (each proxy appends the address it
/// received the request from, so entries left of the first untrusted one may be forged).
pub(crate) fn client_ip(
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    trusted: &[IpRange],
) -> Option<IpAddr> {
    let peer = peer?;
    let is_trusted = |ip: IpAddr| trusted.iter().any(|r| r.contains(ip));
    if !is_trusted(peer) {
        return Some(peer);
    }
    let mut client = peer;
    // Later headers were appended later: walk them, and their entries, from the right.
    let values: Vec<_> = headers.get_all("x-forwarded-for").iter().collect();
    for value in values.into_iter().rev() {
        let Ok(text) = value.to_str() else {
            return Some(client);
        };
        for hop in text.rsplit(',') {
            let Some(ip) = parse_hop(hop) else {
                return Some(client);
            };
            client = ip;
            if !is_trusted(ip) {
                return Some(ip);
            }
        }
    }
    Some(client)
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`1.2.3.4:5`, `[::1]:5`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim();
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::http::HeaderValue;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn ranges() {
        let r: IpRange = "192.168.0.0/16".parse().unwrap();
        assert!(r.contains(ip("192.168.255.1")));
        assert!(!r.contains(ip("192.169.0.1")));
        assert!(!r.contains(ip("::1")));
        let all: IpRange = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains(ip("8.8.8.8")));
        let v6: IpRange = "fd00::/8".parse().unwrap();
        assert!(v6.contains(ip("fd12::1")));
        assert!(!v6.contains(ip("fe80::1")));
        assert!("nonsense".parse::<IpRange>().is_err());
        assert!("10.0.0.0/x".parse::<IpRange>().is_err());
        assert!("::/129".parse::<IpRange>().is_err());
    }

    #[test]
    fn forwarded_for_is_ignored_from_untrusted_peers() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let h = xff(&["6.6.6.6"]);
        assert_eq!(
            client_ip(Some(ip("1.2.3.4")), &h, &trusted),
            Some(ip("1.2.3.4"))
        );
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &[]),
            Some(ip("10.0.0.1"))
        );
    }

    #[test]
    fn right_most_untrusted_hop_wins() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        // The client forged 6.6.6.6; the first proxy saw 1.2.3.4; a second proxy 10.0.0.2.
        let h = xff(&["6.6.6.6, 1.2.3.4", "10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("1.2.3.4"))
        );
        // Every hop trusted: the left-most one.
        let h = xff(&["10.0.0.9, 10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("10.0.0.9"))
        );
        // Garbage stops the walk at the last good hop.
        let h = xff(&["1.2.3.4, junk, 10.0.0.2"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("10.0.0.2"))
        );
        // Ports and brackets.
        let h = xff(&["[2001:db8::1]:4711"]);
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &h, &trusted),
            Some(ip("2001:db8::1"))
        );
        // No header: the peer.
        assert_eq!(
            client_ip(Some(ip("10.0.0.1")), &HeaderMap::new(), &trusted),
            Some(ip("10.0.0.1"))
        );
    }
}
