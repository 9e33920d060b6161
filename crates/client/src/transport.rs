//! HTTP: one reqwest client per App, deadlines on everything, bounded bodies,
//! and realm-core's reading of error responses.

use std::error::Error as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use reqwest::Method;
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderValue, LOCATION, RETRY_AFTER};
use reqwest::redirect;
use serde_json::{Map, Value};

use crate::deadline;
use crate::error::{Error, ErrorCode, Result};
use crate::log::{self, Category, Level};
use crate::secret::Secret;

/// Responses larger than this are refused: the auth API never sends more than a
/// few kilobytes, so anything bigger is a broken or hostile server.
pub const MAX_RESPONSE_BYTES: usize = 4 * 1024 * 1024;

/// Connecting gets at most this long, within the request's own deadline.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Idle pooled connections are closed after this long.
const POOL_IDLE_TIMEOUT: Duration = Duration::from_secs(30);

/// The location request follows at most this many redirects (realm-core up
/// to 14.12 followed 20; more than a few is a loop).
const MAX_LOCATION_REDIRECTS: usize = 5;

/// Content-Type realm-core sends (on every request; here on those with a body).
const JSON_UTF8: &str = "application/json;charset=utf-8";

/// The host a location request named, parsed once: when it is a bare origin
/// (`scheme://host[:port]`), a request's URL is that origin with its path
/// set, so only the path is parsed per request. (Parsing a whole URL, its
/// host through IDNA included, costs more than the rest of building a request.)
pub(crate) struct Host {
  /// As the location named it, trailing `/` trimmed.
  name: Arc<str>,
  /// `name` parsed, when it is a bare origin.
  origin: Option<reqwest::Url>,
}

impl Host {
  /// `name`: an http(s) URL without a trailing `/`.
  pub fn new(name: Arc<str>) -> Host {
    let origin = reqwest::Url::parse(&name)
      .ok()
      .filter(|u| u.path() == "/" && u.query().is_none() && u.fragment().is_none());
    Host { name, origin }
  }

  /// The URL of `path` (which starts with `/`) on this host: as text (for
  /// messages, and what a custom fetch gets), and parsed when that is cheap.
  pub fn url(&self, path: &str) -> (String, Option<reqwest::Url>) {
    let text = format!("{}{path}", self.name);
    // Only paths the URL parser keeps as they are: then setting the path and
    // parsing the whole text give the same URL.
    let plain = path
      .bytes()
      .all(|b| b.is_ascii_alphanumeric() || b"-._~/".contains(&b));
    let parsed = self.origin.as_ref().filter(|_| plain).map(|origin| {
      let mut url = origin.clone();
      url.set_path(path);
      url
    });
    (text, parsed)
  }
}

/// A request about to be sent.
pub(crate) struct Outgoing<'a> {
  pub method: Method,
  pub url: String,
  /// `url` parsed, when the host made that cheap (see [`Host`]).
  pub parsed: Option<reqwest::Url>,
  pub bearer: Option<&'a Secret>,
  pub body: Option<Vec<u8>>,
  /// Send no headers at all (realm-core's location request).
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

/// The HTTP client of an App.
///
/// Redirects: realm-core 14.14 follows none itself (14.13 removed its 301/308
/// handling and left redirects to the SDK's HTTP client; until then it
/// followed 301/308 for the location request only, up to 20 times, and took
/// the new location as its base URL). A client that follows every redirect
/// (fetch's default, and this crate's until now) re-sends a 307/308's body (a
/// password, an API key, a JWT) to wherever it points, across origins and
/// from https to http. Here, as core did: only the location request, which
/// carries no token and no body, follows redirects (301/308, at most
/// [`MAX_LOCATION_REDIRECTS`], never from https to http; the host its final
/// answer names is used, the base URL stays); every other request follows
/// none, and a redirect answer is a `ClientRedirectError`.
pub(crate) struct Transport {
  /// Follows no redirect: for every request that carries a token or a body.
  client: reqwest::Client,
  /// The location request's client, built when first needed.
  locator: OnceLock<reqwest::Client>,
  timeout: Duration,
  /// Sends every request instead of `client` when set.
  custom: Option<CustomFetch>,
}

/// The certificates `NODE_EXTRA_CA_CERTS` names, read once per process; an
/// unreadable file is reported once, as Node does, and ignored.
fn extra_certificates() -> &'static [reqwest::Certificate] {
  static EXTRA: OnceLock<Vec<reqwest::Certificate>> = OnceLock::new();
  EXTRA.get_or_init(|| {
    let Some(path) = std::env::var_os("NODE_EXTRA_CA_CERTS").filter(|p| !p.is_empty()) else {
      return Vec::new();
    };
    let loaded = std::fs::read(&path)
      .map_err(|e| e.to_string())
      .and_then(|pem| reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| e.to_string()));
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

pub(crate) fn method_name(m: &Method) -> &'static str {
  match *m {
    Method::GET => "GET",
    Method::POST => "POST",
    Method::PUT => "PUT",
    Method::DELETE => "DELETE",
    _ => "OTHER",
  }
}

/// The `source()` chain of an error, joined, without repeats: reqwest's own
/// `Display` hides the cause ("error sending request"), which is the useful part.
fn chain(err: &reqwest::Error) -> String {
  let mut out = String::new();
  let mut next: Option<&dyn std::error::Error> = err.source();
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

/// Why a request failed, in words a person reads (`connection refused`, `timed
/// out`), as the reason in realm v12's `request to <url> failed, reason: …`;
/// the transport's own description where there are no plainer words.
fn reason(err: &reqwest::Error) -> String {
  let mut next: Option<&dyn std::error::Error> = err.source();
  while let Some(e) = next {
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
    next = e.source();
  }
  let text = chain(err);
  if err.is_timeout() {
    "timed out".to_owned()
  } else if text.contains("dns error") {
    "could not resolve the host name".to_owned()
  } else if text.contains("connection closed before message completed") {
    "connection closed".to_owned()
  } else {
    text
  }
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
fn location_redirect(status: u16, from: &reqwest::Url, to: &reqwest::Url, hops: usize) -> Redirect {
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

/// Builds a client with `policy`: rustls with the ring provider and the
/// platform's roots (which honour `SSL_CERT_FILE`); no switch turns
/// verification off.
fn build_client(timeout: Duration, policy: redirect::Policy) -> Result<reqwest::Client> {
  // Fails harmlessly when a provider is already installed in this process.
  let _ = rustls::crypto::ring::default_provider().install_default();
  let mut builder = reqwest::Client::builder()
    .timeout(timeout)
    .connect_timeout(CONNECT_TIMEOUT.min(timeout))
    .pool_idle_timeout(POOL_IDLE_TIMEOUT)
    .redirect(policy);
  let extra = extra_certificates();
  if !extra.is_empty() {
    builder = builder.tls_certs_merge(extra.iter().cloned());
  }
  builder.build().map_err(|e| {
    Error::new(
      ErrorCode::NetworkError,
      format!("could not create the HTTP client: {}", chain(&e)),
    )
  })
}

impl Transport {
  /// Builds the App's client (see [`Transport`] for its redirects).
  pub fn new(timeout: Duration, custom: Option<CustomFetch>) -> Result<Transport> {
    Ok(Transport {
      client: build_client(timeout, redirect::Policy::none())?,
      locator: OnceLock::new(),
      timeout,
      custom,
    })
  }

  /// The client of `req`: the location request's may follow redirects.
  fn client_for(&self, req: &Outgoing<'_>) -> Result<&reqwest::Client> {
    if !carries_nothing(req) {
      return Ok(&self.client);
    }
    if let Some(client) = self.locator.get() {
      return Ok(client);
    }
    let policy = redirect::Policy::custom(|attempt| {
      let previous = attempt.previous();
      let Some(from) = previous.last() else {
        return attempt.stop();
      };
      match location_redirect(
        attempt.status().as_u16(),
        from,
        attempt.url(),
        previous.len() - 1,
      ) {
        Redirect::Follow => attempt.follow(),
        Redirect::Stop => attempt.stop(),
        Redirect::TooMany => attempt.error(format!("more than {MAX_LOCATION_REDIRECTS} redirects")),
      }
    });
    let client = build_client(self.timeout, policy)?;
    Ok(self.locator.get_or_init(|| client))
  }

  /// Sends a request once and reads the whole response (bounded), or fails with
  /// `NetworkError`, `Timeout` or `ResponseTooLarge`. Does not look at the
  /// status. The attempt gets the App's timeout, or what remains of the call's
  /// deadline if that is less.
  pub async fn send(&self, req: &Outgoing<'_>) -> Result<Incoming> {
    let method = method_name(&req.method);
    let url = req.url.as_str();
    // The attempt ends at the App's timeout or the call's deadline, whichever is first.
    let (attempt_timeout, limit) = match deadline::remaining() {
      Some((left, total)) if left < self.timeout => (left, total),
      _ => (self.timeout, self.timeout),
    };
    let fail = |e: reqwest::Error| {
      let mut err = if e.is_redirect() {
        Error::new(
          ErrorCode::ClientTooManyRedirects,
          format!("request to {url} was redirected more than {MAX_LOCATION_REDIRECTS} times"),
        )
      } else if e.is_timeout() {
        Error::new(
          ErrorCode::Timeout,
          format!("request to {url} timed out after {} ms", limit.as_millis()),
        )
      } else {
        Error::new(
          ErrorCode::NetworkError,
          format!("request to {url} failed, reason: {}", reason(&e)),
        )
      };
      // A failed connect never carried the request; anything later may have.
      err.sent = !e.is_connect();
      err.with_request(method, url)
    };

    if let Some(custom) = &self.custom {
      return self.send_custom(custom, req, attempt_timeout).await;
    }
    let client = self.client_for(req)?;
    let builder = match &req.parsed {
      Some(parsed) => client.request(req.method.clone(), parsed.clone()),
      None => client.request(req.method.clone(), url),
    };
    let mut builder = builder.timeout(attempt_timeout);
    if !req.bare {
      builder = builder.header(ACCEPT, HeaderValue::from_static("application/json"));
      // Only with a body: realm-core sends it on every request, and servers
      // that check it (Fastify) refuse an empty body labelled JSON with 400.
      if req.body.is_some() {
        builder = builder.header(CONTENT_TYPE, HeaderValue::from_static(JSON_UTF8));
      }
    }
    if let Some(token) = req.bearer {
      let mut value =
        HeaderValue::from_str(&format!("Bearer {}", token.expose())).map_err(|_| {
          Error::new(
            ErrorCode::BadToken,
            "the token contains characters not allowed in a header",
          )
        })?;
      value.set_sensitive(true);
      builder = builder.header(AUTHORIZATION, value);
    }
    if let Some(body) = &req.body {
      builder = builder.body(body.clone());
    }

    let mut resp = builder.send().await.map_err(fail)?;
    let status = resp.status().as_u16();
    let header = |name| {
      resp
        .headers()
        .get(name)
        .and_then(|v: &HeaderValue| v.to_str().ok())
        .map(str::to_owned)
    };
    let content_type = header(CONTENT_TYPE);
    let location = header(LOCATION);
    let retry_after = header(RETRY_AFTER)
      .and_then(|v| v.trim().parse::<u64>().ok())
      .map(Duration::from_secs);
    let too_large = || {
      Error::new(
        ErrorCode::ResponseTooLarge,
        format!("the response to {method} {url} is larger than {MAX_RESPONSE_BYTES} bytes"),
      )
      .with_request(method, url)
    };
    let declared = resp.content_length().unwrap_or(0);
    if declared > MAX_RESPONSE_BYTES as u64 {
      return Err(too_large());
    }
    let mut body = Vec::with_capacity(declared as usize);
    while let Some(chunk) = resp.chunk().await.map_err(fail)? {
      if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
        return Err(too_large());
      }
      body.extend_from_slice(&chunk);
    }
    Ok(Incoming {
      status,
      content_type,
      retry_after,
      location,
      body: Bytes::from(body),
      method,
      url: url.to_owned(),
    })
  }
}

impl Transport {
  /// [`Transport::send`] through the embedding's [`Fetch`]: the same headers,
  /// body limit, error forms and redirect rule. The fetch never follows a
  /// redirect itself (it could not apply the rule: any status, any scheme);
  /// the location request's 301/308 are followed here.
  async fn send_custom(
    &self,
    custom: &CustomFetch,
    req: &Outgoing<'_>,
    timeout: Duration,
  ) -> Result<Incoming> {
    let mut url = req.url.clone();
    let mut hops = 0;
    loop {
      let resp = Self::fetch_once(custom, req, &url, timeout).await?;
      let target = (carries_nothing(req) && matches!(resp.status, 301 | 308))
        .then(|| reqwest::Url::parse(&url).ok())
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
          url = to.into();
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

  /// One request through the embedding's [`Fetch`], to `url`.
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
      return Err(
        Error::new(
          ErrorCode::ResponseTooLarge,
          format!("the response to {method} {url} is larger than {MAX_RESPONSE_BYTES} bytes"),
        )
        .with_request(method, url),
      );
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
          assert_eq!(parsed, reqwest::Url::parse(&text).unwrap(), "{host} {path}");
        }
      }
    }
    // Bare origins with plain paths take the fast way; the rest parse their text.
    assert_eq!(fast, 7 * 3);
  }

  #[test]
  fn the_location_request_follows_permanent_redirects_but_never_down_to_http() {
    let url = |u: &str| u.parse::<reqwest::Url>().unwrap();
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
