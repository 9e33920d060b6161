//! The SQLite backend: one database file (WAL, `synchronous=FULL`, so an answered write
//! survives a crash), a small pool of connections used on blocking threads only, every write
//! transaction `BEGIN IMMEDIATE` (writers queue on the database lock instead of racing). Within
//! one process, writers first queue on a mutex: SQLite's busy handler would have them poll the
//! lock with sleeps of up to 100 ms, leaving the database idle while they sleep. A session or a
//! key is read with its user's row (one join), which the transaction keeps for the rules' next
//! reads of that user (see [`SqliteTx::user_cache`]).

use std::borrow::Cow;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::{Connection, ErrorCode, OptionalExtension, Row, params};

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
  (1, include_str!("../migrations/sqlite/0001_init.sql")),
  (
    2,
    include_str!("../migrations/sqlite/0002_user_disabled.sql"),
  ),
  (
    3,
    include_str!("../migrations/sqlite/0003_login_throttle.sql"),
  ),
];

/// Connections kept idle for reuse, and the transactions and `/readyz` probes in flight at
/// most (see `lanes`). Synchronous callers (the control API, the admin commands) use no
/// lane: each opens a connection of its own when none is idle, and returns it to the idle
/// list like any other while that list has room.
pub(crate) const POOL: usize = 8;

/// Prepared statements a connection keeps.
const STATEMENTS: usize = 128;

/// How long a writer waits for the database lock before the request fails with 503.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// An open SQLite database.
pub(crate) struct Sqlite {
  path: std::path::PathBuf,
  idle: Mutex<Vec<Connection>>,
  /// Held by this process's writer for its whole transaction (see the module's documentation).
  writer: Mutex<()>,
  /// One per pooled connection: requests queue here for a connection rather than open (and
  /// then close) one of their own when more than [`POOL`] are in flight.
  lanes: Arc<Lanes>,
}

fn err(e: rusqlite::Error) -> StoreError {
  match e.sqlite_error_code() {
    Some(ErrorCode::ConstraintViolation) => StoreError::Conflict,
    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked) => {
      StoreError::Unavailable(e.to_string())
    }
    _ => StoreError::Internal(e.to_string()),
  }
}

fn open_connection(path: &Path) -> rusqlite::Result<Connection> {
  let conn = Connection::open(path)?;
  conn.busy_timeout(BUSY_TIMEOUT)?;
  // Room for every statement the server runs (rusqlite keeps 16 by default, fewer than the
  // server has, so a mixed load would evict and prepare them again and again).
  conn.set_prepared_statement_cache_capacity(STATEMENTS);
  // WAL lets readers run beside the writer; FULL syncs the WAL at every commit, which is what
  // makes an answered write durable across a power cut.
  conn.pragma_update(None, "journal_mode", "WAL")?;
  conn.pragma_update(None, "synchronous", "FULL")?;
  Ok(conn)
}

impl Sqlite {
  /// Opens (creating if needed) the database and applies pending migrations.
  pub fn open(path: &Path) -> Result<Sqlite, String> {
    let what = |e: rusqlite::Error| format!("{}: {e}", path.display());
    let mut conn = open_connection(path).map_err(what)?;
    migrate(&mut conn).map_err(what)?;
    Ok(Sqlite {
      path: path.to_path_buf(),
      idle: Mutex::new(vec![conn]),
      writer: Mutex::new(()),
      lanes: Lanes::new(POOL),
    })
  }

  /// Where the server's transactions run, as many at once as the pool has connections.
  pub fn lanes(&self) -> &Arc<Lanes> {
    &self.lanes
  }

  /// Creates the app's row unless it exists; returns its token signing secret.
  pub fn ensure_app(&self, app_id: &str) -> Result<Vec<u8>, String> {
    let conn = self.take().map_err(|e| e.to_string())?;
    let secret = hex(&random_bytes::<32>());
    let result = (|| {
      conn.execute(
        "INSERT INTO apps (app_id, jwt_secret, created) VALUES (?1, ?2, ?3) \
         ON CONFLICT (app_id) DO NOTHING",
        params![app_id, secret, now_secs() as i64],
      )?;
      conn.query_row(
        "SELECT jwt_secret FROM apps WHERE app_id = ?1",
        params![app_id],
        |r| r.get::<_, String>(0),
      )
    })();
    self.give_back(conn);
    result
      .map(String::into_bytes)
      .map_err(|e| format!("{}: {e}", self.path.display()))
  }

  /// Every app, by id, with its user count.
  pub fn apps(&self) -> Result<Vec<AppInfo>, String> {
    let conn = self.take().map_err(|e| e.to_string())?;
    let result = (|| {
      let mut stmt = conn.prepare(
        "SELECT a.app_id, a.created, (SELECT count(*) FROM users u WHERE u.app_id = a.app_id) \
         FROM apps a ORDER BY a.app_id",
      )?;
      let rows = stmt.query_map([], |r| {
        Ok(AppInfo {
          id: r.get(0)?,
          created: r.get::<_, i64>(1)? as u64,
          users: r.get::<_, i64>(2)? as u64,
        })
      })?;
      rows.collect::<rusqlite::Result<Vec<_>>>()
    })();
    self.give_back(conn);
    result.map_err(|e| format!("{}: {e}", self.path.display()))
  }

  fn take(&self) -> R<Connection> {
    let idle = self.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
    match idle {
      Some(c) => Ok(c),
      None => open_connection(&self.path).map_err(|e| StoreError::Unavailable(e.to_string())),
    }
  }

  /// Returns a connection to the idle list, unless the list is full or the connection is still
  /// in a transaction (its ROLLBACK failed): every later BEGIN on it would fail, so it is
  /// dropped instead (closing it rolls back).
  fn give_back(&self, conn: Connection) {
    if !conn.is_autocommit() {
      return;
    }
    let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
    if idle.len() < POOL {
      idle.push(conn);
    }
  }

  /// Reads the schema's version on a pooled connection (blocking), for `/readyz`. A table, not
  /// `SELECT 1`, which SQLite answers without touching the file: this one takes the read lock
  /// and reads the database, so an unreadable or foreign file fails it.
  pub fn ping(&self) -> R<()> {
    let conn = self.take()?;
    let result = conn.query_row("SELECT max(version) FROM schema_migrations", [], |r| {
      r.get::<_, Option<i64>>(0)
    });
    self.give_back(conn);
    result.map(drop).map_err(err)
  }

  /// Runs `f` in one transaction (blocking: call from a blocking thread). `f`'s error rolls
  /// back.
  pub fn run<T>(
    &self,
    app: &str,
    write: bool,
    f: impl FnOnce(&mut dyn Tx) -> Result<T, ApiError>,
  ) -> Result<T, ApiError> {
    let conn = self.take()?;
    let _writer = write.then(|| self.writer.lock().unwrap_or_else(|e| e.into_inner()));
    let begun = conn
      .prepare_cached(if write { "BEGIN IMMEDIATE" } else { "BEGIN" })
      .and_then(|mut s| s.execute([]));
    if let Err(e) = begun {
      self.give_back(conn);
      return Err(err(e).into());
    }
    let mut tx = SqliteTx {
      conn: &conn,
      app,
      user_cache: UserCache::default(),
    };
    let result = f(&mut tx).and_then(|v| {
      conn
        .prepare_cached("COMMIT")
        .and_then(|mut s| s.execute([]))
        .map_err(err)?;
      Ok(v)
    });
    if result.is_err() && !conn.is_autocommit() {
      let _ = conn.execute_batch("ROLLBACK");
    }
    self.give_back(conn);
    result
  }
}

fn migrate(conn: &mut Connection) -> rusqlite::Result<()> {
  let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
  tx.execute_batch(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL)",
  )?;
  for (version, sql) in MIGRATIONS {
    let done: Option<i64> = tx
      .query_row(
        "SELECT version FROM schema_migrations WHERE version = ?1",
        params![version],
        |r| r.get(0),
      )
      .optional()?;
    if done.is_none() {
      tx.execute_batch(sql)?;
      tx.execute(
        "INSERT INTO schema_migrations (version, applied) VALUES (?1, ?2)",
        params![version, now_secs() as i64],
      )?;
    }
  }
  tx.commit()
}

struct SqliteTx<'a> {
  conn: &'a Connection,
  app: &'a str,
  /// The user row read last ([`UserCache`]): a transaction sees one snapshot, so a repeat read
  /// would return the same row unless this transaction wrote it.
  user_cache: UserCache,
}

fn json_col<T: serde::de::DeserializeOwned>(row: &Row<'_>, i: usize) -> rusqlite::Result<T> {
  let text: String = row.get(i)?;
  serde_json::from_str(&text).map_err(|e| {
    rusqlite::Error::FromSqlConversionFailure(i, rusqlite::types::Type::Text, Box::new(e))
  })
}

fn user_row(row: &Row<'_>) -> rusqlite::Result<User> {
  user_at(row, 0)
}

/// A user from the [`USER_COLS`] that start at column `at`.
fn user_at(row: &Row<'_>, at: usize) -> rusqlite::Result<User> {
  let kind: String = row.get(at + 1)?;
  Ok(User {
    id: row.get(at)?,
    kind: if kind == "server" {
      UserKind::Server
    } else {
      UserKind::Normal
    },
    identities: json_col(row, at + 2)?,
    data: json_col(row, at + 3)?,
    custom_data: json_col(row, at + 4)?,
    created: row.get::<_, i64>(at + 5)? as u64,
    disabled: row.get(at + 6)?,
  })
}

/// The user of a left join starting at column `at` (`None`: no such user).
fn joined_user(row: &Row<'_>, at: usize) -> rusqlite::Result<Option<User>> {
  match row.get::<_, Option<String>>(at)? {
    Some(_) => user_at(row, at).map(Some),
    None => Ok(None),
  }
}

fn key_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
  Ok(ApiKey {
    id: row.get(0)?,
    owner: row.get(1)?,
    name: row.get(2)?,
    disabled: row.get(3)?,
    hash: row.get(4)?,
    server: row.get(5)?,
    created: row.get::<_, i64>(6)? as u64,
  })
}

fn account_row(row: &Row<'_>) -> rusqlite::Result<EmailAccount> {
  Ok(EmailAccount {
    email: row.get(0)?,
    identity_id: row.get(1)?,
    salt: row.get(2)?,
    hash: row.get(3)?,
    iterations: row.get(4)?,
    confirmed: row.get(5)?,
    user_id: row.get(6)?,
  })
}

fn session_row(row: &Row<'_>) -> rusqlite::Result<Session> {
  Ok(Session {
    id: row.get(0)?,
    user_id: row.get(1)?,
    device_id: row.get(2)?,
    via_key: row.get(3)?,
    expires: row.get::<_, i64>(4)? as u64,
  })
}

impl SqliteTx<'_> {
  fn one<T>(
    &self,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnOnce(&Row<'_>) -> rusqlite::Result<T>,
  ) -> R<Option<T>> {
    let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
    stmt.query_row(params, map).optional().map_err(err)
  }

  fn all<T>(
    &self,
    sql: &str,
    params: impl rusqlite::Params,
    map: impl FnMut(&Row<'_>) -> rusqlite::Result<T>,
  ) -> R<Vec<T>> {
    let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
    let rows = stmt.query_map(params, map).map_err(err)?;
    rows.collect::<rusqlite::Result<Vec<T>>>().map_err(err)
  }

  fn exec(&self, sql: &str, params: impl rusqlite::Params) -> R<usize> {
    let mut stmt = self.conn.prepare_cached(sql).map_err(err)?;
    stmt.execute(params).map_err(err)
  }
}

impl Tx for SqliteTx<'_> {
  fn access_generation(&self) -> R<u64> {
    let g: Option<i64> = self.one(
      "SELECT access_generation FROM apps WHERE app_id = ?1",
      params![self.app],
      |r| r.get(0),
    )?;
    Ok(g.unwrap_or(0) as u64)
  }

  fn bump_access_generation(&mut self) -> R<()> {
    self.exec(
      "UPDATE apps SET access_generation = access_generation + 1 WHERE app_id = ?1",
      params![self.app],
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
        &format!("DELETE FROM {table} WHERE app_id = ?1"),
        params![self.app],
      )?;
    }
    self.bump_access_generation()
  }

  fn user(&self, id: &str) -> R<Option<Cow<'_, User>>> {
    if let Some(user) = self.user_cache.get(id) {
      return Ok(user.map(Cow::Owned));
    }
    let user = self.one(
      &format!("SELECT {USER_COLS} FROM users WHERE app_id = ?1 AND id = ?2"),
      params![self.app, id],
      user_row,
    )?;
    self.user_cache.keep(id, user.clone());
    Ok(user.map(Cow::Owned))
  }

  fn lock_user(&mut self, id: &str) -> R<bool> {
    // BEGIN IMMEDIATE already holds the database's write lock.
    Ok(self.user(id)?.is_some())
  }

  fn users(&self) -> R<Vec<User>> {
    self.all(
      &format!("SELECT {USER_COLS} FROM users WHERE app_id = ?1 ORDER BY created, id"),
      params![self.app],
      user_row,
    )
  }

  fn insert_user(&mut self, user: &User) -> R<()> {
    self.user_cache.forget();
    self.exec(
      "INSERT INTO users (app_id, id, kind, identities, data, custom_data, created, disabled) \
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      params![
        self.app,
        user.id,
        kind_str(user.kind),
        to_json(&user.identities),
        to_json(&user.data),
        to_json(&user.custom_data),
        user.created as i64,
        user.disabled
      ],
    )?;
    Ok(())
  }

  fn update_user(&mut self, user: &User) -> R<()> {
    self.user_cache.forget();
    self.exec(
      "UPDATE users SET identities = ?3, data = ?4, custom_data = ?5 WHERE app_id = ?1 AND id = ?2",
      params![
        self.app,
        user.id,
        to_json(&user.identities),
        to_json(&user.data),
        to_json(&user.custom_data)
      ],
    )?;
    Ok(())
  }

  fn set_user_disabled(&mut self, id: &str, disabled: bool) -> R<bool> {
    self.user_cache.forget();
    let n = self.exec(
      "UPDATE users SET disabled = ?3 WHERE app_id = ?1 AND id = ?2",
      params![self.app, id, disabled],
    )?;
    Ok(n > 0)
  }

  fn delete_user(&mut self, id: &str) -> R<bool> {
    self.user_cache.forget();
    let a = self.app;
    self.exec(
      "DELETE FROM pending_tokens WHERE app_id = ?1 AND email IN \
       (SELECT email FROM email_accounts WHERE app_id = ?1 AND user_id = ?2)",
      params![a, id],
    )?;
    self.exec(
      "DELETE FROM email_accounts WHERE app_id = ?1 AND user_id = ?2",
      params![a, id],
    )?;
    self.exec(
      "DELETE FROM identities WHERE app_id = ?1 AND user_id = ?2",
      params![a, id],
    )?;
    self.exec(
      "DELETE FROM api_keys WHERE app_id = ?1 AND owner = ?2",
      params![a, id],
    )?;
    self.exec(
      "DELETE FROM sessions WHERE app_id = ?1 AND user_id = ?2",
      params![a, id],
    )?;
    let n = self.exec(
      "DELETE FROM users WHERE app_id = ?1 AND id = ?2",
      params![a, id],
    )?;
    Ok(n > 0)
  }

  fn identity_owner(&self, provider: &str, id: &str) -> R<Option<String>> {
    self.one(
      "SELECT user_id FROM identities WHERE app_id = ?1 AND provider = ?2 AND ext_id = ?3",
      params![self.app, provider, id],
      |r| r.get(0),
    )
  }

  fn insert_identity_owner(&mut self, provider: &str, id: &str, user_id: &str) -> R<()> {
    self.exec(
      "INSERT INTO identities (app_id, provider, ext_id, user_id) VALUES (?1, ?2, ?3, ?4)",
      params![self.app, provider, id, user_id],
    )?;
    Ok(())
  }

  fn email_account(&self, email: &str) -> R<Option<Cow<'_, EmailAccount>>> {
    Ok(
      self
        .one(
          &format!("SELECT {ACCOUNT_COLS} FROM email_accounts WHERE app_id = ?1 AND email = ?2"),
          params![self.app, email],
          account_row,
        )?
        .map(Cow::Owned),
    )
  }

  fn lock_email_account(&mut self, _email: &str) -> R<()> {
    // BEGIN IMMEDIATE already holds the database's write lock.
    Ok(())
  }

  fn insert_email_account(&mut self, a: &EmailAccount) -> R<()> {
    self.exec(
      "INSERT INTO email_accounts (app_id, email, identity_id, salt, hash, iterations, confirmed, \
       user_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      params![
        self.app,
        a.email,
        a.identity_id,
        a.salt,
        a.hash,
        a.iterations,
        a.confirmed,
        a.user_id
      ],
    )?;
    Ok(())
  }

  fn update_email_account(&mut self, a: &EmailAccount) -> R<()> {
    self.exec(
      "UPDATE email_accounts SET salt = ?3, hash = ?4, iterations = ?5, confirmed = ?6, \
       user_id = ?7 WHERE app_id = ?1 AND email = ?2",
      params![
        self.app,
        a.email,
        a.salt,
        a.hash,
        a.iterations,
        a.confirmed,
        a.user_id
      ],
    )?;
    Ok(())
  }

  fn put_pending(&mut self, kind: Pending, email: &str, token_id: &str, hash: &str) -> R<()> {
    self.exec(
      "INSERT INTO pending_tokens (app_id, kind, email, token_id, token_hash) \
       VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (app_id, kind, email) \
       DO UPDATE SET token_id = excluded.token_id, token_hash = excluded.token_hash",
      params![self.app, kind.as_str(), email, token_id, hash],
    )?;
    Ok(())
  }

  fn pending_by_id(&self, kind: Pending, token_id: &str) -> R<Option<(String, String)>> {
    self.one(
      "SELECT email, token_hash FROM pending_tokens \
       WHERE app_id = ?1 AND kind = ?2 AND token_id = ?3",
      params![self.app, kind.as_str(), token_id],
      |r| Ok((r.get(0)?, r.get(1)?)),
    )
  }

  fn pending_for(&self, kind: Pending, email: &str) -> R<Option<String>> {
    self.one(
      "SELECT token_id FROM pending_tokens WHERE app_id = ?1 AND kind = ?2 AND email = ?3",
      params![self.app, kind.as_str(), email],
      |r| r.get(0),
    )
  }

  fn drop_pending(&mut self, kind: Pending, email: &str) -> R<()> {
    self.exec(
      "DELETE FROM pending_tokens WHERE app_id = ?1 AND kind = ?2 AND email = ?3",
      params![self.app, kind.as_str(), email],
    )?;
    Ok(())
  }

  fn key(&self, id: &str) -> R<Option<Cow<'_, ApiKey>>> {
    Ok(
      self
        .one(
          &format!("SELECT {KEY_COLS} FROM api_keys WHERE app_id = ?1 AND id = ?2"),
          params![self.app, id],
          key_row,
        )?
        .map(Cow::Owned),
    )
  }

  fn key_by_hash(&self, hash: &str) -> R<Option<Cow<'_, ApiKey>>> {
    // With its owner: a key login reads the owner next.
    let found = self.one(
      &format!(
        "SELECT {JOINED_KEY_COLS}, {JOINED_USER_COLS} FROM api_keys k \
         LEFT JOIN users u ON u.app_id = k.app_id AND u.id = k.owner \
         WHERE k.app_id = ?1 AND k.hash = ?2"
      ),
      params![self.app, hash],
      |r| Ok((key_row(r)?, joined_user(r, 7)?)),
    )?;
    Ok(found.map(|(key, owner)| {
      self.user_cache.keep(&key.owner, owner);
      Cow::Owned(key)
    }))
  }

  fn keys_of(&self, owner: &str) -> R<Vec<Cow<'_, ApiKey>>> {
    Ok(
      self
        .all(
          &format!("SELECT {KEY_COLS} FROM api_keys WHERE app_id = ?1 AND owner = ?2 ORDER BY seq"),
          params![self.app, owner],
          key_row,
        )?
        .into_iter()
        .map(Cow::Owned)
        .collect(),
    )
  }

  fn server_keys(&self) -> R<Vec<ApiKey>> {
    self.all(
      &format!("SELECT {KEY_COLS} FROM api_keys WHERE app_id = ?1 AND server = 1 ORDER BY seq"),
      params![self.app],
      key_row,
    )
  }

  fn server_key_named(&self, name: &str) -> R<bool> {
    Ok(
      self
        .one(
          "SELECT 1 FROM api_keys WHERE app_id = ?1 AND server = 1 AND name = ?2",
          params![self.app, name],
          |r| r.get::<_, i64>(0),
        )?
        .is_some(),
    )
  }

  fn insert_key(&mut self, k: &ApiKey) -> R<()> {
    self.exec(
      "INSERT INTO api_keys (app_id, id, owner, name, disabled, hash, server, created) \
       VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
      params![
        self.app,
        k.id,
        k.owner,
        k.name,
        k.disabled,
        k.hash,
        k.server,
        k.created as i64
      ],
    )?;
    Ok(())
  }

  fn set_key_disabled(&mut self, id: &str, disabled: bool) -> R<()> {
    self.exec(
      "UPDATE api_keys SET disabled = ?3 WHERE app_id = ?1 AND id = ?2",
      params![self.app, id, disabled],
    )?;
    Ok(())
  }

  fn delete_key(&mut self, id: &str) -> R<()> {
    self.exec(
      "DELETE FROM api_keys WHERE app_id = ?1 AND id = ?2",
      params![self.app, id],
    )?;
    self.exec(
      "DELETE FROM sessions WHERE app_id = ?1 AND via_key = ?2",
      params![self.app, id],
    )?;
    Ok(())
  }

  fn session(&self, id: &str) -> R<Option<Cow<'_, Session>>> {
    // With its user: authentication reads the user next.
    let found = self.one(
      &format!(
        "SELECT s.id, s.user_id, s.device_id, s.via_key, s.expires, {JOINED_USER_COLS} \
         FROM sessions s LEFT JOIN users u ON u.app_id = s.app_id AND u.id = s.user_id \
         WHERE s.app_id = ?1 AND s.id = ?2"
      ),
      params![self.app, id],
      |r| Ok((session_row(r)?, joined_user(r, 5)?)),
    )?;
    Ok(found.map(|(session, user)| {
      self.user_cache.keep(&session.user_id, user);
      Cow::Owned(session)
    }))
  }

  fn insert_session(&mut self, s: &Session, now: u64) -> R<()> {
    // Expired sessions go when their user logs in again, so the table does not grow forever.
    self.exec(
      "DELETE FROM sessions WHERE app_id = ?1 AND user_id = ?2 AND expires <= ?3",
      params![self.app, s.user_id, now as i64],
    )?;
    self.exec(
      "INSERT INTO sessions (app_id, id, user_id, device_id, via_key, expires) \
       VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
      params![
        self.app,
        s.id,
        s.user_id,
        s.device_id,
        s.via_key,
        s.expires as i64
      ],
    )?;
    Ok(())
  }

  fn delete_session(&mut self, id: &str) -> R<()> {
    self.exec(
      "DELETE FROM sessions WHERE app_id = ?1 AND id = ?2",
      params![self.app, id],
    )?;
    Ok(())
  }

  fn delete_sessions_of(&mut self, user_id: &str) -> R<()> {
    self.exec(
      "DELETE FROM sessions WHERE app_id = ?1 AND user_id = ?2",
      params![self.app, user_id],
    )?;
    Ok(())
  }

  fn login_failures(&self, scope: &str, subject: &str) -> R<Option<Failures>> {
    self.one(
      "SELECT failures, last_failure, locked_until FROM login_failures \
       WHERE app_id = ?1 AND scope = ?2 AND subject = ?3",
      params![self.app, scope, subject],
      failures_row,
    )
  }

  fn add_login_failure(
    &mut self,
    scope: &str,
    subject: &str,
    now_ms: u64,
    window_ms: u64,
  ) -> R<Failures> {
    // One statement: the count is read and bumped under the write lock BEGIN IMMEDIATE holds.
    // The window runs from the later of the last failure and the lock's end (see memory.rs).
    let row = self.one(
      "INSERT INTO login_failures (app_id, scope, subject, failures, last_failure, locked_until) \
       VALUES (?1, ?2, ?3, 1, ?4, 0) ON CONFLICT (app_id, scope, subject) DO UPDATE SET \
       failures = CASE WHEN MAX(login_failures.last_failure, login_failures.locked_until) + ?5 > ?4 \
         THEN login_failures.failures + 1 ELSE 1 END, \
       locked_until = CASE WHEN MAX(login_failures.last_failure, login_failures.locked_until) + ?5 > ?4 \
         THEN login_failures.locked_until ELSE 0 END, \
       last_failure = ?4 \
       RETURNING failures, last_failure, locked_until",
      params![self.app, scope, subject, now_ms as i64, window_ms as i64],
      failures_row,
    )?;
    row.ok_or_else(|| StoreError::Internal("upsert returned no row".into()))
  }

  fn take_back_login_failure(&mut self, scope: &str, subject: &str) -> R<Option<Failures>> {
    self.one(
      "UPDATE login_failures SET failures = MAX(failures - 1, 0) \
       WHERE app_id = ?1 AND scope = ?2 AND subject = ?3 \
       RETURNING failures, last_failure, locked_until",
      params![self.app, scope, subject],
      failures_row,
    )
  }

  fn set_login_lock(&mut self, scope: &str, subject: &str, until_ms: u64) -> R<()> {
    self.exec(
      "UPDATE login_failures SET locked_until = ?4 WHERE app_id = ?1 AND scope = ?2 AND subject = ?3",
      params![self.app, scope, subject, until_ms as i64],
    )?;
    Ok(())
  }

  fn clear_login_failures(&mut self, scope: &str, subject: &str) -> R<()> {
    self.exec(
      "DELETE FROM login_failures WHERE app_id = ?1 AND scope = ?2 AND subject = ?3",
      params![self.app, scope, subject],
    )?;
    Ok(())
  }

  fn sweep_login_failures(&mut self, now_ms: u64, window_ms: u64, limit: u32) -> R<()> {
    self.exec(
      "DELETE FROM login_failures WHERE rowid IN (SELECT rowid FROM login_failures \
       WHERE app_id = ?1 AND last_failure <= ?2 AND locked_until <= ?2 \
       ORDER BY last_failure LIMIT ?3)",
      params![self.app, now_ms.saturating_sub(window_ms) as i64, limit],
    )?;
    Ok(())
  }
}

fn failures_row(row: &Row<'_>) -> rusqlite::Result<Failures> {
  Ok(Failures {
    failures: row.get::<_, i64>(0)?.clamp(0, u32::MAX as i64) as u32,
    last_failure_ms: row.get::<_, i64>(1)?.max(0) as u64,
    locked_until_ms: row.get::<_, i64>(2)?.max(0) as u64,
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_connection_left_in_a_transaction_is_not_pooled() {
    let dir = std::env::temp_dir().join(format!(
      "realm-auth-sqlite-pool-{}",
      hex(&random_bytes::<6>())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Sqlite::open(&dir.join("s.db")).unwrap();
    let idle = |db: &Sqlite| db.idle.lock().unwrap().len();
    let before = idle(&db);
    let conn = db.take().unwrap();
    // As after a failed ROLLBACK.
    conn.execute_batch("BEGIN").unwrap();
    db.give_back(conn);
    assert_eq!(
      idle(&db),
      before - 1,
      "a connection in a transaction went back to the pool"
    );
    db.run("a", true, |tx| Ok(tx.user("u")?.is_none())).unwrap();
    assert_eq!(idle(&db), before);
    let _ = std::fs::remove_dir_all(&dir);
  }

  #[test]
  fn users_of_a_0001_database_start_enabled() {
    let dir = std::env::temp_dir().join(format!(
      "realm-auth-sqlite-upgrade-{}",
      hex(&random_bytes::<6>())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.db");
    // A database as the previous release left it: migration 1 only, one user.
    let conn = Connection::open(&path).unwrap();
    conn
      .execute_batch(&format!(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, applied INTEGER NOT NULL);
         {}
         INSERT INTO schema_migrations VALUES (1, 0);
         INSERT INTO users VALUES ('a', 'u1', 'normal', '[]', '{{}}', '{{}}', 0);",
        MIGRATIONS[0].1
      ))
      .unwrap();
    drop(conn);
    let db = Sqlite::open(&path).unwrap();
    db.ensure_app("a").unwrap();
    let disabled = |db: &Sqlite| {
      db.run("a", false, |tx| Ok(tx.user("u1")?.unwrap().disabled))
        .unwrap()
    };
    assert!(!disabled(&db));
    assert!(
      db.run("a", true, |tx| crate::state::set_user_disabled(
        tx, "u1", true
      ))
      .unwrap()
    );
    assert!(disabled(&db));
    drop(db);
    std::fs::remove_dir_all(dir).unwrap();
  }

  #[test]
  fn durable_settings_and_migrations_once() {
    let dir = std::env::temp_dir().join(format!(
      "realm-auth-sqlite-unit-{}",
      hex(&random_bytes::<6>())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("s.db");
    let db = Sqlite::open(&path).unwrap();
    let secret = db.ensure_app("a").unwrap();
    drop(db);
    // Opening again applies nothing twice and keeps the app's secret.
    let db = Sqlite::open(&path).unwrap();
    assert_eq!(db.ensure_app("a").unwrap(), secret);
    let conn = db.take().unwrap();
    let mode: String = conn
      .query_row("PRAGMA journal_mode", [], |r| r.get(0))
      .unwrap();
    assert_eq!(mode, "wal");
    let sync: i64 = conn
      .query_row("PRAGMA synchronous", [], |r| r.get(0))
      .unwrap();
    assert_eq!(sync, 2, "synchronous=FULL");
    let versions: i64 = conn
      .query_row("SELECT count(*) FROM schema_migrations", [], |r| r.get(0))
      .unwrap();
    assert_eq!(versions, MIGRATIONS.len() as i64);
    drop(conn);
    drop(db);
    std::fs::remove_dir_all(dir).unwrap();
  }
}
