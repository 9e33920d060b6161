//! The SQLite floor for `npm run bench:server`: the queries the server runs, straight through
//! rusqlite on one thread (pin the process to the server's core), on the database file the
//! server itself created and filled (its schema, its rows; WAL, `synchronous=FULL`).
//!
//! Modes:
//! - `select`: one prepared statement per iteration, the keys-of-owner query of the list route
//!   (`SELECT … FROM api_keys WHERE app_id = ? AND owner = ? ORDER BY seq`): the raw select loop.
//! - `list`: what one `GET /auth/api_keys` asks of the store: a read transaction with the session
//!   by id joined with its user (the server's later reads of that user are answered from the
//!   row it keeps) and the keys-of-owner query.
//! - `login`: what one API-key login asks of the store: a `BEGIN IMMEDIATE` transaction with the
//!   key by hash joined with its owner, the expired-session sweep, the session insert and the
//!   access generation, then a durable commit.
//!
//! Usage: `realm-auth-bench-sqlite-floor '<json config>'`; prints one JSON `Report`.

use std::time::{Duration, Instant};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Config {
  path: std::path::PathBuf,
  app_id: String,
  mode: String,
  warmup_secs: f64,
  secs: f64,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
  mode: String,
  ops: u64,
  ops_per_sec: f64,
  us_per_op: f64,
  /// User + system CPU time per operation: the floor's cost on its core, whatever share of the
  /// core the process got (other processes on a shared core lower `ops_per_sec`, not this).
  cpu_us_per_op: f64,
}

/// User + system CPU seconds of this process so far.
fn cpu_secs() -> f64 {
  // SAFETY: getrusage only writes the struct it is given.
  let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
  unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut ru) };
  let tv = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
  tv(ru.ru_utime) + tv(ru.ru_stime)
}

const KEYS_OF: &str = "SELECT id, owner, name, disabled, hash, server, created FROM api_keys \
                       WHERE app_id = ?1 AND owner = ?2 ORDER BY seq";
const SESSION: &str = "SELECT s.id, s.user_id, s.device_id, s.via_key, s.expires, u.id, u.kind, \
                       u.identities, u.data, u.custom_data, u.created FROM sessions s \
                       LEFT JOIN users u ON u.app_id = s.app_id AND u.id = s.user_id \
                       WHERE s.app_id = ?1 AND s.id = ?2";
const KEY_BY_HASH: &str = "SELECT k.id, k.owner, k.name, k.disabled, k.hash, k.server, \
                           k.created, u.id, u.kind, u.identities, u.data, u.custom_data, \
                           u.created FROM api_keys k \
                           LEFT JOIN users u ON u.app_id = k.app_id AND u.id = k.owner \
                           WHERE k.app_id = ?1 AND k.hash = ?2";
const SWEEP: &str = "DELETE FROM sessions WHERE app_id = ?1 AND user_id = ?2 AND expires <= ?3";
const INSERT_SESSION: &str = "INSERT INTO sessions (app_id, id, user_id, device_id, via_key, \
                              expires) VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const GENERATION: &str = "SELECT access_generation FROM apps WHERE app_id = ?1";

type Res<T> = rusqlite::Result<T>;

fn keys(conn: &Connection, app: &str, owner: &str) -> Res<usize> {
  let mut stmt = conn.prepare_cached(KEYS_OF)?;
  let mut rows = stmt.query(params![app, owner])?;
  let mut n = 0;
  while let Some(row) = rows.next()? {
    let _: (String, String, String, bool, String, bool, i64) = (
      row.get(0)?,
      row.get(1)?,
      row.get(2)?,
      row.get(3)?,
      row.get(4)?,
      row.get(5)?,
      row.get(6)?,
    );
    n += 1;
  }
  Ok(n)
}

/// Reads the user columns that start at `at`, as the server does (it parses them).
fn user_cols(r: &rusqlite::Row<'_>, at: usize) -> Res<()> {
  let _: (String, String, String, String, String, i64) = (
    r.get(at)?,
    r.get(at + 1)?,
    r.get(at + 2)?,
    r.get(at + 3)?,
    r.get(at + 4)?,
    r.get(at + 5)?,
  );
  Ok(())
}

fn list(conn: &Connection, app: &str, session: &str) -> Res<usize> {
  conn.execute_batch("BEGIN")?;
  let owner: String = conn
    .prepare_cached(SESSION)?
    .query_row(params![app, session], |r| {
      let _: (String, String, Option<String>, i64) = (r.get(0)?, r.get(2)?, r.get(3)?, r.get(4)?);
      user_cols(r, 5)?;
      r.get(1)
    })?;
  let n = keys(conn, app, &owner)?;
  conn.execute_batch("COMMIT")?;
  Ok(n)
}

fn login(conn: &Connection, app: &str, hash: &str, n: u64) -> Res<()> {
  conn.execute_batch("BEGIN IMMEDIATE")?;
  let (key_id, owner): (String, String) =
    conn
      .prepare_cached(KEY_BY_HASH)?
      .query_row(params![app, hash], |r| {
        user_cols(r, 7)?;
        Ok((r.get(0)?, r.get(1)?))
      })?;
  let now = std::time::SystemTime::now()
    .duration_since(std::time::UNIX_EPOCH)
    .unwrap()
    .as_secs() as i64;
  conn
    .prepare_cached(SWEEP)?
    .execute(params![app, owner, now])?;
  conn.prepare_cached(INSERT_SESSION)?.execute(params![
    app,
    // Unique across repetitions: each is a process of its own.
    format!("floor-{}-{n}", std::process::id()),
    owner,
    "000000000000000000000000",
    key_id,
    now + 86400
  ])?;
  let _: i64 = conn
    .prepare_cached(GENERATION)?
    .query_row(params![app], |r| r.get(0))?;
  conn.execute_batch("COMMIT")
}

fn main() {
  let arg = std::env::args()
    .nth(1)
    .expect("usage: realm-auth-bench-sqlite-floor '<json config>'");
  let config: Config = serde_json::from_str(&arg).expect("config");
  // The server's connection settings.
  let conn = Connection::open(&config.path).expect("open");
  conn.busy_timeout(Duration::from_secs(10)).unwrap();
  conn.pragma_update(None, "journal_mode", "WAL").unwrap();
  conn.pragma_update(None, "synchronous", "FULL").unwrap();
  let app = config.app_id.as_str();
  let column = |sql: &str| -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap();
    stmt
      .query_map(params![app], |r| r.get(0))
      .unwrap()
      .collect::<Res<Vec<String>>>()
      .unwrap()
  };
  let owners = column("SELECT DISTINCT owner FROM api_keys WHERE app_id = ?1 AND server = 0");
  let sessions = column(
    "SELECT id FROM sessions WHERE app_id = ?1 AND via_key IS NULL AND user_id IN \
     (SELECT owner FROM api_keys WHERE app_id = ?1)",
  );
  let hashes = column("SELECT hash FROM api_keys WHERE app_id = ?1 AND server = 0");
  assert!(!owners.is_empty() && !sessions.is_empty() && !hashes.is_empty());

  let step = |i: u64| -> Res<()> {
    let i_ = i as usize;
    match config.mode.as_str() {
      "select" => keys(&conn, app, &owners[i_ % owners.len()]).map(drop),
      "list" => list(&conn, app, &sessions[i_ % sessions.len()]).map(drop),
      "login" => login(&conn, app, &hashes[i_ % hashes.len()], i),
      other => panic!("unknown mode {other}"),
    }
  };
  let t0 = Instant::now();
  let warm = Duration::from_secs_f64(config.warmup_secs);
  let mut i = 0u64;
  while t0.elapsed() < warm {
    step(i).expect("query");
    i += 1;
  }
  let start = Instant::now();
  let cpu0 = cpu_secs();
  let window = Duration::from_secs_f64(config.secs);
  let mut ops = 0u64;
  // Check the clock every 64 operations: a select costs about as much as reading it.
  loop {
    for _ in 0..64 {
      step(i).expect("query");
      i += 1;
      ops += 1;
    }
    if start.elapsed() >= window {
      break;
    }
  }
  let secs = start.elapsed().as_secs_f64();
  let cpu = cpu_secs() - cpu0;
  let report = Report {
    mode: config.mode.clone(),
    ops,
    ops_per_sec: ops as f64 / secs,
    us_per_op: secs * 1e6 / ops as f64,
    cpu_us_per_op: cpu * 1e6 / ops as f64,
  };
  println!("{}", serde_json::to_string(&report).expect("report"));
}
