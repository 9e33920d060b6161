//! The server's records and its rules: users, identities, email accounts, sessions and API keys.
//! No HTTP and no storage here: handlers in `routes.rs` and `control.rs` run these rules inside
//! one store transaction ([`Tx`]), whichever the backend.

use std::borrow::Cow;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::control::TokenPair;
use crate::ids::{hex, object_id, random_bytes};
use crate::store::{Pending, StoreError, Tx};
use crate::tokens::{Claims, Kind};

/// Provider type strings, as the SDKs send them.
pub(crate) const ANON: &str = "anon-user";
/// Email/password provider.
pub(crate) const USERPASS: &str = "local-userpass";
/// User and server API keys share one provider.
pub(crate) const API_KEY: &str = "api-key";
/// Third-party HS256 JWTs.
pub(crate) const CUSTOM_TOKEN: &str = "custom-token";
/// A "function" that maps an arbitrary payload to an identity.
pub(crate) const CUSTOM_FUNCTION: &str = "custom-function";

/// Longest API key name we accept (the real limit is unpublished; ours is documented).
pub(crate) const MAX_KEY_NAME: usize = 64;
/// Password length rule of the email/password provider.
pub(crate) const PASSWORD_LEN: std::ops::RangeInclusive<usize> = 6..=128;

/// A rule violation, rendered by the HTTP layer as `{"error","error_code","link"}` (or, when
/// `bare`, as a body-less response: the real server answered some 403s that way).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ApiError {
  /// HTTP status.
  pub status: u16,
  /// `error_code`.
  pub code: &'static str,
  /// `error`.
  pub message: String,
  /// Send no body at all.
  pub bare: bool,
  /// A `Retry-After` header, in seconds (429 from login throttling).
  pub retry_after: Option<u64>,
}

impl ApiError {
  /// An error with a JSON body.
  pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
      status,
      code,
      message: message.into(),
      bare: false,
      retry_after: None,
    }
  }
  /// 403 with no body (anonymous or server-key users managing keys; deleting the calling
  /// session's own key).
  pub fn forbidden() -> ApiError {
    ApiError {
      status: 403,
      code: "",
      message: String::new(),
      bare: true,
      retry_after: None,
    }
  }
  /// 400 BadRequest.
  pub fn bad_request(message: impl Into<String>) -> ApiError {
    ApiError::new(400, "BadRequest", message)
  }
  /// 401 InvalidSession with a short reason.
  pub fn invalid_session(reason: &str) -> ApiError {
    ApiError::new(401, "InvalidSession", format!("invalid session: {reason}"))
  }
  /// 401 MissingAuthReq: no `Authorization` header.
  pub fn must_authenticate() -> ApiError {
    ApiError::new(401, "MissingAuthReq", "must authenticate first")
  }
  /// 404 APIKeyNotFound.
  pub fn key_not_found() -> ApiError {
    ApiError::new(404, "APIKeyNotFound", "API key not found")
  }
  /// 401 AuthError for a failed API key login.
  pub fn invalid_api_key() -> ApiError {
    ApiError::new(401, "AuthError", "invalid API key")
  }
  /// 401 InvalidPassword for a failed email/password login.
  pub fn bad_credentials() -> ApiError {
    ApiError::new(401, "InvalidPassword", "unauthorized")
  }
  /// 404 UserNotFound for email routes.
  pub fn user_not_found() -> ApiError {
    ApiError::new(404, "UserNotFound", "user not found")
  }
  /// 401 UserDisabled: a disabled user's login, refresh or access token (realm-core's
  /// `UserDisabled`, 4345).
  pub fn user_disabled() -> ApiError {
    ApiError::new(401, "UserDisabled", "user disabled")
  }
}

/// One identity of a user, as the profile shows it.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub(crate) struct Identity {
  pub id: String,
  pub provider_type: String,
  pub provider_id: String,
}

/// Normal users log in through any provider; a server user exists for each server API key.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub(crate) enum UserKind {
  Normal,
  Server,
}

/// A user.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct User {
  pub id: String,
  pub kind: UserKind,
  pub identities: Vec<Identity>,
  /// Profile `data` (e.g. `email`).
  pub data: Map<String, Value>,
  /// The `user_data` claim of new access tokens.
  pub custom_data: Value,
  pub created: u64,
  /// Refused at login, refresh and every authenticated route (set by the admin commands).
  /// Absent from data files written before it existed.
  #[serde(default)]
  pub disabled: bool,
}

impl User {
  /// True when every identity is anonymous: such users may not manage API keys.
  pub fn is_anonymous(&self) -> bool {
    self.kind == UserKind::Normal && self.identities.iter().all(|i| i.provider_type == ANON)
  }
}

/// An email/password account. It exists from registration; its user exists from the first
/// login (or link), as on the real server, so an identity can be linked before it is used.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct EmailAccount {
  pub email: String,
  pub identity_id: String,
  /// PBKDF2-HMAC-SHA256: hex salt, hex derived key, iteration count.
  pub salt: String,
  pub hash: String,
  pub iterations: u32,
  pub confirmed: bool,
  pub user_id: Option<String>,
}

/// A user or server API key. The secret is kept only as its SHA-256.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct ApiKey {
  pub id: String,
  pub owner: String,
  pub name: String,
  pub disabled: bool,
  pub hash: String,
  pub server: bool,
  pub created: u64,
}

/// A login session: what a refresh token stands for.
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct Session {
  pub id: String,
  pub user_id: String,
  pub device_id: String,
  /// The API key this session logged in with, if any.
  pub via_key: Option<String>,
  pub expires: u64,
}

/// The wire shape of a key without its secret.
#[derive(Serialize)]
pub(crate) struct KeyView<'a> {
  #[serde(rename = "_id")]
  pub id: &'a str,
  pub name: &'a str,
  pub disabled: bool,
}

/// What a login credential resolved to, before it is attached to a user.
pub(crate) enum Ident<'a> {
  Anonymous,
  Email(&'a str),
  ApiKey { key_id: String, owner: String },
  External { provider: &'static str, id: &'a str },
}

/// SHA-256 of an API key secret, hex.
pub(crate) fn key_hash(secret: &str) -> String {
  hex(&Sha256::digest(secret.as_bytes()))
}

/// A new API key secret (384 random bits, 64 URL-safe base64 characters) and its hash.
pub(crate) fn new_key_secret() -> (String, String) {
  let secret = B64.encode(random_bytes::<48>());
  let hash = key_hash(&secret);
  (secret, hash)
}

/// PBKDF2-HMAC-SHA256 of `password`, hex. Emulator-grade: the iteration count is configurable
/// and low by default so logins stay cheap in benchmarks.
pub(crate) fn hash_password(password: &str, salt_hex: &str, iterations: u32) -> String {
  let mut out = [0u8; 32];
  pbkdf2::pbkdf2_hmac::<Sha256>(
    password.as_bytes(),
    salt_hex.as_bytes(),
    iterations.max(1),
    &mut out,
  );
  hex(&out)
}

/// A fresh salt (hex) and the password's hash under it.
pub(crate) fn new_password_hash(password: &str, iterations: u32) -> (String, String) {
  let salt = hex(&random_bytes::<16>());
  let hash = hash_password(password, &salt, iterations);
  (salt, hash)
}

/// Constant-time equality of two strings (length is not secret: both are fixed-size hashes).
pub(crate) fn ct_eq(a: &str, b: &str) -> bool {
  a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// The API key name rule: 1..=64 ASCII letters, digits, `_` or `-`.
pub(crate) fn validate_key_name(name: &str) -> Result<(), ApiError> {
  const RULE: &str = "can only contain ASCII letters, numbers, underscores, and hyphens";
  if name.is_empty() || name.len() > MAX_KEY_NAME {
    return Err(ApiError::new(
      400,
      "InvalidParameter",
      format!("API key name must be 1 to {MAX_KEY_NAME} characters long and {RULE}"),
    ));
  }
  if !name
    .bytes()
    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
  {
    return Err(ApiError::new(
      400,
      "InvalidParameter",
      format!("API key name {RULE}"),
    ));
  }
  Ok(())
}

/// The password length rule.
pub(crate) fn validate_password(password: &str) -> Result<(), ApiError> {
  if PASSWORD_LEN.contains(&password.chars().count()) {
    Ok(())
  } else {
    Err(ApiError::bad_request(format!(
      "password must be between {} and {} characters",
      PASSWORD_LEN.start(),
      PASSWORD_LEN.end()
    )))
  }
}

fn new_token_pair() -> TokenPair {
  TokenPair {
    token: hex(&random_bytes::<32>()),
    token_id: object_id(),
  }
}

fn derived_id(app_id: &str, what: &str) -> String {
  let mut h = Sha256::new();
  h.update(app_id.as_bytes());
  h.update([0]);
  h.update(what.as_bytes());
  hex(&h.finalize()[..12])
}

/// SHA-256 of a confirmation or reset token, hex: the store keeps only this.
pub(crate) fn token_hash(token: &str) -> String {
  key_hash(token)
}

/// A stable per-app id for a provider (profile `provider_id`).
pub(crate) fn provider_id(app_id: &str, provider: &str) -> String {
  derived_id(app_id, provider)
}

fn identity(app_id: &str, provider: &str, id: &str) -> Identity {
  Identity {
    id: id.to_string(),
    provider_type: provider.to_string(),
    provider_id: provider_id(app_id, provider),
  }
}

fn new_user(kind: UserKind, identity: Identity, data: Map<String, Value>, now: u64) -> User {
  User {
    id: object_id(),
    kind,
    identities: vec![identity],
    data,
    custom_data: json!({}),
    created: now,
    disabled: false,
  }
}

/// Adds an identity to a user (once).
fn attach(user: &mut User, identity: Identity) {
  if !has_identity(user, &identity) {
    user.identities.push(identity);
  }
}

fn has_identity(user: &User, identity: &Identity) -> bool {
  user
    .identities
    .iter()
    .any(|i| i.id == identity.id && i.provider_type == identity.provider_type)
}

fn user_owned(tx: &dyn Tx, id: &str) -> Result<Option<User>, ApiError> {
  Ok(tx.user(id)?.map(Cow::into_owned))
}

/// A user read after its row is locked, for a read-modify-write: `update_user` rewrites the
/// whole identities and data, so a copy read before a concurrent writer committed would undo
/// that writer's change (PostgreSQL runs READ COMMITTED; SQLite and memory serialise writers).
fn user_for_update(tx: &mut dyn Tx, id: &str) -> Result<Option<User>, ApiError> {
  tx.lock_user(id)?;
  user_owned(tx, id)
}

/// 401 UserDisabled if the user exists and is disabled. Rules call it before they write: in
/// memory mode a refused request must change nothing.
fn check_enabled(tx: &dyn Tx, id: &str) -> Result<(), ApiError> {
  match tx.user(id)? {
    Some(u) if u.disabled => Err(ApiError::user_disabled()),
    _ => Ok(()),
  }
}

// ---- sessions ---------------------------------------------------------------------------

/// Checks a decoded token against the store: kind, expiry, access generation, live session.
pub(crate) fn authenticate<'t>(
  tx: &'t dyn Tx,
  claims: &Claims,
  want: Kind,
  now: u64,
) -> Result<Cow<'t, Session>, ApiError> {
  if claims.typ != want {
    return Err(ApiError::invalid_session(match want {
      Kind::Refresh => "a refresh token is required",
      Kind::Access => "an access token is required",
    }));
  }
  if claims.exp <= now {
    return Err(ApiError::invalid_session("token expired"));
  }
  if want == Kind::Access && claims.generation != tx.access_generation()? {
    return Err(ApiError::invalid_session("token expired"));
  }
  let Some(session) = tx.session(&claims.sid)? else {
    // Disabling a user ends its sessions: say why this one ended. (Looked up only on this
    // failing path, so a live session costs no extra read.)
    check_enabled(tx, &claims.sub)?;
    return Err(ApiError::invalid_session(match want {
      Kind::Refresh => "failed to find refresh token",
      Kind::Access => "session ended",
    }));
  };
  if session.user_id != claims.sub || session.expires <= now {
    return Err(ApiError::invalid_session("session ended"));
  }
  // Read with the session on every request (the SQL stores' `session()` joins the user row,
  // which this read reuses; nothing is cached across requests): a user disabled on another
  // server is refused here at once, even through a session a racing login opened just before
  // the disable committed.
  match tx.user(&session.user_id)? {
    None => Err(ApiError::invalid_session("user not found")),
    Some(u) if u.disabled => Err(ApiError::user_disabled()),
    Some(_) => Ok(session),
  }
}

/// Opens a session; returns its id.
pub(crate) fn new_session(
  tx: &mut dyn Tx,
  user_id: &str,
  device_id: &str,
  via_key: Option<String>,
  ttl: u64,
  now: u64,
) -> Result<String, ApiError> {
  let id = object_id();
  tx.insert_session(
    &Session {
      id: id.clone(),
      user_id: user_id.to_string(),
      device_id: device_id.to_string(),
      via_key,
      expires: now.saturating_add(ttl),
    },
    now,
  )?;
  Ok(id)
}

/// Ends every session of a user; false if there is no such user.
pub(crate) fn revoke_user_sessions(tx: &mut dyn Tx, user_id: &str) -> Result<bool, ApiError> {
  if tx.user(user_id)?.is_none() {
    return Ok(false);
  }
  tx.delete_sessions_of(user_id)?;
  Ok(true)
}

/// Disables or enables a user; false if there is no such user. Disabling ends every session
/// of the user in the same transaction; enabling restores logins, not the ended sessions.
pub(crate) fn set_user_disabled(
  tx: &mut dyn Tx,
  user_id: &str,
  disabled: bool,
) -> Result<bool, ApiError> {
  if !tx.set_user_disabled(user_id, disabled)? {
    return Ok(false);
  }
  // On enable too: a login that read the user just before the disable committed may have
  // opened a session after it (PostgreSQL, READ COMMITTED). `authenticate` refuses it while
  // the user is disabled; this keeps enabling from bringing it back.
  tx.delete_sessions_of(user_id)?;
  Ok(true)
}

// ---- users and identities -----------------------------------------------------------------

/// Resolves a verified credential to a user: the owner of the identity, or a new user when it
/// has none. With `link_to`, the identity is added to that user instead (error if another
/// user owns it). `profile` is copied into a new user's profile data (custom-token
/// `metadata_fields`) and refreshed on an existing one's.
pub(crate) fn resolve(
  tx: &mut dyn Tx,
  app_id: &str,
  ident: Ident<'_>,
  link_to: Option<&str>,
  profile: Map<String, Value>,
  now: u64,
) -> Result<String, ApiError> {
  let taken = || {
    ApiError::new(
      409,
      "AccountNameInUse",
      "a user already exists with the specified provider",
    )
  };
  let linking = match link_to {
    Some(id) => {
      // Locked: every linking branch writes this user back with the new identity.
      let user =
        user_for_update(tx, id)?.ok_or_else(|| ApiError::invalid_session("user not found"))?;
      if user.disabled {
        return Err(ApiError::user_disabled());
      }
      if user.kind == UserKind::Server {
        return Err(ApiError::new(
          400,
          "LinkingNotSupported",
          "server API key users cannot link identities",
        ));
      }
      Some(user)
    }
    None => None,
  };
  match ident {
    Ident::Anonymous => {
      if linking.is_some() {
        return Err(ApiError::new(
          400,
          "LinkingNotSupported",
          "linking an anonymous identity is not supported",
        ));
      }
      let user = new_user(
        UserKind::Normal,
        identity(app_id, ANON, &object_id()),
        Map::new(),
        now,
      );
      tx.insert_user(&user)?;
      Ok(user.id)
    }
    Ident::Email(email) => {
      // Two first logins at once must create one user, not two.
      tx.lock_email_account(email)?;
      let mut account = tx
        .email_account(email)?
        .ok_or_else(ApiError::bad_credentials)?
        .into_owned();
      let identity = identity(app_id, USERPASS, &account.identity_id);
      match (account.user_id.clone(), linking) {
        (Some(owner), None) => {
          check_enabled(tx, &owner)?;
          Ok(owner)
        }
        (Some(owner), Some(l)) if owner == l.id => Ok(owner),
        (Some(_), Some(_)) => Err(taken()),
        (None, None) => {
          let mut data = Map::new();
          data.insert("email".into(), Value::String(email.to_string()));
          let user = new_user(UserKind::Normal, identity, data, now);
          tx.insert_user(&user)?;
          account.user_id = Some(user.id.clone());
          tx.update_email_account(&account)?;
          Ok(user.id)
        }
        (None, Some(mut user)) => {
          attach(&mut user, identity);
          user
            .data
            .entry("email")
            .or_insert_with(|| Value::String(email.to_string()));
          tx.update_user(&user)?;
          account.user_id = Some(user.id.clone());
          tx.update_email_account(&account)?;
          Ok(user.id)
        }
      }
    }
    Ident::ApiKey { key_id, owner } => {
      if linking.as_ref().is_some_and(|l| l.id != owner) {
        return Err(taken());
      }
      check_enabled(tx, &owner)?;
      let key_identity = identity(app_id, API_KEY, &key_id);
      // Locked only when the identity is new (a key's first login), not on every login.
      let attached = |u: &User| has_identity(u, &key_identity);
      if user_owned(tx, &owner)?.is_some_and(|u| !attached(&u))
        && let Some(mut user) = user_for_update(tx, &owner)?
        && !attached(&user)
      {
        attach(&mut user, key_identity);
        tx.update_user(&user)?;
      }
      Ok(owner)
    }
    Ident::External { provider, id } => {
      let identity = identity(app_id, provider, id);
      match (tx.identity_owner(provider, id)?, linking) {
        (Some(owner), None) => {
          check_enabled(tx, &owner)?;
          refresh_profile(tx, &owner, profile)?;
          Ok(owner)
        }
        (Some(owner), Some(l)) if owner == l.id => {
          refresh_profile(tx, &owner, profile)?;
          Ok(owner)
        }
        (Some(_), Some(_)) => Err(taken()),
        (None, None) => {
          let user = new_user(UserKind::Normal, identity, profile, now);
          tx.insert_user(&user)?;
          claim_identity(tx, provider, id, &user.id)?;
          Ok(user.id)
        }
        (None, Some(mut user)) => {
          attach(&mut user, identity);
          user.data.extend(profile);
          tx.update_user(&user)?;
          claim_identity(tx, provider, id, &user.id)?;
          Ok(user.id)
        }
      }
    }
  }
}

/// Records who owns an external identity; a concurrent first login that won is a conflict.
fn claim_identity(tx: &mut dyn Tx, provider: &str, id: &str, user: &str) -> Result<(), ApiError> {
  tx.insert_identity_owner(provider, id, user)
    .map_err(|e| match e {
      StoreError::Conflict => ApiError::new(
        409,
        "AccountNameInUse",
        "a user already exists with the specified provider",
      ),
      other => other.into(),
    })
}

/// Copies fresh profile fields (custom-token `metadata_fields`) into an existing user.
fn refresh_profile(
  tx: &mut dyn Tx,
  user_id: &str,
  profile: Map<String, Value>,
) -> Result<(), ApiError> {
  if profile.is_empty() {
    return Ok(());
  }
  let stale = |u: &User| profile.iter().any(|(k, v)| u.data.get(k) != Some(v));
  // Locked only when something changes, not on every login.
  if user_owned(tx, user_id)?.is_some_and(|u| stale(&u))
    && let Some(mut user) = user_for_update(tx, user_id)?
    && stale(&user)
  {
    user.data.extend(profile);
    tx.update_user(&user)?;
  }
  Ok(())
}

/// The profile document of `GET /auth/profile`.
pub(crate) fn profile(app_id: &str, user: &User) -> Value {
  json!({
    "user_id": user.id,
    "domain_id": derived_id(app_id, "domain"),
    "identities": user.identities,
    "data": user.data,
    "type": match user.kind { UserKind::Normal => "normal", UserKind::Server => "server" },
  })
}

/// Sets the custom data that new access tokens carry; false if there is no such user.
pub(crate) fn set_custom_data(
  tx: &mut dyn Tx,
  user_id: &str,
  data: Value,
) -> Result<bool, ApiError> {
  match user_for_update(tx, user_id)? {
    Some(mut user) => {
      user.custom_data = data;
      tx.update_user(&user)?;
      Ok(true)
    }
    None => Ok(false),
  }
}

// ---- email/password -----------------------------------------------------------------------

fn name_in_use() -> ApiError {
  ApiError::new(409, "AccountNameInUse", "name already in use")
}

/// Creates an email account. Returns the confirmation tokens when it starts unconfirmed.
pub(crate) fn register(
  tx: &mut dyn Tx,
  email: &str,
  salt: String,
  hash: String,
  iterations: u32,
  confirmed: bool,
) -> Result<Option<TokenPair>, ApiError> {
  if tx.email_account(email)?.is_some() {
    return Err(name_in_use());
  }
  let account = EmailAccount {
    email: email.to_string(),
    identity_id: object_id(),
    salt,
    hash,
    iterations,
    confirmed,
    user_id: None,
  };
  // The unique email holds even when two registrations race past the check above.
  tx.insert_email_account(&account).map_err(|e| match e {
    StoreError::Conflict => name_in_use(),
    other => other.into(),
  })?;
  if confirmed {
    return Ok(None);
  }
  Ok(Some(new_pending(tx, Pending::Confirm, email)?))
}

fn new_pending(tx: &mut dyn Tx, kind: Pending, email: &str) -> Result<TokenPair, ApiError> {
  let pair = new_token_pair();
  tx.put_pending(kind, email, &pair.token_id, &token_hash(&pair.token))?;
  Ok(pair)
}

/// Whether an email account exists.
pub(crate) fn email_exists(tx: &dyn Tx, email: &str) -> Result<bool, ApiError> {
  Ok(tx.email_account(email)?.is_some())
}

/// Salt, hash and iteration count of an account, to verify a password outside the transaction.
pub(crate) fn password_record(
  tx: &dyn Tx,
  email: &str,
) -> Result<Option<(String, String, u32)>, ApiError> {
  Ok(
    tx.email_account(email)?
      .map(|a| (a.salt.clone(), a.hash.clone(), a.iterations)),
  )
}

/// Replaces an account's password hash after a login verified it under older settings, unless
/// the hash changed since the login read it (a reset or another rehash won: that one stays).
/// The account's row is locked first, so the comparison and the write cannot be split by a
/// concurrent writer on any backend.
pub(crate) fn rehash_password(
  tx: &mut dyn Tx,
  email: &str,
  read_hash: &str,
  salt: String,
  hash: String,
  iterations: u32,
) -> Result<bool, ApiError> {
  tx.lock_email_account(email)?;
  let Some(account) = tx.email_account(email)? else {
    return Ok(false);
  };
  if !ct_eq(&account.hash, read_hash) {
    return Ok(false);
  }
  let mut account = account.into_owned();
  account.salt = salt;
  account.hash = hash;
  account.iterations = iterations;
  tx.update_email_account(&account)?;
  Ok(true)
}

/// Whether the account may log in (password already verified).
pub(crate) fn check_confirmed(tx: &dyn Tx, email: &str) -> Result<(), ApiError> {
  match tx.email_account(email)? {
    Some(a) if a.confirmed => Ok(()),
    Some(_) => Err(ApiError::new(401, "AuthError", "confirmation required")),
    None => Err(ApiError::bad_credentials()),
  }
}

fn invalid_token() -> ApiError {
  ApiError::new(400, "UserpassTokenInvalid", "invalid token data")
}

/// The email a pending token belongs to, if `token` is its secret.
fn pending_email(
  tx: &dyn Tx,
  kind: Pending,
  token: &str,
  token_id: &str,
) -> Result<String, ApiError> {
  match tx.pending_by_id(kind, token_id)? {
    Some((email, hash)) if ct_eq(&hash, &token_hash(token)) => Ok(email),
    _ => Err(invalid_token()),
  }
}

/// Confirms the account whose pending confirmation matches.
pub(crate) fn confirm(tx: &mut dyn Tx, token: &str, token_id: &str) -> Result<(), ApiError> {
  let email = pending_email(tx, Pending::Confirm, token, token_id)?;
  // Locked before the read: the account is written back whole, and a password reset that
  // commits in between must not be undone (PostgreSQL runs READ COMMITTED).
  tx.lock_email_account(&email)?;
  tx.drop_pending(Pending::Confirm, &email)?;
  if let Some(a) = tx.email_account(&email)? {
    let mut a = a.into_owned();
    a.confirmed = true;
    tx.update_email_account(&a)?;
  }
  Ok(())
}

/// New confirmation tokens for an unconfirmed account.
pub(crate) fn resend_confirmation(tx: &mut dyn Tx, email: &str) -> Result<TokenPair, ApiError> {
  match tx.email_account(email)? {
    None => Err(ApiError::user_not_found()),
    Some(a) if a.confirmed => Err(ApiError::new(
      409,
      "UserAlreadyConfirmed",
      "already confirmed",
    )),
    Some(_) => new_pending(tx, Pending::Confirm, email),
  }
}

/// Runs the confirmation function for an account (`confirm/call`): like a resend, except that
/// an app that confirms automatically refuses, as the real server does.
pub(crate) fn run_confirmation(
  tx: &mut dyn Tx,
  email: &str,
  automatic: bool,
) -> Result<TokenPair, ApiError> {
  if tx.email_account(email)?.is_none() {
    return Err(ApiError::user_not_found());
  }
  if automatic {
    return Err(ApiError::new(
      400,
      "AutomaticConfirmationEnabled",
      format!("cannot run confirmation for {email}: automatic confirmation is enabled"),
    ));
  }
  resend_confirmation(tx, email)
}

/// New reset tokens for an account.
pub(crate) fn start_reset(tx: &mut dyn Tx, email: &str) -> Result<TokenPair, ApiError> {
  if tx.email_account(email)?.is_none() {
    return Err(ApiError::user_not_found());
  }
  new_pending(tx, Pending::Reset, email)
}

/// The email a pending reset belongs to (consumed by `set_password`).
pub(crate) fn reset_email(tx: &dyn Tx, token: &str, token_id: &str) -> Result<String, ApiError> {
  pending_email(tx, Pending::Reset, token, token_id)
}

/// Replaces an account's password (and drops its pending reset).
pub(crate) fn set_password(
  tx: &mut dyn Tx,
  email: &str,
  salt: String,
  hash: String,
  iterations: u32,
) -> Result<(), ApiError> {
  let mut account = tx
    .email_account(email)?
    .ok_or_else(ApiError::user_not_found)?
    .into_owned();
  account.salt = salt;
  account.hash = hash;
  account.iterations = iterations;
  tx.update_email_account(&account)?;
  tx.drop_pending(Pending::Reset, email)?;
  Ok(())
}

// ---- API keys -----------------------------------------------------------------------------

/// Finds the enabled key with this secret hash: `(owner, key id)`.
pub(crate) fn key_login(tx: &dyn Tx, hash: &str) -> Result<(String, String), ApiError> {
  let key = tx
    .key_by_hash(hash)?
    .ok_or_else(ApiError::invalid_api_key)?;
  // The lookup found it by hash; compare again in constant time as the stored value.
  if !ct_eq(&key.hash, hash) || key.disabled || tx.user(&key.owner)?.is_none() {
    return Err(ApiError::invalid_api_key());
  }
  Ok((key.owner.clone(), key.id.clone()))
}

/// 403 unless the user may manage user API keys (not anonymous, not a server user).
pub(crate) fn check_key_manager(tx: &dyn Tx, user_id: &str) -> Result<(), ApiError> {
  match tx.user(user_id)? {
    Some(u) if u.kind == UserKind::Normal && !u.is_anonymous() => Ok(()),
    Some(_) => Err(ApiError::forbidden()),
    None => Err(ApiError::invalid_session("user not found")),
  }
}

fn key_exists() -> ApiError {
  ApiError::new(409, "APIKeyAlreadyExists", "API key already exists")
}

/// Creates a user API key; returns its id (the caller already holds the secret). The owner's
/// row is locked first, so the limit holds under concurrent creates on every backend.
pub(crate) fn create_key(
  tx: &mut dyn Tx,
  owner: &str,
  name: &str,
  hash: String,
  limit: usize,
  now: u64,
) -> Result<String, ApiError> {
  validate_key_name(name)?;
  if !tx.lock_user(owner)? {
    return Err(ApiError::invalid_session("user not found"));
  }
  let keys = tx.keys_of(owner)?;
  if keys.iter().any(|k| k.name == name) {
    return Err(key_exists());
  }
  if keys.len() >= limit {
    return Err(ApiError::new(
      409,
      "LimitExceeded",
      format!("maximum number of API keys ({limit}) reached"),
    ));
  }
  drop(keys);
  let key = ApiKey {
    id: object_id(),
    owner: owner.to_string(),
    name: name.to_string(),
    disabled: false,
    hash,
    server: false,
    created: now,
  };
  tx.insert_key(&key).map_err(|e| match e {
    StoreError::Conflict => key_exists(),
    other => other.into(),
  })?;
  Ok(key.id)
}

/// Creates a server API key and its server user; returns the key id.
pub(crate) fn create_server_key(
  tx: &mut dyn Tx,
  app_id: &str,
  name: &str,
  hash: String,
  now: u64,
) -> Result<String, ApiError> {
  validate_key_name(name)?;
  if tx.server_key_named(name)? {
    return Err(key_exists());
  }
  let key_id = object_id();
  let mut data = Map::new();
  data.insert("name".into(), Value::String(name.to_string()));
  let user = new_user(
    UserKind::Server,
    identity(app_id, API_KEY, &key_id),
    data,
    now,
  );
  tx.insert_user(&user)?;
  tx.insert_key(&ApiKey {
    id: key_id.clone(),
    owner: user.id,
    name: name.to_string(),
    disabled: false,
    hash,
    server: true,
    created: now,
  })
  .map_err(|e| match e {
    StoreError::Conflict => key_exists(),
    other => other.into(),
  })?;
  Ok(key_id)
}

/// Deletes a server API key with its server user and that user's sessions; false if no server
/// key has this id (malformed ids included).
pub(crate) fn delete_server_key(tx: &mut dyn Tx, raw_id: &str) -> Result<bool, ApiError> {
  let Some(id) = crate::ids::parse_object_id(raw_id) else {
    return Ok(false);
  };
  let owner = match tx.key(&id)? {
    Some(k) if k.server => k.owner.clone(),
    _ => return Ok(false),
  };
  // The server user exists only for its key: deleting it deletes the key and its sessions.
  tx.delete_user(&owner)?;
  Ok(true)
}

/// The keys of a user, in creation order, as the list route's JSON.
pub(crate) fn list_keys_json(tx: &dyn Tx, owner: &str) -> Result<Vec<u8>, ApiError> {
  /// Serialises the keys' views straight from the store's records (no second list).
  struct Views<'a, 'k>(&'a [Cow<'k, ApiKey>]);
  impl Serialize for Views<'_, '_> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
      s.collect_seq(self.0.iter().map(|k| KeyView {
        id: &k.id,
        name: &k.name,
        disabled: k.disabled,
      }))
    }
  }
  let keys = tx.keys_of(owner)?;
  Ok(serde_json::to_vec(&Views(&keys)).expect("keys serialize"))
}

/// A key of `owner` by raw id from the URL; 404 for malformed, unknown or foreign ids.
pub(crate) fn owned_key<'t>(
  tx: &'t dyn Tx,
  owner: &str,
  raw_id: &str,
) -> Result<Cow<'t, ApiKey>, ApiError> {
  let id = crate::ids::parse_object_id(raw_id).ok_or_else(ApiError::key_not_found)?;
  match tx.key(&id)? {
    Some(k) if k.owner == owner && !k.server => Ok(k),
    _ => Err(ApiError::key_not_found()),
  }
}

/// Enables or disables a key of `owner`. Sessions opened with it stay valid: disabling only
/// stops new logins (it is reversible).
pub(crate) fn set_key_disabled(
  tx: &mut dyn Tx,
  owner: &str,
  raw_id: &str,
  disabled: bool,
) -> Result<(), ApiError> {
  let id = owned_key(tx, owner, raw_id)?.id.clone();
  tx.set_key_disabled(&id, disabled)?;
  Ok(())
}

/// Deletes a key of `owner`, unless it is the key the calling session logged in with (403).
/// Sessions opened with the key end with it, and its identity leaves the user.
pub(crate) fn delete_key(
  tx: &mut dyn Tx,
  owner: &str,
  raw_id: &str,
  calling_key: Option<&str>,
) -> Result<(), ApiError> {
  let id = owned_key(tx, owner, raw_id)?.id.clone();
  if calling_key == Some(id.as_str()) {
    return Err(ApiError::forbidden());
  }
  tx.delete_key(&id)?;
  if let Some(mut user) = user_for_update(tx, owner)? {
    let before = user.identities.len();
    user
      .identities
      .retain(|i| !(i.provider_type == API_KEY && i.id == id));
    if user.identities.len() != before {
      tx.update_user(&user)?;
    }
  }
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn key_names() {
    assert!(validate_key_name("ok_name-1").is_ok());
    assert!(validate_key_name("").is_err());
    assert!(validate_key_name("has space").is_err());
    assert!(validate_key_name("ünï").is_err());
    assert!(validate_key_name(&"a".repeat(MAX_KEY_NAME)).is_ok());
    assert!(validate_key_name(&"a".repeat(MAX_KEY_NAME + 1)).is_err());
  }

  #[test]
  fn secrets_are_long_and_hashed() {
    let (secret, hash) = new_key_secret();
    assert_eq!(secret.len(), 64);
    assert_eq!(hash, key_hash(&secret));
    assert_ne!(secret, hash);
    let (salt, h) = new_password_hash("password", 10);
    assert_eq!(hash_password("password", &salt, 10), h);
    assert_ne!(hash_password("passwore", &salt, 10), h);
  }

  #[test]
  fn a_rehash_never_overwrites_a_password_changed_since_it_was_read() {
    let mut st = crate::memory::State::new();
    let mut tx = crate::memory::MemTx::new(&mut st);
    let tx: &mut dyn Tx = &mut tx;
    let (salt, hash) = new_password_hash("secret1", 1);
    register(tx, "a@x", salt, hash, 1, true).unwrap();
    let read = tx.email_account("a@x").unwrap().unwrap().hash.clone();
    // A reset lands between the login's read and its rehash.
    let (salt, hash) = new_password_hash("secret2", 1);
    let mut account = tx.email_account("a@x").unwrap().unwrap().into_owned();
    (account.salt, account.hash) = (salt, hash.clone());
    tx.update_email_account(&account).unwrap();
    let rehashed = rehash_password(tx, "a@x", &read, "s".into(), "$rehash".into(), 0).unwrap();
    assert!(!rehashed);
    assert_eq!(tx.email_account("a@x").unwrap().unwrap().hash, hash);
    // Against the hash it read, the rehash goes through.
    assert!(rehash_password(tx, "a@x", &hash, "s".into(), "$rehash".into(), 0).unwrap());
    assert_eq!(tx.email_account("a@x").unwrap().unwrap().hash, "$rehash");
  }

  #[test]
  fn disabled_users_cannot_log_in_or_authenticate() {
    let mut st = crate::memory::State::new();
    let mut tx = crate::memory::MemTx::new(&mut st);
    let tx: &mut dyn Tx = &mut tx;
    let (salt, hash) = new_password_hash("secret1", 1);
    register(tx, "a@x", salt, hash, 1, true).unwrap();
    let login = |tx: &mut dyn Tx| resolve(tx, "app", Ident::Email("a@x"), None, Map::new(), 0);
    let id = login(tx).unwrap();
    let sid = new_session(tx, &id, "dev", None, 100, 0).unwrap();
    let claims = |typ| Claims {
      typ,
      exp: 50,
      generation: 0,
      sid: sid.clone(),
      sub: id.clone(),
      app: None,
    };
    assert!(authenticate(tx, &claims(Kind::Access), Kind::Access, 1).is_ok());
    let before = tx.user(&id).unwrap().unwrap().into_owned();
    assert!(set_user_disabled(tx, &id, true).unwrap());
    assert!(
      tx.session(&sid).unwrap().is_none(),
      "disabling ends the sessions"
    );
    assert_eq!(login(tx).unwrap_err().code, "UserDisabled");
    for kind in [Kind::Access, Kind::Refresh] {
      let e = authenticate(tx, &claims(kind), kind, 1).unwrap_err();
      assert_eq!((e.status, e.code), (401, "UserDisabled"));
    }
    // An update from a copy read before the disable (a racing login's) keeps the flag.
    tx.update_user(&before).unwrap();
    assert!(tx.user(&id).unwrap().unwrap().disabled);
    assert!(set_user_disabled(tx, &id, false).unwrap());
    assert_eq!(login(tx).unwrap(), id);
    assert!(!set_user_disabled(tx, "nobody", true).unwrap());
  }

  /// The guard against a session a login opened while a disable committed (PostgreSQL, READ
  /// COMMITTED): the user is disabled, the session is still there. The raw `Tx` write keeps
  /// the sessions, which the rule's own disable would end.
  #[test]
  fn a_live_session_of_a_disabled_user_is_refused_and_enabling_ends_it() {
    let mut st = crate::memory::State::new();
    let mut tx = crate::memory::MemTx::new(&mut st);
    let tx: &mut dyn Tx = &mut tx;
    let id = resolve(tx, "app", Ident::Anonymous, None, Map::new(), 0).unwrap();
    let sid = new_session(tx, &id, "dev", None, 100, 0).unwrap();
    let claims = |kind| Claims {
      typ: kind,
      exp: 50,
      generation: 0,
      sid: sid.clone(),
      sub: id.clone(),
      app: None,
    };
    assert!(Tx::set_user_disabled(tx, &id, true).unwrap());
    assert!(tx.session(&sid).unwrap().is_some());
    for kind in [Kind::Access, Kind::Refresh] {
      let e = authenticate(tx, &claims(kind), kind, 1).unwrap_err();
      assert_eq!((e.status, e.code), (401, "UserDisabled"), "{kind:?}");
    }
    // Enabling must not bring that session back.
    assert!(set_user_disabled(tx, &id, false).unwrap());
    assert!(
      tx.session(&sid).unwrap().is_none(),
      "enabling kept the session"
    );
  }

  /// Within one transaction, a user read after a write to it shows the write: the SQL stores
  /// keep the last user read (with a session or by itself), and each write must drop it.
  fn cached_reads_follow_writes(tx: &mut dyn Tx) {
    let user = |tx: &dyn Tx, id: &str| tx.user(id).unwrap().map(Cow::into_owned);
    let u = new_user(UserKind::Normal, identity("a", ANON, "x"), Map::new(), 0);
    let id = u.id.clone();
    assert!(user(tx, &id).is_none());
    tx.insert_user(&u).unwrap();
    assert!(
      user(tx, &id).is_some(),
      "insert_user: the cached absence stayed"
    );
    assert!(tx.set_user_disabled(&id, true).unwrap());
    assert!(
      user(tx, &id).unwrap().disabled,
      "set_user_disabled: the cached row stayed"
    );
    let mut copy = user(tx, &id).unwrap();
    copy.custom_data = json!({"k": 1});
    tx.update_user(&copy).unwrap();
    assert_eq!(
      user(tx, &id).unwrap().custom_data,
      json!({"k": 1}),
      "update_user"
    );
    // A session read fills the cache with its user (one join).
    let sid = new_session(tx, &id, "dev", None, 100, 0).unwrap();
    assert!(tx.session(&sid).unwrap().is_some());
    assert!(tx.set_user_disabled(&id, false).unwrap());
    assert!(
      !user(tx, &id).unwrap().disabled,
      "set_user_disabled after a session read"
    );
    assert!(tx.delete_user(&id).unwrap());
    assert!(
      user(tx, &id).is_none(),
      "delete_user: the cached row stayed"
    );
    let other = new_user(UserKind::Normal, identity("a", ANON, "y"), Map::new(), 0);
    tx.insert_user(&other).unwrap();
    assert!(user(tx, &other.id).is_some());
    tx.clear().unwrap();
    assert!(
      user(tx, &other.id).is_none(),
      "clear: the cached row stayed"
    );
  }

  #[test]
  fn cached_reads_follow_writes_in_memory_and_sqlite() {
    let mut st = crate::memory::State::new();
    cached_reads_follow_writes(&mut crate::memory::MemTx::new(&mut st));
    let dir = std::env::temp_dir().join(format!(
      "realm-auth-cache-{}",
      crate::ids::hex(&crate::ids::random_bytes::<6>())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = crate::sqlite::Sqlite::open(&dir.join("s.db")).unwrap();
    db.ensure_app("a").unwrap();
    db.run("a", true, |tx| {
      cached_reads_follow_writes(tx);
      Ok(())
    })
    .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
  }

  #[test]
  fn linking_rules() {
    let mut st = crate::memory::State::new();
    let mut tx = crate::memory::MemTx::new(&mut st);
    let tx: &mut dyn Tx = &mut tx;
    let anon = resolve(tx, "app", Ident::Anonymous, None, Map::new(), 0).unwrap();
    let is_anon = |tx: &dyn Tx, id: &str| tx.user(id).unwrap().unwrap().is_anonymous();
    assert!(is_anon(tx, &anon));
    let (salt, hash) = new_password_hash("secret1", 1);
    register(tx, "a@x", salt, hash, 1, true).unwrap();
    let email = |tx: &mut dyn Tx, link: Option<&str>| {
      resolve(tx, "app", Ident::Email("a@x"), link, Map::new(), 0)
    };
    assert_eq!(email(tx, Some(&anon)).unwrap(), anon);
    assert!(!is_anon(tx, &anon));
    assert_eq!(email(tx, None).unwrap(), anon);
    let other = resolve(tx, "app", Ident::Anonymous, None, Map::new(), 0).unwrap();
    assert_eq!(email(tx, Some(&other)).unwrap_err().status, 409);
    assert!(resolve(tx, "app", Ident::Anonymous, Some(&other), Map::new(), 0).is_err());
  }

  /// Read-modify-writes racing a committed write on PostgreSQL (READ COMMITTED), made
  /// deterministic: the first transaction writes and holds its row lock until the second is
  /// seen waiting on a lock, then commits. Without a lock before its read, the second writes
  /// back the copy it read before the first committed.
  mod pg_races {
    use super::*;
    use crate::postgres::Postgres;
    use std::sync::mpsc;

    /// A fresh schema, or `None` (with a note) when no test cluster is set up.
    fn db() -> Option<(Postgres, String)> {
      let Ok(url) = std::env::var("REALM_AUTH_TEST_PG_URL") else {
        assert_ne!(
          std::env::var("REALM_AUTH_TEST_STORE").as_deref(),
          Ok("postgres"),
          "REALM_AUTH_TEST_PG_URL is required with REALM_AUTH_TEST_STORE=postgres"
        );
        eprintln!("skipped: REALM_AUTH_TEST_PG_URL is not set");
        return None;
      };
      let schema = format!("race_{}", crate::ids::hex(&crate::ids::random_bytes::<6>()));
      // Named, so that `race` watches this test's connections only (tests run in parallel).
      let sep = if url.contains('?') { '&' } else { '?' };
      let db = Postgres::open(
        &format!("{url}{sep}application_name={schema}"),
        Some(&schema),
      );
      let db = db.unwrap();
      db.ensure_app("a").unwrap();
      Some((db, schema))
    }

    /// Runs `first` (which must write a row) and holds its transaction open until `second`,
    /// started meanwhile, waits on a row lock; then commits `first` and lets `second` finish.
    fn race(
      db: &Postgres,
      name: &str,
      first: impl FnOnce(&mut dyn Tx) -> Result<(), ApiError> + Send,
      second: impl FnOnce(&mut dyn Tx) -> Result<(), ApiError> + Send,
    ) {
      let (wrote, wrote_rx) = mpsc::channel();
      let (go, go_rx) = mpsc::channel::<()>();
      std::thread::scope(|s| {
        let a = s.spawn(move || {
          db.run("a", true, |tx| {
            first(tx)?;
            wrote.send(()).unwrap();
            go_rx.recv().unwrap();
            Ok(())
          })
        });
        wrote_rx.recv().unwrap();
        let b = s.spawn(move || db.run("a", true, second));
        let url = std::env::var("REALM_AUTH_TEST_PG_URL").unwrap();
        let mut watch = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
          let waiting: i64 = watch
            .query_one(
              "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' \
               AND application_name = $1",
              &[&name],
            )
            .unwrap()
            .get(0);
          if waiting > 0 {
            break;
          }
          assert!(
            std::time::Instant::now() < deadline,
            "the second never waited"
          );
          std::thread::sleep(std::time::Duration::from_millis(5));
        }
        go.send(()).unwrap();
        a.join().unwrap().unwrap();
        b.join().unwrap().unwrap();
      });
    }

    #[test]
    fn cached_reads_follow_writes_on_postgres() {
      let Some((db, _)) = db() else { return };
      db.run("a", true, |tx| {
        cached_reads_follow_writes(tx);
        Ok(())
      })
      .unwrap();
    }

    #[test]
    fn confirming_does_not_undo_a_concurrent_password_reset() {
      let Some((db, name)) = db() else { return };
      let tokens = db
        .run("a", true, |tx| {
          register(tx, "a@x", "s0".into(), "h0".into(), 1, false)
        })
        .unwrap()
        .unwrap();
      race(
        &db,
        &name,
        |tx| {
          // As the reset route does.
          tx.lock_email_account("a@x")?;
          let mut a = tx.email_account("a@x")?.unwrap().into_owned();
          (a.salt, a.hash) = ("s1".into(), "h1".into());
          Ok(tx.update_email_account(&a)?)
        },
        |tx| confirm(tx, &tokens.token, &tokens.token_id),
      );
      let a = db
        .run("a", false, |tx| {
          Ok(tx.email_account("a@x")?.unwrap().into_owned())
        })
        .unwrap();
      assert_eq!(
        (a.salt.as_str(), a.hash.as_str()),
        ("s1", "h1"),
        "the reset was undone"
      );
      assert!(a.confirmed);
    }

    /// One user with one identity, and a writer that adds a second one under the row lock.
    fn user_and_linker(
      db: &Postgres,
    ) -> (
      String,
      impl FnOnce(&mut dyn Tx) -> Result<(), ApiError> + Send,
    ) {
      let user = new_user(UserKind::Normal, identity("a", ANON, "one"), Map::new(), 0);
      let id = user.id.clone();
      db.run("a", true, move |tx| Ok(tx.insert_user(&user)?))
        .unwrap();
      let link = {
        let id = id.clone();
        move |tx: &mut dyn Tx| {
          let mut u = user_for_update(tx, &id)?.unwrap();
          attach(&mut u, identity("a", "custom-token", "two"));
          Ok(tx.update_user(&u)?)
        }
      };
      (id, link)
    }

    fn identities(db: &Postgres, id: &str) -> Vec<String> {
      let id = id.to_string();
      db.run("a", false, move |tx| {
        Ok(
          tx.user(&id)?
            .unwrap()
            .identities
            .iter()
            .map(|i| i.id.clone())
            .collect(),
        )
      })
      .unwrap()
    }

    #[test]
    fn custom_data_does_not_undo_a_concurrent_link() {
      let Some((db, name)) = db() else { return };
      let (id, link) = user_and_linker(&db);
      race(&db, &name, link, |tx| {
        assert!(set_custom_data(tx, &id, json!({"k": 1}))?);
        Ok(())
      });
      assert_eq!(identities(&db, &id), ["one", "two"], "the link was undone");
      let custom = db
        .run("a", false, {
          let id = id.clone();
          move |tx| Ok(tx.user(&id)?.unwrap().custom_data.clone())
        })
        .unwrap();
      assert_eq!(custom, json!({"k": 1}));
    }

    /// The review's case: deleting a key (its identity leaves the user) races the first login
    /// through another key of the same user (its identity joins).
    #[test]
    fn a_keys_first_login_does_not_undo_a_concurrent_key_deletion() {
      let Some((db, name)) = db() else { return };
      let user = new_user(
        UserKind::Normal,
        identity("a", USERPASS, "e"),
        Map::new(),
        0,
      );
      let (id, k1, k2) = (user.id.clone(), object_id(), object_id());
      let key_login = |key: &str| {
        let (id, key) = (id.clone(), key.to_string());
        move |tx: &mut dyn Tx| {
          let ident = Ident::ApiKey {
            key_id: key,
            owner: id,
          };
          resolve(tx, "a", ident, None, Map::new(), 0).map(drop)
        }
      };
      db.run("a", true, {
        let (id, k1, k2) = (id.clone(), k1.clone(), k2.clone());
        let first = key_login(&k1);
        move |tx| {
          tx.insert_user(&user)?;
          for (key, name) in [(k1, "k1"), (k2, "k2")] {
            tx.insert_key(&ApiKey {
              id: key,
              owner: id.clone(),
              name: name.into(),
              disabled: false,
              hash: key_hash(name),
              server: false,
              created: 0,
            })?;
          }
          // k1 has logged in once: its identity is on the user.
          first(tx)
        }
      })
      .unwrap();
      assert_eq!(identities(&db, &id), ["e", k1.as_str()]);
      let delete = {
        let (id, k1) = (id.clone(), k1.clone());
        move |tx: &mut dyn Tx| delete_key(tx, &id, &k1, None)
      };
      race(&db, &name, delete, key_login(&k2));
      assert_eq!(
        identities(&db, &id),
        ["e", k2.as_str()],
        "the deletion was undone"
      );
    }

    #[test]
    fn a_profile_refresh_does_not_undo_a_concurrent_link() {
      let Some((db, name)) = db() else { return };
      let (id, link) = user_and_linker(&db);
      race(&db, &name, link, |tx| {
        let mut profile = Map::new();
        profile.insert("license".into(), json!("x"));
        refresh_profile(tx, &id, profile)
      });
      assert_eq!(identities(&db, &id), ["one", "two"], "the link was undone");
    }
  }
}
