//! The client crate against the emulator crate, in process, over real HTTP on
//! 127.0.0.1: no Node involved.

use std::time::Duration;

use realm_auth_client::{App, AppConfig, Credentials, ErrorCode, KeyId, Persistence, State};
use realm_auth_server::{Config, Emulator, FaultAction, FaultSpec, LoggedRequest, TokenType};

const KEYS: &str = "/api/client/v2.0/auth/api_keys";

async fn start() -> (Emulator, App) {
  let emulator = Emulator::start(Config::default())
    .await
    .expect("emulator starts");
  let app = new_app(&emulator);
  (emulator, app)
}

fn new_app(emulator: &Emulator) -> App {
  let config = AppConfig::new(emulator.app_id(), Some(&emulator.base_url()), None).unwrap();
  App::new(config).unwrap()
}

async fn new_user(emulator: &Emulator, app: &App, email: &str) -> realm_auth_client::User {
  emulator
    .control()
    .create_user(email, "password-123")
    .unwrap();
  app
    .log_in(&Credentials::email_password(email, "password-123").unwrap())
    .await
    .unwrap()
}

/// A folder of this test process for a user store.
fn store_dir(name: &str) -> std::path::PathBuf {
  std::env::temp_dir().join(format!("realm-auth-client-{name}-{}", std::process::id()))
}

/// The emulator's App, keeping its users in a plain store under `dir`.
fn stored_config(emulator: &Emulator, dir: &std::path::Path) -> AppConfig {
  let mut config = AppConfig::new(emulator.app_id(), Some(&emulator.base_url()), None).unwrap();
  config.persistence = Persistence::Plain {
    base: dir.to_path_buf(),
  };
  config
}

fn seen(requests: &[LoggedRequest]) -> Vec<String> {
  requests
    .iter()
    .map(|r| format!("{} {}", r.method, r.path))
    .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_lifecycle() {
  let (emulator, app) = start().await;
  let user = new_user(&emulator, &app, "a@example.com").await;
  let keys = user.api_keys();

  let created = keys.create("first").await.unwrap();
  assert_eq!(created.name, "first");
  assert!(!created.disabled);
  assert!(created.key.expose().len() >= 43);
  assert!(
    !format!("{created:?}").contains(created.key.expose()),
    "Debug must redact the key"
  );

  let id = KeyId::parse(&created.id).unwrap();
  assert_eq!(keys.fetch_all().await.unwrap().len(), 1);
  keys.disable(&id).await.unwrap();
  assert!(keys.fetch(&id).await.unwrap().disabled);
  let refused = app
    .log_in(&Credentials::api_key(created.key.expose()).unwrap())
    .await
    .unwrap_err();
  assert_eq!(
    (refused.code, refused.status_code),
    (ErrorCode::AuthError, Some(401))
  );

  keys.enable(&id).await.unwrap();
  let key_user = app
    .log_in(&Credentials::api_key(created.key.expose()).unwrap())
    .await
    .unwrap();
  assert_eq!(key_user.id(), user.id());
  assert!(
    key_user.same_as(&user),
    "a login of the same user updates the same user"
  );

  let own = keys.delete(&id).await.unwrap_err();
  assert_eq!(own.status_code, Some(403));
  new_user_login(&app, "a@example.com").await;
  keys.delete(&id).await.unwrap();
  let gone = keys.fetch(&id).await.unwrap_err();
  assert_eq!(
    (gone.code, gone.status_code),
    (ErrorCode::APIKeyNotFound, Some(404))
  );
  assert_eq!(gone.server_error_code.as_deref(), Some("APIKeyNotFound"));
  emulator.stop().await;
}

async fn new_user_login(app: &App, email: &str) {
  app
    .log_in(&Credentials::email_password(email, "password-123").unwrap())
    .await
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn location_is_requested_once_even_under_concurrency() {
  let (emulator, app) = start().await;
  let logins = (0..8).map(|_| {
    let app = app.clone();
    async move { app.log_in(&Credentials::Anonymous { reuse: false }).await }
  });
  for result in join_all(logins).await {
    result.unwrap();
  }
  let locations = emulator
    .control()
    .requests()
    .iter()
    .filter(|r| r.path.ends_with("/location"))
    .count();
  assert_eq!(locations, 1);
  emulator.stop().await;
}

/// Runs the futures as concurrent tasks and collects their outputs.
async fn join_all<F>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output>
where
  F: std::future::Future + Send + 'static,
  F::Output: Send + 'static,
{
  let handles: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
  let mut out = Vec::with_capacity(handles.len());
  for handle in handles {
    out.push(handle.await.expect("task finished"));
  }
  out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_location_request_is_tried_again() {
  let (emulator, app) = start().await;
  let control = emulator.control();
  let always = FaultSpec::new("app/*/location", FaultAction::respond(503, "")).times(0);
  control.inject_fault(always).unwrap();
  let err = app
    .log_in(&Credentials::Anonymous { reuse: false })
    .await
    .unwrap_err();
  assert_eq!(
    (err.code, err.status_code),
    (ErrorCode::HTTPError, Some(503))
  );
  // The first try and three retries, then the error.
  let locations = |c: &realm_auth_server::Control| {
    c.requests()
      .iter()
      .filter(|r| r.path.ends_with("/location"))
      .count()
  };
  assert_eq!(locations(&control), 4);
  control.clear_faults();
  app
    .log_in(&Credentials::Anonymous { reuse: false })
    .await
    .unwrap();
  assert_eq!(locations(&control), 5);
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_calls_share_one_refresh() {
  let (emulator, app) = start().await;
  let user = new_user(&emulator, &app, "b@example.com").await;
  let control = emulator.control();
  control.expire_access_tokens();
  control.clear_requests();
  // Profile reads are access-token calls: expired, they refresh and retry.
  let calls = (0..10).map(|_| {
    let user = user.clone();
    async move { user.refresh_profile().await }
  });
  let results = join_all(calls).await;
  for r in results {
    r.unwrap();
  }
  let refreshes = control
    .requests()
    .iter()
    .filter(|r| r.method == "POST" && r.path.ends_with("/auth/session"))
    .count();
  assert_eq!(refreshes, 1, "{:?}", seen(&control.requests()));
  assert_eq!(user.state(), State::LoggedIn);
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_logs_out_without_retry() {
  let (emulator, app) = start().await;
  let user = new_user(&emulator, &app, "c@example.com").await;
  let control = emulator.control();
  control.revoke_sessions(user.id()).unwrap();
  control.clear_requests();
  let err = user.api_keys().fetch_all().await.unwrap_err();
  assert_eq!(
    (err.code, err.status_code),
    (ErrorCode::InvalidSession, Some(401))
  );
  assert_eq!(user.state(), State::LoggedOut);
  assert!(user.refresh_token().is_none() && user.access_token().is_none());
  assert_eq!(
    seen(&control.requests()),
    [
      format!("GET {KEYS}"),
      "DELETE /api/client/v2.0/auth/session".into()
    ]
  );
  assert!(app.current_user().is_none());
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_access_token_is_refreshed_and_the_call_retried_once() {
  let (emulator, app) = start().await;
  let user = new_user(&emulator, &app, "d@example.com").await;
  let control = emulator.control();
  control.expire_access_tokens();
  control.clear_requests();
  app.delete_user(&user).await.unwrap();
  let log = control.requests();
  assert_eq!(
    seen(&log),
    [
      "DELETE /api/client/v2.0/auth/delete",
      "POST /api/client/v2.0/auth/session",
      "DELETE /api/client/v2.0/auth/delete"
    ]
  );
  assert_eq!(log[1].token_type, TokenType::Refresh);
  assert_eq!(log[2].token_type, TokenType::Access);
  assert_eq!(user.state(), State::Removed);
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_calls_use_the_refresh_token_and_realm_core_headers() {
  let (emulator, app) = start().await;
  let user = new_user(&emulator, &app, "e@example.com").await;
  let control = emulator.control();
  control.clear_requests();
  let key = user.api_keys().create("shape").await.unwrap();
  user
    .api_keys()
    .fetch(&KeyId::parse(&key.id.to_uppercase()).unwrap())
    .await
    .unwrap();
  let log = control.requests();
  assert_eq!(
    seen(&log),
    [format!("POST {KEYS}"), format!("GET {KEYS}/{}", key.id)]
  );
  for r in &log {
    assert_eq!(r.token_type, TokenType::Refresh);
    assert_eq!(r.accept.as_deref(), Some("application/json"));
  }
  // A Content-Type only with a body (realm-core sends it on every request).
  assert_eq!(
    log[0].content_type.as_deref(),
    Some("application/json;charset=utf-8")
  );
  assert_eq!(log[1].content_type, None);
  assert_eq!(log[0].body, Some(serde_json::json!({ "name": "shape" })));
  assert_eq!(log[1].body, None);
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anonymous_users_are_reused_and_removed_on_logout() {
  let (emulator, app) = start().await;
  let first = app
    .log_in(&Credentials::Anonymous { reuse: true })
    .await
    .unwrap();
  let again = app
    .log_in(&Credentials::Anonymous { reuse: true })
    .await
    .unwrap();
  assert!(first.same_as(&again));
  first.log_out().await.unwrap();
  assert_eq!(first.state(), State::Removed);
  assert!(app.all_users().is_empty());
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn responses_over_the_limit_are_refused() {
  let (emulator, app) = start().await;
  let user = new_user(&emulator, &app, "f@example.com").await;
  let body = format!(
    "[{}]",
    "0,".repeat(realm_auth_client::MAX_RESPONSE_BYTES / 2) + "0"
  );
  emulator
    .control()
    .inject_fault(FaultSpec::new(KEYS, FaultAction::respond(200, body)))
    .unwrap();
  let err = user.api_keys().fetch_all().await.unwrap_err();
  assert_eq!(err.code, ErrorCode::ResponseTooLarge);
  assert_eq!(user.api_keys().fetch_all().await.unwrap(), vec![]);
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linking_sends_the_access_token_once_and_makes_the_user_current() {
  let (emulator, app) = start().await;
  let control = emulator.control();
  (app.email_password())
    .register_user("link@example.com", "password-123")
    .await
    .unwrap();
  let anon = app
    .log_in(&Credentials::Anonymous { reuse: false })
    .await
    .unwrap();
  let other = new_user(&emulator, &app, "other@example.com").await;
  assert!(app.current_user().unwrap().same_as(&other));

  // realm v12 does not refresh on a 401 during link: the error comes back as it is.
  control.expire_access_tokens();
  control.clear_requests();
  let email = Credentials::email_password("link@example.com", "password-123").unwrap();
  let err = anon.link_credentials(&email).await.unwrap_err();
  assert_eq!(err.status_code, Some(401));
  assert_eq!(
    seen(&control.requests()).len(),
    1,
    "{:?}",
    seen(&control.requests())
  );
  assert_eq!(anon.state(), State::LoggedIn);

  // With a fresh token the link succeeds and the linked user becomes current.
  anon.refresh_custom_data().await.unwrap();
  anon.link_credentials(&email).await.unwrap();
  let providers: Vec<String> = (anon.profile().unwrap().identities.iter())
    .map(|i| i.provider_type.clone())
    .collect();
  assert_eq!(providers, ["anon-user", "local-userpass"]);
  assert!(app.current_user().unwrap().same_as(&anon));

  let refused = anon
    .link_credentials(&Credentials::Anonymous { reuse: true })
    .await
    .unwrap_err();
  assert_eq!(refused.code, ErrorCode::ClientUserAlreadyNamed);
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_app_finds_its_users_in_the_store() {
  let (emulator, _) = start().await;
  let dir = store_dir("restart");
  let config = || stored_config(&emulator, &dir);
  // `start` made an in-memory App of this id and base URL: forget it, or
  // this App would join it (the first App's settings win).
  realm_auth_client::clear_cache();
  let app = App::new(config()).unwrap();
  let a = new_user(&emulator, &app, "restart-a@example.com").await;
  let b = new_user(&emulator, &app, "restart-b@example.com").await;
  b.log_out().await.unwrap();
  let key = a.api_keys().create("survives").await.unwrap();

  // A second App of the same id and base URL shares the state; after the
  // cache is cleared, a new App reads the store as a new process would.
  assert!(App::new(config()).unwrap().same_as(&app));
  realm_auth_client::clear_cache();
  let again = App::new(config()).unwrap();
  assert!(!again.same_as(&app));
  let ids: Vec<String> = again
    .all_users()
    .iter()
    .map(|u| u.id().to_owned())
    .collect();
  assert_eq!(ids, [a.id(), b.id()]);
  let current = again.current_user().unwrap();
  assert_eq!(current.id(), a.id());
  assert_eq!(current.profile(), a.profile());
  assert_eq!(current.device_id(), a.device_id());
  assert_eq!(again.all_users()[1].state(), State::LoggedOut);
  emulator.control().clear_requests();
  let keys = current.api_keys().fetch_all().await.unwrap();
  assert_eq!(keys.len(), 1);
  assert_eq!(keys[0].id, key.id);
  assert_eq!(
    seen(&emulator.control().requests()).last().unwrap(),
    &format!("GET {KEYS}")
  );
  std::fs::remove_dir_all(&dir).unwrap();
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_logins_are_all_stored() {
  let (emulator, _) = start().await;
  let dir = store_dir("group");
  let config = || stored_config(&emulator, &dir);
  realm_auth_client::clear_cache();
  let app = App::new(config()).unwrap();
  let control = emulator.control();
  let emails: Vec<String> = (0..30).map(|i| format!("group-{i}@example.com")).collect();
  for email in &emails {
    control.create_user(email, "password-123").unwrap();
  }
  // Logins that finish together share the store's writes; none may be lost.
  let logins = emails.iter().map(|email| {
    let app = app.clone();
    let credentials = Credentials::email_password(email, "password-123").unwrap();
    async move { app.log_in(&credentials).await }
  });
  let users: Vec<_> = join_all(logins)
    .await
    .into_iter()
    .map(Result::unwrap)
    .collect();
  realm_auth_client::clear_cache();
  let again = App::new(config()).unwrap();
  let mut stored: Vec<String> = again
    .all_users()
    .iter()
    .map(|u| u.id().to_owned())
    .collect();
  let mut expected: Vec<String> = users.iter().map(|u| u.id().to_owned()).collect();
  stored.sort();
  expected.sort();
  assert_eq!(stored, expected);
  assert!(
    again
      .all_users()
      .iter()
      .all(|u| u.state() == State::LoggedIn)
  );
  std::fs::remove_dir_all(&dir).unwrap();
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_out_of_time_after_the_server_answered_leaves_no_half_made_user() {
  let (emulator, app) = start().await;
  let first = new_user(&emulator, &app, "first@example.com").await;
  emulator
    .control()
    .create_user("late@example.com", "password-123")
    .unwrap();
  // The login is answered at once; its profile read outlives the call's deadline.
  emulator
    .control()
    .inject_fault(FaultSpec::new("auth/profile", FaultAction::PassThrough).delay_ms(400))
    .unwrap();
  let credentials = Credentials::email_password("late@example.com", "password-123").unwrap();
  let err = realm_auth_client::within(Duration::from_millis(150), app.log_in(&credentials))
    .await
    .unwrap_err();
  assert_eq!(err.code, ErrorCode::Timeout);
  // The rest of the login ends on its own: the new user is not kept, and the
  // current user is the one it was.
  tokio::time::sleep(Duration::from_millis(600)).await;
  let ids: Vec<String> = app.all_users().iter().map(|u| u.id().to_owned()).collect();
  assert_eq!(ids, [first.id()]);
  assert!(app.current_user().unwrap().same_as(&first));
  emulator.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newer_login_in_another_process_does_not_log_this_one_out() {
  let (emulator, _) = start().await;
  let dir = store_dir("newer");
  let config = || stored_config(&emulator, &dir);
  realm_auth_client::clear_cache();
  let here = App::new(config()).unwrap();
  let user = new_user(&emulator, &here, "twice@example.com").await;
  // "Another process": a second App state on the same store logs the same user in again.
  realm_auth_client::clear_cache();
  let there = App::new(config()).unwrap();
  let credentials = Credentials::email_password("twice@example.com", "password-123").unwrap();
  there.log_in(&credentials).await.unwrap();
  // Here the access token expires and is refreshed with this session: both stay logged in.
  emulator.control().expire_access_tokens();
  user.refresh_profile().await.unwrap();
  assert_eq!(user.state(), State::LoggedIn);
  realm_auth_client::clear_cache();
  let later = App::new(config()).unwrap();
  assert_eq!(later.current_user().unwrap().state(), State::LoggedIn);
  assert_eq!(
    later.current_user().unwrap().refresh_token(),
    there.current_user().unwrap().refresh_token()
  );
  std::fs::remove_dir_all(&dir).unwrap();
  emulator.stop().await;
}
