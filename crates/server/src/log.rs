//! The request log: one entry per client-API request that reached the emulator (control requests
//! are not logged), including those a fault delayed, dropped or reset and those the client gave up
//! on, each with what happened to it; bounded, with secrets redacted before they are stored.

use std::collections::VecDeque;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What the `Authorization` header of a logged request turned out to be.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum TokenType {
  /// No `Authorization` header.
  #[default]
  None,
  /// A valid access token.
  Access,
  /// A valid refresh token.
  Refresh,
  /// A header that did not authenticate: garbage, bad signature, expired, revoked, or a token of
  /// the wrong kind for the route.
  Invalid,
}

/// What happened to a logged request: how it was answered, or why it was not.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Default)]
#[serde(rename_all = "camelCase")]
pub enum RequestOutcome {
  /// Handled normally and answered (no fault, or a `passThrough` fault without delay).
  #[default]
  Served,
  /// A `passThrough` fault held it for its delay, then it was handled normally.
  DelayedThenServed,
  /// A `respond` fault answered with its canned response (the handler did not run).
  CannedResponse,
  /// A `slowBody` fault sent the headers at once and is trickling the body.
  SlowBody,
  /// A `truncate` fault sent part of a response, then closed the connection.
  Truncated,
  /// A `drop` fault closed the connection without a response (the client reads EOF).
  Dropped,
  /// A `reset` fault aborted the connection without a response (the client sees a reset).
  Reset,
  /// The client closed the connection before the response was ready (for example during a
  /// fault's delay); status 0.
  AbortedByClient,
  /// The emulator stopped before the response was ready; status 0.
  Stopped,
}

/// One request as the emulator saw it. Never holds a token, password or key value.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct LoggedRequest {
  /// Request id; also the `co_id` in error `link`s.
  pub id: String,
  /// HTTP method.
  pub method: String,
  /// Path without the query.
  pub path: String,
  /// Raw query string, if any.
  pub query: Option<String>,
  /// Kind of token the request authenticated with.
  pub token_type: TokenType,
  /// The user the token authenticated, if it did.
  pub user_id: Option<String>,
  /// The JSON body with secret fields replaced by `"<redacted>"`; a non-JSON body is summarised.
  pub body: Option<Value>,
  /// Response status; 0 when no response was sent (a `drop` or `reset` fault, the client gave up,
  /// the emulator stopped).
  pub status: u16,
  /// Id of the fault that affected this request.
  pub fault: Option<String>,
  /// `Content-Type` request header.
  pub content_type: Option<String>,
  /// `Accept` request header.
  pub accept: Option<String>,
  /// Whether an `Authorization` header was present (its value is never logged).
  pub has_authorization: bool,
  /// When the request arrived, milliseconds since the Unix epoch.
  pub timestamp_ms: u64,
  /// What happened to the request (with `fault`: what the fault did to it). Entries are logged
  /// once this is known, so the log is in completion order.
  #[serde(default)]
  pub outcome: RequestOutcome,
}

/// Field names whose values are replaced before a body is logged.
const SECRET_FIELDS: &[&str] = &[
  "password",
  "key",
  "token",
  "tokenId",
  "access_token",
  "refresh_token",
  "accessToken",
  "refreshToken",
  "id_token",
  "authCode",
];

/// The placeholder for a redacted value.
pub(crate) const REDACTED: &str = "<redacted>";

/// Replaces every secret field (at any depth) of `value` with `"<redacted>"`.
pub(crate) fn redact(value: &mut Value) {
  match value {
    Value::Object(map) => {
      for (k, v) in map.iter_mut() {
        if SECRET_FIELDS.contains(&k.as_str()) {
          *v = Value::String(REDACTED.into());
        } else {
          redact(v);
        }
      }
    }
    Value::Array(items) => items.iter_mut().for_each(redact),
    _ => {}
  }
}

/// The loggable form of a request body: redacted JSON, or a size note for anything else (raw
/// text could hold a secret we cannot find).
pub(crate) fn loggable_body(bytes: &[u8]) -> Option<Value> {
  if bytes.is_empty() {
    return None;
  }
  match serde_json::from_slice::<Value>(bytes) {
    Ok(mut v) => {
      redact(&mut v);
      Some(v)
    }
    Err(_) => Some(Value::String(format!(
      "<non-JSON body, {} bytes>",
      bytes.len()
    ))),
  }
}

/// A bounded in-memory log: the oldest entry is dropped once `capacity` is reached.
pub(crate) struct RequestLog {
  capacity: usize,
  entries: Mutex<VecDeque<LoggedRequest>>,
}

impl RequestLog {
  /// An empty log holding at most `capacity` entries (0 disables logging).
  pub fn new(capacity: usize) -> RequestLog {
    RequestLog {
      capacity,
      entries: Mutex::new(VecDeque::with_capacity(capacity.min(1024))),
    }
  }

  /// Appends an entry.
  pub fn push(&self, entry: LoggedRequest) {
    if self.capacity == 0 {
      return;
    }
    let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
    if entries.len() >= self.capacity {
      entries.pop_front();
    }
    entries.push_back(entry);
  }

  /// A copy of every entry, oldest first.
  pub fn snapshot(&self) -> Vec<LoggedRequest> {
    let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
    entries.iter().cloned().collect()
  }

  /// Entries with request id `id`.
  pub fn find(&self, id: &str) -> Vec<LoggedRequest> {
    let entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
    entries.iter().filter(|e| e.id == id).cloned().collect()
  }

  /// Forgets every entry.
  pub fn clear(&self) {
    self
      .entries
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .clear();
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use serde_json::json;

  #[test]
  fn redacts_nested_secrets() {
    let mut v =
      json!({"username": "a", "password": "p", "options": {"key": "k", "n": [ {"token": "t"} ]}});
    redact(&mut v);
    assert_eq!(v["username"], "a");
    assert_eq!(v["password"], REDACTED);
    assert_eq!(v["options"]["key"], REDACTED);
    assert_eq!(v["options"]["n"][0]["token"], REDACTED);
    assert_eq!(
      loggable_body(b"password=hunter2"),
      Some(json!("<non-JSON body, 16 bytes>"))
    );
  }

  #[test]
  fn bounded() {
    let log = RequestLog::new(2);
    for i in 0..3 {
      log.push(LoggedRequest {
        id: i.to_string(),
        method: "GET".into(),
        path: "/".into(),
        query: None,
        token_type: TokenType::None,
        user_id: None,
        body: None,
        status: 200,
        fault: None,
        content_type: None,
        accept: None,
        has_authorization: false,
        timestamp_ms: 0,
        outcome: RequestOutcome::Served,
      });
    }
    let ids: Vec<_> = log.snapshot().into_iter().map(|e| e.id).collect();
    assert_eq!(ids, ["1", "2"]);
  }
}
