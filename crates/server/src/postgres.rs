//! The PostgreSQL backend: one database shared by any number of server processes. The sync
//! `postgres` client runs on blocking threads only, from a small pool; every request that may
//! write is one READ COMMITTED transaction whose races are held by constraints (unique email,
//! identity, key name, key hash) and row locks (`SELECT … FOR UPDATE` on the key owner, on an
//! email account's first login). A read-only request runs its statements without BEGIN/COMMIT:
//! under READ COMMITTED each statement takes its own snapshot inside a transaction too, so the
//! two extra round trips would buy nothing. Each pooled connection keeps the statements it has
//! prepared, so a query is one round trip, not two (Parse, then Bind/Execute). A session or a key
//! is read with its user's row (one join, one round trip), which the transaction keeps for the
//! rules' next reads of that user (see [`PgTx::user_cache`]). A connection lost
//! (database restarted or gone) fails the request with 503; the next request connects anew, so
//! the server recovers by itself.

use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use postgres::error::SqlState;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row, Statement};

use crate::ids::{hex, now_secs, random_bytes};
use crate::lanes::Lanes;
use crate::state::{ApiError, ApiKey, EmailAccount, Session, User, UserKind};
use crate::store::{
  ACCOUNT_COLS, AppInfo, JOINED_KEY_COLS, JOINED_USER_COLS, KEY_COLS, Pending, R, StoreError, Tx,
  USER_COLS, UserCache, kind_str, to_json,
};
use crate::throttle::Failures;

/// Versioned migrations, applied in order at start and recorded in `schema_migrations`.
const MIGRATIONS: &[(i64, &str)] = &[
  (1, include_str!("../migrations/postgres/0001_init.sql")),
  (
    2,
    include_str!("../migrations/postgres/0002_user_disabled.sql"),
  ),
  (
    3,
    include_str!("../migrations/postgres/0003_login_throttle.sql"),
  ),
];

/// The advisory lock that serialises migrations when several servers start at once.
const MIGRATION_LOCK: i64 = 0x7265_616c_6d41_7531;

/// Connections kept idle for reuse, and the transactions and `/readyz` probes in flight at
/// most (see `lanes`). Synchronous callers (the control API, the admin commands) use no
/// lane: each opens a connection of its own when none is idle, and returns it to the idle
/// list like any other while that list has room.
const POOL: usize = 8;

/// Prepared statements a connection keeps (the server's SQL is a few dozen fixed texts; the
/// cache starts over if something ever makes more).
const STATEMENTS: usize = 256;

/// A pooled connection idle longer than this is checked before use.
const PING_AFTER: Duration = Duration::from_secs(1);

/// How long connecting may take before the request fails with 503.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// A PostgreSQL database (one schema of it).
pub(crate) struct Postgres {
  config: postgres::Config,
  schema: String,
  /// Idle connections and when each was last used.
  idle: Mutex<Vec<(Conn, Instant)>>,
  /// One per pooled connection: requests queue here for a connection rather than open (and
  /// then close) one of their own when more than [`POOL`] are in flight.
  lanes: Arc<Lanes>,
}

/// A connection and the statements it has prepared, by SQL text.
struct Conn {
  client: Client,
  statements: HashMap<String, Statement>,
}

/// Text PostgreSQL cannot hold (a NUL character): no row has it, so a lookup by it finds
/// nothing without asking (asking would fail, and abort the transaction around it).
fn unstorable(text: &str) -> bool {
  text.contains('\0')
}

fn err(e: postgres::Error) -> StoreError {
  match e.code() {
    Some(c) if *c == SqlState::UNIQUE_VIOLATION => StoreError::Conflict,
    // A NUL character in a value to write: bad input, not a failing database.
    Some(c) if *c == SqlState::CHARACTER_NOT_IN_REPERTOIRE => {
      StoreError::Invalid("text with a NUL character cannot be stored".into())
    }
    // Lost races that a retry would win, and a database shutting down or starting up.
    Some(c)
      if *c == SqlState::T_R_SERIALIZATION_FAILURE
        || *c == SqlState::T_R_DEADLOCK_DETECTED
        || *c == SqlState::ADMIN_SHUTDOWN
        || *c == SqlState::CRASH_SHUTDOWN
        || *c == SqlState::CANNOT_CONNECT_NOW
        || c.code().starts_with("08") =>
    {
      StoreError::Unavailable(e.to_string())
    }
    Some(_) => StoreError::Internal(e.to_string()),
    // No SQLSTATE: the connection itself failed.
    None => StoreError::Unavailable(e.to_string()),
  }
}

/// A schema name we can splice into SQL: letters, digits and `_`, not starting with a digit.
fn valid_schema(name: &str) -> bool {
  !name.is_empty()
    && name.len() <= 63
    && !name.starts_with(|c: char| c.is_ascii_digit())
    && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl Postgres {
  /// Connects, creates the schema if needed and applies pending migrations (under an advisory
  /// lock, so that servers starting together migrate once).
  pub fn open(url: &str, schema: Option<&str>) -> Result<Postgres, String> {
    let mut config: postgres::Config = url
      .parse()
      .map_err(|e| format!("invalid PostgreSQL URL: {e}"))?;
    config.connect_timeout(CONNECT_TIMEOUT);
    let schema = schema.unwrap_or("public").to_string();
    if !valid_schema(&schema) {
      return Err(format!(
        "schema name {schema:?} must be letters, digits and '_'"
      ));
    }
    let db = Postgres {
      config,
      schema,
      idle: Mutex::new(Vec::new()),
      lanes: Lanes::new(POOL),
    };
    let mut conn = db.connect().map_err(|e| e.to_string())?;
    db.migrate(&mut conn.client)
      .map_err(|e| format!("migration: {e}"))?;
    db.give_back(conn);
    Ok(db)
  }

  /// Where the server's transactions run, as many at once as the pool has connections.
  pub fn lanes(&self) -> &Arc<Lanes> {
    &self.lanes
  }

  fn connect(&self) -> R<Conn> {
    let mut client = self
      .config
      .connect(NoTls)
      .map_err(|e| StoreError::Unavailable(e.to_string()))?;
    // Servers starting together may race to create the schema: the loser's CREATE fails on
    // the catalog's unique index, and then the schema exists.
    let sql = format!(
      "CREATE SCHEMA IF NOT EXISTS {0}; SET search_path TO {0}",
      self.schema
    );
    let mut attempts = 0;
    while let Err(e) = client.batch_execute(&sql) {
      attempts += 1;
      match err(e) {
        StoreError::Conflict if attempts < 3 => continue,
        other => return Err(other),
      }
    }
    Ok(Conn {
      client,
      statements: HashMap::new(),
    })
  }

  fn migrate(&self, client: &mut Client) -> Result<(), postgres::Error> {
    let mut tx = client.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
      "CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied BIGINT NOT NULL)",
    )?;
    for (version, sql) in MIGRATIONS {
      let done = tx.query_opt(
        "SELECT version FROM schema_migrations WHERE version = $1",
        &[version],
      )?;
      if done.is_none() {
        tx.batch_execute(sql)?;
        tx.execute(
          "INSERT INTO schema_migrations (version, applied) VALUES ($1, $2)",
          &[version, &(now_secs() as i64)],
        )?;
      }
    }
    tx.commit()
  }

  /// Creates the app's row unless it exists; returns its token signing secret.
  pub fn ensure_app(&self, app_id: &str) -> Result<Vec<u8>, String> {
    let mut conn = self.take().map_err(|e| e.to_string())?;
    let client = &mut conn.client;
    let secret = hex(&random_bytes::<32>());
    let result = client
      .execute(
        "INSERT INTO apps (app_id, jwt_secret, created) VALUES ($1, $2, $3) \
         ON CONFLICT (app_id) DO NOTHING",
        &[&app_id, &secret, &(now_secs() as i64)],
      )
      .and_then(|_| client.query_one("SELECT jwt_secret FROM apps WHERE app_id = $1", &[&app_id]));
    self.give_back(conn);
    result
      .map(|row| row.get::<_, String>(0).into_bytes())
      .map_err(|e| e.to_string())
  }

  /// Every app, by id, with its user count.
  pub fn apps(&self) -> Result<Vec<AppInfo>, String> {
    let mut conn = self.take().map_err(|e| e.to_string())?;
    let result = conn.client.query(
      "SELECT a.app_id, a.created, (SELECT count(*) FROM users u WHERE u.app_id = a.app_id) \
       FROM apps a ORDER BY a.app_id",
      &[],
    );
    self.give_back(conn);
    Ok(
      result
        .map_err(|e| e.to_string())?
        .iter()
        .map(|r| AppInfo {
          id: r.get(0),
          created: r.get::<_, i64>(1) as u64,
          users: r.get::<_, i64>(2) as u64,
        })
        .collect(),
    )
  }

  /// A pooled connection or a new one. One idle for a while is pinged first: the database may
  /// have restarted since, and a request should not fail for the pool's stale connection.
  fn take(&self) -> R<Conn> {
    let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
    match idle {
      Some((c, _)) if c.client.is_closed() => self.connect(),
      Some((mut c, last)) if last.elapsed() > PING_AFTER => {
        if c.client.batch_execute("").is_ok() {
          Ok(c)
        } else {
          // One dead connection means the others died with it.
          self.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
          self.connect()
        }
      }
      Some((c, _)) => Ok(c),
      None => self.connect(),
    }
  }

  fn give_back(&self, conn: Conn) {
    if conn.client.is_closed() {
      return;
    }
    let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
    if idle.len() < POOL {
      idle.push((conn, Instant::now()));
    }
  }

  /// `SELECT 1` on a pooled or new connection (blocking; connecting is bounded by the connect
  /// timeout), for `/readyz`.
  pub fn ping(&self) -> R<()> {
    let mut conn = self.take()?;
    let result = conn.client.simple_query("SELECT 1");
    self.give_back(conn);
    result.map(drop).map_err(err)
  }

  /// Runs `f` in one transaction (blocking: call from a blocking thread). `f`'s error rolls
  /// back. With `write` false its statements run without a transaction until it writes or
  /// locks, which opens one (see the module's documentation); rules lock the rows they must.
  pub fn run<T>(
    &self,
    app: &str,
    write: bool,
    f: impl FnOnce(&mut dyn Tx) -> Result<T, ApiError>,
  ) -> Result<T, ApiError> {
    let mut conn = self.take()?;
    if write && let Err(e) = conn.client.batch_execute("BEGIN") {
      self.give_back(conn);
      return Err(err(e).into());
    }
    let mut pg = PgTx {
      conn: RefCell::new(&mut conn),
      in_tx: Cell::new(write),
      user_cache: UserCache::default(),
      app,
    };
    // A panic in `f` drops the connection unreturned: closing it rolls back.
    let result = f(&mut pg);
    let in_tx = pg.in_tx.get();
    let result = match result {
      Ok(v) if in_tx => conn
        .client
        .batch_execute("COMMIT")
        .map_err(|e| err(e).into())
        .map(|()| v),
      Ok(v) => Ok(v),
      Err(e) => {
        if in_tx && conn.client.batch_execute("ROLLBACK").is_err() {
          // Not put back: a connection that cannot roll back is in no state to serve.
          return Err(e);
        }
        Err(e)
      }
    };
    self.give_back(conn);
    result
  }
}

impl Drop for Postgres {
  fn drop(&mut self) {
    // A client's drop blocks on its own runtime, which panics on an async worker (where the
    // server's last handle may well be dropped): close the idle ones on a thread of their own.
    let idle = std::mem::take(self.idle.get_mut().unwrap_or_else(|e| e.into_inner()));
    if !idle.is_empty() {
      std::thread::spawn(move || drop(idle));
    }
  }
}

/// One transaction. (`RefCell`: the client's queries take `&mut`, reads in [`Tx`] take `&`.)
pub(crate) struct PgTx<'c, 'a> {
  conn: RefCell<&'c mut Conn>,
  /// Whether BEGIN has run: from the start for a writer, before its first write or lock for a
  /// reader that turns out to write.
  in_tx: Cell<bool>,
  /// The user row read last ([`UserCache`]): a repeat read of the same row in the same READ
  /// COMMITTED transaction may see a newer commit or the same row, so answering it from here
  /// changes no outcome (a read-modify-write locks the row first, which drops it).
  user_cache: UserCache,
  app: &'a str,
}

type P<'x> = &'x (dyn ToSql + Sync);

impl PgTx<'_, '_> {
  /// The connection's prepared statement for `sql`, prepared now if it has none.
  fn statement(conn: &mut Conn, sql: &str) -> R<Statement> {
    if let Some(s) = conn.statements.get(sql) {
      return Ok(s.clone());
    }
    let s = conn.client.prepare(sql).map_err(err)?;
    if conn.statements.len() >= STATEMENTS {
      conn.statements.clear();
    }
    conn.statements.insert(sql.to_string(), s.clone());
    Ok(s)
  }

  /// Opens the transaction unless it is open: before anything that writes or locks.
  fn begin(&self) -> R<()> {
    if !self.in_tx.get() {
      self
        .conn
        .borrow_mut()
        .client
        .batch_execute("BEGIN")
        .map_err(err)?;
      self.in_tx.set(true);
    }
    Ok(())
  }

  fn one(&self, sql: &str, params: &[P<'_>]) -> R<Option<Row>> {
    let mut conn = self.conn.borrow_mut();
    let stmt = Self::statement(&mut conn, sql)?;
    conn.client.query_opt(&stmt, params).map_err(err)
  }

  fn all(&self, sql: &str, params: &[P<'_>]) -> R<Vec<Row>> {
    let mut conn = self.conn.borrow_mut();
    let stmt = Self::statement(&mut conn, sql)?;
    conn.client.query(&stmt, params).map_err(err)
  }

  fn exec(&self, sql: &str, params: &[P<'_>]) -> R<u64> {
    self.begin()?;
    let mut conn = self.conn.borrow_mut();
    let stmt = Self::statement(&mut conn, sql)?;
    conn.client.execute(&stmt, params).map_err(err)
  }
}

fn json_col<T: serde::de::DeserializeOwned>(row: &Row, i: usize) -> R<T> {
  serde_json::from_str(row.get::<_, &str>(i))
    .map_err(|e| StoreError::Internal(format!("bad JSON in column {i}: {e}")))
}

fn user_row(row: &Row) -> R<User> {
  user_at(row, 0)
}

/// A user from the [`USER_COLS`] that start at column `at`.
fn user_at(row: &Row, at: usize) -> R<User> {
  Ok(User {
    id: row.get(at),
    kind: if row.get::<_, &str>(at + 1) == "server" {
      UserKind::Server
    } else {
      UserKind::Normal
    },
    identities: json_col(row, at + 2)?,
    data: json_col(row, at + 3)?,
    custom_data: json_col(row, at + 4)?,
    created: row.get::<_, i64>(at + 5) as u64,
    disabled: row.get(at + 6),
  })
}

/// The user of a left join starting at column `at` (`None`: no such user).
fn joined_user(row: &Row, at: usize) -> R<Option<User>> {
  match row.get::<_, Option<&str>>(at) {
    Some(_) => user_at(row, at).map(Some),
    None => Ok(None),
  }
}

fn key_row(row: &Row) -> ApiKey {
  ApiKey {
    id: row.get(0),
    owner: row.get(1),
    name: row.get(2),
    disabled: row.get(3),
    hash: row.get(4),
    server: row.get(5),
    created: row.get::<_, i64>(6) as u64,
  }
}

fn account_row(row: &Row) -> EmailAccount {
  EmailAccount {
    email: row.get(0),
    identity_id: row.get(1),
    salt: row.get(2),
    hash: row.get(3),
    iterations: row.get::<_, i32>(4) as u32,
    confirmed: row.get(5),
    user_id: row.get(6),
  }
}

fn session_row(row: &Row) -> Session {
  Session {
    id: row.get(0),
    user_id: row.get(1),
    device_id: row.get(2),
    via_key: row.get(3),
    expires: row.get::<_, i64>(4) as u64,
  }
}

impl Tx for PgTx<'_, '_> {
  fn access_generation(&self) -> R<u64> {
    let row = self.one(
      "SELECT access_generation FROM apps WHERE app_id = $1",
      &[&self.app],
    )?;
    Ok(row.map_or(0, |r| r.get::<_, i64>(0) as u64))
  }

  fn bump_access_generation(&mut self) -> R<()> {
    self.exec(
      "UPDATE apps SET access_generation = access_generation + 1 WHERE app_id = $1",
      &[&self.app],
    )?;
    Ok(())
  }

  fn clear(&mut self) -> R<()> {
    self.user_cache.forget();
    for table in [
      "users",
      "identities",
      "email_accounts",
      "pending_tokens",
      "api_keys",
      "sessions",
      "login_failures",
    ] {
      self.exec(
        &format!("DELETE FROM {table} WHERE app_id = $1"),
        &[&self.app],
      )?;
    }
    self.bump_access_generation()
  }

  fn user(&self, id: &str) -> R<Option<Cow<'_, User>>> {
    if unstorable(id) {
      return Ok(None);
    }
    if let Some(user) = self.user_cache.get(id) {
      return Ok(user.map(Cow::Owned));
    }
    let user = self
      .one(
        &format!("SELECT {USER_COLS} FROM users WHERE app_id = $1 AND id = $2"),
        &[&self.app, &id],
      )?
      .map(|r| user_row(&r))
      .transpose()?;
    self.user_cache.keep(id, user.clone());
    Ok(user.map(Cow::Owned))
  }

  fn lock_user(&mut self, id: &str) -> R<bool> {
    self.begin()?;
    self.user_cache.forget();
    Ok(
      self
        .one(
          "SELECT 1 FROM users WHERE app_id = $1 AND id = $2 FOR UPDATE",
          &[&self.app, &id],
        )?
        .is_some(),
    )
  }

  fn users(&self) -> R<Vec<User>> {
    self
      .all(
        &format!("SELECT {USER_COLS} FROM users WHERE app_id = $1 ORDER BY created, id"),
        &[&self.app],
      )?
      .iter()
      .map(user_row)
      .collect()
  }

  fn insert_user(&mut self, user: &User) -> R<()> {
    self.user_cache.forget();
    self.exec(
      "INSERT INTO users (app_id, id, kind, identities, data, custom_data, created, disabled) \
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      &[
        &self.app,
        &user.id,
        &kind_str(user.kind),
        &to_json(&user.identities),
        &to_json(&user.data),
        &to_json(&user.custom_data),
        &(user.created as i64),
        &user.disabled,
      ],
    )?;
    Ok(())
  }

  fn update_user(&mut self, user: &User) -> R<()> {
    self.user_cache.forget();
    self.exec(
      "UPDATE users SET identities = $3, data = $4, custom_data = $5 WHERE app_id = $1 AND id = $2",
      &[
        &self.app,
        &user.id,
        &to_json(&user.identities),
        &to_json(&user.data),
        &to_json(&user.custom_data),
      ],
    )?;
    Ok(())
  }

  fn set_user_disabled(&mut self, id: &str, disabled: bool) -> R<bool> {
    self.user_cache.forget();
    let n = self.exec(
      "UPDATE users SET disabled = $3 WHERE app_id = $1 AND id = $2",
      &[&self.app, &id, &disabled],
    )?;
    Ok(n > 0)
  }

  fn delete_user(&mut self, id: &str) -> R<bool> {
    self.user_cache.forget();
    let a = self.app;
    self.exec(
      "DELETE FROM pending_tokens WHERE app_id = $1 AND email IN \
       (SELECT email FROM email_accounts WHERE app_id = $1 AND user_id = $2)",
      &[&a, &id],
    )?;
    for sql in [
      "DELETE FROM email_accounts WHERE app_id = $1 AND user_id = $2",
      "DELETE FROM identities WHERE app_id = $1 AND user_id = $2",
      "DELETE FROM api_keys WHERE app_id = $1 AND owner = $2",
      "DELETE FROM sessions WHERE app_id = $1 AND user_id = $2",
    ] {
      self.exec(sql, &[&a, &id])?;
    }
    let n = self.exec(
      "DELETE FROM users WHERE app_id = $1 AND id = $2",
      &[&a, &id],
    )?;
    Ok(n > 0)
  }

  fn identity_owner(&self, provider: &str, id: &str) -> R<Option<String>> {
    if unstorable(id) {
      return Ok(None);
    }
    Ok(
      self
        .one(
          "SELECT user_id FROM identities WHERE app_id = $1 AND provider = $2 AND ext_id = $3",
          &[&self.app, &provider, &id],
        )?
        .map(|r| r.get(0)),
    )
  }

  fn insert_identity_owner(&mut self, provider: &str, id: &str, user_id: &str) -> R<()> {
    self.exec(
      "INSERT INTO identities (app_id, provider, ext_id, user_id) VALUES ($1, $2, $3, $4)",
      &[&self.app, &provider, &id, &user_id],
    )?;
    Ok(())
  }

  fn email_account(&self, email: &str) -> R<Option<Cow<'_, EmailAccount>>> {
    if unstorable(email) {
      return Ok(None);
    }
    Ok(
      self
        .one(
          &format!("SELECT {ACCOUNT_COLS} FROM email_accounts WHERE app_id = $1 AND email = $2"),
          &[&self.app, &email],
        )?
        .map(|r| Cow::Owned(account_row(&r))),
    )
  }

  fn lock_email_account(&mut self, email: &str) -> R<()> {
    if unstorable(email) {
      return Ok(());
    }
    self.begin()?;
    self.one(
      "SELECT 1 FROM email_accounts WHERE app_id = $1 AND email = $2 FOR UPDATE",
      &[&self.app, &email],
    )?;
    Ok(())
  }

  fn insert_email_account(&mut self, a: &EmailAccount) -> R<()> {
    self.exec(
      "INSERT INTO email_accounts (app_id, email, identity_id, salt, hash, iterations, confirmed, \
       user_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      &[
        &self.app,
        &a.email,
        &a.identity_id,
        &a.salt,
        &a.hash,
        &(a.iterations as i32),
        &a.confirmed,
        &a.user_id,
      ],
    )?;
    Ok(())
  }

  fn update_email_account(&mut self, a: &EmailAccount) -> R<()> {
    self.exec(
      "UPDATE email_accounts SET salt = $3, hash = $4, iterations = $5, confirmed = $6, \
       user_id = $7 WHERE app_id = $1 AND email = $2",
      &[
        &self.app,
        &a.email,
        &a.salt,
        &a.hash,
        &(a.iterations as i32),
        &a.confirmed,
        &a.user_id,
      ],
    )?;
    Ok(())
  }

  fn put_pending(&mut self, kind: Pending, email: &str, token_id: &str, hash: &str) -> R<()> {
    self.exec(
      "INSERT INTO pending_tokens (app_id, kind, email, token_id, token_hash) \
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (app_id, kind, email) \
       DO UPDATE SET token_id = excluded.token_id, token_hash = excluded.token_hash",
      &[&self.app, &kind.as_str(), &email, &token_id, &hash],
    )?;
    Ok(())
  }

  fn pending_by_id(&self, kind: Pending, token_id: &str) -> R<Option<(String, String)>> {
    if unstorable(token_id) {
      return Ok(None);
    }
    Ok(
      self
        .one(
          "SELECT email, token_hash FROM pending_tokens \
           WHERE app_id = $1 AND kind = $2 AND token_id = $3",
          &[&self.app, &kind.as_str(), &token_id],
        )?
        .map(|r| (r.get(0), r.get(1))),
    )
  }

  fn pending_for(&self, kind: Pending, email: &str) -> R<Option<String>> {
    if unstorable(email) {
      return Ok(None);
    }
    Ok(
      self
        .one(
          "SELECT token_id FROM pending_tokens WHERE app_id = $1 AND kind = $2 AND email = $3",
          &[&self.app, &kind.as_str(), &email],
        )?
        .map(|r| r.get(0)),
    )
  }

  fn drop_pending(&mut self, kind: Pending, email: &str) -> R<()> {
    self.exec(
      "DELETE FROM pending_tokens WHERE app_id = $1 AND kind = $2 AND email = $3",
      &[&self.app, &kind.as_str(), &email],
    )?;
    Ok(())
  }

  fn key(&self, id: &str) -> R<Option<Cow<'_, ApiKey>>> {
    if unstorable(id) {
      return Ok(None);
    }
    Ok(
      self
        .one(
          &format!("SELECT {KEY_COLS} FROM api_keys WHERE app_id = $1 AND id = $2"),
          &[&self.app, &id],
        )?
        .map(|r| Cow::Owned(key_row(&r))),
    )
  }

  fn key_by_hash(&self, hash: &str) -> R<Option<Cow<'_, ApiKey>>> {
    // With its owner: a key login reads the owner next.
    let Some(row) = self.one(
      &format!(
        "SELECT {JOINED_KEY_COLS}, {JOINED_USER_COLS} FROM api_keys k \
         LEFT JOIN users u ON u.app_id = k.app_id AND u.id = k.owner \
         WHERE k.app_id = $1 AND k.hash = $2"
      ),
      &[&self.app, &hash],
    )?
    else {
      return Ok(None);
    };
    let key = key_row(&row);
    self.user_cache.keep(&key.owner, joined_user(&row, 7)?);
    Ok(Some(Cow::Owned(key)))
  }

  fn keys_of(&self, owner: &str) -> R<Vec<Cow<'_, ApiKey>>> {
    Ok(
      self
        .all(
          &format!("SELECT {KEY_COLS} FROM api_keys WHERE app_id = $1 AND owner = $2 ORDER BY seq"),
          &[&self.app, &owner],
        )?
        .iter()
        .map(|r| Cow::Owned(key_row(r)))
        .collect(),
    )
  }

  fn server_keys(&self) -> R<Vec<ApiKey>> {
    Ok(
      self
        .all(
          &format!("SELECT {KEY_COLS} FROM api_keys WHERE app_id = $1 AND server ORDER BY seq"),
          &[&self.app],
        )?
        .iter()
        .map(key_row)
        .collect(),
    )
  }

  fn server_key_named(&self, name: &str) -> R<bool> {
    Ok(
      self
        .one(
          "SELECT 1 FROM api_keys WHERE app_id = $1 AND server AND name = $2",
          &[&self.app, &name],
        )?
        .is_some(),
    )
  }

  fn insert_key(&mut self, k: &ApiKey) -> R<()> {
    self.exec(
      "INSERT INTO api_keys (app_id, id, owner, name, disabled, hash, server, created) \
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
      &[
        &self.app,
        &k.id,
        &k.owner,
        &k.name,
        &k.disabled,
        &k.hash,
        &k.server,
        &(k.created as i64),
      ],
    )?;
    Ok(())
  }

  fn set_key_disabled(&mut self, id: &str, disabled: bool) -> R<()> {
    self.exec(
      "UPDATE api_keys SET disabled = $3 WHERE app_id = $1 AND id = $2",
      &[&self.app, &id, &disabled],
    )?;
    Ok(())
  }

  fn delete_key(&mut self, id: &str) -> R<()> {
    self.exec(
      "DELETE FROM api_keys WHERE app_id = $1 AND id = $2",
      &[&self.app, &id],
    )?;
    self.exec(
      "DELETE FROM sessions WHERE app_id = $1 AND via_key = $2",
      &[&self.app, &id],
    )?;
    Ok(())
  }

  fn session(&self, id: &str) -> R<Option<Cow<'_, Session>>> {
    if unstorable(id) {
      return Ok(None);
    }
    // With its user: authentication reads the user next.
    let Some(row) = self.one(
      &format!(
        "SELECT s.id, s.user_id, s.device_id, s.via_key, s.expires, {JOINED_USER_COLS} \
         FROM sessions s LEFT JOIN users u ON u.app_id = s.app_id AND u.id = s.user_id \
         WHERE s.app_id = $1 AND s.id = $2"
      ),
      &[&self.app, &id],
    )?
    else {
      return Ok(None);
    };
    let session = session_row(&row);
    self
      .user_cache
      .keep(&session.user_id, joined_user(&row, 5)?);
    Ok(Some(Cow::Owned(session)))
  }

  fn insert_session(&mut self, s: &Session, now: u64) -> R<()> {
    // Expired sessions go when their user logs in again, so the table does not grow forever.
    self.exec(
      "DELETE FROM sessions WHERE app_id = $1 AND user_id = $2 AND expires <= $3",
      &[&self.app, &s.user_id, &(now as i64)],
    )?;
    self.exec(
      "INSERT INTO sessions (app_id, id, user_id, device_id, via_key, expires) \
       VALUES ($1, $2, $3, $4, $5, $6)",
      &[
        &self.app,
        &s.id,
        &s.user_id,
        &s.device_id,
        &s.via_key,
        &(s.expires as i64),
      ],
    )?;
    Ok(())
  }

  fn delete_session(&mut self, id: &str) -> R<()> {
    self.exec(
      "DELETE FROM sessions WHERE app_id = $1 AND id = $2",
      &[&self.app, &id],
    )?;
    Ok(())
  }

  fn delete_sessions_of(&mut self, user_id: &str) -> R<()> {
    self.exec(
      "DELETE FROM sessions WHERE app_id = $1 AND user_id = $2",
      &[&self.app, &user_id],
    )?;
    Ok(())
  }

  fn login_failures(&self, scope: &str, subject: &str) -> R<Option<Failures>> {
    if unstorable(subject) {
      return Ok(None);
    }
    Ok(
      self
        .one(
          "SELECT failures, last_failure, locked_until FROM login_failures \
           WHERE app_id = $1 AND scope = $2 AND subject = $3",
          &[&self.app, &scope, &subject],
        )?
        .map(|r| failures_row(&r)),
    )
  }

  fn add_login_failure(
    &mut self,
    scope: &str,
    subject: &str,
    now_ms: u64,
    window_ms: u64,
  ) -> R<Failures> {
    if unstorable(subject) {
      // No account has such an email; the address still counts the attempt.
      return Ok(Failures {
        failures: 1,
        last_failure_ms: now_ms,
        locked_until_ms: 0,
      });
    }
    // A write: inside the transaction, with the lock that may follow it.
    self.begin()?;
    // ON CONFLICT DO UPDATE is atomic under READ COMMITTED: a concurrent upsert of the same row
    // waits for this one's commit and then adds to its count, so no failure is lost. The window
    // runs from the later of the last failure and the lock's end (see memory.rs).
    let row = self.one(
      "INSERT INTO login_failures (app_id, scope, subject, failures, last_failure, locked_until) \
       VALUES ($1, $2, $3, 1, $4, 0) ON CONFLICT (app_id, scope, subject) DO UPDATE SET \
       failures = CASE WHEN GREATEST(login_failures.last_failure, login_failures.locked_until) + $5 > $4 \
         THEN login_failures.failures + 1 ELSE 1 END, \
       locked_until = CASE WHEN GREATEST(login_failures.last_failure, login_failures.locked_until) + $5 > $4 \
         THEN login_failures.locked_until ELSE 0 END, \
       last_failure = $4 \
       RETURNING failures, last_failure, locked_until",
      &[
        &self.app,
        &scope,
        &subject,
        &(now_ms as i64),
        &(window_ms as i64),
      ],
    )?;
    row
      .map(|r| failures_row(&r))
      .ok_or_else(|| StoreError::Internal("upsert returned no row".into()))
  }

  fn take_back_login_failure(&mut self, scope: &str, subject: &str) -> R<Option<Failures>> {
    if unstorable(subject) {
      return Ok(None);
    }
    self.begin()?;
    Ok(
      self
        .one(
          "UPDATE login_failures SET failures = GREATEST(failures - 1, 0) \
           WHERE app_id = $1 AND scope = $2 AND subject = $3 \
           RETURNING failures, last_failure, locked_until",
          &[&self.app, &scope, &subject],
        )?
        .map(|r| failures_row(&r)),
    )
  }

  fn set_login_lock(&mut self, scope: &str, subject: &str, until_ms: u64) -> R<()> {
    if unstorable(subject) {
      return Ok(());
    }
    self.exec(
      "UPDATE login_failures SET locked_until = $4 WHERE app_id = $1 AND scope = $2 AND subject = $3",
      &[&self.app, &scope, &subject, &(until_ms as i64)],
    )?;
    Ok(())
  }

  fn clear_login_failures(&mut self, scope: &str, subject: &str) -> R<()> {
    if unstorable(subject) {
      return Ok(());
    }
    self.exec(
      "DELETE FROM login_failures WHERE app_id = $1 AND scope = $2 AND subject = $3",
      &[&self.app, &scope, &subject],
    )?;
    Ok(())
  }

  fn sweep_login_failures(&mut self, now_ms: u64, window_ms: u64, limit: u32) -> R<()> {
    // SKIP LOCKED: rows another transaction holds are that one's business; waiting for them
    // could deadlock two sweeps that picked each other's rows.
    self.exec(
      "DELETE FROM login_failures WHERE ctid IN (SELECT ctid FROM login_failures \
       WHERE app_id = $1 AND last_failure <= $2 AND locked_until <= $2 \
       ORDER BY last_failure LIMIT $3 FOR UPDATE SKIP LOCKED)",
      &[
        &self.app,
        &(now_ms.saturating_sub(window_ms) as i64),
        &i64::from(limit),
      ],
    )?;
    Ok(())
  }
}

fn failures_row(row: &Row) -> Failures {
  Failures {
    failures: row.get::<_, i32>(0).max(0) as u32,
    last_failure_ms: row.get::<_, i64>(1).max(0) as u64,
    locked_until_ms: row.get::<_, i64>(2).max(0) as u64,
  }
}
