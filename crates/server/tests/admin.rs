//! The admin commands (`realm_auth_server::admin::run`) against a real database: a temp SQLite
//! file, or PostgreSQL with `REALM_AUTH_TEST_STORE=postgres` (+ `REALM_AUTH_TEST_PG_URL`; each
//! test gets its own schema, through a `--config` file). The end-to-end tests start a server
//! over the same database and check that it obeys what the admin commands did.

mod common;

use std::path::PathBuf;

use common::{Emu, fresh_store, session_of, start_with};
use realm_auth_server::{Config, StoreConfig, admin, sign_hs256};
use serde_json::{Value, json};

/// A database for one test, and the store options that name it.
struct Db {
  dir: PathBuf,
  store: StoreConfig,
  flags: Vec<String>,
}

impl Drop for Db {
  fn drop(&mut self) {
    let _ = std::fs::remove_dir_all(&self.dir);
  }
}

fn unique() -> String {
  static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
  format!(
    "{}-{}",
    std::process::id(),
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
  )
}

/// SQLite unless `REALM_AUTH_TEST_STORE=postgres`.
fn db() -> Db {
  let dir = std::env::temp_dir().join(format!("realm-auth-admin-{}", unique()));
  std::fs::create_dir_all(&dir).unwrap();
  if std::env::var("REALM_AUTH_TEST_STORE").as_deref() == Ok("postgres") {
    let store = fresh_store("postgres");
    let config = dir.join("config.json");
    std::fs::write(&config, json!({ "store": store }).to_string()).unwrap();
    let flags = vec!["--config".into(), config.display().to_string()];
    Db { dir, store, flags }
  } else {
    let path = dir.join("store.db");
    let flags = vec!["--sqlite".into(), path.display().to_string()];
    let store = StoreConfig::Sqlite { path };
    Db { dir, store, flags }
  }
}

/// What one command did.
#[derive(Debug)]
struct Out {
  code: u8,
  stdout: String,
  stderr: String,
}

impl Out {
  #[track_caller]
  fn ok(&self) -> &Self {
    assert_eq!(self.code, 0, "{self:?}");
    self
  }
  #[track_caller]
  fn json(&self) -> Value {
    self.ok();
    serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:?}"))
  }
  #[track_caller]
  fn fails(&self, code: u8, contains: &str) -> &Self {
    assert_eq!(self.code, code, "{self:?}");
    assert!(
      self.stderr.contains(contains),
      "{self:?} lacks {contains:?}"
    );
    assert!(self.stdout.is_empty(), "{self:?}");
    self
  }
}

fn run(args: &[&str], stdin: &str) -> Out {
  let (mut out, mut err) = (Vec::new(), Vec::new());
  let args = args.iter().map(|a| a.to_string()).collect();
  let code = admin::run(args, &mut stdin.as_bytes(), &mut out, &mut err);
  Out {
    code,
    stdout: String::from_utf8(out).unwrap(),
    stderr: String::from_utf8(err).unwrap(),
  }
}

impl Db {
  /// Runs a command with this database's store options appended.
  fn run(&self, args: &[&str], stdin: &str) -> Out {
    let mut all: Vec<&str> = args.to_vec();
    all.extend(self.flags.iter().map(String::as_str));
    run(&all, stdin)
  }

  /// Adds a user hashed as `serve` would (argon2id by default).
  fn add_user(&self, app: &str, email: &str, password: &str) -> String {
    self.add_user_with(app, email, password, &[])
  }

  /// Adds a user with `extra` options for `users add`.
  fn add_user_with(&self, app: &str, email: &str, password: &str, extra: &[&str]) -> String {
    let mut args = vec![
      "users",
      "add",
      "--app",
      app,
      "--email",
      email,
      "--password-stdin",
      "--json",
    ];
    args.extend_from_slice(extra);
    let out = self.run(&args, &format!("{password}\n"));
    out.json()["id"].as_str().unwrap().to_string()
  }

  fn user(&self, app: &str, id: &str) -> Option<Value> {
    let list = self
      .run(&["users", "list", "--app", app, "--json"], "")
      .json();
    list
      .as_array()
      .unwrap()
      .iter()
      .find(|u| u["id"] == id)
      .cloned()
  }
}

#[test]
fn apps_add_and_list() {
  let db = db();
  let out = db.run(&["apps", "add", "shop-1"], "");
  assert_eq!(out.ok().stdout, "created app shop-1\n");
  // Idempotent, as a server's start is.
  let again = db.run(&["apps", "add", "shop-1", "--json"], "").json();
  assert_eq!(again, json!({"appId": "shop-1", "created": false}));
  db.run(&["apps", "add", "shop-2"], "").ok();
  db.add_user("shop-1", "ada@example.com", "password1");
  let list = db.run(&["apps", "list", "--json"], "").json();
  let apps: Vec<(&str, u64)> = list
    .as_array()
    .unwrap()
    .iter()
    .map(|a| (a["appId"].as_str().unwrap(), a["users"].as_u64().unwrap()))
    .collect();
  assert_eq!(apps, vec![("shop-1", 1), ("shop-2", 0)]);
  // Human output: aligned columns, one line per app.
  let text = db.run(&["apps", "list"], "").ok().stdout.clone();
  let lines: Vec<&str> = text.lines().collect();
  assert_eq!(lines.len(), 3, "{text}");
  assert!(lines[0].starts_with("APP ID  USERS  CREATED"), "{text}");
  assert!(lines[1].starts_with("shop-1  1      "), "{text}");
  db.run(&["apps", "add", "a/b"], "")
    .fails(2, "contain no '/'");
}

#[test]
fn users_lifecycle() {
  let db = db();
  db.run(&["apps", "add", "app"], "").ok();
  let id = db.add_user("app", "ada@example.com", "password1");
  let user = db.user("app", &id).unwrap();
  assert_eq!(user["email"], "ada@example.com");
  assert_eq!(user["type"], "normal");
  assert_eq!(user["disabled"], false);
  assert_eq!(user["providers"], json!(["local-userpass"]));
  db.run(
    &[
      "users",
      "add",
      "--app",
      "app",
      "--email",
      "ada@example.com",
      "--password-stdin",
    ],
    "password2",
  )
  .fails(1, "already exists");

  let out = db.run(&["users", "disable", "--app", "app", &id], "");
  assert_eq!(
    out.ok().stdout,
    format!("disabled user {id} (its sessions ended)\n")
  );
  assert_eq!(db.user("app", &id).unwrap()["disabled"], true);
  let text = db
    .run(&["users", "list", "--app", "app"], "")
    .ok()
    .stdout
    .clone();
  assert!(text.starts_with("ID  "), "{text}");
  assert!(text.contains("  disabled  "), "{text}");
  let out = db.run(&["users", "enable", "--app", "app", &id, "--json"], "");
  assert_eq!(out.json(), json!({"id": id, "disabled": false}));
  assert_eq!(db.user("app", &id).unwrap()["disabled"], false);

  let out = db.run(&["sessions", "revoke", "--app", "app", &id, "--json"], "");
  assert_eq!(out.json(), json!({"userId": id, "revoked": true}));
  let out = db.run(&["users", "delete", "--app", "app", &id], "");
  assert_eq!(out.ok().stdout, format!("deleted user {id}\n"));
  assert!(db.user("app", &id).is_none());
  // Gone: every command on it says so, with exit 3.
  for cmd in [
    &["users", "delete"][..],
    &["users", "disable"],
    &["users", "enable"],
    &["sessions", "revoke"],
  ] {
    let mut args = cmd.to_vec();
    args.extend(["--app", "app", &id]);
    db.run(&args, "").fails(3, &format!("no user '{id}'"));
  }
  // The email is free again.
  db.add_user("app", "ada@example.com", "password1");
}

#[test]
fn server_keys() {
  let db = db();
  db.run(&["apps", "add", "app"], "").ok();
  let created = db
    .run(
      &[
        "server-keys",
        "create",
        "--app",
        "app",
        "--name",
        "backend",
        "--json",
      ],
      "",
    )
    .json();
  let (id, key) = (
    created["id"].as_str().unwrap(),
    created["key"].as_str().unwrap(),
  );
  assert_eq!(created["name"], "backend");
  assert_eq!(key.len(), 64);
  let human = db.run(
    &["server-keys", "create", "--app", "app", "--name", "other"],
    "",
  );
  assert!(human.ok().stdout.contains("key: "), "{human:?}");
  db.run(
    &["server-keys", "create", "--app", "app", "--name", "backend"],
    "",
  )
  .fails(1, "already exists");
  db.run(
    &[
      "server-keys",
      "create",
      "--app",
      "app",
      "--name",
      "bad name",
    ],
    "",
  )
  .fails(2, "API key name");

  let list = db
    .run(&["server-keys", "list", "--app", "app", "--json"], "")
    .json();
  let names: Vec<&str> = list
    .as_array()
    .unwrap()
    .iter()
    .map(|k| k["name"].as_str().unwrap())
    .collect();
  assert_eq!(names, ["backend", "other"]);
  assert_eq!(list[0]["id"], id);
  assert_eq!(list[0]["disabled"], false);
  let owner = list[0]["userId"].as_str().unwrap().to_string();
  assert_eq!(db.user("app", &owner).unwrap()["type"], "server");
  // The secret is shown once: never in a listing.
  let text = db
    .run(&["server-keys", "list", "--app", "app"], "")
    .ok()
    .stdout
    .clone();
  assert!(!text.contains(key) && !list.to_string().contains(key));
  assert!(text.starts_with("ID  "), "{text}");

  let out = db.run(&["server-keys", "delete", "--app", "app", id, "--json"], "");
  assert_eq!(out.json(), json!({"id": id, "deleted": true}));
  // Its server user went with it.
  assert!(db.user("app", &owner).is_none());
  db.run(&["server-keys", "delete", "--app", "app", id], "")
    .fails(3, "no server API key");
  db.run(&["server-keys", "delete", "--app", "app", "not-an-id"], "")
    .fails(3, "no server API key");
  // A user's id is not a server key's.
  let user = db.add_user("app", "ada@example.com", "password1");
  db.run(&["server-keys", "delete", "--app", "app", &user], "")
    .fails(3, "no server API key");
}

#[test]
fn unknown_app_is_not_created() {
  let db = db();
  db.run(&["apps", "add", "real"], "").ok();
  for cmd in [
    &["users", "list"][..],
    &["server-keys", "list"],
    &["users", "disable", "0123456789abcdef01234567"],
    &["sessions", "revoke", "0123456789abcdef01234567"],
    &["server-keys", "create", "--name", "k"],
  ] {
    let mut args = cmd.to_vec();
    args.extend(["--app", "ghost"]);
    db.run(&args, "").fails(3, "no app 'ghost'");
  }
  db.run(
    &[
      "users",
      "add",
      "--app",
      "ghost",
      "--email",
      "a@x",
      "--password-stdin",
    ],
    "password1",
  )
  .fails(3, "no app 'ghost'");
  let list = db.run(&["apps", "list", "--json"], "").json();
  assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
}

#[test]
fn missing_sqlite_file_is_not_created() {
  let dir = std::env::temp_dir().join(format!("realm-auth-admin-missing-{}", unique()));
  let path = dir.join("nope.db");
  let p = path.display().to_string();
  run(&["users", "list", "--app", "a", "--sqlite", &p], "").fails(3, "no SQLite database");
  run(&["apps", "list", "--sqlite", &p], "").fails(3, "no SQLite database");
  assert!(!dir.exists());
}

#[test]
fn bad_usage_exits_2() {
  let db = db();
  db.run(&["apps", "add", "app"], "").ok();
  let cases: &[(&[&str], &str)] = &[
    (&["frobnicate"], "unknown command 'frobnicate'"),
    (&["users"], "missing command"),
    (
      &["users", "frob", "--app", "app"],
      "unknown command 'users frob'",
    ),
    (
      &["users", "list", "--app", "app", "--bogus"],
      "unknown option '--bogus'",
    ),
    (
      &["users", "list", "--app", "app", "extra"],
      "unexpected argument 'extra'",
    ),
    (&["users", "list", "--app"], "--app needs a value"),
    (
      &["users", "list", "--app", "a", "--app", "b"],
      "--app given twice",
    ),
    (&["users", "disable", "--app", "app"], "missing <user-id>"),
    (&["apps", "add"], "missing <app-id>"),
    (&["apps", "list", "--app", "app"], "unknown option '--app'"),
    (
      &["server-keys", "create", "--app", "app"],
      "--name <n> is required",
    ),
    (
      &["users", "add", "--app", "app", "--password-stdin"],
      "--email <e> is required",
    ),
    (
      &[
        "users",
        "add",
        "--app",
        "app",
        "--email",
        "a@x",
        "--password-stdin",
      ],
      "password must be between 6 and 128",
    ),
    (
      &["users", "list", "--app", "app", "--name", "x"],
      "unknown option '--name'",
    ),
  ];
  for (args, message) in cases {
    db.run(args, "short").fails(2, message);
  }
  // No --app and no config to take it from.
  run(&["users", "list", "--sqlite", "a.db"], "").fails(2, "--app <id> is required");
  // No store at all, two stores, a memory store.
  run(&["apps", "list"], "").fails(2, "admin commands need --sqlite or --postgres");
  run(
    &[
      "apps",
      "list",
      "--sqlite",
      "a.db",
      "--postgres",
      "postgres://x@y/z",
    ],
    "",
  )
  .fails(2, "exclude each other");
  let memory = db.dir.join("memory.json");
  std::fs::write(&memory, r#"{"store":{"kind":"memory"},"appId":"app"}"#).unwrap();
  run(&["users", "list", "--config", memory.to_str().unwrap()], "")
    .fails(2, "admin commands need --sqlite or --postgres");
  run(&["users", "list", "--config", "/nonexistent/c.json"], "").fails(2, "--config: cannot read");
  // Usage errors show the command's synopsis.
  let out = db.run(&["users", "disable", "--app", "app"], "");
  assert!(
    out
      .stderr
      .contains("Usage:\n  realm-auth-server users disable --app <id> <user-id>"),
    "{out:?}"
  );
}

#[test]
fn password_never_from_argv() {
  let db = db();
  db.run(&["apps", "add", "app"], "").ok();
  for args in [
    &[
      "users",
      "add",
      "--app",
      "app",
      "--email",
      "a@x",
      "--password",
      "s3cret-pw",
    ][..],
    &[
      "users",
      "add",
      "--app",
      "app",
      "--email",
      "a@x",
      "--password=s3cret-pw",
    ],
  ] {
    let out = db.run(args, "");
    out.fails(2, "--password is refused");
    assert!(!out.stderr.contains("s3cret-pw"), "{out:?}");
  }
  // Without --password-stdin the password comes from the environment, which these in-process
  // tests leave alone (the binary test sets it); none there is bad usage.
  if std::env::var_os(admin::PASSWORD_ENV).is_none() {
    db.run(&["users", "add", "--app", "app", "--email", "a@x"], "")
      .fails(2, "no password");
  }
  let list = db
    .run(&["users", "list", "--app", "app", "--json"], "")
    .json();
  assert_eq!(list, json!([]));
}

#[test]
fn help_and_json_errors() {
  let out = run(&["users", "--help"], "");
  out.ok();
  for c in [
    "apps add <app-id>",
    "users add --app <id> --email <e>",
    "server-keys delete",
    "sessions revoke",
    "Exit codes: 0 ok, 1 failure",
    "3 not found",
  ] {
    assert!(out.stdout.contains(c), "help lacks {c:?}: {}", out.stdout);
  }
  assert_eq!(out.stdout, admin::usage());
  let out = run(&["server-keys", "create", "-h"], "");
  assert!(
    out
      .ok()
      .stdout
      .starts_with("Usage: realm-auth-server server-keys create --app <id> --name <n>"),
    "{out:?}"
  );
  // With --json, a failure is one JSON object on standard error.
  let out = run(&["users", "list", "--json"], "");
  assert_eq!(out.code, 2);
  let err: Value = serde_json::from_str(out.stderr.trim()).unwrap();
  assert!(
    err["message"]
      .as_str()
      .unwrap()
      .contains("admin commands need"),
    "{err}"
  );
}

#[test]
fn config_file_names_store_and_default_app() {
  let dir = std::env::temp_dir().join(format!("realm-auth-admin-config-{}", unique()));
  std::fs::create_dir_all(&dir).unwrap();
  let config = dir.join("server.json");
  let body = json!({
    "appId": "from-config",
    "passwordIterations": 7,
    "store": {"kind": "sqlite", "path": dir.join("s.db")},
  });
  std::fs::write(&config, body.to_string()).unwrap();
  let c = config.to_str().unwrap();
  run(&["apps", "add", "from-config", "--config", c], "").ok();
  let out = run(
    &[
      "users",
      "add",
      "--email",
      "a@x",
      "--password-stdin",
      "--config",
      c,
      "--json",
    ],
    "password1\n",
  );
  let id = out.json()["id"].as_str().unwrap().to_string();
  let list = run(&["users", "list", "--config", c, "--json"], "").json();
  assert_eq!(list[0]["id"], id);
  // --app still wins over the config's.
  run(&["users", "list", "--config", c, "--app", "other"], "").fails(3, "no app 'other'");
  // A legacy file (passwordIterations, no passwordHash) means PBKDF2, as for `serve`.
  assert_eq!(stored_hash(&dir.join("s.db"), "a@x"), (false, 7));
  let _ = std::fs::remove_dir_all(dir);
}

/// Whether an account's stored hash is an argon2id PHC string, and its PBKDF2 iterations.
fn stored_hash(sqlite: &std::path::Path, email: &str) -> (bool, i64) {
  rusqlite::Connection::open(sqlite)
    .unwrap()
    .query_row(
      "SELECT hash, iterations FROM email_accounts WHERE email = ?1",
      [email],
      |r| Ok((r.get::<_, String>(0)?.starts_with("$argon2id$"), r.get(1)?)),
    )
    .unwrap()
}

/// `users add` hashes as `serve` would: --password-iterations, else the config's passwordHash
/// (argon2id by default); a config `serve` would refuse is bad usage (exit 2), not a panic.
#[test]
fn users_add_hashes_as_serve_would() {
  let dir = std::env::temp_dir().join(format!("realm-auth-admin-hash-{}", unique()));
  std::fs::create_dir_all(&dir).unwrap();
  let db = dir.join("s.db");
  let write = |name: &str, extra: Value| {
    let mut body = json!({"appId": "app", "store": {"kind": "sqlite", "path": db}});
    body
      .as_object_mut()
      .unwrap()
      .extend(extra.as_object().unwrap().clone());
    let path = dir.join(name);
    std::fs::write(&path, body.to_string()).unwrap();
    path.display().to_string()
  };
  let plain = write("plain.json", json!({}));
  run(&["apps", "add", "app", "--config", &plain], "").ok();
  let add = |config: &str, email: &str, extra: &[&str]| {
    let mut args = vec![
      "users",
      "add",
      "--email",
      email,
      "--password-stdin",
      "--config",
      config,
    ];
    args.extend_from_slice(extra);
    run(&args, "password1\n")
  };
  add(&plain, "a@x", &["--password-iterations", "3"]).ok();
  assert_eq!(stored_hash(&db, "a@x"), (false, 3));
  add(&plain, "b@x", &[]).ok();
  assert_eq!(stored_hash(&db, "b@x"), (true, 0));
  let small = write(
    "small.json",
    json!({"passwordHash": {"algorithm": "argon2id", "memoryKib": 64, "iterations": 1}}),
  );
  add(&small, "c@x", &[]).ok();
  let phc: String = rusqlite::Connection::open(&db)
    .unwrap()
    .query_row(
      "SELECT hash FROM email_accounts WHERE email = 'c@x'",
      [],
      |r| r.get(0),
    )
    .unwrap();
  assert!(phc.starts_with("$argon2id$v=19$m=64,t=1,p=1$"), "{phc}");
  // What serve refuses at start, users add refuses too.
  let bad_argon = write(
    "bad-argon.json",
    json!({"passwordHash": {"algorithm": "argon2id", "memoryKib": 1}}),
  );
  add(&bad_argon, "d@x", &[]).fails(2, "invalid argon2id parameters");
  let unknown = write("unknown.json", json!({"passwordIteration": 7}));
  add(&unknown, "d@x", &[]).fails(2, "unknown setting 'passwordIteration'");
  let emulator = write("emulator.json", json!({"controlApi": true}));
  run(&["users", "list", "--config", &emulator], "").fails(2, "emulator setting");
  let list = run(&["users", "list", "--config", &plain, "--json"], "").json();
  assert_eq!(list.as_array().unwrap().len(), 3);
  let _ = std::fs::remove_dir_all(dir);
}

/// The binary dispatches admin commands, reads `REALM_AUTH_PASSWORD`, and exits with the code.
#[test]
fn binary_runs_admin_commands() {
  let db = db();
  let bin = env!("CARGO_BIN_EXE_realm-auth-server");
  let cmd = |args: &[&str], password: Option<&str>| {
    let mut c = std::process::Command::new(bin);
    c.args(args).args(&db.flags).env_remove(admin::PASSWORD_ENV);
    if let Some(p) = password {
      c.env(admin::PASSWORD_ENV, p);
    }
    c.output().unwrap()
  };
  assert!(cmd(&["apps", "add", "app"], None).status.success());
  let out = cmd(
    &["users", "add", "--app", "app", "--email", "a@x", "--json"],
    Some("password1"),
  );
  assert!(out.status.success(), "{out:?}");
  let id = serde_json::from_slice::<Value>(&out.stdout).unwrap()["id"]
    .as_str()
    .unwrap()
    .to_string();
  let out = cmd(&["users", "add", "--app", "app", "--email", "b@x"], None);
  assert_eq!(out.status.code(), Some(2), "{out:?}");
  let out = cmd(&["users", "disable", "--app", "ghost", &id], None);
  assert_eq!(out.status.code(), Some(3), "{out:?}");
  let out = cmd(&["users", "disable", "--app", "app", &id], None);
  assert!(out.status.success(), "{out:?}");
}

// ---- end to end: a server over the same database ------------------------------------------

async fn server_over(db: &Db) -> Emu {
  start_with(Config {
    store: db.store.clone(),
    custom_token_secret: Some("jwt-secret".into()),
    ..Config::default()
  })
  .await
}

fn now() -> u64 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_secs()
}

/// A login body per provider.
fn email_login(password: &str) -> Value {
  json!({"username": "ada@example.com", "password": password})
}

#[tokio::test]
async fn disabled_users_are_refused_everywhere() {
  let db = db();
  let emu = server_over(&db).await;
  let app = emu.app.clone();
  // A user made by the admin command logs in through the server.
  let ada = db.add_user(&app, "ada@example.com", "password1");
  let s = emu.login("local-userpass", &email_login("password1")).await;
  assert_eq!(s.user_id, ada);
  let key = emu.create_key(&s.refresh, "laptop").await;
  assert_eq!(key.status, 201, "{}", key.text());
  let key = key.json()["key"].as_str().unwrap().to_string();
  let func = emu.login("custom-function", &json!({"id": "fn-1"})).await;
  let token = sign_hs256(b"jwt-secret", &json!({"sub": "ext-1", "exp": now() + 600}));
  let custom = emu.login("custom-token", &json!({"token": token})).await;

  for id in [&ada, &func.user_id, &custom.user_id] {
    db.run(&["users", "disable", "--app", &app, id], "").ok();
  }
  // Every provider refuses, with realm-core's UserDisabled.
  let refusals = [
    ("local-userpass", email_login("password1")),
    ("api-key", json!({"key": key})),
    ("custom-function", json!({"id": "fn-1"})),
    ("custom-token", json!({"token": token})),
  ];
  for (provider, body) in &refusals {
    emu
      .login_raw(provider, body)
      .await
      .assert_error(401, "UserDisabled", "user disabled");
  }
  // A wrong password still says so: the disabled state is not shown to a guesser.
  emu
    .login_raw("local-userpass", &email_login("wrong-password"))
    .await
    .assert_error(401, "InvalidPassword", "unauthorized");
  // Its refresh and access tokens stop working at once.
  emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "UserDisabled", "user disabled");
  emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .assert_error(401, "UserDisabled", "user disabled");
  // Logging out answers as for any ended session (realm-web ignores that one).
  emu
    .api("DELETE", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "failed to find refresh token");
  // Other users are untouched.
  emu.login("anon-user", &json!({})).await;

  // Enabling restores logins, not the ended sessions.
  db.run(&["users", "enable", "--app", &app, &ada], "").ok();
  let again = emu.login("local-userpass", &email_login("password1")).await;
  assert_eq!(again.user_id, ada);
  assert_eq!(
    emu.login("api-key", &json!({"key": key})).await.user_id,
    ada
  );
  emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "failed to find refresh token");
  assert_eq!(
    emu
      .api("POST", "/auth/session", Some(&again.refresh), None)
      .await
      .status,
    201
  );
  emu.emulator.stop().await;
}

/// A disabled user's right password is refused but is not a guess: it neither counts toward the
/// account's lock nor clears the failures counted before.
#[tokio::test]
async fn a_disabled_users_right_password_leaves_the_throttle_count_alone() {
  let db = db();
  let emu = start_with(Config {
    store: db.store.clone(),
    login_throttle: Some(realm_auth_server::LoginThrottleConfig {
      max_failures: 3,
      window_secs: 60,
      max_lock_secs: 1,
      address_max_failures: 0,
      ..Default::default()
    }),
    ..Config::default()
  })
  .await;
  let app = emu.app.clone();
  // A cheap hash: the lock the third failure sets lasts 1 s from before its password check,
  // and a debug build's default argon2id takes a good part of that on a busy machine.
  let ada = db.add_user_with(
    &app,
    "ada@example.com",
    "password1",
    &["--password-iterations", "1"],
  );
  let bad = email_login("wrong-password");
  let wrong = || emu.login_raw("local-userpass", &bad);
  for _ in 0..2 {
    wrong().await.assert_error(401, "InvalidPassword", "");
  }
  db.run(&["users", "disable", "--app", &app, &ada], "").ok();
  for _ in 0..3 {
    emu
      .login_raw("local-userpass", &email_login("password1"))
      .await
      .assert_error(401, "UserDisabled", "user disabled");
  }
  db.run(&["users", "enable", "--app", &app, &ada], "").ok();
  // Still two failures counted: one more locks.
  wrong().await.assert_error(401, "InvalidPassword", "");
  let locked = emu
    .login_raw("local-userpass", &email_login("password1"))
    .await;
  assert_eq!(locked.status, 429, "{}", locked.text());
  emu.emulator.stop().await;
}

#[tokio::test]
async fn revoke_and_server_keys_reach_the_server() {
  let db = db();
  let emu = server_over(&db).await;
  let app = emu.app.clone();
  let s = emu.new_user("ada@example.com").await;
  db.run(&["sessions", "revoke", "--app", &app, &s.user_id], "")
    .ok();
  emu
    .api("POST", "/auth/session", Some(&s.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "failed to find refresh token");
  emu
    .api("GET", "/auth/profile", Some(&s.access), None)
    .await
    .assert_error(401, "InvalidSession", "session ended");
  // The user itself is fine.
  emu.login_email("ada@example.com", "password1").await;

  let created = db
    .run(
      &[
        "server-keys",
        "create",
        "--app",
        &app,
        "--name",
        "backend",
        "--json",
      ],
      "",
    )
    .json();
  let key = created["key"].as_str().unwrap();
  let r = emu
    .app_api(
      "POST",
      "/auth/providers/api-key/login",
      None,
      Some(&json!({"key": key}).to_string()),
    )
    .await;
  assert_eq!(r.status, 200, "{}", r.text());
  let server = session_of(&r);
  let profile = emu
    .api("GET", "/auth/profile", Some(&server.access), None)
    .await;
  assert_eq!(profile.json()["type"], "server");
  let id = created["id"].as_str().unwrap();
  db.run(&["server-keys", "delete", "--app", &app, id], "")
    .ok();
  emu
    .login_raw("api-key", &json!({"key": key}))
    .await
    .assert_error(401, "AuthError", "invalid API key");
  emu
    .api("POST", "/auth/session", Some(&server.refresh), None)
    .await
    .assert_error(401, "InvalidSession", "failed to find refresh token");
  emu.emulator.stop().await;
}
