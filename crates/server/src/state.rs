//! The emulator's data and its rules: users, identities, email accounts, sessions and API keys.
//! No HTTP here: handlers in `routes.rs` and `control.rs` call these methods under one lock.

use std::collections::HashMap;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::control::TokenPair;
use crate::ids::{hex, object_id, random_bytes};
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
}

impl ApiError {
  /// An error with a JSON body.
  pub fn new(status: u16, code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError {
      status,
      code,
      message: message.into(),
      bare: false,
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
  /// Ids of this user's API keys, in creation order.
  pub key_ids: Vec<String>,
  pub created: u64,
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

/// Everything the emulator knows. Persisted as JSON (minus the `serde(skip)` fields).
#[derive(Serialize, Deserialize)]
pub(crate) struct State {
  /// File format version.
  pub format: u32,
  /// HS256 key of our tokens (hex). Persisted so tokens survive a restart with `--data`.
  pub jwt_secret: String,
  /// Bumped by `expire_access_tokens`: older access tokens are refused.
  pub access_generation: u64,
  pub users: HashMap<String, User>,
  /// By email.
  pub emails: HashMap<String, EmailAccount>,
  /// `"<provider>/<id>"` -> user id, for custom-token and custom-function identities.
  pub identities: HashMap<String, String>,
  pub keys: HashMap<String, ApiKey>,
  pub sessions: HashMap<String, Session>,
  /// SHA-256 hex -> key id (derived, rebuilt on load).
  #[serde(skip)]
  key_by_hash: HashMap<String, String>,
  /// Pending tokens live in memory only (they are secrets; the file holds hashes only).
  #[serde(skip)]
  pending_confirmations: HashMap<String, TokenPair>,
  #[serde(skip)]
  pending_resets: HashMap<String, TokenPair>,
  #[serde(skip)]
  app_id: String,
  /// Bumped by every write access (see `Shared::write`): tells the persister what is new.
  #[serde(skip)]
  pub version: u64,
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

impl State {
  /// Empty state with a fresh signing secret.
  pub fn new(app_id: &str) -> State {
    State {
      format: 1,
      jwt_secret: hex(&random_bytes::<32>()),
      access_generation: 0,
      users: HashMap::new(),
      emails: HashMap::new(),
      identities: HashMap::new(),
      keys: HashMap::new(),
      sessions: HashMap::new(),
      key_by_hash: HashMap::new(),
      pending_confirmations: HashMap::new(),
      pending_resets: HashMap::new(),
      app_id: app_id.to_string(),
      version: 0,
    }
  }

  /// Finishes a state loaded from disk: sets the app id and rebuilds derived indexes.
  pub fn after_load(&mut self, app_id: &str) {
    self.app_id = app_id.to_string();
    self.key_by_hash = self
      .keys
      .values()
      .map(|k| (k.hash.clone(), k.id.clone()))
      .collect();
  }

  /// The signing secret as bytes.
  pub fn jwt_secret_bytes(&self) -> Vec<u8> {
    self.jwt_secret.as_bytes().to_vec()
  }

  /// A stable per-app id for a provider (profile `provider_id`).
  pub fn provider_id(&self, provider: &str) -> String {
    derived_id(&self.app_id, provider)
  }

  /// Forgets all users, keys and sessions (keeps the signing secret; old access tokens die).
  pub fn clear(&mut self) {
    self.users.clear();
    self.emails.clear();
    self.identities.clear();
    self.keys.clear();
    self.sessions.clear();
    self.key_by_hash.clear();
    self.pending_confirmations.clear();
    self.pending_resets.clear();
    self.access_generation += 1;
  }

  // ---- sessions -------------------------------------------------------------------------

  /// Checks a decoded token against the state: kind, expiry, access generation, live session.
  pub fn authenticate(&self, claims: &Claims, want: Kind, now: u64) -> Result<&Session, ApiError> {
    if claims.typ != want {
      return Err(ApiError::invalid_session(match want {
        Kind::Refresh => "a refresh token is required",
        Kind::Access => "an access token is required",
      }));
    }
    if claims.exp <= now {
      return Err(ApiError::invalid_session("token expired"));
    }
    if want == Kind::Access && claims.generation != self.access_generation {
      return Err(ApiError::invalid_session("token expired"));
    }
    let session = self.sessions.get(&claims.sid).ok_or_else(|| {
      ApiError::invalid_session(match want {
        Kind::Refresh => "failed to find refresh token",
        Kind::Access => "session ended",
      })
    })?;
    if session.user_id != claims.sub || session.expires <= now {
      return Err(ApiError::invalid_session("session ended"));
    }
    if !self.users.contains_key(&session.user_id) {
      return Err(ApiError::invalid_session("user not found"));
    }
    Ok(session)
  }

  /// Opens a session; returns its id.
  pub fn new_session(
    &mut self,
    user_id: &str,
    device_id: &str,
    via_key: Option<String>,
    ttl: u64,
    now: u64,
  ) -> String {
    // Amortised cleanup so a long benchmark of logins does not grow without bound.
    if self.sessions.len() >= 1024 && self.sessions.len().is_power_of_two() {
      self.sessions.retain(|_, s| s.expires > now);
    }
    let id = object_id();
    self.sessions.insert(
      id.clone(),
      Session {
        id: id.clone(),
        user_id: user_id.to_string(),
        device_id: device_id.to_string(),
        via_key,
        expires: now.saturating_add(ttl),
      },
    );
    id
  }

  /// Ends one session (logout).
  pub fn end_session(&mut self, session_id: &str) {
    self.sessions.remove(session_id);
  }

  /// Ends every session of a user; false if there is no such user.
  pub fn revoke_user_sessions(&mut self, user_id: &str) -> bool {
    if !self.users.contains_key(user_id) {
      return false;
    }
    self.sessions.retain(|_, s| s.user_id != user_id);
    true
  }

  // ---- users and identities ---------------------------------------------------------------

  fn insert_user(
    &mut self,
    kind: UserKind,
    identity: Identity,
    data: Map<String, Value>,
    now: u64,
  ) -> String {
    let id = object_id();
    self.users.insert(
      id.clone(),
      User {
        id: id.clone(),
        kind,
        identities: vec![identity],
        data,
        custom_data: json!({}),
        key_ids: Vec::new(),
        created: now,
      },
    );
    id
  }

  fn identity(&self, provider: &str, id: &str) -> Identity {
    Identity {
      id: id.to_string(),
      provider_type: provider.to_string(),
      provider_id: self.provider_id(provider),
    }
  }

  fn attach(&mut self, user_id: &str, identity: Identity) {
    if let Some(user) = self.users.get_mut(user_id)
      && !user
        .identities
        .iter()
        .any(|i| i.id == identity.id && i.provider_type == identity.provider_type)
    {
      user.identities.push(identity);
    }
  }

  /// Resolves a verified credential to a user: the owner of the identity, or a new user when it
  /// has none. With `link_to`, the identity is added to that user instead (error if another
  /// user owns it).
  pub fn resolve(
    &mut self,
    ident: Ident<'_>,
    link_to: Option<&str>,
    now: u64,
  ) -> Result<String, ApiError> {
    let taken = || {
      ApiError::new(
        409,
        "AccountNameInUse",
        "a user already exists with the specified provider",
      )
    };
    if let Some(linking) = link_to
      && self.users.get(linking).map(|u| u.kind) == Some(UserKind::Server)
    {
      return Err(ApiError::new(
        400,
        "LinkingNotSupported",
        "server API key users cannot link identities",
      ));
    }
    match ident {
      Ident::Anonymous => {
        if link_to.is_some() {
          return Err(ApiError::new(
            400,
            "LinkingNotSupported",
            "linking an anonymous identity is not supported",
          ));
        }
        let identity = self.identity(ANON, &object_id());
        Ok(self.insert_user(UserKind::Normal, identity, Map::new(), now))
      }
      Ident::Email(email) => {
        let account = self
          .emails
          .get(email)
          .ok_or_else(ApiError::bad_credentials)?;
        let identity = self.identity(USERPASS, &account.identity_id);
        match (account.user_id.clone(), link_to) {
          (Some(owner), None) => Ok(owner),
          (Some(owner), Some(linking)) if owner == linking => Ok(owner),
          (Some(_), Some(_)) => Err(taken()),
          (None, None) => {
            let mut data = Map::new();
            data.insert("email".into(), Value::String(email.to_string()));
            let id = self.insert_user(UserKind::Normal, identity, data, now);
            if let Some(a) = self.emails.get_mut(email) {
              a.user_id = Some(id.clone());
            }
            Ok(id)
          }
          (None, Some(linking)) => {
            self.attach(linking, identity);
            if let Some(user) = self.users.get_mut(linking) {
              user
                .data
                .entry("email")
                .or_insert_with(|| Value::String(email.to_string()));
            }
            if let Some(a) = self.emails.get_mut(email) {
              a.user_id = Some(linking.to_string());
            }
            Ok(linking.to_string())
          }
        }
      }
      Ident::ApiKey { key_id, owner } => {
        if link_to.is_some_and(|l| l != owner) {
          return Err(taken());
        }
        let identity = self.identity(API_KEY, &key_id);
        self.attach(&owner, identity);
        Ok(owner)
      }
      Ident::External { provider, id } => {
        let index = format!("{provider}/{id}");
        let identity = self.identity(provider, id);
        match (self.identities.get(&index).cloned(), link_to) {
          (Some(owner), None) => Ok(owner),
          (Some(owner), Some(linking)) if owner == linking => Ok(owner),
          (Some(_), Some(_)) => Err(taken()),
          (None, None) => {
            let id = self.insert_user(UserKind::Normal, identity, Map::new(), now);
            self.identities.insert(index, id.clone());
            Ok(id)
          }
          (None, Some(linking)) => {
            self.attach(linking, identity);
            self.identities.insert(index, linking.to_string());
            Ok(linking.to_string())
          }
        }
      }
    }
  }

  /// The profile document of `GET /auth/profile`.
  pub fn profile(&self, user_id: &str) -> Option<Value> {
    let user = self.users.get(user_id)?;
    Some(json!({
      "user_id": user.id,
      "domain_id": derived_id(&self.app_id, "domain"),
      "identities": user.identities,
      "data": user.data,
      "type": match user.kind { UserKind::Normal => "normal", UserKind::Server => "server" },
    }))
  }

  /// Deletes a user with its identities, email account, keys and sessions.
  pub fn delete_user(&mut self, user_id: &str) -> bool {
    let Some(user) = self.users.remove(user_id) else {
      return false;
    };
    let emails: Vec<String> = self
      .emails
      .values()
      .filter(|a| a.user_id.as_deref() == Some(user_id))
      .map(|a| a.email.clone())
      .collect();
    for email in emails {
      self.emails.remove(&email);
      self.pending_confirmations.remove(&email);
      self.pending_resets.remove(&email);
    }
    self.identities.retain(|_, owner| owner != user_id);
    for key_id in &user.key_ids {
      if let Some(key) = self.keys.remove(key_id) {
        self.key_by_hash.remove(&key.hash);
      }
    }
    self.sessions.retain(|_, s| s.user_id != user_id);
    true
  }

  /// Sets the custom data that new access tokens carry; false if there is no such user.
  pub fn set_custom_data(&mut self, user_id: &str, data: Value) -> bool {
    match self.users.get_mut(user_id) {
      Some(user) => {
        user.custom_data = data;
        true
      }
      None => false,
    }
  }

  // ---- email/password ---------------------------------------------------------------------

  /// Creates an email account. Returns the confirmation tokens when it starts unconfirmed.
  pub fn register(
    &mut self,
    email: &str,
    salt: String,
    hash: String,
    iterations: u32,
    confirmed: bool,
  ) -> Result<Option<TokenPair>, ApiError> {
    if self.emails.contains_key(email) {
      return Err(ApiError::new(
        409,
        "AccountNameInUse",
        "name already in use",
      ));
    }
    self.emails.insert(
      email.to_string(),
      EmailAccount {
        email: email.to_string(),
        identity_id: object_id(),
        salt,
        hash,
        iterations,
        confirmed,
        user_id: None,
      },
    );
    if confirmed {
      return Ok(None);
    }
    let pair = new_token_pair();
    self
      .pending_confirmations
      .insert(email.to_string(), pair.clone());
    Ok(Some(pair))
  }

  /// Creates the user of a confirmed account right away (control API `create_user`).
  pub fn create_email_user(&mut self, email: &str, now: u64) -> Result<String, ApiError> {
    self.resolve(Ident::Email(email), None, now)
  }

  /// Salt, hash and iteration count of an account, to verify a password outside the lock.
  pub fn password_record(&self, email: &str) -> Option<(String, String, u32)> {
    self
      .emails
      .get(email)
      .map(|a| (a.salt.clone(), a.hash.clone(), a.iterations))
  }

  /// Whether the account may log in (password already verified).
  pub fn check_confirmed(&self, email: &str) -> Result<(), ApiError> {
    match self.emails.get(email) {
      Some(a) if a.confirmed => Ok(()),
      Some(_) => Err(ApiError::new(401, "AuthError", "confirmation required")),
      None => Err(ApiError::bad_credentials()),
    }
  }

  /// Confirms the account whose pending confirmation matches.
  pub fn confirm(&mut self, token: &str, token_id: &str) -> Result<(), ApiError> {
    let email = self
      .pending_confirmations
      .iter()
      .find(|(_, p)| p.token_id == token_id && ct_eq(&p.token, token))
      .map(|(e, _)| e.clone())
      .ok_or_else(|| ApiError::new(400, "UserpassTokenInvalid", "invalid token data"))?;
    self.pending_confirmations.remove(&email);
    if let Some(a) = self.emails.get_mut(&email) {
      a.confirmed = true;
    }
    Ok(())
  }

  /// New confirmation tokens for an unconfirmed account.
  pub fn resend_confirmation(&mut self, email: &str) -> Result<TokenPair, ApiError> {
    match self.emails.get(email) {
      None => Err(ApiError::user_not_found()),
      Some(a) if a.confirmed => Err(ApiError::new(
        409,
        "UserAlreadyConfirmed",
        "already confirmed",
      )),
      Some(_) => {
        let pair = new_token_pair();
        self
          .pending_confirmations
          .insert(email.to_string(), pair.clone());
        Ok(pair)
      }
    }
  }

  /// New reset tokens for an account.
  pub fn start_reset(&mut self, email: &str) -> Result<TokenPair, ApiError> {
    if !self.emails.contains_key(email) {
      return Err(ApiError::user_not_found());
    }
    let pair = new_token_pair();
    self.pending_resets.insert(email.to_string(), pair.clone());
    Ok(pair)
  }

  /// The email a pending reset belongs to (consumed by `set_password`).
  pub fn reset_email(&self, token: &str, token_id: &str) -> Result<String, ApiError> {
    self
      .pending_resets
      .iter()
      .find(|(_, p)| p.token_id == token_id && ct_eq(&p.token, token))
      .map(|(e, _)| e.clone())
      .ok_or_else(|| ApiError::new(400, "UserpassTokenInvalid", "invalid token data"))
  }

  /// Replaces an account's password (and drops its pending reset).
  pub fn set_password(
    &mut self,
    email: &str,
    salt: String,
    hash: String,
    iterations: u32,
  ) -> Result<(), ApiError> {
    let account = self
      .emails
      .get_mut(email)
      .ok_or_else(ApiError::user_not_found)?;
    account.salt = salt;
    account.hash = hash;
    account.iterations = iterations;
    self.pending_resets.remove(email);
    Ok(())
  }

  /// Pending confirmation tokens of an account.
  pub fn pending_confirmation(&self, email: &str) -> Option<TokenPair> {
    self.pending_confirmations.get(email).cloned()
  }

  /// Pending reset tokens of an account.
  pub fn pending_reset(&self, email: &str) -> Option<TokenPair> {
    self.pending_resets.get(email).cloned()
  }

  // ---- API keys ---------------------------------------------------------------------------

  /// Finds the enabled key with this secret hash: `(owner, key id)`.
  pub fn key_login(&self, hash: &str) -> Result<(String, String), ApiError> {
    let key = self
      .key_by_hash
      .get(hash)
      .and_then(|id| self.keys.get(id))
      .ok_or_else(ApiError::invalid_api_key)?;
    // The map lookup found it by hash; compare again in constant time as the stored value.
    if !ct_eq(&key.hash, hash) || key.disabled || !self.users.contains_key(&key.owner) {
      return Err(ApiError::invalid_api_key());
    }
    Ok((key.owner.clone(), key.id.clone()))
  }

  /// 403 unless the user may manage user API keys (not anonymous, not a server user).
  pub fn check_key_manager(&self, user_id: &str) -> Result<&User, ApiError> {
    match self.users.get(user_id) {
      Some(u) if u.kind == UserKind::Normal && !u.is_anonymous() => Ok(u),
      Some(_) => Err(ApiError::forbidden()),
      None => Err(ApiError::invalid_session("user not found")),
    }
  }

  /// Creates a user API key; returns its id (the caller already holds the secret).
  pub fn create_key(
    &mut self,
    owner: &str,
    name: &str,
    hash: String,
    limit: usize,
    now: u64,
  ) -> Result<String, ApiError> {
    validate_key_name(name)?;
    let user = self
      .users
      .get(owner)
      .ok_or_else(|| ApiError::invalid_session("user not found"))?;
    if user
      .key_ids
      .iter()
      .any(|id| self.keys.get(id).is_some_and(|k| k.name == name))
    {
      return Err(ApiError::new(
        409,
        "APIKeyAlreadyExists",
        "API key already exists",
      ));
    }
    if user.key_ids.len() >= limit {
      return Err(ApiError::new(
        409,
        "LimitExceeded",
        format!("maximum number of API keys ({limit}) reached"),
      ));
    }
    Ok(self.insert_key(owner, name, hash, false, now))
  }

  fn insert_key(
    &mut self,
    owner: &str,
    name: &str,
    hash: String,
    server: bool,
    now: u64,
  ) -> String {
    let id = object_id();
    self.key_by_hash.insert(hash.clone(), id.clone());
    self.keys.insert(
      id.clone(),
      ApiKey {
        id: id.clone(),
        owner: owner.to_string(),
        name: name.to_string(),
        disabled: false,
        hash,
        server,
        created: now,
      },
    );
    if let Some(user) = self.users.get_mut(owner) {
      user.key_ids.push(id.clone());
    }
    id
  }

  /// Creates a server API key and its server user; returns the key id.
  pub fn create_server_key(
    &mut self,
    name: &str,
    hash: String,
    now: u64,
  ) -> Result<String, ApiError> {
    validate_key_name(name)?;
    if self.keys.values().any(|k| k.server && k.name == name) {
      return Err(ApiError::new(
        409,
        "APIKeyAlreadyExists",
        "API key already exists",
      ));
    }
    let key_id = object_id();
    let mut data = Map::new();
    data.insert("name".into(), Value::String(name.to_string()));
    let identity = self.identity(API_KEY, &key_id);
    let owner = self.insert_user(UserKind::Server, identity, data, now);
    self.key_by_hash.insert(hash.clone(), key_id.clone());
    self.keys.insert(
      key_id.clone(),
      ApiKey {
        id: key_id.clone(),
        owner: owner.clone(),
        name: name.to_string(),
        disabled: false,
        hash,
        server: true,
        created: now,
      },
    );
    if let Some(user) = self.users.get_mut(&owner) {
      user.key_ids.push(key_id.clone());
    }
    Ok(key_id)
  }

  /// The keys of a user, in creation order, as the list route's JSON.
  pub fn list_keys_json(&self, user: &User) -> Vec<u8> {
    let views: Vec<KeyView<'_>> = user
      .key_ids
      .iter()
      .filter_map(|id| self.keys.get(id))
      .map(|k| KeyView {
        id: &k.id,
        name: &k.name,
        disabled: k.disabled,
      })
      .collect();
    serde_json::to_vec(&views).expect("keys serialize")
  }

  /// A key of `owner` by raw id from the URL; 404 for malformed, unknown or foreign ids.
  pub fn owned_key(&self, owner: &str, raw_id: &str) -> Result<&ApiKey, ApiError> {
    let id = crate::ids::parse_object_id(raw_id).ok_or_else(ApiError::key_not_found)?;
    match self.keys.get(&id) {
      Some(k) if k.owner == owner && !k.server => Ok(k),
      _ => Err(ApiError::key_not_found()),
    }
  }

  /// Enables or disables a key of `owner`. Sessions opened with it stay valid: disabling only
  /// stops new logins (it is reversible).
  pub fn set_key_disabled(
    &mut self,
    owner: &str,
    raw_id: &str,
    disabled: bool,
  ) -> Result<(), ApiError> {
    let id = self.owned_key(owner, raw_id)?.id.clone();
    if let Some(k) = self.keys.get_mut(&id) {
      k.disabled = disabled;
    }
    Ok(())
  }

  /// Deletes a key of `owner`, unless it is the key the calling session logged in with (403).
  /// Sessions opened with the key end with it, and its identity leaves the user.
  pub fn delete_key(
    &mut self,
    owner: &str,
    raw_id: &str,
    calling_key: Option<&str>,
  ) -> Result<(), ApiError> {
    let id = self.owned_key(owner, raw_id)?.id.clone();
    if calling_key == Some(id.as_str()) {
      return Err(ApiError::forbidden());
    }
    if let Some(key) = self.keys.remove(&id) {
      self.key_by_hash.remove(&key.hash);
    }
    if let Some(user) = self.users.get_mut(owner) {
      user.key_ids.retain(|k| *k != id);
      user
        .identities
        .retain(|i| !(i.provider_type == API_KEY && i.id == id));
    }
    self
      .sessions
      .retain(|_, s| s.via_key.as_deref() != Some(id.as_str()));
    Ok(())
  }
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
  fn linking_rules() {
    let mut st = State::new("app");
    let anon = st.resolve(Ident::Anonymous, None, 0).unwrap();
    assert!(st.users[&anon].is_anonymous());
    let (salt, hash) = new_password_hash("secret1", 1);
    st.register("a@x", salt, hash, 1, true).unwrap();
    assert_eq!(
      st.resolve(Ident::Email("a@x"), Some(&anon), 0).unwrap(),
      anon
    );
    assert!(!st.users[&anon].is_anonymous());
    assert_eq!(st.resolve(Ident::Email("a@x"), None, 0).unwrap(), anon);
    let other = st.resolve(Ident::Anonymous, None, 0).unwrap();
    assert_eq!(
      st.resolve(Ident::Email("a@x"), Some(&other), 0)
        .unwrap_err()
        .status,
      409
    );
    assert!(st.resolve(Ident::Anonymous, Some(&other), 0).is_err());
  }
}
