//! Who may use the control API: the control token, the Host and Origin checks, JSON-only bodies
//! of at most 1 MiB.

mod common;

use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::{Config, Emulator, EmulatorError, EmulatorErrorCode};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A control request with exactly these headers (the helper's `send` adds the token).
async fn raw(
  emu: &Emu,
  method: &str,
  path: &str,
  headers: &[(&str, &str)],
  body: Option<&str>,
) -> Resp {
  let req = build_request(method, path, headers, body.map(str::as_bytes));
  parse_response(&raw_exchange(emu.port, &req).await.expect("exchange"))
}

#[track_caller]
fn assert_refused(r: &Resp, status: u16, code: EmulatorErrorCode, message: &str) {
  assert_eq!(r.status, status, "{}", r.text());
  let v = r.json();
  assert_eq!(v["code"], code.value(), "{v}");
  assert!(
    v["error"].as_str().unwrap().contains(message),
    "{v} lacks {message:?}"
  );
}

#[tokio::test]
async fn control_routes_need_the_token_but_the_index() {
  let emu = start().await;
  let host = format!("127.0.0.1:{}", emu.port);
  let bearer = format!("Bearer {}", emu.token);
  assert_eq!(emu.token.len(), 48);

  let r = raw(&emu, "GET", "/_emulator/users", &[("Host", &host)], None).await;
  assert_refused(
    &r,
    401,
    EmulatorErrorCode::Unauthorized,
    "Authorization: Bearer <token>",
  );
  assert_eq!(r.json()["error_code"], "Unauthorized");
  let wrong = format!("Bearer {}", "0".repeat(48));
  let r = raw(
    &emu,
    "POST",
    "/_emulator/reset",
    &[("Host", &host), ("Authorization", &wrong)],
    None,
  )
  .await;
  assert_refused(
    &r,
    401,
    EmulatorErrorCode::Unauthorized,
    "wrong control token",
  );
  // The token alone, without "Bearer", is not it either.
  let r = raw(
    &emu,
    "GET",
    "/_emulator/users",
    &[("Host", &host), ("Authorization", &emu.token)],
    None,
  )
  .await;
  assert_eq!(r.status, 401);
  let r = raw(
    &emu,
    "GET",
    "/_emulator/users",
    &[("Host", &host), ("Authorization", &bearer)],
    None,
  )
  .await;
  assert_eq!((r.status, r.json()), (200, json!([])));

  // Every listed route but the index refuses a request without the token.
  for route in realm_auth_server::CONTROL_ROUTES {
    let path = route
      .path
      .replace(":id", "0123456789abcdef01234567")
      .replace(":requestId", "0")
      .replace(":email", "a%40b.c");
    let r = raw(&emu, route.method, &path, &[("Host", &host)], None).await;
    let expected = if route.path == "/_emulator/" {
      200
    } else {
      401
    };
    assert_eq!(
      r.status,
      expected,
      "{} {}: {}",
      route.method,
      route.path,
      r.text()
    );
  }
  let index = raw(&emu, "GET", "/_emulator/", &[("Host", &host)], None).await;
  assert!(
    index.json()["authentication"]
      .as_str()
      .unwrap()
      .contains("Authorization: Bearer <token>")
  );
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_refused_request_is_answered_before_its_body_arrives() {
  let emu = start().await;
  let mut stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  // Declares 64 MiB and sends none of it: the refusal must not wait for (or buffer) the body.
  let head = format!(
    "POST /_emulator/faults HTTP/1.1\r\nHost: 127.0.0.1:{}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
    emu.port,
    64 << 20
  );
  stream.write_all(head.as_bytes()).await.unwrap();
  let mut buf = vec![0u8; 4096];
  let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
    .await
    .expect("answered at once")
    .unwrap();
  let text = String::from_utf8_lossy(&buf[..n]);
  assert!(text.starts_with("HTTP/1.1 401 "), "{text}");
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_foreign_host_is_refused() {
  let emu = start_with(Config {
    allowed_hosts: vec!["emulator".into(), "mapped:8000".into()],
    ..Config::default()
  })
  .await;
  let bearer = format!("Bearer {}", emu.token);
  let port = emu.port;
  let status = |host: String| {
    let bearer = bearer.clone();
    let emu = &emu;
    async move {
      raw(
        emu,
        "GET",
        "/_emulator/info",
        &[("Host", &host), ("Authorization", &bearer)],
        None,
      )
      .await
    }
  };
  for ok in [
    format!("127.0.0.1:{port}"),
    format!("localhost:{port}"),
    format!("LOCALHOST:{port}"),
    format!("[::1]:{port}"),
    format!("emulator:{port}"),
    "mapped:8000".to_string(),
  ] {
    assert_eq!(status(ok.clone()).await.status, 200, "{ok}");
  }
  // A DNS-rebinding page reaches the port under its own name.
  let r = status(format!("attacker.example:{port}")).await;
  assert_refused(
    &r,
    403,
    EmulatorErrorCode::Forbidden,
    &format!(
      "Host 'attacker.example:{port}' is not one of this emulator's names (127.0.0.1:{port}, localhost:{port}"
    ),
  );
  assert!(r.json()["error"].as_str().unwrap().contains("--allow-host"));
  assert_eq!(r.json()["error_code"], "Forbidden");
  for bad in [
    format!("localhost:{}", port.wrapping_add(1)),
    "localhost".to_string(),
    format!("emulator.evil:{port}"),
    "mapped:8001".to_string(),
  ] {
    assert_eq!(status(bad.clone()).await.status, 403, "{bad}");
  }
  // Even the index: a rebinding page must learn nothing, not even that this is an emulator.
  let r = raw(
    &emu,
    "GET",
    "/_emulator/",
    &[("Host", "attacker.example")],
    None,
  )
  .await;
  assert_eq!(r.status, 403);
  // The client API answers any Host: behind a container's name, clients use that name.
  let r = raw(
    &emu,
    "GET",
    &format!("{BASE}/app/{}/location", emu.app),
    &[("Host", "attacker.example")],
    None,
  )
  .await;
  assert_eq!(r.status, 200);
  emu.emulator.stop().await;
}

#[tokio::test]
async fn a_cross_origin_browser_request_is_refused() {
  let emu = start().await;
  emu
    .emulator
    .control()
    .create_user("kept@example.com", "password1")
    .unwrap();
  let host = format!("localhost:{}", emu.port);
  let bearer = format!("Bearer {}", emu.token);
  for (name, value) in [
    ("Origin", "http://attacker.example"),
    // Another local web app (a dev server) is another origin too.
    ("Origin", &format!("http://localhost:{}", emu.port + 1)[..]),
    ("Origin", "null"),
    ("Sec-Fetch-Site", "cross-site"),
    ("Sec-Fetch-Site", "same-site"),
  ] {
    let r = raw(
      &emu,
      "POST",
      "/_emulator/reset",
      &[("Host", &host), ("Authorization", &bearer), (name, value)],
      None,
    )
    .await;
    assert_refused(&r, 403, EmulatorErrorCode::Forbidden, "refused");
  }
  assert_eq!(emu.emulator.control().users().len(), 1, "nothing was reset");
  let own = format!("http://{host}");
  let r = raw(
    &emu,
    "GET",
    "/_emulator/users",
    &[
      ("Host", &host),
      ("Authorization", &bearer),
      ("Origin", &own),
    ],
    None,
  )
  .await;
  assert_eq!(r.status, 200, "{}", r.text());
  emu.emulator.stop().await;
}

#[tokio::test]
async fn bodies_must_be_json_and_at_most_1_mib() {
  let emu = start().await;
  let host = format!("127.0.0.1:{}", emu.port);
  let bearer = format!("Bearer {}", emu.token);
  let user = json!({"email": "typed@example.com", "password": "password1"}).to_string();
  // What a web page can POST without a CORS preflight, and no type at all.
  for content_type in [
    Some("text/plain"),
    Some("application/x-www-form-urlencoded"),
    Some("multipart/form-data; boundary=x"),
    None,
  ] {
    let mut headers = vec![("Host", host.as_str()), ("Authorization", bearer.as_str())];
    headers.extend(content_type.map(|t| ("Content-Type", t)));
    let r = raw(&emu, "POST", "/_emulator/users", &headers, Some(&user)).await;
    assert_refused(
      &r,
      415,
      EmulatorErrorCode::BadRequest,
      "Content-Type: application/json",
    );
  }
  assert!(emu.emulator.control().users().is_empty());
  let r = raw(
    &emu,
    "POST",
    "/_emulator/users",
    &[
      ("Host", &host),
      ("Authorization", &bearer),
      ("Content-Type", "Application/JSON; charset=utf-8"),
    ],
    Some(&user),
  )
  .await;
  assert_eq!(r.status, 201, "{}", r.text());

  // A fault body just under the limit is taken; one over it is not.
  let fault = |size: usize| {
    json!({"path": "/**", "action": {"type": "respond", "status": 500, "body": "x".repeat(size)}})
      .to_string()
  };
  assert_eq!(
    emu
      .send("POST", "/_emulator/faults", None, Some(&fault(1000 * 1024)))
      .await
      .status,
    201
  );
  let r = emu
    .send("POST", "/_emulator/faults", None, Some(&fault(1024 * 1024)))
    .await;
  assert_refused(&r, 413, EmulatorErrorCode::BadRequest, "limited to 1 MiB");
  assert_eq!(r.json()["error_code"], "PayloadTooLarge");
  assert_eq!(emu.emulator.control().faults().len(), 1);
  emu.emulator.stop().await;
}

#[tokio::test]
async fn the_token_can_be_chosen_and_is_checked() {
  let chosen = "a-token-chosen-by-the-tests";
  let emu = start_with(Config {
    control_token: Some(chosen.into()),
    ..Config::default()
  })
  .await;
  assert_eq!(emu.emulator.control_token(), chosen);
  assert_eq!(
    emu
      .send("GET", "/_emulator/faults", None, None)
      .await
      .status,
    200
  );
  emu.emulator.stop().await;
  // Two emulators draw two tokens.
  let (a, b) = (start().await, start().await);
  assert_ne!(a.token, b.token);
  for bad in ["short", "a token with spaces in it"] {
    let err = Emulator::start(Config {
      control_token: Some(bad.into()),
      ..Config::default()
    })
    .await
    .unwrap_err();
    assert!(matches!(err, EmulatorError::Config(_)), "{err}");
    assert!(err.to_string().contains("control token"), "{err}");
  }
  let err = Emulator::start(Config {
    allowed_hosts: vec!["http://x".into()],
    ..Config::default()
  })
  .await
  .unwrap_err();
  assert!(err.to_string().contains("allowed host 'http://x'"), "{err}");
  a.emulator.stop().await;
  b.emulator.stop().await;
}

#[tokio::test]
async fn a_non_loopback_bind_is_warned_about() {
  let local = start().await;
  assert_eq!(local.emulator.exposure_warning(), None);
  local.emulator.stop().await;
  let exposed = start_with(Config {
    host: "0.0.0.0".into(),
    ..Config::default()
  })
  .await;
  let warning = exposed.emulator.exposure_warning().expect("a warning");
  assert!(
    warning.contains(&format!("0.0.0.0:{}", exposed.port)) && warning.contains("other machines"),
    "{warning}"
  );
  exposed.emulator.stop().await;
}

#[tokio::test]
async fn create_user_async_hashes_off_the_runtime_threads() {
  // One runtime thread (tokio::test's): were the hash computed on it, the emulator could serve
  // nothing until it is done.
  let emu = start_with(Config {
    password_iterations: 30_000,
    ..Config::default()
  })
  .await;
  let control = emu.emulator.control();
  let started = Instant::now();
  let (user, served) = tokio::join!(
    control.create_user_async("async@example.com".into(), "password1".into()),
    async {
      let r = emu.app_api("GET", "/location", None, None).await;
      assert_eq!(r.status, 200);
      started.elapsed()
    }
  );
  let hashed = started.elapsed();
  let user = user.unwrap();
  assert!(
    served * 2 < hashed,
    "served after {served:?}, while the hash took {hashed:?}"
  );
  assert_eq!(user.email, "async@example.com");
  let err = control
    .create_user_async("async@example.com".into(), "password1".into())
    .await
    .unwrap_err();
  assert_eq!(err.code(), EmulatorErrorCode::UserExists);
  emu.emulator.stop().await;
}
