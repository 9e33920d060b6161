//! The control API: test and tooling operations on a running emulator, from Rust
//! ([`Control`]) or over HTTP under `/_emulator/` (same JSON shapes). Control requests are never
//! logged or faulted.

use std::fmt;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::faults::{ActiveFault, FaultSpec};
use crate::ids::now_secs;
use crate::log::LoggedRequest;
use crate::server::{
  BodyError, Resp, Shared, empty_response, json_response, query_param, read_body,
};
use crate::state::{ApiError, new_key_secret, new_password_hash, validate_password};

/// Largest control request body (fault bodies can be big on purpose).
const CONTROL_BODY_LIMIT: usize = 64 * 1024 * 1024;

/// A user made through the control API.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
  /// User id (24 hex).
  pub id: String,
  /// The email (the `local-userpass` username).
  pub email: String,
}

/// A server API key. `key` is the secret: shown here once, stored only as a hash.
#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ServerApiKey {
  /// Key id (24 hex).
  pub id: String,
  /// Key name.
  pub name: String,
  /// The secret to log in with (`api-key` provider).
  pub key: String,
}

impl fmt::Debug for ServerApiKey {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("ServerApiKey")
      .field("id", &self.id)
      .field("name", &self.name)
      .field("key", &"<redacted>")
      .finish()
  }
}

/// A pending email confirmation or password reset (what the real server would email).
#[derive(Serialize, Deserialize, Clone, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TokenPair {
  /// The secret token.
  pub token: String,
  /// Its id.
  pub token_id: String,
}

impl fmt::Debug for TokenPair {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("TokenPair")
      .field("token", &"<redacted>")
      .field("token_id", &self.token_id)
      .finish()
  }
}

/// Why a control operation failed. The message never contains a secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum ControlError {
  /// Bad input (HTTP 400).
  InvalidArgument(String),
  /// No such user, fault or pending token (HTTP 404).
  NotFound(String),
  /// Already exists (HTTP 409).
  Conflict(String),
  /// The data file could not be written (HTTP 500).
  Io(String),
}

impl ControlError {
  /// The human-readable message.
  pub fn message(&self) -> &str {
    match self {
      ControlError::InvalidArgument(m)
      | ControlError::NotFound(m)
      | ControlError::Conflict(m)
      | ControlError::Io(m) => m,
    }
  }

  /// The HTTP status of this error on the control API.
  pub fn status(&self) -> u16 {
    match self {
      ControlError::InvalidArgument(_) => 400,
      ControlError::NotFound(_) => 404,
      ControlError::Conflict(_) => 409,
      ControlError::Io(_) => 500,
    }
  }

  fn code(&self) -> &'static str {
    match self {
      ControlError::InvalidArgument(_) => "InvalidArgument",
      ControlError::NotFound(_) => "NotFound",
      ControlError::Conflict(_) => "Conflict",
      ControlError::Io(_) => "Io",
    }
  }
}

impl fmt::Display for ControlError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.write_str(self.message())
  }
}

impl std::error::Error for ControlError {}

impl From<ApiError> for ControlError {
  fn from(e: ApiError) -> ControlError {
    match e.status {
      404 => ControlError::NotFound(e.message),
      409 => ControlError::Conflict(e.message),
      _ => ControlError::InvalidArgument(e.message),
    }
  }
}

/// Handle to the control operations of a running emulator. Cheap to clone.
#[derive(Clone)]
pub struct Control {
  pub(crate) shared: Arc<Shared>,
}

impl fmt::Debug for Control {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("Control")
      .field("base_url", &self.shared.base_url)
      .finish()
  }
}

impl Control {
  /// The emulator's base URL (`http://127.0.0.1:PORT`).
  pub fn base_url(&self) -> &str {
    &self.shared.base_url
  }

  /// The app id the emulator serves.
  pub fn app_id(&self) -> &str {
    &self.shared.config.app_id
  }

  /// Creates a confirmed email/password user (and its user id, without logging in).
  pub fn create_user(&self, email: &str, password: &str) -> Result<CreatedUser, ControlError> {
    if email.trim().is_empty() {
      return Err(ControlError::InvalidArgument(
        "email must not be empty".into(),
      ));
    }
    validate_password(password)?;
    let iterations = self.shared.config.password_iterations;
    let (salt, hash) = new_password_hash(password, iterations);
    let id = {
      let mut st = self.shared.write();
      st.register(email, salt, hash, iterations, true)?;
      st.create_email_user(email, now_secs())?
    };
    self.shared.persist_soon();
    Ok(CreatedUser {
      id,
      email: email.to_string(),
    })
  }

  /// Creates a server API key (with its own user of type `server`).
  pub fn create_server_api_key(&self, name: &str) -> Result<ServerApiKey, ControlError> {
    let (key, hash) = new_key_secret();
    let id = self
      .shared
      .write()
      .create_server_key(name, hash, now_secs())?;
    self.shared.persist_soon();
    Ok(ServerApiKey {
      id,
      name: name.to_string(),
      key,
    })
  }

  /// Installs a fault; returns its id.
  pub fn inject_fault(&self, spec: FaultSpec) -> Result<String, ControlError> {
    self.shared.faults.add(spec)
  }

  /// The installed faults with their remaining counts.
  pub fn faults(&self) -> Vec<ActiveFault> {
    self.shared.faults.list()
  }

  /// Removes one fault.
  pub fn remove_fault(&self, id: &str) -> Result<(), ControlError> {
    if self.shared.faults.remove(id) {
      Ok(())
    } else {
      Err(ControlError::NotFound(format!("no fault with id {id}")))
    }
  }

  /// Removes every fault.
  pub fn clear_faults(&self) {
    self.shared.faults.clear();
  }

  /// Makes every access token issued so far invalid (401 InvalidSession); refresh tokens and
  /// sessions stay valid, so clients can refresh.
  pub fn expire_access_tokens(&self) {
    self.shared.write().access_generation += 1;
    self.shared.persist_soon();
  }

  /// Ends every session of a user: its refresh and access tokens stop working.
  pub fn revoke_sessions(&self, user_id: &str) -> Result<(), ControlError> {
    let found = self.shared.write().revoke_user_sessions(user_id);
    self.shared.persist_soon();
    if found {
      Ok(())
    } else {
      Err(ControlError::NotFound(format!("no user with id {user_id}")))
    }
  }

  /// The request log, oldest first.
  pub fn requests(&self) -> Vec<LoggedRequest> {
    self.shared.log.snapshot()
  }

  /// Empties the request log.
  pub fn clear_requests(&self) {
    self.shared.log.clear();
  }

  /// The pending confirmation of an unconfirmed account (with `require_email_confirmation`).
  pub fn pending_confirmation(&self, email: &str) -> Option<TokenPair> {
    self.shared.read().pending_confirmation(email)
  }

  /// The pending password reset of an account (after `reset/send`).
  pub fn pending_reset(&self, email: &str) -> Option<TokenPair> {
    self.shared.read().pending_reset(email)
  }

  /// Sets a user's custom data (a JSON object): the `user_data` claim of new access tokens.
  pub fn set_custom_data(&self, user_id: &str, data: Value) -> Result<(), ControlError> {
    if !data.is_object() {
      return Err(ControlError::InvalidArgument(
        "custom data must be a JSON object".into(),
      ));
    }
    let found = self.shared.write().set_custom_data(user_id, data);
    self.shared.persist_soon();
    if found {
      Ok(())
    } else {
      Err(ControlError::NotFound(format!("no user with id {user_id}")))
    }
  }

  /// Forgets all users, keys, sessions, faults and the request log.
  pub fn reset(&self) {
    self.shared.write().clear();
    self.shared.faults.clear();
    self.shared.log.clear();
    self.shared.persist_soon();
  }

  /// Waits until the data file reflects every change so far (no-op without one).
  pub async fn flush(&self) -> Result<(), ControlError> {
    self
      .shared
      .persist()
      .await
      .map_err(|e| ControlError::Io(format!("could not write the data file: {e}")))
  }
}

// ---- HTTP --------------------------------------------------------------------------------

fn ok_json(status: u16, value: &impl Serialize) -> Resp {
  json_response(
    status,
    serde_json::to_vec(value).expect("control value serializes"),
  )
}

fn err_json(e: ControlError) -> Resp {
  json_response(
    e.status(),
    json!({ "error": e.message(), "error_code": e.code() })
      .to_string()
      .into_bytes(),
  )
}

fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ControlError> {
  serde_json::from_slice(body)
    .map_err(|e| ControlError::InvalidArgument(format!("invalid JSON body: {e}")))
}

fn unit(result: Result<(), ControlError>) -> Resp {
  match result {
    Ok(()) => empty_response(204),
    Err(e) => err_json(e),
  }
}

#[derive(Deserialize)]
struct UserBody {
  email: String,
  password: String,
}

#[derive(Deserialize)]
struct NameBody {
  name: String,
}

/// Serves `/_emulator/...`.
pub(crate) async fn handle_http(shared: &Arc<Shared>, req: Request<Incoming>) -> Resp {
  let control = Control {
    shared: shared.clone(),
  };
  let (parts, body) = req.into_parts();
  let body = match read_body(body, &parts.headers, CONTROL_BODY_LIMIT).await {
    Ok(b) => b,
    Err(BodyError::TooLarge) => {
      return err_json(ControlError::InvalidArgument("body too large".into()));
    }
    Err(BodyError::Broken) => {
      return err_json(ControlError::InvalidArgument("unreadable body".into()));
    }
  };
  let path = parts.uri.path().trim_end_matches('/');
  let query = parts.uri.query();
  let segs: Vec<&str> = path.trim_start_matches('/').split('/').skip(1).collect();
  let method = &parts.method;
  let email = || query_param(query, "email").unwrap_or_default();
  let token_pair = |pair: Option<TokenPair>, what: &str| match pair {
    Some(p) => ok_json(200, &p),
    None => err_json(ControlError::NotFound(format!(
      "no pending {what} for that email"
    ))),
  };
  match (method, segs.as_slice()) {
    (&Method::GET, ["info"]) => ok_json(
      200,
      &json!({ "appId": control.app_id(), "baseUrl": control.base_url() }),
    ),
    (&Method::POST, ["users"]) => {
      match parse::<UserBody>(&body).and_then(|b| control.create_user(&b.email, &b.password)) {
        Ok(user) => ok_json(201, &user),
        Err(e) => err_json(e),
      }
    }
    (&Method::POST, ["server-api-keys"]) => {
      match parse::<NameBody>(&body).and_then(|b| control.create_server_api_key(&b.name)) {
        Ok(key) => ok_json(201, &key),
        Err(e) => err_json(e),
      }
    }
    (&Method::GET, ["faults"]) => ok_json(200, &control.faults()),
    (&Method::POST, ["faults"]) => {
      match parse::<FaultSpec>(&body).and_then(|s| control.inject_fault(s)) {
        Ok(id) => ok_json(201, &json!({ "id": id })),
        Err(e) => err_json(e),
      }
    }
    (&Method::DELETE, ["faults"]) => {
      control.clear_faults();
      empty_response(204)
    }
    (&Method::DELETE, ["faults", id]) => unit(control.remove_fault(id)),
    (&Method::POST, ["tokens", "expire"]) => {
      control.expire_access_tokens();
      empty_response(204)
    }
    (&Method::POST, ["users", id, "revoke"]) => unit(control.revoke_sessions(id)),
    (&Method::PUT, ["users", id, "custom-data"]) => {
      unit(parse::<Value>(&body).and_then(|data| control.set_custom_data(id, data)))
    }
    (&Method::GET, ["requests"]) => ok_json(200, &control.requests()),
    (&Method::DELETE, ["requests"]) => {
      control.clear_requests();
      empty_response(204)
    }
    (&Method::GET, ["logs"]) => {
      let id = query_param(query, "co_id").unwrap_or_default();
      ok_json(200, &shared.log.find(&id))
    }
    (&Method::GET, ["confirmations"]) => {
      token_pair(control.pending_confirmation(&email()), "confirmation")
    }
    (&Method::GET, ["resets"]) => token_pair(control.pending_reset(&email()), "reset"),
    (&Method::POST, ["reset"]) => {
      control.reset();
      empty_response(204)
    }
    (&Method::POST, ["flush"]) => unit(control.flush().await),
    _ => err_json(ControlError::NotFound(format!(
      "no control route {method} {}",
      parts.uri.path()
    ))),
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn debug_redacts_secrets() {
    let key = ServerApiKey {
      id: "i".into(),
      name: "n".into(),
      key: "SENTINEL_SECRET".into(),
    };
    assert!(!format!("{key:?}").contains("SENTINEL"));
    let pair = TokenPair {
      token: "SENTINEL_TOKEN".into(),
      token_id: "t".into(),
    };
    assert!(!format!("{pair:?}").contains("SENTINEL"));
    assert_eq!(
      serde_json::to_value(&pair).unwrap(),
      json!({"token": "SENTINEL_TOKEN", "tokenId": "t"})
    );
  }

  #[test]
  fn error_shape() {
    let e = ControlError::NotFound("x".into());
    assert_eq!(
      serde_json::to_value(&e).unwrap(),
      json!({"kind": "notFound", "message": "x"})
    );
    assert_eq!(e.status(), 404);
  }
}
