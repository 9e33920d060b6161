//! PostgreSQL going away: the server answers 503 with a JSON error, and serves again by itself
//! once the database is back. It stops and restarts the test cluster, so it lives in its own
//! test binary (cargo runs binaries one after another: no other test sees the outage). Needs
//! `REALM_AUTH_TEST_PG_URL`, `PG_TEST_DIR` and `PG_TEST_BIN` from
//! `eval "$(scripts/pg-test-cluster.sh start)"`; without them it says so and passes, unless
//! `REALM_AUTH_TEST_STORE=postgres`.

mod common;

use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use realm_auth_server::Config;
use serde_json::json;

/// Runs `pg_ctl` as the cluster's owner (the `postgres` user when we are root).
fn pg_ctl(bin: &str, args: &[&str]) {
  let pg_ctl = format!("{bin}/pg_ctl");
  let is_root = Command::new("id")
    .arg("-u")
    .output()
    .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
    .unwrap_or(false);
  let status = if is_root {
    Command::new("runuser")
      .args(["-u", "postgres", "--", &pg_ctl])
      .args(args)
      .status()
  } else {
    Command::new(&pg_ctl).args(args).status()
  }
  .expect("pg_ctl runs");
  assert!(status.success(), "pg_ctl {args:?} failed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_answers_503_and_recovers_by_itself() {
  let (Ok(url), Ok(dir), Ok(bin)) = (
    std::env::var("REALM_AUTH_TEST_PG_URL"),
    std::env::var("PG_TEST_DIR"),
    std::env::var("PG_TEST_BIN"),
  ) else {
    assert_ne!(
      std::env::var("REALM_AUTH_TEST_STORE").as_deref(),
      Ok("postgres"),
      "the PostgreSQL test cluster's variables are required with REALM_AUTH_TEST_STORE=postgres"
    );
    eprintln!("skipped: no PostgreSQL test cluster (scripts/pg-test-cluster.sh start)");
    return;
  };
  let port = url
    .rsplit_once(':')
    .and_then(|(_, rest)| rest.split('/').next())
    .expect("a port in the URL")
    .to_string();
  let emu = start_with(Config {
    store: fresh_store("postgres"),
    ..Config::default()
  })
  .await;
  let s = emu.new_user("outage@example.com").await;
  let data = format!("{dir}/data");
  pg_ctl(&bin, &["-D", &data, "-m", "fast", "-w", "stop"]);

  let down = emu
    .api("GET", "/auth/api_keys", Some(&s.refresh), None)
    .await;
  down.assert_error(503, "ServiceUnavailable", "database is unavailable");
  emu
    .login_raw(
      "local-userpass",
      &json!({"username": "outage@example.com", "password": "password1"}),
    )
    .await
    .assert_error(503, "ServiceUnavailable", "database is unavailable");
  // The readiness probe says so too, without the database's URL or error text.
  let ready = emu.send("GET", "/readyz", None, None).await;
  assert_eq!(ready.status, 503, "{}", ready.text());
  assert_eq!(
    ready.json(),
    json!({"status": "unavailable", "reason": "store unavailable"})
  );
  assert_eq!(emu.send("GET", "/healthz", None, None).await.status, 200);
  // Both 503s are counted as store errors (this test binary runs no other server).
  let metrics = emu.send("GET", "/metrics", None, None).await.text();
  let unavailable: f64 = metrics
    .lines()
    .find_map(|l| l.strip_prefix("realm_auth_store_errors_total{kind=\"unavailable\"} "))
    .expect("the store errors counter")
    .parse()
    .unwrap();
  assert!(unavailable >= 2.0, "{metrics}");

  let options = format!("-c listen_addresses=127.0.0.1 -p {port} -k {dir} -c max_connections=200");
  let log = format!("{dir}/server.log");
  pg_ctl(
    &bin,
    &[
      "-D", &data, "-l", &log, "-w", "-t", "60", "-o", &options, "start",
    ],
  );
  // No restart of ours: the server reconnects on its own.
  let deadline = Instant::now() + Duration::from_secs(30);
  loop {
    let r = emu
      .api("GET", "/auth/api_keys", Some(&s.refresh), None)
      .await;
    if r.status == 200 {
      break;
    }
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(Instant::now() < deadline, "not recovered: {}", r.text());
    tokio::time::sleep(Duration::from_millis(200)).await;
  }
  assert_eq!(emu.send("GET", "/readyz", None, None).await.status, 200);
  assert_eq!(emu.create_key(&s.refresh, "after").await.status, 201);
  emu.login_email("outage@example.com", "password1").await;
}
