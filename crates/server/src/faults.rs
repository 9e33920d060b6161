//! Fault injection: rules that make matching client-API requests misbehave (drop, truncate,
//! stall, answer with a canned response) so client retry and error paths can be tested.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::control::ControlError;

/// Prefix added to fault paths that do not start with `/` or `*`.
const API_BASE: &str = "/api/client/v2.0/";

/// One fault rule.
///
/// JSON (camelCase): `{"method":"GET","path":"/api/client/v2.0/auth/api_keys","times":2,
/// "delayMs":0,"action":{"type":"respond","status":503,"body":"..."}}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct FaultSpec {
  /// HTTP method to match, case-insensitive; `None` matches any.
  #[serde(default)]
  pub method: Option<String>,
  /// Path pattern, matched against the path without its query. Segments are split on `/`; `*`
  /// matches exactly one segment, except as the last segment where it matches one or more; a
  /// final `**` matches zero or more. A pattern that starts with neither `/` nor `*` is taken
  /// relative to `/api/client/v2.0/` (so `auth/api_keys/*` works).
  pub path: String,
  /// How many matching requests the fault affects: `None` = 1, `Some(0)` = every matching
  /// request until the faults are cleared.
  #[serde(default)]
  pub times: Option<u32>,
  /// Milliseconds to wait before acting (with `passThrough`, before normal handling).
  #[serde(default)]
  pub delay_ms: u64,
  /// What to do.
  pub action: FaultAction,
}

/// What a fault does to a matching request. The real handler runs only for `PassThrough`, so
/// every other action leaves the state untouched.
///
/// JSON: internally tagged by `type`: `passThrough`, `respond`, `drop`, `reset`, `truncate`,
/// `slowBody`. `headers` defaults to `{}` and `body` to `""`. Unless `headers` names a
/// `Content-Type`, a non-empty body is sent as `application/json`; a `Content-Type` of `""`
/// sends none.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(
  tag = "type",
  rename_all = "camelCase",
  rename_all_fields = "camelCase"
)]
pub enum FaultAction {
  /// Only the delay, then normal handling (a stalled but correct response).
  PassThrough,
  /// A canned response (e.g. 429 with `Retry-After`, 503, an HTML page, malformed JSON).
  Respond {
    /// Status code (200..=999).
    status: u16,
    /// Extra response headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Response body.
    #[serde(default)]
    body: String,
  },
  /// Close the TCP connection without sending anything (orderly close: the client reads EOF).
  Drop,
  /// Abort the TCP connection without sending anything (RST: the client sees a reset).
  Reset,
  /// Send the status line and headers claiming the full `Content-Length`, then only the first
  /// `bytes` bytes of `body`, then close the connection.
  Truncate {
    /// Status code.
    status: u16,
    /// Extra response headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// The full body (its length is what `Content-Length` claims).
    #[serde(default)]
    body: String,
    /// How many body bytes are actually sent (at most the body length).
    bytes: usize,
  },
  /// Send the headers at once, then the body in `chunk_bytes` pieces, each after
  /// `chunk_delay_ms` milliseconds.
  SlowBody {
    /// Status code.
    status: u16,
    /// Extra response headers.
    #[serde(default)]
    headers: BTreeMap<String, String>,
    /// Response body.
    #[serde(default)]
    body: String,
    /// Bytes per chunk (at least 1).
    chunk_bytes: usize,
    /// Delay before each chunk.
    chunk_delay_ms: u64,
  },
}

impl FaultSpec {
  /// A fault on every method for `path` that acts once, without delay.
  pub fn new(path: impl Into<String>, action: FaultAction) -> FaultSpec {
    FaultSpec {
      method: None,
      path: path.into(),
      times: None,
      delay_ms: 0,
      action,
    }
  }

  /// Restricts the fault to one HTTP method.
  pub fn method(mut self, method: impl Into<String>) -> FaultSpec {
    self.method = Some(method.into());
    self
  }

  /// Sets how many matching requests are affected (0 = unlimited).
  pub fn times(mut self, times: u32) -> FaultSpec {
    self.times = Some(times);
    self
  }

  /// Sets the delay before acting.
  pub fn delay_ms(mut self, delay_ms: u64) -> FaultSpec {
    self.delay_ms = delay_ms;
    self
  }

  fn validate(&self) -> Result<(), ControlError> {
    let bad = |m: String| Err(ControlError::InvalidArgument(m));
    if self.path.is_empty() {
      return bad("fault path must not be empty".into());
    }
    let (status, headers) = match &self.action {
      FaultAction::Respond {
        status, headers, ..
      }
      | FaultAction::SlowBody {
        status, headers, ..
      }
      | FaultAction::Truncate {
        status, headers, ..
      } => (*status, headers),
      FaultAction::PassThrough | FaultAction::Drop | FaultAction::Reset => return Ok(()),
    };
    // 1xx would be taken for an interim response or an upgrade.
    if !(200..=999).contains(&status) {
      return bad(format!("status {status} is not between 200 and 999"));
    }
    for (name, value) in headers {
      if hyper::header::HeaderName::from_bytes(name.as_bytes()).is_err()
        || hyper::header::HeaderValue::from_str(value).is_err()
      {
        return bad(format!("invalid response header {name:?}"));
      }
    }
    match &self.action {
      FaultAction::Truncate { body, bytes, .. } if *bytes >= body.len() => {
        bad("truncate bytes must be smaller than the body length".into())
      }
      FaultAction::SlowBody { chunk_bytes: 0, .. } => bad("chunkBytes must be at least 1".into()),
      _ => Ok(()),
    }
  }
}

impl FaultAction {
  /// A canned response with no extra headers.
  pub fn respond(status: u16, body: impl Into<String>) -> FaultAction {
    FaultAction::Respond {
      status,
      headers: BTreeMap::new(),
      body: body.into(),
    }
  }

  /// A canned App Services JSON error (`{"error", "error_code"}`).
  pub fn error(status: u16, error_code: &str, error: &str) -> FaultAction {
    FaultAction::respond(
      status,
      serde_json::json!({ "error": error, "error_code": error_code }).to_string(),
    )
  }
}

/// An installed fault, as listed by `GET /_emulator/faults`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ActiveFault {
  /// Fault id (as returned by `inject_fault`).
  pub id: String,
  /// The rule.
  pub spec: FaultSpec,
  /// Matching requests still to affect; `None` = unlimited.
  pub remaining: Option<u32>,
  /// Requests affected so far.
  pub hits: u64,
}

/// A fault that matched a request.
pub(crate) struct Hit {
  pub id: String,
  pub delay_ms: u64,
  pub action: FaultAction,
}

#[derive(Default)]
struct Inner {
  next_id: u64,
  faults: Vec<ActiveFault>,
}

/// The installed faults.
#[derive(Default)]
pub(crate) struct Faults {
  // Lets the hot path skip the lock when no fault is installed.
  any: AtomicBool,
  inner: Mutex<Inner>,
}

impl Faults {
  /// Installs a fault; returns its id.
  pub fn add(&self, spec: FaultSpec) -> Result<String, ControlError> {
    spec.validate()?;
    let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
    inner.next_id += 1;
    let id = format!("fault-{}", inner.next_id);
    let remaining = match spec.times {
      None => Some(1),
      Some(0) => None,
      Some(n) => Some(n),
    };
    inner.faults.push(ActiveFault {
      id: id.clone(),
      spec,
      remaining,
      hits: 0,
    });
    self.any.store(true, Ordering::Release);
    Ok(id)
  }

  /// Removes every fault.
  pub fn clear(&self) {
    let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
    inner.faults.clear();
    self.any.store(false, Ordering::Release);
  }

  /// Removes one fault; false if there was none with that id.
  pub fn remove(&self, id: &str) -> bool {
    let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
    let before = inner.faults.len();
    inner.faults.retain(|f| f.id != id);
    self.any.store(!inner.faults.is_empty(), Ordering::Release);
    inner.faults.len() != before
  }

  /// The installed faults.
  pub fn list(&self) -> Vec<ActiveFault> {
    self
      .inner
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .faults
      .clone()
  }

  /// Finds the first fault (in installation order) matching the request, counts the hit and
  /// retires the fault when its count is used up.
  pub fn take(&self, method: &str, path: &str) -> Option<Hit> {
    if !self.any.load(Ordering::Acquire) {
      return None;
    }
    let mut inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
    let index = inner.faults.iter().position(|f| {
      f.spec
        .method
        .as_deref()
        .is_none_or(|m| m.eq_ignore_ascii_case(method))
        && path_matches(&f.spec.path, path)
    })?;
    let fault = &mut inner.faults[index];
    fault.hits += 1;
    let hit = Hit {
      id: fault.id.clone(),
      delay_ms: fault.spec.delay_ms,
      action: fault.spec.action.clone(),
    };
    if let Some(remaining) = &mut fault.remaining {
      *remaining -= 1;
      if *remaining == 0 {
        inner.faults.remove(index);
        self.any.store(!inner.faults.is_empty(), Ordering::Release);
      }
    }
    Some(hit)
  }
}

/// Matches a fault path pattern (see [`FaultSpec::path`]) against a request path.
pub(crate) fn path_matches(pattern: &str, path: &str) -> bool {
  let full;
  let pattern = if pattern.starts_with('/') || pattern.starts_with('*') {
    pattern
  } else {
    full = format!("{API_BASE}{pattern}");
    &full
  };
  let pat: Vec<&str> = pattern.trim_start_matches('/').split('/').collect();
  let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
  for (i, p) in pat.iter().enumerate() {
    let last = i + 1 == pat.len();
    match *p {
      "**" if last => return true,
      "*" if last => return segs.len() > i,
      "*" => {
        if i >= segs.len() {
          return false;
        }
      }
      literal => {
        if segs.get(i) != Some(&literal) {
          return false;
        }
      }
    }
  }
  pat.len() == segs.len()
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn patterns() {
    let keys = "/api/client/v2.0/auth/api_keys";
    assert!(path_matches(keys, keys));
    assert!(!path_matches(keys, "/api/client/v2.0/auth/api_keys/x"));
    assert!(path_matches("auth/api_keys", keys));
    assert!(path_matches(
      "/api/client/v2.0/auth/api_keys/*",
      "/api/client/v2.0/auth/api_keys/a"
    ));
    assert!(path_matches(
      "/api/client/v2.0/auth/api_keys/*",
      "/api/client/v2.0/auth/api_keys/a/enable"
    ));
    assert!(!path_matches("/api/client/v2.0/auth/api_keys/*", keys));
    assert!(path_matches("/api/client/v2.0/auth/api_keys/**", keys));
    assert!(path_matches(
      "/api/client/v2.0/app/*/location",
      "/api/client/v2.0/app/my-app/location"
    ));
    assert!(!path_matches(
      "/api/client/v2.0/app/*/location",
      "/api/client/v2.0/app/my-app/auth"
    ));
    assert!(path_matches("*", "/anything/at/all"));
    assert!(path_matches("/**", "/"));
  }

  #[test]
  fn counts_and_order() {
    let f = Faults::default();
    let a = f
      .add(
        FaultSpec::new("/x", FaultAction::Drop)
          .method("get")
          .times(2),
      )
      .unwrap();
    let b = f
      .add(FaultSpec::new("/x", FaultAction::Reset).times(0))
      .unwrap();
    assert!(f.take("POST", "/y").is_none());
    assert_eq!(f.take("GET", "/x").unwrap().id, a);
    assert_eq!(f.take("GET", "/x").unwrap().id, a);
    assert_eq!(f.take("GET", "/x").unwrap().id, b);
    assert_eq!(f.take("POST", "/x").unwrap().id, b);
    assert_eq!(f.list().len(), 1);
    f.clear();
    assert!(f.take("GET", "/x").is_none());
  }

  #[test]
  fn json_shape() {
    let spec: FaultSpec = serde_json::from_str(
      r#"{"path":"auth/api_keys","action":{"type":"slowBody","status":200,"body":"[]","chunkBytes":1,"chunkDelayMs":5}}"#,
    )
    .unwrap();
    assert_eq!(spec.times, None);
    assert!(matches!(
      spec.action,
      FaultAction::SlowBody { chunk_bytes: 1, .. }
    ));
    let drop: FaultAction = serde_json::from_str(r#"{"type":"drop"}"#).unwrap();
    assert_eq!(drop, FaultAction::Drop);
    assert!(
      Faults::default()
        .add(FaultSpec::new(
          "/x",
          FaultAction::Truncate {
            status: 200,
            headers: Default::default(),
            body: "ab".into(),
            bytes: 2
          }
        ))
        .is_err()
    );
    let f = Faults::default();
    assert!(
      f.add(FaultSpec::new("/x", FaultAction::respond(101, "")))
        .is_err()
    );
    let mut headers = BTreeMap::new();
    headers.insert("bad header".to_string(), "v".to_string());
    let respond = FaultAction::Respond {
      status: 200,
      headers,
      body: String::new(),
    };
    assert!(f.add(FaultSpec::new("/x", respond)).is_err());
  }
}
