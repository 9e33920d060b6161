//! Every fault action, observed from a raw client.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::{FaultAction, FaultSpec};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const KEYS: &str = "/api/client/v2.0/auth/api_keys";

fn headers(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
  pairs
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

async fn location_request(emu: &Emu) -> std::io::Result<Vec<u8>> {
  let req = build_request(
    "GET",
    &format!("{BASE}/app/{}/location", emu.app),
    &[],
    None,
  );
  raw_exchange(emu.port, &req).await
}

#[tokio::test]
async fn drop_closes_without_response() {
  let emu = start().await;
  let control = emu.emulator.control();
  let id = control
    .inject_fault(FaultSpec::new(
      format!("{BASE}/app/*/location"),
      FaultAction::Drop,
    ))
    .unwrap();
  let raw = location_request(&emu).await.expect("orderly close");
  assert!(raw.is_empty(), "got {:?}", String::from_utf8_lossy(&raw));
  // Once only (times defaults to 1).
  let ok = parse_response(&location_request(&emu).await.unwrap());
  assert_eq!(ok.status, 200);
  let log = control.requests();
  assert_eq!(log.len(), 2);
  assert_eq!(log[0].fault.as_deref(), Some(id.as_str()));
  assert_eq!(log[0].status, 0);
  assert_eq!(log[1].fault, None);
}

#[tokio::test]
async fn reset_aborts_the_connection() {
  let emu = start().await;
  emu
    .emulator
    .control()
    .inject_fault(FaultSpec::new("app/*/location", FaultAction::Reset))
    .unwrap();
  let err = location_request(&emu).await.expect_err("connection reset");
  assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
}

#[tokio::test]
async fn truncate_sends_part_of_the_body() {
  let emu = start().await;
  let body = r#"[{"_id":"0123456789abcdef01234567","name":"k","disabled":false}]"#;
  emu
    .emulator
    .control()
    .inject_fault(FaultSpec::new(
      KEYS,
      FaultAction::Truncate {
        status: 200,
        headers: BTreeMap::new(),
        body: body.into(),
        bytes: 10,
      },
    ))
    .unwrap();
  let raw = raw_exchange(emu.port, &build_request("GET", KEYS, &[], None))
    .await
    .unwrap();
  let r = parse_response(&raw);
  assert_eq!(r.status, 200);
  assert_eq!(
    r.header("content-length"),
    Some(body.len().to_string().as_str())
  );
  assert_eq!(r.header("content-type"), Some("application/json"));
  assert_eq!(r.body, body.as_bytes()[..10]);
}

#[tokio::test]
async fn slow_body_trickles() {
  let emu = start().await;
  emu
    .emulator
    .control()
    .inject_fault(FaultSpec::new(
      KEYS,
      FaultAction::SlowBody {
        status: 200,
        headers: BTreeMap::new(),
        body: "[1,2]".into(),
        chunk_bytes: 1,
        chunk_delay_ms: 100,
      },
    ))
    .unwrap();
  let started = Instant::now();
  let mut stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  stream
    .write_all(&build_request("GET", KEYS, &[], None))
    .await
    .unwrap();
  let mut got = Vec::new();
  let mut buf = [0u8; 1024];
  let mut headers_at = None;
  loop {
    let n = stream.read(&mut buf).await.unwrap();
    if n == 0 {
      break;
    }
    got.extend_from_slice(&buf[..n]);
    if headers_at.is_none() && got.windows(4).any(|w| w == b"\r\n\r\n") {
      headers_at = Some(started.elapsed());
    }
  }
  let total = started.elapsed();
  let r = parse_response(&got);
  assert_eq!(r.status, 200);
  assert_eq!(r.body, b"[1,2]");
  // Headers come at once, then the body takes at least its five 100 ms delays. (Loose bounds:
  // the machine may be busy; what matters is that the body trickles after the headers.)
  let headers_at = headers_at.unwrap();
  assert!(
    total >= Duration::from_millis(500),
    "body too fast: {total:?}"
  );
  assert!(
    total - headers_at >= Duration::from_millis(300),
    "headers were held back with the body: {headers_at:?} of {total:?}"
  );
}

#[tokio::test]
async fn respond_with_canned_responses() {
  let emu = start().await;
  let control = emu.emulator.control();
  control
    .inject_fault(
      FaultSpec::new(
        KEYS,
        FaultAction::Respond {
          status: 429,
          headers: headers(&[("Retry-After", "2")]),
          body: json!({"error": "slow down", "error_code": "TooManyRequests"}).to_string(),
        },
      )
      .method("GET"),
    )
    .unwrap();
  control
    .inject_fault(FaultSpec::new(
      KEYS,
      FaultAction::Respond {
        status: 502,
        headers: headers(&[("Content-Type", "text/html")]),
        body: "<html><body>Bad Gateway</body></html>".into(),
      },
    ))
    .unwrap();
  control
    .inject_fault(FaultSpec::new(
      KEYS,
      FaultAction::respond(200, "{\"_id\": "),
    ))
    .unwrap();
  control
    .inject_fault(FaultSpec::new(
      KEYS,
      FaultAction::Respond {
        status: 503,
        headers: headers(&[("Content-Type", "")]),
        body: "unavailable".into(),
      },
    ))
    .unwrap();

  let r = emu.send("GET", KEYS, None, None).await;
  assert_eq!(r.status, 429);
  assert_eq!(r.header("retry-after"), Some("2"));
  assert_eq!(r.header("content-type"), Some("application/json"));
  assert_eq!(r.json()["error_code"], "TooManyRequests");

  let r = emu.send("GET", KEYS, None, None).await;
  assert_eq!(r.status, 502);
  assert_eq!(r.header("content-type"), Some("text/html"));
  assert!(r.text().contains("Bad Gateway"));

  let r = emu.send("GET", KEYS, None, None).await;
  assert_eq!(r.status, 200);
  assert!(serde_json::from_slice::<serde_json::Value>(&r.body).is_err());

  let r = emu.send("GET", KEYS, None, None).await;
  assert_eq!(r.status, 503);
  assert_eq!(r.header("content-type"), None);
  assert_eq!(r.text(), "unavailable");

  // All used up: normal handling again.
  emu
    .send("GET", KEYS, None, None)
    .await
    .assert_error(401, "MissingAuthReq", "");
}

#[tokio::test]
async fn server_errors_and_oversized_bodies() {
  let emu = start().await;
  let control = emu.emulator.control();
  for status in [500, 502, 503, 504] {
    control
      .inject_fault(FaultSpec::new(
        KEYS,
        FaultAction::error(status, "InternalServerError", "boom"),
      ))
      .unwrap();
    let r = emu.send("GET", KEYS, None, None).await;
    assert_eq!(r.status, status);
    assert_eq!(r.json()["error"], "boom");
  }
  let big = "x".repeat(3 * 1024 * 1024);
  control
    .inject_fault(FaultSpec::new(KEYS, FaultAction::respond(200, big.clone())))
    .unwrap();
  let r = emu.send("GET", KEYS, None, None).await;
  assert_eq!(r.body.len(), big.len());
}

#[tokio::test]
async fn a_401_on_any_route() {
  let emu = start().await;
  let user = emu.new_user("any@example.com").await;
  emu
    .emulator
    .control()
    .inject_fault(
      FaultSpec::new(
        "/**",
        FaultAction::error(401, "InvalidSession", "invalid session"),
      )
      .times(2),
    )
    .unwrap();
  emu
    .app_api("GET", "/location", None, None)
    .await
    .assert_error_like(401, "InvalidSession");
  emu
    .api("GET", "/auth/profile", Some(&user.access), None)
    .await
    .assert_error_like(401, "InvalidSession");
  assert_eq!(
    emu
      .api("GET", "/auth/profile", Some(&user.access), None)
      .await
      .status,
    200
  );
}

trait ErrorLike {
  fn assert_error_like(&self, status: u16, code: &str);
}

impl ErrorLike for Resp {
  #[track_caller]
  fn assert_error_like(&self, status: u16, code: &str) {
    assert_eq!(self.status, status);
    assert_eq!(self.json()["error_code"], code);
  }
}

#[tokio::test]
async fn delay_then_pass_through() {
  let emu = start().await;
  let user = emu.new_user("delay@example.com").await;
  emu
    .emulator
    .control()
    .inject_fault(FaultSpec::new(KEYS, FaultAction::PassThrough).delay_ms(300))
    .unwrap();
  let started = Instant::now();
  let r = emu
    .api("GET", "/auth/api_keys", Some(&user.refresh), None)
    .await;
  assert!(started.elapsed() >= Duration::from_millis(300));
  assert_eq!((r.status, r.json()), (200, json!([])));
  let log = emu.emulator.control().requests();
  let last = log.last().unwrap();
  assert!(last.fault.is_some());
  assert_eq!(last.status, 200);
  assert_eq!(last.user_id.as_deref(), Some(user.user_id.as_str()));
}

#[tokio::test]
async fn stalled_response_outlives_a_client_deadline() {
  let emu = start().await;
  emu
    .emulator
    .control()
    .inject_fault(FaultSpec::new(KEYS, FaultAction::respond(200, "[]")).delay_ms(2_000))
    .unwrap();
  let attempt = tokio::time::timeout(
    Duration::from_millis(200),
    raw_exchange(emu.port, &build_request("GET", KEYS, &[], None)),
  )
  .await;
  assert!(attempt.is_err(), "the response should still be stalled");
}

#[tokio::test]
async fn faulted_requests_do_not_run_the_handler() {
  let emu = start().await;
  let user = emu.new_user("nostate@example.com").await;
  let control = emu.emulator.control();
  let actions = [
    FaultAction::respond(
      201,
      r#"{"_id":"0123456789abcdef01234567","key":"fake","name":"k","disabled":false}"#,
    ),
    FaultAction::Drop,
    FaultAction::Reset,
    FaultAction::Truncate {
      status: 201,
      headers: BTreeMap::new(),
      body: "{\"_id\":1}".into(),
      bytes: 3,
    },
    FaultAction::SlowBody {
      status: 201,
      headers: BTreeMap::new(),
      body: "{}".into(),
      chunk_bytes: 1,
      chunk_delay_ms: 1,
    },
  ];
  for action in actions {
    control
      .inject_fault(FaultSpec::new(KEYS, action).method("POST"))
      .unwrap();
    let req = build_request(
      "POST",
      KEYS,
      &[("Authorization", &format!("Bearer {}", user.refresh))],
      Some(br#"{"name":"k"}"#),
    );
    let _ = raw_exchange(emu.port, &req).await;
    let list = emu
      .api("GET", "/auth/api_keys", Some(&user.refresh), None)
      .await;
    assert_eq!(list.json(), json!([]), "a faulted create made a key");
  }
  // With the faults gone the same request works.
  assert_eq!(emu.create_key(&user.refresh, "k").await.status, 201);
}

#[tokio::test]
async fn method_filter_and_unlimited_times() {
  let emu = start().await;
  let control = emu.emulator.control();
  let id = control
    .inject_fault(
      FaultSpec::new(KEYS, FaultAction::respond(503, ""))
        .method("DELETE")
        .times(0),
    )
    .unwrap();
  for _ in 0..3 {
    assert_eq!(emu.send("DELETE", KEYS, None, None).await.status, 503);
  }
  assert_eq!(emu.send("GET", KEYS, None, None).await.status, 401);
  let active = control.faults();
  assert_eq!(active.len(), 1);
  assert_eq!(
    (active[0].id.as_str(), active[0].hits, active[0].remaining),
    (id.as_str(), 3, None)
  );
  control.remove_fault(&id).unwrap();
  assert_eq!(emu.send("DELETE", KEYS, None, None).await.status, 405);
  assert!(control.remove_fault(&id).is_err());
}

#[tokio::test]
async fn control_requests_are_never_faulted_or_logged() {
  let emu = start().await;
  emu
    .emulator
    .control()
    .inject_fault(FaultSpec::new("*", FaultAction::Drop).times(0))
    .unwrap();
  let r = emu.send("GET", "/_emulator/requests", None, None).await;
  assert_eq!((r.status, r.json()), (200, json!([])));
  let r = emu
    .send(
      "POST",
      "/_emulator/users",
      None,
      Some(r#"{"email":"c@x","password":"password1"}"#),
    )
    .await;
  assert_eq!(r.status, 201);
  assert!(emu.emulator.control().requests().is_empty());
}

#[tokio::test]
async fn invalid_faults_are_refused() {
  let emu = start().await;
  let control = emu.emulator.control();
  assert!(
    control
      .inject_fault(FaultSpec::new("", FaultAction::Drop))
      .is_err()
  );
  assert!(
    control
      .inject_fault(FaultSpec::new("/x", FaultAction::respond(42, "")))
      .is_err()
  );
  assert!(
    control
      .inject_fault(FaultSpec::new(
        "/x",
        FaultAction::SlowBody {
          status: 200,
          headers: BTreeMap::new(),
          body: "x".into(),
          chunk_bytes: 0,
          chunk_delay_ms: 1
        }
      ))
      .is_err()
  );
}

#[tokio::test]
async fn clear_faults() {
  let emu = start().await;
  let control = emu.emulator.control();
  control
    .inject_fault(FaultSpec::new(KEYS, FaultAction::Drop).times(0))
    .unwrap();
  control.clear_faults();
  assert!(control.faults().is_empty());
  assert_eq!(emu.send("GET", KEYS, None, None).await.status, 401);
}
