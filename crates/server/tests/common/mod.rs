//! Test helpers: start an emulator on port 0 and talk raw HTTP/1.1 to it (a raw client sees
//! exactly what the server sends, which fault tests need).

#![allow(dead_code)]

use std::time::Duration;

use base64::Engine;
use realm_auth_server::{Config, Emulator, StoreConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

pub const BASE: &str = "/api/client/v2.0";

/// A parsed response.
#[derive(Debug, Clone)]
pub struct Resp {
  pub status: u16,
  pub headers: Vec<(String, String)>,
  pub body: Vec<u8>,
}

impl Resp {
  pub fn header(&self, name: &str) -> Option<&str> {
    self
      .headers
      .iter()
      .find(|(k, _)| k.eq_ignore_ascii_case(name))
      .map(|(_, v)| v.as_str())
  }
  pub fn json(&self) -> Value {
    serde_json::from_slice(&self.body).unwrap_or_else(|e| {
      panic!(
        "body is not JSON ({e}): {:?}",
        String::from_utf8_lossy(&self.body)
      )
    })
  }
  pub fn text(&self) -> String {
    String::from_utf8_lossy(&self.body).into_owned()
  }
  /// Asserts an App Services JSON error.
  #[track_caller]
  pub fn assert_error(&self, status: u16, code: &str, message_contains: &str) {
    assert_eq!(self.status, status, "status; body {}", self.text());
    assert_eq!(self.header("content-type"), Some("application/json"));
    let v = self.json();
    assert_eq!(v["error_code"], code, "body {v}");
    let msg = v["error"].as_str().unwrap_or_default();
    assert!(
      msg.contains(message_contains),
      "error {msg:?} lacks {message_contains:?}"
    );
    assert!(
      v["link"]
        .as_str()
        .unwrap_or_default()
        .contains("/_emulator/logs?co_id="),
      "link missing: {v}"
    );
  }
  /// Asserts a status with an empty body and no content type.
  #[track_caller]
  pub fn assert_empty(&self, status: u16) {
    assert_eq!(self.status, status, "body {}", self.text());
    assert!(self.body.is_empty(), "unexpected body {}", self.text());
    assert_eq!(self.header("content-type"), None);
  }
}

/// Parses a complete raw response (the server closed the connection after it).
pub fn parse_response(raw: &[u8]) -> Resp {
  let split = raw
    .windows(4)
    .position(|w| w == b"\r\n\r\n")
    .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(raw)));
  let head = std::str::from_utf8(&raw[..split]).unwrap();
  let mut lines = head.split("\r\n");
  let status = lines
    .next()
    .unwrap()
    .split(' ')
    .nth(1)
    .unwrap()
    .parse()
    .unwrap();
  let headers = lines
    .map(|l| {
      let (k, v) = l.split_once(':').unwrap();
      (k.trim().to_string(), v.trim().to_string())
    })
    .collect();
  Resp {
    status,
    headers,
    body: raw[split + 4..].to_vec(),
  }
}

/// Sends raw bytes and reads until the server closes (bounded by a timeout).
pub async fn raw_exchange(port: u16, request: &[u8]) -> std::io::Result<Vec<u8>> {
  let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
  stream.write_all(request).await?;
  let mut out = Vec::new();
  tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut out))
    .await
    .map_err(|_| std::io::Error::other("timed out"))??;
  Ok(out)
}

/// Builds a request with `Connection: close`.
pub fn build_request(
  method: &str,
  path: &str,
  headers: &[(&str, &str)],
  body: Option<&[u8]>,
) -> Vec<u8> {
  let mut req = format!("{method} {path} HTTP/1.1\r\nConnection: close\r\n");
  if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
    req.push_str("Host: 127.0.0.1\r\n");
  }
  for (k, v) in headers {
    req.push_str(&format!("{k}: {v}\r\n"));
  }
  if let Some(b) = body {
    req.push_str(&format!("Content-Length: {}\r\n", b.len()));
  }
  req.push_str("\r\n");
  let mut bytes = req.into_bytes();
  if let Some(b) = body {
    bytes.extend_from_slice(b);
  }
  bytes
}

/// A logged-in session.
#[derive(Debug, Clone)]
pub struct Session {
  pub user_id: String,
  pub access: String,
  pub refresh: String,
  pub device_id: String,
}

/// Test client bound to one emulator.
pub struct Emu {
  pub emulator: Emulator,
  pub port: u16,
  pub app: String,
  /// The control token, sent with every `/_emulator` request [`Emu::send`] makes.
  pub token: String,
  /// The SQLite store's folder, removed with the test client.
  store_dir: Option<std::path::PathBuf>,
}

impl Drop for Emu {
  fn drop(&mut self) {
    if let Some(dir) = &self.store_dir {
      let _ = std::fs::remove_dir_all(dir);
    }
  }
}

/// Whether the PostgreSQL tests can run here: `REALM_AUTH_TEST_PG_URL` is set (it must be with
/// `REALM_AUTH_TEST_STORE=postgres`).
pub fn postgres_available() -> bool {
  if std::env::var("REALM_AUTH_TEST_PG_URL").is_ok() {
    return true;
  }
  assert_ne!(
    std::env::var("REALM_AUTH_TEST_STORE").as_deref(),
    Ok("postgres"),
    "REALM_AUTH_TEST_PG_URL is required with REALM_AUTH_TEST_STORE=postgres"
  );
  eprintln!("skipped: REALM_AUTH_TEST_PG_URL is not set");
  false
}

/// Removes a SQLite store's folder when dropped.
pub struct Cleanup(pub StoreConfig);

impl Drop for Cleanup {
  fn drop(&mut self) {
    if let StoreConfig::Sqlite { path } = &self.0 {
      let _ = std::fs::remove_dir_all(path.parent().unwrap());
    }
  }
}

pub async fn start() -> Emu {
  start_with(Config::default()).await
}

/// The store the rule tests run on: `REALM_AUTH_TEST_STORE=memory|sqlite|postgres` (default
/// memory; postgres needs `REALM_AUTH_TEST_PG_URL`). Each server gets a fresh database (a
/// temp file, or its own PostgreSQL schema), so tests run in parallel. A config that names
/// its own store or a data file keeps it.
pub fn test_store() -> StoreConfig {
  fresh_store(&std::env::var("REALM_AUTH_TEST_STORE").unwrap_or_default())
}

/// A fresh, empty store of a kind (`memory`, `sqlite`, `postgres`).
pub fn fresh_store(kind: &str) -> StoreConfig {
  let unique = format!(
    "{}_{}",
    std::process::id(),
    NEXT_STORE.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
  );
  match kind {
    "" | "memory" => StoreConfig::Memory,
    "sqlite" => {
      let dir = std::env::temp_dir().join(format!("realm-auth-sqlite-{unique}"));
      std::fs::create_dir_all(&dir).unwrap();
      StoreConfig::Sqlite {
        path: dir.join("store.db"),
      }
    }
    "postgres" => StoreConfig::Postgres {
      url: std::env::var("REALM_AUTH_TEST_PG_URL")
        .expect("REALM_AUTH_TEST_PG_URL (eval \"$(scripts/pg-test-cluster.sh start)\")"),
      schema: Some(format!("t_{unique}_{}", now_nanos())),
    },
    other => panic!("REALM_AUTH_TEST_STORE={other}: want memory, sqlite or postgres"),
  }
}

static NEXT_STORE: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

fn now_nanos() -> u128 {
  std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_nanos()
}

pub async fn start_with(mut config: Config) -> Emu {
  let mut store_dir = None;
  if config.store == StoreConfig::Memory && config.data_file.is_none() {
    config.store = test_store();
    if let StoreConfig::Sqlite { path } = &config.store {
      store_dir = path.parent().map(|p| p.to_path_buf());
    }
  }
  let emulator = Emulator::start(config).await.expect("emulator starts");
  let port = emulator.port();
  let app = emulator.app_id().to_string();
  let token = emulator.control_token().to_string();
  Emu {
    emulator,
    port,
    app,
    token,
    store_dir,
  }
}

impl Emu {
  /// Any request; `auth` is the bearer token (for control routes, the control token when
  /// `None`).
  pub async fn send(
    &self,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
  ) -> Resp {
    let bearer;
    let host = format!("127.0.0.1:{}", self.port);
    let mut headers = vec![("Host", host.as_str()), ("Accept", "application/json")];
    let control = path
      .starts_with("/_emulator")
      .then_some(self.token.as_str());
    if let Some(token) = auth.or(control) {
      bearer = format!("Bearer {token}");
      headers.push(("Authorization", bearer.as_str()));
    }
    if body.is_some() {
      headers.push(("Content-Type", "application/json"));
    }
    let req = build_request(method, path, &headers, body.map(str::as_bytes));
    parse_response(&raw_exchange(self.port, &req).await.expect("exchange"))
  }

  /// A client-API request (path relative to /api/client/v2.0).
  pub async fn api(
    &self,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
  ) -> Resp {
    self
      .send(method, &format!("{BASE}{path}"), auth, body)
      .await
  }

  /// An app-scoped client-API request.
  pub async fn app_api(
    &self,
    method: &str,
    path: &str,
    auth: Option<&str>,
    body: Option<&str>,
  ) -> Resp {
    self
      .send(
        method,
        &format!("{BASE}/app/{}{path}", self.app),
        auth,
        body,
      )
      .await
  }

  pub async fn login_raw(&self, provider: &str, body: &Value) -> Resp {
    self
      .app_api(
        "POST",
        &format!("/auth/providers/{provider}/login"),
        None,
        Some(&body.to_string()),
      )
      .await
  }

  pub async fn login(&self, provider: &str, body: &Value) -> Session {
    let r = self.login_raw(provider, body).await;
    assert_eq!(r.status, 200, "login failed: {}", r.text());
    session_of(&r)
  }

  pub async fn register(&self, email: &str, password: &str) -> Resp {
    self
      .app_api(
        "POST",
        "/auth/providers/local-userpass/register",
        None,
        Some(&json!({"email": email, "password": password}).to_string()),
      )
      .await
  }

  pub async fn login_email(&self, email: &str, password: &str) -> Session {
    self
      .login(
        "local-userpass",
        &json!({"provider": "local-userpass", "username": email, "password": password}),
      )
      .await
  }

  /// Registers and logs in a fresh email user.
  pub async fn new_user(&self, email: &str) -> Session {
    assert_eq!(self.register(email, "password1").await.status, 201);
    self.login_email(email, "password1").await
  }

  pub async fn create_key(&self, refresh: &str, name: &str) -> Resp {
    self
      .api(
        "POST",
        "/auth/api_keys",
        Some(refresh),
        Some(&json!({"name": name}).to_string()),
      )
      .await
  }
}

pub fn session_of(r: &Resp) -> Session {
  let v = r.json();
  Session {
    user_id: v["user_id"].as_str().unwrap().to_string(),
    access: v["access_token"].as_str().unwrap().to_string(),
    refresh: v["refresh_token"].as_str().unwrap().to_string(),
    device_id: v["device_id"].as_str().unwrap().to_string(),
  }
}

/// The payload of a JWT.
pub fn jwt_payload(token: &str) -> Value {
  let part = token.split('.').nth(1).expect("three parts");
  let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
    .decode(part)
    .expect("base64url payload");
  serde_json::from_slice(&bytes).expect("JSON payload")
}

pub fn is_object_id(s: &str) -> bool {
  s.len() == 24
    && s
      .bytes()
      .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A child process killed (and reaped) when dropped, so that a failing test leaves no server
/// behind.
pub struct Reaped(pub std::process::Child);

impl std::ops::Deref for Reaped {
  type Target = std::process::Child;
  fn deref(&self) -> &std::process::Child {
    &self.0
  }
}

impl std::ops::DerefMut for Reaped {
  fn deref_mut(&mut self) -> &mut std::process::Child {
    &mut self.0
  }
}

impl Drop for Reaped {
  fn drop(&mut self) {
    if let Ok(None) = self.0.try_wait() {
      let _ = self.0.kill();
      let _ = self.0.wait();
    }
  }
}

/// SIGTERM to `child`, then waits for it to exit (panics after `within`); its exit status.
pub fn sigterm_and_wait(
  child: &mut std::process::Child,
  within: Duration,
) -> std::process::ExitStatus {
  let kill = std::process::Command::new("kill")
    .args(["-TERM", &child.id().to_string()])
    .status()
    .expect("kill runs");
  assert!(kill.success(), "kill -TERM failed");
  let deadline = std::time::Instant::now() + within;
  loop {
    if let Some(status) = child.try_wait().expect("try_wait") {
      return status;
    }
    assert!(
      std::time::Instant::now() < deadline,
      "the process did not exit within {within:?} of SIGTERM"
    );
    std::thread::sleep(Duration::from_millis(20));
  }
}

/// One request to `port` on a connection of its own, with a bearer token and a JSON body.
pub async fn call(
  port: u16,
  method: &str,
  path: &str,
  auth: Option<&str>,
  body: Option<Value>,
) -> Resp {
  let bearer = auth.map(|t| format!("Bearer {t}"));
  let mut headers = vec![("Content-Type", "application/json")];
  if let Some(b) = &bearer {
    headers.push(("Authorization", b.as_str()));
  }
  let body = body.map(|b| b.to_string());
  let req = build_request(method, path, &headers, body.as_deref().map(str::as_bytes));
  parse_response(&raw_exchange(port, &req).await.expect("exchange"))
}

/// Two servers on one store (emulators in stores.rs, `serve` processes in serve_processes.rs)
/// serving `app` on ports `a` and `b`: a key disabled through one is refused at once by both,
/// and one enabled through the other logs in again.
pub async fn disabled_key_scenario(a: u16, b: u16, app: &str) {
  let provider = |p: &str| format!("{BASE}/app/{app}/auth/providers/{p}");
  let credentials = json!({"email": "disable@example.com", "password": "password1"});
  let r = call(
    a,
    "POST",
    &provider("local-userpass/register"),
    None,
    Some(credentials),
  )
  .await;
  assert_eq!(r.status, 201, "register: {}", r.text());
  let login = json!({"username": "disable@example.com", "password": "password1"});
  let r = call(
    a,
    "POST",
    &provider("local-userpass/login"),
    None,
    Some(login),
  )
  .await;
  assert_eq!(r.status, 200, "login: {}", r.text());
  let s = session_of(&r);
  let keys = format!("{BASE}/auth/api_keys");
  let r = call(
    a,
    "POST",
    &keys,
    Some(&s.refresh),
    Some(json!({"name": "k"})),
  )
  .await;
  assert_eq!(r.status, 201, "{}", r.text());
  let key = r.json();
  let (id, secret) = (key["_id"].as_str().unwrap(), key["key"].as_str().unwrap());
  let key_path = provider("api-key/login");
  let key_login = |port| call(port, "POST", &key_path, None, Some(json!({"key": secret})));
  let r = key_login(b).await;
  assert_eq!(
    (r.status, r.json()["user_id"].clone()),
    (200, json!(s.user_id)),
    "{}",
    r.text()
  );

  let r = call(
    a,
    "PUT",
    &format!("{keys}/{id}/disable"),
    Some(&s.refresh),
    None,
  )
  .await;
  assert_eq!(r.status, 204, "{}", r.text());
  for port in [b, a] {
    let r = key_login(port).await;
    assert_eq!(
      (r.status, r.json()["error_code"].clone()),
      (401, json!("AuthError")),
      "{}",
      r.text()
    );
  }
  let listed = call(b, "GET", &keys, Some(&s.refresh), None).await.json();
  assert_eq!(listed[0]["disabled"], true, "{listed}");

  // And the other way round.
  let r = call(
    b,
    "PUT",
    &format!("{keys}/{id}/enable"),
    Some(&s.refresh),
    None,
  )
  .await;
  assert_eq!(r.status, 204, "{}", r.text());
  assert_eq!(key_login(a).await.status, 200);
}

/// Starts `realm-auth-server serve --port 0 --json` with `args` and reads its listening line:
/// the process (killed when dropped), its port, and its stdout after that line.
pub fn spawn_serve(
  args: &[&std::ffi::OsStr],
) -> (Reaped, u16, std::io::BufReader<std::process::ChildStdout>) {
  use std::io::BufRead;
  let mut child = Reaped(
    std::process::Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
      .args(["serve", "--port", "0", "--json"])
      .args(args)
      .stdout(std::process::Stdio::piped())
      .stderr(std::process::Stdio::null())
      .spawn()
      .expect("serve starts"),
  );
  let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
  let mut line = String::new();
  stdout.read_line(&mut line).unwrap();
  let v: Value = serde_json::from_str(line.trim())
    .unwrap_or_else(|e| panic!("listening line is not JSON ({e}): {line:?}"));
  let port = v["baseUrl"]
    .as_str()
    .and_then(|u| u.strip_prefix("http://127.0.0.1:"))
    .and_then(|p| p.parse().ok())
    .unwrap_or_else(|| panic!("{line:?}"));
  (child, port, stdout)
}
