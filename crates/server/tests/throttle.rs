//! Login throttling: the 6th consecutive wrong password (within the window) is refused with 429
//! and `Retry-After`, even with the right password, on any server sharing the store; after the
//! lock a right password logs in and starts the count over; the client address has its own
//! count; concurrent failures all count. SQLite always; PostgreSQL when
//! `REALM_AUTH_TEST_PG_URL` is set (required with `REALM_AUTH_TEST_STORE=postgres`).

mod common;

use std::time::Duration;

use common::*;
use realm_auth_server::{Config, LoginThrottleConfig, PasswordHashConfig, StoreConfig};
use serde_json::json;

/// Throttling with 1 s locks (tests wait them out), cheap argon2id, and the address limit
/// `address` (0: off).
fn config(store: &StoreConfig, max_failures: u32, address: u32) -> Config {
  Config {
    store: store.clone(),
    password_hash: Some(PasswordHashConfig::Argon2id {
      memory_kib: 64,
      iterations: 1,
      parallelism: 1,
    }),
    login_throttle: Some(LoginThrottleConfig {
      max_failures,
      window_secs: 60,
      max_lock_secs: 1,
      address_max_failures: address,
      ..LoginThrottleConfig::default()
    }),
    ..Config::default()
  }
}

async fn attempt(emu: &Emu, email: &str, password: &str) -> Resp {
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": email, "password": password}),
    )
    .await
}

/// An email/password login on its own connection (for parallel attempts).
async fn raw_login(port: u16, app: &str, email: &str, password: &str) -> Resp {
  let body = json!({"username": email, "password": password}).to_string();
  let host = format!("127.0.0.1:{port}");
  let req = build_request(
    "POST",
    &format!("{BASE}/app/{app}/auth/providers/local-userpass/login"),
    &[
      ("Host", host.as_str()),
      ("Content-Type", "application/json"),
    ],
    Some(body.as_bytes()),
  );
  parse_response(&raw_exchange(port, &req).await.unwrap())
}

#[track_caller]
fn assert_throttled(r: &Resp, retry_after: &str) {
  r.assert_error(429, "TooManyRequests", "");
  assert_eq!(
    r.json()["error"],
    "too many failed login attempts; retry later"
  );
  assert_eq!(r.header("retry-after"), Some(retry_after), "{r:?}");
}

async fn sixth_attempt_refused(kind: &str) {
  let store = fresh_store(kind);
  let _cleanup = Cleanup(store.clone());
  let a = start_with(config(&store, 5, 0)).await;
  let b = start_with(config(&store, 5, 0)).await;
  assert_eq!(a.register("ada@example.com", "password1").await.status, 201);
  // Five wrong passwords, split over both servers: one count.
  for (i, emu) in [&a, &b, &a, &b, &a].into_iter().enumerate() {
    let r = attempt(emu, "ada@example.com", "wrong-password").await;
    assert_eq!(r.status, 401, "attempt {}: {}", i + 1, r.text());
  }
  // The 6th, even with the right password, on either server.
  assert_throttled(&attempt(&b, "ada@example.com", "password1").await, "1");
  assert_throttled(&attempt(&a, "ada@example.com", "password1").await, "1");
  // Another account is not affected.
  assert_eq!(a.register("bob@example.com", "password1").await.status, 201);
  b.login_email("bob@example.com", "password1").await;

  // Once the lock has passed, the right password logs in and resets the count: four more
  // wrong passwords are plain 401s (without the reset, the first would lock again).
  tokio::time::sleep(Duration::from_millis(1100)).await;
  b.login_email("ada@example.com", "password1").await;
  for emu in [&a, &b, &a, &b] {
    let r = attempt(emu, "ada@example.com", "wrong-password").await;
    assert_eq!(r.status, 401, "{}", r.text());
  }
  a.login_email("ada@example.com", "password1").await;
  a.emulator.stop().await;
  b.emulator.stop().await;
}

#[tokio::test]
async fn sixth_attempt_is_refused_on_either_server_sqlite() {
  sixth_attempt_refused("sqlite").await;
}

#[tokio::test]
async fn sixth_attempt_is_refused_on_either_server_postgres() {
  if postgres_available() {
    sixth_attempt_refused("postgres").await;
  }
}

#[tokio::test]
async fn locks_grow_after_each_further_failure() {
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let mut cfg = config(&store, 2, 0);
  cfg.login_throttle.as_mut().unwrap().max_lock_secs = 4;
  let emu = start_with(cfg).await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  for _ in 0..2 {
    assert_eq!(
      attempt(&emu, "ada@example.com", "nope-nope").await.status,
      401
    );
  }
  assert_throttled(&attempt(&emu, "ada@example.com", "nope-nope").await, "1");
  tokio::time::sleep(Duration::from_millis(1100)).await;
  // One more failure within the window: a 2 s lock.
  assert_eq!(
    attempt(&emu, "ada@example.com", "nope-nope").await.status,
    401
  );
  assert_throttled(&attempt(&emu, "ada@example.com", "password1").await, "2");
  emu.emulator.stop().await;
}

async fn address_count(kind: &str) {
  let store = fresh_store(kind);
  let _cleanup = Cleanup(store.clone());
  // Accounts allow many failures; the address only 3.
  let emu = start_with(config(&store, 100, 3)).await;
  for user in ["a", "b", "c", "d"] {
    let email = format!("{user}@example.com");
    assert_eq!(emu.register(&email, "password1").await.status, 201);
  }
  // One wrong password on each of three accounts (and an unknown one does count too).
  for email in ["a@example.com", "b@example.com", "nobody@example.com"] {
    assert_eq!(attempt(&emu, email, "wrong-password").await.status, 401);
  }
  // A fourth account, the right password: the address is locked.
  assert_throttled(&attempt(&emu, "d@example.com", "password1").await, "1");
  // API-key logins from the address are refused too.
  let key = emu.login_raw("api-key", &json!({"key": "not-a-key"})).await;
  assert_throttled(&key, "1");
  tokio::time::sleep(Duration::from_millis(1100)).await;
  emu.login_email("d@example.com", "password1").await;
  emu.emulator.stop().await;
}

#[tokio::test]
async fn the_client_address_has_its_own_count_sqlite() {
  address_count("sqlite").await;
}

#[tokio::test]
async fn the_client_address_has_its_own_count_postgres() {
  if postgres_available() {
    address_count("postgres").await;
  }
}

#[tokio::test]
async fn wrong_api_keys_count_against_the_address() {
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let emu = start_with(config(&store, 5, 3)).await;
  let server_key = emu.emulator.control().create_server_api_key("svc").unwrap();
  for _ in 0..3 {
    let r = emu.login_raw("api-key", &json!({"key": "wrong-key"})).await;
    r.assert_error(401, "AuthError", "invalid API key");
  }
  // The real key from a locked address: 429.
  let r = emu
    .login_raw("api-key", &json!({"key": server_key.key}))
    .await;
  assert_throttled(&r, "1");
  tokio::time::sleep(Duration::from_millis(1100)).await;
  emu.login("api-key", &json!({"key": server_key.key})).await;
  emu.emulator.stop().await;
}

async fn concurrent_failures(kind: &str) {
  let store = fresh_store(kind);
  let _cleanup = Cleanup(store.clone());
  // 21 allowed: 20 parallel failures, then one more locks only if none of the 20 was lost.
  let a = start_with(config(&store, 21, 0)).await;
  let b = start_with(config(&store, 21, 0)).await;
  assert_eq!(a.register("ada@example.com", "password1").await.status, 201);
  let mut tasks = tokio::task::JoinSet::new();
  for i in 0..20u16 {
    let port = if i % 2 == 0 { a.port } else { b.port };
    let app = a.app.clone();
    tasks.spawn(async move {
      raw_login(port, &app, "ada@example.com", "wrong-password")
        .await
        .status
    });
  }
  while let Some(status) = tasks.join_next().await {
    assert_eq!(status.unwrap(), 401);
  }
  assert_eq!(
    attempt(&a, "ada@example.com", "wrong-password")
      .await
      .status,
    401
  );
  assert_throttled(&attempt(&b, "ada@example.com", "password1").await, "1");
  a.emulator.stop().await;
  b.emulator.stop().await;
}

#[tokio::test]
async fn parallel_failures_all_count_sqlite() {
  concurrent_failures("sqlite").await;
}

#[tokio::test]
async fn parallel_failures_all_count_postgres() {
  if postgres_available() {
    concurrent_failures("postgres").await;
  }
}

/// On the test store (`REALM_AUTH_TEST_STORE`, memory by default): one server.
#[tokio::test]
async fn parallel_failures_all_count_on_the_test_store() {
  let emu = start_with(config(&StoreConfig::Memory, 21, 0)).await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  let mut tasks = tokio::task::JoinSet::new();
  for _ in 0..20 {
    let (port, app) = (emu.port, emu.app.clone());
    tasks.spawn(async move {
      raw_login(port, &app, "ada@example.com", "wrong-password")
        .await
        .status
    });
  }
  while let Some(status) = tasks.join_next().await {
    assert_eq!(status.unwrap(), 401);
  }
  assert_eq!(
    attempt(&emu, "ada@example.com", "wrong-password")
      .await
      .status,
    401
  );
  assert_throttled(&attempt(&emu, "ada@example.com", "password1").await, "1");
  emu.emulator.stop().await;
}

#[tokio::test]
async fn serve_mode_throttles_by_default_with_a_bare_error_body() {
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let emu = start_with(Config {
    store: store.clone(),
    control_api: false,
    // Cheap hashes; the throttle keeps its serve default (5 failures, 15 min, 15 min).
    password_hash: Some(PasswordHashConfig::Pbkdf2 {
      iterations: Some(10),
    }),
    ..Config::default()
  })
  .await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  for _ in 0..5 {
    assert_eq!(
      attempt(&emu, "ada@example.com", "nope-nope").await.status,
      401
    );
  }
  let r = attempt(&emu, "ada@example.com", "password1").await;
  assert_eq!(r.status, 429);
  assert_eq!(r.header("retry-after"), Some("1"));
  assert_eq!(
    r.json(),
    json!({"error": "too many failed login attempts; retry later", "error_code": "TooManyRequests"})
  );
  emu.emulator.stop().await;
}

#[tokio::test]
async fn the_emulator_does_not_throttle_by_default() {
  let emu = start().await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  for _ in 0..8 {
    let r = attempt(&emu, "ada@example.com", "nope-nope").await;
    r.assert_error(401, "InvalidPassword", "unauthorized");
  }
  emu.login_email("ada@example.com", "password1").await;
}

#[tokio::test]
async fn stale_rows_are_swept() {
  // Failures older than the window are gone after later failures of other subjects.
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let mut cfg = config(&store, 5, 0);
  cfg.login_throttle.as_mut().unwrap().window_secs = 1;
  let emu = start_with(cfg).await;
  for email in ["a@x.example", "b@x.example", "c@x.example"] {
    assert_eq!(attempt(&emu, email, "nope-nope").await.status, 401);
  }
  let StoreConfig::Sqlite { path } = &store else {
    unreachable!()
  };
  let rows = |path: &std::path::Path| -> i64 {
    rusqlite::Connection::open(path)
      .unwrap()
      .query_row("SELECT count(*) FROM login_failures", [], |r| r.get(0))
      .unwrap()
  };
  assert_eq!(rows(path), 3);
  tokio::time::sleep(Duration::from_millis(1100)).await;
  // Each failure deletes up to two stale rows besides counting its own.
  assert_eq!(attempt(&emu, "d@x.example", "nope-nope").await.status, 401);
  assert_eq!(rows(path), 2);
  assert_eq!(attempt(&emu, "e@x.example", "nope-nope").await.status, 401);
  // c went; d too if the machine took over a second since d's failure.
  assert!((1..=2).contains(&rows(path)));
  // A success deletes its account's row.
  assert_eq!(emu.register("f@x.example", "password1").await.status, 201);
  assert_eq!(attempt(&emu, "f@x.example", "nope-nope").await.status, 401);
  let f_rows = |path: &std::path::Path| -> i64 {
    rusqlite::Connection::open(path)
      .unwrap()
      .query_row(
        "SELECT count(*) FROM login_failures WHERE subject = 'f@x.example'",
        [],
        |r| r.get(0),
      )
      .unwrap()
  };
  assert_eq!(f_rows(path), 1);
  emu.login_email("f@x.example", "password1").await;
  assert_eq!(f_rows(path), 0);
  emu.emulator.stop().await;
}

/// A wrong API-key login sent from `client` through a proxy on 127.0.0.1.
async fn via_proxy(emu: &Emu, client: &str) -> Resp {
  let path = format!("{BASE}/app/{}/auth/providers/api-key/login", emu.app);
  let host = format!("127.0.0.1:{}", emu.port);
  let headers = [
    ("Host", host.as_str()),
    ("Content-Type", "application/json"),
    ("X-Forwarded-For", client),
  ];
  let req = build_request("POST", &path, &headers, Some(br#"{"key":"wrong-key"}"#));
  parse_response(&raw_exchange(emu.port, &req).await.expect("exchange"))
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_count() {
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let emu = start_with(Config {
    trusted_proxies: vec!["127.0.0.0/8".into()],
    ..config(&store, 5, 2)
  })
  .await;
  for _ in 0..2 {
    assert_eq!(via_proxy(&emu, "198.51.100.7").await.status, 401);
  }
  assert_throttled(&via_proxy(&emu, "198.51.100.7").await, "1");
  // Another client behind the same proxy is not locked out with the first.
  assert_eq!(via_proxy(&emu, "203.0.113.9").await.status, 401);
  // A forged address left of the real one changes nothing.
  assert_throttled(&via_proxy(&emu, "203.0.113.50, 198.51.100.7").await, "1");
  emu.emulator.stop().await;

  // Without the proxy in the list, the header is not believed: one count for everyone.
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let emu = start_with(config(&store, 5, 2)).await;
  assert_eq!(via_proxy(&emu, "198.51.100.1").await.status, 401);
  assert_eq!(via_proxy(&emu, "198.51.100.2").await.status, 401);
  assert_throttled(&via_proxy(&emu, "198.51.100.3").await, "1");
  emu.emulator.stop().await;
}

/// 20 simultaneous wrong guesses and then the right one, spread over `servers` sharing one
/// store, against `maxFailures` 5: no more than 5 passwords are checked (answered other than
/// 429), whatever the timing. Hashes cost a few milliseconds, so that without the count taken
/// before the hash every guess would pass the lock check before the first failure is recorded.
async fn burst(servers: &[&Emu]) {
  let a = servers[0];
  assert_eq!(a.register("ada@example.com", "password1").await.status, 201);
  let mut tasks = tokio::task::JoinSet::new();
  for i in 0..21usize {
    let (port, app) = (servers[i % servers.len()].port, a.app.clone());
    let password = if i == 20 {
      "password1"
    } else {
      "wrong-password"
    };
    tasks.spawn(async move { raw_login(port, &app, "ada@example.com", password).await });
  }
  let mut checked = 0;
  while let Some(r) = tasks.join_next().await {
    let r = r.unwrap();
    match r.status {
      429 => assert!(r.header("retry-after").is_some(), "{r:?}"),
      200 | 401 => checked += 1,
      other => panic!("unexpected {other}: {}", r.text()),
    }
  }
  assert!(
    checked <= 5,
    "{checked} of 21 simultaneous guesses were checked"
  );
  assert!(checked >= 1, "the first guesses are checked");
}

fn burst_config(store: &StoreConfig) -> Config {
  Config {
    // About 10 ms a hash: long enough for all 21 requests to arrive while the first hashes.
    password_hash: Some(PasswordHashConfig::Argon2id {
      memory_kib: 8192,
      iterations: 2,
      parallelism: 1,
    }),
    ..config(store, 5, 0)
  }
}

#[tokio::test]
async fn a_burst_of_guesses_gets_no_more_than_the_limit_checked_on_the_test_store() {
  let emu = start_with(burst_config(&StoreConfig::Memory)).await;
  burst(&[&emu]).await;
  emu.emulator.stop().await;
}

async fn burst_on_two_servers(kind: &str) {
  let store = fresh_store(kind);
  let _cleanup = Cleanup(store.clone());
  let a = start_with(burst_config(&store)).await;
  let b = start_with(burst_config(&store)).await;
  burst(&[&a, &b]).await;
  a.emulator.stop().await;
  b.emulator.stop().await;
}

#[tokio::test]
async fn a_burst_of_guesses_on_two_servers_gets_no_more_than_the_limit_checked_sqlite() {
  burst_on_two_servers("sqlite").await;
}

#[tokio::test]
async fn a_burst_of_guesses_on_two_servers_gets_no_more_than_the_limit_checked_postgres() {
  if postgres_available() {
    burst_on_two_servers("postgres").await;
  }
}

/// A right password in the middle of a count takes only its own attempt back from the address:
/// earlier failures still count, and a login does not leave the lock its attempt set.
#[tokio::test]
async fn a_right_password_is_not_counted_against_the_address() {
  let emu = start_with(config(&StoreConfig::Memory, 100, 3)).await;
  for user in ["a", "b"] {
    let email = format!("{user}@example.com");
    assert_eq!(emu.register(&email, "password1").await.status, 201);
  }
  assert_eq!(
    attempt(&emu, "a@example.com", "nope-nope").await.status,
    401
  );
  assert_eq!(
    attempt(&emu, "a@example.com", "nope-nope").await.status,
    401
  );
  // The third attempt from the address is counted (and locks it) before its hash; being right,
  // it is taken back: the lock goes with it.
  emu.login_email("b@example.com", "password1").await;
  emu.login_email("b@example.com", "password1").await;
  // One more failure is the third: locked.
  assert_eq!(
    attempt(&emu, "a@example.com", "nope-nope").await.status,
    401
  );
  assert_throttled(&attempt(&emu, "b@example.com", "password1").await, "1");
  emu.emulator.stop().await;
}

/// Failures further apart than the window start the count over; but the window runs from the
/// end of the lock, so a lock as long as the window does not wipe the count and the locks keep
/// doubling.
async fn window_after_lock(store: &StoreConfig) {
  let mut cfg = config(store, 2, 0);
  let t = cfg.login_throttle.as_mut().unwrap();
  (t.window_secs, t.max_lock_secs) = (1, 4);
  let a = start_with(cfg).await;
  assert_eq!(a.register("ada@example.com", "password1").await.status, 201);
  // One failure, then one more after the window: a new count of 1, so no lock.
  assert_eq!(
    attempt(&a, "ada@example.com", "nope-nope").await.status,
    401
  );
  tokio::time::sleep(Duration::from_millis(1100)).await;
  assert_eq!(
    attempt(&a, "ada@example.com", "nope-nope").await.status,
    401
  );
  a.login_email("ada@example.com", "password1").await;
  // Two failures: a 1 s lock.
  for _ in 0..2 {
    assert_eq!(
      attempt(&a, "ada@example.com", "nope-nope").await.status,
      401
    );
  }
  assert_throttled(&attempt(&a, "ada@example.com", "password1").await, "1");
  // More than a window after the last failure, but within one of the lock's end: 2 s.
  tokio::time::sleep(Duration::from_millis(1100)).await;
  assert_eq!(
    attempt(&a, "ada@example.com", "nope-nope").await.status,
    401
  );
  assert_throttled(&attempt(&a, "ada@example.com", "password1").await, "2");
  // And after that one: 4 s.
  tokio::time::sleep(Duration::from_millis(2100)).await;
  assert_eq!(
    attempt(&a, "ada@example.com", "nope-nope").await.status,
    401
  );
  assert_throttled(&attempt(&a, "ada@example.com", "password1").await, "4");
  a.emulator.stop().await;
}

#[tokio::test]
async fn the_window_runs_from_the_end_of_the_lock_on_the_test_store() {
  window_after_lock(&StoreConfig::Memory).await;
}

#[tokio::test]
async fn the_window_runs_from_the_end_of_the_lock_sqlite() {
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  window_after_lock(&store).await;
}

#[tokio::test]
async fn the_window_runs_from_the_end_of_the_lock_postgres() {
  if postgres_available() {
    let store = fresh_store("postgres");
    window_after_lock(&store).await;
  }
}

/// A right password whose login is refused (the email is not confirmed yet) is not a guess:
/// however often it is tried, it never locks the account.
#[tokio::test]
async fn a_right_password_refused_for_another_reason_does_not_count() {
  let emu = start_with(Config {
    require_email_confirmation: true,
    ..config(&StoreConfig::Memory, 2, 0)
  })
  .await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  for _ in 0..4 {
    let r = attempt(&emu, "ada@example.com", "password1").await;
    r.assert_error(401, "AuthError", "confirmation required");
  }
  emu.emulator.stop().await;
}

/// A mail-sending request on the test store, from 127.0.0.1.
async fn mail(emu: &Emu, route: &str, email: &str) -> Resp {
  emu
    .app_api(
      "POST",
      &format!("/auth/providers/local-userpass/{route}"),
      None,
      Some(&json!({ "email": email }).to_string()),
    )
    .await
}

#[track_caller]
fn assert_mail_throttled(r: &Resp) {
  r.assert_error(429, "TooManyRequests", "");
  assert_eq!(r.json()["error"], "too many emails requested; retry later");
  assert_eq!(r.header("retry-after"), Some("1"), "{r:?}");
}

/// reset/send, confirm/send and confirm/call each send an email: at most `mailMaxPerEmail` for
/// one email and `mailMaxPerClient` from one client address, then 429 until the lock ends.
#[tokio::test]
async fn mail_sending_is_limited_per_email_and_per_client() {
  let mut cfg = Config {
    require_email_confirmation: true,
    ..config(&StoreConfig::Memory, 5, 0)
  };
  let t = cfg.login_throttle.as_mut().unwrap();
  (t.mail_max_per_email, t.mail_max_per_client) = (2, 5);
  let emu = start_with(cfg).await;
  for user in ["a", "b", "c"] {
    let email = format!("{user}@example.com");
    assert_eq!(emu.register(&email, "password1").await.status, 201);
  }
  // Two emails for a@ (any of the three routes), then it is locked, whichever route asks.
  mail(&emu, "reset/send", "a@example.com")
    .await
    .assert_empty(204);
  mail(&emu, "confirm/send", "a@example.com")
    .await
    .assert_empty(204);
  assert_mail_throttled(&mail(&emu, "reset/send", "a@example.com").await);
  assert_mail_throttled(&mail(&emu, "confirm/call", "a@example.com").await);
  // Other emails are not: b@ twice (the client's 3rd and 4th), then c@ once (its 5th).
  mail(&emu, "confirm/call", "b@example.com")
    .await
    .assert_empty(204);
  mail(&emu, "reset/send", "b@example.com")
    .await
    .assert_empty(204);
  mail(&emu, "confirm/send", "c@example.com")
    .await
    .assert_empty(204);
  // The client address is locked now, for a fresh email too (even one without an account).
  assert_mail_throttled(&mail(&emu, "reset/send", "c@example.com").await);
  assert_mail_throttled(&mail(&emu, "reset/send", "nobody@example.com").await);
  tokio::time::sleep(Duration::from_millis(1100)).await;
  mail(&emu, "reset/send", "c@example.com")
    .await
    .assert_empty(204);
  emu.emulator.stop().await;
}

/// The emulator does not throttle (by default), mail included.
#[tokio::test]
async fn the_emulator_does_not_limit_mail_by_default() {
  let emu = start().await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  for _ in 0..30 {
    mail(&emu, "reset/send", "ada@example.com")
      .await
      .assert_empty(204);
  }
}
