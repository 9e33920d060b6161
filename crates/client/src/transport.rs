//! HTTP: one client per App, deadlines on everything, bounded bodies, and
//! realm-core's reading of error responses.
//!
//! Requests go straight to the server on hyper-util's client, the one reqwest
//! drives, with reqwest's TLS settings and connect rules. reqwest itself takes
//! only the requests a system proxy intercepts, whose protocol it knows: its
//! layers (redirect, retry and body wrappers, URL conversions) cost about 4 µs
//! of CPU per request (bench/README.md, "Issue 16: where it ends").

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{ACCEPT, AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, LOCATION, RETRY_AFTER};
use http::uri::{Authority, Scheme};
use http::{HeaderMap, HeaderValue, Method, Uri};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::proxy::matcher::Matcher;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Map, Value};

use crate::deadline;
use crate::error::{Error, ErrorCode, Result};
use crate::log::{self, Category, Level};
use crate::secret::Secret;

/// Responses larger than this are refused: the auth API never sends more than a
/// few kilobytes, so anything bigger is a broken or hostile server.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Connecting (name lookup, TCP and TLS) gets at most this long, within the
/// request's own deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The location request follows at most this many redirects (realm-core up
/// to 14.12 followed 20; more than a few is a loop).
const MAX_LOCATION_REDIRECTS: usize = 5;

/// Content-Type realm-core sends (on every request; here on those with a body).
const JSON_UTF8: &str = "application/json;charset=utf-8";

/// The host a location request named, parsed once: when it is a bare origin
/// (`scheme://host[:port]`, no credentials), a request's URI is that origin
/// with its path set, so only the path is parsed per request. (Parsing a whole
/// URL, its host through IDNA included, costs more than the rest of building a
/// request.)
pub(crate) struct Host {
  /// As the location named it, trailing `/` trimmed.
  name: Arc<str>,
  /// `name` parsed and normalised as a URL would be, when it is a bare origin.
  origin: Option<(Scheme, Authority)>,
}

impl Host {
  /// `name`: an http(s) URL without a trailing `/`.
  pub fn new(name: Arc<str>) -> Host {
    let origin = url::Url::parse(&name)
      .ok()
      .filter(|u| u.path() == "/" && u.query().is_none() && u.fragment().is_none())
      .filter(|u| u.username().is_empty() && u.password().is_none())
      .and_then(|u| Uri::try_from(u.as_str()).ok())
      .and_then(|u| {
        let parts = u.into_parts();
        Some((parts.scheme?, parts.authority?))
      });
    Host { name, origin }
  }

  /// The URL of `path` (which starts with `/`) on this host: as text (for
  /// messages, and what a custom fetch gets), and as a URI when that is cheap.
  pub fn url(&self, path: &str) -> (String, Option<Uri>) {
    let text = format!("{}{path}", self.name);
    // Only paths the URL parser keeps as they are (no escapes to add, no dot
    // segments to resolve): then setting the path and parsing the whole text
    // give the same URI.
    let plain = (path.bytes()).all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b))
      && !path
        .split('/')
        .any(|segment| segment == "." || segment == "..");
    let parsed = self
      .origin
      .as_ref()
      .filter(|_| plain)
      .and_then(|(scheme, authority)| {
        (Uri::builder().scheme(scheme.clone()))
          .authority(authority.clone())
          .path_and_query(path)
          .build()
          .ok()
      });
    (text, parsed)
  }
}

/// A request about to be sent.
pub(crate) struct Outgoing<'a> {
  pub method: Method,
  pub url: String,
  /// `url` parsed, when the host made that cheap (see [`Host`]).
  pub parsed: Option<Uri>,
  pub bearer: Option<&'a Secret>,
  pub body: Option<Bytes>,
  /// Send no headers of this SDK's own (realm-core's location request).
  pub bare: bool,
}

/// A fully read response.
#[derive(Debug)]
pub(crate) struct Incoming {
  pub status: u16,
  pub content_type: Option<String>,
  /// `Retry-After` in seconds, when the server sent one.
  pub retry_after: Option<Duration>,
  /// `Location`, when the server sent one (a redirect not followed).
  pub location: Option<String>,
  pub body: Bytes,
  pub method: &'static str,
  pub url: String,
}

/// A request handed to a [`Fetch`]: what would go on the wire. Its `Debug`
/// shows neither header values nor the body (tokens, passwords).
pub struct FetchRequest {
  /// `GET`, `POST`, `PUT` or `DELETE`.
  pub method: &'static str,
  /// The absolute URL.
  pub url: String,
  /// Header names (lower case) and values. `authorization` carries a token.
  pub headers: Vec<(&'static str, String)>,
  /// The JSON body, if any.
  pub body: Option<String>,
  /// How long the request may take (the attempt's share of the call's deadline).
  pub timeout: Duration,
}

impl std::fmt::Debug for FetchRequest {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    let headers: Vec<&str> = self.headers.iter().map(|(k, _)| *k).collect();
    f.debug_struct("FetchRequest")
      .field("method", &self.method)
      .field("url", &self.url)
      .field("headers", &headers)
      .field(
        "body",
        &self.body.as_ref().map(|b| format!("<{} bytes>", b.len())),
      )
      .field("timeout", &self.timeout)
      .finish()
  }
}

/// What a [`Fetch`] got back.
#[derive(Debug)]
pub struct FetchResponse {
  /// The HTTP status.
  pub status: u16,
  /// Header names (lower case) and values.
  pub headers: Vec<(String, String)>,
  /// The body, as text.
  pub body: String,
}

/// Why a [`Fetch`] could not send a request or read its answer.
#[derive(Debug)]
pub struct FetchFailure {
  /// In words for `request to <url> failed, reason: <reason>`.
  pub reason: String,
  /// An id the embedding gives the original failure (a JS error), so that it
  /// can attach it as the `cause` of the error it finally reports.
  pub cause: Option<std::num::NonZeroU32>,
}

/// A transport the embedding provides in place of this crate's own (realm
/// v12's `AppConfiguration.fetch`). Tokens, retries, deadlines, redirects and
/// parsing stay here; only the exchange of one request and its response is
/// handed over. It must not follow redirects itself (in JS: `redirect:
/// "manual"`): a 3xx answer comes back as it is, and the transport applies
/// its own rule (see `Transport`).
pub trait Fetch: Send + Sync {
  /// Sends `request`, or says why it could not.
  fn fetch(
    &self,
    request: FetchRequest,
  ) -> Pin<Box<dyn Future<Output = std::result::Result<FetchResponse, FetchFailure>> + Send>>;
}

/// A [`Fetch`] in an [`AppConfig`](crate::AppConfig): compared by identity.
#[derive(Clone)]
pub struct CustomFetch(pub Arc<dyn Fetch>);

impl std::fmt::Debug for CustomFetch {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    f.write_str("CustomFetch")
  }
}

impl PartialEq for CustomFetch {
  fn eq(&self, other: &CustomFetch) -> bool {
    Arc::ptr_eq(&self.0, &other.0)
  }
}

impl Eq for CustomFetch {}

/// hyper-util's client over TLS (or plain TCP for `http://`), as reqwest
/// builds it.
type Direct = hyper_util::client::legacy::Client<
  ConnectWithin<hyper_rustls::HttpsConnector<HttpConnector>>,
  Full<Bytes>,
>;

/// The HTTP client of an App.
///
/// Redirects: realm-core 14.14 follows none itself (14.13 removed its 301/308
/// handling and left redirects to the SDK's HTTP client; until then it
/// followed 301/308 for the location request only, up to 20 times, and took
/// the new location as its base URL). A client that follows every redirect
/// (fetch's default, and this crate's once) re-sends a 307/308's body (a
/// password, an API key, a JWT) to wherever it points, across origins and
/// from https to http. Here, as core did: only the location request, which
/// carries no token and no body, follows redirects (301/308, at most
/// [`MAX_LOCATION_REDIRECTS`], never from https to http; the host its final
/// answer names is used, the base URL stays); every other request follows
/// none, and a redirect answer is a `ClientRedirectError`.
pub(crate) struct Transport {
  /// Sends what no proxy intercepts.
  direct: Direct,
  /// Sends what a proxy intercepts, and URLs with credentials in them; it
  /// follows no redirect.
  proxied: reqwest::Client,
  /// The system's proxies (`HTTPS_PROXY`, `NO_PROXY`, …), as `proxied` reads them.
  proxies: Matcher,
  timeout: Duration,
  /// Sends every request instead of the two clients when set.
  custom: Option<CustomFetch>,
}

/// The certificates `NODE_EXTRA_CA_CERTS` names, read once per process; an
/// unreadable file is reported once, as Node does, and ignored.
fn extra_certificates() -> &'static [CertificateDer<'static>] {
  static EXTRA: OnceLock<Vec<CertificateDer<'static>>> = OnceLock::new();
  EXTRA.get_or_init(|| {
    let Some(path) = std::env::var_os("NODE_EXTRA_CA_CERTS").filter(|p| !p.is_empty()) else {
      return Vec::new();
    };
    let loaded = std::fs::read(&path)
      .map_err(|e| e.to_string())
      .and_then(|pem| {
        CertificateDer::pem_slice_iter(&pem)
          .collect::<std::result::Result<Vec<_>, _>>()
          .map_err(|_| "invalid certificate encoding".to_owned())
      });
    loaded.unwrap_or_else(|why| {
      log::log(Category::Sdk, Level::Warn, || {
        format!(
          "ignoring the extra certificates of NODE_EXTRA_CA_CERTS ({}): {why}",
          std::path::Path::new(&path).display()
        )
      });
      Vec::new()
    })
  })
}

/// The TLS settings of both clients, as reqwest 0.13 makes them: rustls with
/// the ring provider, TLS 1.2 and 1.3, the platform's verifier (the system's
/// roots, which honour `SSL_CERT_FILE`, plus `NODE_EXTRA_CA_CERTS`), SNI, and
/// HTTP/1.1 offered by ALPN. No switch turns verification off.
fn tls_config() -> Result<rustls::ClientConfig> {
  let broken = |what: &str, e: rustls::Error| {
    Error::new(
      ErrorCode::NetworkError,
      format!("could not create the HTTP client: {what}: {e}"),
    )
  };
  // Fails harmlessly when a provider is already installed in this process.
  let _ = rustls::crypto::ring::default_provider().install_default();
  let provider = rustls::crypto::CryptoProvider::get_default()
    .cloned()
    .unwrap_or_else(|| Arc::new(rustls::crypto::ring::default_provider()));
  let extra = extra_certificates();
  let verifier = if extra.is_empty() {
    rustls_platform_verifier::Verifier::new(provider.clone())
  } else {
    rustls_platform_verifier::Verifier::new_with_extra_roots(
      extra.iter().cloned(),
      provider.clone(),
    )
  }
  .map_err(|e| broken("the certificate verifier", e))?;
  let mut config = rustls::ClientConfig::builder_with_provider(provider)
    .with_protocol_versions(rustls::ALL_VERSIONS)
    .map_err(|e| broken("the TLS versions", e))?
    // "Dangerous" only in that it is not rustls' own verifier: this one checks
    // every certificate, as reqwest's does.
    .dangerous()
    .with_custom_certificate_verifier(Arc::new(verifier))
    .with_no_client_auth();
  config.alpn_protocols = vec![b"http/1.1".to_vec()];
  Ok(config)
}

/// A connector whose connections (name lookup, TCP, TLS) must be made within
/// a time, as reqwest's connect timeout is; a late one fails as timed out.
#[derive(Clone)]
struct ConnectWithin<C> {
  inner: C,
  within: Duration,
}

impl<C> tower_service::Service<Uri> for ConnectWithin<C>
where
  C: tower_service::Service<Uri> + Send,
  C::Future: Send + 'static,
  C::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
  type Response = C::Response;
  type Error = Box<dyn std::error::Error + Send + Sync>;
  type Future = Pin<Box<dyn Future<Output = std::result::Result<C::Response, Self::Error>> + Send>>;

  fn poll_ready(
    &mut self,
    cx: &mut std::task::Context<'_>,
  ) -> std::task::Poll<std::result::Result<(), Self::Error>> {
    self.inner.poll_ready(cx).map_err(Into::into)
  }

  fn call(&mut self, uri: Uri) -> Self::Future {
    let (connecting, within) = (self.inner.call(uri), self.within);
    Box::pin(async move {
      match tokio::time::timeout(within, connecting).await {
        Ok(connected) => connected.map_err(Into::into),
        Err(_) => Err(Box::new(std::io::Error::new(
          std::io::ErrorKind::TimedOut,
          "connecting timed out",
        )) as _),
      }
    })
  }
}

pub(crate) fn method_name(m: &Method) -> &'static str {
  match *m {
    Method::GET => "GET",
    Method::POST => "POST",
    Method::PUT => "PUT",
    Method::DELETE => "DELETE",
    _ => "OTHER",
  }
}

/// The `source()` chain of an error, joined, without repeats: the clients'
/// own `Display` hides the cause ("error sending request", "client error
/// (Connect)"), which is the useful part.
fn chain(err: &(dyn std::error::Error + 'static)) -> String {
  let mut out = String::new();
  let mut next = err.source();
  while let Some(e) = next {
    let text = e.to_string();
    if !out.contains(&text) {
      if !out.is_empty() {
        out.push_str(": ");
      }
      out.push_str(&text);
    }
    next = e.source();
  }
  if out.is_empty() { err.to_string() } else { out }
}

/// The error itself, then its causes.
fn causes<'a>(
  err: &'a (dyn std::error::Error + 'static),
) -> impl Iterator<Item = &'a (dyn std::error::Error + 'static)> {
  std::iter::successors(Some(err), |&e| e.source())
}

/// True when `err` is, or was caused by, something running out of time.
fn timed_out(err: &(dyn std::error::Error + 'static)) -> bool {
  causes(err).any(|e| {
    e.downcast_ref::<std::io::Error>()
      .is_some_and(|io| io.kind() == std::io::ErrorKind::TimedOut)
      || e
        .downcast_ref::<hyper::Error>()
        .is_some_and(hyper::Error::is_timeout)
      || e
        .downcast_ref::<reqwest::Error>()
        .is_some_and(reqwest::Error::is_timeout)
  })
}

/// Why a request failed, in words a person reads (`connection refused`, `timed
/// out`), as the reason in realm v12's `request to <url> failed, reason: …`;
/// the transport's own description where there are no plainer words.
fn reason(err: &(dyn std::error::Error + 'static)) -> String {
  for e in causes(err) {
    if let Some(io) = e.downcast_ref::<std::io::Error>() {
      use std::io::ErrorKind::*;
      let plain = match io.kind() {
        ConnectionRefused => Some("connection refused"),
        ConnectionReset => Some("connection reset"),
        ConnectionAborted => Some("connection aborted"),
        TimedOut => Some("timed out"),
        UnexpectedEof | BrokenPipe => Some("connection closed"),
        AddrNotAvailable | NetworkUnreachable | HostUnreachable => Some("host unreachable"),
        _ => None,
      };
      if let Some(plain) = plain {
        return plain.to_owned();
      }
    }
  }
  let text = chain(err);
  if timed_out(err) {
    "timed out".to_owned()
  } else if text.contains("dns error") {
    "could not resolve the host name".to_owned()
  } else if text.contains("connection closed before message completed") {
    "connection closed".to_owned()
  } else {
    text
  }
}

/// The error of a request to `url` that failed with `err`; `connect`: while
/// connecting, so the request never left.
fn failed(
  err: &(dyn std::error::Error + 'static),
  connect: bool,
  method: &'static str,
  url: &str,
  limit: Duration,
) -> Error {
  let mut error = if timed_out(err) {
    timed_out_error(url, limit)
  } else {
    Error::new(
      ErrorCode::NetworkError,
      format!("request to {url} failed, reason: {}", reason(err)),
    )
  };
  error.sent = !connect;
  error.with_request(method, url)
}

/// A request to `url` that ran out of its `limit`.
fn timed_out_error(url: &str, limit: Duration) -> Error {
  Error::new(
    ErrorCode::Timeout,
    format!("request to {url} timed out after {} ms", limit.as_millis()),
  )
}

/// What to do with a redirect of the location request from `from` to `to`
/// with `status`, after `hops` redirects.
#[derive(Debug, PartialEq, Eq)]
enum Redirect {
  /// Sent on to the new URL.
  Follow,
  /// Not followed: the redirect answer is the response.
  Stop,
  /// A `ClientTooManyRedirects` error.
  TooMany,
}

/// The location request's redirect rule (see [`Transport`]).
fn location_redirect(status: u16, from: &url::Url, to: &url::Url, hops: usize) -> Redirect {
  if !matches!(status, 301 | 308) || (from.scheme() == "https" && to.scheme() != "https") {
    Redirect::Stop
  } else if hops >= MAX_LOCATION_REDIRECTS {
    Redirect::TooMany
  } else {
    Redirect::Follow
  }
}

/// True for the location request: no headers, no token, no body, so
/// nothing a redirect could take elsewhere.
fn carries_nothing(req: &Outgoing<'_>) -> bool {
  req.bare && req.bearer.is_none() && req.body.is_none()
}

/// The headers of `req`, in the order reqwest sent them.
fn headers(req: &Outgoing<'_>) -> Result<HeaderMap> {
  let mut headers = HeaderMap::with_capacity(4);
  if req.bare {
    // What reqwest sends when a request names no `Accept`.
    headers.insert(ACCEPT, HeaderValue::from_static("*/*"));
  } else {
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    // Only with a body: realm-core sends it on every request, and servers
    // that check it (Fastify) refuse an empty body labelled JSON with 400.
    if req.body.is_some() {
      headers.insert(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
    }
  }
  if let Some(token) = req.bearer {
    let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
      Error::new(
        ErrorCode::BadToken,
        "the token contains characters not allowed in a header",
      )
    })?;
    value.set_sensitive(true);
    headers.insert(AUTHORIZATION, value);
  }
  Ok(headers)
}

/// A response to `method url` with `status` and `headers`, its body still to read.
fn read_head(status: u16, headers: &HeaderMap, method: &'static str, url: &str) -> Incoming {
  let header = |name| {
    (headers.get(name))
      .and_then(|v: &HeaderValue| v.to_str().ok())
      .map(str::to_owned)
  };
  Incoming {
    status,
    content_type: header(CONTENT_TYPE),
    retry_after: header(RETRY_AFTER)
      .and_then(|v| v.trim().parse::<u64>().ok())
      .map(Duration::from_secs),
    location: header(LOCATION),
    body: Bytes::new(),
    method,
    url: url.to_owned(),
  }
}

/// The error of a response to `method url` over [`MAX_RESPONSE_BYTES`].
fn too_large(method: &'static str, url: &str) -> Error {
  Error::new(
    ErrorCode::ResponseTooLarge,
    format!("the response to {method} {url} is larger than {MAX_RESPONSE_BYTES} bytes"),
  )
  .with_request(method, url)
}

/// A body's declared length, refused when over the limit.
fn declared_length(headers: &HeaderMap, method: &'static str, url: &str) -> Result<usize> {
  let declared = (headers.get(CONTENT_LENGTH))
    .and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok())
    .unwrap_or(0);
  if declared > MAX_RESPONSE_BYTES as u64 {
    return Err(too_large(method, url));
  }
  Ok(declared as usize)
}

impl Transport {
  /// Builds the App's clients (see [`Transport`] for their redirects).
  pub fn new(timeout: Duration, custom: Option<CustomFetch>) -> Result<Transport> {
    let tls = tls_config()?;
    let connect_within = CONNECT_TIMEOUT.min(timeout);
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    let connector = ConnectWithin {
      inner: hyper_rustls::HttpsConnector::from((http, tls.clone())),
      within: connect_within,
    };
    let direct = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
      .timer(hyper_util::rt::TokioTimer::new())
      .pool_timer(hyper_util::rt::TokioTimer::new())
      .pool_idle_timeout(POOL_IDLE_TIMEOUT)
      .build(connector);
    let proxied = reqwest::Client::builder()
      .tls_backend_preconfigured(tls)
      .timeout(timeout)
      .connect_timeout(connect_within)
      .pool_idle_timeout(POOL_IDLE_TIMEOUT)
      .redirect(reqwest::redirect::Policy::none())
      .build()
      .map_err(|e| {
        Error::new(
          ErrorCode::NetworkError,
          format!("could not create the HTTP client: {}", chain(&e)),
        )
      })?;
    Ok(Transport {
      direct,
      proxied,
      proxies: Matcher::from_system(),
      timeout,
      custom,
    })
  }

  /// Sends a request once and reads the whole response (bounded), or fails with
  /// `NetworkError`, `Timeout` or `ResponseTooLarge`. Does not look at the
  /// status, but follows the location request's redirects (see
  /// [`Transport`]). The attempt, its redirects included, gets the App's
  /// timeout, or what remains of the call's deadline if that is less.
  pub async fn send(&self, req: &Outgoing<'_>) -> Result<Incoming> {
    let (attempt, limit) = match deadline::remaining() {
      Some((left, total)) if left < self.timeout => (left, total),
      _ => (self.timeout, self.timeout),
    };
    let ends = Instant::now() + attempt;
    let mut resp = self
      .once(req, &req.url, req.parsed.clone(), attempt, limit)
      .await?;
    if !carries_nothing(req) {
      return Ok(resp);
    }
    let mut hops = 0;
    loop {
      let target = matches!(resp.status, 301 | 308)
        .then(|| url::Url::parse(&resp.url).ok())
        .flatten()
        .and_then(|from| {
          Some((
            resp.location.as_deref().and_then(|l| from.join(l).ok())?,
            from,
          ))
        });
      let Some((to, from)) = target else {
        return Ok(resp);
      };
      match location_redirect(resp.status, &from, &to, hops) {
        Redirect::Follow => {
          let left = ends.saturating_duration_since(Instant::now());
          resp = self.once(req, to.as_str(), None, left, limit).await?;
          hops += 1;
        }
        Redirect::Stop => return Ok(resp),
        Redirect::TooMany => {
          return Err(
            Error::new(
              ErrorCode::ClientTooManyRedirects,
              format!(
                "request to {} was redirected more than {MAX_LOCATION_REDIRECTS} times",
                req.url
              ),
            )
            .with_request(resp.method, &req.url),
          );
        }
      }
    }
  }

  /// One request, `req` sent to `url` (`parsed`, when known), with no
  /// redirect followed: through the custom fetch when there is one, else
  /// straight to the server unless a proxy takes it.
  async fn once(
    &self,
    req: &Outgoing<'_>,
    url: &str,
    parsed: Option<Uri>,
    timeout: Duration,
    limit: Duration,
  ) -> Result<Incoming> {
    if let Some(custom) = &self.custom {
      return Self::fetch_once(custom, req, url, timeout).await;
    }
    let uri = parsed.or_else(|| {
      // Credentials in a URL become a Basic `Authorization` in reqwest.
      let url = url::Url::parse(url).ok()?;
      let plain = url.username().is_empty() && url.password().is_none();
      plain.then(|| Uri::try_from(url.as_str()).ok()).flatten()
    });
    match uri {
      Some(uri) if self.proxies.intercept(&uri).is_none() => {
        self.direct_once(req, url, uri, timeout, limit).await
      }
      _ => self.proxied_once(req, url, timeout, limit).await,
    }
  }

  /// [`Transport::once`] on hyper-util's client.
  async fn direct_once(
    &self,
    req: &Outgoing<'_>,
    url: &str,
    uri: Uri,
    timeout: Duration,
    limit: Duration,
  ) -> Result<Incoming> {
    let method = method_name(&req.method);
    let mut request = http::Request::new(Full::new(req.body.clone().unwrap_or_default()));
    *request.method_mut() = req.method.clone();
    *request.uri_mut() = uri;
    *request.headers_mut() = headers(req)?;
    let exchange = async {
      let fail =
        |e: &(dyn std::error::Error + 'static), connect| failed(e, connect, method, url, limit);
      let resp = (self.direct.request(request).await).map_err(|e| fail(&e, e.is_connect()))?;
      let (head, mut body) = resp.into_parts();
      let mut incoming = read_head(head.status.as_u16(), &head.headers, method, url);
      let mut bytes = Vec::with_capacity(declared_length(&head.headers, method, url)?);
      while let Some(frame) = body.frame().await {
        let Ok(chunk) = frame.map_err(|e| fail(&e, false))?.into_data() else {
          continue;
        };
        if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
          return Err(too_large(method, url));
        }
        bytes.extend_from_slice(&chunk);
      }
      incoming.body = Bytes::from(bytes);
      Ok(incoming)
    };
    match tokio::time::timeout(timeout, exchange).await {
      Ok(done) => done,
      Err(_) => {
        // It may have left: the time may have run out after the request was written.
        let mut err = timed_out_error(url, limit);
        err.sent = true;
        Err(err.with_request(method, url))
      }
    }
  }

  /// [`Transport::once`] through reqwest, which knows proxies.
  async fn proxied_once(
    &self,
    req: &Outgoing<'_>,
    url: &str,
    timeout: Duration,
    limit: Duration,
  ) -> Result<Incoming> {
    let method = method_name(&req.method);
    let fail = |e: reqwest::Error| failed(&e, e.is_connect(), method, url, limit);
    let mut builder = (self.proxied.request(req.method.clone(), url))
      .timeout(timeout)
      .headers(headers(req)?);
    if let Some(body) = &req.body {
      builder = builder.body(body.clone());
    }
    let mut resp = builder.send().await.map_err(fail)?;
    let mut incoming = read_head(resp.status().as_u16(), resp.headers(), method, url);
    let mut bytes = Vec::with_capacity(declared_length(resp.headers(), method, url)?);
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
      if bytes.len() + chunk.len() > MAX_RESPONSE_BYTES {
        return Err(too_large(method, url));
      }
      bytes.extend_from_slice(&chunk);
    }
    incoming.body = Bytes::from(bytes);
    Ok(incoming)
  }

  /// One request through the embedding's [`Fetch`], to `url`: the same
  /// headers, body limit and error forms. The fetch never follows a redirect
  /// itself (it could not apply the rule: any status, any scheme).
  async fn fetch_once(
    custom: &CustomFetch,
    req: &Outgoing<'_>,
    url: &str,
    timeout: Duration,
  ) -> Result<Incoming> {
    let method = method_name(&req.method);
    let mut headers = Vec::new();
    if !req.bare {
      headers.push(("accept", "application/json".to_owned()));
      if req.body.is_some() {
        headers.push(("content-type", JSON_UTF8.to_owned()));
      }
    }
    if let Some(token) = req.bearer {
      headers.push(("authorization", format!("Bearer {}", token.expose())));
    }
    let request = FetchRequest {
      method,
      url: url.to_owned(),
      headers,
      body: req
        .body
        .as_ref()
        .map(|b| String::from_utf8_lossy(b).into_owned()),
      timeout,
    };
    let resp = custom.0.fetch(request).await.map_err(|failure| {
      let mut err = Error::new(
        ErrorCode::NetworkError,
        format!("request to {url} failed, reason: {}", failure.reason),
      );
      err.cause = failure.cause;
      // Whether it left is unknown: a custom fetch does not say.
      err.sent = true;
      err.with_request(method, url)
    })?;
    if resp.body.len() > MAX_RESPONSE_BYTES {
      return Err(too_large(method, url));
    }
    let header = |name: &str| {
      (resp.headers.iter())
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.clone())
    };
    Ok(Incoming {
      status: resp.status,
      content_type: header("content-type"),
      retry_after: header("retry-after")
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs),
      location: header("location"),
      body: Bytes::from(resp.body),
      method,
      url: url.to_owned(),
    })
  }
}

fn status_class(status: u16) -> &'static str {
  match status {
    100..=199 => "Informational",
    200..=299 => "Success",
    300..=399 => "Redirection",
    400..=499 => "Client Error",
    500..=599 => "Server Error",
    _ => "Unknown HTTP Error",
  }
}

/// At most this much of a non-JSON error body goes into a message.
const BODY_IN_MESSAGE: usize = 256;

/// `T` read from a JSON object only: serde's derived structs also accept an
/// array of the field values, which no response document is. For the parsers'
/// fast paths, straight from the bytes into typed structs.
pub(crate) struct Obj<T>(pub T);

impl<'de, T: serde::Deserialize<'de>> serde::Deserialize<'de> for Obj<T> {
  fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
    struct Visitor<T>(std::marker::PhantomData<T>);
    impl<'de, T: serde::Deserialize<'de>> serde::de::Visitor<'de> for Visitor<T> {
      type Value = T;
      fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON object")
      }
      fn visit_map<A: serde::de::MapAccess<'de>>(self, map: A) -> std::result::Result<T, A::Error> {
        T::deserialize(serde::de::value::MapAccessDeserializer::new(map))
      }
    }
    d.deserialize_map(Visitor(std::marker::PhantomData))
      .map(Obj)
  }
}

#[cfg(test)]
impl Incoming {
  /// A 200 response with this JSON body, for parser tests.
  pub(crate) fn ok_json(body: &str) -> Incoming {
    Incoming {
      status: 200,
      content_type: Some("application/json".into()),
      retry_after: None,
      location: None,
      body: Bytes::from(body.to_owned()),
      method: "GET",
      url: "http://h/x".into(),
    }
  }
}

impl Incoming {
  fn is_json(&self) -> bool {
    // realm-core wants exactly `application/json`; servers that add a charset
    // parameter are common and harmless, so parameters are allowed here.
    self.content_type.as_deref().is_some_and(|ct| {
      let essence = ct.split(';').next().unwrap_or("").trim();
      essence.eq_ignore_ascii_case("application/json")
    })
  }

  fn error(&self, code: ErrorCode, message: String) -> Error {
    Error {
      status_code: Some(self.status),
      ..Error::new(code, message).with_request(self.method, &self.url)
    }
  }

  /// A 404 `APIKeyNotFound` answer to a request for one user API key: what a
  /// retried `DELETE` of a key meets once its first attempt deleted it. (Any
  /// other 404, e.g. an `AppNotFound` from a misrouted gateway, is not that.)
  pub fn is_key_not_found(&self) -> bool {
    #[derive(serde::Deserialize)]
    struct Code<'a> {
      #[serde(borrow)]
      error_code: Option<std::borrow::Cow<'a, str>>,
    }
    self.status == 404
      && self.url.contains("/auth/api_keys/")
      && serde_json::from_slice::<Code>(&self.body)
        .is_ok_and(|c| c.error_code.as_deref() == Some("APIKeyNotFound"))
  }

  /// realm-core's `check_for_errors`: a JSON body with `error_code` or `error`
  /// is an error whatever the status; otherwise a non-2xx status is an `HTTPError`.
  pub fn check(self) -> Result<Incoming> {
    /// Only the error fields of an object body: the rest is skipped, not built
    /// (a success body is parsed once, later, into its own type).
    #[derive(serde::Deserialize)]
    struct ErrorFields {
      error: Option<Value>,
      error_code: Option<Value>,
      link: Option<Value>,
      /// Not App Services': other servers' (Fastify's) detail and code.
      message: Option<Value>,
      code: Option<Value>,
    }
    let error_fields = || {
      serde_json::from_slice::<ErrorFields>(&self.body)
        .ok()
        .or_else(|| {
          // Valid JSON that the struct refuses (a repeated key): the last value
          // wins, as in a `Value`.
          let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&self.body) else {
            return None;
          };
          Some(ErrorFields {
            error: map.remove("error"),
            error_code: map.remove("error_code"),
            link: map.remove("link"),
            message: map.remove("message"),
            code: map.remove("code"),
          })
        })
    };
    if self.is_json()
      && self.body.trim_ascii_start().first() == Some(&b'{')
      && let Some(fields) = error_fields()
    {
      let text = |v: Option<Value>| match v {
        Some(Value::String(s)) => Some(s),
        _ => None,
      };
      // An empty `error` says nothing: treat it as absent.
      let message = text(fields.error).filter(|m| !m.trim().is_empty());
      let link = text(fields.link);
      match text(fields.error_code).filter(|c| !c.is_empty()) {
        Some(server_code) => {
          let mut err = self.error(
            ErrorCode::from_server(&server_code),
            message.unwrap_or_else(|| "no error message".to_owned()),
          );
          err.server_error_code = Some(server_code);
          err.link = link;
          return Err(err);
        }
        None => {
          if let Some(error) = message {
            // A server that is not App Services (Fastify: `{ error: "Bad
            // Request", message, code }`) keeps its own detail and code.
            let detail = text(fields.message).filter(|d| !d.trim().is_empty() && *d != error);
            let message = match detail {
              Some(detail) => format!("{error}: {detail}"),
              None => error,
            };
            let mut err = self.error(ErrorCode::AppUnknownError, message);
            err.server_error_code = text(fields.code).filter(|c| !c.is_empty());
            err.link = link;
            return Err(err);
          }
        }
      }
    }
    if (200..300).contains(&self.status) {
      return Ok(self);
    }
    if (300..400).contains(&self.status) {
      let to = self.location.as_deref().unwrap_or("nowhere (no Location)");
      let message = format!(
        "the server redirected {} {} to {to} ({}): not followed, since only the location \
         request follows redirects (301/308, never from https to http)",
        self.method, self.url, self.status
      );
      return Err(self.error(ErrorCode::ClientRedirectError, message));
    }
    let body = String::from_utf8_lossy(&self.body);
    let body = body.trim();
    let mut message = String::from("http error code considered fatal");
    if !body.is_empty() {
      message.push_str(": ");
      let cut = body
        .char_indices()
        .nth(BODY_IN_MESSAGE)
        .map_or(body.len(), |(i, _)| i);
      message.push_str(&body[..cut]);
      if cut < body.len() {
        message.push('…');
      }
    }
    message.push_str(&format!(". {}: {}", status_class(self.status), self.status));
    Err(self.error(ErrorCode::HTTPError, message))
  }

  /// The body as a JSON value, or `MalformedJson`.
  pub fn json(&self) -> Result<Value> {
    serde_json::from_slice(&self.body).map_err(|e| {
      self.error(
        ErrorCode::MalformedJson,
        format!(
          "the response to {} {} is not valid JSON: {e}",
          self.method, self.url
        ),
      )
    })
  }

  /// The body as a `T` read from a JSON object, or `None` if it is not one:
  /// a parser's fast path, which falls back to the `Value` path that names
  /// what is wrong.
  pub fn fast<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
    serde_json::from_slice::<Obj<T>>(&self.body)
      .ok()
      .map(|Obj(t)| t)
  }

  /// The body as a JSON object, or `MalformedJson`.
  pub fn object(&self) -> Result<Map<String, Value>> {
    match self.json()? {
      Value::Object(map) => Ok(map),
      _ => Err(self.malformed("a JSON object")),
    }
  }

  /// A `MalformedJson` error saying what was expected.
  pub fn malformed(&self, expected: &str) -> Error {
    self.error(
      ErrorCode::MalformedJson,
      format!(
        "the response to {} {} is not {expected}",
        self.method, self.url
      ),
    )
  }

  /// A required string field, or `MissingJsonKey` (named after the key, as realm-core does).
  pub fn string(&self, map: &Map<String, Value>, key: &str) -> Result<String> {
    match map.get(key) {
      Some(Value::String(s)) => Ok(s.clone()),
      Some(_) => Err(self.malformed(&format!("an object whose '{key}' is a string"))),
      None => Err(self.error(ErrorCode::MissingJsonKey, key.to_owned())),
    }
  }

  /// A required boolean field, or `MissingJsonKey`.
  pub fn boolean(&self, map: &Map<String, Value>, key: &str) -> Result<bool> {
    match map.get(key) {
      Some(Value::Bool(b)) => Ok(*b),
      Some(_) => Err(self.malformed(&format!("an object whose '{key}' is a boolean"))),
      None => Err(self.error(ErrorCode::MissingJsonKey, key.to_owned())),
    }
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_host_builds_the_url_its_text_parses_to() {
    let hosts = [
      "http://127.0.0.1:9090",
      "https://services.cloud.mongodb.com",
      "HTTP://LocalHost:80",
      "https://[::1]:8443",
      "http://user:pass@example.com:1",
      "https://xn--bcher-kva.example",
      "https://bücher.example",
      "http://example.com/prefix",
      "http://example.com?q=1",
    ];
    let paths = [
      "/api/client/v2.0/auth/api_keys",
      "/api/client/v2.0/app/my-app_1.x~/auth/providers/local-userpass/login",
      "/api/client/v2.0/app/a b/location",
      "/api/client/v2.0/app/a?b/location",
      "/api/client/v2.0/app/a#b/location",
      "/api/client/v2.0/app/%41/location",
      "/api/client/v2.0/app/../location",
      "/api/client/v2.0/app/./location",
      "/api/client/v2.0/app/..",
      "/api/client/v2.0/app/ü/location",
    ];
    let mut fast = 0;
    for host in hosts {
      let h = Host::new(Arc::from(host));
      for path in paths {
        let (text, parsed) = h.url(path);
        assert_eq!(text, format!("{host}{path}"));
        if let Some(parsed) = parsed {
          fast += 1;
          let url = url::Url::parse(&text).unwrap();
          assert_eq!(
            parsed,
            Uri::try_from(url.as_str()).unwrap(),
            "{host} {path}"
          );
        }
      }
    }
    // Bare origins without credentials, with plain paths, take the fast way;
    // the rest parse their text.
    assert_eq!(fast, 6 * 2);
  }

  /// A connector whose connections never complete.
  #[derive(Clone)]
  struct Stalled;

  impl tower_service::Service<Uri> for Stalled {
    type Response = ();
    type Error = std::io::Error;
    type Future = std::future::Pending<std::io::Result<()>>;

    fn poll_ready(
      &mut self,
      _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
      std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: Uri) -> Self::Future {
      std::future::pending()
    }
  }

  #[tokio::test]
  async fn a_connection_not_made_in_time_fails_as_timed_out() {
    use tower_service::Service;
    let mut connector = ConnectWithin {
      inner: Stalled,
      within: Duration::from_millis(20),
    };
    let uri = Uri::from_static("http://127.0.0.1:1/");
    // Bounded, so that a connector that never gives up fails the test instead of hanging it.
    let connecting = tokio::time::timeout(Duration::from_secs(5), connector.call(uri));
    let err = connecting.await.expect("gave up in time").unwrap_err();
    assert!(timed_out(&*err));
    assert_eq!(reason(&*err), "timed out");
  }

  #[test]
  fn the_location_request_follows_permanent_redirects_but_never_down_to_http() {
    let url = |u: &str| u.parse::<url::Url>().unwrap();
    let (https, http) = (url("https://a.example/x"), url("http://b.example/x"));
    let other = url("https://b.example/x");
    assert_eq!(location_redirect(301, &https, &other, 0), Redirect::Follow);
    assert_eq!(location_redirect(308, &http, &other, 0), Redirect::Follow);
    assert_eq!(location_redirect(308, &https, &http, 0), Redirect::Stop);
    assert_eq!(location_redirect(307, &https, &other, 0), Redirect::Stop);
    assert_eq!(location_redirect(302, &http, &http, 0), Redirect::Stop);
    assert_eq!(
      location_redirect(301, &https, &other, MAX_LOCATION_REDIRECTS),
      Redirect::TooMany
    );
  }

  #[test]
  fn a_redirect_answer_is_a_redirect_error() {
    let mut redirected = resp(307, None, "");
    redirected.location = Some("http://elsewhere/login".into());
    let err = redirected.check().unwrap_err();
    assert_eq!(err.code, ErrorCode::ClientRedirectError);
    assert!(
      err.message.contains("http://elsewhere/login"),
      "{}",
      err.message
    );
  }

  fn resp(status: u16, ct: Option<&str>, body: &str) -> Incoming {
    Incoming {
      status,
      content_type: ct.map(str::to_owned),
      retry_after: None,
      location: None,
      body: Bytes::from(body.to_owned()),
      method: "GET",
      url: "http://h/x".into(),
    }
  }

  #[test]
  fn a_repeated_key_is_read_as_its_last_value() {
    let err = resp(
      400,
      Some("application/json"),
      r#"{"error":"first","error_code":"InvalidParameter","error":"last","extra":[1,{}]}"#,
    )
    .check()
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::InvalidParameter);
    assert_eq!(err.message, "last");
  }

  #[test]
  fn json_error_code_wins_even_on_2xx() {
    let err = resp(
      200,
      Some("application/json"),
      r#"{"error":"API key not found","error_code":"APIKeyNotFound","link":"l"}"#,
    )
    .check()
    .unwrap_err();
    assert_eq!(err.code, ErrorCode::APIKeyNotFound);
    assert_eq!(err.message, "API key not found");
    assert_eq!(err.server_error_code.as_deref(), Some("APIKeyNotFound"));
    assert_eq!(err.link.as_deref(), Some("l"));
    assert_eq!(err.status_code, Some(200));
  }

  #[test]
  fn error_without_code_is_unknown() {
    let err = resp(
      400,
      Some("application/json; charset=utf-8"),
      r#"{"error":"boom"}"#,
    )
    .check()
    .unwrap_err();
    assert_eq!(
      (err.code, err.message.as_str()),
      (ErrorCode::AppUnknownError, "boom")
    );
  }

  #[test]
  fn another_servers_error_keeps_its_detail_and_code() {
    // Fastify's answer to an empty body labelled JSON.
    let body = r#"{"statusCode":400,"code":"FST_ERR_CTP_EMPTY_JSON_BODY","error":"Bad Request","message":"Body cannot be empty when content-type is set to 'application/json'"}"#;
    let err = resp(400, Some("application/json; charset=utf-8"), body)
      .check()
      .unwrap_err();
    assert_eq!(err.code, ErrorCode::AppUnknownError);
    assert_eq!(
      err.message,
      "Bad Request: Body cannot be empty when content-type is set to 'application/json'"
    );
    assert_eq!(
      err.server_error_code.as_deref(),
      Some("FST_ERR_CTP_EMPTY_JSON_BODY")
    );
    assert_eq!(err.status_code, Some(400));
  }

  #[test]
  fn empty_error_texts_still_give_a_message() {
    let err = resp(
      400,
      Some("application/json"),
      r#"{"error":"","error_code":"BadRequest"}"#,
    )
    .check()
    .unwrap_err();
    assert_eq!(
      (err.code, err.message.as_str()),
      (ErrorCode::BadRequest, "no error message")
    );
    let err = resp(400, Some("application/json"), r#"{"error":" "}"#)
      .check()
      .unwrap_err();
    assert_eq!(err.code, ErrorCode::HTTPError);
    assert!(
      resp(200, Some("application/json"), r#"{"error":""}"#)
        .check()
        .is_ok()
    );
  }

  #[test]
  fn non_json_errors_are_http_errors() {
    let err = resp(403, None, "").check().unwrap_err();
    assert_eq!(
      err.message,
      "http error code considered fatal. Client Error: 403"
    );
    let err = resp(502, Some("text/html"), "<h1>Bad gateway</h1>")
      .check()
      .unwrap_err();
    assert_eq!(err.code, ErrorCode::HTTPError);
    assert_eq!(
      err.message,
      "http error code considered fatal: <h1>Bad gateway</h1>. Server Error: 502"
    );
    let long = "x".repeat(1000);
    let err = resp(500, Some("text/plain"), &long).check().unwrap_err();
    assert!(err.message.len() < 400);
  }

  #[test]
  fn success_passes_and_fields_are_checked() {
    let ok = resp(200, Some("application/json"), r#"{"a":"s","b":true,"c":1}"#)
      .check()
      .unwrap();
    let map = ok.object().unwrap();
    assert_eq!(ok.string(&map, "a").unwrap(), "s");
    assert!(ok.boolean(&map, "b").unwrap());
    assert_eq!(
      ok.string(&map, "zz").unwrap_err().code,
      ErrorCode::MissingJsonKey
    );
    assert_eq!(
      ok.string(&map, "c").unwrap_err().code,
      ErrorCode::MalformedJson
    );
    assert_eq!(
      resp(200, None, "{oops").json().unwrap_err().code,
      ErrorCode::MalformedJson
    );
  }
}
