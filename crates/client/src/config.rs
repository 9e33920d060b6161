//! How an App is configured.

use std::collections::BTreeSet;
use std::sync::Mutex;
use std::time::Duration;

use crate::app::lock;
use crate::error::{Error, Result};
use crate::store::Persistence;
use crate::transport::CustomFetch;

/// Where realm v12 sends requests when no base URL is given.
pub const DEFAULT_BASE_URL: &str = "https://services.cloud.mongodb.com";

/// How often an idempotent request is retried by default (see `AppConfig::retries`).
pub const DEFAULT_RETRIES: u32 = 3;

/// Names an emulator (`host:port`, or a URL) that every App without an
/// explicit base URL talks to, as `FIREBASE_AUTH_EMULATOR_HOST` does for Firebase.
pub const EMULATOR_HOST_VAR: &str = "REALM_AUTH_EMULATOR_HOST";

/// The base URL an App gets when none is given: the emulator named by
/// [`EMULATOR_HOST_VAR`] if set, else [`DEFAULT_BASE_URL`]. The first App
/// sent to each emulator address says so in a warning: a variable left set
/// in production would otherwise quietly send its logins there.
pub(crate) fn default_base_url() -> String {
  match std::env::var(EMULATOR_HOST_VAR) {
    Ok(host) if !host.trim().is_empty() => {
      let host = host.trim();
      let url = if host.contains("://") {
        host.to_owned()
      } else {
        format!("http://{host}")
      };
      warn_once_about_emulator(&url);
      url
    }
    _ => DEFAULT_BASE_URL.to_owned(),
  }
}

/// Warns that [`EMULATOR_HOST_VAR`] sends Apps to `url`, once per address and process.
fn warn_once_about_emulator(url: &str) {
  static WARNED: Mutex<BTreeSet<String>> = Mutex::new(BTreeSet::new());
  if lock(&WARNED).insert(url.to_owned()) {
    crate::log::warn(&format!(
      "{EMULATOR_HOST_VAR} is set: Apps without a baseUrl talk to the emulator at {url}, \
       not to {DEFAULT_BASE_URL}"
    ));
  }
}

/// realm v12's default per-request timeout.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(60_000);

/// Describes the calling device; sent as `options.device` with every login.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DeviceInfo {
  /// Operating system name (Node's `os.type()`).
  pub platform: String,
  /// Operating system release (Node's `os.release()`).
  pub platform_version: String,
  /// CPU architecture (Node's `process.arch`).
  pub cpu_arch: String,
  /// Runtime name, e.g. `Node.js`.
  pub framework_name: String,
  /// Runtime version, e.g. `v20.20.2`.
  pub framework_version: String,
  /// This SDK's version.
  pub sdk_version: String,
}

/// Configuration of one App.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AppConfig {
  /// The App id (client app id).
  pub id: String,
  /// The server's base URL, without a trailing slash.
  pub base_url: String,
  /// Deadline of each request (connecting, sending and reading the response).
  pub timeout: Duration,
  /// Sent with logins.
  pub device: DeviceInfo,
  /// Retries of a request that failed in a way worth retrying (0: none). GET,
  /// PUT and DELETE are retried after connection failures and 429/502/503/504;
  /// POST only when the request never left (the connection was refused). A
  /// server's `Retry-After` is honoured up to 60 s. Apps that share an id and
  /// base URL also share a retry budget (500 tokens; a retry takes 5, or 10
  /// after a failure in transit; a call answered without a retry gives 1
  /// back, one answered after a retry gives that retry's cost back): while it
  /// is spent, failures are not retried.
  pub retries: u32,
  /// Where the App's users are kept between processes (default: in memory only).
  /// Apps that share an id and base URL share one store: the first App's setting wins.
  pub persistence: Persistence,
  /// Sends this App's requests instead of the built-in HTTP client (realm
  /// v12's `fetch` option); `None`: the built-in client.
  pub fetch: Option<CustomFetch>,
}

impl AppConfig {
  /// True for a plain `http://` URL to a host other than loopback: tokens and
  /// passwords would cross the network unencrypted.
  pub fn is_insecure(&self) -> bool {
    let Ok(url) = self.base_url.parse::<url::Url>() else {
      return false;
    };
    let loopback = match url.host() {
      Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
      Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
      Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
      None => false,
    };
    url.scheme() == "http" && !loopback
  }

  /// Validates and normalises a configuration: a non-empty id, an `http(s)`
  /// base URL (trailing slashes trimmed, as realm-core does) and a non-zero timeout.
  pub fn new(id: &str, base_url: Option<&str>, timeout: Option<Duration>) -> Result<AppConfig> {
    if id.is_empty() {
      return Err(Error::invalid_argument(
        "Expected 'id' to be a non-empty string",
      ));
    }
    if id
      .chars()
      .any(|c| c.is_control() || c == '/' || c == '?' || c == '#')
    {
      return Err(Error::invalid_argument(
        "Expected 'id' to be an App id, got a string with '/', '?', '#' or control characters",
      ));
    }
    let base_url = match base_url {
      Some(url) => url.trim_end_matches('/').to_owned(),
      None => default_base_url().trim_end_matches('/').to_owned(),
    };
    let valid_scheme = base_url.starts_with("http://") || base_url.starts_with("https://");
    if !valid_scheme || base_url.parse::<url::Url>().is_err() {
      return Err(Error::invalid_argument(format!(
        "Expected 'baseUrl' to be an http:// or https:// URL, got '{base_url}'"
      )));
    }
    let timeout = timeout.unwrap_or(DEFAULT_TIMEOUT);
    if timeout.is_zero() {
      return Err(Error::invalid_argument(
        "Expected 'timeout' to be a positive number of milliseconds",
      ));
    }
    Ok(AppConfig {
      id: id.to_owned(),
      base_url,
      timeout,
      device: DeviceInfo::default(),
      retries: DEFAULT_RETRIES,
      persistence: Persistence::InMemory,
      fetch: None,
    })
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn trims_and_defaults() {
    let c = AppConfig::new("my-app", Some("http://127.0.0.1:9/"), None).unwrap();
    assert_eq!(c.base_url, "http://127.0.0.1:9");
    assert_eq!(c.timeout, DEFAULT_TIMEOUT);
    assert_eq!(
      AppConfig::new("a", None, None).unwrap().base_url,
      DEFAULT_BASE_URL
    );
  }

  #[test]
  fn insecure_means_plain_http_off_loopback() {
    let insecure = |u: &str| AppConfig::new("a", Some(u), None).unwrap().is_insecure();
    assert!(insecure("http://example.com"));
    assert!(insecure("http://10.0.0.1:8080"));
    assert!(!insecure("http://127.0.0.1:9191"));
    assert!(!insecure("http://localhost:9191"));
    assert!(!insecure("http://[::1]:9191"));
    assert!(!insecure("https://example.com"));
  }

  #[test]
  fn refuses_bad_input() {
    assert!(AppConfig::new("", None, None).is_err());
    assert!(AppConfig::new("a/b", None, None).is_err());
    assert!(AppConfig::new("a", Some("ftp://x"), None).is_err());
    assert!(AppConfig::new("a", Some("not a url"), None).is_err());
    assert!(AppConfig::new("a", None, Some(Duration::ZERO)).is_err());
  }
}
