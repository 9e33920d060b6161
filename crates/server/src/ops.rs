//! Operations: `/healthz`, `/readyz`, the Prometheus `/metrics` page and the JSON access log.
//!
//! Counters live in fixed tables of atomics indexed by route template, method and status, so
//! that recording a request takes no lock and no allocation. Labels are bounded: a route is a
//! template name (`api_key`, never the key id in the path), a status an exact code from a short
//! list or its class (`4xx`).

use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::time::{Duration, Instant};

use hyper::Method;

use crate::server::{Resp, Shared, json_response};
use crate::store::StoreError;

/// Route templates: the `route` label of metrics and of access-log lines.
pub(crate) const ROUTES: &[&str] = &[
  "location",
  "login",
  "userpass",
  "profile",
  "session",
  "delete_user",
  "api_keys",
  "api_key",
  "api_key_state",
  "control",
  "healthz",
  "readyz",
  "metrics",
  "other",
];
const OTHER_ROUTE: usize = ROUTES.len() - 1;

const METHODS: &[&str] = &["GET", "POST", "PUT", "DELETE", "other"];

/// Status codes counted on their own; others are counted by class (`2xx`…), and 0 (no response:
/// the connection was cut or taken over by a fault) as `none`.
const CODES: &[u16] = &[
  200, 201, 204, 400, 401, 403, 404, 405, 409, 413, 429, 500, 503,
];
const CLASSES: &[&str] = &["1xx", "2xx", "3xx", "4xx", "5xx", "none"];
const STATUSES: usize = CODES.len() + CLASSES.len();

/// Upper bounds of the latency histogram, in seconds.
const BUCKETS: &[f64] = &[
  0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// How long `/readyz` waits for the store before it says the store is unavailable.
const READY_TIMEOUT: Duration = Duration::from_secs(5);

/// Access-log lines waiting for stdout, at most; more are dropped (and counted).
const LOG_QUEUE: usize = 8192;

/// How long [`Ops::flush_access_log`] waits for the lines queued before it.
const LOG_FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Store errors answered to clients, by kind: unavailable, internal, conflict. Process-wide
/// (the conversion that counts them knows no server; `serve` runs one).
static STORE_ERRORS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
const STORE_ERROR_KINDS: &[&str] = &["unavailable", "internal", "conflict"];

/// Counts a store error that became a client error (validation errors are the client's, not
/// the store's, and are not counted).
pub(crate) fn count_store_error(e: &StoreError) {
  let i = match e {
    StoreError::Unavailable(_) => 0,
    StoreError::Internal(_) => 1,
    StoreError::Conflict => 2,
    StoreError::Invalid(_) => return,
  };
  STORE_ERRORS[i].fetch_add(1, Ordering::Relaxed);
}

/// One server's counters and its access-log switch.
pub(crate) struct Ops {
  /// `[route][method][status]`, flattened.
  requests: Box<[AtomicU64]>,
  /// `[route][bucket]` (not cumulative; the last bucket is `+Inf`), flattened.
  latency: Box<[AtomicU64]>,
  /// Summed latency per route, in microseconds.
  latency_sum_us: Box<[AtomicU64]>,
  open_connections: AtomicI64,
  in_flight: AtomicI64,
  /// The access log's queue to its writer thread, when the log is on.
  access_log: Option<AccessLog>,
  metrics: bool,
}

/// The access log: lines go through a bounded queue to a thread of their own that writes
/// stdout, so that a stdout nobody reads (a full pipe) blocks that thread, never a request.
struct AccessLog {
  queue: SyncSender<String>,
  /// Lines queued, written (or failed to write) and dropped for a full queue.
  counts: Arc<LogCounts>,
}

#[derive(Default)]
struct LogCounts {
  queued: AtomicU64,
  written: AtomicU64,
  dropped: AtomicU64,
}

impl AccessLog {
  fn start() -> AccessLog {
    let (queue, lines) = std::sync::mpsc::sync_channel(LOG_QUEUE);
    let counts = Arc::new(LogCounts::default());
    let written = counts.clone();
    // Ends when the sender drops (with the server's counters).
    std::thread::Builder::new()
      .name("access-log".into())
      .spawn(move || write_lines(lines, &written))
      .expect("cannot start the access log's thread");
    AccessLog { queue, counts }
  }
}

/// The writer thread: each batch of waiting lines in one write (lines never interleave: this
/// thread is their only writer). A closed stdout must not fail anything: errors are dropped.
fn write_lines(lines: Receiver<String>, counts: &LogCounts) {
  let mut batch = String::new();
  while let Ok(line) = lines.recv() {
    batch.clear();
    batch.push_str(&line);
    let mut n = 1;
    while batch.len() < 64 * 1024
      && let Ok(line) = lines.try_recv()
    {
      batch.push_str(&line);
      n += 1;
    }
    let _ = std::io::stdout().lock().write_all(batch.as_bytes());
    counts.written.fetch_add(n, Ordering::Release);
  }
}

/// A request being measured: its labels and start (see [`Ops::begin`]).
pub(crate) struct Measure {
  route: usize,
  method: usize,
  start: std::time::Instant,
}

/// Decrements a gauge when dropped, so that a cut connection or request is uncounted too.
pub(crate) struct GaugeGuard<'a>(&'a AtomicI64);

impl Drop for GaugeGuard<'_> {
  fn drop(&mut self) {
    self.0.fetch_sub(1, Ordering::Relaxed);
  }
}

fn zeros(n: usize) -> Box<[AtomicU64]> {
  (0..n).map(|_| AtomicU64::new(0)).collect()
}

fn status_index(status: u16) -> usize {
  match CODES.iter().position(|&c| c == status) {
    Some(i) => i,
    None if (100..600).contains(&status) => CODES.len() + (status / 100 - 1) as usize,
    None => CODES.len() + CLASSES.len() - 1,
  }
}

fn status_label(i: usize) -> String {
  match CODES.get(i) {
    Some(code) => code.to_string(),
    None => CLASSES[i - CODES.len()].to_string(),
  }
}

fn method_index(method: &Method) -> usize {
  match *method {
    Method::GET => 0,
    Method::POST => 1,
    Method::PUT => 2,
    Method::DELETE => 3,
    _ => 4,
  }
}

/// The route template of a path (see [`ROUTES`]).
pub(crate) fn route_index(path: &str, control_api: bool) -> usize {
  let name = match path {
    "/healthz" => "healthz",
    "/readyz" => "readyz",
    "/metrics" => "metrics",
    p if control_api && (p == "/_emulator" || p.starts_with("/_emulator/")) => "control",
    p => crate::routes::template(p).unwrap_or("other"),
  };
  ROUTES
    .iter()
    .position(|r| *r == name)
    .unwrap_or(OTHER_ROUTE)
}

impl Ops {
  /// Zeroed counters; `access_log` and `metrics` as configured.
  pub fn new(access_log: bool, metrics: bool) -> Ops {
    Ops {
      requests: zeros(ROUTES.len() * METHODS.len() * STATUSES),
      latency: zeros(ROUTES.len() * (BUCKETS.len() + 1)),
      latency_sum_us: zeros(ROUTES.len()),
      open_connections: AtomicI64::new(0),
      in_flight: AtomicI64::new(0),
      access_log: access_log.then(AccessLog::start),
      metrics,
    }
  }

  /// Whether `/metrics` is served.
  pub fn metrics_enabled(&self) -> bool {
    self.metrics
  }

  /// Counts an open connection until the guard drops.
  pub fn connection_opened(&self) -> GaugeGuard<'_> {
    self.open_connections.fetch_add(1, Ordering::Relaxed);
    GaugeGuard(&self.open_connections)
  }

  /// Starts measuring a request (it is in flight until [`Ops::finish`]; call that once).
  pub fn begin(&self, method: &Method, path: &str, control_api: bool) -> Measure {
    self.in_flight.fetch_add(1, Ordering::Relaxed);
    Measure {
      route: route_index(path, control_api),
      method: method_index(method),
      start: std::time::Instant::now(),
    }
  }

  /// Records a finished request (status 0: no response) and writes its access-log line.
  pub fn finish(&self, m: &Measure, method: &Method, status: u16, request_id: &str) {
    let elapsed = m.start.elapsed();
    self.in_flight.fetch_sub(1, Ordering::Relaxed);
    let i = (m.route * METHODS.len() + m.method) * STATUSES + status_index(status);
    self.requests[i].fetch_add(1, Ordering::Relaxed);
    let secs = elapsed.as_secs_f64();
    let bucket = BUCKETS
      .iter()
      .position(|&b| secs <= b)
      .unwrap_or(BUCKETS.len());
    self.latency[m.route * (BUCKETS.len() + 1) + bucket].fetch_add(1, Ordering::Relaxed);
    self.latency_sum_us[m.route].fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
    if let Some(log) = &self.access_log {
      // The route template, never the path: paths carry key ids and query strings tokens.
      let line = format!(
        "{{\"ts\":\"{}\",\"method\":\"{}\",\"route\":\"{}\",\"status\":{status},\"ms\":{:.3},\"request_id\":\"{request_id}\"}}\n",
        rfc3339_millis(crate::ids::now_millis()),
        METHODS[method_index(method)],
        ROUTES[m.route],
        secs * 1000.0,
      );
      match log.queue.try_send(line) {
        Ok(()) => log.counts.queued.fetch_add(1, Ordering::Relaxed),
        Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
          log.counts.dropped.fetch_add(1, Ordering::Relaxed)
        }
      };
    }
  }

  /// Waits (up to a bound: stdout may be stuck) until the access-log lines queued so far are
  /// written, so that a stopping server's last lines are not lost at exit.
  pub async fn flush_access_log(&self) {
    let Some(log) = &self.access_log else { return };
    let queued = log.counts.queued.load(Ordering::Relaxed);
    let deadline = Instant::now() + LOG_FLUSH_TIMEOUT;
    while log.counts.written.load(Ordering::Acquire) < queued && Instant::now() < deadline {
      tokio::time::sleep(Duration::from_millis(5)).await;
    }
  }

  /// The Prometheus text exposition (format 0.0.4).
  pub fn render(&self) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str(
      "# HELP realm_auth_requests_total Requests by route template, method and status (none: cut before a response).\n\
       # TYPE realm_auth_requests_total counter\n",
    );
    for (r, route) in ROUTES.iter().enumerate() {
      for (m, method) in METHODS.iter().enumerate() {
        for s in 0..STATUSES {
          let n = self.requests[(r * METHODS.len() + m) * STATUSES + s].load(Ordering::Relaxed);
          if n > 0 {
            let _ = writeln!(
              out,
              "realm_auth_requests_total{{route=\"{route}\",method=\"{method}\",status=\"{}\"}} {n}",
              status_label(s)
            );
          }
        }
      }
    }
    out.push_str(
      "# HELP realm_auth_request_duration_seconds Time from a request's head to its response, by route template.\n\
       # TYPE realm_auth_request_duration_seconds histogram\n",
    );
    for (r, route) in ROUTES.iter().enumerate() {
      let counts: Vec<u64> = (0..=BUCKETS.len())
        .map(|b| self.latency[r * (BUCKETS.len() + 1) + b].load(Ordering::Relaxed))
        .collect();
      let total: u64 = counts.iter().sum();
      if total == 0 {
        continue;
      }
      // Cumulative from the snapshot above, so that `+Inf` equals `_count` even while
      // requests land meanwhile.
      let mut cumulative = 0;
      for (b, bound) in BUCKETS.iter().enumerate() {
        cumulative += counts[b];
        let _ = writeln!(
          out,
          "realm_auth_request_duration_seconds_bucket{{route=\"{route}\",le=\"{bound}\"}} {cumulative}"
        );
      }
      let sum = self.latency_sum_us[r].load(Ordering::Relaxed) as f64 / 1e6;
      let _ = writeln!(
        out,
        "realm_auth_request_duration_seconds_bucket{{route=\"{route}\",le=\"+Inf\"}} {total}\n\
         realm_auth_request_duration_seconds_sum{{route=\"{route}\"}} {sum}\n\
         realm_auth_request_duration_seconds_count{{route=\"{route}\"}} {total}"
      );
    }
    out.push_str(
      "# HELP realm_auth_store_errors_total Store errors answered to clients, by kind (process-wide).\n\
       # TYPE realm_auth_store_errors_total counter\n",
    );
    for (i, kind) in STORE_ERROR_KINDS.iter().enumerate() {
      let _ = writeln!(
        out,
        "realm_auth_store_errors_total{{kind=\"{kind}\"}} {}",
        STORE_ERRORS[i].load(Ordering::Relaxed)
      );
    }
    let dropped = self
      .access_log
      .as_ref()
      .map_or(0, |l| l.counts.dropped.load(Ordering::Relaxed));
    let _ = writeln!(
      out,
      "# HELP realm_auth_access_log_dropped_total Access-log lines dropped because stdout did not keep up.\n\
       # TYPE realm_auth_access_log_dropped_total counter\n\
       realm_auth_access_log_dropped_total {dropped}"
    );
    let _ = writeln!(
      out,
      "# HELP realm_auth_open_connections Client connections open now.\n\
       # TYPE realm_auth_open_connections gauge\n\
       realm_auth_open_connections {}\n\
       # HELP realm_auth_requests_in_flight Requests read and not yet answered.\n\
       # TYPE realm_auth_requests_in_flight gauge\n\
       realm_auth_requests_in_flight {}",
      self.open_connections.load(Ordering::Relaxed),
      self.in_flight.load(Ordering::Relaxed)
    );
    out
  }
}

/// `{"status":"ok"}`.
fn ok() -> Resp {
  json_response(200, br#"{"status":"ok"}"#.to_vec())
}

/// `{"status":"unavailable","reason":…}` with 503. Reasons are fixed words: a database error's
/// text may name hosts and users, which a public probe should not learn.
fn unavailable(reason: &str) -> Resp {
  json_response(
    503,
    serde_json::json!({ "status": "unavailable", "reason": reason })
      .to_string()
      .into_bytes(),
  )
}

/// Answers `/healthz`, `/readyz` and `/metrics` (when enabled); `None` for any other path.
/// Any method is taken: probes use GET, and nothing here changes state.
pub(crate) async fn handle(shared: &Shared, path: &str) -> Option<Resp> {
  match path {
    "/healthz" => Some(ok()),
    "/readyz" => Some(ready(shared).await),
    "/metrics" if shared.ops.metrics_enabled() => {
      let mut resp = json_response(200, shared.ops.render().into_bytes());
      resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
      );
      Some(resp)
    }
    _ => None,
  }
}

// No "stopping" answer: stopping closes the listener and serves no further request on an open
// connection, so a probe during shutdown is refused, never answered.
async fn ready(shared: &Shared) -> Resp {
  match tokio::time::timeout(READY_TIMEOUT, shared.store.ping()).await {
    Ok(Ok(())) => ok(),
    Ok(Err(StoreError::Unavailable(_))) => unavailable("store unavailable"),
    Ok(Err(_)) => unavailable("store error"),
    Err(_) => unavailable("store timed out"),
  }
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` of milliseconds since the Unix epoch (UTC).
pub(crate) fn rfc3339_millis(ms: u64) -> String {
  let (year, month, day) = crate::ids::civil_date((ms / 86_400_000) as i64);
  let rem = ms % 86_400_000;
  format!(
    "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
    rem / 3_600_000,
    rem / 60_000 % 60,
    rem / 1000 % 60,
    rem % 1000
  )
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn timestamps() {
    assert_eq!(rfc3339_millis(0), "1970-01-01T00:00:00.000Z");
    assert_eq!(rfc3339_millis(951_782_400_123), "2000-02-29T00:00:00.123Z");
    assert_eq!(
      rfc3339_millis(1_798_761_599_999),
      "2026-12-31T23:59:59.999Z"
    );
  }

  #[test]
  fn statuses() {
    assert_eq!(status_label(status_index(201)), "201");
    assert_eq!(status_label(status_index(418)), "4xx");
    assert_eq!(status_label(status_index(302)), "3xx");
    assert_eq!(status_label(status_index(0)), "none");
  }

  #[test]
  fn routes() {
    let r = |p| ROUTES[route_index(p, true)];
    assert_eq!(
      r("/api/client/v2.0/auth/api_keys/0123456789abcdef01234567"),
      "api_key"
    );
    assert_eq!(
      r("/api/client/v2.0/auth/api_keys/x/enable"),
      "api_key_state"
    );
    assert_eq!(
      r("/api/client/v2.0/app/a/auth/providers/anon-user/login"),
      "login"
    );
    assert_eq!(
      r("/api/client/v2.0/app/a/auth/providers/local-userpass/reset/call"),
      "userpass"
    );
    assert_eq!(r("/_emulator/users"), "control");
    assert_eq!(ROUTES[route_index("/_emulator/users", false)], "other");
    assert_eq!(r("/secret/path"), "other");
  }
}
