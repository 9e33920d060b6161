//! Connection limits, with real slow, idle and surplus sockets: the header-read timeout, the
//! idle timeout, the connection cap and the per-connection request limit.

mod common;

use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::{Config, FaultAction, FaultSpec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A keep-alive connection that sends requests and reads responses by their length.
struct Conn {
  stream: TcpStream,
  port: u16,
}

impl Conn {
  async fn open(port: u16) -> Conn {
    Conn {
      stream: TcpStream::connect(("127.0.0.1", port)).await.unwrap(),
      port,
    }
  }

  /// `GET path` on this connection; the response, or `None` if the server closed it instead.
  async fn get(&mut self, path: &str) -> Option<Resp> {
    let req = format!(
      "GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{}\r\n\r\n",
      self.port
    );
    if self.stream.write_all(req.as_bytes()).await.is_err() {
      return None;
    }
    read_response(&mut self.stream).await
  }

  /// Waits until the server closes this connection; how long that took, `None` if it did not
  /// within `limit`.
  async fn closed_within(&mut self, limit: Duration) -> Option<Duration> {
    let start = Instant::now();
    let mut buf = [0u8; 1024];
    match tokio::time::timeout(limit, self.stream.read(&mut buf)).await {
      Ok(Ok(0)) | Ok(Err(_)) => Some(start.elapsed()),
      Ok(Ok(n)) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&buf[..n])),
      Err(_) => None,
    }
  }
}

/// Reads one response (head, then `Content-Length` bytes); `None` on EOF before a whole one.
async fn read_response(stream: &mut TcpStream) -> Option<Resp> {
  let mut raw = Vec::new();
  let mut buf = [0u8; 4096];
  loop {
    if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
      let head = parse_response(&raw[..end + 4]);
      let len: usize = head
        .header("content-length")
        .map_or(0, |v| v.parse().unwrap());
      if raw.len() >= end + 4 + len {
        return Some(parse_response(&raw[..end + 4 + len]));
      }
    }
    let n = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buf))
      .await
      .expect("a response in time")
      .ok()?;
    if n == 0 {
      return None;
    }
    raw.extend_from_slice(&buf[..n]);
  }
}

fn location(emu: &Emu) -> String {
  format!("{BASE}/app/{}/location", emu.app)
}

/// Sends a request head one byte every 50 ms, never ending it; how long until the server closes
/// the connection (at most 10 s).
async fn slow_head_closed_after(emu: &Emu, slow: &mut TcpStream) -> Duration {
  let head = format!(
    "GET {} HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Slow: {}",
    location(emu),
    "a".repeat(1000)
  );
  let (mut reader, mut writer) = slow.split();
  let start = Instant::now();
  let writing = async {
    for byte in head.bytes() {
      if writer.write_all(&[byte]).await.is_err() {
        break;
      }
      tokio::time::sleep(Duration::from_millis(50)).await;
    }
    std::future::pending::<()>().await;
  };
  let reading = async {
    let mut buf = [0u8; 256];
    let _ = reader.read(&mut buf).await;
    start.elapsed()
  };
  tokio::time::timeout(Duration::from_secs(10), async {
    tokio::select! {
      _ = writing => unreachable!(),
      closed = reading => closed,
    }
  })
  .await
  .expect("the slow socket was closed")
}

#[tokio::test]
async fn a_slowloris_socket_is_closed_at_the_header_timeout() {
  let emu = start_with(Config {
    header_read_timeout_ms: 600,
    idle_timeout_ms: 60_000,
    ..Config::default()
  })
  .await;
  let mut slow = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  let closed = slow_head_closed_after(&emu, &mut slow).await;
  assert!(
    closed >= Duration::from_millis(550) && closed < Duration::from_secs(3),
    "closed after {closed:?}"
  );
  // A slow head after a served request and a pause longer than the header timeout (the
  // connection's timer has moved on to the idle deadline): the header timer closes it.
  let mut conn = Conn::open(emu.port).await;
  assert_eq!(conn.get(&location(&emu)).await.unwrap().status, 200);
  tokio::time::sleep(Duration::from_millis(800)).await;
  let closed = slow_head_closed_after(&emu, &mut conn.stream).await;
  assert!(
    closed >= Duration::from_millis(550) && closed < Duration::from_secs(3),
    "closed after {closed:?}"
  );
  // Everyone else was served meanwhile, and still is.
  let mut conn = Conn::open(emu.port).await;
  assert_eq!(conn.get(&location(&emu)).await.unwrap().status, 200);
  emu.emulator.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_and_a_busy_one_is_not() {
  let emu = start_with(Config {
    header_read_timeout_ms: 60_000,
    idle_timeout_ms: 500,
    ..Config::default()
  })
  .await;
  // Requests 200 ms apart, for twice the idle timeout: the timer restarts after each.
  let mut busy = Conn::open(emu.port).await;
  for _ in 0..6 {
    assert_eq!(
      busy.get(&location(&emu)).await.expect("still open").status,
      200
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
  }
  let idle = busy.closed_within(Duration::from_secs(5)).await;
  let idle = idle.expect("closed once idle");
  assert!(idle < Duration::from_millis(700), "closed after {idle:?}");

  // A connection that sends nothing falls under the header timer (long here), not the idle one.
  let mut silent = Conn::open(emu.port).await;
  assert_eq!(silent.closed_within(Duration::from_millis(900)).await, None);
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_body_that_never_finishes_gets_408_at_the_header_timeout_and_the_connection_closes() {
  let emu = start_with(Config {
    header_read_timeout_ms: 500,
    idle_timeout_ms: 60_000,
    ..Config::default()
  })
  .await;
  let mut slow = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  // The head is complete; the body promises 100 bytes and sends 10.
  let head = format!(
    "POST {BASE}/app/{}/auth/providers/local-userpass/register HTTP/1.1\r\nHost: 127.0.0.1\r\n\
     Content-Type: application/json\r\nContent-Length: 100\r\n\r\n{{\"email\":",
    emu.app
  );
  let start = Instant::now();
  slow.write_all(head.as_bytes()).await.unwrap();
  let resp = read_response(&mut slow).await.expect("a 408");
  let took = start.elapsed();
  resp.assert_error(408, "RequestTimeout", "did not arrive in time");
  assert_eq!(resp.header("connection"), Some("close"));
  assert!(
    took >= Duration::from_millis(450) && took < Duration::from_secs(5),
    "answered after {took:?}"
  );
  let mut conn = Conn {
    stream: slow,
    port: emu.port,
  };
  assert!(conn.closed_within(Duration::from_secs(5)).await.is_some());
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_slow_handler_is_not_cut_by_the_timers() {
  let emu = start_with(Config {
    header_read_timeout_ms: 300,
    idle_timeout_ms: 300,
    ..Config::default()
  })
  .await;
  let mut spec = FaultSpec::new("location", FaultAction::PassThrough);
  spec.delay_ms = 900;
  emu.emulator.control().inject_fault(spec).unwrap();
  let mut conn = Conn::open(emu.port).await;
  let r = conn.get(&location(&emu)).await.expect("answered");
  assert_eq!(r.status, 200);
  emu.emulator.stop().await;
}

#[tokio::test]
async fn connections_past_the_cap_get_503_while_open_ones_keep_working() {
  let emu = start_with(Config {
    max_connections: 2,
    ..Config::default()
  })
  .await;
  let mut first = Conn::open(emu.port).await;
  let mut second = Conn::open(emu.port).await;
  assert_eq!(first.get(&location(&emu)).await.unwrap().status, 200);
  assert_eq!(second.get(&location(&emu)).await.unwrap().status, 200);
  for _ in 0..3 {
    let mut third = Conn::open(emu.port).await;
    let r = third
      .get(&location(&emu))
      .await
      .expect("a 503, not a reset");
    assert_eq!(r.status, 503);
    assert_eq!(r.json()["error_code"], "ServiceUnavailable");
    assert!(
      r.text().contains("maximum of 2 connections"),
      "{}",
      r.text()
    );
    assert_eq!(r.header("connection"), Some("close"));
    assert!(third.closed_within(Duration::from_secs(5)).await.is_some());
  }
  assert_eq!(first.get(&location(&emu)).await.unwrap().status, 200);
  assert_eq!(second.get(&location(&emu)).await.unwrap().status, 200);
  // Once one closes, a new one gets in.
  drop(first);
  let deadline = Instant::now() + Duration::from_secs(5);
  loop {
    let mut next = Conn::open(emu.port).await;
    if next.get(&location(&emu)).await.unwrap().status == 200 {
      break;
    }
    assert!(
      Instant::now() < deadline,
      "no room after a connection closed"
    );
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_connection_closes_after_its_request_limit() {
  let emu = start_with(Config {
    max_requests_per_connection: 3,
    ..Config::default()
  })
  .await;
  let mut conn = Conn::open(emu.port).await;
  for n in 1..=3 {
    let r = conn.get(&location(&emu)).await.expect("served");
    assert_eq!(r.status, 200);
    let close = r.header("connection") == Some("close");
    assert_eq!(close, n == 3, "request {n}");
  }
  assert!(conn.closed_within(Duration::from_secs(5)).await.is_some());
  // Control requests count too, and the limit is per connection.
  let mut other = Conn::open(emu.port).await;
  assert_eq!(other.get(&location(&emu)).await.unwrap().status, 200);
  emu.emulator.stop().await;
}

#[tokio::test]
async fn zero_turns_the_limits_off() {
  let emu = start_with(Config {
    header_read_timeout_ms: 0,
    idle_timeout_ms: 0,
    max_connections: 0,
    max_requests_per_connection: 0,
    ..Config::default()
  })
  .await;
  let mut conns = Vec::new();
  for _ in 0..5 {
    let mut conn = Conn::open(emu.port).await;
    for _ in 0..3 {
      let r = conn.get(&location(&emu)).await.unwrap();
      assert_eq!((r.status, r.header("connection")), (200, None));
    }
    conns.push(conn);
  }
  assert_eq!(
    conns[0].closed_within(Duration::from_millis(300)).await,
    None
  );
  emu.emulator.stop().await;
}
