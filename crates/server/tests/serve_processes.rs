//! `realm-auth-server serve` as real processes: two processes on one store agree at once on
//! disabled keys, ended sessions and the per-user key limit; a process killed with SIGKILL in
//! the middle of 2,000 concurrent key creates loses none of the creates it answered, leaves the
//! limit and the unique names intact, and its store passes an integrity check; and when one of
//! two processes sharing a store and a storm is killed, the other answers all of its creates.
//! SQLite always; PostgreSQL when `REALM_AUTH_TEST_PG_URL` is set
//! (`eval "$(scripts/pg-test-cluster.sh start)"`), and then required when
//! `REALM_AUTH_TEST_STORE=postgres`.
//!
//! Run with `-- --nocapture` to see the crash tests' figures.

mod common;

use std::collections::{HashMap, HashSet};
use std::io::BufRead;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::StoreConfig;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

const APP: &str = "serve-app";
/// Per-user key limit (the server's default, passed explicitly so the test says it).
const LIMIT: usize = 20;

// ---- the harness ----------------------------------------------------------------------------

/// A fresh store and the `serve` arguments that select it: `--sqlite <file>`, or a config file
/// (`{"store": {"kind": "postgres", "url", "schema"}}`: the schema has no flag). Removes its
/// folder when dropped.
struct Target {
  store: StoreConfig,
  dir: std::path::PathBuf,
  args: Vec<String>,
}

impl Target {
  fn new(kind: &str) -> Target {
    let store = fresh_store(kind);
    let (dir, args) = match &store {
      StoreConfig::Sqlite { path } => (
        path.parent().unwrap().to_path_buf(),
        vec!["--sqlite".to_string(), path.display().to_string()],
      ),
      StoreConfig::Postgres { schema, .. } => {
        let dir =
          std::env::temp_dir().join(format!("realm-auth-serve-{}", schema.as_deref().unwrap()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("config.json");
        std::fs::write(&file, json!({ "store": store }).to_string()).unwrap();
        (
          dir,
          vec!["--config".to_string(), file.display().to_string()],
        )
      }
      StoreConfig::Memory => unreachable!("serve needs a SQL store"),
    };
    Target { store, dir, args }
  }
}

impl Drop for Target {
  fn drop(&mut self) {
    let _ = std::fs::remove_dir_all(&self.dir);
  }
}

/// A running `realm-auth-server serve` child. Dropping it kills and reaps it.
struct Serve {
  child: Option<Child>,
  port: u16,
}

impl Serve {
  /// Starts `serve` on the target's store, on a free port, and waits for its `--json` line.
  async fn start(target: &Target) -> Serve {
    let args = target.args.clone();
    tokio::task::spawn_blocking(move || Serve::start_blocking(&args))
      .await
      .unwrap()
  }

  fn start_blocking(store_args: &[String]) -> Serve {
    let mut child = Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
      .arg("serve")
      .args(store_args)
      .args(["--port", "0", "--app-id", APP, "--json"])
      .args(["--password-iterations", "1"])
      .args(["--max-api-keys", &LIMIT.to_string()])
      .stdin(Stdio::null())
      .stdout(Stdio::piped())
      .stderr(Stdio::inherit())
      .spawn()
      .expect("serve starts");
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
      let mut line = String::new();
      let _ = std::io::BufReader::new(stdout).read_line(&mut line);
      let _ = tx.send(line);
    });
    let mut serve = Serve {
      child: Some(child),
      port: 0,
    };
    let line = rx
      .recv_timeout(Duration::from_secs(30))
      .expect("serve prints its listening line within 30 s");
    let v: Value = serde_json::from_str(line.trim())
      .unwrap_or_else(|e| panic!("listening line is not JSON ({e}): {line:?}"));
    assert_eq!(v["appIds"], json!([APP]), "{v}");
    let base = v["baseUrl"].as_str().expect("baseUrl");
    serve.port = base
      .strip_prefix("http://127.0.0.1:")
      .and_then(|p| p.parse().ok())
      .unwrap_or_else(|| panic!("baseUrl {base:?}"));
    serve
  }

  /// SIGKILL: the process dies where it stands. Reaped.
  fn sigkill(&mut self) {
    let mut child = self.child.take().expect("running");
    child.kill().expect("SIGKILL");
    child.wait().expect("reaped");
  }

  /// SIGTERM, then waits (at most 20 s) for the graceful exit; returns its status.
  fn sigterm(&mut self) -> ExitStatus {
    // Taken only once it has exited: a panic leaves it to `Drop`, which kills it.
    let status = sigterm_and_wait(
      self.child.as_mut().expect("running"),
      Duration::from_secs(20),
    );
    self.child = None;
    status
  }

  /// SIGTERM and assert the documented exit code 0.
  fn stop(&mut self) {
    let status = self.sigterm();
    assert!(status.success(), "serve exited with {status} after SIGTERM");
  }
}

impl Drop for Serve {
  fn drop(&mut self) {
    if let Some(mut child) = self.child.take() {
      let _ = child.kill();
      let _ = child.wait();
    }
  }
}

// ---- HTTP -----------------------------------------------------------------------------------

/// One request on a new connection (`Connection: close`); panics if there is no answer.
async fn send(port: u16, method: &str, path: &str, auth: Option<&str>, body: Option<&str>) -> Resp {
  let bearer = auth.map(|t| format!("Bearer {t}"));
  let mut headers = vec![("Accept", "application/json")];
  if let Some(b) = &bearer {
    headers.push(("Authorization", b.as_str()));
  }
  if body.is_some() {
    headers.push(("Content-Type", "application/json"));
  }
  let req = build_request(method, path, &headers, body.map(str::as_bytes));
  parse_response(&raw_exchange(port, &req).await.expect("exchange"))
}

fn app_path(path: &str) -> String {
  format!("{BASE}/app/{APP}{path}")
}

async fn register_and_login(port: u16, email: &str) -> Session {
  let body = json!({"email": email, "password": "password1"}).to_string();
  let r = send(
    port,
    "POST",
    &app_path("/auth/providers/local-userpass/register"),
    None,
    Some(&body),
  )
  .await;
  assert_eq!(r.status, 201, "register: {}", r.text());
  login_email(port, email).await
}

async fn login_email(port: u16, email: &str) -> Session {
  let body = json!({"username": email, "password": "password1"}).to_string();
  let r = send(
    port,
    "POST",
    &app_path("/auth/providers/local-userpass/login"),
    None,
    Some(&body),
  )
  .await;
  assert_eq!(r.status, 200, "login: {}", r.text());
  session_of(&r)
}

async fn key_login(port: u16, secret: &str) -> Resp {
  let body = json!({ "key": secret }).to_string();
  send(
    port,
    "POST",
    &app_path("/auth/providers/api-key/login"),
    None,
    Some(&body),
  )
  .await
}

async fn create_key(port: u16, refresh: &str, name: &str) -> Resp {
  let body = json!({ "name": name }).to_string();
  send(
    port,
    "POST",
    &format!("{BASE}/auth/api_keys"),
    Some(refresh),
    Some(&body),
  )
  .await
}

async fn list_keys(port: u16, refresh: &str) -> Resp {
  send(
    port,
    "GET",
    &format!("{BASE}/auth/api_keys"),
    Some(refresh),
    None,
  )
  .await
}

/// Asserts a JSON error (serve's bodies have no log link, unlike the emulator's).
#[track_caller]
fn assert_error(r: &Resp, status: u16, code: &str) {
  assert_eq!(r.status, status, "status; body {}", r.text());
  assert_eq!(r.json()["error_code"], code, "body {}", r.text());
}

/// A keep-alive HTTP/1.1 connection, for the request storm.
struct Conn {
  stream: BufReader<TcpStream>,
}

impl Conn {
  async fn open(port: u16) -> std::io::Result<Conn> {
    let stream = TcpStream::connect(("127.0.0.1", port)).await?;
    stream.set_nodelay(true)?;
    Ok(Conn {
      stream: BufReader::new(stream),
    })
  }

  /// Sends one request and reads its whole answer; any failure (the server died) is an error.
  async fn request(
    &mut self,
    method: &str,
    path: &str,
    auth: &str,
    body: &str,
  ) -> std::io::Result<Resp> {
    let req = format!(
      "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: application/json\r\n\
       Authorization: Bearer {auth}\r\nContent-Type: application/json\r\n\
       Content-Length: {}\r\n\r\n{body}",
      body.len()
    );
    tokio::time::timeout(Duration::from_secs(30), async {
      self.stream.get_mut().write_all(req.as_bytes()).await?;
      let mut head = Vec::new();
      loop {
        let mut line = Vec::new();
        if self.stream.read_until(b'\n', &mut line).await? == 0 {
          return Err(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "closed before the answer",
          ));
        }
        if line == b"\r\n" {
          break;
        }
        head.extend_from_slice(&line);
      }
      head.extend_from_slice(b"\r\n");
      let mut resp = parse_response(&head);
      let len: usize = resp
        .header("content-length")
        .map_or(0, |v| v.parse().expect("content-length"));
      resp.body = vec![0; len];
      self.stream.read_exact(&mut resp.body).await?;
      Ok(resp)
    })
    .await
    .map_err(|_| std::io::Error::other("timed out"))?
  }
}

// ---- two processes on one store ---------------------------------------------------------------

async fn two_processes(kind: &str) -> (Serve, Serve, Target) {
  let target = Target::new(kind);
  let a = Serve::start(&target).await;
  let b = Serve::start(&target).await;
  (a, b, target)
}

async fn disabled_key_refused_at_once_on_the_other(kind: &str) {
  let (mut a, mut b, _target) = two_processes(kind).await;
  disabled_key_scenario(a.port, b.port, APP).await;
  a.stop();
  b.stop();
}

async fn ended_session_refused_at_once_on_the_other(kind: &str) {
  let (mut a, mut b, _target) = two_processes(kind).await;
  let s = register_and_login(a.port, "revoke@example.com").await;
  assert_eq!(list_keys(b.port, &s.refresh).await.status, 200);
  let profile = format!("{BASE}/auth/profile");
  assert_eq!(
    send(b.port, "GET", &profile, Some(&s.access), None)
      .await
      .status,
    200
  );
  let session = format!("{BASE}/auth/session");
  let r = send(a.port, "DELETE", &session, Some(&s.refresh), None).await;
  assert_eq!(r.status, 204, "{}", r.text());
  // B refuses the refresh token (new access token, key list) and the session's access token.
  assert_error(
    &send(b.port, "POST", &session, Some(&s.refresh), None).await,
    401,
    "InvalidSession",
  );
  assert_error(&list_keys(b.port, &s.refresh).await, 401, "InvalidSession");
  assert_error(
    &send(b.port, "GET", &profile, Some(&s.access), None).await,
    401,
    "InvalidSession",
  );
  // Ending through B a session opened through A.
  let t = login_email(a.port, "revoke@example.com").await;
  let r = send(b.port, "DELETE", &session, Some(&t.refresh), None).await;
  assert_eq!(r.status, 204, "{}", r.text());
  assert_error(&list_keys(a.port, &t.refresh).await, 401, "InvalidSession");
  a.stop();
  b.stop();
}

async fn key_limit_holds_across_two_processes(kind: &str) {
  let (mut a, mut b, _target) = two_processes(kind).await;
  let s = register_and_login(a.port, "race@example.com").await;
  // k0..k39, even ones to A and odd ones to B, and k0..k9 once more to the other process.
  let mut plan: Vec<(u16, String)> = (0..40)
    .map(|i| (if i % 2 == 0 { a.port } else { b.port }, format!("k{i}")))
    .collect();
  plan.extend((0..10).map(|i| (if i % 2 == 0 { b.port } else { a.port }, format!("k{i}"))));
  let tasks: Vec<_> = plan
    .into_iter()
    .map(|(port, name)| {
      let refresh = s.refresh.clone();
      tokio::spawn(async move { create_key(port, &refresh, &name).await })
    })
    .collect();
  let mut created: HashMap<String, String> = HashMap::new();
  let (mut limit, mut exists) = (0, 0);
  for task in tasks {
    let r = task.await.unwrap();
    match r.status {
      201 => {
        let v = r.json();
        let name = v["name"].as_str().unwrap().to_string();
        let id = v["_id"].as_str().unwrap().to_string();
        assert!(
          created.insert(name.clone(), id).is_none(),
          "{name} created twice"
        );
      }
      409 => match r.json()["error_code"].as_str().unwrap() {
        "LimitExceeded" => limit += 1,
        "APIKeyAlreadyExists" => exists += 1,
        other => panic!("unexpected 409 {other}: {}", r.text()),
      },
      _ => panic!("unexpected answer {} {}", r.status, r.text()),
    }
  }
  assert_eq!(created.len(), LIMIT, "created {created:?}");
  assert_eq!(created.len() + limit + exists, 50);
  for port in [a.port, b.port] {
    let listed = list_keys(port, &s.refresh).await;
    assert_eq!(listed.status, 200, "{}", listed.text());
    let listed: HashMap<String, String> = listed
      .json()
      .as_array()
      .unwrap()
      .iter()
      .map(|k| {
        (
          k["name"].as_str().unwrap().to_string(),
          k["_id"].as_str().unwrap().to_string(),
        )
      })
      .collect();
    assert_eq!(listed.len(), LIMIT, "duplicate names or a broken limit");
    assert_eq!(listed, created, "the list is not the set of 201 answers");
  }
  a.stop();
  b.stop();
}

#[tokio::test]
async fn sqlite_two_processes_see_a_disabled_key_at_once() {
  disabled_key_refused_at_once_on_the_other("sqlite").await;
}

#[tokio::test]
async fn sqlite_two_processes_see_an_ended_session_at_once() {
  ended_session_refused_at_once_on_the_other("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_key_limit_holds_across_two_processes() {
  key_limit_holds_across_two_processes("sqlite").await;
}

#[tokio::test]
async fn postgres_two_processes_see_a_disabled_key_at_once() {
  if postgres_available() {
    disabled_key_refused_at_once_on_the_other("postgres").await;
  }
}

#[tokio::test]
async fn postgres_two_processes_see_an_ended_session_at_once() {
  if postgres_available() {
    ended_session_refused_at_once_on_the_other("postgres").await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_key_limit_holds_across_two_processes() {
  if postgres_available() {
    key_limit_holds_across_two_processes("postgres").await;
  }
}

// ---- SIGKILL during a storm of key creates ----------------------------------------------------

const USERS: usize = 100;
const CONNECTIONS: usize = 64;
/// The kill comes once this many creates were answered.
const KILL_AFTER: usize = 500;

/// The storm tests take turns: four storms at once on two cores measure the machine's load,
/// not the server. (A tokio mutex: every test has a runtime of its own.)
static STORMS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A create the server answered 2xx.
#[derive(Debug, Clone)]
struct Answered {
  user: usize,
  id: String,
  name: String,
  secret: String,
}

/// Registers and logs in `n` users, 16 at a time.
async fn many_users(port: u16, n: usize) -> Vec<Session> {
  let next = Arc::new(AtomicUsize::new(0));
  let out = Arc::new(Mutex::new(vec![None; n]));
  let workers: Vec<_> = (0..16)
    .map(|_| {
      let (next, out) = (next.clone(), out.clone());
      tokio::spawn(async move {
        loop {
          let i = next.fetch_add(1, Ordering::Relaxed);
          if i >= n {
            break;
          }
          let s = register_and_login(port, &format!("user{i}@example.com")).await;
          out.lock().unwrap()[i] = Some(s);
        }
      })
    })
    .collect();
  for w in workers {
    w.await.unwrap();
  }
  let out = std::mem::take(&mut *out.lock().unwrap());
  out.into_iter().map(Option::unwrap).collect()
}

/// Runs the SQL consistency checks on the store (blocking) and returns the number of user keys.
fn check_store(store: &StoreConfig) -> i64 {
  // Each query counts violations; all must be 0.
  let checks = |t: &dyn Fn(&str) -> String| -> Vec<(&'static str, String)> {
    vec![
      (
        "owners with more than the limit",
        format!(
          "SELECT count(*) FROM (SELECT app_id, owner FROM {} WHERE server = FALSE \
           GROUP BY app_id, owner HAVING count(*) > {LIMIT}) x",
          t("api_keys")
        ),
      ),
      (
        "duplicate (app_id, owner, name)",
        format!(
          "SELECT count(*) FROM (SELECT app_id, owner, name FROM {} \
           GROUP BY app_id, owner, name HAVING count(*) > 1) x",
          t("api_keys")
        ),
      ),
      (
        "keys whose owner is not a user",
        format!(
          "SELECT count(*) FROM {} k LEFT JOIN {} u ON u.app_id = k.app_id AND u.id = k.owner \
           WHERE u.id IS NULL",
          t("api_keys"),
          t("users")
        ),
      ),
      (
        "sessions whose user is not a user",
        format!(
          "SELECT count(*) FROM {} s LEFT JOIN {} u ON u.app_id = s.app_id AND u.id = s.user_id \
           WHERE u.id IS NULL",
          t("sessions"),
          t("users")
        ),
      ),
      (
        "email accounts whose user is not a user",
        format!(
          "SELECT count(*) FROM {} e LEFT JOIN {} u ON u.app_id = e.app_id AND u.id = e.user_id \
           WHERE e.user_id IS NOT NULL AND u.id IS NULL",
          t("email_accounts"),
          t("users")
        ),
      ),
      (
        "rows of an unknown app",
        format!(
          "SELECT count(*) FROM {} k LEFT JOIN {} a ON a.app_id = k.app_id WHERE a.app_id IS NULL",
          t("api_keys"),
          t("apps")
        ),
      ),
    ]
  };
  let count_keys = |t: &dyn Fn(&str) -> String| {
    format!(
      "SELECT count(*) FROM {} WHERE server = FALSE",
      t("api_keys")
    )
  };
  match store {
    StoreConfig::Sqlite { path } => {
      let conn = rusqlite::Connection::open(path).expect("open the SQLite file");
      let integrity: Vec<String> = conn
        .prepare("PRAGMA integrity_check")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
      assert_eq!(integrity, ["ok"], "PRAGMA integrity_check");
      let fk: usize = conn
        .prepare("PRAGMA foreign_key_check")
        .unwrap()
        .query_map([], |_| Ok(()))
        .unwrap()
        .count();
      assert_eq!(fk, 0, "PRAGMA foreign_key_check");
      let t = |name: &str| name.to_string();
      for (what, sql) in checks(&t) {
        let n: i64 = conn.query_row(&sql, [], |r| r.get(0)).unwrap();
        assert_eq!(n, 0, "{what}: {sql}");
      }
      conn.query_row(&count_keys(&t), [], |r| r.get(0)).unwrap()
    }
    StoreConfig::Postgres { url, schema } => {
      let mut client = postgres::Client::connect(url, postgres::NoTls).expect("connect");
      let schema = schema.clone().unwrap_or_else(|| "public".into());
      let t = |name: &str| format!("{schema}.{name}");
      for (what, sql) in checks(&t) {
        let n: i64 = client.query_one(&sql, &[]).unwrap().get(0);
        assert_eq!(n, 0, "{what}: {sql}");
      }
      client.query_one(&count_keys(&t), &[]).unwrap().get(0)
    }
    StoreConfig::Memory => unreachable!(),
  }
}

async fn check_store_async(store: &StoreConfig) -> i64 {
  let store = store.clone();
  tokio::task::spawn_blocking(move || check_store(&store))
    .await
    .unwrap()
}

/// Key creates sent by `connections` keep-alive connections to one server, each taking the next
/// job from a shared list until the list ends or the server is gone.
struct Storm {
  answered: Arc<Mutex<Vec<Answered>>>,
  answered_count: Arc<AtomicUsize>,
  /// Requests cut by the kill (sent, no answer).
  cut: Arc<AtomicUsize>,
  /// Connections refused after the kill.
  refused: Arc<AtomicUsize>,
  workers: Vec<tokio::task::JoinHandle<()>>,
}

/// What a storm saw.
struct Outcome {
  answered: Vec<Answered>,
  cut: usize,
  refused: usize,
}

impl Storm {
  fn start(
    port: u16,
    users: &Arc<Vec<Session>>,
    jobs: Vec<(usize, String)>,
    connections: usize,
  ) -> Storm {
    let jobs = Arc::new(jobs);
    let next = Arc::new(AtomicUsize::new(0));
    let storm = Storm {
      answered: Arc::default(),
      answered_count: Arc::default(),
      cut: Arc::default(),
      refused: Arc::default(),
      workers: Vec::new(),
    };
    let workers = (0..connections)
      .map(|_| {
        let (jobs, next, users) = (jobs.clone(), next.clone(), users.clone());
        let (answered_count, answered) = (storm.answered_count.clone(), storm.answered.clone());
        let (cut, refused) = (storm.cut.clone(), storm.refused.clone());
        tokio::spawn(async move {
          let mut conn = None;
          loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            if i >= jobs.len() {
              break;
            }
            let (user, name) = &jobs[i];
            if conn.is_none() {
              match Conn::open(port).await {
                Ok(c) => conn = Some(c),
                // The server is gone: the rest of this worker's creates are never sent.
                Err(_) => {
                  refused.fetch_add(1, Ordering::Relaxed);
                  break;
                }
              }
            }
            let body = json!({ "name": name }).to_string();
            let path = format!("{BASE}/auth/api_keys");
            let refresh = &users[*user].refresh;
            match conn
              .as_mut()
              .unwrap()
              .request("POST", &path, refresh, &body)
              .await
            {
              Ok(r) => {
                assert_eq!(r.status, 201, "create {name} for user {user}: {}", r.text());
                let v = r.json();
                assert_eq!(v["name"], name.as_str());
                answered.lock().unwrap().push(Answered {
                  user: *user,
                  id: v["_id"].as_str().unwrap().to_string(),
                  name: name.clone(),
                  secret: v["key"].as_str().unwrap().to_string(),
                });
                answered_count.fetch_add(1, Ordering::Relaxed);
                if r
                  .header("connection")
                  .is_some_and(|c| c.eq_ignore_ascii_case("close"))
                {
                  conn = None;
                }
              }
              // In flight at the kill: not answered.
              Err(_) => {
                cut.fetch_add(1, Ordering::Relaxed);
                conn = None;
              }
            }
          }
        })
      })
      .collect();
    Storm { workers, ..storm }
  }

  fn answered(&self) -> usize {
    self.answered_count.load(Ordering::Relaxed)
  }

  /// Waits until `n` creates were answered (at most 60 s).
  async fn wait_for(&self, n: usize) {
    let start = Instant::now();
    while self.answered() < n {
      assert!(
        start.elapsed() < Duration::from_secs(60),
        "only {} creates answered in 60 s",
        self.answered()
      );
      tokio::time::sleep(Duration::from_millis(1)).await;
    }
  }

  async fn finish(self) -> Outcome {
    for w in self.workers {
      w.await.unwrap();
    }
    Outcome {
      answered: std::mem::take(&mut *self.answered.lock().unwrap()),
      cut: self.cut.load(Ordering::Relaxed),
      refused: self.refused.load(Ordering::Relaxed),
    }
  }
}

/// `n` creates, `k0`, `k1`, … per user, user-minor order so that every user is mid-way at a
/// kill.
fn jobs(names: std::ops::Range<usize>) -> Vec<(usize, String)> {
  names
    .flat_map(|k| (0..USERS).map(move |u| (u, format!("k{k}"))))
    .collect()
}

/// Lists every user's keys on `port` and checks them against the answered creates: each is
/// there with its id, no user over the limit, no duplicate name or id, no name nobody asked
/// for. Returns the number of keys listed.
async fn verify_listed(port: u16, users: &[Session], answered: &[Answered]) -> usize {
  let mut by_user: Vec<Vec<&Answered>> = vec![Vec::new(); users.len()];
  for a in answered {
    by_user[a.user].push(a);
  }
  let mut existing = 0;
  let mut conn = Conn::open(port).await.unwrap();
  for (u, s) in users.iter().enumerate() {
    let r = conn
      .request("GET", &format!("{BASE}/auth/api_keys"), &s.refresh, "")
      .await
      .unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    let listed = r.json();
    let listed = listed.as_array().unwrap();
    assert!(listed.len() <= LIMIT, "user {u} has {} keys", listed.len());
    let by_name: HashMap<&str, &str> = listed
      .iter()
      .map(|k| (k["name"].as_str().unwrap(), k["_id"].as_str().unwrap()))
      .collect();
    assert_eq!(by_name.len(), listed.len(), "user {u}: duplicate names");
    let ids: HashSet<&str> = by_name.values().copied().collect();
    assert_eq!(ids.len(), listed.len(), "user {u}: duplicate ids");
    for name in by_name.keys() {
      let n: usize = name.strip_prefix('k').unwrap().parse().unwrap();
      assert!(n < LIMIT, "user {u}: a key {name} nobody asked for");
    }
    for a in &by_user[u] {
      assert_eq!(
        by_name.get(a.name.as_str()).copied(),
        Some(a.id.as_str()),
        "user {u}: the answered create {} ({}) was lost",
        a.name,
        a.id
      );
    }
    existing += listed.len();
  }
  // A sample of the secrets still logs in (the hashes were written with the rows).
  for a in answered.iter().step_by(answered.len() / 10 + 1) {
    let r = key_login(port, &a.secret).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["user_id"], users[a.user].user_id);
  }
  existing
}

async fn answered_creates_survive_sigkill(kind: &str) {
  let _turn = STORMS.lock().await;
  let started = Instant::now();
  let target = Target::new(kind);
  let mut server = Serve::start(&target).await;
  let users = Arc::new(many_users(server.port, USERS).await);
  let setup = started.elapsed();

  // 2,000 creates; SIGKILL once KILL_AFTER were answered.
  let storm_start = Instant::now();
  let storm = Storm::start(server.port, &users, jobs(0..LIMIT), CONNECTIONS);
  storm.wait_for(KILL_AFTER).await;
  let seen_at_kill = storm.answered();
  server.sigkill();
  let kill_time = storm_start.elapsed();
  let Outcome {
    answered,
    cut,
    refused,
  } = storm.finish().await;
  assert!(cut > 0, "the kill cut no request in flight");

  // The store as the crash left it. (On PostgreSQL a COMMIT the dead process sent may still be
  // finishing, so the exact count is checked at the end, with every writer gone.)
  let keys_after_crash = check_store_async(&target.store).await;

  // Restart on the same store: every answered create is there.
  let mut server = Serve::start(&target).await;
  let existing = verify_listed(server.port, &users, &answered).await;
  if kind == "sqlite" {
    assert_eq!(
      existing as i64, keys_after_crash,
      "the file changed after the kill"
    );
  } else {
    assert!(
      existing as i64 >= keys_after_crash,
      "keys vanished after the kill"
    );
  }
  // The limit still holds after the crash: fill user 0 up, then one more is refused.
  let s = &users[0];
  let mut filled = 0;
  for i in 0..LIMIT {
    let r = create_key(server.port, &s.refresh, &format!("k{i}")).await;
    match r.status {
      201 => filled += 1,
      409 => assert_error(&r, 409, "APIKeyAlreadyExists"),
      _ => panic!("{}", r.text()),
    }
  }
  assert_error(
    &create_key(server.port, &s.refresh, "one-too-many").await,
    409,
    "LimitExceeded",
  );
  server.stop();
  assert_eq!(
    check_store_async(&target.store).await,
    (existing + filled) as i64,
    "the store holds other keys than the ones listed"
  );
  eprintln!(
    "{kind}: {USERS} users set up in {setup:.1?}; {} creates over {CONNECTIONS} keep-alive \
     connections; SIGKILL at {kill_time:.1?} after {seen_at_kill} answers seen; {} answered 201, \
     {cut} cut in flight, {refused} connections refused after the kill; after restart \
     {existing} keys exist ({} answered + {} committed but never answered); total {:.1?}",
    USERS * LIMIT,
    answered.len(),
    answered.len(),
    existing - answered.len(),
    started.elapsed()
  );
}

/// Two processes share the store and the storm (k0..k9 through A, k10..k19 through B); A is
/// killed mid-way. B answers every one of its creates (the dead process's locks do not hold it
/// up), and after A's restart both list every answered key.
async fn survivor_keeps_serving_when_the_other_is_killed(kind: &str) {
  let _turn = STORMS.lock().await;
  let started = Instant::now();
  let target = Target::new(kind);
  let mut a = Serve::start(&target).await;
  let mut b = Serve::start(&target).await;
  let users = Arc::new(many_users(b.port, USERS).await);
  let half = LIMIT / 2;
  let storm_a = Storm::start(a.port, &users, jobs(0..half), CONNECTIONS / 2);
  let storm_b = Storm::start(b.port, &users, jobs(half..LIMIT), CONNECTIONS / 2);
  storm_a.wait_for(KILL_AFTER / 2).await;
  let seen_at_kill = storm_a.answered() + storm_b.answered();
  a.sigkill();
  let after_a = storm_a.finish().await;
  assert!(after_a.cut > 0, "the kill cut no request in flight");
  let after_b = storm_b.finish().await;
  assert_eq!(
    (after_b.answered.len(), after_b.cut, after_b.refused),
    (USERS * half, 0, 0),
    "the surviving process failed creates"
  );
  let mut answered = after_a.answered.clone();
  answered.extend(after_b.answered.iter().cloned());
  let existing_b = verify_listed(b.port, &users, &answered).await;
  let mut a = Serve::start(&target).await;
  let existing_a = verify_listed(a.port, &users, &answered).await;
  assert_eq!(existing_a, existing_b);
  a.stop();
  b.stop();
  assert_eq!(check_store_async(&target.store).await, existing_a as i64);
  eprintln!(
    "{kind}, two processes: A killed after {seen_at_kill} answers seen; A answered {} of {} \
     ({} cut in flight), B answered all {}; {existing_a} keys exist ({} committed by A but never \
     answered); total {:.1?}",
    after_a.answered.len(),
    USERS * half,
    after_a.cut,
    after_b.answered.len(),
    existing_a - answered.len(),
    started.elapsed()
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_answered_creates_survive_sigkill() {
  answered_creates_survive_sigkill("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_answered_creates_survive_sigkill() {
  if postgres_available() {
    answered_creates_survive_sigkill("postgres").await;
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sqlite_survivor_keeps_serving_when_the_other_is_killed() {
  survivor_keeps_serving_when_the_other_is_killed("sqlite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_survivor_keeps_serving_when_the_other_is_killed() {
  if postgres_available() {
    survivor_keeps_serving_when_the_other_is_killed("postgres").await;
  }
}

/// SIGTERM with 200 requests in flight (their heads read, their bodies half sent): `serve` stops
/// accepting, lets every one of them finish, answers all 200, then exits with 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_answers_every_request_in_flight() {
  let target = Target::new("sqlite");
  // Room for 200 synchronous commits on a slow disk, and for bodies held open meanwhile.
  let mut args = target.args.clone();
  args.extend(
    [
      "--shutdown-grace-ms",
      "30000",
      "--header-read-timeout-ms",
      "120000",
    ]
    .map(String::from),
  );
  let mut serve = tokio::task::spawn_blocking(move || Serve::start_blocking(&args))
    .await
    .unwrap();
  let port = serve.port;
  let path = format!("{BASE}/app/{APP}/auth/providers/local-userpass/register");
  let mut conns = Vec::new();
  for i in 0..200 {
    let body =
      json!({"email": format!("drain{i}@example.com"), "password": "password1"}).to_string();
    let (first, rest) = body.split_at(body.len() / 2);
    let head = format!(
      "POST {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Type: application/json\r\n\
       Content-Length: {}\r\nConnection: close\r\n\r\n{first}",
      body.len()
    );
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await.unwrap();
    stream.write_all(head.as_bytes()).await.unwrap();
    conns.push((stream, rest.to_string()));
  }
  // Every head has been read (the handlers wait for their bodies) before the signal: a
  // connection whose head is unread counts as idle, and idle ones close at once.
  let deadline = Instant::now() + Duration::from_secs(60);
  loop {
    let metrics = send(port, "GET", "/metrics", None, None).await.text();
    let in_flight: f64 = metrics
      .lines()
      .find_map(|l| l.strip_prefix("realm_auth_requests_in_flight "))
      .expect("the in-flight gauge")
      .parse()
      .unwrap();
    // Less the scrape itself.
    if in_flight - 1.0 >= 200.0 {
      break;
    }
    assert!(Instant::now() < deadline, "requests never all in flight");
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
  let exited = tokio::task::spawn_blocking(move || {
    let status = serve.sigterm();
    (serve, status)
  });
  // A new connection is refused once stopping began (while the listener closes, one may still
  // complete into its backlog, and be reset with it).
  let deadline = Instant::now() + Duration::from_secs(10);
  loop {
    match TcpStream::connect(("127.0.0.1", port)).await {
      Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
      other => {
        assert!(
          Instant::now() < deadline,
          "serve still accepts after SIGTERM: {other:?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
      }
    }
  }
  let mut answers = tokio::task::JoinSet::new();
  for (mut stream, rest) in conns {
    answers.spawn(async move {
      stream.write_all(rest.as_bytes()).await.unwrap();
      let mut raw = Vec::new();
      stream.read_to_end(&mut raw).await.unwrap();
      parse_response(&raw).status
    });
  }
  let statuses = answers.join_all().await;
  assert_eq!(statuses.len(), 200);
  assert!(statuses.iter().all(|s| *s == 201), "{statuses:?}");
  let (_serve, status) = exited.await.unwrap();
  assert!(status.success(), "serve exited with {status}");
  // Every answered write landed.
  let StoreConfig::Sqlite { path } = &target.store else {
    unreachable!()
  };
  let accounts: i64 = rusqlite::Connection::open(path)
    .unwrap()
    .query_row(
      "SELECT count(*) FROM email_accounts WHERE email LIKE 'drain%'",
      [],
      |r| r.get(0),
    )
    .unwrap();
  assert_eq!(accounts, 200);
}
