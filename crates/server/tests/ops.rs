//! Operations: `/healthz` and `/readyz`, the Prometheus `/metrics` page (parsed here by a small
//! parser of the text format), graceful shutdown with 200 requests in flight, and the access
//! log of `serve`, which must never carry a secret. (The readiness probe's 503 during a
//! database outage is checked in `pg_outage.rs`, which owns the outage.)

mod common;

use std::collections::{BTreeMap, HashMap};
use std::io::Read;
use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::{Config, FaultAction, FaultSpec, StoreConfig};
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn health_and_readiness_answer_in_every_mode() {
  for control_api in [true, false] {
    let emu = start_with(Config {
      control_api,
      ..Config::default()
    })
    .await;
    for path in ["/healthz", "/readyz"] {
      let r = emu.send("GET", path, None, None).await;
      assert_eq!(r.status, 200, "{path}: {}", r.text());
      assert_eq!(r.header("content-type"), Some("application/json"));
      assert_eq!(r.json(), json!({"status": "ok"}), "{path}");
    }
    let r = emu.send("GET", "/metrics", None, None).await;
    assert_eq!(r.status, 200);
    emu.emulator.stop().await;
  }
}

#[tokio::test]
async fn metrics_can_be_turned_off() {
  let emu = start_with(Config {
    control_api: false,
    metrics: false,
    ..Config::default()
  })
  .await;
  assert_eq!(emu.send("GET", "/metrics", None, None).await.status, 404);
  assert_eq!(emu.send("GET", "/healthz", None, None).await.status, 200);
}

/// One sample of the text format.
#[derive(Debug)]
struct Sample {
  name: String,
  labels: BTreeMap<String, String>,
  value: f64,
}

/// Parses Prometheus text format 0.0.4 strictly enough to catch what a scraper would reject:
/// every sample is `name{labels} value` of a family announced by `# HELP` and `# TYPE` before
/// it. Returns the samples and each family's type.
fn parse_prometheus(text: &str) -> (Vec<Sample>, HashMap<String, String>) {
  let mut types = HashMap::new();
  let mut helps = HashMap::new();
  let mut samples = Vec::new();
  let valid_name = |n: &str| {
    !n.is_empty()
      && !n.starts_with(|c: char| c.is_ascii_digit())
      && n
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
  };
  assert!(text.ends_with('\n'), "the page ends with a line feed");
  for line in text.lines() {
    assert!(!line.is_empty(), "no empty lines");
    if let Some(rest) = line.strip_prefix("# ") {
      let (kind, rest) = rest.split_once(' ').expect("# KIND name ...");
      let (name, what) = rest.split_once(' ').expect("# KIND name text");
      assert!(valid_name(name), "{line}");
      match kind {
        "HELP" => assert!(helps.insert(name.to_string(), what.to_string()).is_none()),
        "TYPE" => {
          assert!(
            ["counter", "gauge", "histogram", "summary", "untyped"].contains(&what),
            "{line}"
          );
          assert!(types.insert(name.to_string(), what.to_string()).is_none());
        }
        other => panic!("unknown comment kind {other}: {line}"),
      }
      continue;
    }
    let (series, value) = line.rsplit_once(' ').expect("name value");
    let value: f64 = match value {
      "+Inf" => f64::INFINITY,
      "-Inf" => f64::NEG_INFINITY,
      v => v.parse().unwrap_or_else(|_| panic!("bad value in {line}")),
    };
    let (name, labels) = match series.split_once('{') {
      None => (series, BTreeMap::new()),
      Some((name, rest)) => {
        let body = rest.strip_suffix('}').expect("labels end with }");
        let mut labels = BTreeMap::new();
        let mut chars = body.chars().peekable();
        while chars.peek().is_some() {
          let key: String = chars.by_ref().take_while(|&c| c != '=').collect();
          assert!(valid_name(&key), "label name {key:?} in {line}");
          assert_eq!(chars.next(), Some('"'), "quoted label value in {line}");
          let mut value = String::new();
          loop {
            match chars.next().expect("closed label value") {
              '\\' => value.push(chars.next().expect("escaped char")),
              '"' => break,
              c => value.push(c),
            }
          }
          assert!(
            labels.insert(key, value).is_none(),
            "duplicate label: {line}"
          );
          match chars.next() {
            None => break,
            Some(',') => {}
            Some(c) => panic!("unexpected {c:?} in {line}"),
          }
        }
        (name, labels)
      }
    };
    assert!(valid_name(name), "{line}");
    let family = ["_bucket", "_sum", "_count"]
      .iter()
      .find_map(|s| {
        name
          .strip_suffix(s)
          .filter(|f| types.get(*f).map(String::as_str) == Some("histogram"))
      })
      .unwrap_or(name);
    assert!(types.contains_key(family), "no # TYPE before {line}");
    assert!(helps.contains_key(family), "no # HELP before {line}");
    samples.push(Sample {
      name: name.to_string(),
      labels,
      value,
    });
  }
  (samples, types)
}

/// A series' labels, sorted, without `le`.
type Labels = Vec<(String, String)>;

/// Checks every histogram: buckets in increasing `le` order with cumulative counts, ending with
/// `+Inf` equal to `_count`. Returns how many series it checked.
fn check_histograms(samples: &[Sample], types: &HashMap<String, String>) -> usize {
  let mut checked = 0;
  for (family, _) in types.iter().filter(|(_, t)| *t == "histogram") {
    let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
    let mut counts = HashMap::new();
    for s in samples {
      let mut key: Vec<_> = s.labels.clone().into_iter().collect();
      if s.name == format!("{family}_bucket") {
        let le = s.labels["le"].as_str();
        let le = if le == "+Inf" {
          f64::INFINITY
        } else {
          le.parse().unwrap()
        };
        key.retain(|(k, _)| k != "le");
        series.entry(key).or_default().push((le, s.value));
      } else if s.name == format!("{family}_count") {
        counts.insert(key, s.value);
      }
    }
    for (key, buckets) in &series {
      assert!(
        buckets.windows(2).all(|w| w[0].0 < w[1].0),
        "{key:?} le order"
      );
      assert!(
        buckets.windows(2).all(|w| w[0].1 <= w[1].1),
        "{key:?} cumulative"
      );
      let last = buckets.last().unwrap();
      assert_eq!(last.0, f64::INFINITY, "{key:?} ends with +Inf");
      assert_eq!(Some(&last.1), counts.get(key), "{key:?}: +Inf == _count");
      checked += 1;
    }
  }
  checked
}

fn value_of(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> Option<f64> {
  samples
    .iter()
    .find(|s| {
      s.name == name
        && s.labels.len() == labels.len()
        && labels
          .iter()
          .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(v))
    })
    .map(|s| s.value)
}

async fn scrape(emu: &Emu) -> (Vec<Sample>, HashMap<String, String>, String) {
  let r = emu.send("GET", "/metrics", None, None).await;
  assert_eq!(r.status, 200);
  assert_eq!(
    r.header("content-type"),
    Some("text/plain; version=0.0.4; charset=utf-8")
  );
  let text = r.text();
  let (samples, types) = parse_prometheus(&text);
  (samples, types, text)
}

#[tokio::test]
async fn metrics_parse_as_prometheus_text_after_traffic() {
  let emu = start().await;
  let s = emu.new_user("metrics@example.com").await;
  let key = emu.create_key(&s.refresh, "k").await.json();
  let key_id = key["_id"].as_str().unwrap().to_string();
  let fetched = emu
    .api(
      "GET",
      &format!("/auth/api_keys/{key_id}"),
      Some(&s.refresh),
      None,
    )
    .await;
  assert_eq!(fetched.status, 200);
  assert_eq!(
    emu.api("GET", "/auth/profile", None, None).await.status,
    401
  );
  assert_eq!(
    emu.send("GET", "/nowhere/at/all", None, None).await.status,
    404
  );

  let (samples, types, text) = scrape(&emu).await;
  assert_eq!(types["realm_auth_requests_total"], "counter");
  assert_eq!(types["realm_auth_request_duration_seconds"], "histogram");
  assert_eq!(types["realm_auth_store_errors_total"], "counter");
  assert_eq!(types["realm_auth_open_connections"], "gauge");
  let requests = |route, method, status| {
    value_of(
      &samples,
      "realm_auth_requests_total",
      &[("route", route), ("method", method), ("status", status)],
    )
  };
  assert_eq!(requests("userpass", "POST", "201"), Some(1.0));
  assert_eq!(requests("login", "POST", "200"), Some(1.0));
  assert_eq!(requests("api_keys", "POST", "201"), Some(1.0));
  assert_eq!(requests("api_key", "GET", "200"), Some(1.0));
  assert_eq!(requests("profile", "GET", "401"), Some(1.0));
  assert_eq!(requests("other", "GET", "404"), Some(1.0));
  assert!(check_histograms(&samples, &types) >= 5);
  for kind in ["unavailable", "internal", "conflict"] {
    assert!(value_of(&samples, "realm_auth_store_errors_total", &[("kind", kind)]).is_some());
  }
  // The scrape's own connection is open.
  assert!(value_of(&samples, "realm_auth_open_connections", &[]).unwrap() >= 1.0);
  // Labels are templates: no id, no path.
  assert!(!text.contains(&key_id) && !text.contains("/api/"), "{text}");

  // Counters only grow, and the scrape itself is counted.
  let (again, _, _) = scrape(&emu).await;
  assert!(
    value_of(
      &again,
      "realm_auth_requests_total",
      &[("route", "metrics"), ("method", "GET"), ("status", "200")]
    )
    .unwrap()
      >= 1.0
  );
}

/// `/readyz` and the store-error counter against a SQLite store, whose tables go missing under
/// the server (as if its file were swapped for another database).
#[tokio::test]
async fn readiness_and_store_errors_on_sqlite() {
  let store = fresh_store("sqlite");
  let StoreConfig::Sqlite { path } = &store else {
    unreachable!()
  };
  let path = path.clone();
  let emu = start_with(Config {
    control_api: false,
    store,
    ..Config::default()
  })
  .await;
  let ready = emu.send("GET", "/readyz", None, None).await;
  assert_eq!((ready.status, ready.json()), (200, json!({"status": "ok"})));
  let internal = |samples: &[Sample]| {
    value_of(
      samples,
      "realm_auth_store_errors_total",
      &[("kind", "internal")],
    )
    .unwrap()
  };
  let before = internal(&scrape(&emu).await.0);

  let conn = rusqlite::Connection::open(&path).unwrap();
  conn
    .execute_batch("DROP TABLE schema_migrations; DROP TABLE email_accounts;")
    .unwrap();
  let ready = emu.send("GET", "/readyz", None, None).await;
  assert_eq!(
    (ready.status, ready.json()),
    (
      503,
      json!({"status": "unavailable", "reason": "store error"})
    )
  );
  let body = json!({"email": "a@example.com", "password": "Passw0rd-x"}).to_string();
  let r = emu
    .send(
      "POST",
      &format!(
        "{BASE}/app/{}/auth/providers/local-userpass/register",
        emu.app
      ),
      None,
      Some(&body),
    )
    .await;
  assert_eq!(r.status, 500, "{}", r.text());
  // Process-wide: other tests may add to it meanwhile, never take from it.
  assert!(internal(&scrape(&emu).await.0) >= before + 1.0);
  emu.emulator.stop().await;
}

/// Reads `/metrics` and returns the in-flight gauge, less the scrape itself.
async fn in_flight(emu: &Emu) -> f64 {
  let (samples, _, _) = scrape(emu).await;
  value_of(&samples, "realm_auth_requests_in_flight", &[]).unwrap() - 1.0
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_answers_200_requests_in_flight_and_refuses_new_connections() {
  const N: usize = 200;
  let emu = start_with(Config {
    shutdown_grace_ms: Some(30_000),
    // The bodies below wait for the signal to finish: no read timeout may cut them first.
    header_read_timeout_ms: 120_000,
    ..Config::default()
  })
  .await;
  // Held open without a timer: each client sends its head and half its body, and the rest
  // only once stop has begun.
  let (go, _) = tokio::sync::broadcast::channel::<()>(1);
  let mut clients = tokio::task::JoinSet::new();
  for i in 0..N {
    let body = json!({"email": format!("held{i}@example.com"), "password": "Passw0rd-x"});
    let request = build_request(
      "POST",
      &format!(
        "{BASE}/app/{}/auth/providers/local-userpass/register",
        emu.app
      ),
      &[("Content-Type", "application/json")],
      Some(body.to_string().as_bytes()),
    );
    let (port, mut go) = (emu.port, go.subscribe());
    clients.spawn(async move {
      let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
      let half = request.len() - 10;
      stream.write_all(&request[..half]).await?;
      let _ = go.recv().await;
      stream.write_all(&request[half..]).await?;
      let mut out = Vec::new();
      stream.read_to_end(&mut out).await?;
      Ok::<_, std::io::Error>(out)
    });
  }
  // Stop only once the server has read every head (a connection whose request is still
  // unread counts as idle, and idle ones close at once).
  let deadline = Instant::now() + Duration::from_secs(60);
  while in_flight(&emu).await < N as f64 {
    assert!(Instant::now() < deadline, "requests never all in flight");
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
  let begun = Instant::now();
  let emu = std::sync::Arc::new(emu);
  let port = emu.port;
  let stopping = tokio::spawn({
    let emu = emu.clone();
    async move {
      emu.emulator.stop().await;
      begun.elapsed()
    }
  });
  // The listener goes at once: a new connection is refused while the old ones still finish.
  let refused_by = Instant::now() + Duration::from_secs(10);
  loop {
    // While the listener closes, a connection may still complete into its backlog (and be
    // reset with it); once it is closed, connecting is refused.
    match TcpStream::connect(("127.0.0.1", port)).await {
      Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused => break,
      other => {
        assert!(Instant::now() < refused_by, "still listening: {other:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
      }
    }
  }
  assert!(
    !stopping.is_finished(),
    "stop waits for the requests in flight"
  );
  go.send(()).unwrap();
  let mut answered = 0;
  while let Some(joined) = clients.join_next().await {
    let raw = joined
      .unwrap()
      .expect("no reset: every request is answered");
    let r = parse_response(&raw);
    assert_eq!(r.status, 201, "{}", r.text());
    answered += 1;
  }
  assert_eq!(answered, N);
  let took = stopping.await.unwrap();
  // Done when the last request is, not at the end of the grace period.
  assert!(took < Duration::from_secs(20), "stop took {took:?}");
}

#[tokio::test]
async fn stop_cuts_requests_still_running_after_the_grace_period() {
  let emu = start_with(Config {
    shutdown_grace_ms: Some(200),
    ..Config::default()
  })
  .await;
  emu
    .emulator
    .control()
    .inject_fault(FaultSpec {
      method: None,
      path: "app/*/location".into(),
      times: Some(0),
      delay_ms: 30_000,
      action: FaultAction::PassThrough,
    })
    .unwrap();
  let request = build_request(
    "GET",
    &format!("{BASE}/app/{}/location", emu.app),
    &[],
    None,
  );
  let port = emu.port;
  let client = tokio::spawn(async move { raw_exchange(port, &request).await });
  let deadline = Instant::now() + Duration::from_secs(10);
  while in_flight(&emu).await < 1.0 {
    assert!(Instant::now() < deadline);
    tokio::time::sleep(Duration::from_millis(10)).await;
  }
  let begun = Instant::now();
  emu.emulator.stop().await;
  assert!(
    begun.elapsed() < Duration::from_secs(5),
    "{:?}",
    begun.elapsed()
  );
  // Cut: no response.
  let raw = client.await.unwrap().unwrap_or_default();
  assert!(raw.is_empty(), "{:?}", String::from_utf8_lossy(&raw));
}

/// Sends one request to `port` and parses the answer (a blocking test's helper).
fn exchange(
  rt: &tokio::runtime::Runtime,
  port: u16,
  method: &str,
  path: &str,
  auth: Option<&str>,
  body: Option<&Value>,
) -> Resp {
  rt.block_on(call(port, method, path, auth, body.cloned()))
}

#[test]
fn serve_access_log_has_one_json_line_per_request_and_no_secret() {
  let dir = std::env::temp_dir().join(format!("realm-auth-ops-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let db = dir.join("auth.db");
  let (mut child, port, mut stdout) = spawn_serve(&[
    "--app-id".as_ref(),
    "log-app".as_ref(),
    "--access-log".as_ref(),
    "--sqlite".as_ref(),
    db.as_os_str(),
  ]);

  let rt = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .unwrap();
  let app = format!("{BASE}/app/log-app");
  let (email, password) = ("secret-owner@example.com", "Passw0rd-never-logged");
  let r = exchange(
    &rt,
    port,
    "POST",
    &format!("{app}/auth/providers/local-userpass/register"),
    None,
    Some(&json!({"email": email, "password": password})),
  );
  assert_eq!(r.status, 201, "{}", r.text());
  let r = exchange(
    &rt,
    port,
    "POST",
    &format!("{app}/auth/providers/local-userpass/login"),
    None,
    Some(&json!({"username": email, "password": password})),
  );
  assert_eq!(r.status, 200, "{}", r.text());
  let session = r.json();
  let (access, refresh) = (
    session["access_token"].as_str().unwrap().to_string(),
    session["refresh_token"].as_str().unwrap().to_string(),
  );
  let r = exchange(
    &rt,
    port,
    "POST",
    &format!("{BASE}/auth/api_keys"),
    Some(&refresh),
    Some(&json!({"name": "logged-key-name"})),
  );
  assert_eq!(r.status, 201, "{}", r.text());
  let key = r.json();
  let (key_id, key_secret) = (
    key["_id"].as_str().unwrap().to_string(),
    key["key"].as_str().unwrap().to_string(),
  );
  let r = exchange(
    &rt,
    port,
    "GET",
    &format!("{BASE}/auth/api_keys/{key_id}"),
    Some(&refresh),
    None,
  );
  assert_eq!(r.status, 200);
  let r = exchange(
    &rt,
    port,
    "POST",
    &format!("{app}/auth/providers/api-key/login"),
    None,
    Some(&json!({"key": key_secret})),
  );
  assert_eq!(r.status, 200, "{}", r.text());
  let r = exchange(
    &rt,
    port,
    "GET",
    &format!("{BASE}/auth/profile"),
    Some(&access),
    None,
  );
  assert_eq!(r.status, 200);
  let query_secret = "query-secret-token-value";
  let r = exchange(
    &rt,
    port,
    "GET",
    &format!("{app}/location?token={query_secret}"),
    None,
    None,
  );
  assert_eq!(r.status, 200);
  let r = exchange(&rt, port, "GET", "/healthz", None, None);
  assert_eq!(r.status, 200);

  let exit = sigterm_and_wait(&mut child, Duration::from_secs(20));
  assert_eq!(exit.code(), Some(0));
  let mut rest = String::new();
  stdout.read_to_string(&mut rest).unwrap();
  let _ = std::fs::remove_dir_all(&dir);

  for secret in [
    password,
    email,
    &access,
    &refresh,
    &key_id,
    &key_secret,
    query_secret,
    "logged-key-name",
    "/api/client",
    "log-app",
  ] {
    assert!(
      !rest.contains(secret),
      "the access log holds {secret:?}:\n{rest}"
    );
  }
  let lines: Vec<Value> = rest
    .lines()
    .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
    .collect();
  let routes: Vec<(&str, &str, u64)> = lines
    .iter()
    .map(|l| {
      let o = l.as_object().unwrap();
      let keys: Vec<&str> = o.keys().map(String::as_str).collect();
      let mut sorted = keys.clone();
      sorted.sort();
      assert_eq!(
        sorted,
        ["method", "ms", "request_id", "route", "status", "ts"],
        "{l}"
      );
      assert!(o["ms"].as_f64().unwrap() >= 0.0);
      let ts = o["ts"].as_str().unwrap();
      assert!(
        ts.len() == 24 && ts.ends_with('Z') && ts.as_bytes()[10] == b'T',
        "{ts}"
      );
      assert_eq!(o["request_id"].as_str().unwrap().len(), 24);
      (
        o["route"].as_str().unwrap(),
        o["method"].as_str().unwrap(),
        o["status"].as_u64().unwrap(),
      )
    })
    .collect();
  assert_eq!(
    routes,
    [
      ("userpass", "POST", 201),
      ("login", "POST", 200),
      ("api_keys", "POST", 201),
      ("api_key", "GET", 200),
      ("login", "POST", 200),
      ("profile", "GET", 200),
      ("location", "GET", 200),
      ("healthz", "GET", 200),
    ]
  );
}

/// Counts `pattern` in what `stream` sends until it has seen it `n` times (each read must come
/// within the stream's read timeout).
fn count_until(stream: &mut std::net::TcpStream, pattern: &[u8], n: usize) -> usize {
  let (mut seen, mut buf, mut chunk) = (0, Vec::new(), vec![0; 64 * 1024]);
  while seen < n {
    let read = stream
      .read(&mut chunk)
      .unwrap_or_else(|e| panic!("after {seen} answers: {e}"));
    assert!(read > 0, "closed after {seen} answers");
    buf.extend_from_slice(&chunk[..read]);
    let mut at = 0;
    while let Some(i) = buf[at..].windows(pattern.len()).position(|w| w == pattern) {
      seen += 1;
      at += i + pattern.len();
    }
    // Keep a tail that may hold the start of a match.
    let keep = at.max(buf.len().saturating_sub(pattern.len()));
    buf.drain(..keep);
  }
  seen
}

#[test]
fn a_stdout_nobody_reads_does_not_stop_serve() {
  let dir = std::env::temp_dir().join(format!("realm-auth-ops-stuck-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let db = dir.join("auth.db");
  // The listening line, then nothing more: the pipe (64 KiB) fills, and the writer blocks.
  let (mut child, port, stdout) = spawn_serve(&[
    "--access-log".as_ref(),
    "--max-requests-per-connection".as_ref(),
    "0".as_ref(),
    "--sqlite".as_ref(),
    db.as_os_str(),
  ]);
  let connect = || {
    let s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s
  };
  // More lines than the pipe and the log's queue (8192) hold: some must be dropped.
  let n = 12_000;
  let mut stream = connect();
  let mut sender = stream.try_clone().unwrap();
  let writer = std::thread::spawn(move || {
    use std::io::Write;
    let request = b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".repeat(500);
    for _ in 0..n / 500 {
      sender.write_all(&request).unwrap();
    }
  });
  assert_eq!(count_until(&mut stream, br#"{"status":"ok"}"#, n), n);
  writer.join().unwrap();
  let mut probe = connect();
  let metrics = {
    use std::io::Write;
    probe
      .write_all(b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
      .unwrap();
    let mut raw = Vec::new();
    probe.read_to_end(&mut raw).unwrap();
    String::from_utf8(raw).unwrap()
  };
  let dropped: f64 = metrics
    .lines()
    .find_map(|l| l.strip_prefix("realm_auth_access_log_dropped_total "))
    .unwrap_or_else(|| panic!("no dropped-lines counter:\n{metrics}"))
    .parse()
    .unwrap();
  assert!(dropped > 0.0, "{metrics}");

  // It still stops, and exits 0, with its last lines unwritten.
  let exit = sigterm_and_wait(&mut child, Duration::from_secs(20));
  assert_eq!(exit.code(), Some(0));
  drop(stdout);
  let _ = std::fs::remove_dir_all(&dir);
}
