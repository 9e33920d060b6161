//! Starting, stopping and the CLI binary.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::{Config, Emulator, EmulatorError};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[tokio::test]
async fn start_reports_its_address() {
  let emu = Emulator::start(Config {
    app_id: "my-app".into(),
    ..Config::default()
  })
  .await
  .unwrap();
  assert_ne!(emu.port(), 0);
  assert_eq!(emu.base_url(), format!("http://127.0.0.1:{}", emu.port()));
  assert_eq!(emu.app_id(), "my-app");
  emu.stop().await;
}

#[tokio::test]
async fn bad_config_and_busy_port() {
  let err = Emulator::start(Config {
    app_id: String::new(),
    ..Config::default()
  })
  .await
  .unwrap_err();
  assert!(matches!(err, EmulatorError::Config(_)));
  let first = Emulator::start(Config::default()).await.unwrap();
  let err = Emulator::start(Config {
    port: first.port(),
    ..Config::default()
  })
  .await
  .unwrap_err();
  assert!(matches!(err, EmulatorError::Bind(_)), "{err}");
  first.stop().await;
}

#[tokio::test]
async fn stop_closes_idle_keep_alive_connections_and_is_idempotent() {
  // An app id no other test uses: the port may be handed to another test's server once this
  // one lets it go, and that server must not be mistaken for this one.
  let emu = start_with(Config {
    app_id: format!("stop-closes-{}", std::process::id()),
    ..Config::default()
  })
  .await;
  let mut stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  let req = format!(
    "GET {BASE}/app/{}/location HTTP/1.1\r\nHost: x\r\n\r\n",
    emu.app
  );
  stream.write_all(req.as_bytes()).await.unwrap();
  let mut buf = vec![0u8; 4096];
  let n = stream.read(&mut buf).await.unwrap();
  assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
  // The connection is now idle and kept alive.
  let started = Instant::now();
  emu.emulator.stop().await;
  emu.emulator.stop().await;
  assert!(started.elapsed() < Duration::from_secs(2));
  let n = tokio::time::timeout(Duration::from_secs(2), stream.read(&mut buf))
    .await
    .expect("closed promptly")
    .unwrap_or(0);
  assert_eq!(n, 0, "the idle connection was closed");
  // No longer accepting: the connect is refused, or (the port reused meanwhile) whatever
  // answers there does not serve this app.
  if let Ok(mut again) = TcpStream::connect(("127.0.0.1", emu.port)).await {
    let _ = again.write_all(req.as_bytes()).await;
    let n = tokio::time::timeout(Duration::from_secs(2), again.read(&mut buf))
      .await
      .map_or(0, |r| r.unwrap_or(0));
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(!head.starts_with("HTTP/1.1 200"), "still accepting: {head}");
  }
}

#[tokio::test]
async fn stop_cuts_stalled_requests() {
  let emu = start().await;
  emu
    .emulator
    .control()
    .inject_fault(
      realm_auth_server::FaultSpec::new("/**", realm_auth_server::FaultAction::PassThrough)
        .delay_ms(60_000),
    )
    .unwrap();
  let port = emu.port;
  let pending =
    tokio::spawn(async move { raw_exchange(port, &build_request("GET", "/x", &[], None)).await });
  tokio::time::sleep(Duration::from_millis(100)).await;
  let started = Instant::now();
  emu.emulator.stop().await;
  assert!(
    started.elapsed() < Duration::from_secs(3),
    "stop waited for the stalled request"
  );
  let outcome = pending.await.unwrap();
  assert!(outcome.map(|b| b.is_empty()).unwrap_or(true));
}

#[tokio::test]
async fn keep_alive_serves_many_requests_on_one_connection() {
  let emu = start().await;
  let mut stream = TcpStream::connect(("127.0.0.1", emu.port)).await.unwrap();
  let req = format!(
    "GET {BASE}/app/{}/location HTTP/1.1\r\nHost: x\r\n\r\n",
    emu.app
  );
  for _ in 0..3 {
    stream.write_all(req.as_bytes()).await.unwrap();
    let mut buf = vec![0u8; 4096];
    let n = stream.read(&mut buf).await.unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
  }
}

#[test]
fn cli_prints_its_address_and_token_and_stops_on_sigterm() {
  let dir = std::env::temp_dir().join(format!("emu-cli-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let data = dir.join("cli.json");
  let mut child = Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
    .args(["--port", "0", "--app-id", "cli-app", "--data"])
    .arg(&data)
    .env(
      realm_auth_server::cli::CONTROL_TOKEN_ENV,
      "token-from-the-environment",
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
  let mut stdout = BufReader::new(child.stdout.take().unwrap());
  let mut line = String::new();
  stdout.read_line(&mut line).unwrap();
  let prefix = "App Services emulator listening on http://127.0.0.1:";
  assert!(line.starts_with(prefix), "{line:?}");
  assert!(line.trim_end().ends_with(" (app id cli-app)"), "{line:?}");
  let port: u16 = line[prefix.len()..]
    .split(' ')
    .next()
    .unwrap()
    .parse()
    .unwrap();
  assert_ne!(port, 0);
  let mut token_line = String::new();
  stdout.read_line(&mut token_line).unwrap();
  assert_eq!(
    token_line,
    format!(
      "{}\n",
      realm_auth_server::cli::control_token_line("token-from-the-environment")
    )
  );

  let rt = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .unwrap();
  let r = rt.block_on(raw_exchange(
    port,
    &build_request("GET", &format!("{BASE}/app/cli-app/location"), &[], None),
  ));
  assert_eq!(parse_response(&r.unwrap()).status, 200);
  let host = format!("127.0.0.1:{port}");
  let users = |token: &str| {
    let auth = format!("Bearer {token}");
    let headers = [("Host", host.as_str()), ("Authorization", auth.as_str())];
    let r = rt.block_on(raw_exchange(
      port,
      &build_request("GET", "/_emulator/users", &headers, None),
    ));
    parse_response(&r.unwrap()).status
  };
  assert_eq!(users("token-from-the-environment"), 200);
  assert_eq!(users("another-token-0123456789"), 401);

  let exit = sigterm_and_wait(&mut child, Duration::from_secs(10));
  assert_eq!(exit.code(), Some(0));
  let mut rest = String::new();
  std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
  assert_eq!(rest, "", "exactly two lines on stdout");
  assert!(data.exists());
  std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn cli_help_and_bad_arguments() {
  let out = Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
    .arg("--help")
    .output()
    .unwrap();
  assert_eq!(out.status.code(), Some(0));
  assert!(String::from_utf8_lossy(&out.stdout).contains("--app-id"));
  for args in [&["--bogus"][..], &["--port", "nope"], &["--port"]] {
    let out = Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
      .args(args)
      .output()
      .unwrap();
    assert_eq!(out.status.code(), Some(2), "{args:?}");
    assert!(!out.stderr.is_empty());
    assert!(out.stdout.is_empty());
  }
}

/// The Node binding keeps these in `Arc`s and awaits their futures on napi's runtime.
#[test]
fn handles_and_futures_are_send_and_sync() {
  fn send_sync<T: Send + Sync>(_: &T) {}
  fn send<T: Send>(_: &T) {}
  let start = Emulator::start(Config::default());
  send(&start);
  drop(start);
  let rt = tokio::runtime::Builder::new_current_thread()
    .enable_all()
    .build()
    .unwrap();
  rt.block_on(async {
    let emu = Emulator::start(Config::default()).await.unwrap();
    send_sync(&emu);
    send_sync(&emu.control());
    let control = emu.control();
    send(&control.flush());
    let stop = emu.stop();
    send(&stop);
    stop.await;
  });
}

/// The signals `/proc` says a process catches (bit n-1 for signal n).
#[cfg(target_os = "linux")]
fn caught_signals(pid: u32) -> u64 {
  let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
  status
    .lines()
    .find_map(|l| l.strip_prefix("SigCgt:"))
    .map_or(0, |hex| u64::from_str_radix(hex.trim(), 16).unwrap())
}

/// A supervisor may SIGHUP (certificate renewal) or SIGTERM `serve` as soon as it reads the
/// listening line. stdout here is a full pipe, so `serve` blocks writing that line: its
/// handlers must be in place before it, or the signals would kill it.
#[cfg(target_os = "linux")]
#[test]
fn serve_handles_signals_sent_as_soon_as_it_listens() {
  use std::io::{Read, Write};
  use std::os::fd::{FromRawFd, OwnedFd};

  let dir = std::env::temp_dir().join(format!("realm-auth-early-signal-{}", std::process::id()));
  std::fs::create_dir_all(&dir).unwrap();
  let tls = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
  let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
  std::fs::write(&cert, tls.cert.pem()).unwrap();
  std::fs::write(&key, tls.signing_key.serialize_pem()).unwrap();

  let mut fds = [0; 2];
  // SAFETY: `pipe2` fills `fds` with two new descriptors, owned below.
  assert_eq!(
    unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC | libc::O_NONBLOCK) },
    0
  );
  // SAFETY: both are open and owned by nothing else.
  let (read_end, write_end) =
    unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) };
  let mut writer = std::fs::File::from(write_end);
  // Fill it to the last byte (writes of up to 4 KiB are all or nothing).
  for chunk in [4096, 1] {
    while writer.write(&vec![b'x'; chunk]).is_ok() {}
  }
  // SAFETY: both are open; only their flags change (back to blocking).
  for fd in fds {
    assert_eq!(unsafe { libc::fcntl(fd, libc::F_SETFL, 0) }, 0);
  }

  let mut child = Reaped(
    Command::new(env!("CARGO_BIN_EXE_realm-auth-server"))
      .args(["serve", "--port", "0", "--json"])
      .arg("--sqlite")
      .arg(dir.join("auth.db"))
      .arg("--tls-cert")
      .arg(&cert)
      .arg("--tls-key")
      .arg(&key)
      .stdout(Stdio::from(writer))
      .stderr(Stdio::piped())
      .spawn()
      .unwrap(),
  );
  let (hup, term) = (1 << (libc::SIGHUP - 1), 1 << (libc::SIGTERM - 1));
  let deadline = Instant::now() + Duration::from_secs(20);
  while caught_signals(child.id()) & (hup | term) != hup | term {
    assert!(
      child.try_wait().unwrap().is_none(),
      "serve exited before it listened"
    );
    assert!(
      Instant::now() < deadline,
      "serve's SIGHUP and SIGTERM handlers are not in place before its listening line"
    );
    std::thread::sleep(Duration::from_millis(10));
  }
  let pid = child.id() as libc::pid_t;
  // SAFETY: plain signals to our own child.
  unsafe {
    assert_eq!(libc::kill(pid, libc::SIGHUP), 0);
    assert_eq!(libc::kill(pid, libc::SIGTERM), 0);
  }
  // Now let it write: it prints its line, reloads the certificate, drains and exits 0.
  let mut out = Vec::new();
  std::fs::File::from(read_end).read_to_end(&mut out).unwrap();
  let exit = child.wait().unwrap();
  let mut err = String::new();
  child
    .stderr
    .take()
    .unwrap()
    .read_to_string(&mut err)
    .unwrap();
  assert_eq!(exit.code(), Some(0), "{err}");
  let out = String::from_utf8_lossy(&out);
  assert!(
    out
      .trim_start_matches('x')
      .contains("\"baseUrl\":\"https://127.0.0.1:"),
    "{out:?}"
  );
  let _ = std::fs::remove_dir_all(&dir);
}
