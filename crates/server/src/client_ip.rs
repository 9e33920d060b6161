//! The client's address behind trusted reverse proxies: `X-Forwarded-For` is believed only as far
//! as the hops that appended to it are proxies the configuration names; anyone else could write
//! any address there (and dodge the per-address login throttle).

use std::net::IpAddr;

use hyper::HeaderMap;

/// A parsed [`crate::Config::trusted_proxies`] list: addresses and CIDR ranges.
#[derive(Debug, Default)]
pub(crate) struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
  /// Parses `10.0.0.1`, `10.0.0.0/8`, `::1`, `fd00::/8`; an error names the bad entry. Entries
  /// are stored as [`Self::trusts`] compares them: IPv4-mapped ones as IPv4.
  pub fn parse(entries: &[String]) -> Result<TrustedProxies, String> {
    entries
      .iter()
      .map(|entry| {
        let bad = || format!("trusted proxy '{entry}' is not an IP address or CIDR range");
        let (ip, bits) = match entry.split_once('/') {
          Some((ip, bits)) => (ip, Some(bits)),
          None => (entry.as_str(), None),
        };
        let ip: IpAddr = ip.trim().parse().map_err(|_| bad())?;
        let max = if ip.is_ipv4() { 32 } else { 128 };
        let bits = match bits {
          Some(b) => b.parse::<u8>().ok().filter(|b| *b <= max).ok_or_else(bad)?,
          None => max,
        };
        // An IPv4-mapped entry (`::ffff:10.0.0.1`, `::ffff:10.0.0.0/104`) is the IPv4 range it
        // carries: addresses are compared in that form, and its prefix counts IPv4 bits.
        let mapped = match ip {
          IpAddr::V6(v6) if bits >= 96 => v6.to_ipv4_mapped(),
          _ => None,
        };
        Ok(match mapped {
          Some(v4) => (IpAddr::V4(v4), bits - 96),
          None => (ip, bits),
        })
      })
      .collect::<Result<_, _>>()
      .map(TrustedProxies)
  }

  fn trusts(&self, ip: IpAddr) -> bool {
    let ip = canonical(ip);
    self.0.iter().any(|&(net, bits)| match (net, ip) {
      (IpAddr::V4(n), IpAddr::V4(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
      (IpAddr::V6(n), IpAddr::V6(a)) => prefix_eq(&n.octets(), &a.octets(), bits),
      _ => false,
    })
  }

  /// The client of a request that arrived from `peer`: `peer` itself unless it is a trusted
  /// proxy; then, walking `X-Forwarded-For` from its right end (the hop nearest to us), the first
  /// address that is not a trusted proxy (an entry may carry a port: [`hop_address`]). An
  /// unparsable entry stops the walk: what lies left of it cannot be trusted.
  pub fn client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    if self.0.is_empty() || !self.trusts(peer) {
      return peer;
    }
    let mut client = peer;
    let hops = headers
      .get_all("x-forwarded-for")
      .iter()
      .filter_map(|v| v.to_str().ok())
      .flat_map(|v| v.split(','))
      .collect::<Vec<_>>();
    for hop in hops.iter().rev() {
      match hop_address(hop) {
        Some(ip) => {
          client = ip;
          if !self.trusts(ip) {
            break;
          }
        }
        None => break,
      }
    }
    client
  }
}

/// One `X-Forwarded-For` entry's address: `203.0.113.7`, `2001:db8::1`, and the forms some
/// proxies write with a port or brackets (`203.0.113.7:51234`, `[2001:db8::1]:443`,
/// `[2001:db8::1]`); such an entry must not end the walk, or every client behind that proxy
/// would share the proxy's throttle count.
fn hop_address(hop: &str) -> Option<IpAddr> {
  let hop = hop.trim();
  hop
    .parse::<IpAddr>()
    .ok()
    .or_else(|| hop.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
    .or_else(|| {
      let inner = hop.strip_prefix('[')?.strip_suffix(']')?;
      inner.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6)
    })
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they carry.
fn canonical(ip: IpAddr) -> IpAddr {
  match ip {
    IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
    v4 => v4,
  }
}

fn prefix_eq(net: &[u8], addr: &[u8], bits: u8) -> bool {
  let (whole, rest) = ((bits / 8) as usize, bits % 8);
  net[..whole] == addr[..whole]
    && (rest == 0 || {
      let mask = 0xffu8 << (8 - rest);
      net[whole] & mask == addr[whole] & mask
    })
}

#[cfg(test)]
mod tests {
  use super::*;

  fn headers(xff: &[&str]) -> HeaderMap {
    let mut h = HeaderMap::new();
    for v in xff {
      h.append("x-forwarded-for", v.parse().unwrap());
    }
    h
  }

  fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
  }

  #[test]
  fn believes_forwarded_for_only_as_far_as_the_trusted_hops() {
    let proxies = TrustedProxies::parse(&["10.0.0.0/8".into(), "::1".into()]).unwrap();
    let client = |peer: &str, xff: &[&str]| proxies.client(ip(peer), &headers(xff)).to_string();
    // An untrusted peer's header is ignored.
    assert_eq!(client("203.0.113.9", &["1.2.3.4"]), "203.0.113.9");
    // Through one trusted proxy: the address it saw.
    assert_eq!(client("10.1.2.3", &["198.51.100.7"]), "198.51.100.7");
    // A forged left part stays unbelieved: the rightmost untrusted hop is the client.
    assert_eq!(
      client("10.1.2.3", &["6.6.6.6, 198.51.100.7, 10.9.9.9"]),
      "198.51.100.7"
    );
    assert_eq!(
      client("10.1.2.3", &["6.6.6.6", "198.51.100.7"]),
      "198.51.100.7"
    );
    // Garbage stops the walk; no header keeps the peer; IPv4-mapped peers match IPv4 ranges.
    assert_eq!(client("10.1.2.3", &["6.6.6.6, junk"]), "10.1.2.3");
    assert_eq!(client("10.1.2.3", &[]), "10.1.2.3");
    assert_eq!(client("::ffff:10.0.0.5", &["198.51.100.7"]), "198.51.100.7");
    assert_eq!(client("::1", &["2001:db8::1"]), "2001:db8::1");
    // Without a list nothing is believed.
    let none = TrustedProxies::default();
    assert_eq!(
      none.client(ip("10.1.2.3"), &headers(&["1.2.3.4"])),
      ip("10.1.2.3")
    );
  }

  #[test]
  fn parses_addresses_and_ranges() {
    assert!(TrustedProxies::parse(&["192.168.0.0/16".into(), "fd00::/8".into()]).is_ok());
    for bad in ["10.0.0.0/33", "fd00::/129", "proxy.local", "10.0.0.1/x", ""] {
      let err = TrustedProxies::parse(&[bad.to_string()]).unwrap_err();
      assert!(err.contains("trusted proxy"), "{bad}: {err}");
    }
    let p = TrustedProxies::parse(&["192.168.1.0/24".into()]).unwrap();
    assert!(p.trusts(ip("192.168.1.200")) && !p.trusts(ip("192.168.2.1")));
    let p = TrustedProxies::parse(&["10.0.0.0/9".into()]).unwrap();
    assert!(p.trusts(ip("10.127.0.1")) && !p.trusts(ip("10.128.0.1")));
  }

  #[test]
  fn forwarded_entries_with_ports_or_brackets() {
    let proxies = TrustedProxies::parse(&["10.0.0.0/8".into()]).unwrap();
    let client = |xff: &str| proxies.client(ip("10.1.2.3"), &headers(&[xff])).to_string();
    assert_eq!(client("203.0.113.7:51234"), "203.0.113.7");
    assert_eq!(client("[2001:db8::1]:443"), "2001:db8::1");
    assert_eq!(client("[2001:db8::1]"), "2001:db8::1");
    assert_eq!(
      client("6.6.6.6, 198.51.100.7:80, 10.9.9.9:8080"),
      "198.51.100.7"
    );
    // Still garbage: the walk stops at the trusted peer.
    assert_eq!(client("[203.0.113.7]"), "10.1.2.3");
    assert_eq!(client("203.0.113.7:x"), "10.1.2.3");
  }

  #[test]
  fn ipv4_mapped_entries_are_ipv4() {
    let p = TrustedProxies::parse(&["::ffff:10.0.0.1".into()]).unwrap();
    assert!(p.trusts(ip("10.0.0.1")) && p.trusts(ip("::ffff:10.0.0.1")));
    assert!(!p.trusts(ip("10.0.0.2")));
    let p = TrustedProxies::parse(&["::ffff:10.0.0.0/104".into()]).unwrap();
    assert!(p.trusts(ip("10.200.0.1")) && !p.trusts(ip("11.0.0.1")));
    let client = p.client(ip("10.0.0.9"), &headers(&["198.51.100.7"]));
    assert_eq!(client, ip("198.51.100.7"));
    // A short prefix is an IPv6 range (`::/8`), not `10.0.0.0/8`.
    let p = TrustedProxies::parse(&["::ffff:10.0.0.0/8".into()]).unwrap();
    assert!(!p.trusts(ip("10.0.0.1")) && p.trusts(ip("::1")));
  }
}
