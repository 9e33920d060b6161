//! Delivering confirmation and reset tokens ([`Config::token_delivery`](crate::Config)): a
//! signed JSON webhook or an email through SMTP.
//!
//! The store keeps only hashes of pending tokens, so the plain token exists in this process for
//! an instant after a register, confirm/send, confirm/call or reset/send: this module hands it
//! on. Delivery runs in its own task, after the answer is decided, so a slow or dead receiver
//! never delays or changes a client's answer (the real server also answers 204 to reset/send
//! whatever becomes of the email). Failures go to stderr without the token or its id, and are
//! counted ([`DeliveryStats`]); the address shows as its domain only, and an SMTP server's reply
//! is scrubbed of addresses and of the local part (best effort: a server may word it otherwise).

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use hmac::{KeyInit, Mac};
use http_body_util::Full;
use hyper::Request;
use hyper_util::rt::TokioIo;
use lettre::message::header::ContentType;
use lettre::message::{Mailbox, Message};
use lettre::transport::smtp::authentication::Credentials;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, pki_types::ServerName};

use crate::control::TokenPair;
use crate::server::Shared;
use crate::store::Pending;
use crate::tokens::HmacSha256;

/// Attempts per token, the first included: a receiver that restarts or an SMTP server that
/// greylists gets a few chances within seconds, without turning a dead one into a backlog.
const ATTEMPTS: u32 = 4;
/// The wait before the first retry; it doubles before each next one (250 ms, 500 ms, 1 s).
const FIRST_BACKOFF: Duration = Duration::from_millis(250);
/// Deliveries waiting or under way at most; more are dropped (and counted as failed), so that a
/// flood of reset/send requests to a dead receiver cannot grow memory without bound.
const MAX_IN_FLIGHT: usize = 1024;
/// The buffer for a webhook's response head, at most (its status is all that counts; the body
/// is never read).
const RESPONSE_LIMIT: usize = 64 * 1024;

/// Where confirmation and reset tokens go in production: a webhook or an SMTP server. JSON:
/// `{"kind": "webhook", ...}` or `{"kind": "smtp", ...}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum TokenDelivery {
  /// A JSON POST to a URL of yours, which sends the email (or anything else) itself.
  Webhook(WebhookDelivery),
  /// An email through an SMTP server, with a link to your confirmation or reset page.
  Smtp(SmtpDelivery),
}

/// A JSON POST `{"type": "confirm"|"reset", "appId", "email", "token", "tokenId"}` per token.
#[derive(Serialize, Deserialize, Clone, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WebhookDelivery {
  /// `http://` or `https://` URL the POST goes to.
  pub url: String,
  /// A file holding the HMAC-SHA256 key (its text, without a trailing line break): each POST then
  /// carries `X-Realm-Auth-Timestamp: <unix seconds>` and `X-Realm-Auth-Signature:
  /// sha256=<hex HMAC of "<timestamp>." followed by the body>`. Read once, at start.
  #[serde(default)]
  pub secret_file: Option<PathBuf>,
  /// Deadline of one attempt: connecting, TLS, sending and the response's status (default 5000);
  /// the response's body is not read.
  #[serde(default = "default_timeout_ms")]
  pub timeout_ms: u64,
}

// The URL's query and userinfo may hold a key of the receiver's: show where it goes, not the
// whole URL (`Config` is printed before `Delivery::new` refuses credentials in it).
impl fmt::Debug for WebhookDelivery {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    let shown = url::Url::parse(&self.url).map_or_else(
      |_| "<unparsable>".to_string(),
      |mut u| {
        let _ = u.set_username("");
        let _ = u.set_password(None);
        u[..url::Position::AfterPath].to_string()
      },
    );
    f.debug_struct("WebhookDelivery")
      .field("url", &shown)
      .field("secret_file", &self.secret_file)
      .field("timeout_ms", &self.timeout_ms)
      .finish()
  }
}

/// An email per token, in plain text, with a link to `confirmUrl` or `resetUrl` plus
/// `?token=…&tokenId=…`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SmtpDelivery {
  /// The SMTP server's name (also the name its certificate must carry).
  pub host: String,
  /// Its port (default: 587 for `starttls`, 465 for `tls`, 25 for `none`).
  #[serde(default)]
  pub port: Option<u16>,
  /// The sender: `noreply@example.com` or `Example <noreply@example.com>`.
  pub from: String,
  /// The SMTP login, if the server wants one (then `passwordFile` too).
  #[serde(default)]
  pub username: Option<String>,
  /// A file holding the SMTP password (without a trailing line break). Read once, at start.
  #[serde(default)]
  pub password_file: Option<PathBuf>,
  /// How the connection is protected (default `starttls`).
  #[serde(default)]
  pub tls: SmtpTls,
  /// Deadline of one attempt, the whole SMTP conversation (default 5000).
  #[serde(default = "default_timeout_ms")]
  pub timeout_ms: u64,
  /// The page that confirms an account: `https://app.example.com/confirm`.
  pub confirm_url: String,
  /// The page that sets a new password: `https://app.example.com/reset`.
  pub reset_url: String,
}

/// How an SMTP connection is protected.
#[derive(Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum SmtpTls {
  /// Plain text, for a relay on the same machine or private network (port 25).
  None,
  /// Plain connection upgraded with STARTTLS, which is required (port 587).
  #[default]
  Starttls,
  /// TLS from the first byte (port 465).
  Tls,
}

fn default_timeout_ms() -> u64 {
  5000
}

/// What became of the tokens handed to delivery since the start.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct DeliveryStats {
  /// Accepted by the receiver (a 2xx webhook answer, an SMTP server's 250 to the message).
  pub delivered: u64,
  /// Given up on (after the retries, or dropped because too many were waiting).
  pub failed: u64,
  /// Waiting or under way.
  pub in_flight: u64,
}

/// The validated, ready-to-send form of a [`TokenDelivery`].
pub(crate) struct Delivery {
  sender: Sender,
  timeout: Duration,
  delivered: AtomicU64,
  failed: AtomicU64,
  in_flight: AtomicUsize,
  /// [`MAX_IN_FLIGHT`], lowered by tests.
  max_in_flight: usize,
}

enum Sender {
  Webhook {
    url: url::Url,
    /// `None` for `http://` URLs.
    tls: Option<TlsConnector>,
    key: Option<HmacSha256>,
  },
  Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
    from: Mailbox,
    confirm_url: url::Url,
    reset_url: url::Url,
  },
}

/// Why one attempt failed, worded without the token.
struct Failure {
  message: String,
  /// Worth another attempt (5xx, 429, connection trouble, a timeout, a transient SMTP reply).
  retry: bool,
}

impl Failure {
  fn retry(message: impl Into<String>) -> Failure {
    Failure {
      message: message.into(),
      retry: true,
    }
  }
  fn fatal(message: impl Into<String>) -> Failure {
    Failure {
      message: message.into(),
      retry: false,
    }
  }
}

/// Reads a secret file, as the command line's `-file` flags do.
fn read_secret(what: &str, path: &Path) -> Result<String, String> {
  crate::cli::read_secret_file(&format!("tokenDelivery.{what}"), &path.to_string_lossy())
}

fn page_url(what: &str, text: &str) -> Result<url::Url, String> {
  let url = url::Url::parse(text)
    .map_err(|e| format!("tokenDelivery.{what} '{text}' is not a URL: {e}"))?;
  if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
    return Err(format!(
      "tokenDelivery.{what} '{text}' must be an http:// or https:// URL with a host"
    ));
  }
  Ok(url)
}

fn check_timeout(ms: u64) -> Result<Duration, String> {
  if ms == 0 || ms > 120_000 {
    return Err("tokenDelivery.timeoutMs must be between 1 and 120000".into());
  }
  Ok(Duration::from_millis(ms))
}

/// Whether `host` is this machine: `localhost` or a loopback address.
fn is_loopback(host: url::Host<&str>) -> bool {
  match host {
    url::Host::Domain(name) => name.eq_ignore_ascii_case("localhost"),
    url::Host::Ipv4(ip) => ip.is_loopback(),
    url::Host::Ipv6(ip) => ip.is_loopback(),
  }
}

/// The SMTP `host` as lettre needs it, and whether it is loopback. lettre resolves the text as
/// given, so a port or IPv6 brackets in it would only fail at delivery time: refused at start.
fn smtp_host(text: &str) -> Result<(String, bool), String> {
  let host = match text.parse::<std::net::IpAddr>() {
    Ok(std::net::IpAddr::V4(ip)) => url::Host::Ipv4(ip),
    Ok(std::net::IpAddr::V6(ip)) => url::Host::Ipv6(ip),
    Err(_) => url::Host::parse(text).map_err(|_| {
      format!("tokenDelivery.host '{text}' is not a host name (give the port in \"port\")")
    })?,
  };
  Ok(match host {
    url::Host::Domain(name) => {
      let loopback = is_loopback(url::Host::Domain(&name));
      (name, loopback)
    }
    url::Host::Ipv4(ip) => (ip.to_string(), ip.is_loopback()),
    url::Host::Ipv6(ip) => (ip.to_string(), ip.is_loopback()),
  })
}

/// rustls with ring and the OS's roots, which honour `SSL_CERT_FILE` (as the client does).
fn tls_connector() -> Result<TlsConnector, String> {
  let found = rustls_native_certs::load_native_certs();
  let mut roots = rustls::RootCertStore::empty();
  roots.add_parsable_certificates(found.certs);
  if roots.is_empty() {
    return Err(
      "tokenDelivery: an https:// webhook needs trusted root certificates, and none were found \
       (install the OS's CA bundle or set SSL_CERT_FILE)"
        .into(),
    );
  }
  let mut config =
    rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
      .with_safe_default_protocol_versions()
      .map_err(|e| format!("tokenDelivery: TLS setup: {e}"))?
      .with_root_certificates(roots)
      .with_no_client_auth();
  config.alpn_protocols = vec![b"http/1.1".to_vec()];
  Ok(TlsConnector::from(Arc::new(config)))
}

impl Delivery {
  /// Validates `config` (URLs, files, addresses) and prepares the sender; the error is the
  /// message of an [`EmulatorError::Config`](crate::EmulatorError::Config).
  pub async fn new(config: &TokenDelivery) -> Result<Delivery, String> {
    let (sender, timeout) = match config {
      TokenDelivery::Webhook(hook) => {
        let timeout = check_timeout(hook.timeout_ms)?;
        let url =
          url::Url::parse(&hook.url).map_err(|e| format!("tokenDelivery.url is not a URL: {e}"))?;
        if url.host_str().is_none_or(str::is_empty) {
          return Err("tokenDelivery.url must name a host".into());
        }
        if !url.username().is_empty() || url.password().is_some() {
          return Err(
            "tokenDelivery.url must not hold credentials: sign the requests with secretFile".into(),
          );
        }
        let tls = match url.scheme() {
          // The body holds a live reset token: in clear text only across this machine.
          "http" if is_loopback(url.host().expect("checked above")) => None,
          "http" => {
            return Err(
              "tokenDelivery.url: http:// would send reset tokens in clear text: use https:// \
               (http:// is allowed to a loopback host only)"
                .into(),
            );
          }
          "https" => Some(tls_connector()?),
          other => {
            return Err(format!(
              "tokenDelivery.url must be http:// or https://, not {other}://"
            ));
          }
        };
        let key = match &hook.secret_file {
          Some(path) => {
            let secret = read_secret("secretFile", path)?;
            Some(HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key"))
          }
          None => None,
        };
        (Sender::Webhook { url, tls, key }, timeout)
      }
      TokenDelivery::Smtp(smtp) => {
        let timeout = check_timeout(smtp.timeout_ms)?;
        let (host, loopback) = smtp_host(&smtp.host)?;
        let from: Mailbox = smtp.from.parse().map_err(|e| {
          format!(
            "tokenDelivery.from '{}' is not an email address: {e}",
            smtp.from
          )
        })?;
        let confirm_url = page_url("confirmUrl", &smtp.confirm_url)?;
        let reset_url = page_url("resetUrl", &smtp.reset_url)?;
        let credentials = match (&smtp.username, &smtp.password_file) {
          (Some(user), Some(path)) => Some(Credentials::new(
            user.clone(),
            read_secret("passwordFile", path)?,
          )),
          (None, None) => None,
          _ => {
            return Err(
              "tokenDelivery: username and passwordFile go together (give both or neither)".into(),
            );
          }
        };
        // A password in clear text may cross only this machine's loopback.
        if smtp.tls == SmtpTls::None && credentials.is_some() && !loopback {
          return Err(
            "tokenDelivery: tls \"none\" would send the SMTP password in clear text: use \
             \"starttls\" or \"tls\" (a password without TLS is allowed to a loopback relay only)"
              .into(),
          );
        }
        let builder = match smtp.tls {
          SmtpTls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&host),
          SmtpTls::Starttls => AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&host)
            .map_err(|e| format!("tokenDelivery: TLS setup: {e}"))?,
          SmtpTls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&host)
            .map_err(|e| format!("tokenDelivery: TLS setup: {e}"))?,
        };
        let port = smtp.port.unwrap_or(match smtp.tls {
          SmtpTls::None => 25,
          SmtpTls::Starttls => 587,
          SmtpTls::Tls => 465,
        });
        let mut builder = builder.port(port).timeout(Some(timeout));
        if let Some(credentials) = credentials {
          builder = builder.credentials(credentials);
        }
        (
          Sender::Smtp {
            transport: builder.build(),
            from,
            confirm_url,
            reset_url,
          },
          timeout,
        )
      }
    };
    Ok(Delivery {
      sender,
      timeout,
      delivered: AtomicU64::new(0),
      failed: AtomicU64::new(0),
      in_flight: AtomicUsize::new(0),
      max_in_flight: MAX_IN_FLIGHT,
    })
  }

  /// The counters since the start.
  pub fn stats(&self) -> DeliveryStats {
    DeliveryStats {
      delivered: self.delivered.load(Ordering::Relaxed),
      failed: self.failed.load(Ordering::Relaxed),
      in_flight: self.in_flight.load(Ordering::Relaxed) as u64,
    }
  }

  /// One attempt.
  async fn attempt(
    &self,
    kind: Pending,
    app: &str,
    email: &str,
    pair: &TokenPair,
  ) -> Result<(), Failure> {
    match &self.sender {
      Sender::Webhook { url, tls, key } => {
        let body = serde_json::to_vec(&serde_json::json!({
          "type": kind_name(kind),
          "appId": app,
          "email": email,
          "token": pair.token,
          "tokenId": pair.token_id,
        }))
        .expect("JSON of strings");
        // The signature covers the time of this attempt, so that a receiver can refuse a
        // replayed request once it is older than its tolerance.
        let timestamp = std::time::SystemTime::now()
          .duration_since(std::time::UNIX_EPOCH)
          .map_or(0, |d| d.as_secs())
          .to_string();
        let signature = key.as_ref().map(|key| {
          let mut mac = key.clone();
          mac.update(timestamp.as_bytes());
          mac.update(b".");
          mac.update(&body);
          format!("sha256={}", crate::ids::hex(&mac.finalize().into_bytes()))
        });
        let signed = signature.map(|s| (timestamp, s));
        match tokio::time::timeout(self.timeout, post(url, tls.as_ref(), body, signed)).await {
          Ok(result) => result,
          Err(_) => Err(Failure::retry(format!(
            "no answer within {} ms",
            self.timeout.as_millis()
          ))),
        }
      }
      Sender::Smtp {
        transport,
        from,
        confirm_url,
        reset_url,
      } => {
        // A bare address only: a Mailbox would also take `"victim@x" <attacker@y>` and mail
        // the token to an address other than the account's.
        let to: lettre::Address = email
          .parse()
          .map_err(|_| Failure::fatal("the account's email is not a deliverable address"))?;
        let to = Mailbox::new(None, to);
        let (page, subject) = match kind {
          Pending::Confirm => (confirm_url, "Confirm your email"),
          Pending::Reset => (reset_url, "Reset your password"),
        };
        let mut link = page.clone();
        link
          .query_pairs_mut()
          .append_pair("token", &pair.token)
          .append_pair("tokenId", &pair.token_id);
        let text = match kind {
          Pending::Confirm => format!(
            "Hello,\r\n\r\nTo confirm your email address, open this link:\r\n\r\n{link}\r\n\r\n\
             If you did not create an account, ignore this email.\r\n"
          ),
          Pending::Reset => format!(
            "Hello,\r\n\r\nSomeone asked to reset the password of your account. To choose a new \
             password, open this link:\r\n\r\n{link}\r\n\r\nIf it was not you, ignore this \
             email: your password stays as it is.\r\n"
          ),
        };
        let message = Message::builder()
          .from(from.clone())
          .to(to)
          .subject(subject)
          .header(ContentType::TEXT_PLAIN)
          .body(text)
          .map_err(|e| Failure::fatal(format!("cannot build the message: {e}")))?;
        match tokio::time::timeout(self.timeout, transport.send(message)).await {
          Ok(Ok(_)) => Ok(()),
          Ok(Err(e)) => Err(Failure {
            message: scrub(&e.to_string(), email),
            retry: !e.is_permanent(),
          }),
          Err(_) => Err(Failure::retry(format!(
            "no answer within {} ms",
            self.timeout.as_millis()
          ))),
        }
      }
    }
  }

  /// Tries up to [`ATTEMPTS`] times, then logs and counts a failure.
  async fn run(&self, kind: Pending, app: &str, email: &str, pair: &TokenPair) {
    let mut backoff = FIRST_BACKOFF;
    for attempt in 1..=ATTEMPTS {
      match self.attempt(kind, app, email, pair).await {
        Ok(()) => {
          self.delivered.fetch_add(1, Ordering::Relaxed);
          return;
        }
        Err(failure) if failure.retry && attempt < ATTEMPTS => {
          tokio::time::sleep(backoff).await;
          backoff *= 2;
        }
        Err(failure) => {
          self.fail(
            kind,
            app,
            email,
            &format!("attempt {attempt}: {}", failure.message),
          );
          return;
        }
      }
    }
  }

  fn fail(&self, kind: Pending, app: &str, email: &str, why: &str) {
    self.failed.fetch_add(1, Ordering::Relaxed);
    let via = match self.sender {
      Sender::Webhook { .. } => "webhook",
      Sender::Smtp { .. } => "smtp",
    };
    // One line per failure, whatever the reply or the app id hold.
    eprintln!(
      "realm-auth-server: {} token for {} in app {} not delivered ({via}): {}",
      kind_name(kind),
      redacted(email),
      printable(app),
      printable(why),
    );
  }
}

/// The address as logs may show it: the domain only, with control characters escaped (the
/// email is the client's text, and a line break in it would forge a log line).
fn redacted(email: &str) -> String {
  match email.rsplit_once('@') {
    Some((_, domain)) => format!("<…@{}>", printable(domain)),
    None => "<an address without a domain>".into(),
  }
}

/// `text` with control characters (line breaks above all) and Unicode line separators escaped.
fn printable(text: &str) -> String {
  let mut out = String::with_capacity(text.len());
  for c in text.chars() {
    if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}') {
      out.extend(c.escape_default());
    } else {
      out.push(c);
    }
  }
  out
}

/// An SMTP server's reply without the recipient: every word holding an `@` becomes its
/// domain, and the address's local part, in any case, is cut wherever it stands alone.
fn scrub(reply: &str, email: &str) -> String {
  let local = email.rsplit_once('@').map_or(email, |(local, _)| local);
  let mut out = String::with_capacity(reply.len());
  for piece in reply.split_inclusive(char::is_whitespace) {
    let word = piece.trim_end_matches(char::is_whitespace);
    let gap = &piece[word.len()..];
    let bare = word.trim_matches(|c: char| !c.is_alphanumeric());
    if word.contains('@') {
      out.push_str(&redacted(
        word.trim_matches(['<', '>', '"', '\'', ',', ';', ':', '.']),
      ));
    } else if !local.is_empty() && bare.eq_ignore_ascii_case(local) {
      out.push_str("<…>");
    } else {
      out.push_str(word);
    }
    out.push_str(gap);
  }
  out
}

fn kind_name(kind: Pending) -> &'static str {
  match kind {
    Pending::Confirm => "confirm",
    Pending::Reset => "reset",
  }
}

/// One POST on a fresh connection (deliveries are rare: no pool to keep healthy).
async fn post(
  url: &url::Url,
  tls: Option<&TlsConnector>,
  body: Vec<u8>,
  signed: Option<(String, String)>,
) -> Result<(), Failure> {
  let host = url.host().expect("checked at start");
  let port = url.port_or_known_default().unwrap_or(80);
  let tcp = match &host {
    url::Host::Domain(name) => TcpStream::connect((*name, port)).await,
    url::Host::Ipv4(ip) => TcpStream::connect((*ip, port)).await,
    url::Host::Ipv6(ip) => TcpStream::connect((*ip, port)).await,
  }
  .map_err(|e| Failure::retry(format!("cannot connect: {e}")))?;
  let _ = tcp.set_nodelay(true);
  let authority = &url[url::Position::BeforeHost..url::Position::AfterPort];
  let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
  let mut request = Request::post(if path.is_empty() { "/" } else { path })
    .header(hyper::header::HOST, authority)
    .header(hyper::header::CONTENT_TYPE, "application/json")
    .header(hyper::header::USER_AGENT, "realm-auth-server")
    .header(hyper::header::CONNECTION, "close");
  if let Some((timestamp, signature)) = signed {
    request = request
      .header("x-realm-auth-timestamp", timestamp)
      .header("x-realm-auth-signature", signature);
  }
  let request = request
    .body(Full::new(Bytes::from(body)))
    .map_err(|e| Failure::fatal(format!("cannot build the request: {e}")))?;
  let status = match tls {
    None => exchange(TokioIo::new(tcp), request).await?,
    Some(connector) => {
      let name = match host {
        url::Host::Domain(name) => ServerName::try_from(name.to_string())
          .map_err(|e| Failure::fatal(format!("not a TLS server name: {e}")))?,
        url::Host::Ipv4(ip) => ServerName::IpAddress(std::net::IpAddr::V4(ip).into()),
        url::Host::Ipv6(ip) => ServerName::IpAddress(std::net::IpAddr::V6(ip).into()),
      };
      let stream = connector
        .connect(name, tcp)
        .await
        .map_err(|e| Failure::retry(format!("TLS: {e}")))?;
      exchange(TokioIo::new(stream), request).await?
    }
  };
  if status.is_success() {
    Ok(())
  } else if status.is_server_error() || status.as_u16() == 429 || status.as_u16() == 408 {
    Err(Failure::retry(format!("the receiver answered {status}")))
  } else {
    Err(Failure::fatal(format!("the receiver answered {status}")))
  }
}

async fn exchange<T>(
  io: TokioIo<T>,
  request: Request<Full<Bytes>>,
) -> Result<hyper::StatusCode, Failure>
where
  T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
  let (mut sender, connection) = hyper::client::conn::http1::Builder::new()
    .max_buf_size(RESPONSE_LIMIT)
    .handshake(io)
    .await
    .map_err(|e| Failure::retry(format!("HTTP: {e}")))?;
  // The connection runs beside the request in a task that ends with this attempt, even when
  // the attempt's deadline drops it halfway.
  let _driver = AbortOnDrop(tokio::spawn(connection));
  let response = sender
    .send_request(request)
    .await
    .map_err(|e| Failure::retry(format!("HTTP: {e}")))?;
  // The status decides; the body is not awaited, so a slow or endless one cannot turn an
  // accepted token into a timeout and a second delivery. The request said `Connection: close`,
  // and the driver task is aborted with `_driver`.
  Ok(response.status())
}

struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
  fn drop(&mut self) {
    self.0.abort();
  }
}

/// Hands a freshly issued token to the configured delivery, if any, in a task of its own; the
/// caller's answer does not wait for it.
pub(crate) fn deliver(shared: &Shared, app: &str, kind: Pending, email: &str, pair: &TokenPair) {
  if let Some(delivery) = &shared.delivery {
    delivery.spawn(kind, app, email, pair);
  }
}

impl Delivery {
  /// Starts a delivery task, or drops the token (counted as failed) when
  /// [`Delivery::max_in_flight`] are already waiting or under way.
  fn spawn(self: &Arc<Self>, kind: Pending, app: &str, email: &str, pair: &TokenPair) {
    if self.in_flight.fetch_add(1, Ordering::AcqRel) >= self.max_in_flight {
      self.in_flight.fetch_sub(1, Ordering::AcqRel);
      self.fail(kind, app, email, "too many deliveries waiting; dropped");
      return;
    }
    let delivery = self.clone();
    let (app, email, pair) = (app.to_string(), email.to_string(), pair.clone());
    tokio::spawn(async move {
      delivery.run(kind, &app, &email, &pair).await;
      delivery.in_flight.fetch_sub(1, Ordering::AcqRel);
    });
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn log_text_cannot_break_lines_or_name_the_recipient() {
    let forged = redacted("a@x\nrealm-auth-server: TLS certificate reloaded\r\u{2028}");
    assert!(!forged.contains(['\n', '\r', '\u{2028}']), "{forged}");
    assert!(forged.starts_with("<…@x\\n"), "{forged}");
    let reply =
      "permanent error (550): 5.1.1 <Grace.Hopper@Example.ORG>: user GRACE.HOPPER unknown";
    let scrubbed = scrub(reply, "grace.hopper@example.org");
    assert!(!scrubbed.to_lowercase().contains("grace"), "{scrubbed}");
    assert!(scrubbed.contains("5.1.1 <…@Example.ORG>"), "{scrubbed}");
    assert!(
      scrubbed.starts_with("permanent error (550): "),
      "{scrubbed}"
    );
    assert_eq!(printable("a\tb"), "a\\tb");
  }

  /// Past the cap, tokens are dropped and counted, and the dropped ones hold no slot.
  #[tokio::test]
  async fn at_most_max_in_flight_deliveries() {
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/", silent.local_addr().unwrap());
    tokio::spawn(async move {
      let mut held = Vec::new();
      while let Ok((stream, _)) = silent.accept().await {
        held.push(stream);
      }
    });
    let hook = WebhookDelivery {
      url,
      secret_file: None,
      timeout_ms: 60_000,
    };
    let mut delivery = Delivery::new(&TokenDelivery::Webhook(hook)).await.unwrap();
    assert_eq!(delivery.max_in_flight, 1024);
    delivery.max_in_flight = 2;
    let delivery = Arc::new(delivery);
    let pair = TokenPair {
      token: "t".into(),
      token_id: "i".into(),
    };
    for _ in 0..5 {
      delivery.spawn(Pending::Reset, "app", "a@example.com", &pair);
    }
    let expected = DeliveryStats {
      delivered: 0,
      failed: 3,
      in_flight: 2,
    };
    assert_eq!(delivery.stats(), expected);
  }

  #[test]
  fn smtp_hosts_are_bare() {
    let ok = |text: &str| smtp_host(text).unwrap();
    assert_eq!(ok("[::1]"), ("::1".to_string(), true));
    assert_eq!(ok("::1"), ("::1".to_string(), true));
    assert_eq!(ok("127.0.0.1"), ("127.0.0.1".to_string(), true));
    assert_eq!(ok("LocalHost"), ("localhost".to_string(), true));
    assert_eq!(
      ok("smtp.example.com"),
      ("smtp.example.com".to_string(), false)
    );
    assert_eq!(ok("[2001:db8::1]"), ("2001:db8::1".to_string(), false));
    for bad in [
      "",
      " ",
      "smtp.example.com:587",
      "[::1]:25",
      "a b",
      "smtp/x",
      "[::1",
    ] {
      assert!(smtp_host(bad).is_err(), "{bad}");
    }
  }

  #[test]
  fn webhook_debug_hides_credentials_and_query() {
    let hook = WebhookDelivery {
      url: "https://user:hunter22@hooks.example.com/realm?key=s3cret#frag".into(),
      secret_file: None,
      timeout_ms: 5000,
    };
    let debug = format!("{hook:?}");
    assert!(debug.contains("https://hooks.example.com/realm"), "{debug}");
    for hidden in ["user", "hunter22", "s3cret", "frag"] {
      assert!(!debug.contains(hidden), "{debug}");
    }
  }
}
