//! Who may use the control API: a request must name one of the emulator's own hosts (`Host`), come
//! from no other web origin (`Origin`, `Sec-Fetch-Site`) and carry the control token
//! (`Authorization: Bearer <token>`). The Host check defeats DNS rebinding, the Origin check a
//! page in the developer's browser, the token everything else that can reach the port.

use std::net::Ipv6Addr;

use hyper::header::{self, HeaderMap, HeaderName};

use crate::control::ControlError;
use crate::ids::{hex, random_bytes};
use crate::server::header_str;
use crate::state::ct_eq;

/// Length bounds of a control token given in the configuration.
const TOKEN_LEN: std::ops::RangeInclusive<usize> = 16..=256;

/// A new random control token: 192 bits, hex (safe in headers, shells and URLs).
pub(crate) fn new_token() -> String {
  hex(&random_bytes::<24>())
}

/// Checks a control token given in the configuration.
pub(crate) fn validate_token(token: &str) -> Result<(), String> {
  if !TOKEN_LEN.contains(&token.len()) {
    return Err(format!(
      "the control token must be {} to {} characters long",
      TOKEN_LEN.start(),
      TOKEN_LEN.end()
    ));
  }
  // Visible ASCII: it travels in a header and is typed into shells.
  if !token.bytes().all(|b| b.is_ascii_graphic()) {
    return Err("the control token must be visible ASCII characters (no spaces)".into());
  }
  Ok(())
}

/// `host[:port]` split into a lower-case host (an IPv6 address in brackets, as in a URL) and
/// its port; `None` when it is not a plausible authority.
fn split_authority(text: &str) -> Option<(String, Option<u16>)> {
  let (host, port) = if let Some(rest) = text.strip_prefix('[') {
    let (ip, after) = rest.split_once(']')?;
    ip.parse::<Ipv6Addr>().ok()?;
    let port = match after {
      "" => None,
      p => Some(p.strip_prefix(':')?),
    };
    (format!("[{}]", ip.to_ascii_lowercase()), port)
  } else if let Ok(ip) = text.parse::<Ipv6Addr>() {
    // A bare IPv6 address (in configuration, not in a Host header).
    (format!("[{ip}]"), None)
  } else {
    let (host, port) = match text.rsplit_once(':') {
      Some((h, p)) => (h, Some(p)),
      None => (text, None),
    };
    let plausible = !host.is_empty()
      && host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-' || b == b'_');
    if !plausible {
      return None;
    }
    (host.to_ascii_lowercase(), port)
  };
  let port = match port {
    None => None,
    Some(p) => Some(p.parse::<u16>().ok()?),
  };
  Some((host, port))
}

/// Parses `allowed_hosts` entries (`name` or `name:port`).
pub(crate) fn parse_allowed_hosts(
  entries: &[String],
) -> Result<Vec<(String, Option<u16>)>, String> {
  entries
    .iter()
    .map(|e| {
      split_authority(e).ok_or_else(|| format!("allowed host '{e}' is not a host or host:port"))
    })
    .collect()
}

/// The control API's gatekeeper, fixed at start.
pub(crate) struct Access {
  token: String,
  /// The `Host` values answered, as (lower-case host, port).
  hosts: Vec<(String, u16)>,
}

impl Access {
  /// `bound_host` is the configured interface; `extra` the parsed `allowed_hosts`.
  pub fn new(
    token: String,
    bound_host: &str,
    extra: Vec<(String, Option<u16>)>,
    port: u16,
  ) -> Access {
    let mut hosts: Vec<(String, u16)> = ["127.0.0.1", "localhost", "[::1]"]
      .into_iter()
      .map(|h| (h.to_string(), port))
      .collect();
    let bound = split_authority(bound_host).map(|(h, _)| (h, None));
    for (h, p) in bound.into_iter().chain(extra) {
      let entry = (h, p.unwrap_or(port));
      if !hosts.contains(&entry) {
        hosts.push(entry);
      }
    }
    Access { token, hosts }
  }

  /// The control token.
  pub fn token(&self) -> &str {
    &self.token
  }

  /// Whether a control request may go on. `needs_token` is false for the route index only.
  pub fn check(&self, headers: &HeaderMap, needs_token: bool) -> Result<(), ControlError> {
    let host = header_str(headers, &header::HOST).unwrap_or_default();
    let authority = split_authority(host).map(|(h, p)| (h, p.unwrap_or(80)));
    if !authority.as_ref().is_some_and(|a| self.hosts.contains(a)) {
      let names: Vec<String> = self.hosts.iter().map(|(h, p)| format!("{h}:{p}")).collect();
      return Err(ControlError::Forbidden(format!(
        "Host '{host}' is not one of this emulator's names ({}); start it with --allow-host \
         <name> (allowedHosts) to answer to another",
        names.join(", ")
      )));
    }
    if let Some(origin) = headers.get(header::ORIGIN) {
      let same = origin
        .to_str()
        .ok()
        .and_then(|o| o.strip_prefix("http://"))
        .and_then(split_authority)
        .map(|(h, p)| (h, p.unwrap_or(80)));
      if same != authority {
        return Err(ControlError::Forbidden(format!(
          "cross-origin request from '{}' refused: the control API serves no web pages",
          String::from_utf8_lossy(origin.as_bytes())
        )));
      }
    }
    // Browsers that send no Origin (a no-cors GET) still say where the request comes from.
    const SEC_FETCH_SITE: HeaderName = HeaderName::from_static("sec-fetch-site");
    if let Some(site @ ("cross-site" | "same-site")) = header_str(headers, &SEC_FETCH_SITE) {
      return Err(ControlError::Forbidden(format!(
        "{site} browser request refused: the control API serves no web pages"
      )));
    }
    if needs_token {
      // The scheme is case-insensitive (RFC 9110 §11.1), as the client API's is.
      let given = header_str(headers, &header::AUTHORIZATION)
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim());
      match given {
        None => {
          return Err(ControlError::Unauthorized(
            "no control token: send Authorization: Bearer <token> (the CLI prints the token; \
             emulator.controlToken in Node, Emulator::control_token in Rust)"
              .into(),
          ));
        }
        Some(t) if !ct_eq(t, &self.token) => {
          return Err(ControlError::Unauthorized("wrong control token".into()));
        }
        Some(_) => {}
      }
    }
    Ok(())
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use hyper::header::HeaderValue;

  fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
    let mut map = HeaderMap::new();
    for (k, v) in pairs {
      map.insert(*k, HeaderValue::from_str(v).unwrap());
    }
    map
  }

  #[test]
  fn authorities() {
    assert_eq!(
      split_authority("LocalHost:80"),
      Some(("localhost".into(), Some(80)))
    );
    assert_eq!(split_authority("[::1]:9"), Some(("[::1]".into(), Some(9))));
    assert_eq!(split_authority("::1"), Some(("[::1]".into(), None)));
    assert_eq!(split_authority("[::1]x"), None);
    assert_eq!(split_authority("a:b"), None);
    assert_eq!(split_authority("a b"), None);
    assert_eq!(split_authority(""), None);
    assert!(parse_allowed_hosts(&["emu".into(), "emu:99".into()]).is_ok());
    assert!(parse_allowed_hosts(&["http://emu".into()]).is_err());
  }

  #[test]
  fn gate() {
    let access = Access::new(
      "t0123456789abcdef".into(),
      "0.0.0.0",
      vec![("emu".into(), None), ("mapped".into(), Some(8000))],
      9191,
    );
    let ok = |pairs: &[(&'static str, &str)]| access.check(&headers(pairs), true).is_ok();
    let auth = ("authorization", "Bearer t0123456789abcdef");
    for host in [
      "127.0.0.1:9191",
      "localhost:9191",
      "[::1]:9191",
      "0.0.0.0:9191",
      "emu:9191",
      "mapped:8000",
    ] {
      assert!(ok(&[("host", host), auth]), "{host}");
    }
    for host in [
      "evil.com:9191",
      "localhost:9192",
      "localhost",
      "mapped:9191",
      "",
    ] {
      assert!(!ok(&[("host", host), auth]), "{host}");
    }
    let host = ("host", "localhost:9191");
    assert!(!ok(&[host]));
    assert!(!ok(&[host, ("authorization", "Bearer wrong")]));
    assert!(!ok(&[host, ("authorization", "t0123456789abcdef")]));
    assert!(!ok(&[host, ("authorization", "Basic t0123456789abcdef")]));
    assert!(ok(&[host, ("authorization", "bearer t0123456789abcdef")]));
    assert!(ok(&[host, ("authorization", "BEARER t0123456789abcdef")]));
    assert!(ok(&[host, auth, ("origin", "http://localhost:9191")]));
    assert!(!ok(&[host, auth, ("origin", "http://localhost:3000")]));
    assert!(!ok(&[host, auth, ("origin", "http://127.0.0.1:9191")]));
    assert!(!ok(&[host, auth, ("origin", "null")]));
    assert!(ok(&[host, auth, ("sec-fetch-site", "same-origin")]));
    assert!(!ok(&[host, auth, ("sec-fetch-site", "cross-site")]));
    // The index needs no token, but the same Host and Origin.
    assert!(access.check(&headers(&[host]), false).is_ok());
    assert!(
      access
        .check(&headers(&[("host", "evil:9191")]), false)
        .is_err()
    );
  }

  #[test]
  fn tokens() {
    assert_eq!(new_token().len(), 48);
    assert_ne!(new_token(), new_token());
    assert!(validate_token(&new_token()).is_ok());
    assert!(validate_token("short").is_err());
    assert!(validate_token("has a space in it, no").is_err());
  }
}
