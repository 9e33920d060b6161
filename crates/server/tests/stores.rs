//! Backend-specific guarantees: a SQLite file survives a restart, and servers that share one
//! database (two on one SQLite file, two on one PostgreSQL schema) agree at once on disabled
//! keys, revoked sessions and the per-user key limit. The PostgreSQL tests need
//! `REALM_AUTH_TEST_PG_URL` (`eval "$(scripts/pg-test-cluster.sh start)"`) and fail without it
//! when `REALM_AUTH_TEST_STORE=postgres`; otherwise they say so and pass.

mod common;

use std::collections::HashSet;

use common::*;
use realm_auth_server::{Config, StoreConfig};
use serde_json::json;

fn config(store: StoreConfig) -> Config {
  Config {
    store,
    ..Config::default()
  }
}

/// Two servers on one fresh store of `kind`, and a guard that removes a SQLite store's folder.
async fn two_servers(kind: &str) -> (Emu, Emu, Cleanup) {
  let store = fresh_store(kind);
  let a = start_with(config(store.clone())).await;
  let b = start_with(config(store.clone())).await;
  (a, b, Cleanup(store))
}

#[tokio::test]
async fn sqlite_file_survives_a_restart() {
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let emu = start_with(config(store.clone())).await;
  let s = emu.new_user("keep@example.com").await;
  let key = emu.create_key(&s.refresh, "kept").await.json();
  let secret = key["key"].as_str().unwrap().to_string();
  let server = emu.emulator.control().create_server_api_key("svc").unwrap();
  emu.emulator.stop().await;
  drop(emu);

  let emu = start_with(config(store)).await;
  // Same signing secret: the old refresh token still works, and lists the kept key.
  let keys = emu
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await;
  assert_eq!(keys.status, 200, "{}", keys.text());
  assert_eq!(keys.json()[0]["name"], "kept");
  let by_key = emu.login("api-key", &json!({"key": secret})).await;
  assert_eq!(by_key.user_id, s.user_id);
  emu.login("api-key", &json!({"key": server.key})).await;
  emu.login_email("keep@example.com", "password1").await;
  emu.emulator.stop().await;
}

async fn disabled_key_refused_at_once_on_the_other(kind: &str) {
  let (a, b, _cleanup) = two_servers(kind).await;
  disabled_key_scenario(a.port, b.port, &a.app).await;
}

async fn revoked_sessions_refused_everywhere(kind: &str) {
  let (a, b, _cleanup) = two_servers(kind).await;
  let s = a.new_user("revoke@example.com").await;
  assert_eq!(
    b.api("GET", "/auth/profile", Some(&s.access), None)
      .await
      .status,
    200
  );
  a.emulator.control().revoke_sessions(&s.user_id).unwrap();
  b.api("POST", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "failed to find refresh token");
  b.api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .assert_error(401, "InvalidSession", "session ended");
  // Logging out through B ends a session opened through A, too.
  let t = a.login_email("revoke@example.com", "password1").await;
  b.api("DELETE", "/auth/session", Some(&t.refresh), None)
    .await
    .assert_empty(204);
  a.api("GET", "/auth/api_keys", Some(&t.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "failed to find refresh token");
  // Expiring access tokens through B reaches A's.
  let u = a.login_email("revoke@example.com", "password1").await;
  b.emulator.control().expire_access_tokens();
  a.api("GET", "/auth/profile", Some(&u.access), None)
    .await
    .assert_error(401, "InvalidSession", "token expired");
}

async fn key_limit_holds_under_concurrent_creates(kind: &str) {
  let (a, b, _cleanup) = two_servers(kind).await;
  let s = a.new_user("race@example.com").await;
  // 40 creates, split across both servers, over 25 names: names collide and the limit bites.
  let mut tasks = Vec::new();
  for i in 0..40 {
    let port = if i % 2 == 0 { a.port } else { b.port };
    let refresh = s.refresh.clone();
    tasks.push(tokio::spawn(async move {
      let body = json!({ "name": format!("k{}", i % 25) }).to_string();
      let req = build_request(
        "POST",
        &format!("{BASE}/auth/api_keys"),
        &[
          ("Authorization", &format!("Bearer {refresh}")),
          ("Content-Type", "application/json"),
        ],
        Some(body.as_bytes()),
      );
      parse_response(&raw_exchange(port, &req).await.unwrap())
    }));
  }
  let mut created = Vec::new();
  for task in tasks {
    let r = task.await.unwrap();
    match r.status {
      201 => created.push(r.json()["name"].as_str().unwrap().to_string()),
      409 => {
        let code = r.json()["error_code"].as_str().unwrap().to_string();
        assert!(
          code == "LimitExceeded" || code == "APIKeyAlreadyExists",
          "{}",
          r.text()
        );
      }
      _ => panic!("unexpected answer {} {}", r.status, r.text()),
    }
  }
  assert_eq!(created.len(), 20, "created {created:?}");
  let unique: HashSet<&String> = created.iter().collect();
  assert_eq!(unique.len(), 20, "duplicate names in {created:?}");
  let listed = b
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await
    .json();
  let names: HashSet<String> = listed
    .as_array()
    .unwrap()
    .iter()
    .map(|k| k["name"].as_str().unwrap().to_string())
    .collect();
  assert_eq!(names.len(), 20);
  assert_eq!(names, created.into_iter().collect());
}

#[tokio::test]
async fn sqlite_two_servers_see_a_disabled_key_at_once() {
  disabled_key_refused_at_once_on_the_other("sqlite").await;
}

#[tokio::test]
async fn sqlite_two_servers_see_revoked_sessions_at_once() {
  revoked_sessions_refused_everywhere("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_key_limit_holds_under_concurrent_creates_on_two_servers() {
  key_limit_holds_under_concurrent_creates("sqlite").await;
}

#[tokio::test]
async fn postgres_two_servers_see_a_disabled_key_at_once() {
  if postgres_available() {
    disabled_key_refused_at_once_on_the_other("postgres").await;
  }
}

#[tokio::test]
async fn postgres_two_servers_see_revoked_sessions_at_once() {
  if postgres_available() {
    revoked_sessions_refused_everywhere("postgres").await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_key_limit_holds_under_concurrent_creates_on_two_servers() {
  if postgres_available() {
    key_limit_holds_under_concurrent_creates("postgres").await;
  }
}

#[tokio::test]
async fn a_data_file_is_for_the_memory_store_only() {
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let err = realm_auth_server::Emulator::start(Config {
    data_file: Some(std::env::temp_dir().join("never-written.json")),
    ..config(store)
  })
  .await
  .unwrap_err();
  assert!(err.to_string().contains("memory store only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_servers_starting_together_migrate_once() {
  if !postgres_available() {
    return;
  }
  let store = fresh_store("postgres");
  let starts: Vec<_> = (0..4)
    .map(|_| tokio::spawn(realm_auth_server::Emulator::start(config(store.clone()))))
    .collect();
  let mut servers = Vec::new();
  for start in starts {
    servers.push(start.await.unwrap().expect("every server starts"));
  }
  let StoreConfig::Postgres { url, schema } = store else {
    unreachable!()
  };
  let schema = schema.unwrap();
  let (migrations, apps) = tokio::task::spawn_blocking(move || {
    let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    let count = |client: &mut postgres::Client, table: &str| -> i64 {
      client
        .query_one(&format!("SELECT count(*) FROM {schema}.{table}"), &[])
        .unwrap()
        .get(0)
    };
    (
      count(&mut client, "schema_migrations"),
      count(&mut client, "apps"),
    )
  })
  .await
  .unwrap();
  // One row per migration file, however many servers ran them.
  let files = std::fs::read_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/migrations/postgres"))
    .unwrap()
    .count() as i64;
  assert_eq!(migrations, files);
  assert_eq!(apps, 1);
  for server in servers {
    server.stop().await;
  }
}
