//! The request log records every client-API request that reached the emulator, with what
//! happened to it: faulted ones (delayed, dropped, reset, truncated, canned), ones the client
//! gave up on, and ones `stop` cut off.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::{FaultAction, FaultSpec, LoggedRequest, RequestOutcome};
use serde_json::json;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

fn location(emu: &Emu) -> String {
  format!("{BASE}/app/{}/location", emu.app)
}

/// Polls the log until `done` holds for it (entries of abandoned requests are logged when the
/// server notices, a moment after the client left).
async fn wait_for_log(emu: &Emu, done: impl Fn(&[LoggedRequest]) -> bool) -> Vec<LoggedRequest> {
  let deadline = Instant::now() + Duration::from_secs(10);
  loop {
    let log = emu.emulator.control().requests();
    if done(&log) || Instant::now() > deadline {
      return log;
    }
    tokio::time::sleep(Duration::from_millis(20)).await;
  }
}

/// Sends a request on a new connection and closes it after `wait`, without reading.
async fn send_and_leave(emu: &Emu, path: &str, wait: Duration) {
  let mut stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  stream
    .write_all(&build_request("GET", path, &[], None))
    .await
    .unwrap();
  tokio::time::sleep(wait).await;
  drop(stream);
}

#[tokio::test]
async fn every_fault_action_is_logged_with_its_outcome() {
  let emu = start().await;
  let control = emu.emulator.control();
  let path = location(&emu);
  let body = r#"{"hostname":"x"}"#;
  let actions = [
    (FaultAction::Drop, 0, RequestOutcome::Dropped),
    (FaultAction::Reset, 0, RequestOutcome::Reset),
    (
      FaultAction::respond(503, "{}"),
      503,
      RequestOutcome::CannedResponse,
    ),
    (
      FaultAction::Truncate {
        status: 200,
        headers: BTreeMap::new(),
        body: body.into(),
        bytes: 3,
      },
      200,
      RequestOutcome::Truncated,
    ),
    (
      FaultAction::SlowBody {
        status: 200,
        headers: BTreeMap::new(),
        body: body.into(),
        chunk_bytes: 8,
        chunk_delay_ms: 1,
      },
      200,
      RequestOutcome::SlowBody,
    ),
  ];
  let mut expected = Vec::new();
  for (action, status, outcome) in actions {
    let id = control
      .inject_fault(FaultSpec::new(path.clone(), action))
      .unwrap();
    // Reset makes the exchange fail; the others end with EOF.
    let _ = raw_exchange(emu.port, &build_request("GET", &path, &[], None)).await;
    expected.push((Some(id), status, outcome));
  }
  let id = control
    .inject_fault(FaultSpec::new(path.clone(), FaultAction::PassThrough).delay_ms(50))
    .unwrap();
  assert_eq!(emu.send("GET", &path, None, None).await.status, 200);
  expected.push((Some(id), 200, RequestOutcome::DelayedThenServed));
  assert_eq!(emu.send("GET", &path, None, None).await.status, 200);
  expected.push((None, 200, RequestOutcome::Served));

  let log = control.requests();
  let got: Vec<_> = log
    .iter()
    .map(|e| (e.fault.clone(), e.status, e.outcome))
    .collect();
  assert_eq!(got, expected);
  assert!(log.iter().all(|e| e.path == path && e.method == "GET"));

  // Over HTTP the outcome is a camelCase string next to the fields that were there before.
  let r = emu.send("GET", "/_emulator/requests", None, None).await;
  let entries = r.json();
  assert_eq!(entries[0]["outcome"], "dropped");
  assert_eq!(entries[0]["status"], 0);
  assert_eq!(entries[0]["fault"], json!(expected[0].0));
  assert_eq!(entries[1]["outcome"], "reset");
  assert_eq!(entries[5]["outcome"], "delayedThenServed");
  assert_eq!(entries[6]["outcome"], "served");
  for key in [
    "id",
    "method",
    "path",
    "query",
    "tokenType",
    "userId",
    "body",
    "status",
    "fault",
    "contentType",
    "accept",
    "hasAuthorization",
    "timestampMs",
  ] {
    assert!(
      entries[0].get(key).is_some(),
      "{key} missing: {}",
      entries[0]
    );
  }
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_request_abandoned_during_a_fault_delay_is_logged() {
  let emu = start().await;
  let control = emu.emulator.control();
  let path = location(&emu);
  let id = control
    .inject_fault(FaultSpec::new(path.clone(), FaultAction::respond(200, "{}")).delay_ms(30_000))
    .unwrap();
  let started = Instant::now();
  send_and_leave(&emu, &path, Duration::from_millis(100)).await;
  let log = wait_for_log(&emu, |log| !log.is_empty()).await;
  assert_eq!(log.len(), 1, "{log:?}");
  assert_eq!(log[0].fault.as_deref(), Some(id.as_str()));
  assert_eq!(log[0].outcome, RequestOutcome::AbortedByClient);
  assert_eq!(log[0].status, 0);
  // Logged when the client left, not when the delay would have ended.
  assert!(started.elapsed() < Duration::from_secs(10));
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_request_cut_off_by_stop_is_logged_as_stopped() {
  let emu = start().await;
  let control = emu.emulator.control();
  let path = location(&emu);
  control
    .inject_fault(FaultSpec::new(path.clone(), FaultAction::PassThrough).delay_ms(30_000))
    .unwrap();
  let mut stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  stream
    .write_all(&build_request("GET", &path, &[], None))
    .await
    .unwrap();
  // The request has reached the handler once the fault is used up.
  let deadline = Instant::now() + Duration::from_secs(10);
  while !control.faults().is_empty() && Instant::now() < deadline {
    tokio::time::sleep(Duration::from_millis(10)).await;
  }
  emu.emulator.stop().await;
  let log = control.requests();
  assert_eq!(log.len(), 1, "{log:?}");
  assert_eq!(
    (log[0].status, log[0].outcome),
    (0, RequestOutcome::Stopped)
  );
  drop(stream);
}
