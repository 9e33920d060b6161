//! The client API (`/api/client/v2.0`): route table and handlers.

use bytes::Bytes;
use hyper::Method;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use serde_json::{Map, Value, json};

use crate::ids::{now_secs, object_id, parse_object_id};
use crate::log::{LoggedRequest, TokenType};
use crate::server::{
  BodyError, Resp, Shared, empty_response, header_str, json_response, public_base, query_param,
};
use crate::state::{
  self, ANON, API_KEY, ApiError, CUSTOM_FUNCTION, CUSTOM_TOKEN, Ident, KeyView, USERPASS, key_hash,
  new_key_secret, new_password_hash, validate_password,
};
use crate::tokens::{Claims, Kind, Reject, verify_custom_token};

/// Where the client API lives.
pub(crate) const BASE: &str = "/api/client/v2.0";

/// Iteration counts above this hash on the blocking pool instead of the request's thread.
const INLINE_HASH_ITERATIONS: u32 = 20_000;

/// The email/password provider's sub-routes.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Userpass {
  Register,
  Confirm,
  ConfirmSend,
  ConfirmCall,
  Reset,
  ResetSend,
  ResetCall,
}

/// A matched route.
#[derive(Debug, PartialEq)]
enum Route<'a> {
  Location { app: &'a str },
  Login { app: &'a str, provider: &'a str },
  Userpass { app: &'a str, action: Userpass },
  Profile,
  Session,
  DeleteUser,
  Keys,
  Key { id: &'a str },
  KeyEnable { id: &'a str },
  KeyDisable { id: &'a str },
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const PUT: &[Method] = &[Method::PUT];
const DELETE: &[Method] = &[Method::DELETE];
const POST_DELETE: &[Method] = &[Method::POST, Method::DELETE];
const GET_POST: &[Method] = &[Method::GET, Method::POST];
const GET_DELETE: &[Method] = &[Method::GET, Method::DELETE];

/// The route table: path segments after `/api/client/v2.0/` -> route and allowed methods.
fn route<'a>(segs: &[&'a str]) -> Option<(Route<'a>, &'static [Method])> {
  use Userpass::*;
  Some(match segs {
    ["app", app, "location"] => (Route::Location { app }, GET),
    ["app", app, "auth", "providers", provider, "login"] => (Route::Login { app, provider }, POST),
    ["app", app, "auth", "providers", "local-userpass", rest @ ..] => {
      let action = match rest {
        ["register"] => Register,
        ["confirm"] => Confirm,
        ["confirm", "send"] => ConfirmSend,
        ["confirm", "call"] => ConfirmCall,
        ["reset"] => Reset,
        ["reset", "send"] => ResetSend,
        ["reset", "call"] => ResetCall,
        _ => return None,
      };
      (Route::Userpass { app, action }, POST)
    }
    ["auth", "profile"] => (Route::Profile, GET),
    ["auth", "session"] => (Route::Session, POST_DELETE),
    ["auth", "delete"] => (Route::DeleteUser, DELETE),
    ["auth", "api_keys"] => (Route::Keys, GET_POST),
    ["auth", "api_keys", id] => (Route::Key { id }, GET_DELETE),
    ["auth", "api_keys", id, "enable"] => (Route::KeyEnable { id }, PUT),
    ["auth", "api_keys", id, "disable"] => (Route::KeyDisable { id }, PUT),
    _ => return None,
  })
}

/// A successful result.
enum Reply {
  Json(u16, Vec<u8>),
  Empty(u16),
}

/// Per-request context handed to handlers.
struct Ctx<'a> {
  shared: &'a Shared,
  parts: &'a Parts,
  entry: &'a mut LoggedRequest,
}

/// Handles one client-API request (faults already applied) and returns the response. Fills the
/// log entry's token type and user id.
pub(crate) async fn dispatch(
  shared: &Shared,
  parts: &Parts,
  body: Result<Bytes, BodyError>,
  entry: &mut LoggedRequest,
) -> Resp {
  let version_before = shared.version();
  let request_id = entry.id.clone();
  let mut ctx = Ctx {
    shared,
    parts,
    entry,
  };
  let result = match body {
    Err(BodyError::TooLarge) => Err(ApiError::new(
      413,
      "BadRequest",
      format!(
        "request body is larger than {} bytes",
        crate::server::BODY_LIMIT
      ),
    )),
    Err(BodyError::Broken) => Err(ApiError::bad_request("could not read the request body")),
    Ok(body) => route_request(&mut ctx, &body).await,
  };
  if ctx.entry.has_authorization && ctx.entry.token_type == TokenType::None {
    ctx.entry.token_type = classify(shared, parts);
  }
  let result = match result {
    Ok(reply) if shared.version() != version_before => match shared.persist().await {
      Ok(()) => Ok(reply),
      Err(e) => Err(ApiError::new(
        500,
        "InternalServerError",
        format!("could not write the data file: {e}"),
      )),
    },
    other => other,
  };
  match result {
    Ok(Reply::Json(status, body)) => json_response(status, body),
    Ok(Reply::Empty(status)) => empty_response(status),
    Err(e) => error_response(shared, parts, &request_id, e),
  }
}

/// Renders an [`ApiError`]: `{"error","error_code","link"}`, or nothing for bare errors.
fn error_response(shared: &Shared, parts: &Parts, request_id: &str, e: ApiError) -> Resp {
  if e.bare {
    return empty_response(e.status);
  }
  let link = format!(
    "{}/_emulator/logs?co_id={request_id}",
    public_base(shared, &parts.headers)
  );
  let body = json!({ "error": e.message, "error_code": e.code, "link": link });
  let mut resp = json_response(e.status, body.to_string().into_bytes());
  if e.status == 405
    && let Some((_, methods)) = e.message.rsplit_once("allowed: ")
    && let Ok(allow) = HeaderValue::from_str(methods)
  {
    resp.headers_mut().insert(header::ALLOW, allow);
  }
  resp
}

async fn route_request(ctx: &mut Ctx<'_>, body: &[u8]) -> Result<Reply, ApiError> {
  let path = ctx.parts.uri.path();
  let not_found = || ApiError::new(404, "NotFound", format!("no route for {path}"));
  let rest = path
    .strip_prefix(BASE)
    .and_then(|r| r.strip_prefix('/'))
    .ok_or_else(not_found)?;
  let segs: Vec<&str> = rest.split('/').collect();
  let (route, methods) = route(&segs).ok_or_else(not_found)?;
  let method = &ctx.parts.method;
  if !methods.contains(method) {
    let allowed: Vec<&str> = methods.iter().map(Method::as_str).collect();
    return Err(ApiError::new(
      405,
      "MethodNotAllowed",
      format!(
        "method {method} is not allowed here; allowed: {}",
        allowed.join(", ")
      ),
    ));
  }
  let app_matches = |app: &str| {
    if app == ctx.shared.config.app_id {
      Ok(())
    } else {
      Err(ApiError::new(
        404,
        "AppNotFound",
        format!("cannot find app using Client App ID '{app}'"),
      ))
    }
  };
  match route {
    Route::Location { app } => {
      app_matches(app)?;
      location(ctx)
    }
    Route::Login { app, provider } => {
      app_matches(app)?;
      login(ctx, provider, body).await
    }
    Route::Userpass { app, action } => {
      app_matches(app)?;
      userpass(ctx, action, body).await
    }
    Route::Profile => profile(ctx),
    Route::Session if *method == Method::POST => refresh_session(ctx),
    Route::Session => logout(ctx),
    Route::DeleteUser => delete_user(ctx),
    Route::Keys if *method == Method::GET => list_keys(ctx),
    Route::Keys => create_key(ctx, body),
    Route::Key { id } if *method == Method::GET => fetch_key(ctx, id),
    Route::Key { id } => delete_key(ctx, id),
    Route::KeyEnable { id } => set_key_disabled(ctx, id, false),
    Route::KeyDisable { id } => set_key_disabled(ctx, id, true),
  }
}

// ---- helpers -------------------------------------------------------------------------------

/// Parses a JSON object body (`{}` when empty and `allow_empty`).
fn parse_object(body: &[u8], allow_empty: bool) -> Result<Map<String, Value>, ApiError> {
  if body.iter().all(u8::is_ascii_whitespace) {
    return if allow_empty {
      Ok(Map::new())
    } else {
      Err(ApiError::bad_request("request body must be a JSON object"))
    };
  }
  match serde_json::from_slice::<Value>(body) {
    Ok(Value::Object(map)) => Ok(map),
    Ok(_) => Err(ApiError::bad_request("request body must be a JSON object")),
    Err(e) => Err(ApiError::bad_request(format!("invalid JSON: {e}"))),
  }
}

/// A required string field.
fn str_field<'a>(map: &'a Map<String, Value>, name: &str) -> Result<&'a str, ApiError> {
  match map.get(name) {
    Some(Value::String(s)) => Ok(s),
    None | Some(Value::Null) => Err(ApiError::bad_request(format!(
      "missing required field '{name}'"
    ))),
    Some(_) => Err(ApiError::bad_request(format!(
      "field '{name}' must be a string"
    ))),
  }
}

/// An optional `arguments` field must be an array.
fn check_arguments(map: &Map<String, Value>) -> Result<(), ApiError> {
  match map.get("arguments") {
    None | Some(Value::Null) | Some(Value::Array(_)) => Ok(()),
    Some(_) => Err(ApiError::bad_request("field 'arguments' must be an array")),
  }
}

/// The bearer token of the request, verified cryptographically (state checks come later).
fn bearer_claims(ctx: &mut Ctx<'_>) -> Result<Claims, ApiError> {
  let Some(value) = ctx.parts.headers.get(header::AUTHORIZATION) else {
    return Err(ApiError::must_authenticate());
  };
  ctx.entry.token_type = TokenType::Invalid;
  let token = value
    .to_str()
    .ok()
    .and_then(|v| v.split_once(' '))
    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
    .map(|(_, t)| t.trim())
    .ok_or_else(|| ApiError::invalid_session("malformed Authorization header"))?;
  ctx.shared.tokens.verify(token).map_err(|e| {
    ApiError::invalid_session(match e {
      Reject::Malformed => "malformed token",
      Reject::BadSignature => "token signature is invalid",
    })
  })
}

/// Marks the log entry as authenticated.
fn note_auth(entry: &mut LoggedRequest, kind: Kind, user_id: &str) {
  entry.token_type = match kind {
    Kind::Access => TokenType::Access,
    Kind::Refresh => TokenType::Refresh,
  };
  entry.user_id = Some(user_id.to_string());
}

/// For the log: what kind of token a request carried on a route that did not check it.
fn classify(shared: &Shared, parts: &Parts) -> TokenType {
  let token = header_str(&parts.headers, &header::AUTHORIZATION)
    .and_then(|v| v.split_once(' '))
    .map(|(_, t)| t.trim());
  match token.and_then(|t| shared.tokens.verify(t).ok()) {
    Some(c) if c.typ == Kind::Access => TokenType::Access,
    Some(_) => TokenType::Refresh,
    None => TokenType::Invalid,
  }
}

/// Runs a password hash inline, or on the blocking pool when the iteration count is high.
async fn hash_off_thread<T: Send + 'static>(
  iterations: u32,
  f: impl FnOnce() -> T + Send + 'static,
) -> T {
  if iterations <= INLINE_HASH_ITERATIONS {
    f()
  } else {
    tokio::task::spawn_blocking(f)
      .await
      .expect("password hashing panicked")
  }
}

/// Login response tokens for a session.
fn session_tokens(
  shared: &Shared,
  st: &state::State,
  user_id: &str,
  session_id: &str,
  device_id: &str,
  now: u64,
) -> Value {
  let empty = json!({});
  let user_data = st.users.get(user_id).map_or(&empty, |u| &u.custom_data);
  let access = shared.tokens.access(
    user_id,
    session_id,
    device_id,
    user_data,
    st.access_generation,
    now,
    shared.config.access_token_ttl_secs,
  );
  let refresh = shared.tokens.refresh(
    user_id,
    session_id,
    now,
    shared.config.refresh_token_ttl_secs,
  );
  json!({
    "access_token": access,
    "refresh_token": refresh,
    "user_id": user_id,
    "device_id": device_id,
  })
}

// ---- handlers -------------------------------------------------------------------------------

fn location(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let base = public_base(ctx.shared, &ctx.parts.headers);
  let ws = base.replacen("http://", "ws://", 1);
  let body = json!({
    "deployment_model": "GLOBAL",
    "location": "US-VA",
    "hostname": base,
    "ws_hostname": ws,
  });
  Ok(Reply::Json(200, body.to_string().into_bytes()))
}

async fn login(ctx: &mut Ctx<'_>, provider: &str, body: &[u8]) -> Result<Reply, ApiError> {
  let shared = ctx.shared;
  let link = query_param(ctx.parts.uri.query(), "link").as_deref() == Some("true");
  let linking_claims = if link {
    Some(bearer_claims(ctx)?)
  } else {
    None
  };
  let payload = parse_object(body, true)?;
  let now = now_secs();

  // Verify the credential (password hashing happens outside the state lock).
  enum Cred<'a> {
    Anonymous,
    Email(&'a str),
    KeyHash(String),
    External(&'static str, String),
  }
  let cred = match provider {
    ANON => Cred::Anonymous,
    USERPASS => {
      let email = str_field(&payload, "username")?;
      let password = str_field(&payload, "password")?.to_string();
      let record = shared.read().password_record(email);
      let Some((salt, hash, iterations)) = record else {
        return Err(ApiError::bad_credentials());
      };
      let computed = hash_off_thread(iterations, move || {
        state::hash_password(&password, &salt, iterations)
      })
      .await;
      if !state::ct_eq(&computed, &hash) {
        return Err(ApiError::bad_credentials());
      }
      Cred::Email(email)
    }
    API_KEY => Cred::KeyHash(key_hash(str_field(&payload, "key")?)),
    CUSTOM_TOKEN => {
      let Some(secret) = &shared.config.custom_token_secret else {
        return Err(unsupported_provider(provider));
      };
      let token = str_field(&payload, "token")?;
      let sub = verify_custom_token(secret.as_bytes(), token, now).map_err(|why| {
        ApiError::new(
          401,
          "AuthError",
          format!("invalid custom auth token: {why}"),
        )
      })?;
      Cred::External(CUSTOM_TOKEN, sub)
    }
    CUSTOM_FUNCTION => {
      let field = &shared.config.function_identity_field;
      match payload.get(field) {
        Some(Value::String(id)) if !id.is_empty() => Cred::External(CUSTOM_FUNCTION, id.clone()),
        _ => {
          return Err(ApiError::new(
            401,
            "AuthError",
            format!(
              "custom function authentication failed: payload field '{field}' must be a non-empty string"
            ),
          ));
        }
      }
    }
    _ => return Err(unsupported_provider(provider)),
  };

  let mut st = shared.write();
  // The linking session is checked under the same lock that links, so it cannot die in between.
  let linking = match &linking_claims {
    Some(claims) => {
      let session = st.authenticate(claims, Kind::Access, now)?;
      note_auth(ctx.entry, Kind::Access, &session.user_id);
      Some((
        session.user_id.clone(),
        session.id.clone(),
        session.device_id.clone(),
      ))
    }
    None => None,
  };
  let mut via_key = None;
  let ident = match &cred {
    Cred::Anonymous => Ident::Anonymous,
    Cred::Email(email) => {
      st.check_confirmed(email)?;
      Ident::Email(email)
    }
    Cred::KeyHash(hash) => {
      let (owner, key_id) = st.key_login(hash)?;
      via_key = Some(key_id.clone());
      Ident::ApiKey { key_id, owner }
    }
    Cred::External(provider, id) => Ident::External { provider, id },
  };
  let user_id = st.resolve(ident, linking.as_ref().map(|l| l.0.as_str()), now)?;
  let body = match linking {
    // Linking keeps the caller's session: fresh tokens for it, same device.
    Some((_, session_id, device_id)) => {
      session_tokens(shared, &st, &user_id, &session_id, &device_id, now)
    }
    None => {
      let device_id = requested_device_id(&payload).unwrap_or_else(object_id);
      let session_id = st.new_session(
        &user_id,
        &device_id,
        via_key,
        shared.config.refresh_token_ttl_secs,
        now,
      );
      session_tokens(shared, &st, &user_id, &session_id, &device_id, now)
    }
  };
  Ok(Reply::Json(200, body.to_string().into_bytes()))
}

fn unsupported_provider(provider: &str) -> ApiError {
  ApiError::new(
    401,
    "AuthProviderNotFound",
    format!("authentication via '{provider}' is unsupported"),
  )
}

/// `options.device.deviceId.$oid` from a login body, when it is a real (non-zero) ObjectId.
fn requested_device_id(payload: &Map<String, Value>) -> Option<String> {
  let oid = payload
    .get("options")?
    .get("device")?
    .get("deviceId")?
    .get("$oid")?
    .as_str()?;
  parse_object_id(oid).filter(|id| id.bytes().any(|b| b != b'0'))
}

async fn userpass(ctx: &mut Ctx<'_>, action: Userpass, body: &[u8]) -> Result<Reply, ApiError> {
  let shared = ctx.shared;
  let payload = parse_object(body, false)?;
  let iterations = shared.config.password_iterations;
  match action {
    Userpass::Register => {
      let email = str_field(&payload, "email")?;
      let password = str_field(&payload, "password")?.to_string();
      if email.trim().is_empty() {
        return Err(ApiError::bad_request("email must not be empty"));
      }
      validate_password(&password)?;
      if shared.read().emails.contains_key(email) {
        return Err(ApiError::new(
          409,
          "AccountNameInUse",
          "name already in use",
        ));
      }
      let (salt, hash) =
        hash_off_thread(iterations, move || new_password_hash(&password, iterations)).await;
      let confirmed = !shared.config.require_email_confirmation;
      shared
        .write()
        .register(email, salt, hash, iterations, confirmed)?;
      Ok(Reply::Empty(201))
    }
    Userpass::Confirm => {
      let token = str_field(&payload, "token")?;
      let token_id = str_field(&payload, "tokenId")?;
      shared.write().confirm(token, token_id)?;
      Ok(Reply::Empty(204))
    }
    Userpass::ConfirmSend => {
      let email = str_field(&payload, "email")?;
      shared.write().resend_confirmation(email)?;
      Ok(Reply::Empty(204))
    }
    Userpass::ConfirmCall => {
      // The emulator's "confirmation function" behaves like a resend: new pending tokens.
      // realm v12 sends only `{email}` (core's `retry_custom_confirmation`).
      let email = str_field(&payload, "email")?;
      check_arguments(&payload)?;
      shared.write().resend_confirmation(email)?;
      Ok(Reply::Empty(204))
    }
    Userpass::ResetSend => {
      let email = str_field(&payload, "email")?;
      shared.write().start_reset(email)?;
      Ok(Reply::Empty(204))
    }
    Userpass::Reset => {
      let token = str_field(&payload, "token")?;
      let token_id = str_field(&payload, "tokenId")?;
      let password = str_field(&payload, "password")?.to_string();
      validate_password(&password)?;
      let email = shared.read().reset_email(token, token_id)?;
      let (salt, hash) =
        hash_off_thread(iterations, move || new_password_hash(&password, iterations)).await;
      let mut st = shared.write();
      // Re-check: the token may have been used while we were hashing.
      st.reset_email(token, token_id)?;
      st.set_password(&email, salt, hash, iterations)?;
      Ok(Reply::Empty(204))
    }
    Userpass::ResetCall => {
      // The emulator's "reset function" approves every request: the password changes now.
      let email = str_field(&payload, "email")?;
      let password = str_field(&payload, "password")?.to_string();
      check_arguments(&payload)?;
      validate_password(&password)?;
      if !shared.read().emails.contains_key(email) {
        return Err(ApiError::user_not_found());
      }
      let (salt, hash) =
        hash_off_thread(iterations, move || new_password_hash(&password, iterations)).await;
      shared.write().set_password(email, salt, hash, iterations)?;
      Ok(Reply::Empty(204))
    }
  }
}

fn profile(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let st = ctx.shared.read();
  let session = st.authenticate(&claims, Kind::Access, now_secs())?;
  note_auth(ctx.entry, Kind::Access, &session.user_id);
  let profile = st
    .profile(&session.user_id)
    .ok_or_else(|| ApiError::invalid_session("user not found"))?;
  Ok(Reply::Json(200, profile.to_string().into_bytes()))
}

fn refresh_session(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let now = now_secs();
  let shared = ctx.shared;
  let st = shared.read();
  let session = st.authenticate(&claims, Kind::Refresh, now)?;
  note_auth(ctx.entry, Kind::Refresh, &session.user_id);
  let empty = json!({});
  let user_data = st
    .users
    .get(&session.user_id)
    .map_or(&empty, |u| &u.custom_data);
  let access = shared.tokens.access(
    &session.user_id,
    &session.id,
    &session.device_id,
    user_data,
    st.access_generation,
    now,
    shared.config.access_token_ttl_secs,
  );
  Ok(Reply::Json(
    201,
    json!({ "access_token": access }).to_string().into_bytes(),
  ))
}

fn logout(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let mut st = ctx.shared.write();
  let session = st.authenticate(&claims, Kind::Refresh, now_secs())?;
  note_auth(ctx.entry, Kind::Refresh, &session.user_id);
  let id = session.id.clone();
  st.end_session(&id);
  Ok(Reply::Empty(204))
}

fn delete_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let mut st = ctx.shared.write();
  let session = st.authenticate(&claims, Kind::Access, now_secs())?;
  note_auth(ctx.entry, Kind::Access, &session.user_id);
  let user_id = session.user_id.clone();
  st.delete_user(&user_id);
  Ok(Reply::Empty(204))
}

fn list_keys(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let st = ctx.shared.read();
  let session = st.authenticate(&claims, Kind::Refresh, now_secs())?;
  note_auth(ctx.entry, Kind::Refresh, &session.user_id);
  let user = st.check_key_manager(&session.user_id)?;
  Ok(Reply::Json(200, st.list_keys_json(user)))
}

fn create_key(ctx: &mut Ctx<'_>, body: &[u8]) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let now = now_secs();
  let shared = ctx.shared;
  let mut st = shared.write();
  let session = st.authenticate(&claims, Kind::Refresh, now)?;
  note_auth(ctx.entry, Kind::Refresh, &session.user_id);
  let owner = session.user_id.clone();
  st.check_key_manager(&owner)?;
  let payload = parse_object(body, false)?;
  let name = str_field(&payload, "name")?;
  let (secret, hash) = new_key_secret();
  let id = st.create_key(&owner, name, hash, shared.config.max_api_keys_per_user, now)?;
  let body = json!({ "_id": id, "key": secret, "name": name, "disabled": false });
  Ok(Reply::Json(201, body.to_string().into_bytes()))
}

fn fetch_key(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let st = ctx.shared.read();
  let session = st.authenticate(&claims, Kind::Refresh, now_secs())?;
  note_auth(ctx.entry, Kind::Refresh, &session.user_id);
  let owner = &session.user_id;
  st.check_key_manager(owner)?;
  let key = st.owned_key(owner, id)?;
  let view = KeyView {
    id: &key.id,
    name: &key.name,
    disabled: key.disabled,
  };
  Ok(Reply::Json(
    200,
    serde_json::to_vec(&view).expect("key serializes"),
  ))
}

fn delete_key(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let mut st = ctx.shared.write();
  let session = st.authenticate(&claims, Kind::Refresh, now_secs())?;
  note_auth(ctx.entry, Kind::Refresh, &session.user_id);
  let (owner, calling_key) = (session.user_id.clone(), session.via_key.clone());
  st.check_key_manager(&owner)?;
  st.delete_key(&owner, id, calling_key.as_deref())?;
  Ok(Reply::Empty(204))
}

fn set_key_disabled(ctx: &mut Ctx<'_>, id: &str, disabled: bool) -> Result<Reply, ApiError> {
  let claims = bearer_claims(ctx)?;
  let mut st = ctx.shared.write();
  let session = st.authenticate(&claims, Kind::Refresh, now_secs())?;
  note_auth(ctx.entry, Kind::Refresh, &session.user_id);
  let owner = session.user_id.clone();
  st.check_key_manager(&owner)?;
  st.set_key_disabled(&owner, id, disabled)?;
  Ok(Reply::Empty(204))
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn route_table() {
    fn r(p: &'static str) -> Option<Route<'static>> {
      route(&p.split('/').collect::<Vec<_>>()).map(|(r, _)| r)
    }
    assert_eq!(r("app/a/location"), Some(Route::Location { app: "a" }));
    assert_eq!(
      r("app/a/auth/providers/local-userpass/login"),
      Some(Route::Login {
        app: "a",
        provider: "local-userpass"
      })
    );
    assert_eq!(
      r("app/a/auth/providers/local-userpass/reset/call"),
      Some(Route::Userpass {
        app: "a",
        action: Userpass::ResetCall
      })
    );
    assert_eq!(
      r("auth/api_keys/x/enable"),
      Some(Route::KeyEnable { id: "x" })
    );
    assert_eq!(r("auth/api_keys/x/other"), None);
    assert_eq!(r("auth/nothing"), None);
  }

  #[test]
  fn device_id_from_options() {
    let p = |v: Value| v.as_object().unwrap().clone();
    let oid = "0123456789abcdef01234567";
    assert_eq!(
      requested_device_id(&p(
        json!({"options": {"device": {"deviceId": {"$oid": oid}}}})
      ))
      .as_deref(),
      Some(oid)
    );
    assert_eq!(
      requested_device_id(&p(
        json!({"options": {"device": {"deviceId": {"$oid": "000000000000000000000000"}}}})
      )),
      None
    );
    assert_eq!(requested_device_id(&p(json!({}))), None);
  }
}
