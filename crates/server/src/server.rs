//! The accept loop, per-connection tasks (with the takeover that lets faults drop, reset or
//! truncate a connection), the response body type and small HTTP helpers.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Limited};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinSet;
use tokio::time::Sleep;

use crate::Config;
use crate::access::Access;
use crate::control::TokenPair;
use crate::faults::{FaultAction, Faults};
use crate::ids::{now_millis, object_id};
use crate::log::{LoggedRequest, RequestLog, RequestOutcome, TokenType, loggable_body};
use crate::persist::Persister;
use crate::state::ApiError;
use crate::store::{Pending, Store, Tx};
use crate::tokens::Tokens;

/// Largest client-API request body; bigger ones get 413.
pub(crate) const BODY_LIMIT: usize = 1024 * 1024;
/// How long the accept loop waits past the grace period for connection tasks to end before it
/// aborts them.
const CUT_MARGIN: Duration = Duration::from_millis(500);

/// How long a client has to complete the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the handlers share.
pub(crate) struct Shared {
  pub config: Config,
  /// `http://host:port` as clients should use it.
  pub base_url: String,
  /// Where the records live.
  pub store: Store,
  /// The plain pending tokens this process issued, for the control API (the store keeps only
  /// hashes); an entry counts only while the store still has its token id pending.
  plain_pending: Mutex<HashMap<(String, Pending, String), TokenPair>>,
  pub tokens: Tokens,
  pub faults: Faults,
  pub log: RequestLog,
  pub persister: Option<Persister>,
  /// The runtime the server runs on (control calls may come from other threads).
  pub runtime: tokio::runtime::Handle,
  /// Set when `stop` begins, so that requests cut off by it are not logged as client aborts.
  pub stopping: AtomicBool,
  /// Who may use the control API.
  pub access: Access,
  /// Connection limits.
  pub(crate) limits: Limits,
  /// Metrics and the access log.
  pub ops: crate::ops::Ops,
  /// TLS, when configured.
  pub tls: Option<crate::tls::Tls>,
  /// Whose `X-Forwarded-For` names the client ([`Config::trusted_proxies`]).
  pub trusted_proxies: crate::client_ip::TrustedProxies,
  /// Where confirmation and reset tokens go ([`Config::token_delivery`]).
  pub(crate) delivery: Option<Arc<crate::delivery::Delivery>>,
}

impl Shared {
  /// Builds the shared context around a store and the keys of its tokens.
  pub fn new(
    config: Config,
    base_url: String,
    store: Store,
    tokens: Tokens,
    persister: Option<Persister>,
    access: Access,
  ) -> Shared {
    // Without the control API nobody could read the log: keep none.
    let log = RequestLog::new(if config.control_api {
      config.log_capacity
    } else {
      0
    });
    Shared {
      base_url,
      store,
      plain_pending: Mutex::new(HashMap::new()),
      tokens,
      faults: Faults::default(),
      log,
      persister,
      runtime: tokio::runtime::Handle::current(),
      stopping: AtomicBool::new(false),
      access,
      limits: Limits::new(&config),
      ops: crate::ops::Ops::new(config.access_log, config.metrics),
      tls: None,
      trusted_proxies: Default::default(),
      delivery: None,
      config,
    }
  }

  /// Runs `f` in one store transaction of `app` (see [`Store::run`]).
  pub async fn tx<T, F>(&self, app: &str, write: bool, f: F) -> Result<T, ApiError>
  where
    T: Send + 'static,
    F: FnOnce(&mut dyn Tx) -> Result<T, ApiError> + Send + 'static,
  {
    self.store.run(app, write, f).await
  }

  /// Whether logins through `provider` are accepted ([`Config::providers`]).
  pub fn provider_enabled(&self, provider: &str) -> bool {
    self
      .config
      .providers
      .as_ref()
      .is_none_or(|list| list.iter().any(|p| p == provider))
  }

  /// How long `stop` lets requests in flight finish (see [`Config::shutdown_grace_ms`]).
  pub fn grace(&self) -> Duration {
    let default = if self.config.control_api { 500 } else { 10_000 };
    Duration::from_millis(self.config.shutdown_grace_ms.unwrap_or(default))
  }

  /// Whether this server serves `app`.
  pub fn serves(&self, app: &str) -> bool {
    app == self.config.app_id || self.config.app_ids.iter().any(|a| a == app)
  }

  /// What tokens of `app` say in their `app` claim: nothing for the first app, so that a
  /// one-app server's tokens look as they always did.
  pub fn app_claim<'a>(&self, app: &'a str) -> Option<&'a str> {
    (app != self.config.app_id).then_some(app)
  }

  /// [`Shared::tx`] on the first app, for synchronous callers (the control API; see
  /// [`Store::run_blocking`]).
  pub fn tx_blocking<T, F>(&self, write: bool, f: F) -> Result<T, ApiError>
  where
    T: Send,
    F: FnOnce(&mut dyn Tx) -> Result<T, ApiError> + Send,
  {
    self.store.run_blocking(&self.config.app_id, write, f)
  }

  /// The first app's memory state version (0 for SQL stores, which have no data file).
  pub fn version(&self) -> u64 {
    self
      .store
      .memory(&self.config.app_id)
      .map_or(0, |m| m.version())
  }

  /// Keeps a pending token this process issued for an account of `app`, for the control API.
  pub fn remember_pending(&self, app: &str, kind: Pending, email: &str, pair: TokenPair) {
    if !self.config.control_api {
      return;
    }
    self
      .plain_pending
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .insert((app.to_string(), kind, email.to_string()), pair);
  }

  /// The plain pending token of an account of the first app, if this process issued it and
  /// it is still pending.
  pub fn pending_plain(&self, kind: Pending, email: &str) -> Result<Option<TokenPair>, ApiError> {
    let key = (self.config.app_id.clone(), kind, email.to_string());
    let Some(pair) = self
      .plain_pending
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .get(&key)
      .cloned()
    else {
      return Ok(None);
    };
    let lookup = email.to_string();
    let current = self.tx_blocking(false, move |tx| Ok(tx.pending_for(kind, &lookup)?))?;
    if current.as_deref() == Some(pair.token_id.as_str()) {
      Ok(Some(pair))
    } else {
      // Used or replaced: forget it.
      self
        .plain_pending
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&key);
      Ok(None)
    }
  }

  /// Forgets every plain pending token (control `reset`).
  pub fn forget_pending(&self) {
    self
      .plain_pending
      .lock()
      .unwrap_or_else(|e| e.into_inner())
      .clear();
  }

  /// Writes the state file if anything changed since the last write. No-op without a file.
  pub async fn persist(&self) -> std::io::Result<()> {
    match &self.persister {
      Some(p) => p.flush(self).await,
      None => Ok(()),
    }
  }

  /// Schedules [`Shared::persist`] in the background (for synchronous control calls).
  pub fn persist_soon(self: &Arc<Self>) {
    if self.persister.is_some() {
      let shared = self.clone();
      self.runtime.spawn(async move {
        if let Err(e) = shared.persist().await {
          eprintln!("realm-auth-server: could not write the data file: {e}");
        }
      });
    }
  }
}

// ---- response body ---------------------------------------------------------------------------

/// Response body: all at once, or trickled for the `slowBody` fault.
pub(crate) enum Body {
  Full(Option<Bytes>),
  Slow {
    data: Bytes,
    chunk: usize,
    delay: Duration,
    sleep: Option<Pin<Box<Sleep>>>,
  },
}

impl hyper::body::Body for Body {
  type Data = Bytes;
  type Error = Infallible;

  fn poll_frame(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
  ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    match self.get_mut() {
      Body::Full(data) => Poll::Ready(
        data
          .take()
          .filter(|d| !d.is_empty())
          .map(|d| Ok(Frame::data(d))),
      ),
      Body::Slow {
        data,
        chunk,
        delay,
        sleep,
      } => {
        if data.is_empty() {
          return Poll::Ready(None);
        }
        let timer = sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep(*delay)));
        ready!(timer.as_mut().poll(cx));
        *sleep = None;
        let n = (*chunk).min(data.len());
        Poll::Ready(Some(Ok(Frame::data(data.split_to(n)))))
      }
    }
  }

  fn is_end_stream(&self) -> bool {
    match self {
      Body::Full(data) => data.as_ref().is_none_or(|d| d.is_empty()),
      Body::Slow { data, .. } => data.is_empty(),
    }
  }

  fn size_hint(&self) -> SizeHint {
    match self {
      Body::Full(data) => SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64)),
      Body::Slow { data, .. } => SizeHint::with_exact(data.len() as u64),
    }
  }
}

/// A response type alias.
pub(crate) type Resp = Response<Body>;

/// `status` with a JSON body and exactly `Content-Type: application/json` (realm-core compares
/// the header with that string).
pub(crate) fn json_response(status: u16, body: Vec<u8>) -> Resp {
  let mut resp = Response::new(Body::Full(Some(Bytes::from(body))));
  *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
  resp.headers_mut().insert(
    header::CONTENT_TYPE,
    HeaderValue::from_static("application/json"),
  );
  resp
}

/// `status` with no body and no content type.
pub(crate) fn empty_response(status: u16) -> Resp {
  let mut resp = Response::new(Body::Full(None));
  *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
  resp
}

/// Why a request body could not be read.
pub(crate) enum BodyError {
  TooLarge,
  Broken,
  /// The body did not arrive within the header-read timeout (a slow-body attack holds a
  /// connection as a slow-header one does).
  TimedOut,
}

/// Bodies over the limit but under this are read to the end and dropped
/// before the 413 goes out: answering while the client still sends makes the
/// connection close under it, and its kernel may then discard the 413 for a
/// reset. Bigger ones are cut off.
const DRAIN_LIMIT: u64 = 16 * 1024 * 1024;

/// Reads a request body of at most `limit` bytes.
pub(crate) async fn read_body(
  shared: &Shared,
  body: Incoming,
  headers: &HeaderMap,
  limit: usize,
) -> Result<Bytes, BodyError> {
  match shared.limits.header_read {
    Some(bound) => tokio::time::timeout(bound, read_body_within(body, headers, limit))
      .await
      .unwrap_or(Err(BodyError::TimedOut)),
    None => read_body_within(body, headers, limit).await,
  }
}

async fn read_body_within(
  body: Incoming,
  headers: &HeaderMap,
  limit: usize,
) -> Result<Bytes, BodyError> {
  let declared = headers
    .get(header::CONTENT_LENGTH)
    .and_then(|v| v.to_str().ok())
    .and_then(|v| v.parse::<u64>().ok());
  if declared.is_some_and(|n| n > limit as u64) {
    if declared.is_some_and(|n| n <= DRAIN_LIMIT) {
      drain(body, DRAIN_LIMIT).await;
    }
    return Err(BodyError::TooLarge);
  }
  match Limited::new(body, limit).collect().await {
    Ok(collected) => Ok(collected.to_bytes()),
    Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(BodyError::TooLarge),
    Err(_) => Err(BodyError::Broken),
  }
}

/// Reads a body to its end (at most `limit` bytes), keeping nothing.
async fn drain(mut body: Incoming, limit: u64) {
  let mut read = 0u64;
  while read <= limit
    && let Some(Ok(frame)) = body.frame().await
  {
    read += frame.data_ref().map_or(0, |d| d.len() as u64);
  }
}

/// The body of a refused request: read and dropped when it is at most `limit` bytes (so that
/// the client gets the refusal rather than a reset, as in [`read_body`]), else left unread.
pub(crate) async fn discard_body(body: Incoming, headers: &HeaderMap, limit: usize) {
  let declared = headers
    .get(header::CONTENT_LENGTH)
    .and_then(|v| v.to_str().ok())
    .and_then(|v| v.parse::<u64>().ok());
  if declared.is_none_or(|n| n <= limit as u64) {
    drain(body, limit as u64).await;
  }
}

/// A header as a string, if present and valid.
pub(crate) fn header_str<'a>(headers: &'a HeaderMap, name: &HeaderName) -> Option<&'a str> {
  headers.get(name).and_then(|v| v.to_str().ok())
}

/// Percent-decodes one query parameter (`+` is left alone: emails contain it).
pub(crate) fn query_param(query: Option<&str>, name: &str) -> Option<String> {
  query?.split('&').find_map(|pair| {
    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
    (k == name).then(|| percent_decode(v))
  })
}

fn percent_decode(s: &str) -> String {
  let bytes = s.as_bytes();
  let mut out = Vec::with_capacity(bytes.len());
  let mut i = 0;
  while i < bytes.len() {
    if bytes[i] == b'%'
      && i + 2 < bytes.len()
      && let (Some(h), Some(l)) = (hex_val(bytes[i + 1]), hex_val(bytes[i + 2]))
    {
      out.push(h << 4 | l);
      i += 3;
      continue;
    }
    out.push(bytes[i]);
    i += 1;
  }
  String::from_utf8_lossy(&out).into_owned()
}

fn hex_val(b: u8) -> Option<u8> {
  (b as char).to_digit(16).map(|d| d as u8)
}

/// The base URL clients reached us by: the `Host` header when it looks like a host, else ours.
/// (Behind `--host 0.0.0.0` in a container, `127.0.0.1` would send clients to themselves.)
pub(crate) fn public_base(shared: &Shared, headers: &HeaderMap) -> String {
  if let Some(url) = &shared.config.public_url {
    return url.clone();
  }
  match header_str(headers, &header::HOST) {
    Some(host)
      if !host.is_empty()
        && host
          .bytes()
          .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b)) =>
    {
      let scheme = if shared.tls.is_some() {
        "https"
      } else {
        "http"
      };
      format!("{scheme}://{host}")
    }
    _ => shared.base_url.clone(),
  }
}

// ---- connections -----------------------------------------------------------------------------

/// How a fault takes over a connection from hyper.
pub(crate) enum Takeover {
  /// Close without a response (FIN).
  Close,
  /// Abort without a response (RST).
  Reset,
  /// Write these bytes, then close.
  Raw(Bytes),
}

/// Where a connection is between requests, for its header-read and idle timers.
struct Clock {
  /// Requests whose response is not completely written yet.
  in_flight: usize,
  /// When the head of the next request began to arrive (the connection's opening for the
  /// first one), while no request is in flight.
  head_since: Option<Instant>,
  /// When the last response was written, until the next request begins to arrive.
  idle_since: Option<Instant>,
  /// When the connection task's timer fires (`None`: it waits without one). A change wakes the
  /// task only when it brings the deadline before this: a timer that fires early just looks
  /// again, so the busy path (each request moves the deadline later) costs no wake-up.
  armed: Option<Instant>,
}

impl Clock {
  /// When this connection is to be closed, unless something happens first.
  fn deadline(&self, limits: &Limits) -> Option<Instant> {
    if self.in_flight > 0 {
      return None;
    }
    match (self.head_since, self.idle_since) {
      (Some(since), _) => limits.header_read.map(|t| since + t),
      (None, Some(since)) => limits.idle.map(|t| since + t),
      (None, None) => None,
    }
  }

  /// Whether the deadline now comes before the task's timer would look.
  fn needs_rearm(&self, limits: &Limits) -> bool {
    match (self.deadline(limits), self.armed) {
      (Some(due), Some(armed)) => due < armed,
      (due, None) => due.is_some(),
      (None, Some(_)) => false,
    }
  }
}

/// Per-connection state shared by its task, its socket wrapper and its request handlers.
pub(crate) struct ConnCtl {
  limits: Limits,
  takeover: Mutex<Option<Takeover>>,
  notify: Notify,
  clock: Mutex<Clock>,
  /// Wakes the connection task when its next deadline may have moved earlier.
  clock_changed: Notify,
  /// Requests begun on this connection.
  requests: AtomicU64,
}

impl ConnCtl {
  fn new(limits: Limits) -> ConnCtl {
    ConnCtl {
      limits,
      takeover: Mutex::new(None),
      notify: Notify::new(),
      clock: Mutex::new(Clock {
        in_flight: 0,
        head_since: Some(Instant::now()),
        idle_since: None,
        armed: None,
      }),
      clock_changed: Notify::new(),
      requests: AtomicU64::new(0),
    }
  }

  /// Asks the connection task to take the socket back and act.
  pub fn take_over(&self, how: Takeover) {
    *self.takeover.lock().unwrap_or_else(|e| e.into_inner()) = Some(how);
    self.notify.notify_one();
  }

  fn clock(&self) -> MutexGuard<'_, Clock> {
    self.clock.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// Bytes arrived: between requests, they start the next request's header timer.
  fn bytes_arrived(&self) {
    let mut clock = self.clock();
    if clock.in_flight == 0 && clock.head_since.is_none() {
      clock.head_since = Some(Instant::now());
      clock.idle_since = None;
      if clock.needs_rearm(&self.limits) {
        drop(clock);
        self.clock_changed.notify_one();
      }
    }
  }

  /// A request's head was read: its timers stop until its response is written. Returns how
  /// many requests this connection has begun, this one included.
  fn request_started(&self) -> u64 {
    let mut clock = self.clock();
    clock.in_flight += 1;
    clock.head_since = None;
    clock.idle_since = None;
    self.requests.fetch_add(1, Ordering::Relaxed) + 1
  }

  /// A response was written (or its request abandoned).
  fn request_ended(&self) {
    let mut clock = self.clock();
    clock.in_flight -= 1;
    if clock.in_flight == 0 {
      clock.idle_since = Some(Instant::now());
      if clock.needs_rearm(&self.limits) {
        drop(clock);
        self.clock_changed.notify_one();
      }
    }
  }

  /// The connection's deadline, which the task's timer is now set to.
  fn arm(&self) -> Option<Instant> {
    let mut clock = self.clock();
    clock.armed = clock.deadline(&self.limits);
    clock.armed
  }

  /// Whether the connection's deadline has passed.
  fn overdue(&self) -> bool {
    self
      .clock()
      .deadline(&self.limits)
      .is_some_and(|d| d <= Instant::now())
  }
}

/// The connection limits of [`Config`], `None` where disabled.
#[derive(Clone, Copy)]
pub(crate) struct Limits {
  pub(crate) header_read: Option<Duration>,
  idle: Option<Duration>,
  max_connections: Option<usize>,
  max_requests: Option<u64>,
}

impl Limits {
  pub fn new(config: &Config) -> Limits {
    let ms = |v: u64| (v > 0).then(|| Duration::from_millis(v));
    Limits {
      header_read: ms(config.header_read_timeout_ms),
      idle: ms(config.idle_timeout_ms),
      max_connections: (config.max_connections > 0).then_some(config.max_connections),
      max_requests: (config.max_requests_per_connection > 0)
        .then_some(config.max_requests_per_connection),
    }
  }
}

/// The socket as hyper sees it: every read that brings bytes is reported to the clock.
struct Watched {
  stream: crate::tls::Io,
  ctl: Arc<ConnCtl>,
}

impl AsyncRead for Watched {
  fn poll_read(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
  ) -> Poll<std::io::Result<()>> {
    let this = self.get_mut();
    let before = buf.filled().len();
    let polled = Pin::new(&mut this.stream).poll_read(cx, buf);
    if matches!(polled, Poll::Ready(Ok(()))) && buf.filled().len() > before {
      this.ctl.bytes_arrived();
    }
    polled
  }
}

impl AsyncWrite for Watched {
  fn poll_write(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    buf: &[u8],
  ) -> Poll<std::io::Result<usize>> {
    Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
  }

  fn poll_write_vectored(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
    bufs: &[std::io::IoSlice<'_>],
  ) -> Poll<std::io::Result<usize>> {
    Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
  }

  fn is_write_vectored(&self) -> bool {
    self.stream.is_write_vectored()
  }

  fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
    Pin::new(&mut self.get_mut().stream).poll_flush(cx)
  }

  fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
    Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
  }
}

/// One request on a connection, from its head to the end of its response (or its abandonment).
struct InFlight(Arc<ConnCtl>);

impl Drop for InFlight {
  fn drop(&mut self) {
    self.0.request_ended();
  }
}

/// A response body that ends its request's [`InFlight`] once hyper has written it all.
pub(crate) struct Tracked {
  body: Body,
  _in_flight: InFlight,
}

impl hyper::body::Body for Tracked {
  type Data = Bytes;
  type Error = Infallible;

  fn poll_frame(
    self: Pin<&mut Self>,
    cx: &mut Context<'_>,
  ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
    Pin::new(&mut self.get_mut().body).poll_frame(cx)
  }

  fn is_end_stream(&self) -> bool {
    self.body.is_end_stream()
  }

  fn size_hint(&self) -> SizeHint {
    self.body.size_hint()
  }
}

/// Serves one TCP connection until the client closes it, a fault takes it over, a timer runs
/// out, or shutdown.
async fn serve_connection(
  shared: Arc<Shared>,
  stream: TcpStream,
  mut shutdown: watch::Receiver<bool>,
) {
  let _ = stream.set_nodelay(true);
  // For login throttling by client address (`throttle::client_address`).
  let peer = stream.peer_addr().ok().map(|a| a.ip());
  let _open = shared.ops.connection_opened();
  let stream = match &shared.tls {
    None => crate::tls::Io::Plain(stream),
    Some(tls) => match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.acceptor().accept(stream)).await
    {
      Ok(Ok(tls_stream)) => crate::tls::Io::Tls(Box::new(tls_stream)),
      // A failed or stalled handshake: nothing to answer in HTTP.
      _ => return,
    },
  };
  let ctl = Arc::new(ConnCtl::new(shared.limits));
  let max_requests = shared.limits.max_requests;
  let service = {
    let ctl = ctl.clone();
    let shared = shared.clone();
    service_fn(move |mut req: Request<Incoming>| {
      if let Some(peer) = peer {
        let client = shared.trusted_proxies.client(peer, req.headers());
        req
          .extensions_mut()
          .insert(crate::throttle::PeerAddr(client));
      }
      let begun = ctl.request_started();
      let in_flight = InFlight(ctl.clone());
      let mut measured = Measured::new(shared.clone(), &req);
      req
        .extensions_mut()
        .insert(RequestId(measured.request_id.clone()));
      let handled = handle(shared.clone(), ctl.clone(), req);
      async move {
        let mut resp = handled.await?;
        measured.finish(resp.status().as_u16());
        if max_requests.is_some_and(|max| begun >= max) {
          // Hyper closes the connection after a response that says so.
          resp
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
        }
        Ok::<_, Infallible>(resp.map(|body| Tracked {
          body,
          _in_flight: in_flight,
        }))
      }
    })
  };
  let io = Watched {
    stream,
    ctl: ctl.clone(),
  };
  let mut conn = http1::Builder::new()
    .keep_alive(true)
    // The timers below replace hyper's, which counts the wait between requests as header time.
    .header_read_timeout(None)
    .serve_connection(TokioIo::new(io), service);
  // One timer for the connection's life, moved only when the task wakes (see `Clock::armed`).
  let timer = tokio::time::sleep(Duration::ZERO);
  tokio::pin!(timer);
  loop {
    let deadline = ctl.arm();
    if let Some(at) = deadline {
      timer.as_mut().reset(at.into());
    }
    tokio::select! {
      _ = &mut conn => return,
      _ = ctl.notify.notified() => {
        let Some(how) = ctl.takeover.lock().unwrap_or_else(|e| e.into_inner()).take() else {
          continue;
        };
        // The handler has not produced a response, so hyper has written nothing for this
        // request: the socket is ours to abuse.
        let mut stream = conn.into_parts().io.into_inner().stream;
        match how {
          Takeover::Close => {
            let _ = stream.shutdown().await;
          }
          Takeover::Reset => {
            let _ = stream.set_zero_linger();
          }
          Takeover::Raw(bytes) => {
            let _ = stream.write_all(&bytes).await;
            let _ = stream.flush().await;
            let _ = stream.shutdown().await;
          }
        }
        return;
      }
      _ = shutdown.changed() => {
        // Idle keep-alive connections close at once; a busy one gets the grace period to
        // finish its request (hyper closes it after that response).
        Pin::new(&mut conn).graceful_shutdown();
        let _ = tokio::time::timeout(shared.grace(), &mut conn).await;
        return;
      }
      _ = ctl.clock_changed.notified() => {}
      _ = &mut timer, if deadline.is_some() => {
        // Still due once looked at again (a request may have begun meanwhile): the client is
        // too slow with its headers, or has been idle too long. No request is in flight.
        if ctl.overdue() {
          return;
        }
      }
    }
  }
}

/// A request's id, generated when its head is read: the request log's entry id and the access
/// log's `request_id`.
#[derive(Clone)]
pub(crate) struct RequestId(pub String);

/// A request being counted: [`Measured::finish`] records it with its status; dropped before
/// (the client went away, `stop` cut it, a fault took the connection over) it records status 0.
struct Measured {
  shared: Arc<Shared>,
  measure: crate::ops::Measure,
  method: hyper::Method,
  request_id: String,
  done: bool,
}

impl Measured {
  fn new(shared: Arc<Shared>, req: &Request<Incoming>) -> Measured {
    let measure = shared
      .ops
      .begin(req.method(), req.uri().path(), shared.config.control_api);
    Measured {
      measure,
      method: req.method().clone(),
      request_id: object_id(),
      shared,
      done: false,
    }
  }

  fn finish(&mut self, status: u16) {
    if !std::mem::replace(&mut self.done, true) {
      self
        .shared
        .ops
        .finish(&self.measure, &self.method, status, &self.request_id);
    }
  }
}

impl Drop for Measured {
  fn drop(&mut self) {
    self.finish(0);
  }
}

/// Refused connections being answered at most; past this they are closed unanswered.
const MAX_REFUSALS: usize = 64;
/// How long a refused connection gets to send its request, and then to read the 503.
const REFUSAL_LINGER: Duration = Duration::from_secs(1);

/// Answers a connection past the cap with 503 and closes it.
async fn refuse(mut stream: TcpStream, max: usize) {
  // Once the client has sent something: an HTTP client reads an answer that comes before its
  // request as a broken connection, not as a 503 it may retry.
  let mut buf = [0u8; 4096];
  if !matches!(
    tokio::time::timeout(REFUSAL_LINGER, stream.read(&mut buf)).await,
    Ok(Ok(1..))
  ) {
    return;
  }
  let body = serde_json::json!({
    "error": format!("the emulator already serves its maximum of {max} connections; retry later"),
    "error_code": "ServiceUnavailable",
  })
  .to_string();
  let response = format!(
    "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nretry-after: 1\r\nconnection: close\r\n\r\n{body}",
    body.len()
  );
  let _ = tokio::time::timeout(REFUSAL_LINGER, async {
    stream.write_all(response.as_bytes()).await?;
    stream.shutdown().await?;
    // Reads what the client sent until it closes: closing with unread bytes would reset the
    // connection, and the client could lose the 503 to the reset.
    while stream.read(&mut buf).await? > 0 {}
    Ok::<_, std::io::Error>(())
  })
  .await;
}

/// Accepts connections until shutdown, then waits for (or cuts) the open ones.
pub(crate) async fn accept_loop(
  shared: Arc<Shared>,
  listener: TcpListener,
  mut shutdown: watch::Receiver<bool>,
) {
  let mut connections = JoinSet::new();
  let mut refusals = JoinSet::new();
  loop {
    tokio::select! {
      _ = shutdown.changed() => break,
      accepted = listener.accept() => match accepted {
        Ok((stream, _)) => {
          while connections.try_join_next().is_some() {}
          while refusals.try_join_next().is_some() {}
          match shared.limits.max_connections {
            Some(max) if connections.len() >= max => {
              // A plain-text 503 means nothing to a TLS client: it just gets the close.
              if refusals.len() < MAX_REFUSALS && shared.tls.is_none() {
                refusals.spawn(refuse(stream, max));
              }
            }
            _ => {
              connections.spawn(serve_connection(shared.clone(), stream, shutdown.clone()));
            }
          }
        }
        // Out of file descriptors and the like: back off instead of spinning.
        Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
      },
    }
  }
  drop(listener);
  refusals.abort_all();
  let drained = tokio::time::timeout(shared.grace() + CUT_MARGIN, async {
    while connections.join_next().await.is_some() {}
  })
  .await;
  if drained.is_err() {
    connections.abort_all();
    while connections.join_next().await.is_some() {}
  }
}

// ---- request pipeline ------------------------------------------------------------------------

/// A request's log entry until it is logged. Hyper drops the handler future when the client goes
/// away (or `stop` cuts the connection) before a response is ready; the entry is still logged
/// then, from `drop`, so that every request that reached the emulator shows up once.
struct PendingEntry<'a> {
  log: &'a RequestLog,
  stopping: &'a AtomicBool,
  entry: Option<LoggedRequest>,
}

impl PendingEntry<'_> {
  fn get(&mut self) -> &mut LoggedRequest {
    self.entry.as_mut().expect("the entry is logged only once")
  }

  /// Logs the entry with its status and outcome.
  fn finish(&mut self, status: u16, outcome: RequestOutcome) {
    if let Some(mut entry) = self.entry.take() {
      entry.status = status;
      entry.outcome = outcome;
      self.log.push(entry);
    }
  }
}

impl Drop for PendingEntry<'_> {
  fn drop(&mut self) {
    let outcome = if self.stopping.load(Ordering::Acquire) {
      RequestOutcome::Stopped
    } else {
      RequestOutcome::AbortedByClient
    };
    self.finish(0, outcome);
  }
}

/// Every request: control routes bypass logging and faults; client-API requests go through the
/// fault table, the route table and the log.
async fn handle(
  shared: Arc<Shared>,
  ctl: Arc<ConnCtl>,
  req: Request<Incoming>,
) -> Result<Resp, Infallible> {
  let path = req.uri().path();
  if let Some(resp) = crate::ops::handle(&shared, path).await {
    return Ok(resp);
  }
  if shared.config.control_api && (path == "/_emulator" || path.starts_with("/_emulator/")) {
    return Ok(crate::control::handle_http(&shared, req).await);
  }
  let (parts, body) = req.into_parts();
  let hit = shared.faults.take(parts.method.as_str(), parts.uri.path());
  // The entry exists before the fault's delay and the body read, either of which the client may
  // not wait for.
  let mut pending = PendingEntry {
    log: &shared.log,
    stopping: &shared.stopping,
    entry: Some(LoggedRequest {
      id: parts
        .extensions
        .get::<RequestId>()
        .map_or_else(object_id, |id| id.0.clone()),
      method: parts.method.as_str().to_string(),
      path: parts.uri.path().to_string(),
      query: parts.uri.query().map(str::to_string),
      token_type: TokenType::None,
      user_id: None,
      body: None,
      status: 0,
      fault: hit.as_ref().map(|h| h.id.clone()),
      content_type: header_str(&parts.headers, &header::CONTENT_TYPE).map(str::to_string),
      accept: header_str(&parts.headers, &header::ACCEPT).map(str::to_string),
      has_authorization: parts.headers.contains_key(header::AUTHORIZATION),
      timestamp_ms: now_millis(),
      outcome: RequestOutcome::Served,
    }),
  };
  let delayed = hit.as_ref().is_some_and(|h| h.delay_ms > 0);
  if let Some(hit) = &hit
    && delayed
  {
    tokio::time::sleep(Duration::from_millis(hit.delay_ms)).await;
  }
  let body = read_body(&shared, body, &parts.headers, BODY_LIMIT).await;
  let timed_out = matches!(body, Err(BodyError::TimedOut));
  pending.get().body = body.as_ref().ok().and_then(|b| loggable_body(b));
  let action = hit.map(|h| h.action);
  let (resp, outcome) = match action {
    None => (
      crate::routes::dispatch(&shared, &parts, body, pending.get()).await,
      RequestOutcome::Served,
    ),
    Some(FaultAction::PassThrough) => (
      crate::routes::dispatch(&shared, &parts, body, pending.get()).await,
      if delayed {
        RequestOutcome::DelayedThenServed
      } else {
        RequestOutcome::Served
      },
    ),
    Some(FaultAction::Respond {
      status,
      headers,
      body,
    }) => (
      fault_response(status, &headers, Bytes::from(body), None),
      RequestOutcome::CannedResponse,
    ),
    Some(FaultAction::SlowBody {
      status,
      headers,
      body,
      chunk_bytes,
      chunk_delay_ms,
    }) => (
      fault_response(
        status,
        &headers,
        Bytes::from(body),
        Some((chunk_bytes, Duration::from_millis(chunk_delay_ms))),
      ),
      RequestOutcome::SlowBody,
    ),
    Some(FaultAction::Drop) => {
      pending.finish(0, RequestOutcome::Dropped);
      return take_over(&ctl, Takeover::Close).await;
    }
    Some(FaultAction::Reset) => {
      pending.finish(0, RequestOutcome::Reset);
      return take_over(&ctl, Takeover::Reset).await;
    }
    Some(FaultAction::Truncate {
      status,
      headers,
      body,
      bytes,
    }) => {
      let raw = truncated_response(status, &headers, body.as_bytes(), bytes);
      pending.finish(status, RequestOutcome::Truncated);
      return take_over(&ctl, Takeover::Raw(raw)).await;
    }
  };
  pending.finish(resp.status().as_u16(), outcome);
  let mut resp = resp;
  if timed_out {
    // The rest of the body may still come: this connection cannot carry another request.
    resp
      .headers_mut()
      .insert(header::CONNECTION, HeaderValue::from_static("close"));
  }
  Ok(resp)
}

/// Hands the socket to the connection task and never answers (the request is already logged).
async fn take_over(ctl: &ConnCtl, how: Takeover) -> Result<Resp, Infallible> {
  ctl.take_over(how);
  std::future::pending().await
}

/// Response headers of a fault: the given ones, plus `application/json` for a non-empty body
/// unless a content type is named (`""` = none). `Content-Length` is always computed.
fn fault_headers(
  headers: &std::collections::BTreeMap<String, String>,
  has_body: bool,
) -> Vec<(HeaderName, HeaderValue)> {
  let mut out = Vec::new();
  let mut has_type = false;
  for (name, value) in headers {
    let Ok(name) = HeaderName::from_bytes(name.as_bytes()) else {
      continue;
    };
    if name == header::CONTENT_LENGTH {
      continue;
    }
    if name == header::CONTENT_TYPE {
      has_type = true;
      if value.is_empty() {
        continue;
      }
    }
    if let Ok(value) = HeaderValue::from_str(value) {
      out.push((name, value));
    }
  }
  if !has_type && has_body {
    out.push((
      header::CONTENT_TYPE,
      HeaderValue::from_static("application/json"),
    ));
  }
  out
}

fn fault_response(
  status: u16,
  headers: &std::collections::BTreeMap<String, String>,
  body: Bytes,
  slow: Option<(usize, Duration)>,
) -> Resp {
  let has_body = !body.is_empty();
  let body = match slow {
    None => Body::Full(Some(body)),
    Some((chunk, delay)) => Body::Slow {
      data: body,
      chunk: chunk.max(1),
      delay,
      sleep: None,
    },
  };
  let mut resp = Response::new(body);
  *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
  for (name, value) in fault_headers(headers, has_body) {
    resp.headers_mut().append(name, value);
  }
  resp
}

/// Raw HTTP/1.1 bytes: status line, headers with the full `Content-Length`, partial body.
fn truncated_response(
  status: u16,
  headers: &std::collections::BTreeMap<String, String>,
  body: &[u8],
  bytes: usize,
) -> Bytes {
  let reason = StatusCode::from_u16(status)
    .ok()
    .and_then(|s| s.canonical_reason())
    .unwrap_or("Unknown");
  let mut raw = format!("HTTP/1.1 {status} {reason}\r\n").into_bytes();
  for (name, value) in fault_headers(headers, !body.is_empty()) {
    raw.extend_from_slice(name.as_str().as_bytes());
    raw.extend_from_slice(b": ");
    raw.extend_from_slice(value.as_bytes());
    raw.extend_from_slice(b"\r\n");
  }
  raw.extend_from_slice(format!("content-length: {}\r\n\r\n", body.len()).as_bytes());
  raw.extend_from_slice(&body[..bytes.min(body.len())]);
  Bytes::from(raw)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn query_params() {
    assert_eq!(
      query_param(Some("link=true"), "link").as_deref(),
      Some("true")
    );
    assert_eq!(
      query_param(Some("a=1&email=a%2Bb%40x.com"), "email").as_deref(),
      Some("a+b@x.com")
    );
    assert_eq!(
      query_param(Some("email=a+b@x"), "email").as_deref(),
      Some("a+b@x")
    );
    assert_eq!(query_param(Some("x=%zz%4"), "x").as_deref(), Some("%zz%4"));
    assert_eq!(query_param(None, "x"), None);
  }

  #[test]
  fn truncated_bytes() {
    let raw = truncated_response(200, &Default::default(), b"[1,2,3]", 3);
    let text = String::from_utf8(raw.to_vec()).unwrap();
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"));
    assert!(text.contains("content-length: 7\r\n\r\n[1,"));
    assert!(text.ends_with("\r\n\r\n[1,"));
  }
}
