//! The address a request comes from, as the sign-in brake counts it: the TCP peer, or, when the
//! peer is a configured trusted proxy, the right-most address in `X-Forwarded-For` that is not
//! itself a trusted proxy.
//!
//! Right-most, because each proxy appends the address it received the request from: entries to
//! the left of the last untrusted one were written by the client and prove nothing. Without
//! trusted proxies (the default) `X-Forwarded-For` is ignored.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use ipnet::IpNet;
use serde::Deserialize;

use crate::{markup, Console};

/// A proxy whose `X-Forwarded-For` is believed: one address (`"127.0.0.1"`) or a network in CIDR
/// notation (`"10.0.0.0/8"`).
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(try_from = "String")]
pub struct TrustedProxy(IpNet);

impl TrustedProxy {
    /// Whether `address` is this proxy (or in its network).
    pub fn contains(&self, address: IpAddr) -> bool {
        self.0.contains(&address.to_canonical())
    }
}

impl FromStr for TrustedProxy {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        s.parse::<IpAddr>()
            .map(IpNet::from)
            .or_else(|_| s.parse::<IpNet>().map(|n| n.trunc()))
            .map(TrustedProxy)
            .map_err(|_| {
                format!("{s:?} is not an IP address or network (like 127.0.0.1 or 10.0.0.0/8)")
            })
    }
}

impl TryFrom<String> for TrustedProxy {
    type Error = String;

    fn try_from(s: String) -> Result<Self, String> {
        s.parse()
    }
}

impl fmt::Display for TrustedProxy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A single address reads as one, not as a /32.
        if self.0.prefix_len() == self.0.max_prefix_len() {
            write!(f, "{}", self.0.addr())
        } else {
            write!(f, "{}", self.0)
        }
    }
}

/// One `X-Forwarded-For` entry: an address, optionally with a port (`192.0.2.1:4711`,
/// `[2001:db8::1]:4711`) or in brackets.
fn parse_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<SocketAddr>().ok().map(|a| a.ip()))
        .or_else(|| {
            entry
                .strip_prefix('[')
                .and_then(|e| e.strip_suffix(']'))
                .and_then(|e| e.parse().ok())
        })
        .map(|a: IpAddr| a.to_canonical())
}

/// The client address of a request from `peer` with `headers`, given the trusted proxies.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[TrustedProxy]) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |a: IpAddr| trusted.iter().any(|p| p.contains(a));
    if !is_trusted(peer) {
        return peer;
    }
    let entries: Vec<&str> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    // Walk from the nearest hop outwards; `hop` is the last address known to be genuine.
    let mut hop = peer;
    for entry in entries.iter().rev() {
        match parse_entry(entry) {
            Some(address) if is_trusted(address) => hop = address,
            Some(address) => return address,
            // A trusted hop wrote something that is not an address: count it against that hop.
            None => return hop,
        }
    }
    hop
}

/// The extractor: the client address of a console request.
pub struct ClientAddress(pub IpAddr);

impl FromRequestParts<Arc<Console>> for ClientAddress {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        console: &Arc<Console>,
    ) -> Result<Self, Self::Rejection> {
        match ConnectInfo::<SocketAddr>::from_request_parts(parts, console).await {
            Ok(ConnectInfo(peer)) => Ok(ClientAddress(client_address(
                peer.ip(),
                &parts.headers,
                &console.trusted_proxies,
            ))),
            Err(_) => {
                // The server must hand every request its peer address; without it the brake
                // cannot count by address, so signing in is refused rather than left unbraked.
                tracing::error!("console request without the peer address; the server must be served with connect info");
                Err(markup::error_page(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    None,
                    "Something went wrong",
                    "Lockgate could not tell where this request came from. Try again later.",
                ))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("address")
    }

    fn proxies(list: &[&str]) -> Vec<TrustedProxy> {
        list.iter().map(|s| s.parse().expect("proxy")).collect()
    }

    fn xff(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append("x-forwarded-for", v.parse().expect("header value"));
        }
        h
    }

    #[test]
    fn without_trusted_proxies_the_peer_is_the_client_whatever_the_header_says() {
        let h = xff(&["203.0.113.9"]);
        assert_eq!(client_address(ip("127.0.0.1"), &h, &[]), ip("127.0.0.1"));
        let trusted = proxies(&["10.0.0.1"]);
        assert_eq!(
            client_address(ip("192.0.2.5"), &h, &trusted),
            ip("192.0.2.5")
        );
    }

    #[test]
    fn behind_a_trusted_proxy_the_right_most_untrusted_address_is_the_client() {
        let trusted = proxies(&["127.0.0.1", "10.0.0.0/8"]);
        // The client wrote the first entry itself; the proxies appended the rest.
        let h = xff(&["198.51.100.1, 203.0.113.7", "10.1.2.3"]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("203.0.113.7")
        );
        let h = xff(&["[2001:db8::7]:4711, 192.0.2.8:80"]);
        assert_eq!(
            client_address(ip("::ffff:127.0.0.1"), &h, &trusted),
            ip("192.0.2.8")
        );
    }

    #[test]
    fn a_trusted_proxy_without_a_usable_header_is_itself_the_client() {
        let trusted = proxies(&["127.0.0.1"]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &HeaderMap::new(), &trusted),
            ip("127.0.0.1")
        );
        let h = xff(&["203.0.113.7, not-an-address"]);
        assert_eq!(
            client_address(ip("127.0.0.1"), &h, &trusted),
            ip("127.0.0.1")
        );
    }

    #[test]
    fn trusted_proxies_parse_from_addresses_and_networks_and_refuse_anything_else() {
        assert_eq!(proxies(&["127.0.0.1"])[0].to_string(), "127.0.0.1");
        assert_eq!(proxies(&["10.1.0.0/16"])[0].to_string(), "10.1.0.0/16");
        assert!(proxies(&["10.1.2.3/8"])[0].contains(ip("10.200.0.1")));
        assert!("localhost".parse::<TrustedProxy>().is_err());
        assert!("10.0.0.0/33".parse::<TrustedProxy>().is_err());
    }
}
