//! The client crate against scripted HTTP servers on 127.0.0.1: answers the
//! emulator cannot give (redirects, a response lost after the server acted, a
//! slow refresh, a server that always fails). Every connection carries one
//! request and is closed after it.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use realm_auth_client::{
  App, AppConfig, Credentials, CustomFetch, ErrorCode, Fetch, FetchFailure, FetchRequest,
  FetchResponse, KeyId, User, within,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

const APP_ID: &str = "scripted-app";
const API: &str = "/api/client/v2.0";
const KEY_ID: &str = "0123456789abcdef01234567";

/// A request as the server read it.
#[derive(Clone, Debug)]
struct Request {
  method: String,
  path: String,
  headers: HashMap<String, String>,
  /// The request line and headers as they arrived, `\r\n` kept.
  head: String,
  body: Vec<u8>,
}

impl Request {
  fn bearer(&self) -> Option<&str> {
    self.headers.get("authorization")?.strip_prefix("Bearer ")
  }

  fn is(&self, method: &str, path: &str) -> bool {
    self.method == method && self.path == path
  }
}

/// What the server does with a request.
enum Reply {
  /// Answers with this status, extra headers and JSON body.
  Json(u16, Vec<(&'static str, String)>, String),
  /// Closes the connection without an answer (after reading the request:
  /// the server acted, the answer is lost).
  Drop,
  /// Waits, then replies.
  After(Duration, Box<Reply>),
}

fn ok(body: serde_json::Value) -> Reply {
  Reply::Json(200, Vec::new(), body.to_string())
}

fn error(status: u16, code: &str) -> Reply {
  let body = serde_json::json!({ "error": code, "error_code": code });
  Reply::Json(status, Vec::new(), body.to_string())
}

type Handler = dyn Fn(&Request, &str) -> Reply + Send + Sync;

/// A server answering each request with what its handler says. The handler
/// gets the request and the server's own base URL. It stops when dropped.
struct Server {
  addr: SocketAddr,
  seen: Arc<Mutex<Vec<Request>>>,
  accept: tokio::task::JoinHandle<()>,
}

impl Drop for Server {
  fn drop(&mut self) {
    self.accept.abort();
  }
}

impl Server {
  async fn start(handler: impl Fn(&Request, &str) -> Reply + Send + Sync + 'static) -> Server {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let handler: Arc<Handler> = Arc::new(handler);
    let accept = tokio::spawn({
      let seen = seen.clone();
      let base = format!("http://{addr}");
      async move {
        while let Ok((stream, _)) = listener.accept().await {
          let (seen, handler, base) = (seen.clone(), handler.clone(), base.clone());
          tokio::spawn(async move { serve(stream, &seen, &*handler, &base).await });
        }
      }
    });
    Server { addr, seen, accept }
  }

  fn url(&self) -> String {
    format!("http://{}", self.addr)
  }

  fn requests(&self) -> Vec<Request> {
    self.seen.lock().unwrap().clone()
  }

  fn count(&self, method: &str, path: &str) -> usize {
    self
      .requests()
      .iter()
      .filter(|r| r.is(method, path))
      .count()
  }
}

/// Reads one request, records it, replies and closes the connection.
async fn serve(mut stream: TcpStream, seen: &Mutex<Vec<Request>>, handler: &Handler, base: &str) {
  let mut buffer = Vec::new();
  let mut chunk = [0u8; 4096];
  let head_end = loop {
    if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
      break at + 4;
    }
    match stream.read(&mut chunk).await {
      Ok(0) | Err(_) => return,
      Ok(n) => buffer.extend_from_slice(&chunk[..n]),
    }
  };
  let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
  let mut lines = head.trim_end().split("\r\n");
  let mut start = lines.next().unwrap_or("").split(' ');
  let method = start.next().unwrap_or("").to_owned();
  let path = start.next().unwrap_or("").to_owned();
  let headers: HashMap<String, String> = lines
    .filter_map(|l| l.split_once(':'))
    .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
    .collect();
  let length: usize = headers
    .get("content-length")
    .and_then(|v| v.parse().ok())
    .unwrap_or(0);
  let mut body = buffer[head_end..].to_vec();
  while body.len() < length {
    match stream.read(&mut chunk).await {
      Ok(0) | Err(_) => return,
      Ok(n) => body.extend_from_slice(&chunk[..n]),
    }
  }
  let request = Request {
    method,
    path,
    headers,
    head,
    body,
  };
  seen.lock().unwrap().push(request.clone());
  let mut reply = handler(&request, base);
  loop {
    match reply {
      Reply::After(wait, then) => {
        tokio::time::sleep(wait).await;
        reply = *then;
      }
      Reply::Drop => return,
      Reply::Json(status, extra, body) => {
        let mut out = format!(
          "HTTP/1.1 {status} Scripted\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
          body.len()
        );
        for (name, value) in extra {
          out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&body);
        let _ = stream.write_all(out.as_bytes()).await;
        let _ = stream.shutdown().await;
        return;
      }
    }
  }
}

/// A JWT the client accepts (it reads, not verifies, them); `n` tells tokens
/// apart. Fixed times (issued 2023, expiring 2100), so that equal `n` make
/// equal tokens.
fn jwt(n: u32) -> String {
  let claims = serde_json::json!({ "exp": 4_102_444_800u64, "iat": 1_700_000_000u64, "sub": "user-1", "n": n });
  format!(
    "eyJhbGciOiJIUzI1NiJ9.{}.c2ln",
    URL_SAFE_NO_PAD.encode(claims.to_string())
  )
}

fn location_path() -> String {
  format!("{API}/app/{APP_ID}/location")
}

fn login_path() -> String {
  format!("{API}/app/{APP_ID}/auth/providers/local-userpass/login")
}

/// What an App Services server answers to the location, a login (access
/// token `jwt(1)`, refresh token `jwt(100)`) and the profile; `None` otherwise.
fn basics(req: &Request, base: &str) -> Option<Reply> {
  if req.is("GET", &location_path()) {
    return Some(ok(serde_json::json!({
      "deployment_model": "GLOBAL",
      "location": "US-VA",
      "hostname": base,
      "ws_hostname": base.replacen("http", "ws", 1),
    })));
  }
  if req.is("POST", &login_path()) {
    return Some(ok(serde_json::json!({
      "access_token": jwt(1),
      "refresh_token": jwt(100),
      "user_id": "user-1",
      "device_id": "000000000000000000000000",
    })));
  }
  if req.is("GET", &format!("{API}/auth/profile")) {
    return Some(ok(serde_json::json!({
      "data": {},
      "identities": [{ "id": "identity-1", "provider_type": "local-userpass" }],
      "type": "normal",
    })));
  }
  None
}

fn app_at(base_url: &str) -> App {
  App::new(AppConfig::new(APP_ID, Some(base_url), None).unwrap()).unwrap()
}

async fn log_in(app: &App) -> realm_auth_client::Result<User> {
  app
    .log_in(&Credentials::email_password("a@example.com", "password-123").unwrap())
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_login_redirected_to_another_origin_sends_it_nothing() {
  let elsewhere =
    Server::start(|req, base| basics(req, base).unwrap_or(error(404, "NotFound"))).await;
  for status in [307, 308] {
    let target = format!("{}{}", elsewhere.url(), login_path());
    let server = Server::start(move |req, base| {
      if req.is("POST", &login_path()) {
        return Reply::Json(status, vec![("location", target.clone())], String::new());
      }
      basics(req, base).unwrap_or(error(404, "NotFound"))
    })
    .await;
    let err = log_in(&app_at(&server.url())).await.unwrap_err();
    assert_eq!(
      err.code,
      ErrorCode::ClientRedirectError,
      "{status}: {err:?}"
    );
    assert!(err.message.contains(&elsewhere.url()), "{}", err.message);
    let login = (server.requests().into_iter())
      .find(|r| r.is("POST", &login_path()))
      .unwrap();
    assert!(String::from_utf8_lossy(&login.body).contains("password-123"));
    assert_eq!(server.count("POST", &login_path()), 1);
    assert!(
      elsewhere.requests().is_empty(),
      "{status}: the other origin received {:?}",
      elsewhere.requests()
    );
  }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_location_request_follows_a_permanent_redirect_to_the_new_host() {
  let moved_to =
    Server::start(|req, base| basics(req, base).unwrap_or(error(404, "NotFound"))).await;
  let target = format!("{}{}", moved_to.url(), location_path());
  let old =
    Server::start(move |_, _| Reply::Json(301, vec![("location", target.clone())], String::new()))
      .await;
  let user = log_in(&app_at(&old.url())).await.unwrap();
  assert_eq!(user.id(), "user-1");
  let seen = |s: &Server| -> Vec<String> {
    (s.requests().iter())
      .map(|r| format!("{} {}", r.method, r.path))
      .collect()
  };
  assert_eq!(seen(&old), [format!("GET {}", location_path())]);
  assert_eq!(
    seen(&moved_to),
    [
      format!("GET {}", location_path()),
      format!("POST {}", login_path()),
      format!("GET {API}/auth/profile"),
    ]
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiter_with_time_left_gets_the_refresh_its_leader_ran_out_of_time_for() {
  let expired = Arc::new(AtomicBool::new(false));
  let server = Server::start({
    let expired = expired.clone();
    move |req, base| {
      let profile = format!("{API}/auth/profile");
      if req.is("POST", &format!("{API}/auth/session")) {
        let fresh = ok(serde_json::json!({ "access_token": jwt(2) }));
        return Reply::After(Duration::from_millis(700), Box::new(fresh));
      }
      if req.is("GET", &profile)
        && expired.load(Ordering::SeqCst)
        && req.bearer() == Some(jwt(1).as_str())
      {
        return error(401, "InvalidSession");
      }
      basics(req, base).unwrap_or(error(404, "NotFound"))
    }
  })
  .await;
  let user = log_in(&app_at(&server.url())).await.unwrap();
  expired.store(true, Ordering::SeqCst);

  let leader = {
    let user = user.clone();
    tokio::spawn(async move { within(Duration::from_millis(200), user.refresh_profile()).await })
  };
  tokio::time::sleep(Duration::from_millis(50)).await;
  let waiter = {
    let user = user.clone();
    tokio::spawn(async move { within(Duration::from_secs(5), user.refresh_profile()).await })
  };
  let (led, waited) = (leader.await.unwrap(), waiter.await.unwrap());
  assert!(waited.is_ok(), "the waiter failed: {waited:?}");
  assert_eq!(led.unwrap_err().code, ErrorCode::Timeout);
  assert_eq!(user.access_token().unwrap().expose(), jwt(2));
  assert_eq!(
    server.count("POST", &format!("{API}/auth/session")),
    1,
    "the leader and the waiter share one refresh"
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_against_a_failing_server_spend_only_the_retry_budget() {
  let failing = Arc::new(AtomicBool::new(false));
  let keys = format!("{API}/auth/api_keys");
  let server = Server::start({
    let (failing, keys) = (failing.clone(), keys.clone());
    move |req, base| {
      if failing.load(Ordering::SeqCst) && req.is("GET", &keys) {
        return error(503, "ServiceUnavailable");
      }
      basics(req, base).unwrap_or(error(404, "NotFound"))
    }
  })
  .await;
  let user = log_in(&app_at(&server.url())).await.unwrap();
  failing.store(true, Ordering::SeqCst);

  let calls: Vec<_> = (0..1000)
    .map(|_| {
      let keys = user.api_keys();
      tokio::spawn(async move { keys.fetch_all().await })
    })
    .collect();
  for call in calls {
    let err = call.await.unwrap().unwrap_err();
    assert_eq!(err.status_code, Some(503));
  }
  // 1,000 first attempts and 500 / 5 = 100 retries; without the budget,
  // 3 retries each would make 4,000.
  assert_eq!(server.count("GET", &keys), 1100);
}

/// A server whose DELETE of the key acts and then loses its answer
/// (`lose_first`), or finds no key at once; it then answers 404 with `code`.
async fn key_server(lose_first: bool, code: &'static str) -> Server {
  let deleted = Arc::new(AtomicBool::new(false));
  Server::start(move |req, base| {
    if req.is("DELETE", &format!("{API}/auth/api_keys/{KEY_ID}")) {
      if lose_first && !deleted.swap(true, Ordering::SeqCst) {
        return Reply::Drop;
      }
      return error(404, code);
    }
    basics(req, base).unwrap_or(error(404, "NotFound"))
  })
  .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delete_whose_answer_was_lost_takes_the_retrys_404_as_done() {
  let server = key_server(true, "APIKeyNotFound").await;
  let user = log_in(&app_at(&server.url())).await.unwrap();
  let id = KeyId::parse(KEY_ID).unwrap();
  user.api_keys().delete(&id).await.unwrap();
  assert_eq!(
    server.count("DELETE", &format!("{API}/auth/api_keys/{KEY_ID}")),
    2
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_lost_answer_only_a_missing_key_counts_as_deleted() {
  // Another 404 (a gateway that lost the app) says nothing about the key.
  let server = key_server(true, "AppNotFound").await;
  let user = log_in(&app_at(&server.url())).await.unwrap();
  let id = KeyId::parse(KEY_ID).unwrap();
  let err = user.api_keys().delete(&id).await.unwrap_err();
  assert_eq!(
    (err.code, err.status_code),
    (ErrorCode::AppNotFound, Some(404))
  );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_404_on_the_first_delete_stays_an_error() {
  let server = key_server(false, "APIKeyNotFound").await;
  let user = log_in(&app_at(&server.url())).await.unwrap();
  let id = KeyId::parse(KEY_ID).unwrap();
  let err = user.api_keys().delete(&id).await.unwrap_err();
  assert_eq!(
    (err.code, err.status_code),
    (ErrorCode::APIKeyNotFound, Some(404))
  );
  assert_eq!(
    server.count("DELETE", &format!("{API}/auth/api_keys/{KEY_ID}")),
    1
  );
}

/// A custom fetch that answers as an App Services server would and records
/// each URL it is asked for. The first location request at `base` is answered
/// `301` to `moved_to` (when given), which answers as the server.
struct Recorder {
  base: &'static str,
  moved_to: Option<&'static str>,
  seen: Mutex<Vec<String>>,
}

impl Fetch for Recorder {
  fn fetch(
    &self,
    request: FetchRequest,
  ) -> Pin<Box<dyn Future<Output = Result<FetchResponse, FetchFailure>> + Send>> {
    self
      .seen
      .lock()
      .unwrap()
      .push(format!("{} {}", request.method, request.url));
    let redirect = self
      .moved_to
      .filter(|_| request.url == format!("{}{}", self.base, location_path()));
    let (status, headers, body) = if let Some(moved_to) = redirect {
      let location = format!("{moved_to}{}", location_path());
      (301, vec![("location".to_owned(), location)], String::new())
    } else {
      let (base, path) = [Some(self.base), self.moved_to]
        .into_iter()
        .flatten()
        .find_map(|b| Some((b, request.url.strip_prefix(b)?)))
        .expect("a request to a known base");
      let scripted = Request {
        method: request.method.to_owned(),
        path: path.to_owned(),
        headers: HashMap::new(),
        head: String::new(),
        body: Vec::new(),
      };
      let Some(Reply::Json(status, _, body)) = basics(&scripted, base) else {
        panic!("no scripted answer to {scripted:?}");
      };
      (
        status,
        vec![("content-type".to_owned(), "application/json".to_owned())],
        body,
      )
    };
    Box::pin(async move {
      Ok(FetchResponse {
        status,
        headers,
        body,
      })
    })
  }
}

fn recording_app(base: &'static str, moved_to: Option<&'static str>) -> (App, Arc<Recorder>) {
  let recorder = Arc::new(Recorder {
    base,
    moved_to,
    seen: Mutex::new(Vec::new()),
  });
  let mut config = AppConfig::new(APP_ID, Some(base), None).unwrap();
  config.fetch = Some(CustomFetch(recorder.clone()));
  (App::new(config).unwrap(), recorder)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_custom_fetchs_location_redirect_is_followed_by_the_sdk_under_its_rule() {
  // 301 from http to https: followed, and the host the location names is used.
  let (app, recorder) = recording_app("http://fetch.invalid", Some("https://moved.invalid"));
  log_in(&app).await.unwrap();
  assert_eq!(
    *recorder.seen.lock().unwrap(),
    [
      format!("GET http://fetch.invalid{}", location_path()),
      format!("GET https://moved.invalid{}", location_path()),
      format!("POST https://moved.invalid{}", login_path()),
      format!("GET https://moved.invalid{API}/auth/profile"),
    ]
  );
  // 301 from https down to http: not followed, and nothing else is sent.
  let (app, recorder) = recording_app("https://fetch.invalid", Some("http://moved.invalid"));
  let err = log_in(&app).await.unwrap_err();
  assert_eq!(err.code, ErrorCode::ClientRedirectError, "{err:?}");
  assert_eq!(
    *recorder.seen.lock().unwrap(),
    [format!("GET https://fetch.invalid{}", location_path())]
  );
}

/// The request line and headers of every kind of request, byte for byte: the
/// bare location request, a body with no token, a token with no body, both,
/// and the bodiless `PUT` and `DELETE`. (These are what the transport sent
/// when it ran on reqwest; any transport must keep them.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_request_goes_on_the_wire_as_it_always_has() {
  let key = format!("{API}/auth/api_keys/{KEY_ID}");
  let server = Server::start({
    let key = key.clone();
    move |req, base| {
      if req.is("POST", &format!("{API}/auth/api_keys")) {
        return ok(
          serde_json::json!({ "_id": KEY_ID, "key": "k", "name": "n", "disabled": false }),
        );
      }
      if req.is("GET", &format!("{API}/auth/api_keys")) {
        return ok(serde_json::json!([]));
      }
      if req.is("PUT", &format!("{key}/enable")) || req.is("DELETE", &key) {
        return Reply::Json(204, Vec::new(), String::new());
      }
      basics(req, base).unwrap_or(error(404, "NotFound"))
    }
  })
  .await;
  let user = log_in(&app_at(&server.url())).await.unwrap();
  let keys = user.api_keys();
  let id = KeyId::parse(KEY_ID).unwrap();
  keys.create("n").await.unwrap();
  keys.fetch_all().await.unwrap();
  keys.enable(&id).await.unwrap();
  keys.delete(&id).await.unwrap();

  let host = server.addr.to_string();
  let (access, refresh) = (jwt(1), jwt(100));
  let heads: Vec<String> = (server.requests().iter())
    .map(|r| {
      (r.head.replace(&host, "HOST"))
        .replace(&access, "ACCESS")
        .replace(&refresh, "REFRESH")
    })
    .collect();
  let json = "accept: application/json\r\ncontent-type: application/json;charset=utf-8\r\n";
  let expected = [
    format!("GET {API}/app/{APP_ID}/location HTTP/1.1\r\naccept: */*\r\nhost: HOST\r\n\r\n"),
    format!(
      "POST {} HTTP/1.1\r\n{json}host: HOST\r\ncontent-length: 338\r\n\r\n",
      login_path()
    ),
    format!(
      "GET {API}/auth/profile HTTP/1.1\r\naccept: application/json\r\nauthorization: Bearer ACCESS\r\nhost: HOST\r\n\r\n"
    ),
    format!(
      "POST {API}/auth/api_keys HTTP/1.1\r\n{json}authorization: Bearer REFRESH\r\nhost: HOST\r\ncontent-length: 12\r\n\r\n"
    ),
    format!(
      "GET {API}/auth/api_keys HTTP/1.1\r\naccept: application/json\r\nauthorization: Bearer REFRESH\r\nhost: HOST\r\n\r\n"
    ),
    format!(
      "PUT {key}/enable HTTP/1.1\r\naccept: application/json\r\nauthorization: Bearer REFRESH\r\nhost: HOST\r\n\r\n"
    ),
    format!(
      "DELETE {key} HTTP/1.1\r\naccept: application/json\r\nauthorization: Bearer REFRESH\r\nhost: HOST\r\n\r\n"
    ),
  ];
  for (seen, want) in heads.iter().zip(&expected) {
    assert_eq!(seen, want);
  }
  assert_eq!(heads.len(), expected.len(), "{heads:#?}");
}

/// A server whose location request answers 301 to itself, after `wait`.
async fn moving_forever(wait: Duration) -> Server {
  Server::start(move |req, base| {
    if !req.is("GET", &location_path()) {
      return error(404, "NotFound");
    }
    let moved = Reply::Json(
      301,
      vec![("location", format!("{base}{}", location_path()))],
      String::new(),
    );
    Reply::After(wait, Box::new(moved))
  })
  .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_request_redirected_in_a_loop_stops_after_five_redirects() {
  let server = moving_forever(Duration::ZERO).await;
  let err = log_in(&app_at(&server.url())).await.unwrap_err();
  assert_eq!(err.code, ErrorCode::ClientTooManyRedirects, "{err:?}");
  assert_eq!(server.count("GET", &location_path()), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_location_requests_redirects_share_its_time() {
  // Each answer takes 300 ms. Six requests would take 1.8 s, each well
  // within the App's 1 s; together they are not.
  let server = moving_forever(Duration::from_millis(300)).await;
  let config = AppConfig::new(APP_ID, Some(&server.url()), Some(Duration::from_secs(1)));
  let app = App::new(config.unwrap()).unwrap();
  let err = within(Duration::from_millis(2500), log_in(&app))
    .await
    .unwrap_err();
  assert_eq!(err.code, ErrorCode::Timeout, "{err:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credentials_in_the_base_url_go_to_its_server_as_basic_auth_and_nowhere_else() {
  let server = Server::start(|req, base| basics(req, base).unwrap_or(error(404, "NotFound"))).await;
  let base = format!("http://user:secret@{}", server.addr);
  log_in(&app_at(&base)).await.unwrap();
  let requests = server.requests();
  let auth = |r: &Request| r.headers.get("authorization").cloned();
  // "user:secret" in base64.
  assert_eq!(
    auth(&requests[0]).as_deref(),
    Some("Basic dXNlcjpzZWNyZXQ=")
  );
  // The location named the host without them.
  assert!(
    requests[1..]
      .iter()
      .all(|r| auth(r).is_none_or(|a| a.starts_with("Bearer ")))
  );
  assert_eq!(requests.len(), 3);
}
