//! The client's address, as the login throttle counts it.
//!
//! Without a trusted proxy it is the TCP peer. When the peer is one of the
//! `--trusted-proxy` addresses, it is the right-most entry of
//! `X-Forwarded-For` that is not itself a trusted proxy: each proxy appends
//! the address it received the connection from, so entries to the left of
//! the first untrusted one were written by the client and may be anything.
//! `X-Forwarded-For` from any other peer is ignored.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// How far from the right of `X-Forwarded-For` a chain of trusted proxies is followed.
const MAX_HOPS: usize = 16;

/// The address a request came from, once proxies are accounted for; put into
/// each request's extensions by the connection layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

#[derive(Debug, Clone, Default)]
pub struct TrustedProxies(Vec<IpAddr>);

/// IPv4-mapped IPv6 addresses compare as their IPv4.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
        v4 => v4,
    }
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:80`, `[::1]:80`).
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| entry.strip_prefix('[')?.strip_suffix(']')?.parse().ok())
        .map(canonical)
}

impl TrustedProxies {
    pub fn new(proxies: impl IntoIterator<Item = IpAddr>) -> Self {
        TrustedProxies(proxies.into_iter().map(canonical).collect())
    }

    pub fn is_trusted(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }

    /// The client's address for a request from `peer` with these headers.
    pub fn client_ip(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let mut client = canonical(peer);
        if !self.is_trusted(client) {
            return client;
        }
        // Several header lines are one list, in order. Anything unreadable
        // was not written by a trusted proxy: the walk stops at the last hop that was.
        let mut hops = 0;
        for line in headers.get_all("x-forwarded-for").iter().rev() {
            let Ok(text) = line.to_str() else {
                return client;
            };
            for entry in text.rsplit(',') {
                hops += 1;
                let Some(ip) = parse_entry(entry).filter(|_| hops <= MAX_HOPS) else {
                    return client;
                };
                client = ip;
                if !self.is_trusted(ip) {
                    return ip;
                }
            }
        }
        client
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(lines: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for line in lines {
            h.append("x-forwarded-for", line.parse().unwrap());
        }
        h
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_peer_unless_it_is_a_trusted_proxy() {
        let none = TrustedProxies::default();
        let spoofed = headers(&["203.0.113.9"]);
        assert_eq!(none.client_ip(ip("198.51.100.1"), &spoofed), ip("198.51.100.1"));
        let proxy = TrustedProxies::new([ip("10.0.0.1")]);
        assert_eq!(proxy.client_ip(ip("198.51.100.1"), &spoofed), ip("198.51.100.1"), "not from the proxy");
        assert_eq!(proxy.client_ip(ip("10.0.0.1"), &spoofed), ip("203.0.113.9"));
        assert_eq!(proxy.client_ip(ip("10.0.0.1"), &HeaderMap::new()), ip("10.0.0.1"), "the proxy's own request");
    }

    #[test]
    fn the_right_most_untrusted_entry_wins() {
        let proxies = TrustedProxies::new([ip("10.0.0.1"), ip("10.0.0.2")]);
        // The client wrote 1.1.1.1 itself; the first proxy saw 203.0.113.9 and the second saw the first proxy.
        let h = headers(&["1.1.1.1, 203.0.113.9", "10.0.0.2"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"));
        let h = headers(&["garbage, 203.0.113.9:4711"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("203.0.113.9"), "a port is ignored");
        let h = headers(&["203.0.113.9, not-an-address"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.1"), "unreadable: the proxy");
        let h = headers(&["[2001:db8::5]:443"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("2001:db8::5"));
        let h = headers(&["10.0.0.2"]);
        assert_eq!(proxies.client_ip(ip("10.0.0.1"), &h), ip("10.0.0.2"), "only proxies: the farthest one");
    }

    #[test]
    fn ipv4_mapped_peers_are_their_ipv4() {
        let proxies = TrustedProxies::new([ip("127.0.0.1")]);
        assert_eq!(proxies.client_ip(ip("::ffff:127.0.0.1"), &headers(&["192.0.2.4"])), ip("192.0.2.4"));
    }
}
