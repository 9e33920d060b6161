//! The App: configuration, location, the user list, and the request paths
//! (plain, access-token and refresh-token) with realm v12's 401 rules.

use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use crate::shared::{Shared, Subscriber};

use http::Method;
use serde_json::{Map, Value, json};

use crate::config::AppConfig;
use crate::credentials::Credentials;
use crate::deadline;
use crate::email_password::EmailPasswordAuth;
use crate::error::{Error, ErrorCode, Result};
use crate::jwt;
use crate::log::{self, Category, Level};
use crate::retry;
use crate::secret::Secret;
use crate::transport::{Host, Incoming, Outgoing, Transport, method_name};
use crate::user::{Profile, Refreshing, State, User, UserInner};

/// The client API's path prefix.
const BASE_PATH: &str = "/api/client/v2.0";

/// The realm-core release whose protocol this client speaks, sent as
/// `options.device.coreVersion` with logins.
const CORE_VERSION: &str = "14.14.0";

/// Where a request goes: an App-scoped route (`/app/<id>/…`) or an auth route (`/auth/…`).
#[derive(Clone, Copy)]
pub(crate) enum Route<'a> {
  App(&'a str),
  Auth(&'a str),
}

/// Which of the user's tokens authenticates a request.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
  Access,
  Refresh,
}

/// An App Services application: a cheap handle (clones share state). Apps
/// created with the same id and base URL share their users, location and
/// listeners, as realm v12's app cache makes them; each keeps its own
/// timeout and retries.
#[derive(Clone)]
pub struct App {
  pub(crate) inner: Arc<AppInner>,
}

pub(crate) struct AppInner {
  pub config: AppConfig,
  http: Transport,
  pub shared: Arc<Shared>,
}

/// Locks a std mutex, ignoring poisoning: every critical section here leaves the
/// data consistent, so a panic elsewhere must not wedge the App.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
  m.lock().unwrap_or_else(|e| e.into_inner())
}

fn not_found(message: &str) -> Error {
  Error::new(ErrorCode::ClientUserNotFound, message)
}

impl App {
  /// Creates an App, or joins the state of an earlier App with the same id and
  /// base URL. Reads the user store the first time an id and base URL are
  /// used in this process (a wrong key or a store of a newer release fails
  /// here). No request is made until the first call that needs one.
  pub fn new(config: AppConfig) -> Result<App> {
    let http = Transport::new(config.timeout, config.fetch.clone())?;
    let shared = crate::shared::shared_for(&config)?;
    Ok(App {
      inner: Arc::new(AppInner {
        config,
        http,
        shared,
      }),
    })
  }

  /// The configuration this App was created with.
  pub fn config(&self) -> &AppConfig {
    &self.inner.config
  }

  /// The base URL requests start from now (`update_base_url` may change it).
  pub fn base_url(&self) -> String {
    read(&self.inner.shared.route).base_url.clone()
  }

  /// True when both handles share one App's state.
  pub fn same_as(&self, other: &App) -> bool {
    Arc::ptr_eq(&self.inner.shared, &other.inner.shared)
  }

  /// Identifies the shared state (equal for Apps that share their users).
  pub fn shared_id(&self) -> usize {
    Arc::as_ptr(&self.inner.shared) as usize
  }

  /// Calls `subscriber` after every change of this App's users (see
  /// [`Event`]); returns an id for [`App::unsubscribe`].
  pub fn subscribe(&self, subscriber: Subscriber) -> u64 {
    self.inner.shared.subscribe(subscriber)
  }

  /// Stops calling the subscriber with this id.
  pub fn unsubscribe(&self, id: u64) {
    self.inner.shared.unsubscribe(id)
  }

  fn handle(&self, inner: &Arc<UserInner>) -> User {
    User {
      app: self.clone(),
      inner: inner.clone(),
    }
  }

  /// realm v12's current user: the last one logged in or switched to while it
  /// is logged in, else the first logged-in user, else `None`.
  pub fn current_user(&self) -> Option<User> {
    self.inner.shared.current_user().map(|u| self.handle(&u))
  }

  /// Every user that is not removed (logged in or logged out), in realm v12's
  /// order: the order of their first login (by id for an in-memory App).
  pub fn all_users(&self) -> Vec<User> {
    (self.inner.shared.ordered().iter())
      .map(|u| self.handle(u))
      .collect()
  }

  /// The email/password provider client.
  pub fn email_password(&self) -> EmailPasswordAuth {
    EmailPasswordAuth { app: self.clone() }
  }

  fn check_owned(&self, user: &User) -> Result<()> {
    if !self.same_as(&user.app) || !self.inner.shared.has(&user.inner) {
      return Err(not_found("User does not exist"));
    }
    Ok(())
  }

  /// Makes `user` the current user. It must be logged in to this App.
  pub fn switch_user(&self, user: &User) -> Result<()> {
    if user.inner.state() != State::LoggedIn {
      return Err(Error::new(
        ErrorCode::ClientUserNotLoggedIn,
        "User is no longer valid or is logged out",
      ));
    }
    self.check_owned(user)?;
    self.inner.shared.promote(&user.inner);
    Ok(())
  }

  /// The local part of [`App::remove_user`], done at once: the user is
  /// removed here and the refresh token of its session (if it had one) is
  /// returned, for [`App::end_session`].
  pub fn remove_user_locally(&self, user: &User) -> Result<Option<Secret>> {
    if user.inner.state() == State::Removed {
      return Err(not_found("User has already been removed"));
    }
    if !self.same_as(&user.app) || !self.inner.shared.has(&user.inner) {
      return Err(not_found("No user has been found"));
    }
    Ok(self.inner.shared.remove(&user.inner))
  }

  /// Logs the user out (if logged in) and forgets it: its state becomes `Removed`.
  pub async fn remove_user(&self, user: &User) -> Result<()> {
    match self.remove_user_locally(user)? {
      Some(refresh) => self.end_session(refresh).await,
      None => Ok(()),
    }
  }

  /// Ends a session on the server (`DELETE /auth/session`); a session the
  /// server no longer knows counts as ended.
  pub async fn end_session(&self, refresh: Secret) -> Result<()> {
    self.inner.delete_session(&refresh).await
  }

  /// The checks of [`App::delete_user`], made at once as realm v12 makes them.
  pub fn check_deletable(&self, user: &User) -> Result<()> {
    if user.inner.state() != State::LoggedIn {
      return Err(Error::new(
        ErrorCode::ClientUserNotLoggedIn,
        "User must be logged in to be deleted.",
      ));
    }
    if !self.same_as(&user.app) || !self.inner.shared.has(&user.inner) {
      return Err(not_found("No user has been found."));
    }
    Ok(())
  }

  /// Deletes the user on the server (`DELETE /auth/delete`), then removes it here.
  pub async fn delete_user(&self, user: &User) -> Result<()> {
    self.check_deletable(user)?;
    self
      .inner
      .user_request(
        &user.inner,
        Method::DELETE,
        Route::Auth("delete"),
        TokenKind::Access,
        None,
      )
      .await?;
    self.inner.shared.remove(&user.inner);
    Ok(())
  }

  /// Logs in: reuses a logged-in anonymous user when asked to, otherwise posts the
  /// credentials, stores the session and fetches the profile.
  pub async fn log_in(&self, credentials: &Credentials) -> Result<User> {
    let inner = &self.inner;
    if let Credentials::Anonymous { reuse: true } = credentials
      && let Some(user) = inner.shared.anonymous_user()
    {
      inner.shared.promote(&user);
      return Ok(self.handle(&user));
    }
    let path = format!("auth/providers/{}/login", credentials.provider());
    let body = inner.login_body(credentials);
    let resp = inner
      .request(Method::POST, Route::App(&path), None, Some(body))
      .await?;
    let session = Session::parse(&resp)?;
    let user = inner.adopt(session, credentials.provider());
    // The rest runs to its end even if this call is dropped (aborted, out of
    // time): a session that arrived is either stored with its profile or not
    // kept, never left half made.
    let left = deadline::remaining().map(|(left, _)| left);
    let finish = {
      let inner = self.inner.clone();
      let user = user.clone();
      tokio::spawn(async move { inner.complete_login(&user, left).await })
    };
    match finish.await {
      Ok(result) => result?,
      Err(join) => {
        return Err(Error::new(
          ErrorCode::Internal,
          format!("the login could not be completed: {join}"),
        ));
      }
    }
    Ok(self.handle(&user))
  }

  /// realm v12's experimental `updateBaseUrl`: requests the location at
  /// `new_base_url` (the default base URL when `None` or empty) and, if that
  /// succeeds, sends every later request there. On failure nothing changes.
  pub async fn update_base_url(&self, new_base_url: Option<&str>) -> Result<()> {
    let wanted = match new_base_url.filter(|u| !u.is_empty()) {
      Some(url) => url.to_owned(),
      None => crate::config::default_base_url(),
    };
    let wanted = AppConfig::new(&self.inner.config.id, Some(&wanted), None)?.base_url;
    let shared = &self.inner.shared;
    let _guard = shared.location_lock.lock().await;
    {
      let route = read(&shared.route);
      if route.base_url == wanted && route.hostname.is_some() {
        return Ok(());
      }
    }
    let host = self.inner.locate(&wanted).await?;
    let mut route = shared.route.write().unwrap_or_else(|e| e.into_inner());
    route.base_url = wanted;
    route.hostname = Some(host);
    Ok(())
  }
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
  l.read().unwrap_or_else(|e| e.into_inner())
}

/// A location response's `hostname`: an http(s) URL, trailing `/` trimmed.
pub(crate) fn parse_location(resp: &Incoming) -> Result<Arc<str>> {
  let map = resp.object()?;
  let hostname = resp.string(&map, "hostname")?;
  let hostname = hostname.trim_end_matches('/');
  let valid = (hostname.starts_with("http://") || hostname.starts_with("https://"))
    && hostname.parse::<url::Url>().is_ok();
  if !valid {
    return Err(resp.malformed("a location whose 'hostname' is an http(s) URL"));
  }
  Ok(Arc::from(hostname))
}

/// The tokens and ids of a login response.
pub(crate) struct Session {
  access: Secret,
  refresh: Secret,
  user_id: String,
  device_id: String,
}

/// A login response's fields, before their checks. No `Debug`: it holds tokens.
#[derive(serde::Deserialize, PartialEq)]
pub(crate) struct WireSession {
  access_token: String,
  refresh_token: String,
  user_id: String,
  device_id: String,
}

impl Session {
  pub(crate) fn parse(resp: &Incoming) -> Result<Session> {
    let wire = match Session::fast(resp) {
      Some(wire) => wire,
      None => Session::read(resp)?,
    };
    let WireSession {
      access_token: access,
      refresh_token: refresh,
      user_id,
      device_id,
    } = wire;
    if jwt::decode(&access).is_err() || jwt::decode(&refresh).is_err() {
      return Err(Error::new(
        ErrorCode::BadToken,
        "Could not log in user: received malformed JWT",
      ));
    }
    if user_id.is_empty() {
      return Err(resp.malformed("a login response with a user id"));
    }
    Ok(Session {
      access: Secret::new(access),
      refresh: Secret::new(refresh),
      user_id,
      device_id,
    })
  }

  /// The fields straight from the bytes, or `None` for anything the `Value`
  /// path ([`Session::read`]) should read: it names what is wrong, and the fast
  /// path answers only where the two agree (see api_keys.rs).
  pub(crate) fn fast(resp: &Incoming) -> Option<WireSession> {
    resp.fast()
  }

  /// The fields through a `Value`, in realm-core's order of checks.
  pub(crate) fn read(resp: &Incoming) -> Result<WireSession> {
    let map = resp.object()?;
    Ok(WireSession {
      access_token: resp.string(&map, "access_token")?,
      refresh_token: resp.string(&map, "refresh_token")?,
      user_id: resp.string(&map, "user_id")?,
      device_id: resp.string(&map, "device_id")?,
    })
  }
}

impl AppInner {
  /// The path of `route`, from the host's root.
  fn path(&self, route: Route<'_>) -> String {
    match route {
      Route::App(path) => format!("{BASE_PATH}/app/{}/{path}", self.shared.id),
      Route::Auth(path) => format!("{BASE_PATH}/auth/{path}"),
    }
  }

  /// The host every request goes to, from one location request per App; a
  /// failed location request is tried again by the next call.
  async fn hostname(&self) -> Result<Arc<Host>> {
    let route = &self.shared.route;
    if let Some(host) = read(route).hostname.clone() {
      return Ok(host);
    }
    // One location request at a time; whoever waited may find it done.
    let _guard = self.shared.location_lock.lock().await;
    let base_url = {
      let route = read(route);
      if let Some(host) = route.hostname.clone() {
        return Ok(host);
      }
      route.base_url.clone()
    };
    let host = self.locate(&base_url).await?;
    route.write().unwrap_or_else(|e| e.into_inner()).hostname = Some(host.clone());
    Ok(host)
  }

  /// The location request at `base_url`: the host it names.
  async fn locate(&self, base_url: &str) -> Result<Arc<Host>> {
    let location = Outgoing {
      method: Method::GET,
      url: format!("{base_url}{}", self.path(Route::App("location"))),
      parsed: None,
      bearer: None,
      body: None,
      bare: true,
    };
    let resp = self.send_with_retries(&location).await?.check()?;
    parse_location(&resp).map(|name| Arc::new(Host::new(name)))
  }

  /// Sends a request to the located host, retrying what is safe to retry,
  /// and applies realm-core's error rules to the final answer.
  pub(crate) async fn request(
    &self,
    method: Method,
    route: Route<'_>,
    bearer: Option<&Secret>,
    body: Option<Value>,
  ) -> Result<Incoming> {
    let host = self.hostname().await?;
    let (url, parsed) = host.url(&self.path(route));
    let body = body.map(|b| {
      serde_json::to_vec(&b)
        .expect("a JSON value always serialises")
        .into()
    });
    let outgoing = Outgoing {
      method,
      url,
      parsed,
      bearer,
      body,
      bare: false,
    };
    self.send_with_retries(&outgoing).await?.check()
  }

  /// Sends `req`, retrying up to `config.retries` times within the call's
  /// deadline and the App's retry budget: idempotent requests (GET, PUT,
  /// DELETE) after a failure in transit or a 429/502/503/504; POST only when
  /// the connection was refused, because a POST that reached the server may
  /// have acted (a second key). A DELETE whose earlier attempt may have acted
  /// takes a 404 on a retry as done: that attempt deleted it.
  async fn send_with_retries(&self, req: &Outgoing<'_>) -> Result<Incoming> {
    let idempotent = req.method != Method::POST;
    let budget = &self.shared.retry_budget;
    let mut attempt = 0;
    // What the last retry took from the budget (0: none made).
    let mut last_cost = 0;
    // An earlier attempt may have reached the server and acted.
    let mut may_have_acted = false;
    loop {
      let started = std::time::Instant::now();
      let mut outcome = self.http.send(req).await;
      log::log(Category::App, Level::Debug, || {
        let result = match &outcome {
          Ok(resp) => resp.status.to_string(),
          Err(err) => err.message.clone(),
        };
        // Fractions of a millisecond: requests to a local server take less.
        format!(
          "{} {} -> {result} in {:.2} ms",
          method_name(&req.method),
          req.url,
          started.elapsed().as_secs_f64() * 1e3
        )
      });
      if may_have_acted
        && req.method == Method::DELETE
        && let Ok(resp) = &mut outcome
        && resp.is_key_not_found()
      {
        log::log(Category::App, Level::Info, || {
          format!(
            "DELETE {} answered 404 after an attempt that may have acted: taken as deleted by it",
            req.url
          )
        });
        resp.status = 204;
        resp.content_type = None;
        resp.body = bytes::Bytes::new();
      }
      let retry = match &outcome {
        Ok(resp) => idempotent && matches!(resp.status, 429 | 502 | 503 | 504),
        Err(err) => {
          matches!(err.code, ErrorCode::NetworkError | ErrorCode::Timeout)
            && (idempotent || !err.outcome_unknown())
        }
      };
      if !retry {
        // Any answer short of a server error shows a working server.
        if outcome.as_ref().is_ok_and(|resp| resp.status < 500) {
          budget.succeeded(last_cost);
        }
        return outcome;
      }
      if attempt >= self.config.retries {
        return outcome;
      }
      let hint = outcome.as_ref().ok().and_then(|r| r.retry_after);
      let wait = retry::backoff(attempt, hint);
      // A wait the deadline cannot cover is not worth starting.
      if deadline::remaining().is_some_and(|(left, _)| wait >= left) {
        return outcome;
      }
      let cost = match &outcome {
        Ok(_) => retry::RETRY_COST,
        Err(_) => retry::RETRY_TIMEOUT_COST,
      };
      if !budget.try_take(cost) {
        log::log(Category::App, Level::Warn, || {
          format!(
            "not retrying {} {}: the App's retry budget is spent (too many failures)",
            method_name(&req.method),
            req.url
          )
        });
        return outcome;
      }
      last_cost = cost;
      may_have_acted |= match &outcome {
        // A gateway that failed or timed out may have passed the request on.
        Ok(resp) => matches!(resp.status, 502 | 504),
        Err(err) => err.outcome_unknown(),
      };
      log::log(Category::App, Level::Warn, || {
        let why = match &outcome {
          Ok(resp) => format!("status {}", resp.status),
          Err(err) => err.message.clone(),
        };
        format!(
          "retrying {} {} in {} ms after {why} (retry {} of {})",
          method_name(&req.method),
          req.url,
          wait.as_millis(),
          attempt + 1,
          self.config.retries
        )
      });
      tokio::time::sleep(wait).await;
      attempt += 1;
    }
  }

  /// A request authenticated as `user`, with realm v12's 401 rules: a refused
  /// refresh token logs the user out (no retry); a refused access token is
  /// refreshed once (shared by concurrent callers) and the request retried once.
  pub(crate) async fn user_request(
    self: &Arc<Self>,
    user: &Arc<UserInner>,
    method: Method,
    route: Route<'_>,
    kind: TokenKind,
    body: Option<Value>,
  ) -> Result<Incoming> {
    let token = user.token(kind)?;
    let first = self
      .request(method.clone(), route, Some(&token), body.clone())
      .await;
    let err = match first {
      Err(err) if err.is_unauthorized() => err,
      other => return other,
    };
    match kind {
      TokenKind::Refresh => {
        self.log_out_after_refusal(user, &token).await;
        Err(err)
      }
      TokenKind::Access => {
        if self.refresh_access_token(user, &token).await.is_err() {
          return Err(err);
        }
        let fresh = user.token(TokenKind::Access)?;
        self.request(method, route, Some(&fresh), body).await
      }
    }
  }

  /// Gets a new access token for `user` unless another caller already replaced
  /// `stale`; a refresh refused with 401 logs the user out. Concurrent callers
  /// holding the same stale token share one request and its outcome. That
  /// request runs in a task of its own under the App's timeout, not under the
  /// deadline of the call that started it: a caller that runs out of time (or
  /// is dropped) leaves it running, and each caller waits for it within its
  /// own deadline (as smithy-rs's identity cache loads a credential).
  pub(crate) async fn refresh_access_token(
    self: &Arc<Self>,
    user: &Arc<UserInner>,
    stale: &Secret,
  ) -> Result<()> {
    let mut done = {
      let mut slot = lock(&user.refreshing);
      // Checked under the slot's lock: a refresh sets the token before it
      // leaves the slot, so a caller sees either the new token or the refresh.
      if user.access_token().as_ref() != Some(stale) {
        return Ok(());
      }
      // A refresh whose task died (a panic) cannot be joined: start another.
      let running = (slot.as_ref())
        .filter(|r| r.stale == *stale && r.done.has_changed().is_ok())
        .map(|r| r.done.clone());
      match running {
        Some(done) => done,
        None => {
          let (tx, done) = tokio::sync::watch::channel(None);
          *slot = Some(Refreshing {
            stale: stale.clone(),
            done: done.clone(),
          });
          let app = self.clone();
          let user = user.clone();
          let mine = done.clone();
          tokio::spawn(async move {
            let outcome = deadline::within(app.config.timeout, app.refresh_now(&user)).await;
            let mut slot = lock(&user.refreshing);
            if slot.as_ref().is_some_and(|r| r.done.same_channel(&mine)) {
              *slot = None;
            }
            tx.send_replace(Some(outcome));
          });
          done
        }
      }
    };
    match done.wait_for(Option::is_some).await {
      Ok(outcome) => outcome.clone().expect("wait_for returns an outcome"),
      Err(_) => Err(Error::new(
        ErrorCode::Internal,
        "the access-token refresh ended without an outcome",
      )),
    }
  }

  /// `POST /auth/session` with the user's refresh token: stores the new access
  /// token, or logs the user out if the server refused the session.
  async fn refresh_now(&self, user: &Arc<UserInner>) -> Result<()> {
    let refresh = user.token(TokenKind::Refresh)?;
    log::log(Category::App, Level::Info, || {
      format!("refreshing the access token of user {}", user.id)
    });
    let result = self
      .request(Method::POST, Route::Auth("session"), Some(&refresh), None)
      .await
      .and_then(|resp| {
        let map = resp.object()?;
        let access = resp.string(&map, "access_token")?;
        jwt::decode(&access)?;
        Ok(Secret::new(access))
      });
    match result {
      Ok(access) => {
        self.shared.set_access_token(user, &refresh, access);
        Ok(())
      }
      Err(err) => {
        if err.is_unauthorized() {
          self.log_out_after_refusal(user, &refresh).await;
        }
        Err(err)
      }
    }
  }

  /// The server refused `token`: log the user out if that token is still its
  /// session (a concurrent login may have replaced it), and tell the server.
  async fn log_out_after_refusal(&self, user: &Arc<UserInner>, token: &Secret) {
    if user.refresh_token().as_ref() != Some(token) && user.access_token().as_ref() != Some(token) {
      return;
    }
    log::log(Category::App, Level::Warn, || {
      format!(
        "user {} is logged out: the server refused its session",
        user.id
      )
    });
    if let Some(refresh) = self.shared.log_out(user) {
      // The session is already refused; the server's answer changes nothing.
      let _ = self.delete_session(&refresh).await;
    }
  }

  /// `DELETE /auth/session`: ends the server session of `refresh`.
  pub(crate) async fn delete_session(&self, refresh: &Secret) -> Result<()> {
    match self
      .request(Method::DELETE, Route::Auth("session"), Some(refresh), None)
      .await
    {
      // An already ended session is the outcome that was asked for.
      Err(err) if err.is_unauthorized() => Ok(()),
      other => other.map(drop),
    }
  }

  /// A login's second half: the profile (within what is `left` of the call's
  /// deadline), then one write of the store that makes the user current. A
  /// new user whose profile could not be read is not kept; a known one keeps
  /// its new session.
  async fn complete_login(
    self: &Arc<Self>,
    user: &Arc<UserInner>,
    left: Option<Duration>,
  ) -> Result<()> {
    // Boxed once: the request's state machine is kilobytes, and this future
    // is moved into a task whole (with two of them inline, twice the size).
    let fetch = Box::pin(self.fetch_profile(user));
    let fetched = match left {
      Some(left) => deadline::within(left, fetch).await,
      None => fetch.await,
    };
    match fetched {
      Ok(profile) => self.shared.set_profile(user, profile, false),
      Err(err) => {
        if user.state() == State::LoggedIn && user.profile().is_none() {
          self.shared.remove(user);
        } else {
          self.shared.finish_login(user, false).await;
        }
        return Err(err);
      }
    }
    if !self.shared.finish_login(user, true).await {
      return Err(Error::new(
        ErrorCode::ClientUserNotLoggedIn,
        "The user was logged out while logging in",
      ));
    }
    Ok(())
  }

  /// `GET /auth/profile` with the access token.
  pub(crate) async fn fetch_profile(self: &Arc<Self>, user: &Arc<UserInner>) -> Result<Profile> {
    let resp = self
      .user_request(
        user,
        Method::GET,
        Route::Auth("profile"),
        TokenKind::Access,
        None,
      )
      .await?;
    Profile::parse(&resp)
  }

  /// Reads the profile and stores it on the user.
  pub(crate) async fn refresh_profile(self: &Arc<Self>, user: &Arc<UserInner>) -> Result<()> {
    let profile = self.fetch_profile(user).await?;
    self.shared.set_profile(user, profile, true);
    Ok(())
  }

  /// realm v12's login body: the credentials plus `options.device`, with the
  /// fields realm-core 14.14 sends (`attach_auth_options`).
  pub(crate) fn login_body(&self, credentials: &Credentials) -> Value {
    let d = &self.config.device;
    let device = json!({
      "appId": self.config.id,
      "platform": d.platform,
      "platformVersion": d.platform_version,
      "sdk": "JS",
      "sdkVersion": d.sdk_version,
      "cpuArch": d.cpu_arch,
      "deviceName": "unknown",
      "deviceVersion": "unknown",
      "frameworkName": d.framework_name,
      "frameworkVersion": d.framework_version,
      "coreVersion": CORE_VERSION,
      "bundleId": "unknown",
    });
    let mut body = credentials.body();
    let mut options = Map::new();
    options.insert("device".into(), device);
    body.insert("options".into(), Value::Object(options));
    Value::Object(body)
  }

  /// Stores a login's session on the user with that id (creating it if new).
  fn adopt(&self, session: Session, provider: &str) -> Arc<UserInner> {
    self.shared.adopt(
      &session.user_id,
      session.access,
      session.refresh,
      session.device_id,
      provider,
    )
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  /// A login's second half is moved into a task of its own, whole: it holds
  /// the profile request boxed, not its kilobytes of state inline.
  #[test]
  fn the_login_task_stays_small() {
    let config = AppConfig::new("x", Some("http://127.0.0.1:1"), None).unwrap();
    let app = App::new(config).unwrap();
    let user = Arc::new(UserInner::new("u".into()));
    let task = app.inner.complete_login(&user, None);
    let size = std::mem::size_of_val(&task);
    assert!(size <= 1024, "the login task is {size} bytes");
  }

  /// A JWT with this payload (claims only; nothing checks signatures).
  fn jwt(payload: &str) -> String {
    use base64::Engine;
    let part = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(payload);
    format!("e30.{part}.c2ln")
  }

  #[test]
  fn a_login_response_is_read_straight_from_its_bytes() {
    let (access, refresh) = (jwt(r#"{"exp":2,"iat":1}"#), jwt(r#"{"exp":3,"iat":1}"#));
    let body = format!(
      r#"{{"access_token":"{access}","refresh_token":"{refresh}","user_id":"u1","device_id":"d1","extra":[1]}}"#
    );
    let resp = Incoming::ok_json(&body);
    assert!(
      Session::fast(&resp).is_some_and(|fast| Session::read(&resp).is_ok_and(|read| read == fast))
    );
    let session = Session::parse(&resp).unwrap();
    assert_eq!(
      (session.access.expose(), session.refresh.expose()),
      (&*access, &*refresh)
    );
    assert_eq!((&*session.user_id, &*session.device_id), ("u1", "d1"));
    // A key given twice is left to the `Value` path, which keeps the last.
    let body = format!(
      r#"{{"access_token":"{access}","refresh_token":"{refresh}","user_id":"u1","device_id":"d1","user_id":"u2"}}"#
    );
    let resp = Incoming::ok_json(&body);
    assert!(Session::fast(&resp).is_none());
    assert_eq!(Session::parse(&resp).unwrap().user_id, "u2");
    // What is wrong is named by the `Value` path.
    let resp = Incoming::ok_json(r#"{"access_token":"a","refresh_token":1}"#);
    assert!(Session::fast(&resp).is_none());
    let err = Session::parse(&resp).err().unwrap();
    assert_eq!(err.code, ErrorCode::MalformedJson);
    assert!(
      err
        .message
        .ends_with("is not an object whose 'refresh_token' is a string"),
      "{}",
      err.message
    );
  }
}
