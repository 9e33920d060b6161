//! Users: their session state, profile and the calls made as them.

use std::sync::{Arc, Mutex};

use http::Method;
use serde_json::{Map, Value};

use crate::api_keys::ApiKeyAuth;
use crate::app::{App, Route, TokenKind, lock};
use crate::credentials::{Credentials, provider};
use crate::error::{Error, ErrorCode, Result};
use crate::jwt;
use crate::secret::Secret;
use crate::store::UserRecord;
use crate::transport::{Incoming, Obj};

/// A user's state, as realm v12 names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
  /// Has a session.
  LoggedIn,
  /// Known to the App, without a session.
  LoggedOut,
  /// Forgotten by the App (removed, deleted, or an anonymous user that logged out).
  Removed,
}

impl State {
  /// The string realm v12 uses (`UserState`).
  pub fn as_str(self) -> &'static str {
    match self {
      State::LoggedIn => "LoggedIn",
      State::LoggedOut => "LoggedOut",
      State::Removed => "Removed",
    }
  }
}

/// One identity of a user (a provider account linked to it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Identity {
  /// The identity's id within its provider.
  pub id: String,
  /// The provider, e.g. `local-userpass`.
  pub provider_type: String,
}

/// What `GET /auth/profile` says about a user.
#[derive(Clone, Debug, PartialEq)]
pub struct Profile {
  /// The profile data document, as the server sent it (e.g. `email`).
  pub data: Map<String, Value>,
  /// The user's identities.
  pub identities: Vec<Identity>,
  /// `normal` or `server`.
  pub user_type: String,
}

impl Profile {
  pub(crate) fn parse(resp: &Incoming) -> Result<Profile> {
    match Profile::fast(resp) {
      Some(profile) => Ok(profile),
      None => Profile::read(resp),
    }
  }

  /// The profile straight from the bytes, or `None` for anything the `Value`
  /// path ([`Profile::read`]) should read: it names what is wrong, and the
  /// fast path answers only where the two agree (see api_keys.rs).
  pub(crate) fn fast(resp: &Incoming) -> Option<Profile> {
    #[derive(serde::Deserialize)]
    struct WireIdentity {
      id: String,
      provider_type: String,
    }
    #[derive(serde::Deserialize)]
    struct WireProfile {
      data: Map<String, Value>,
      identities: Vec<Obj<WireIdentity>>,
      #[serde(rename = "type")]
      user_type: Option<Value>,
    }
    let wire: WireProfile = resp.fast()?;
    Some(Profile {
      data: wire.data,
      identities: (wire.identities.into_iter())
        .map(|Obj(i)| Identity {
          id: i.id,
          provider_type: i.provider_type,
        })
        .collect(),
      user_type: wire
        .user_type
        .as_ref()
        .and_then(Value::as_str)
        .unwrap_or("normal")
        .to_owned(),
    })
  }

  /// The profile through a `Value`, naming what is wrong.
  pub(crate) fn read(resp: &Incoming) -> Result<Profile> {
    let mut map = resp.object()?;
    let data = match map.remove("data") {
      Some(Value::Object(d)) => d,
      Some(_) => return Err(resp.malformed("a profile whose 'data' is an object")),
      None => return Err(Error::new(ErrorCode::MissingJsonKey, "data")),
    };
    let Some(Value::Array(list)) = map.get("identities") else {
      return Err(match map.get("identities") {
        None => Error::new(ErrorCode::MissingJsonKey, "identities"),
        Some(_) => resp.malformed("a profile whose 'identities' is an array"),
      });
    };
    let mut identities = Vec::with_capacity(list.len());
    for item in list {
      let Value::Object(item) = item else {
        return Err(resp.malformed("a profile whose identities are objects"));
      };
      identities.push(Identity {
        id: resp.string(item, "id")?,
        provider_type: resp.string(item, "provider_type")?,
      });
    }
    let user_type = map
      .get("type")
      .and_then(Value::as_str)
      .unwrap_or("normal")
      .to_owned();
    Ok(Profile {
      data,
      identities,
      user_type,
    })
  }
}

struct Data {
  state: State,
  access: Option<Secret>,
  refresh: Option<Secret>,
  profile: Option<Profile>,
  device_id: String,
  /// The provider of the login that made the current session.
  login_provider: String,
}

/// The shared state of one user. The App's list holds these; `User` handles pair
/// one with its App (so the list never points back at the App: no cycle).
pub(crate) struct UserInner {
  pub id: String,
  data: Mutex<Data>,
  /// The access-token refresh in progress, if any.
  pub refreshing: Mutex<Option<Refreshing>>,
}

/// An access-token refresh running in its own task, which callers holding
/// the same stale token join.
pub(crate) struct Refreshing {
  /// The access token it replaces.
  pub stale: Secret,
  /// Becomes `Some` with its outcome when it ends.
  pub done: tokio::sync::watch::Receiver<Option<Result<()>>>,
}

impl UserInner {
  pub fn new(id: String) -> UserInner {
    UserInner {
      id,
      data: Mutex::new(Data {
        state: State::LoggedOut,
        access: None,
        refresh: None,
        profile: None,
        device_id: String::new(),
        login_provider: String::new(),
      }),
      refreshing: Mutex::new(None),
    }
  }

  pub fn state(&self) -> State {
    lock(&self.data).state
  }

  pub fn access_token(&self) -> Option<Secret> {
    lock(&self.data).access.clone()
  }

  pub fn refresh_token(&self) -> Option<Secret> {
    lock(&self.data).refresh.clone()
  }

  pub fn profile(&self) -> Option<Profile> {
    lock(&self.data).profile.clone()
  }

  /// The token of `kind`, or `ClientUserNotLoggedIn`: a logged-out user's call is
  /// refused here rather than sent with an empty token as realm v12 does.
  pub fn token(&self, kind: TokenKind) -> Result<Secret> {
    let data = lock(&self.data);
    let token = match kind {
      TokenKind::Access => &data.access,
      TokenKind::Refresh => &data.refresh,
    };
    match (data.state, token) {
      (State::LoggedIn, Some(t)) => Ok(t.clone()),
      _ => Err(Error::new(
        ErrorCode::ClientUserNotLoggedIn,
        "The user is not logged in",
      )),
    }
  }

  /// Anonymous: logged in through `anon-user` and no other identity.
  pub fn is_anonymous(&self) -> bool {
    let data = lock(&self.data);
    match &data.profile {
      Some(p) if !p.identities.is_empty() => p
        .identities
        .iter()
        .all(|i| i.provider_type == provider::ANONYMOUS),
      _ => data.login_provider == provider::ANONYMOUS,
    }
  }

  pub fn log_in(&self, access: Secret, refresh: Secret, device_id: String, login_provider: &str) {
    let mut data = lock(&self.data);
    data.state = State::LoggedIn;
    data.access = Some(access);
    data.refresh = Some(refresh);
    data.device_id = device_id;
    data.login_provider = login_provider.to_owned();
  }

  /// Restores a logged-out user (from the store).
  pub fn set_logged_out(&self, device_id: String, login_provider: &str) {
    let mut data = lock(&self.data);
    data.state = State::LoggedOut;
    data.device_id = device_id;
    data.login_provider = login_provider.to_owned();
  }

  /// Stores a new access token while the session is still `refresh`'s (a
  /// logout or a new login meanwhile wins). Returns whether it was stored.
  pub fn set_access_token(&self, refresh: &Secret, access: Secret) -> bool {
    let mut data = lock(&self.data);
    let current = data.state == State::LoggedIn && data.refresh.as_ref() == Some(refresh);
    if current {
      data.access = Some(access);
    }
    current
  }

  /// Stores a profile unless the user was removed. Returns whether it was stored.
  pub fn set_profile(&self, profile: Profile) -> bool {
    let mut data = lock(&self.data);
    if data.state == State::Removed {
      return false;
    }
    data.profile = Some(profile);
    true
  }

  /// What the store keeps of this user.
  pub fn record(&self) -> UserRecord {
    let data = lock(&self.data);
    let tokens = match (&data.state, &data.access, &data.refresh) {
      (State::LoggedIn, Some(a), Some(r)) => Some((a.clone(), r.clone())),
      _ => None,
    };
    UserRecord {
      id: self.id.clone(),
      tokens,
      device_id: data.device_id.clone(),
      login_provider: data.login_provider.clone(),
      profile: data.profile.clone(),
    }
  }

  /// Clears the session. Returns the refresh token it had (if logged in) and
  /// whether the user is now removed (anonymous users are, as in realm v12).
  pub fn mark_logged_out(&self) -> (Option<Secret>, bool) {
    let anonymous = self.is_anonymous();
    let mut data = lock(&self.data);
    if data.state != State::LoggedIn {
      return (None, data.state == State::Removed);
    }
    data.state = if anonymous {
      State::Removed
    } else {
      State::LoggedOut
    };
    data.access = None;
    (data.refresh.take(), data.state == State::Removed)
  }

  /// Clears the session and marks the user removed; returns the refresh token it had.
  pub fn mark_removed(&self) -> Option<Secret> {
    let mut data = lock(&self.data);
    let was_logged_in = data.state == State::LoggedIn;
    data.state = State::Removed;
    data.access = None;
    let refresh = data.refresh.take();
    if was_logged_in { refresh } else { None }
  }
}

/// A user of an App: a cheap handle; clones and handles from `App::all_users`
/// for the same id share state.
#[derive(Clone)]
pub struct User {
  pub(crate) app: App,
  pub(crate) inner: Arc<UserInner>,
}

impl std::fmt::Debug for User {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.debug_struct("User")
      .field("id", &self.inner.id)
      .field("state", &self.state())
      .finish_non_exhaustive()
  }
}

impl User {
  /// The user's id.
  pub fn id(&self) -> &str {
    &self.inner.id
  }

  /// The App this user belongs to.
  pub fn app(&self) -> &App {
    &self.app
  }

  /// True when both handles are the same user of the same App.
  pub fn same_as(&self, other: &User) -> bool {
    Arc::ptr_eq(&self.inner, &other.inner)
  }

  /// Logged in, logged out or removed.
  pub fn state(&self) -> State {
    self.inner.state()
  }

  /// The current access token (a secret), if logged in.
  pub fn access_token(&self) -> Option<Secret> {
    self.inner.access_token()
  }

  /// The current refresh token (a secret), if logged in.
  pub fn refresh_token(&self) -> Option<Secret> {
    self.inner.refresh_token()
  }

  /// The profile from the last login or link.
  pub fn profile(&self) -> Option<Profile> {
    self.inner.profile()
  }

  /// The device id the server assigned at login, unless it is all zeros.
  pub fn device_id(&self) -> Option<String> {
    let id = lock(&self.inner.data).device_id.clone();
    (!id.is_empty() && id != "000000000000000000000000").then_some(id)
  }

  /// The provider type of the user's first identity (realm v12's `providerType`).
  pub fn provider_type(&self) -> Option<String> {
    let data = lock(&self.inner.data);
    match &data.profile {
      Some(p) => p.identities.first().map(|i| i.provider_type.clone()),
      None => (!data.login_provider.is_empty()).then(|| data.login_provider.clone()),
    }
  }

  /// The `user_data` claim of the access token, `{}` when absent or logged out.
  pub fn custom_data(&self) -> Map<String, Value> {
    self
      .access_token()
      .and_then(|t| jwt::decode(t.expose()).ok())
      .map(|c| c.user_data)
      .unwrap_or_default()
  }

  /// This user's API key client.
  pub fn api_keys(&self) -> ApiKeyAuth {
    ApiKeyAuth { user: self.clone() }
  }

  /// The local part of [`User::log_out`], done at once as realm v12 does it:
  /// the session is cleared here (an anonymous user is removed) and the
  /// refresh token it had is returned, for [`App::end_session`]. `None`
  /// when the user was not logged in.
  pub fn log_out_locally(&self) -> Option<Secret> {
    self.app.inner.shared.log_out(&self.inner)
  }

  /// Logs out: the session is cleared locally first (anonymous users become
  /// removed), then ended on the server with `DELETE /auth/session`. A user
  /// that is not logged in is left as it is, without a request.
  pub async fn log_out(&self) -> Result<()> {
    match self.log_out_locally() {
      Some(refresh) => self.app.end_session(refresh).await,
      None => Ok(()),
    }
  }

  /// Gets a fresh access token (`POST /auth/session`) and returns its custom data.
  pub async fn refresh_custom_data(&self) -> Result<Map<String, Value>> {
    let stale = self.inner.token(TokenKind::Access)?;
    self
      .app
      .inner
      .refresh_access_token(&self.inner, &stale)
      .await?;
    Ok(self.custom_data())
  }

  /// The checks of [`User::link_credentials`], made at once as realm v12 makes them.
  pub fn check_linkable(&self, credentials: &Credentials) -> Result<()> {
    if self.state() != State::LoggedIn {
      return Err(Error::new(
        ErrorCode::ClientUserNotLoggedIn,
        "The specified user is not logged in.",
      ));
    }
    if let Credentials::Anonymous { .. } = credentials {
      return Err(Error::new(
        ErrorCode::ClientUserAlreadyNamed,
        "Cannot add anonymous credentials to an existing user.",
      ));
    }
    if !self.app.inner.shared.has(&self.inner) {
      return Err(Error::new(
        ErrorCode::ClientUserNotFound,
        "The specified user was not found.",
      ));
    }
    Ok(())
  }

  /// Links another identity to this user (`…/login?link=true` with its access
  /// token), reloads the profile and makes the user current, as realm v12
  /// does. Like v12, a 401 here is not answered with a token refresh: the
  /// error is returned as it is.
  pub async fn link_credentials(&self, credentials: &Credentials) -> Result<()> {
    self.check_linkable(credentials)?;
    let app = &self.app.inner;
    let path = format!("auth/providers/{}/login?link=true", credentials.provider());
    let body = app.login_body(credentials);
    let access = self.inner.token(TokenKind::Access)?;
    let resp = app
      .request(Method::POST, Route::App(&path), Some(&access), Some(body))
      .await?;
    let map = resp.object()?;
    if let Some(Value::String(id)) = map.get("user_id")
      && id != &self.inner.id
    {
      return Err(resp.malformed("a link response for this user"));
    }
    let fresh = resp.string(&map, "access_token")?;
    jwt::decode(&fresh)?;
    let refresh = self.inner.token(TokenKind::Refresh)?;
    app
      .shared
      .set_access_token(&self.inner, &refresh, Secret::new(fresh));
    app.refresh_profile(&self.inner).await?;
    app.shared.promote(&self.inner);
    Ok(())
  }

  /// Reads the profile again (`GET /auth/profile`, an access-token call).
  pub async fn refresh_profile(&self) -> Result<Profile> {
    self.app.inner.refresh_profile(&self.inner).await?;
    self.profile().ok_or_else(|| {
      Error::new(
        ErrorCode::ClientUserNotLoggedIn,
        "The user is not logged in",
      )
    })
  }

  /// A request authenticated with this user's refresh token.
  pub(crate) async fn refresh_request(
    &self,
    method: Method,
    path: &str,
    body: Option<Value>,
  ) -> Result<Incoming> {
    self
      .app
      .inner
      .user_request(
        &self.inner,
        method,
        Route::Auth(path),
        TokenKind::Refresh,
        body,
      )
      .await
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_profile_is_read_straight_from_its_bytes() {
    let body = r#"{"user_id":"u","domain_id":"x","identities":[{"id":"i1","provider_type":"local-userpass","provider_id":"p","provider_data":{"email":"a@b.c"}}],"data":{"email":"a@b.c"},"type":"normal"}"#;
    let resp = Incoming::ok_json(body);
    let fast = Profile::fast(&resp).expect("the fast path reads a profile");
    assert_eq!(Ok(fast.clone()), Profile::read(&resp));
    assert_eq!(fast.identities[0].provider_type, "local-userpass");
    assert_eq!(fast.data["email"], "a@b.c");
    // `type`, absent or not a string, is `normal` both ways.
    for body in [
      r#"{"identities":[],"data":{}}"#,
      r#"{"identities":[],"data":{},"type":5}"#,
      r#"{"identities":[],"data":{},"type":null}"#,
    ] {
      let resp = Incoming::ok_json(body);
      let fast = Profile::fast(&resp).expect(body);
      assert_eq!(fast.user_type, "normal");
      assert_eq!(Ok(fast), Profile::read(&resp));
    }
    // What is wrong is left to the `Value` path, which names it.
    for (body, code) in [
      (r#"{"identities":[],"data":[]}"#, ErrorCode::MalformedJson),
      (
        r#"{"identities":[{"id":"i"}],"data":{}}"#,
        ErrorCode::MissingJsonKey,
      ),
      (r#"[{},[]]"#, ErrorCode::MalformedJson),
    ] {
      let resp = Incoming::ok_json(body);
      assert!(Profile::fast(&resp).is_none(), "{body}");
      assert_eq!(Profile::parse(&resp).unwrap_err().code, code, "{body}");
    }
  }
}
