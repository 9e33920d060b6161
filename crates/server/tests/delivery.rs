//! Token delivery (`tokenDelivery`): confirmation and reset tokens reach a webhook or an SMTP
//! server on 127.0.0.1, retried on 5xx, never delaying the client's answer; bad settings stop
//! the start.

mod common;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::*;
use hmac::{KeyInit, Mac};
use realm_auth_server::{
  Config, DeliveryStats, Emulator, EmulatorError, SmtpDelivery, SmtpTls, TokenDelivery,
  WebhookDelivery,
};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A request the webhook receiver got.
struct Received {
  /// Header lines, names lowercased.
  headers: Vec<(String, String)>,
  body: Vec<u8>,
}

impl Received {
  fn header(&self, name: &str) -> Option<&str> {
    self
      .headers
      .iter()
      .find(|(k, _)| k == name)
      .map(|(_, v)| v.as_str())
  }
  fn json(&self) -> Value {
    serde_json::from_slice(&self.body).expect("JSON body")
  }
}

/// A webhook receiver: answers the n-th request with `statuses[n]` (200 past the end), one
/// request per connection, then closes.
struct Hook {
  url: String,
  attempts: Arc<AtomicUsize>,
  rx: mpsc::UnboundedReceiver<Received>,
}

impl Hook {
  async fn start(statuses: Vec<u16>) -> Hook {
    Hook::start_on("127.0.0.1", None, statuses).await
  }

  /// A receiver at `http://{host}:PORT/...`, or `https://` with `tls`.
  async fn start_on(
    host: &str,
    tls: Option<tokio_rustls::TlsAcceptor>,
    statuses: Vec<u16>,
  ) -> Hook {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!(
      "{}://{host}:{}/hooks/realm?source=test",
      if tls.is_some() { "https" } else { "http" },
      listener.local_addr().unwrap().port()
    );
    let attempts = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let counter = attempts.clone();
    tokio::spawn(async move {
      loop {
        let Ok((stream, _)) = listener.accept().await else {
          return;
        };
        let n = counter.fetch_add(1, Ordering::SeqCst);
        let status = statuses.get(n).copied().unwrap_or(200);
        let (tx, tls) = (tx.clone(), tls.clone());
        tokio::spawn(async move {
          match tls {
            None => answer(stream, status, tx).await,
            Some(acceptor) => {
              if let Ok(stream) = acceptor.accept(stream).await {
                answer(stream, status, tx).await
              }
            }
          }
        });
      }
    });
    Hook { url, attempts, rx }
  }

  async fn next(&mut self) -> Received {
    tokio::time::timeout(Duration::from_secs(10), self.rx.recv())
      .await
      .expect("a delivery within 10 s")
      .expect("receiver running")
  }
}

/// Reads one request, reports it, answers `status` and closes.
async fn answer<S>(mut stream: S, status: u16, tx: mpsc::UnboundedSender<Received>)
where
  S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
  let _ = tx.send(read_request(&mut stream).await);
  let answer = format!("HTTP/1.1 {status} X\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
  let _ = stream.write_all(answer.as_bytes()).await;
  let _ = stream.shutdown().await;
}

/// Reads one request's head and body.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) -> Received {
  let mut raw = Vec::new();
  let mut buf = [0u8; 4096];
  let head_end = loop {
    let got = stream.read(&mut buf).await.unwrap();
    assert!(got > 0, "closed before the head");
    raw.extend_from_slice(&buf[..got]);
    if let Some(at) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
      break at;
    }
  };
  let head = String::from_utf8(raw[..head_end].to_vec()).unwrap();
  let mut lines = head.split("\r\n");
  let request_line = lines.next().unwrap().to_string();
  let mut headers = vec![(":request".to_string(), request_line)];
  headers.extend(lines.map(|l| {
    let (k, v) = l.split_once(':').unwrap();
    (k.trim().to_ascii_lowercase(), v.trim().to_string())
  }));
  let length: usize = headers
    .iter()
    .find(|(k, _)| k == "content-length")
    .map_or(0, |(_, v)| v.parse().unwrap());
  let mut body = raw[head_end + 4..].to_vec();
  while body.len() < length {
    let got = stream.read(&mut buf).await.unwrap();
    assert!(got > 0, "closed before the body");
    body.extend_from_slice(&buf[..got]);
  }
  Received { headers, body }
}

/// A file in the temp folder holding `text`.
fn temp_file(name: &str, text: &str) -> PathBuf {
  let path = std::env::temp_dir().join(format!(
    "realm-auth-delivery-{}-{}-{name}",
    std::process::id(),
    std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .unwrap()
      .as_nanos()
  ));
  std::fs::write(&path, text).unwrap();
  path
}

fn webhook(url: &str, secret_file: Option<PathBuf>, timeout_ms: u64) -> Option<TokenDelivery> {
  Some(TokenDelivery::Webhook(WebhookDelivery {
    url: url.into(),
    secret_file,
    timeout_ms,
  }))
}

async fn post(emu: &Emu, route: &str, body: Value) -> Resp {
  emu
    .app_api(
      "POST",
      &format!("/auth/providers/local-userpass/{route}"),
      None,
      Some(&body.to_string()),
    )
    .await
}

fn hex(bytes: &[u8]) -> String {
  bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Waits until the counters satisfy `done`.
async fn wait_stats(emu: &Emu, done: impl Fn(DeliveryStats) -> bool) -> DeliveryStats {
  let deadline = Instant::now() + Duration::from_secs(15);
  loop {
    let stats = emu.emulator.delivery_stats();
    if done(stats) {
      return stats;
    }
    assert!(Instant::now() < deadline, "stats stuck at {stats:?}");
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}

/// Production (no control API): the webhook is the only way to the tokens, and they work.
#[tokio::test]
async fn webhook_delivers_signed_confirm_and_reset_tokens_that_work() {
  let mut hook = Hook::start(Vec::new()).await;
  let secret = temp_file("hook-secret", "a webhook signing secret\n");
  let emu = start_with(Config {
    require_email_confirmation: true,
    control_api: false,
    token_delivery: webhook(&hook.url, Some(secret.clone()), 5000),
    ..Config::default()
  })
  .await;

  emu
    .register("ada@example.com", "password1")
    .await
    .assert_empty(201);
  let got = hook.next().await;
  assert_eq!(
    got.header(":request"),
    Some("POST /hooks/realm?source=test HTTP/1.1")
  );
  assert_eq!(got.header("content-type"), Some("application/json"));
  let host = hook.url.trim_start_matches("http://");
  assert_eq!(got.header("host"), Some(&host[..host.find('/').unwrap()]));
  // The signature covers "<timestamp>." and the body; the timestamp is the attempt's.
  let timestamp = got.header("x-realm-auth-timestamp").expect("a timestamp");
  let now = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_secs();
  assert!(
    timestamp.parse::<u64>().unwrap().abs_diff(now) < 60,
    "{timestamp}"
  );
  let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(b"a webhook signing secret").unwrap();
  mac.update(format!("{timestamp}.").as_bytes());
  mac.update(&got.body);
  assert_eq!(
    got.header("x-realm-auth-signature").map(str::to_string),
    Some(format!("sha256={}", hex(&mac.finalize().into_bytes())))
  );
  let v = got.json();
  assert_eq!(v["type"], "confirm");
  assert_eq!(v["appId"], emu.app);
  assert_eq!(v["email"], "ada@example.com");
  let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
  assert_eq!(keys.len(), 5, "{v}");
  // Not confirmed yet; the delivered token confirms.
  let r = emu
    .login_raw(
      "local-userpass",
      &json!({"username": "ada@example.com", "password": "password1"}),
    )
    .await;
  assert_eq!(r.status, 401);
  post(
    &emu,
    "confirm",
    json!({"token": v["token"], "tokenId": v["tokenId"]}),
  )
  .await
  .assert_empty(204);
  emu.login_email("ada@example.com", "password1").await;

  post(&emu, "reset/send", json!({"email": "ada@example.com"}))
    .await
    .assert_empty(204);
  let got = hook.next().await;
  let v = got.json();
  assert_eq!(v["type"], "reset");
  assert_eq!(v["email"], "ada@example.com");
  assert!(got.header("x-realm-auth-signature").is_some());
  post(
    &emu,
    "reset",
    json!({"token": v["token"], "tokenId": v["tokenId"], "password": "password2"}),
  )
  .await
  .assert_empty(204);
  emu.login_email("ada@example.com", "password2").await;

  let stats = wait_stats(&emu, |s| s.delivered == 2).await;
  assert_eq!(stats.failed, 0);
  assert_eq!(hook.attempts.load(Ordering::SeqCst), 2);
  let _ = std::fs::remove_file(secret);
}

#[tokio::test]
async fn webhook_without_a_secret_is_unsigned_and_5xx_is_retried() {
  let mut hook = Hook::start(vec![500, 503]).await;
  let emu = start_with(Config {
    token_delivery: webhook(&hook.url, None, 5000),
    ..Config::default()
  })
  .await;
  emu
    .register("retry@example.com", "password1")
    .await
    .assert_empty(201);
  post(&emu, "reset/send", json!({"email": "retry@example.com"}))
    .await
    .assert_empty(204);
  let mut bodies = Vec::new();
  for _ in 0..3 {
    let got = hook.next().await;
    assert!(got.header("x-realm-auth-signature").is_none());
    assert!(got.header("x-realm-auth-timestamp").is_none());
    bodies.push(got.body);
  }
  // The same payload each time.
  assert!(bodies.iter().all(|b| b == &bodies[0]));
  let stats = wait_stats(&emu, |s| s.delivered == 1).await;
  assert_eq!(stats.failed, 0);
  assert_eq!(hook.attempts.load(Ordering::SeqCst), 3);
  // The emulator still hands the same token to tests.
  let pending = emu
    .emulator
    .control()
    .pending_reset("retry@example.com")
    .unwrap();
  let v: Value = serde_json::from_slice(&bodies[0]).unwrap();
  assert_eq!(v["token"], pending.token);
  assert_eq!(v["tokenId"], pending.token_id);

  // 429 and 408 are worth another attempt.
  let mut busy = Hook::start(vec![429, 408]).await;
  let emu = start_with(Config {
    token_delivery: webhook(&busy.url, None, 5000),
    ..Config::default()
  })
  .await;
  emu
    .register("busy@example.com", "password1")
    .await
    .assert_empty(201);
  post(&emu, "reset/send", json!({"email": "busy@example.com"}))
    .await
    .assert_empty(204);
  for _ in 0..3 {
    busy.next().await;
  }
  let stats = wait_stats(&emu, |s| s.delivered + s.failed == 1).await;
  assert_eq!((stats.delivered, stats.failed), (1, 0));
  assert_eq!(busy.attempts.load(Ordering::SeqCst), 3);

  // A 4xx is final: one attempt, counted as failed.
  let mut refusing = Hook::start(vec![400]).await;
  let emu = start_with(Config {
    token_delivery: webhook(&refusing.url, None, 5000),
    ..Config::default()
  })
  .await;
  emu
    .register("refused@example.com", "password1")
    .await
    .assert_empty(201);
  post(&emu, "reset/send", json!({"email": "refused@example.com"}))
    .await
    .assert_empty(204);
  refusing.next().await;
  wait_stats(&emu, |s| s.failed == 1).await;
  tokio::time::sleep(Duration::from_millis(400)).await;
  assert_eq!(refusing.attempts.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn an_unreachable_or_silent_receiver_neither_delays_nor_fails_the_answer() {
  // A closed loopback port.
  let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
  let port = closed.local_addr().unwrap().port();
  drop(closed);
  // A receiver that accepts and never answers.
  let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
  let silent_url = format!("http://127.0.0.1:{}/", silent.local_addr().unwrap().port());
  tokio::spawn(async move {
    let mut held = Vec::new();
    while let Ok((stream, _)) = silent.accept().await {
      held.push(stream);
    }
  });
  for url in [format!("http://127.0.0.1:{port}/hook"), silent_url] {
    let emu = start_with(Config {
      require_email_confirmation: true,
      token_delivery: webhook(&url, None, 200),
      ..Config::default()
    })
    .await;
    let started = Instant::now();
    emu
      .register("lost@example.com", "password1")
      .await
      .assert_empty(201);
    post(&emu, "reset/send", json!({"email": "lost@example.com"}))
      .await
      .assert_empty(204);
    assert!(
      started.elapsed() < Duration::from_millis(150),
      "{url}: answers took {:?}",
      started.elapsed()
    );
    let stats = wait_stats(&emu, |s| s.failed == 2).await;
    assert_eq!((stats.delivered, stats.in_flight), (0, 0), "{url}");
  }
}

/// A receiver that answers 200 and then never sends the body it announced: the token was
/// accepted, so it is delivered once, not retried when the attempt's deadline passes.
#[tokio::test]
async fn a_2xx_answer_counts_even_when_its_body_never_comes() {
  let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
  let url = format!(
    "http://127.0.0.1:{}/",
    listener.local_addr().unwrap().port()
  );
  let attempts = Arc::new(AtomicUsize::new(0));
  let counter = attempts.clone();
  tokio::spawn(async move {
    let mut held = Vec::new();
    while let Ok((mut stream, _)) = listener.accept().await {
      counter.fetch_add(1, Ordering::SeqCst);
      read_request(&mut stream).await;
      let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nok";
      stream.write_all(head).await.unwrap();
      held.push(stream);
    }
  });
  let emu = start_with(Config {
    token_delivery: webhook(&url, None, 300),
    ..Config::default()
  })
  .await;
  emu
    .register("slow@example.com", "password1")
    .await
    .assert_empty(201);
  post(&emu, "reset/send", json!({"email": "slow@example.com"}))
    .await
    .assert_empty(204);
  let stats = wait_stats(&emu, |s| s.delivered + s.failed == 1).await;
  assert_eq!((stats.delivered, stats.failed), (1, 0));
  // Past the deadline and the first backoff: no second attempt.
  tokio::time::sleep(Duration::from_millis(700)).await;
  assert_eq!(attempts.load(Ordering::SeqCst), 1);
}

/// A minimal SMTP server: one message per connection, captured whole.
struct Mail {
  mail_from: String,
  rcpt_to: String,
  data: String,
}

async fn smtp_sink() -> (u16, mpsc::UnboundedReceiver<Mail>) {
  smtp_sink_answering(Vec::new(), Arc::default()).await
}

/// [`smtp_sink`] answering `RCPT TO` on the n-th connection with `rcpt_replies[n]` (250 past the
/// end), counting connections in `connections`.
async fn smtp_sink_answering(
  rcpt_replies: Vec<&'static str>,
  connections: Arc<AtomicUsize>,
) -> (u16, mpsc::UnboundedReceiver<Mail>) {
  let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
  let port = listener.local_addr().unwrap().port();
  let (tx, rx) = mpsc::unbounded_channel();
  tokio::spawn(async move {
    while let Ok((stream, _)) = listener.accept().await {
      let n = connections.fetch_add(1, Ordering::SeqCst);
      let rcpt_reply = rcpt_replies.get(n).copied().unwrap_or("250 ok\r\n");
      let tx = tx.clone();
      tokio::spawn(async move {
        let (read, mut write) = stream.into_split();
        let mut lines = BufReader::new(read);
        write.write_all(b"220 sink ESMTP\r\n").await.unwrap();
        let (mut mail_from, mut rcpt_to, mut data) = (String::new(), String::new(), String::new());
        loop {
          let mut line = String::new();
          if lines.read_line(&mut line).await.unwrap() == 0 {
            return;
          }
          let upper = line.to_ascii_uppercase();
          let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
            b"250 sink\r\n"
          } else if upper.starts_with("MAIL FROM:") {
            mail_from = line.trim_end().to_string();
            b"250 ok\r\n"
          } else if upper.starts_with("RCPT TO:") {
            rcpt_to = line.trim_end().to_string();
            rcpt_reply.as_bytes()
          } else if upper.starts_with("DATA") {
            write.write_all(b"354 go on\r\n").await.unwrap();
            loop {
              let mut l = String::new();
              assert!(lines.read_line(&mut l).await.unwrap() > 0, "cut in DATA");
              if l == ".\r\n" {
                break;
              }
              data.push_str(l.strip_prefix('.').unwrap_or(&l));
            }
            let _ = tx.send(Mail {
              mail_from: std::mem::take(&mut mail_from),
              rcpt_to: std::mem::take(&mut rcpt_to),
              data: std::mem::take(&mut data),
            });
            b"250 queued\r\n"
          } else if upper.starts_with("QUIT") {
            let _ = write.write_all(b"221 bye\r\n").await;
            return;
          } else {
            b"250 ok\r\n"
          };
          write.write_all(reply).await.unwrap();
        }
      });
    }
  });
  (port, rx)
}

async fn next_mail(mails: &mut mpsc::UnboundedReceiver<Mail>) -> Mail {
  tokio::time::timeout(Duration::from_secs(10), mails.recv())
    .await
    .expect("an email within 10 s")
    .unwrap()
}

/// The message's body, decoded (lettre picks quoted-printable for long lines).
fn body_of(data: &str) -> String {
  let (head, body) = data.split_once("\r\n\r\n").expect("head and body");
  let qp = head
    .to_ascii_lowercase()
    .contains("content-transfer-encoding: quoted-printable");
  if !qp {
    return body.to_string();
  }
  let joined = body.replace("=\r\n", "");
  let mut out = Vec::new();
  let bytes = joined.as_bytes();
  let mut i = 0;
  while i < bytes.len() {
    if bytes[i] == b'=' && i + 2 < bytes.len() {
      out.push(u8::from_str_radix(&joined[i + 1..i + 3], 16).unwrap());
      i += 3;
    } else {
      out.push(bytes[i]);
      i += 1;
    }
  }
  String::from_utf8(out).unwrap()
}

fn header_of<'a>(data: &'a str, name: &str) -> Option<&'a str> {
  let head = data.split_once("\r\n\r\n")?.0;
  head.split("\r\n").find_map(|l| {
    let (k, v) = l.split_once(':')?;
    k.eq_ignore_ascii_case(name).then(|| v.trim())
  })
}

/// The link in a body, and its token and token id.
fn link_of(body: &str, page: &str) -> (String, String) {
  let line = body
    .lines()
    .find(|l| l.starts_with(page))
    .unwrap_or_else(|| panic!("no link to {page} in {body:?}"));
  let url = url::Url::parse(line.trim()).unwrap();
  let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
  assert_eq!(pairs[0].0, "from", "the page's own query is kept: {line}");
  let get = |k: &str| pairs.iter().find(|(n, _)| n == k).unwrap().1.clone();
  (get("token"), get("tokenId"))
}

#[tokio::test]
async fn smtp_sends_a_confirm_and_a_reset_email_with_working_links() {
  let (port, mut mails) = smtp_sink().await;
  let emu = start_with(Config {
    require_email_confirmation: true,
    control_api: false,
    token_delivery: Some(TokenDelivery::Smtp(SmtpDelivery {
      host: "127.0.0.1".into(),
      port: Some(port),
      from: "Example App <noreply@example.com>".into(),
      username: None,
      password_file: None,
      tls: SmtpTls::None,
      timeout_ms: 5000,
      confirm_url: "https://app.example.com/confirm?from=mail".into(),
      reset_url: "https://app.example.com/reset?from=mail".into(),
    })),
    ..Config::default()
  })
  .await;

  emu
    .register("grace@example.org", "password1")
    .await
    .assert_empty(201);
  let mail = next_mail(&mut mails).await;
  assert_eq!(mail.mail_from, "MAIL FROM:<noreply@example.com>");
  assert_eq!(mail.rcpt_to, "RCPT TO:<grace@example.org>");
  assert_eq!(
    header_of(&mail.data, "From"),
    Some("\"Example App\" <noreply@example.com>")
  );
  assert_eq!(header_of(&mail.data, "To"), Some("grace@example.org"));
  assert_eq!(header_of(&mail.data, "Subject"), Some("Confirm your email"));
  assert!(
    header_of(&mail.data, "Content-Type")
      .unwrap()
      .starts_with("text/plain")
  );
  let (token, token_id) = link_of(&body_of(&mail.data), "https://app.example.com/confirm?");
  post(
    &emu,
    "confirm",
    json!({"token": token, "tokenId": token_id}),
  )
  .await
  .assert_empty(204);
  emu.login_email("grace@example.org", "password1").await;

  post(&emu, "reset/send", json!({"email": "grace@example.org"}))
    .await
    .assert_empty(204);
  let mail = next_mail(&mut mails).await;
  assert_eq!(
    header_of(&mail.data, "Subject"),
    Some("Reset your password")
  );
  let (token, token_id) = link_of(&body_of(&mail.data), "https://app.example.com/reset?");
  post(
    &emu,
    "reset",
    json!({"token": token, "tokenId": token_id, "password": "password2"}),
  )
  .await
  .assert_empty(204);
  emu.login_email("grace@example.org", "password2").await;
  let stats = wait_stats(&emu, |s| s.delivered == 2).await;
  assert_eq!(stats.failed, 0);
}

/// A transient SMTP reply (4xx) is retried; a permanent one (5xx) is final.
#[tokio::test]
async fn smtp_retries_4xx_replies_and_not_5xx() {
  for (replies, delivered, connections) in [
    (vec!["451 4.7.1 <Try@Example.org> later\r\n"], 1, 2),
    (vec!["550 5.1.1 <TRY@example.org> unknown\r\n"], 0, 1),
  ] {
    let count = Arc::new(AtomicUsize::new(0));
    let (port, mut mails) = smtp_sink_answering(replies, count.clone()).await;
    let emu = start_with(smtp(|s| s.port = Some(port))).await;
    emu
      .register("try@example.org", "password1")
      .await
      .assert_empty(201);
    post(&emu, "reset/send", json!({"email": "try@example.org"}))
      .await
      .assert_empty(204);
    let stats = wait_stats(&emu, |s| s.delivered + s.failed == 1).await;
    assert_eq!(stats.delivered, delivered);
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert_eq!(count.load(Ordering::SeqCst), connections);
    if delivered == 1 {
      assert_eq!(
        next_mail(&mut mails).await.rcpt_to,
        "RCPT TO:<try@example.org>"
      );
    }
  }
}

/// An email in name-addr form names another address than the account's: nothing is sent to it.
#[tokio::test]
async fn smtp_sends_only_to_a_bare_address() {
  let (port, mut mails) = smtp_sink().await;
  let emu = start_with(smtp(|s| s.port = Some(port))).await;
  let email = "\"victim@example.com\" <attacker@evil.com>";
  emu.register(email, "password1").await.assert_empty(201);
  post(&emu, "reset/send", json!({ "email": email }))
    .await
    .assert_empty(204);
  let stats = wait_stats(&emu, |s| s.delivered + s.failed == 1).await;
  assert_eq!((stats.delivered, stats.failed), (0, 1));
  tokio::time::sleep(Duration::from_millis(200)).await;
  assert!(mails.try_recv().is_err(), "a mail was sent");
}

async fn start_error(config: Config) -> String {
  match Emulator::start(config).await {
    Err(EmulatorError::Config(message)) => message,
    Err(other) => panic!("not a config error: {other}"),
    Ok(_) => panic!("started"),
  }
}

fn smtp(change: impl FnOnce(&mut SmtpDelivery)) -> Config {
  let mut settings = SmtpDelivery {
    host: "127.0.0.1".into(),
    port: Some(2525),
    from: "noreply@example.com".into(),
    username: None,
    password_file: None,
    tls: SmtpTls::None,
    timeout_ms: 5000,
    confirm_url: "https://app.example.com/confirm".into(),
    reset_url: "https://app.example.com/reset".into(),
  };
  change(&mut settings);
  Config {
    token_delivery: Some(TokenDelivery::Smtp(settings)),
    ..Config::default()
  }
}

#[tokio::test]
async fn bad_delivery_settings_stop_the_start() {
  let hook = |url: &str| Config {
    token_delivery: webhook(url, None, 5000),
    ..Config::default()
  };
  for (config, expected) in [
    (hook("not a url"), "tokenDelivery.url is not a URL"),
    (hook("ftp://127.0.0.1/x"), "must be http:// or https://"),
    (
      hook("http://hooks.example.com/x"),
      "http:// would send reset tokens in clear text",
    ),
    (
      hook("http://10.0.0.1/x"),
      "http:// would send reset tokens in clear text",
    ),
    (
      hook("http://user:pw@127.0.0.1/x"),
      "must not hold credentials",
    ),
    (
      Config {
        token_delivery: webhook("http://127.0.0.1:9/", None, 0),
        ..Config::default()
      },
      "timeoutMs",
    ),
    (
      Config {
        token_delivery: webhook(
          "http://127.0.0.1:9/",
          Some("/nonexistent/realm-auth/secret".into()),
          5000,
        ),
        ..Config::default()
      },
      "secretFile: cannot read '/nonexistent/realm-auth/secret'",
    ),
    (
      Config {
        token_delivery: webhook("http://127.0.0.1:9/", Some(temp_file("empty", "\n")), 5000),
        ..Config::default()
      },
      "is empty",
    ),
    (
      smtp(|s| s.from = "not an address".into()),
      "tokenDelivery.from 'not an address' is not an email address",
    ),
    (
      smtp(|s| s.confirm_url = "/confirm".into()),
      "tokenDelivery.confirmUrl '/confirm' is not a URL",
    ),
    (
      smtp(|s| s.reset_url = "mailto:a@b.c".into()),
      "tokenDelivery.resetUrl 'mailto:a@b.c' must be an http:// or https:// URL",
    ),
    (
      smtp(|s| s.username = Some("mailer".into())),
      "username and passwordFile go together",
    ),
    (
      smtp(|s| s.password_file = Some("/nonexistent/realm-auth/pw".into())),
      "username and passwordFile go together",
    ),
    (
      smtp(|s| {
        s.username = Some("mailer".into());
        s.password_file = Some("/nonexistent/realm-auth/pw".into());
      }),
      "passwordFile: cannot read",
    ),
    (smtp(|s| s.host = String::new()), "is not a host name"),
    (
      smtp(|s| s.host = "smtp.example.com:587".into()),
      "is not a host name",
    ),
    (
      smtp(|s| {
        s.host = "mail.example.com".into();
        s.username = Some("mailer".into());
        s.password_file = Some(temp_file("smtp-pw", "hunter22\n"));
      }),
      "would send the SMTP password in clear text",
    ),
  ] {
    let message = start_error(config).await;
    assert!(message.contains(expected), "{message:?} lacks {expected:?}");
    assert!(!message.contains("hunter22"), "{message}");
  }

  // Clear text is fine across this machine.
  for url in [
    "http://localhost:9/",
    "http://127.0.0.2:9/",
    "http://[::1]:9/",
  ] {
    Emulator::start(hook(url)).await.expect(url).stop().await;
  }

  // Production: confirmation required and nowhere to send the tokens.
  let message = start_error(Config {
    require_email_confirmation: true,
    control_api: false,
    ..Config::default()
  })
  .await;
  assert!(
    message.contains("requireEmailConfirmation is on but no tokenDelivery is configured"),
    "{message}"
  );
  // The emulator has its control API for that.
  let emu = start_with(Config {
    require_email_confirmation: true,
    ..Config::default()
  })
  .await;
  assert_eq!(emu.emulator.delivery_stats(), DeliveryStats::default());
}

#[test]
fn token_delivery_is_a_config_file_key_and_rejects_unknown_fields() {
  let config: Config = serde_json::from_value(json!({
    "tokenDelivery": {"kind": "webhook", "url": "https://hooks.example.com/realm?key=s3cret",
                      "secretFile": "/run/secrets/hook"}
  }))
  .unwrap();
  let Some(TokenDelivery::Webhook(hook)) = &config.token_delivery else {
    panic!("webhook expected: {config:?}");
  };
  assert_eq!(hook.timeout_ms, 5000);
  assert_eq!(hook.secret_file, Some(PathBuf::from("/run/secrets/hook")));
  // Debug shows where the hook goes, not its query (which may hold a key).
  let debug = format!("{config:?}");
  assert!(debug.contains("https://hooks.example.com/realm"), "{debug}");
  assert!(!debug.contains("s3cret"), "{debug}");

  let config: Config = serde_json::from_value(json!({
    "tokenDelivery": {"kind": "smtp", "host": "smtp.example.com", "from": "a@example.com",
                      "confirmUrl": "https://a.example.com/c", "resetUrl": "https://a.example.com/r"}
  }))
  .unwrap();
  let Some(TokenDelivery::Smtp(smtp)) = &config.token_delivery else {
    panic!("smtp expected");
  };
  assert_eq!(
    (smtp.tls, smtp.port, smtp.timeout_ms),
    (SmtpTls::Starttls, None, 5000)
  );

  for bad in [
    json!({"tokenDelivery": {"kind": "webhook", "url": "http://x/", "secret": "inline"}}),
    json!({"tokenDelivery": {"kind": "pigeon"}}),
    json!({"tokenDelivery": {"kind": "smtp", "host": "h", "from": "a@b.c", "confirmUrl": "http://a/",
                             "resetUrl": "http://a/", "tls": "maybe"}}),
  ] {
    assert!(
      serde_json::from_value::<Config>(bad.clone()).is_err(),
      "{bad}"
    );
  }
  // A serve config file accepts the key.
  let file = temp_file(
    "serve.json",
    r#"{"tokenDelivery": {"kind": "webhook", "url": "http://127.0.0.1:9/"}}"#,
  );
  let config = realm_auth_server::cli::read_config_file(file.to_str().unwrap()).unwrap();
  assert!(config.token_delivery.is_some());
  let _ = std::fs::remove_file(file);
}

/// Starts `serve --config <file> --json` with `config` (a SQLite store is added), or returns its
/// exit code and stderr when it stops within 30 s.
async fn serve(config: Value) -> (tokio::process::Child, Result<u16, (Option<i32>, String)>) {
  serve_with_env(config, &[]).await
}

async fn serve_with_env(
  config: Value,
  env: &[(&str, &std::path::Path)],
) -> (tokio::process::Child, Result<u16, (Option<i32>, String)>) {
  let dir = std::env::temp_dir().join(format!(
    "realm-auth-delivery-serve-{}-{}",
    std::process::id(),
    std::time::SystemTime::now()
      .duration_since(std::time::UNIX_EPOCH)
      .unwrap()
      .as_nanos()
  ));
  std::fs::create_dir_all(&dir).unwrap();
  let mut config = config;
  config["store"] = json!({"kind": "sqlite", "path": dir.join("auth.db")});
  config["passwordIterations"] = json!(1);
  config["appId"] = json!("realm-app");
  let file = dir.join("config.json");
  std::fs::write(&file, config.to_string()).unwrap();
  let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
    .args([
      "serve",
      "--config",
      file.to_str().unwrap(),
      "--port",
      "0",
      "--json",
    ])
    .envs(env.iter().copied())
    .stdin(std::process::Stdio::null())
    .stdout(std::process::Stdio::piped())
    .stderr(std::process::Stdio::piped())
    .kill_on_drop(true)
    .spawn()
    .unwrap();
  let mut stdout = BufReader::new(child.stdout.take().unwrap());
  let mut line = String::new();
  let read = tokio::time::timeout(Duration::from_secs(30), stdout.read_line(&mut line))
    .await
    .expect("serve starts or stops within 30 s")
    .unwrap();
  if read == 0 {
    let mut stderr = String::new();
    child
      .stderr
      .take()
      .unwrap()
      .read_to_string(&mut stderr)
      .await
      .unwrap();
    let status = child.wait().await.unwrap();
    return (child, Err((status.code(), stderr)));
  }
  let v: Value = serde_json::from_str(line.trim()).unwrap();
  let port = v["baseUrl"]
    .as_str()
    .unwrap()
    .rsplit(':')
    .next()
    .unwrap()
    .parse()
    .unwrap();
  (child, Ok(port))
}

#[tokio::test]
async fn serve_refuses_confirmation_without_delivery_and_logs_failures_without_tokens() {
  let (_child, outcome) = serve(json!({"requireEmailConfirmation": true})).await;
  let (code, stderr) = outcome.expect_err("serve must refuse to start");
  assert_eq!(code, Some(2), "{stderr}");
  assert!(
    stderr.contains("no tokenDelivery is configured"),
    "{stderr}"
  );

  // A receiver that refuses (400, final): it sees the token, the log must not.
  let mut hook = Hook::start(vec![400]).await;
  let (mut child, outcome) = serve(json!({
    "requireEmailConfirmation": true,
    "tokenDelivery": {"kind": "webhook", "url": hook.url, "timeoutMs": 2000},
  }))
  .await;
  let port = outcome.expect("serve starts");
  let body = json!({"email": "secretive.person@example.net", "password": "password1"}).to_string();
  let request = build_request(
    "POST",
    &format!("{BASE}/app/realm-app/auth/providers/local-userpass/register"),
    &[("Content-Type", "application/json")],
    Some(body.as_bytes()),
  );
  let r = parse_response(&raw_exchange(port, &request).await.unwrap());
  assert_eq!(r.status, 201, "{}", r.text());
  let v = hook.next().await.json();
  let (token, token_id) = (
    v["token"].as_str().unwrap().to_string(),
    v["tokenId"].as_str().unwrap().to_string(),
  );
  let mut stderr = BufReader::new(child.stderr.take().unwrap());
  let mut log = String::new();
  tokio::time::timeout(Duration::from_secs(10), async {
    while !log.contains("not delivered") {
      if stderr.read_line(&mut log).await.unwrap() == 0 {
        break;
      }
    }
  })
  .await
  .expect("a failure line within 10 s");
  child.kill().await.unwrap();
  assert!(log.contains("confirm token for <…@example.net>"), "{log}");
  assert!(log.contains("400"), "{log}");
  for secret in [
    token.as_str(),
    token_id.as_str(),
    "secretive.person",
    "password1",
  ] {
    assert!(!log.contains(secret), "the log holds {secret:?}: {log}");
  }
}

/// A CA (`ca-{name}.pem`) in `dir`; with `leaf`, also `leaf.pem`/`leaf.key` for `localhost` and
/// 127.0.0.1, signed by it.
fn make_ca(dir: &std::path::Path, name: &str, leaf: bool) {
  use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair};
  let ca_key = KeyPair::generate().unwrap();
  let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
  ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
  ca.distinguished_name
    .push(DnType::CommonName, format!("realm-auth {name} test CA"));
  let ca_cert = ca.self_signed(&ca_key).unwrap();
  std::fs::write(dir.join(format!("ca-{name}.pem")), ca_cert.pem()).unwrap();
  if leaf {
    let issuer = Issuer::new(ca, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])
      .unwrap()
      .signed_by(&leaf_key, &issuer)
      .unwrap();
    std::fs::write(dir.join("leaf.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), leaf_key.serialize_pem()).unwrap();
  }
}

fn acceptor(dir: &std::path::Path) -> tokio_rustls::TlsAcceptor {
  use tokio_rustls::rustls;
  use tokio_rustls::rustls::pki_types::pem::PemObject;
  use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
  let cert = CertificateDer::from_pem_slice(&std::fs::read(dir.join("leaf.pem")).unwrap()).unwrap();
  let key = PrivateKeyDer::from_pem_slice(&std::fs::read(dir.join("leaf.key")).unwrap()).unwrap();
  let config =
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
      .with_safe_default_protocol_versions()
      .unwrap()
      .with_no_client_auth()
      .with_single_cert(vec![cert], key)
      .unwrap();
  tokio_rustls::TlsAcceptor::from(Arc::new(config))
}

/// An https:// webhook: verified against the roots `SSL_CERT_FILE` names, refused when its
/// certificate is not from a trusted CA.
#[tokio::test]
async fn https_webhook_verifies_the_receiver_certificate() {
  let dir = temp_file("tls", "").with_extension("d");
  std::fs::create_dir_all(&dir).unwrap();
  make_ca(&dir, "good", true);
  make_ca(&dir, "other", false);
  for (ca, trusted) in [("ca-good.pem", true), ("ca-other.pem", false)] {
    let mut hook = Hook::start_on("localhost", Some(acceptor(&dir)), Vec::new()).await;
    let (mut child, outcome) = serve_with_env(
      json!({
        "requireEmailConfirmation": true,
        "tokenDelivery": {"kind": "webhook", "url": hook.url, "timeoutMs": 2000},
      }),
      &[("SSL_CERT_FILE", &dir.join(ca))],
    )
    .await;
    let port = outcome.expect("serve starts");
    let body = json!({"email": "tls@example.com", "password": "password1"}).to_string();
    let request = build_request(
      "POST",
      &format!("{BASE}/app/realm-app/auth/providers/local-userpass/register"),
      &[("Content-Type", "application/json")],
      Some(body.as_bytes()),
    );
    let r = parse_response(&raw_exchange(port, &request).await.unwrap());
    assert_eq!(r.status, 201, "{}", r.text());
    if trusted {
      let v = hook.next().await.json();
      assert_eq!(
        (v["type"].as_str(), v["email"].as_str()),
        (Some("confirm"), Some("tls@example.com"))
      );
    } else {
      let mut stderr = BufReader::new(child.stderr.take().unwrap());
      let mut log = String::new();
      tokio::time::timeout(Duration::from_secs(15), async {
        while !log.contains("not delivered") {
          if stderr.read_line(&mut log).await.unwrap() == 0 {
            break;
          }
        }
      })
      .await
      .expect("a failure line within 15 s");
      assert!(log.contains("TLS"), "{log}");
      assert!(
        hook.rx.try_recv().is_err(),
        "an untrusted receiver got the token"
      );
    }
    child.kill().await.unwrap();
  }
  let _ = std::fs::remove_dir_all(dir);
}
