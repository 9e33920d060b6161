//! The control API: test and tooling operations on a running emulator, from Rust
//! ([`Control`]) or over HTTP under `/_emulator/` (same JSON shapes; `GET /_emulator/` lists the
//! routes, [`CONTROL_ROUTES`]). Control requests are never logged or faulted.

use std::fmt;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Method, Request};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

use crate::faults::{ActiveFault, FaultSpec};
use crate::ids::now_secs;
use crate::log::LoggedRequest;
use crate::server::{
  BodyError, Resp, Shared, discard_body, empty_response, header_str, json_response, query_param,
  read_body,
};
use crate::state::{self, ApiError, Ident, new_key_secret, validate_password};
use crate::store::Pending;

/// Largest control request body. (Bigger fault bodies can be installed from Rust or Node.)
pub(crate) const CONTROL_BODY_LIMIT: usize = 1024 * 1024;

/// A user made through the control API.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CreatedUser {
  /// User id (24 hex).
  pub id: String,
  /// The email (the `local-userpass` username).
  pub email: String,
}

/// A user as `GET /_emulator/users` lists it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct ListedUser {
  /// User id (24 hex).
  pub id: String,
  /// The email, for email/password users.
  pub email: Option<String>,
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

/// The numeric code of an emulator error: the `code` of the HTTP control API's error bodies and
/// of the Node binding's errors (its `EmulatorErrorCode` enum has the same values, named
/// `Emulator` + the variant). They sit in this SDK's own range (49xx, after the client's codes).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[repr(u32)]
pub enum EmulatorErrorCode {
  /// The emulator was stopped (Node binding only: every method after `stop()`).
  Stopped = 4910,
  /// `create_user` with an email that already has an account.
  UserExists = 4911,
  /// No user with that id (`revoke_sessions`, `set_custom_data`).
  UserNotFound = 4912,
  /// Bad input: a malformed body, a password of the wrong length, an invalid fault, name or
  /// option.
  BadRequest = 4913,
  /// No such fault, pending confirmation or reset, or control route.
  NotFound = 4914,
  /// Already exists: a server API key with that name.
  Conflict = 4915,
  /// The data file could not be read or written.
  DataFile = 4916,
  /// The emulator could not listen on its host and port.
  BindFailed = 4917,
  /// A control request without the control token, or with a wrong one (HTTP only).
  Unauthorized = 4918,
  /// A control request with a foreign `Host` or from another web origin (HTTP only).
  Forbidden = 4919,
}

impl EmulatorErrorCode {
  /// Every code, in numeric order.
  pub const ALL: [EmulatorErrorCode; 10] = [
    EmulatorErrorCode::Stopped,
    EmulatorErrorCode::UserExists,
    EmulatorErrorCode::UserNotFound,
    EmulatorErrorCode::BadRequest,
    EmulatorErrorCode::NotFound,
    EmulatorErrorCode::Conflict,
    EmulatorErrorCode::DataFile,
    EmulatorErrorCode::BindFailed,
    EmulatorErrorCode::Unauthorized,
    EmulatorErrorCode::Forbidden,
  ];

  /// The number (`err.code` in Node, `code` in HTTP error bodies).
  pub fn value(self) -> u32 {
    self as u32
  }

  /// The name, as the Node binding's `EmulatorErrorCode` spells it (`EmulatorUserExists`).
  pub fn name(self) -> &'static str {
    match self {
      EmulatorErrorCode::Stopped => "EmulatorStopped",
      EmulatorErrorCode::UserExists => "EmulatorUserExists",
      EmulatorErrorCode::UserNotFound => "EmulatorUserNotFound",
      EmulatorErrorCode::BadRequest => "EmulatorBadRequest",
      EmulatorErrorCode::NotFound => "EmulatorNotFound",
      EmulatorErrorCode::Conflict => "EmulatorConflict",
      EmulatorErrorCode::DataFile => "EmulatorDataFile",
      EmulatorErrorCode::BindFailed => "EmulatorBindFailed",
      EmulatorErrorCode::Unauthorized => "EmulatorUnauthorized",
      EmulatorErrorCode::Forbidden => "EmulatorForbidden",
    }
  }

  /// One line on when it happens.
  pub fn description(self) -> &'static str {
    match self {
      EmulatorErrorCode::Stopped => "the emulator was stopped (Node: any method after stop())",
      EmulatorErrorCode::UserExists => "a user with that email already exists",
      EmulatorErrorCode::UserNotFound => "no user with that id",
      EmulatorErrorCode::BadRequest => {
        "bad input: malformed JSON, a missing field, an invalid password, name, fault or option"
      }
      EmulatorErrorCode::NotFound => "no such fault, pending confirmation or reset, or route",
      EmulatorErrorCode::Conflict => "a server API key with that name already exists",
      EmulatorErrorCode::DataFile => "the data file could not be read or written",
      EmulatorErrorCode::BindFailed => "the emulator could not listen on its host and port",
      EmulatorErrorCode::Unauthorized => {
        "a control request without the control token (Authorization: Bearer <token>) or with a wrong one"
      }
      EmulatorErrorCode::Forbidden => {
        "a control request naming another Host, or sent from another web origin"
      }
    }
  }
}

/// Why a control operation failed. The message never contains a secret.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", content = "message", rename_all = "camelCase")]
pub enum ControlError {
  /// Bad input (HTTP 400).
  InvalidArgument(String),
  /// No such fault or pending token (HTTP 404).
  NotFound(String),
  /// Already exists: a server API key name (HTTP 409).
  Conflict(String),
  /// The data file could not be written (HTTP 500).
  Io(String),
  /// `create_user` with an email that already has an account (HTTP 409).
  UserExists(String),
  /// No user with that id (HTTP 404).
  UserNotFound(String),
  /// An HTTP control request without the control token or with a wrong one (HTTP 401).
  Unauthorized(String),
  /// An HTTP control request with a foreign `Host` or from another web origin (HTTP 403).
  Forbidden(String),
  /// An HTTP control request body that is not `application/json` (HTTP 415).
  UnsupportedMediaType(String),
  /// An HTTP control request body over the limit (HTTP 413).
  PayloadTooLarge(String),
}

impl ControlError {
  /// The human-readable message.
  pub fn message(&self) -> &str {
    match self {
      ControlError::InvalidArgument(m)
      | ControlError::NotFound(m)
      | ControlError::Conflict(m)
      | ControlError::Io(m)
      | ControlError::UserExists(m)
      | ControlError::UserNotFound(m)
      | ControlError::Unauthorized(m)
      | ControlError::Forbidden(m)
      | ControlError::UnsupportedMediaType(m)
      | ControlError::PayloadTooLarge(m) => m,
    }
  }

  /// The HTTP status of this error on the control API.
  pub fn status(&self) -> u16 {
    match self {
      ControlError::InvalidArgument(_) => 400,
      ControlError::NotFound(_) | ControlError::UserNotFound(_) => 404,
      ControlError::Conflict(_) | ControlError::UserExists(_) => 409,
      ControlError::Io(_) => 500,
      ControlError::Unauthorized(_) => 401,
      ControlError::Forbidden(_) => 403,
      ControlError::UnsupportedMediaType(_) => 415,
      ControlError::PayloadTooLarge(_) => 413,
    }
  }

  /// The numeric code (also in the HTTP error body, as `code`).
  pub fn code(&self) -> EmulatorErrorCode {
    match self {
      ControlError::InvalidArgument(_)
      | ControlError::UnsupportedMediaType(_)
      | ControlError::PayloadTooLarge(_) => EmulatorErrorCode::BadRequest,
      ControlError::NotFound(_) => EmulatorErrorCode::NotFound,
      ControlError::Conflict(_) => EmulatorErrorCode::Conflict,
      ControlError::Io(_) => EmulatorErrorCode::DataFile,
      ControlError::UserExists(_) => EmulatorErrorCode::UserExists,
      ControlError::UserNotFound(_) => EmulatorErrorCode::UserNotFound,
      ControlError::Unauthorized(_) => EmulatorErrorCode::Unauthorized,
      ControlError::Forbidden(_) => EmulatorErrorCode::Forbidden,
    }
  }

  /// The HTTP body's `error_code`: the status class, kept from before numeric codes existed.
  fn error_code(&self) -> &'static str {
    match self {
      ControlError::InvalidArgument(_) => "InvalidArgument",
      ControlError::NotFound(_) | ControlError::UserNotFound(_) => "NotFound",
      ControlError::Conflict(_) | ControlError::UserExists(_) => "Conflict",
      ControlError::Io(_) => "Io",
      ControlError::Unauthorized(_) => "Unauthorized",
      ControlError::Forbidden(_) => "Forbidden",
      ControlError::UnsupportedMediaType(_) => "UnsupportedMediaType",
      ControlError::PayloadTooLarge(_) => "PayloadTooLarge",
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
      500 | 503 => ControlError::Io(e.message),
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

  /// Every user, oldest first: id, and email when it has one (its profile's `email`).
  /// (An unreachable database lists none: this method cannot fail, and is for tests.)
  pub fn users(&self) -> Vec<ListedUser> {
    let users = self
      .shared
      .tx_blocking(false, |tx| Ok(tx.users()?))
      .unwrap_or_default();
    users
      .into_iter()
      .map(|u| ListedUser {
        email: u
          .data
          .get("email")
          .and_then(|e| e.as_str())
          .map(str::to_owned),
        id: u.id,
      })
      .collect()
  }

  /// Creates a confirmed email/password user (and its user id, without logging in).
  pub fn create_user(&self, email: &str, password: &str) -> Result<CreatedUser, ControlError> {
    if email.trim().is_empty() {
      return Err(ControlError::InvalidArgument(
        "email must not be empty".into(),
      ));
    }
    validate_password(password)?;
    let new =
      crate::passwords::hash_new(password, &crate::passwords::effective(&self.shared.config));
    let app_id = self.shared.config.app_id.as_str();
    let id = self.shared.tx_blocking(true, |tx| {
      // The only conflict of `register`; its wire message ("name already in use") is the
      // client API's, not one that names the email.
      state::register(tx, email, new.salt, new.hash, new.iterations, true).map_err(|e| match e
        .status
      {
        409 => ApiError::new(409, "UserExists", ""),
        _ => e,
      })?;
      state::resolve(
        tx,
        app_id,
        Ident::Email(email),
        None,
        Map::new(),
        now_secs(),
      )
    });
    let id = id.map_err(|e| match (e.status, e.code) {
      (409, "UserExists") => {
        ControlError::UserExists(format!("a user with email '{email}' already exists"))
      }
      _ => e.into(),
    })?;
    self.shared.persist_soon();
    Ok(CreatedUser {
      id,
      email: email.to_string(),
    })
  }

  /// [`Control::create_user`] on tokio's blocking pool, so that hashing the password holds up
  /// no thread that serves requests (or, in Node, runs JavaScript). Needs a tokio runtime.
  pub async fn create_user_async(
    &self,
    email: String,
    password: String,
  ) -> Result<CreatedUser, ControlError> {
    let control = self.clone();
    tokio::task::spawn_blocking(move || control.create_user(&email, &password))
      .await
      // A panic while creating the user is a bug: it stays a panic.
      .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
  }

  /// Creates a server API key (with its own user of type `server`).
  pub fn create_server_api_key(&self, name: &str) -> Result<ServerApiKey, ControlError> {
    let (key, hash) = new_key_secret();
    let app_id = self.shared.config.app_id.as_str();
    let id = self.shared.tx_blocking(true, |tx| {
      state::create_server_key(tx, app_id, name, hash, now_secs())
    })?;
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
  /// sessions stay valid, so clients can refresh. (Best effort when the database is down.)
  pub fn expire_access_tokens(&self) {
    if let Err(e) = self
      .shared
      .tx_blocking(true, |tx| Ok(tx.bump_access_generation()?))
    {
      eprintln!(
        "realm-auth-server: could not expire access tokens: {}",
        e.message
      );
    }
    self.shared.persist_soon();
  }

  /// Ends every session of a user: its refresh and access tokens stop working.
  pub fn revoke_sessions(&self, user_id: &str) -> Result<(), ControlError> {
    let found = self
      .shared
      .tx_blocking(true, |tx| state::revoke_user_sessions(tx, user_id))?;
    self.shared.persist_soon();
    if found { Ok(()) } else { Err(no_user(user_id)) }
  }

  /// The request log, oldest first.
  pub fn requests(&self) -> Vec<LoggedRequest> {
    self.shared.log.snapshot()
  }

  /// Empties the request log.
  pub fn clear_requests(&self) {
    self.shared.log.clear();
  }

  /// The pending confirmation of an unconfirmed account (with `require_email_confirmation`),
  /// if this process issued it.
  pub fn pending_confirmation(&self, email: &str) -> Option<TokenPair> {
    self
      .shared
      .pending_plain(Pending::Confirm, email)
      .ok()
      .flatten()
  }

  /// The pending password reset of an account (after `reset/send`), if this process issued it.
  pub fn pending_reset(&self, email: &str) -> Option<TokenPair> {
    self
      .shared
      .pending_plain(Pending::Reset, email)
      .ok()
      .flatten()
  }

  /// Sets a user's custom data (a JSON object): the `user_data` claim of new access tokens.
  pub fn set_custom_data(&self, user_id: &str, data: Value) -> Result<(), ControlError> {
    if !data.is_object() {
      return Err(ControlError::InvalidArgument(
        "custom data must be a JSON object".into(),
      ));
    }
    let found = self
      .shared
      .tx_blocking(true, |tx| state::set_custom_data(tx, user_id, data))?;
    self.shared.persist_soon();
    if found { Ok(()) } else { Err(no_user(user_id)) }
  }

  /// Forgets all users, keys, sessions, faults and the request log.
  pub fn reset(&self) {
    if let Err(e) = self.shared.tx_blocking(true, |tx| Ok(tx.clear()?)) {
      eprintln!(
        "realm-auth-server: could not reset the store: {}",
        e.message
      );
    }
    self.shared.forget_pending();
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

fn no_user(user_id: &str) -> ControlError {
  ControlError::UserNotFound(format!("no user with id '{user_id}'"))
}

// ---- HTTP --------------------------------------------------------------------------------

/// One route of the HTTP control API, as `GET /_emulator/` lists it.
#[derive(Serialize, Clone, Copy, Debug, PartialEq, Eq)]
pub struct ControlRoute {
  /// HTTP method.
  pub method: &'static str,
  /// Path; `:name` marks a path parameter, `?name=:value` a query parameter.
  pub path: &'static str,
  /// What it does, in one line.
  pub description: &'static str,
}

const fn route(
  method: &'static str,
  path: &'static str,
  description: &'static str,
) -> ControlRoute {
  ControlRoute {
    method,
    path,
    description,
  }
}

/// Every control route, in the order `GET /_emulator/` lists them. (A test calls each one, so
/// this table and the dispatcher in `handle_http` cannot drift apart unnoticed.)
pub const CONTROL_ROUTES: &[ControlRoute] = &[
  route(
    "GET",
    "/_emulator/",
    "this list: the control routes, the error codes and the guide",
  ),
  route(
    "GET",
    "/_emulator/info",
    "the app id and base URL: {appId, baseUrl}",
  ),
  route(
    "GET",
    "/_emulator/users",
    "every user, oldest first: [{id, email}] (email null for users without one)",
  ),
  route(
    "POST",
    "/_emulator/users",
    "create a confirmed email/password user from {email, password}: 201 {id, email}",
  ),
  route(
    "POST",
    "/_emulator/server-api-keys",
    "create a server API key from {name}: 201 {id, name, key} (the only time key is shown)",
  ),
  route(
    "GET",
    "/_emulator/faults",
    "the installed faults: [{id, spec, remaining, hits}]",
  ),
  route(
    "POST",
    "/_emulator/faults",
    "install a fault (a FaultSpec) on client-API requests: 201 {id}",
  ),
  route("DELETE", "/_emulator/faults", "remove every fault"),
  route("DELETE", "/_emulator/faults/:id", "remove one fault"),
  route(
    "POST",
    "/_emulator/tokens/expire",
    "make every access token issued so far invalid (refresh tokens keep working)",
  ),
  route(
    "POST",
    "/_emulator/users/:id/revoke",
    "end every session of a user (its refresh and access tokens stop working)",
  ),
  route(
    "PUT",
    "/_emulator/users/:id/custom-data",
    "set a user's custom data (a JSON object): the user_data of its next access tokens",
  ),
  route(
    "GET",
    "/_emulator/requests",
    "the request log, oldest first, secrets redacted, with each request's outcome",
  ),
  route("DELETE", "/_emulator/requests", "empty the request log"),
  route(
    "GET",
    "/_emulator/logs?co_id=:requestId",
    "the logged request an error's link points to: [LoggedRequest]",
  ),
  route(
    "GET",
    "/_emulator/confirmations?email=:email",
    "the pending email confirmation of an account: {token, tokenId}",
  ),
  route(
    "GET",
    "/_emulator/resets?email=:email",
    "the pending password reset of an account: {token, tokenId}",
  ),
  route(
    "POST",
    "/_emulator/reset",
    "forget all users, keys, sessions, faults and the request log",
  ),
  route(
    "POST",
    "/_emulator/flush",
    "wait until the data file holds every change (no-op without one)",
  ),
];

/// Where the guide is, relative to the package (and repository) root.
const GUIDE: &str = "docs/EMULATOR.md";

/// How to authenticate, as the index says it (the index is the one route that needs no token).
const AUTHENTICATION: &str = "every route but this one needs the control token: send \
  Authorization: Bearer <token> (the CLI prints the token; emulator.controlToken in Node); \
  bodies must be Content-Type: application/json, at most 1 MiB";

/// The body of `GET /_emulator/`.
fn index() -> Value {
  let codes: Vec<Value> = EmulatorErrorCode::ALL
    .iter()
    .map(|c| json!({ "code": c.value(), "name": c.name(), "description": c.description() }))
    .collect();
  json!({
    "routes": CONTROL_ROUTES,
    "errorCodes": codes,
    "guide": GUIDE,
    "authentication": AUTHENTICATION,
  })
}

fn ok_json(status: u16, value: &impl Serialize) -> Resp {
  json_response(
    status,
    serde_json::to_vec(value).expect("control value serializes"),
  )
}

fn err_json(e: ControlError) -> Resp {
  json_response(
    e.status(),
    json!({ "error": e.message(), "error_code": e.error_code(), "code": e.code().value() })
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

/// Whether a `Content-Type` is JSON (`application/json`, any parameters, any case).
fn is_json(content_type: Option<&str>) -> bool {
  content_type.is_some_and(|t| {
    t.split(';')
      .next()
      .is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json"))
  })
}

/// Serves `/_emulator/...`.
pub(crate) async fn handle_http(shared: &Arc<Shared>, req: Request<Incoming>) -> Resp {
  let control = Control {
    shared: shared.clone(),
  };
  let (parts, body) = req.into_parts();
  let path = parts.uri.path().trim_end_matches('/');
  // The index reveals no secret, and tells a curl user how to authenticate.
  let is_index = parts.method == Method::GET && path == "/_emulator";
  // Checked before the body is read: nobody else gets to make the emulator buffer anything.
  if let Err(e) = shared.access.check(&parts.headers, !is_index) {
    discard_body(body, &parts.headers, CONTROL_BODY_LIMIT).await;
    return err_json(e);
  }
  let body = match read_body(shared, body, &parts.headers, CONTROL_BODY_LIMIT).await {
    Ok(b) => b,
    Err(BodyError::TooLarge) => {
      return err_json(ControlError::PayloadTooLarge(format!(
        "control request bodies are limited to {} MiB",
        CONTROL_BODY_LIMIT >> 20
      )));
    }
    Err(BodyError::Broken) => {
      return err_json(ControlError::InvalidArgument("unreadable body".into()));
    }
    Err(BodyError::TimedOut) => {
      let mut resp = empty_response(408);
      resp.headers_mut().insert(
        hyper::header::CONNECTION,
        hyper::header::HeaderValue::from_static("close"),
      );
      return resp;
    }
  };
  // A form or text/plain body is what a web page can send without a CORS preflight.
  if !body.is_empty() && !is_json(header_str(&parts.headers, &hyper::header::CONTENT_TYPE)) {
    return err_json(ControlError::UnsupportedMediaType(
      "control request bodies must be sent with Content-Type: application/json".into(),
    ));
  }
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
    (&Method::GET, []) => ok_json(200, &index()),
    (&Method::GET, ["info"]) => ok_json(
      200,
      &json!({ "appId": control.app_id(), "baseUrl": control.base_url() }),
    ),
    (&Method::GET, ["users"]) => ok_json(200, &control.users()),
    (&Method::POST, ["users"]) => match parse::<UserBody>(&body) {
      Ok(b) => match control.create_user_async(b.email, b.password).await {
        Ok(user) => ok_json(201, &user),
        Err(e) => err_json(e),
      },
      Err(e) => err_json(e),
    },
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
      "no control route {method} {}; GET /_emulator/ lists them",
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
    assert_eq!(e.code(), EmulatorErrorCode::NotFound);
  }

  #[test]
  fn codes_are_distinct_and_in_order() {
    let values: Vec<u32> = EmulatorErrorCode::ALL.iter().map(|c| c.value()).collect();
    assert_eq!(values, (4910..4920).collect::<Vec<_>>());
    for c in EmulatorErrorCode::ALL {
      assert!(c.name().starts_with("Emulator"), "{c:?}");
      assert!(!c.description().is_empty());
    }
  }

  #[test]
  fn routes_are_unique_and_documented() {
    let mut seen = std::collections::HashSet::new();
    for r in CONTROL_ROUTES {
      assert!(seen.insert((r.method, r.path)), "listed twice: {r:?}");
      assert!(r.path.starts_with("/_emulator/"), "{r:?}");
      assert!(!r.description.is_empty(), "{r:?}");
    }
  }
}
