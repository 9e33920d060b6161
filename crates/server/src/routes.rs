//! The client API (`/api/client/v2.0`): route table and handlers.

use std::borrow::Cow;
use std::sync::Arc;

use bytes::Bytes;
use hyper::Method;
use hyper::header::{self, HeaderValue};
use hyper::http::request::Parts;
use serde_json::{Map, Value, json};

use crate::MetadataField;
use crate::ids::{now_millis, now_secs, object_id, parse_object_id};
use crate::log::{LoggedRequest, TokenType};
use crate::server::{
  BodyError, Resp, Shared, empty_response, header_str, json_response, public_base, query_param,
};
use crate::state::{
  self, ANON, API_KEY, ApiError, CUSTOM_FUNCTION, CUSTOM_TOKEN, Ident, KeyView, Session, USERPASS,
  key_hash, new_key_secret, validate_password,
};
use crate::store::{Pending, Tx};
use crate::tokens::{Claims, Kind};
use crate::{passwords, throttle};

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

/// The route template of a client-API path, for metrics and the access log: a bounded name,
/// never the path (which holds app and key ids). `None` when no route matches.
pub(crate) fn template(path: &str) -> Option<&'static str> {
  let rest = path.strip_prefix(BASE)?.strip_prefix('/')?;
  let segs: Vec<&str> = rest.split('/').collect();
  Some(match route(&segs)?.0 {
    Route::Location { .. } => "location",
    Route::Login { .. } => "login",
    Route::Userpass { .. } => "userpass",
    Route::Profile => "profile",
    Route::Session => "session",
    Route::DeleteUser => "delete_user",
    Route::Keys => "api_keys",
    Route::Key { .. } => "api_key",
    Route::KeyEnable { .. } | Route::KeyDisable { .. } => "api_key_state",
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
    Err(BodyError::TimedOut) => Err(ApiError::new(
      408,
      "RequestTimeout",
      "the request body did not arrive in time",
    )),
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
  // The real server links its log page; only the emulator has one to link.
  let body = if shared.config.control_api {
    let link = format!(
      "{}/_emulator/logs?co_id={request_id}",
      public_base(shared, &parts.headers)
    );
    json!({ "error": e.message, "error_code": e.code, "link": link })
  } else {
    json!({ "error": e.message, "error_code": e.code })
  };
  let mut resp = json_response(e.status, body.to_string().into_bytes());
  if let Some(secs) = e.retry_after {
    resp
      .headers_mut()
      .insert(header::RETRY_AFTER, HeaderValue::from(secs));
  }
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
    if ctx.shared.serves(app) {
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
      login(ctx, app, provider, body).await
    }
    Route::Userpass { app, action } => {
      app_matches(app)?;
      userpass(ctx, app, action, body).await
    }
    Route::Profile => profile(ctx).await,
    Route::Session if *method == Method::POST => refresh_session(ctx).await,
    Route::Session => logout(ctx).await,
    Route::DeleteUser => delete_user(ctx).await,
    Route::Keys if *method == Method::GET => list_keys(ctx).await,
    Route::Keys => create_key(ctx, body).await,
    Route::Key { id } if *method == Method::GET => fetch_key(ctx, id).await,
    Route::Key { id } => delete_key(ctx, id).await,
    Route::KeyEnable { id } => set_key_disabled(ctx, id, false).await,
    Route::KeyDisable { id } => set_key_disabled(ctx, id, true).await,
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
fn bearer_claims(ctx: &mut Ctx<'_>) -> Result<Arc<Claims>, ApiError> {
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
  ctx
    .shared
    .tokens
    .verify(token)
    .map_err(|e| ApiError::invalid_session(e.reason()))
}

/// Marks the log entry as authenticated.
fn note_auth(entry: &mut LoggedRequest, kind: Kind, user_id: String) {
  entry.token_type = match kind {
    Kind::Access => TokenType::Access,
    Kind::Refresh => TokenType::Refresh,
  };
  entry.user_id = Some(user_id);
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
    // Bounded: a burst of argon2id hashes would otherwise hold 19 MiB each on hundreds of
    // blocking threads at once.
    let _slot = passwords::hash_slots()
      .acquire()
      .await
      .expect("the hashing semaphore is never closed");
    tokio::task::spawn_blocking(f)
      .await
      .expect("password hashing panicked")
  }
}

/// What a login or refresh needs from the store to mint tokens.
struct Minted {
  user_id: String,
  session_id: String,
  device_id: String,
  user_data: Value,
  generation: u64,
}

/// Login response tokens for a session.
fn session_tokens(shared: &Shared, app: &str, m: &Minted, now: u64) -> Value {
  let app = shared.app_claim(app);
  let access = shared.tokens.access(
    app,
    &m.user_id,
    &m.session_id,
    &m.device_id,
    &m.user_data,
    m.generation,
    now,
    shared.config.access_token_ttl_secs,
  );
  let refresh = shared.tokens.refresh(
    app,
    &m.user_id,
    &m.session_id,
    now,
    shared.config.refresh_token_ttl_secs,
  );
  json!({
    "access_token": access,
    "refresh_token": refresh,
    "user_id": m.user_id,
    "device_id": m.device_id,
  })
}

/// The custom data a user's access tokens carry.
fn user_data(tx: &dyn Tx, user_id: &str) -> Result<Value, ApiError> {
  Ok(
    tx.user(user_id)?
      .map_or_else(|| json!({}), |u| u.custom_data.clone()),
  )
}

/// Runs `f` in a read transaction after authenticating the bearer token in it; the log entry
/// names the user even when `f` refuses.
async fn read_session<T: Send + 'static>(
  ctx: &mut Ctx<'_>,
  kind: Kind,
  f: impl FnOnce(&dyn Tx, &Session) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
  Ok(read_session_of_app(ctx, kind, f).await?.0)
}

/// [`read_session`] that also says the token's app (`None`: the first app).
async fn read_session_of_app<T: Send + 'static>(
  ctx: &mut Ctx<'_>,
  kind: Kind,
  f: impl FnOnce(&dyn Tx, &Session) -> Result<T, ApiError> + Send + 'static,
) -> Result<(T, Option<String>), ApiError> {
  let claims = bearer_claims(ctx)?;
  let now = now_secs();
  let shared = ctx.shared;
  // The first app's tokens carry none: nothing to copy.
  let app = claims.app.clone();
  let (user, result) = shared
    .tx(
      app.as_deref().unwrap_or(&shared.config.app_id),
      false,
      move |tx| {
        let tx: &dyn Tx = tx;
        let session = state::authenticate(tx, &claims, kind, now)?;
        Ok((session.user_id.clone(), f(tx, &session)))
      },
    )
    .await?;
  note_auth(ctx.entry, kind, user);
  Ok((result?, app))
}

/// [`read_session`] for rules that write. `f` must refuse before it writes: its error still
/// commits the (unchanged) transaction.
async fn write_session<T: Send + 'static>(
  ctx: &mut Ctx<'_>,
  kind: Kind,
  f: impl FnOnce(&mut dyn Tx, Session) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
  let claims = bearer_claims(ctx)?;
  let now = now_secs();
  let shared = ctx.shared;
  // The first app's tokens carry none: nothing to copy.
  let app = claims.app.clone();
  let (user, result) = shared
    .tx(
      app.as_deref().unwrap_or(&shared.config.app_id),
      true,
      move |tx| {
        let session = state::authenticate(tx, &claims, kind, now)?.into_owned();
        Ok((session.user_id.clone(), f(tx, session)))
      },
    )
    .await?;
  note_auth(ctx.entry, kind, user);
  result
}

// ---- handlers -------------------------------------------------------------------------------

fn location(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let base = public_base(ctx.shared, &ctx.parts.headers);
  let ws = match base.strip_prefix("https://") {
    Some(rest) => format!("wss://{rest}"),
    None => base.replacen("http://", "ws://", 1),
  };
  let body = json!({
    "deployment_model": "GLOBAL",
    "location": "US-VA",
    "hostname": base,
    "ws_hostname": ws,
  });
  Ok(Reply::Json(200, body.to_string().into_bytes()))
}

/// A verified credential, before the store resolves it to a user.
enum Cred {
  Anonymous,
  Email(String),
  KeyHash(String),
  External(&'static str, String, Map<String, Value>),
}

async fn login(
  ctx: &mut Ctx<'_>,
  app: &str,
  provider: &str,
  body: &[u8],
) -> Result<Reply, ApiError> {
  let shared = ctx.shared;
  let link = query_param(ctx.parts.uri.query(), "link").as_deref() == Some("true");
  let linking_claims = if link {
    let claims = bearer_claims(ctx)?;
    if shared.app_claim(app) != claims.app.as_deref() {
      return Err(ApiError::invalid_session(
        "the token belongs to another app",
      ));
    }
    // Authenticated once here for the log (and an early 401); again below, in the transaction
    // that links, so the session cannot end in between.
    let now = now_secs();
    let user = shared
      .tx(app, false, move |tx| {
        Ok(
          state::authenticate(tx, &claims, Kind::Access, now)?
            .user_id
            .clone(),
        )
      })
      .await?;
    note_auth(ctx.entry, Kind::Access, user);
    Some(bearer_claims(ctx)?)
  } else {
    None
  };
  if !shared.provider_enabled(provider) {
    return Err(unsupported_provider(provider));
  }
  let payload = parse_object(body, true)?;
  let now = now_secs();
  // What a verified email/password login also writes: the account's throttle reset, a rehash.
  let mut after_email: Option<AfterEmail> = None;
  // API-key logins are throttled by client address only (see `key_throttle`).
  let key_subjects = key_throttle(ctx, provider);

  // Verify the credential (password hashing happens outside any transaction).
  let cred = match provider {
    ANON => Cred::Anonymous,
    USERPASS => {
      let email = str_field(&payload, "username")?.to_string();
      let password = str_field(&payload, "password")?.to_string();
      after_email = Some(verify_userpass(ctx, app, &email, password).await?);
      Cred::Email(email)
    }
    API_KEY => Cred::KeyHash(key_hash(str_field(&payload, "key")?)),
    CUSTOM_TOKEN => {
      let keys = &shared.tokens.custom;
      if !keys.enabled() {
        return Err(unsupported_provider(provider));
      }
      let token = str_field(&payload, "token")?;
      let verified = keys.verify(token, now).map_err(|why| {
        ApiError::new(
          401,
          "AuthError",
          format!("invalid custom auth token: {why}"),
        )
      })?;
      let profile = metadata_profile(
        &shared.config.custom_token_metadata_fields,
        &verified.claims,
      )?;
      Cred::External(CUSTOM_TOKEN, verified.sub, profile)
    }
    CUSTOM_FUNCTION => {
      let field = &shared.config.function_identity_field;
      match payload.get(field) {
        Some(Value::String(id)) if !id.is_empty() => {
          Cred::External(CUSTOM_FUNCTION, id.clone(), Map::new())
        }
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

  let app_id = app.to_string();
  let ttl = shared.config.refresh_token_ttl_secs;
  let requested_device = requested_device_id(&payload);
  let key_checked = key_subjects.clone();
  let reserved = after_email.as_ref().map(|a| a.reserved.clone());
  let minted = shared
    .tx(app, true, move |tx| {
      if let Some((_, subjects)) = &key_checked {
        throttle::check(tx, subjects, now_millis())?;
      }
      let linking = match &linking_claims {
        Some(claims) => {
          let s = state::authenticate(tx, claims, Kind::Access, now)?;
          Some((s.user_id.clone(), s.id.clone(), s.device_id.clone()))
        }
        None => None,
      };
      let mut via_key = None;
      let mut profile = Map::new();
      let ident = match &cred {
        Cred::Anonymous => Ident::Anonymous,
        Cred::Email(email) => {
          state::check_confirmed(tx, email)?;
          Ident::Email(email)
        }
        Cred::KeyHash(hash) => {
          let (owner, key_id) = state::key_login(tx, hash)?;
          via_key = Some(key_id.clone());
          Ident::ApiKey { key_id, owner }
        }
        Cred::External(provider, id, fields) => {
          profile = fields.clone();
          Ident::External { provider, id }
        }
      };
      let link_to = linking.as_ref().map(|l| l.0.as_str());
      let user_id = state::resolve(tx, &app_id, ident, link_to, profile, now)?;
      // After `resolve`, which may still refuse the login (a disabled user): the memory store
      // writes at once and cannot roll back.
      if let (Cred::Email(email), Some(after)) = (&cred, &after_email) {
        after.apply(tx, email)?;
      }
      let (session_id, device_id) = match linking {
        // Linking keeps the caller's session: fresh tokens for it, same device.
        Some((_, session_id, device_id)) => (session_id, device_id),
        None => {
          let device_id = requested_device.unwrap_or_else(object_id);
          let session_id = state::new_session(tx, &user_id, &device_id, via_key, ttl, now)?;
          (session_id, device_id)
        }
      };
      Ok(Minted {
        user_data: user_data(tx, &user_id)?,
        generation: tx.access_generation()?,
        user_id,
        session_id,
        device_id,
      })
    })
    .await;
  let minted = match (minted, key_subjects) {
    (Err(e), Some((settings, subjects))) if e == ApiError::invalid_api_key() => {
      // Counted in a transaction of its own: the refused login's rolled back.
      shared
        .tx(app, true, move |tx| {
          throttle::record_failure(tx, &settings, &subjects, now_millis())
        })
        .await?;
      return Err(e);
    }
    (Err(e), _) if reserved.as_ref().is_some_and(|r| !r.is_empty()) => {
      // The password was right but the login is refused (unconfirmed, disabled): not a guess,
      // so its counts are taken back. The refusal is the answer even if this write fails.
      let reserved = reserved.unwrap_or_default();
      let _ = shared
        .tx(app, true, move |tx| {
          reserved.iter().try_for_each(|r| throttle::take_back(tx, r))
        })
        .await;
      return Err(e);
    }
    (minted, _) => minted?,
  };
  let body = session_tokens(shared, app, &minted, now);
  Ok(Reply::Json(200, body.to_string().into_bytes()))
}

/// The profile fields a custom token's claims fill (the provider's `metadata_fields`): each
/// configured claim `name` (a dotted path) lands under its `field_name` (default: the name's
/// last segment). A required claim that is missing refuses the login, as the real server does.
fn metadata_profile(
  fields: &[MetadataField],
  claims: &Value,
) -> Result<Map<String, Value>, ApiError> {
  let mut profile = Map::new();
  for field in fields {
    let value = field
      .name
      .split('.')
      .try_fold(claims, |v, segment| v.get(segment));
    match value {
      Some(v) => {
        profile.insert(field.target().to_string(), v.clone());
      }
      None if field.required => {
        return Err(ApiError::new(
          401,
          "AuthError",
          format!(
            "invalid custom auth token: required metadata field '{}' is missing",
            field.name
          ),
        ));
      }
      None => {}
    }
  }
  Ok(profile)
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

async fn userpass(
  ctx: &mut Ctx<'_>,
  app: &str,
  action: Userpass,
  body: &[u8],
) -> Result<Reply, ApiError> {
  let shared = ctx.shared;
  let payload = parse_object(body, false)?;
  let settings = passwords::effective(&shared.config);
  let cost = passwords::cost_of(&settings);
  let owned = |name: &str| str_field(&payload, name).map(str::to_string);
  match action {
    Userpass::Register => {
      let email = owned("email")?;
      let password = owned("password")?;
      if email.trim().is_empty() {
        return Err(ApiError::bad_request("email must not be empty"));
      }
      // No address has one, and PostgreSQL could not store it: refused on every store alike.
      if email.contains('\0') {
        return Err(ApiError::bad_request(
          "email must not contain a NUL character",
        ));
      }
      validate_password(&password)?;
      // Refuse a taken email before paying for the hash (the insert checks again).
      let lookup = email.clone();
      if shared
        .tx(app, false, move |tx| state::email_exists(tx, &lookup))
        .await?
      {
        return Err(ApiError::new(
          409,
          "AccountNameInUse",
          "name already in use",
        ));
      }
      let new = hash_off_thread(cost, move || passwords::hash_new(&password, &settings)).await;
      let confirmed = !shared.config.require_email_confirmation;
      let target = email.clone();
      let pair = shared
        .tx(app, true, move |tx| {
          state::register(tx, &target, new.salt, new.hash, new.iterations, confirmed)
        })
        .await?;
      if let Some(pair) = pair {
        crate::delivery::deliver(shared, app, Pending::Confirm, &email, &pair);
        shared.remember_pending(app, Pending::Confirm, &email, pair);
      }
      Ok(Reply::Empty(201))
    }
    Userpass::Confirm => {
      let token = owned("token")?;
      let token_id = owned("tokenId")?;
      shared
        .tx(app, true, move |tx| state::confirm(tx, &token, &token_id))
        .await?;
      Ok(Reply::Empty(204))
    }
    Userpass::ConfirmSend => {
      let email = owned("email")?;
      mail_throttle(ctx, app, &email).await?;
      let target = email.clone();
      let pair = shared
        .tx(app, true, move |tx| state::resend_confirmation(tx, &target))
        .await?;
      crate::delivery::deliver(shared, app, Pending::Confirm, &email, &pair);
      shared.remember_pending(app, Pending::Confirm, &email, pair);
      Ok(Reply::Empty(204))
    }
    Userpass::ConfirmCall => {
      // The server's "confirmation function" behaves like a resend (new pending tokens), and is
      // refused when the app confirms automatically.
      // realm v12 sends only `{email}` (core's `retry_custom_confirmation`).
      let email = owned("email")?;
      check_arguments(&payload)?;
      mail_throttle(ctx, app, &email).await?;
      let target = email.clone();
      let automatic = !shared.config.require_email_confirmation;
      let pair = shared
        .tx(app, true, move |tx| {
          state::run_confirmation(tx, &target, automatic)
        })
        .await?;
      crate::delivery::deliver(shared, app, Pending::Confirm, &email, &pair);
      shared.remember_pending(app, Pending::Confirm, &email, pair);
      Ok(Reply::Empty(204))
    }
    Userpass::ResetSend => {
      let email = owned("email")?;
      mail_throttle(ctx, app, &email).await?;
      let target = email.clone();
      let pair = shared
        .tx(app, true, move |tx| state::start_reset(tx, &target))
        .await?;
      crate::delivery::deliver(shared, app, Pending::Reset, &email, &pair);
      shared.remember_pending(app, Pending::Reset, &email, pair);
      Ok(Reply::Empty(204))
    }
    Userpass::Reset => {
      let token = owned("token")?;
      let token_id = owned("tokenId")?;
      let password = owned("password")?;
      validate_password(&password)?;
      let (t, id) = (token.clone(), token_id.clone());
      let email = shared
        .tx(app, false, move |tx| state::reset_email(tx, &t, &id))
        .await?;
      let new = hash_off_thread(cost, move || passwords::hash_new(&password, &settings)).await;
      shared
        .tx(app, true, move |tx| {
          // Re-check under the account's lock: the token may have been used while we were
          // hashing, or be in use by another server right now; it works once.
          tx.lock_email_account(&email)?;
          state::reset_email(tx, &token, &token_id)?;
          state::set_password(tx, &email, new.salt, new.hash, new.iterations)
        })
        .await?;
      Ok(Reply::Empty(204))
    }
    Userpass::ResetCall => {
      // The emulator's "reset function" approves every request: the password changes now.
      // In production that would let anyone set anyone's password: `serve` has no function.
      if !shared.config.control_api {
        return Err(ApiError::bad_request(
          "password reset through a function is not available on this server: use reset/send",
        ));
      }
      let email = owned("email")?;
      let password = owned("password")?;
      check_arguments(&payload)?;
      validate_password(&password)?;
      let lookup = email.clone();
      if !shared
        .tx(app, false, move |tx| state::email_exists(tx, &lookup))
        .await?
      {
        return Err(ApiError::user_not_found());
      }
      let new = hash_off_thread(cost, move || passwords::hash_new(&password, &settings)).await;
      shared
        .tx(app, true, move |tx| {
          state::set_password(tx, &email, new.salt, new.hash, new.iterations)
        })
        .await?;
      Ok(Reply::Empty(204))
    }
  }
}

async fn profile(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let (user, app) = read_session_of_app(ctx, Kind::Access, move |tx, session| {
    tx.user(&session.user_id)?
      .map(Cow::into_owned)
      .ok_or_else(|| ApiError::invalid_session("user not found"))
  })
  .await?;
  let app = app.as_deref().unwrap_or(&ctx.shared.config.app_id);
  let profile = state::profile(app, &user);
  Ok(Reply::Json(200, profile.to_string().into_bytes()))
}

async fn refresh_session(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let now = now_secs();
  let (minted, app) = read_session_of_app(ctx, Kind::Refresh, move |tx, session| {
    Ok(Minted {
      user_id: session.user_id.clone(),
      session_id: session.id.clone(),
      device_id: session.device_id.clone(),
      user_data: user_data(tx, &session.user_id)?,
      generation: tx.access_generation()?,
    })
  })
  .await?;
  let shared = ctx.shared;
  let access = shared.tokens.access(
    app.as_deref(),
    &minted.user_id,
    &minted.session_id,
    &minted.device_id,
    &minted.user_data,
    minted.generation,
    now,
    shared.config.access_token_ttl_secs,
  );
  Ok(Reply::Json(
    201,
    json!({ "access_token": access }).to_string().into_bytes(),
  ))
}

async fn logout(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  write_session(ctx, Kind::Refresh, |tx, session| {
    Ok(tx.delete_session(&session.id)?)
  })
  .await
  .map_err(|e| match e.code {
    // Disabling ended the session already: answer as for any ended session, which realm-web's
    // logOut ignores, rather than fail a logout whose goal is reached.
    "UserDisabled" => ApiError::invalid_session("failed to find refresh token"),
    _ => e,
  })?;
  Ok(Reply::Empty(204))
}

async fn delete_user(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  write_session(ctx, Kind::Access, |tx, session| {
    tx.delete_user(&session.user_id)?;
    Ok(())
  })
  .await?;
  Ok(Reply::Empty(204))
}

async fn list_keys(ctx: &mut Ctx<'_>) -> Result<Reply, ApiError> {
  let body = read_session(ctx, Kind::Refresh, |tx, session| {
    state::check_key_manager(tx, &session.user_id)?;
    state::list_keys_json(tx, &session.user_id)
  })
  .await?;
  Ok(Reply::Json(200, body))
}

async fn create_key(ctx: &mut Ctx<'_>, body: &[u8]) -> Result<Reply, ApiError> {
  let now = now_secs();
  let limit = ctx.shared.config.max_api_keys_per_user;
  // The body is read only once the caller is known to be a key manager (as before).
  let payload = parse_object(body, false);
  let (secret, hash) = new_key_secret();
  let (id, name) = write_session(ctx, Kind::Refresh, move |tx, session| {
    state::check_key_manager(tx, &session.user_id)?;
    let payload = payload?;
    let name = str_field(&payload, "name")?;
    let id = state::create_key(tx, &session.user_id, name, hash, limit, now)?;
    Ok((id, name.to_string()))
  })
  .await?;
  let body = json!({ "_id": id, "key": secret, "name": name, "disabled": false });
  Ok(Reply::Json(201, body.to_string().into_bytes()))
}

async fn fetch_key(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
  let id = id.to_string();
  let body = read_session(ctx, Kind::Refresh, move |tx, session| {
    state::check_key_manager(tx, &session.user_id)?;
    let key = state::owned_key(tx, &session.user_id, &id)?;
    let view = KeyView {
      id: &key.id,
      name: &key.name,
      disabled: key.disabled,
    };
    Ok(serde_json::to_vec(&view).expect("key serializes"))
  })
  .await?;
  Ok(Reply::Json(200, body))
}

async fn delete_key(ctx: &mut Ctx<'_>, id: &str) -> Result<Reply, ApiError> {
  let id = id.to_string();
  write_session(ctx, Kind::Refresh, move |tx, session| {
    state::check_key_manager(tx, &session.user_id)?;
    state::delete_key(tx, &session.user_id, &id, session.via_key.as_deref())
  })
  .await?;
  Ok(Reply::Empty(204))
}

async fn set_key_disabled(ctx: &mut Ctx<'_>, id: &str, disabled: bool) -> Result<Reply, ApiError> {
  let id = id.to_string();
  write_session(ctx, Kind::Refresh, move |tx, session| {
    state::check_key_manager(tx, &session.user_id)?;
    state::set_key_disabled(tx, &session.user_id, &id, disabled)
  })
  .await?;
  Ok(Reply::Empty(204))
}

// ---- login throttling and password upgrades ------------------------------------------------

/// What a verified email/password login writes in its session transaction.
struct AfterEmail {
  /// The failures counted for the attempt before its password was checked (empty: throttling
  /// is off). A login clears the account's count and takes the address's one back.
  reserved: Vec<throttle::Reserved>,
  /// The hash the login read and its replacement under the current settings, when they differ.
  rehash: Option<(String, passwords::Stored)>,
}

impl AfterEmail {
  /// Writes what a successful login does; call it once the login is sure to succeed (the
  /// memory store cannot roll back).
  fn apply(&self, tx: &mut dyn Tx, email: &str) -> Result<(), ApiError> {
    for r in &self.reserved {
      match r.subject.scope {
        throttle::Scope::Account => throttle::reset(tx, &r.subject)?,
        // The address: only this attempt comes off; its earlier failures still count.
        _ => throttle::take_back(tx, r)?,
      }
    }
    if let Some((read, new)) = &self.rehash {
      // A no-op when the hash changed since it was read: a reset's new password stays.
      state::rehash_password(
        tx,
        email,
        read,
        new.salt.clone(),
        new.hash.clone(),
        new.iterations,
      )?;
    }
    Ok(())
  }
}

/// Counts a request that sends mail to `email` against the email and the client address, and
/// refuses it (429) while either is locked: every such request issues a token and sends an
/// email or webhook, so without a limit anyone could flood an inbox or the operator's relay.
/// Counted in a transaction of its own, before the request's: requests for unknown emails
/// count too, and a refused request's rollback must not undo its count.
async fn mail_throttle(ctx: &Ctx<'_>, app: &str, email: &str) -> Result<(), ApiError> {
  let Some(settings) = throttle::effective(&ctx.shared.config) else {
    return Ok(());
  };
  let subjects = throttle::mail_subjects(&settings, email, throttle::client_address(ctx.parts));
  if subjects.is_empty() {
    return Ok(());
  }
  ctx
    .shared
    .tx(app, true, move |tx| {
      throttle::reserve(tx, &settings, &subjects, now_millis()).map(drop)
    })
    .await
}

/// The throttle settings and subjects of an API-key login (its client address), if throttled.
fn key_throttle(
  ctx: &Ctx<'_>,
  provider: &str,
) -> Option<(throttle::LoginThrottleConfig, Vec<throttle::Subject>)> {
  if provider != API_KEY {
    return None;
  }
  // A wrong key names no key (the secret is what finds it), so only the address can be counted;
  // 384 random bits need no per-key limit.
  let settings = throttle::effective(&ctx.shared.config)?;
  let subjects = throttle::subjects(&settings, None, throttle::client_address(ctx.parts));
  (!subjects.is_empty()).then_some((settings, subjects))
}

/// Verifies an email/password login: refuses it with 429 while the account or the client
/// address is locked (even with the right password), else counts it as a failure against both
/// before hashing (`throttle::reserve`), and says what the session transaction must write on
/// success (the counts taken back, a rehash). Every hash runs off the async threads and outside
/// any transaction; an unknown email is checked against a dummy hash, so that its answer takes
/// as long as a wrong password's.
async fn verify_userpass(
  ctx: &Ctx<'_>,
  app: &str,
  email: &str,
  password: String,
) -> Result<AfterEmail, ApiError> {
  let shared = ctx.shared;
  let settings = throttle::effective(&shared.config);
  let subjects = settings.as_ref().map_or_else(Vec::new, |s| {
    throttle::subjects(s, Some(email), throttle::client_address(ctx.parts))
  });
  let lookup = email.to_string();
  let (record, reserved) = shared
    .tx(app, settings.is_some(), move |tx| {
      let reserved = match &settings {
        Some(settings) => throttle::reserve(tx, settings, &subjects, now_millis())?,
        None => Vec::new(),
      };
      Ok((state::password_record(tx, &lookup)?, reserved))
    })
    .await?;
  let verified = match record {
    Some((salt, hash, iterations)) => {
      let stored = passwords::Stored {
        salt,
        hash,
        iterations,
      };
      let cost = passwords::stored_cost(&stored);
      // The password comes back out for a possible rehash.
      let (ok, stored, password) = hash_off_thread(cost, move || {
        let ok = passwords::verify(&password, &stored);
        (ok, stored, password)
      })
      .await;
      ok.then_some((stored, password))
    }
    None => {
      let current = passwords::effective(&shared.config);
      hash_off_thread(passwords::cost_of(&current), move || {
        passwords::verify(&password, &passwords::dummy(&current))
      })
      .await;
      None
    }
  };
  // A wrong password's failure is already counted.
  let Some((stored, password)) = verified else {
    return Err(ApiError::bad_credentials());
  };
  let current = passwords::effective(&shared.config);
  let rehash = if passwords::needs_rehash(&stored, &current) {
    let cost = passwords::cost_of(&current);
    let new = hash_off_thread(cost, move || passwords::hash_new(&password, &current)).await;
    Some((stored.hash, new))
  } else {
    None
  };
  Ok(AfterEmail { reserved, rehash })
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
