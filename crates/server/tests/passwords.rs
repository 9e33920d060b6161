//! Password storage: argon2id PHC strings in the store, the per-mode defaults, and the rehash a
//! login performs when the stored hash was made under other settings than the server's (another
//! algorithm or other argon2 parameters). The SQLite file is read directly to see what is
//! stored; PostgreSQL runs the same checks when `REALM_AUTH_TEST_PG_URL` is set (and must be
//! with `REALM_AUTH_TEST_STORE=postgres`).

mod common;

use common::*;
use realm_auth_server::{Config, PasswordHashConfig, StoreConfig};

/// Cheap argon2id parameters: tests stay fast in debug builds.
fn small_argon2(memory_kib: u32, iterations: u32) -> PasswordHashConfig {
  PasswordHashConfig::Argon2id {
    memory_kib,
    iterations,
    parallelism: 1,
  }
}

fn config(store: &StoreConfig, hash: PasswordHashConfig) -> Config {
  Config {
    store: store.clone(),
    password_hash: Some(hash),
    ..Config::default()
  }
}

/// `(salt, hash, iterations)` of an account, read from the store itself.
fn stored(store: &StoreConfig, email: &str) -> (String, String, i64) {
  match store {
    StoreConfig::Sqlite { path } => {
      let conn = rusqlite::Connection::open(path).unwrap();
      conn
        .query_row(
          "SELECT salt, hash, iterations FROM email_accounts WHERE email = ?1",
          [email],
          |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .unwrap()
    }
    StoreConfig::Postgres { url, schema } => {
      let (url, schema, email) = (url.clone(), schema.clone().unwrap(), email.to_string());
      // The sync client blocks on a runtime of its own: not on the test's.
      std::thread::spawn(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let row = client
          .query_one(
            &format!("SELECT salt, hash, iterations FROM {schema}.email_accounts WHERE email = $1"),
            &[&email],
          )
          .unwrap();
        (row.get(0), row.get(1), i64::from(row.get::<_, i32>(2)))
      })
      .join()
      .unwrap()
    }
    StoreConfig::Memory => panic!("a memory store cannot be read from outside"),
  }
}

/// Removes a SQLite store's folder when dropped.
struct Cleanup(StoreConfig);

impl Drop for Cleanup {
  fn drop(&mut self) {
    if let StoreConfig::Sqlite { path } = &self.0 {
      let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
  }
}

async fn phc_string_after_register(kind: &str) {
  let store = fresh_store(kind);
  let _cleanup = Cleanup(store.clone());
  let emu = start_with(config(&store, small_argon2(64, 1))).await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  let (salt, hash, iterations) = stored(&store, "ada@example.com");
  assert!(
    hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"),
    "stored {hash}"
  );
  // The PHC string carries its own salt; the PBKDF2 columns stay empty.
  assert_eq!((salt.as_str(), iterations), ("", 0));
  assert!(!hash.contains("password1"));
  emu.login_email("ada@example.com", "password1").await;
  let wrong = emu
    .login_raw(
      "local-userpass",
      &serde_json::json!({"username": "ada@example.com", "password": "password2"}),
    )
    .await;
  wrong.assert_error(401, "InvalidPassword", "unauthorized");
  // A login under the settings it was stored with changes nothing.
  assert_eq!(stored(&store, "ada@example.com").1, hash);
  // The control API's users get the same treatment.
  emu
    .emulator
    .control()
    .create_user("bob@example.com", "password1")
    .unwrap();
  assert!(
    stored(&store, "bob@example.com")
      .1
      .starts_with("$argon2id$")
  );
  emu.login_email("bob@example.com", "password1").await;
  emu.emulator.stop().await;
}

#[tokio::test]
async fn argon2id_phc_string_is_stored_sqlite() {
  phc_string_after_register("sqlite").await;
}

#[tokio::test]
async fn argon2id_phc_string_is_stored_postgres() {
  if postgres_available() {
    phc_string_after_register("postgres").await;
  }
}

/// Starts a server on `store` with `hash`, logs `email` in (twice: the rehashed password must
/// still work), and returns the stored hash after the first login.
async fn login_under(store: &StoreConfig, hash: PasswordHashConfig, email: &str) -> String {
  let emu = start_with(config(store, hash)).await;
  emu.login_email(email, "password1").await;
  let after = stored(store, email).1;
  emu.login_email(email, "password1").await;
  let wrong = emu
    .login_raw(
      "local-userpass",
      &serde_json::json!({"username": email, "password": "password2"}),
    )
    .await;
  assert_eq!(wrong.status, 401, "{}", wrong.text());
  emu.emulator.stop().await;
  after
}

async fn rehash_on_settings_change(kind: &str) {
  let store = fresh_store(kind);
  let _cleanup = Cleanup(store.clone());
  let pbkdf2 = PasswordHashConfig::Pbkdf2 {
    iterations: Some(1000),
  };
  let emu = start_with(config(&store, pbkdf2.clone())).await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  emu.emulator.stop().await;
  drop(emu);
  let (salt, old, iterations) = stored(&store, "ada@example.com");
  assert_eq!(iterations, 1000);
  assert_eq!(salt.len(), 32);
  assert!(old.bytes().all(|b| b.is_ascii_hexdigit()), "old row {old}");

  // PBKDF2 -> argon2id: the old row still logs in, and is rewritten at once.
  let first = login_under(&store, small_argon2(64, 1), "ada@example.com").await;
  assert!(first.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{first}");
  // Other argon2 parameters: rewritten again.
  let second = login_under(&store, small_argon2(128, 2), "ada@example.com").await;
  assert!(
    second.starts_with("$argon2id$v=19$m=128,t=2,p=1$"),
    "{second}"
  );
  // OWASP's minimum (the serve default): the real cost, once.
  let owasp = login_under(
    &store,
    PasswordHashConfig::owasp_argon2id(),
    "ada@example.com",
  )
  .await;
  assert!(
    owasp.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
    "{owasp}"
  );
  // And back: the configuration decides, whatever the row holds.
  let back = login_under(&store, pbkdf2, "ada@example.com").await;
  assert!(back.bytes().all(|b| b.is_ascii_hexdigit()), "{back}");
  assert_eq!(stored(&store, "ada@example.com").2, 1000);
}

#[tokio::test]
async fn login_rehashes_when_settings_change_sqlite() {
  rehash_on_settings_change("sqlite").await;
}

#[tokio::test]
async fn login_rehashes_when_settings_change_postgres() {
  if postgres_available() {
    rehash_on_settings_change("postgres").await;
  }
}

#[tokio::test]
async fn rehash_keeps_a_password_reset_made_meanwhile() {
  // The rehash replaces only the hash the login read: a reset between the read and the write
  // wins. Simulated in order here (reset first, then a login with the old password fails and
  // a login with the new one rehashes the new hash, not the old).
  let store = fresh_store("sqlite");
  let _cleanup = Cleanup(store.clone());
  let pbkdf2 = PasswordHashConfig::Pbkdf2 {
    iterations: Some(10),
  };
  let emu = start_with(config(&store, pbkdf2)).await;
  assert_eq!(
    emu.register("ada@example.com", "password1").await.status,
    201
  );
  emu.emulator.stop().await;
  drop(emu);
  let emu = start_with(config(&store, small_argon2(64, 1))).await;
  let reset = emu
    .app_api(
      "POST",
      "/auth/providers/local-userpass/reset/call",
      None,
      Some(r#"{"email":"ada@example.com","password":"password9","arguments":[]}"#),
    )
    .await;
  assert_eq!(reset.status, 204, "{}", reset.text());
  let old = emu
    .login_raw(
      "local-userpass",
      &serde_json::json!({"username": "ada@example.com", "password": "password1"}),
    )
    .await;
  assert_eq!(old.status, 401);
  emu.login_email("ada@example.com", "password9").await;
  assert!(
    stored(&store, "ada@example.com")
      .1
      .starts_with("$argon2id$")
  );
  emu.login_email("ada@example.com", "password9").await;
  emu.emulator.stop().await;
}

#[tokio::test]
async fn bad_argon2_parameters_fail_at_start() {
  let started = realm_auth_server::Emulator::start(Config {
    password_hash: Some(small_argon2(1, 1)),
    ..Config::default()
  })
  .await;
  let Err(err) = started else {
    panic!("an emulator with 1 KiB argon2 memory started")
  };
  assert!(err.to_string().contains("passwordHash"), "{err}");
}

#[test]
fn config_file_keys() {
  let dir = std::env::temp_dir().join(format!("realm-auth-pwcfg-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let file = dir.join("c.json");
  std::fs::write(
    &file,
    r#"{"store":{"kind":"sqlite","path":"x.db"},
        "passwordHash":{"algorithm":"argon2id","memoryKib":65536,"iterations":3,"parallelism":2},
        "loginThrottle":{"maxFailures":3}}"#,
  )
  .unwrap();
  let cli =
    realm_auth_server::cli::parse_serve_args(["--config".to_string(), file.display().to_string()])
      .unwrap()
      .unwrap();
  assert_eq!(
    cli.config.password_hash,
    Some(PasswordHashConfig::Argon2id {
      memory_kib: 65536,
      iterations: 3,
      parallelism: 2
    })
  );
  let throttle = cli.config.login_throttle.unwrap();
  assert_eq!(
    (
      throttle.max_failures,
      throttle.window_secs,
      throttle.max_lock_secs
    ),
    (3, 900, 900)
  );
  assert!(!cli.config.control_api);
  // `passwordIterations` (file) or `--password-iterations` (flag) without `passwordHash`:
  // PBKDF2, as before argon2id existed.
  std::fs::write(
    &file,
    r#"{"store":{"kind":"sqlite","path":"x.db"},"passwordIterations":100000}"#,
  )
  .unwrap();
  let path = file.display().to_string();
  let cli = realm_auth_server::cli::parse_serve_args(["--config".to_string(), path.clone()])
    .unwrap()
    .unwrap();
  let pbkdf2 = Some(PasswordHashConfig::Pbkdf2 { iterations: None });
  assert_eq!(cli.config.password_hash, pbkdf2);
  assert_eq!(cli.config.password_iterations, 100000);
  let cli = realm_auth_server::cli::parse_serve_args(
    ["--sqlite", "x.db", "--password-iterations", "1"].map(String::from),
  )
  .unwrap()
  .unwrap();
  assert_eq!(cli.config.password_hash, pbkdf2);
  let cli = realm_auth_server::cli::parse_serve_args(["--sqlite", "x.db"].map(String::from))
    .unwrap()
    .unwrap();
  assert_eq!(
    cli.config.password_hash, None,
    "serve resolves None to argon2id"
  );
  std::fs::remove_dir_all(dir).unwrap();
}
