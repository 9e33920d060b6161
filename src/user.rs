//! `User`: a logged-in (or logged-out) user of an App.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;
use serde_json::{Map, Value};

use crate::api_key_auth::ApiKeyAuth;
use crate::call::{self, Call, run, run_void};
use crate::credentials::Credentials;
use crate::listeners;

/// A user's state, as realm v12 names it.
#[napi(string_enum)]
pub enum UserState {
  /// The user has a session.
  /// @deprecated As in realm v12: use `LoggedIn` (a user's `state` is never `"active"`).
  #[napi(value = "active")]
  Active,
  /// The user has a session.
  LoggedIn,
  /// The user is known to the App but has no session.
  LoggedOut,
  /// The user was removed from the App (or was anonymous and logged out).
  Removed,
}

impl From<client::State> for UserState {
  fn from(s: client::State) -> UserState {
    match s {
      client::State::LoggedIn => UserState::LoggedIn,
      client::State::LoggedOut => UserState::LoggedOut,
      client::State::Removed => UserState::Removed,
    }
  }
}

/// One identity linked to a user.
#[napi(object)]
pub struct UserIdentity {
  /// The identity's id within its provider.
  pub id: String,
  /// The provider, e.g. `"local-userpass"` or `"api-key"`.
  #[napi(ts_type = "ProviderType")]
  pub provider_type: String,
}

/// A user of an App. Its tokens are readable through `accessToken` and
/// `refreshToken` only; `toJSON()` and `util.inspect` never show them.
#[napi(custom_finalize)]
pub struct User {
  pub(crate) inner: client::User,
}

crate::guarded_finalize!(User);

impl User {
  pub(crate) fn new(inner: client::User) -> User {
    User { inner }
  }

  fn call(&self, env: &Env, options: Option<Unknown>) -> Call {
    Call::new(env, self.inner.app().config().timeout, options)
  }
}

fn identities(user: &client::User) -> Vec<UserIdentity> {
  user
    .profile()
    .map(|p| p.identities)
    .unwrap_or_default()
    .into_iter()
    .map(|i| UserIdentity {
      id: i.id,
      provider_type: i.provider_type,
    })
    .collect()
}

#[napi]
impl User {
  /// The `[name, value]` pairs `util.inspect` shows (no token): installed at load as the
  /// `util.inspect.custom` method.
  #[napi(catch_unwind, js_name = "inspectFields", skip_typescript)]
  pub fn inspect_fields(&self) -> Value {
    serde_json::json!([
      ["id", self.inner.id()],
      ["state", self.inner.state().as_str()],
      ["providerType", self.inner.provider_type()],
      ["appId", self.inner.app().config().id]
    ])
  }

  /// The user's id.
  #[napi(catch_unwind, getter)]
  pub fn id(&self) -> String {
    self.inner.id().to_owned()
  }

  /// The access token, or `null` when logged out.
  #[napi(catch_unwind, getter)]
  pub fn access_token(&self) -> Option<String> {
    self.inner.access_token().map(|t| t.expose().to_owned())
  }

  /// The refresh token, or `null` when logged out.
  #[napi(catch_unwind, getter)]
  pub fn refresh_token(&self) -> Option<String> {
    self.inner.refresh_token().map(|t| t.expose().to_owned())
  }

  /// `"LoggedIn"`, `"LoggedOut"` or `"Removed"`.
  #[napi(catch_unwind, getter)]
  pub fn state(&self) -> UserState {
    self.inner.state().into()
  }

  /// True while the user has a session.
  #[napi(catch_unwind, getter)]
  pub fn is_logged_in(&self) -> bool {
    self.inner.state() == client::State::LoggedIn
  }

  /// The provider type of the user's first identity.
  /// @deprecated As in realm v12: read `identities` instead.
  #[napi(catch_unwind, getter, ts_return_type = "ProviderType")]
  pub fn provider_type(&self) -> Option<String> {
    self.inner.provider_type()
  }

  /// The profile data from the server (e.g. `email`), `{}` before a profile was read.
  #[napi(catch_unwind, getter, ts_return_type = "UserProfileDataType")]
  pub fn profile(&self) -> Value {
    Value::Object(self.inner.profile().map(|p| p.data).unwrap_or_default())
  }

  /// The identities linked to this user.
  #[napi(catch_unwind, getter)]
  pub fn identities(&self) -> Vec<UserIdentity> {
    identities(&self.inner)
  }

  /// The device id the server assigned at login, or `null`.
  #[napi(catch_unwind, getter)]
  pub fn device_id(&self) -> Option<String> {
    self.inner.device_id()
  }

  /// Custom user data: the access token's `user_data` claim, `{}` when absent.
  #[napi(catch_unwind, getter, ts_return_type = "UserCustomDataType")]
  pub fn custom_data(&self) -> Value {
    Value::Object(self.inner.custom_data())
  }

  /// This user's API key client.
  #[napi(catch_unwind, getter)]
  pub fn api_keys(&self) -> ApiKeyAuth {
    ApiKeyAuth::new(self.inner.api_keys())
  }

  /// The same client as `apiKeys`. The vendor's documentation page calls
  /// `user.apiKey.enable(keyId)`; this alias makes that code run.
  /// @deprecated Use `apiKeys`.
  #[napi(catch_unwind, getter)]
  pub fn api_key(&self) -> ApiKeyAuth {
    self.api_keys()
  }

  /// Logs out. The session is cleared here before this returns (anonymous
  /// users become `Removed`), as in realm v12; the promise tells how ending it
  /// on the server went. Resolves at once if not logged in.
  #[napi(
    catch_unwind,
    ts_args_type = "options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn log_out<'env>(
    &self,
    env: &'env Env,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let app = self.inner.app().clone();
    let call = self.call(env, options);
    // Refused options change nothing.
    let session = if call.is_accepted() {
      self.inner.log_out_locally()
    } else {
      None
    };
    listeners::flush(env);
    run_void(env, call, Ok(session), move |session| async move {
      match session {
        Some(refresh) => app.end_session(refresh).await,
        None => Ok(()),
      }
    })
  }

  /// Gets a fresh access token and resolves with its custom data.
  #[napi(
    catch_unwind,
    ts_args_type = "options?: CallOptions",
    ts_return_type = "Promise<UserCustomDataType>"
  )]
  pub fn refresh_custom_data<'env>(
    &self,
    env: &'env Env,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, Value>> {
    let user = self.inner.clone();
    run(
      env,
      self.call(env, options),
      Ok(()),
      move |()| async move { user.refresh_custom_data().await },
      |_, data| Ok(Value::Object(data)),
    )
  }

  /// Reads the profile again from the server and resolves with its data (as
  /// realm-web's `refreshProfile`).
  #[napi(
    catch_unwind,
    ts_args_type = "options?: CallOptions",
    ts_return_type = "Promise<UserProfileDataType>"
  )]
  pub fn refresh_profile<'env>(
    &self,
    env: &'env Env,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, Value>> {
    let user = self.inner.clone();
    run(
      env,
      self.call(env, options),
      Ok(()),
      move |()| async move { user.refresh_profile().await },
      |_, profile| Ok(Value::Object(profile.data)),
    )
  }

  /// Links another identity (e.g. email/password) to this user, then makes it
  /// the current user, as realm v12 does. Anonymous credentials are refused
  /// (`ClientUserAlreadyNamed`).
  #[napi(
    catch_unwind,
    ts_args_type = "credentials: Credentials, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn link_credentials<'env>(
    &self,
    env: &'env Env,
    credentials: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let user = self.inner.clone();
    let credentials = call::instance::<Credentials>(env, credentials, "credentials", "Credentials")
      .and_then(|c| user.check_linkable(&c.inner).map(|()| c.inner.clone()));
    run_void(
      env,
      self.call(env, options),
      credentials,
      move |credentials| async move { user.link_credentials(&credentials).await },
    )
  }

  /// Calls `callback` after every change of this user: a login, a refreshed
  /// access token, a new profile, a logout or its removal. The listener belongs
  /// to the user, not to this object: any `User` object of the same user
  /// removes it. Throws if `callback` was already added.
  #[napi(catch_unwind, ts_args_type = "callback: UserChangeCallback")]
  pub fn add_listener(&self, env: Env, callback: Unknown) -> Result<()> {
    listeners::add_user_listener(&env, &self.inner, callback)
  }

  /// Removes a callback added with `addListener` (nothing if it was not added).
  #[napi(catch_unwind, ts_args_type = "callback: UserChangeCallback")]
  pub fn remove_listener(&self, env: Env, callback: Unknown) {
    listeners::remove_user_listener(&env, &self.inner, callback)
  }

  /// Removes every callback added with `addListener` to this user.
  #[napi(catch_unwind)]
  pub fn remove_all_listeners(&self, env: Env) {
    listeners::remove_user_listeners(&env, &self.inner)
  }

  /// A JSON view of the user without its tokens.
  #[napi(
    catch_unwind,
    js_name = "toJSON",
    ts_return_type = "Record<string, unknown>"
  )]
  pub fn to_json(&self) -> Value {
    let mut out = Map::new();
    out.insert("id".into(), self.inner.id().into());
    out.insert("state".into(), self.inner.state().as_str().into());
    out.insert("providerType".into(), self.inner.provider_type().into());
    out.insert("deviceId".into(), self.inner.device_id().into());
    let ids: Vec<Value> = identities(&self.inner)
      .into_iter()
      .map(|i| serde_json::json!({ "id": i.id, "providerType": i.provider_type }))
      .collect();
    out.insert("identities".into(), ids.into());
    out.insert("profile".into(), self.profile());
    out.insert("customData".into(), self.custom_data());
    Value::Object(out)
  }
}
