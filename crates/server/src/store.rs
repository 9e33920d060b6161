//! The storage interface: a record-level transaction ([`Tx`]) that every backend implements
//! (memory, SQLite, PostgreSQL), so that the rules in `state.rs` are written once. A [`Store`]
//! runs a closure in one transaction of one app: inline under a mutex in memory mode, on a
//! blocking thread with a pooled connection for the SQL backends.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use serde::{Deserialize, Serialize};

use crate::lanes::Lanes;
use crate::memory::{MemTx, State};
use crate::state::{ApiError, ApiKey, EmailAccount, Session, User};
use crate::throttle::Failures;

/// Where the server keeps its data. JSON: `{"kind":"memory"}`, `{"kind":"sqlite","path":…}`,
/// `{"kind":"postgres","url":…}`.
#[derive(Serialize, Deserialize, Clone, Default, PartialEq, Eq)]
#[serde(tag = "kind", rename_all = "camelCase", deny_unknown_fields)]
pub enum StoreConfig {
  /// In this process only (optionally saved to `Config::data_file`): the emulator's store.
  #[default]
  Memory,
  /// One SQLite database file (WAL, `synchronous=FULL`): one machine, any number of processes.
  Sqlite {
    /// The database file; created with its schema when missing.
    path: std::path::PathBuf,
  },
  /// One PostgreSQL database shared by any number of server processes.
  Postgres {
    /// A libpq-style URL or key=value string (`postgres://user@host:port/db`).
    url: String,
    /// The PostgreSQL schema to keep the tables in (default `public`); created when missing.
    #[serde(default)]
    schema: Option<String>,
  },
}

impl fmt::Debug for StoreConfig {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      StoreConfig::Memory => f.write_str("Memory"),
      StoreConfig::Sqlite { path } => f.debug_struct("Sqlite").field("path", path).finish(),
      // The URL may carry a password.
      StoreConfig::Postgres { schema, .. } => f
        .debug_struct("Postgres")
        .field("url", &"<redacted>")
        .field("schema", schema)
        .finish(),
    }
  }
}

/// Why a store operation failed.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum StoreError {
  /// The database cannot be reached (the request gets 503; the next one retries).
  Unavailable(String),
  /// A uniqueness constraint refused a write (a concurrent writer won the race).
  Conflict,
  /// The backend cannot store a value the client sent (400).
  Invalid(String),
  /// Anything else (500).
  Internal(String),
}

impl fmt::Display for StoreError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      StoreError::Unavailable(m) => write!(f, "the database is unavailable: {m}"),
      StoreError::Conflict => f.write_str("a uniqueness constraint refused the write"),
      StoreError::Invalid(m) => f.write_str(m),
      StoreError::Internal(m) => write!(f, "database error: {m}"),
    }
  }
}

impl From<StoreError> for ApiError {
  fn from(e: StoreError) -> ApiError {
    crate::ops::count_store_error(&e);
    match e {
      StoreError::Unavailable(_) => ApiError::new(
        503,
        "ServiceUnavailable",
        "the database is unavailable; try again",
      ),
      // Rules map the conflicts they expect; one they do not is a lost race worth retrying.
      StoreError::Conflict => ApiError::new(409, "Conflict", "concurrent update; try again"),
      StoreError::Invalid(m) => ApiError::bad_request(m),
      StoreError::Internal(m) => {
        eprintln!("realm-auth-server: {m}");
        ApiError::new(500, "InternalServerError", "database error")
      }
    }
  }
}

/// Result of a store operation.
pub(crate) type R<T> = Result<T, StoreError>;

/// Which pending email token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Pending {
  /// Email confirmation.
  Confirm,
  /// Password reset.
  Reset,
}

impl Pending {
  /// Its name in SQL rows.
  pub fn as_str(self) -> &'static str {
    match self {
      Pending::Confirm => "confirm",
      Pending::Reset => "reset",
    }
  }
}

/// One transaction over one app's records. Reads take `&self` so that a rule may hold a
/// borrowed record (memory mode lends, SQL backends own) while it reads another.
pub(crate) trait Tx {
  /// The app's access-token generation (`expire_access_tokens` bumps it).
  fn access_generation(&self) -> R<u64>;
  /// Makes every access token issued so far invalid.
  fn bump_access_generation(&mut self) -> R<()>;
  /// Forgets every user, key, session and pending token of the app (bumps the generation).
  fn clear(&mut self) -> R<()>;

  /// A user by id.
  fn user(&self, id: &str) -> R<Option<Cow<'_, User>>>;
  /// Locks a user's row until the transaction ends (serialises its key creations); false if
  /// there is no such user.
  fn lock_user(&mut self, id: &str) -> R<bool>;
  /// Every user, oldest first.
  fn users(&self) -> R<Vec<User>>;
  /// Inserts a new user.
  fn insert_user(&mut self, user: &User) -> R<()>;
  /// Rewrites a user's identities, profile data and custom data. Not `disabled`: a login that
  /// read the user before a concurrent disable must not write the old flag back.
  fn update_user(&mut self, user: &User) -> R<()>;
  /// Sets a user's `disabled` flag; false if there is no such user.
  fn set_user_disabled(&mut self, id: &str, disabled: bool) -> R<bool>;
  /// Deletes a user with its identities, email accounts, pending tokens, keys and sessions.
  fn delete_user(&mut self, id: &str) -> R<bool>;

  /// The owner of an external (custom-token, custom-function) identity.
  fn identity_owner(&self, provider: &str, id: &str) -> R<Option<String>>;
  /// Records the owner of an external identity ([`StoreError::Conflict`] if it has one).
  fn insert_identity_owner(&mut self, provider: &str, id: &str, user_id: &str) -> R<()>;

  /// An email/password account.
  fn email_account(&self, email: &str) -> R<Option<Cow<'_, EmailAccount>>>;
  /// Locks an account's row until the transaction ends (first login creates its user once).
  fn lock_email_account(&mut self, email: &str) -> R<()>;
  /// Inserts an account ([`StoreError::Conflict`] if the email is taken).
  fn insert_email_account(&mut self, account: &EmailAccount) -> R<()>;
  /// Rewrites an account (password, confirmation, user).
  fn update_email_account(&mut self, account: &EmailAccount) -> R<()>;

  /// Replaces the pending token of an account: its id and the SHA-256 of its secret.
  fn put_pending(&mut self, kind: Pending, email: &str, token_id: &str, hash: &str) -> R<()>;
  /// The email and secret hash of a pending token, by token id.
  fn pending_by_id(&self, kind: Pending, token_id: &str) -> R<Option<(String, String)>>;
  /// The token id pending for an account.
  fn pending_for(&self, kind: Pending, email: &str) -> R<Option<String>>;
  /// Drops an account's pending token.
  fn drop_pending(&mut self, kind: Pending, email: &str) -> R<()>;

  /// A key by id (user or server key).
  fn key(&self, id: &str) -> R<Option<Cow<'_, ApiKey>>>;
  /// A key by the SHA-256 of its secret.
  fn key_by_hash(&self, hash: &str) -> R<Option<Cow<'_, ApiKey>>>;
  /// A user's keys in creation order.
  fn keys_of(&self, owner: &str) -> R<Vec<Cow<'_, ApiKey>>>;
  /// Every server key, oldest first.
  fn server_keys(&self) -> R<Vec<ApiKey>>;
  /// Whether a server key has this name.
  fn server_key_named(&self, name: &str) -> R<bool>;
  /// Inserts a key ([`StoreError::Conflict`] on a duplicate name per owner, server key name or
  /// secret hash).
  fn insert_key(&mut self, key: &ApiKey) -> R<()>;
  /// Enables or disables a key.
  fn set_key_disabled(&mut self, id: &str, disabled: bool) -> R<()>;
  /// Deletes a key and the sessions opened with it.
  fn delete_key(&mut self, id: &str) -> R<()>;

  /// A session by id.
  fn session(&self, id: &str) -> R<Option<Cow<'_, Session>>>;
  /// Opens a session.
  fn insert_session(&mut self, session: &Session, now: u64) -> R<()>;
  /// Ends one session.
  fn delete_session(&mut self, id: &str) -> R<()>;
  /// Ends every session of a user.
  fn delete_sessions_of(&mut self, user_id: &str) -> R<()>;

  /// A throttled subject's failed-login row (`throttle.rs`), if it has one.
  fn login_failures(&self, scope: &str, subject: &str) -> R<Option<Failures>>;
  /// Counts one failed login in one atomic upsert: `failures + 1` when the later of the previous
  /// failure and the lock's end is less than `window_ms` ago, else 1 (and no lock); returns the
  /// row as written. The row stays locked until the transaction ends.
  fn add_login_failure(
    &mut self,
    scope: &str,
    subject: &str,
    now_ms: u64,
    window_ms: u64,
  ) -> R<Failures>;
  /// Takes one counted failure back (an attempt counted before its password was checked turned
  /// out right); returns the row as written, `None` if there is none. The row stays locked until
  /// the transaction ends.
  fn take_back_login_failure(&mut self, scope: &str, subject: &str) -> R<Option<Failures>>;
  /// Sets a subject's lock end.
  fn set_login_lock(&mut self, scope: &str, subject: &str, until_ms: u64) -> R<()>;
  /// Deletes a subject's row.
  fn clear_login_failures(&mut self, scope: &str, subject: &str) -> R<()>;
  /// Deletes up to `limit` rows of the app whose window, counted from the later of the last
  /// failure and the lock's end, has passed.
  fn sweep_login_failures(&mut self, now_ms: u64, window_ms: u64, limit: u32) -> R<()>;
}

/// A backend: where transactions run.
// One per server: boxing the memory state would only add an indirection to its hot path.
#[allow(clippy::large_enum_variant)]
pub(crate) enum Store {
  /// In-process state (the emulator), one per app id.
  Memory(MemApps),
  /// SQLite.
  Sqlite(Arc<crate::sqlite::Sqlite>),
  /// PostgreSQL.
  Postgres(Arc<crate::postgres::Postgres>),
}

impl Store {
  /// Runs `f` in one transaction of `app` (`write`: it may write). Memory mode runs it inline;
  /// SQL backends on tokio's blocking pool, never on the async workers, at most as many at once
  /// as the backend pools connections (the others queue for a lane, see `lanes.rs`, instead of
  /// opening a connection each on a blocking thread of their own).
  pub async fn run<T, F>(&self, app: &str, write: bool, f: F) -> Result<T, ApiError>
  where
    T: Send + 'static,
    F: FnOnce(&mut dyn Tx) -> Result<T, ApiError> + Send + 'static,
  {
    match self {
      Store::Memory(apps) => apps.get(app)?.run(f),
      Store::Sqlite(db) => {
        let app = app.to_string();
        on_pool(db, move |db| db.run(&app, write, f)).await
      }
      Store::Postgres(db) => {
        let app = app.to_string();
        on_pool(db, move |db| db.run(&app, write, f)).await
      }
    }
  }

  /// [`Store::run`] for synchronous callers (the control API). SQL backends run on a fresh
  /// thread: the PostgreSQL client blocks on its own runtime, which must not nest in the
  /// caller's.
  pub fn run_blocking<T, F>(&self, app: &str, write: bool, f: F) -> Result<T, ApiError>
  where
    T: Send,
    F: FnOnce(&mut dyn Tx) -> Result<T, ApiError> + Send,
  {
    match self {
      Store::Memory(apps) => apps.get(app)?.run(f),
      Store::Sqlite(db) => off_runtime(|| db.run(app, write, f)),
      Store::Postgres(db) => off_runtime(|| db.run(app, write, f)),
    }
  }

  /// Creates an app's row and token signing secret unless it exists, as a server's start does
  /// (SQL stores only: a memory store holds the apps it was started with).
  pub fn ensure_app(&self, app: &str) -> Result<(), String> {
    match self {
      Store::Memory(_) => Err("a memory store cannot add apps".into()),
      Store::Sqlite(db) => off_runtime(|| db.ensure_app(app)).map(drop),
      Store::Postgres(db) => off_runtime(|| db.ensure_app(app)).map(drop),
    }
  }

  /// The apps of a SQL store, by id (empty for a memory store).
  pub fn apps(&self) -> Result<Vec<AppInfo>, String> {
    match self {
      Store::Memory(_) => Ok(Vec::new()),
      Store::Sqlite(db) => off_runtime(|| db.apps()),
      Store::Postgres(db) => off_runtime(|| db.apps()),
    }
  }

  /// A trivial query, for `/readyz`: whether the store answers. Memory always does; SQL stores
  /// run their `ping` query in one of the lanes [`Store::run`] uses, so that probes (answered
  /// before any authentication) never hold more connections or blocking threads than the pool
  /// has: a probe that finds every lane busy waits, and the caller's timeout reports a busy
  /// store.
  pub async fn ping(&self) -> R<()> {
    let pinged = match self {
      Store::Memory(_) => return Ok(()),
      Store::Sqlite(db) => on_pool(db, |db| Ok(db.ping())).await,
      Store::Postgres(db) => on_pool(db, |db| Ok(db.ping())).await,
    };
    // `on_pool` fails only when the job never ran (shutdown).
    pinged.unwrap_or_else(|_| Err(StoreError::Unavailable("shutting down".into())))
  }

  /// An app's memory store (memory mode only): the data file's source.
  pub fn memory(&self, app: &str) -> Option<&MemStore> {
    match self {
      Store::Memory(apps) => apps.get(app).ok(),
      _ => None,
    }
  }
}

/// An app of a SQL store, as `apps list` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AppInfo {
  /// The app id.
  pub id: String,
  /// When its row was created (Unix seconds).
  pub created: u64,
  /// How many users it has.
  pub users: u64,
}

/// Runs `f` on a thread of its own: the PostgreSQL client blocks on its own runtime, which must
/// not nest in a caller's.
pub(crate) fn off_runtime<T: Send>(f: impl FnOnce() -> T + Send) -> T {
  std::thread::scope(|s| {
    s.spawn(f)
      .join()
      .unwrap_or_else(|e| std::panic::resume_unwind(e))
  })
}

/// The memory stores of a server's apps. The first app is a field of its own: a one-app
/// server finds it with a string comparison, not a hash, on every request.
pub(crate) struct MemApps {
  first_id: String,
  first: MemStore,
  others: HashMap<String, MemStore>,
}

impl MemApps {
  /// The first app's store and the others'.
  pub fn new(first_id: String, first: MemStore, others: HashMap<String, MemStore>) -> MemApps {
    MemApps {
      first_id,
      first,
      others,
    }
  }

  fn get(&self, app: &str) -> Result<&MemStore, ApiError> {
    if app == self.first_id {
      return Ok(&self.first);
    }
    // Routes check the app id first; a token names only apps this server minted it for.
    self
      .others
      .get(app)
      .ok_or_else(|| ApiError::new(404, "AppNotFound", format!("cannot find app '{app}'")))
  }
}

// ---- shared by the SQL backends ------------------------------------------------------------

/// The columns of a user row, in the order the backends' `user_row` reads them.
pub(crate) const USER_COLS: &str = "id, kind, identities, data, custom_data, created, disabled";

/// [`USER_COLS`] of the `u` side of a join.
pub(crate) const JOINED_USER_COLS: &str =
  "u.id, u.kind, u.identities, u.data, u.custom_data, u.created, u.disabled";

/// The columns of a key row, in the order the backends' `key_row` reads them.
pub(crate) const KEY_COLS: &str = "id, owner, name, disabled, hash, server, created";

/// [`KEY_COLS`] of the `k` side of a join.
pub(crate) const JOINED_KEY_COLS: &str =
  "k.id, k.owner, k.name, k.disabled, k.hash, k.server, k.created";

/// The columns of an email account row, in the order the backends' `account_row` reads them.
pub(crate) const ACCOUNT_COLS: &str =
  "email, identity_id, salt, hash, iterations, confirmed, user_id";

/// A user kind as its column stores it.
pub(crate) fn kind_str(kind: crate::state::UserKind) -> &'static str {
  match kind {
    crate::state::UserKind::Normal => "normal",
    crate::state::UserKind::Server => "server",
  }
}

/// A JSON column's text.
pub(crate) fn to_json(v: &impl Serialize) -> String {
  serde_json::to_string(v).expect("records serialize")
}

/// The user row a SQL transaction read last, with a session or a key or by itself (`None`
/// inside: there is no such user). The rules read a request's user several times
/// (authentication, the rule's own check, the login's reply), and each would be a query. Every
/// write of the transaction to users, and `lock_user`, must call [`UserCache::forget`], or a
/// later read in the same transaction would miss that write.
#[derive(Default)]
pub(crate) struct UserCache(std::cell::RefCell<Option<(String, Option<User>)>>);

impl UserCache {
  /// The cached row of `id` (`Some(None)`: there is no such user), or `None` if not cached.
  pub fn get(&self, id: &str) -> Option<Option<User>> {
    match &*self.0.borrow() {
      Some((cached, user)) if cached == id => Some(user.clone()),
      _ => None,
    }
  }

  /// Remembers the row just read for `id`.
  pub fn keep(&self, id: &str, user: Option<User>) {
    *self.0.borrow_mut() = Some((id.to_string(), user));
  }

  /// Drops the row: the transaction wrote (or locked) a user.
  pub fn forget(&self) {
    *self.0.borrow_mut() = None;
  }
}

/// A SQL backend: where its transactions run (see `POOL` in each backend).
pub(crate) trait Pooled: Send + Sync + 'static {
  /// One lane per pooled connection.
  fn lanes(&self) -> &Arc<Lanes>;
}

impl Pooled for crate::sqlite::Sqlite {
  fn lanes(&self) -> &Arc<Lanes> {
    crate::sqlite::Sqlite::lanes(self)
  }
}

impl Pooled for crate::postgres::Postgres {
  fn lanes(&self) -> &Arc<Lanes> {
    crate::postgres::Postgres::lanes(self)
  }
}

/// Runs blocking `job` in one of `db`'s lanes. A request abandoned while queued never runs;
/// once begun, it counts against the pool until its transaction ends.
async fn on_pool<B: Pooled, T: Send + 'static>(
  db: &Arc<B>,
  job: impl FnOnce(&B) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
  let owned = db.clone();
  db.lanes()
    .run(move || job(&owned))
    .await
    // Never ran: the runtime is shutting down (a stop racing the request, or the Node addon's
    // runtime ending). A panic in a rule is a bug: `run` resumes it here, as memory mode would.
    .unwrap_or_else(|| Err(StoreError::Unavailable("shutting down".into()).into()))
}

/// The memory backend: the state under one mutex, and its version (bumped by every transaction
/// that wrote) readable without the lock, so the data file's writer knows what is new.
pub(crate) struct MemStore {
  state: Mutex<State>,
  version: AtomicU64,
}

impl MemStore {
  /// A store around a fresh or loaded state.
  pub fn new(state: State) -> MemStore {
    MemStore {
      version: AtomicU64::new(state.version),
      state: Mutex::new(state),
    }
  }

  /// The state. (A panic while holding the lock must not wedge the server.)
  pub fn lock(&self) -> MutexGuard<'_, State> {
    self.state.lock().unwrap_or_else(|e| e.into_inner())
  }

  /// The version of the state (see [`MemStore`]).
  pub fn version(&self) -> u64 {
    self.version.load(Ordering::Acquire)
  }

  fn run<T>(&self, f: impl FnOnce(&mut dyn Tx) -> Result<T, ApiError>) -> Result<T, ApiError> {
    let mut guard = self.lock();
    let mut tx = MemTx::new(&mut guard);
    let result = f(&mut tx);
    if tx.wrote() {
      guard.version += 1;
      self.version.store(guard.version, Ordering::Release);
    }
    result
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[tokio::test]
  async fn ping_waits_for_a_free_lane() {
    let dir = std::env::temp_dir().join(format!(
      "realm-auth-ping-{}",
      crate::ids::hex(&crate::ids::random_bytes::<6>())
    ));
    std::fs::create_dir_all(&dir).unwrap();
    let db = Arc::new(crate::sqlite::Sqlite::open(&dir.join("s.db")).unwrap());
    let store = Store::Sqlite(db.clone());
    // Every lane busy: a probe must queue for one, not open another connection.
    let (release, held) = std::sync::mpsc::channel::<()>();
    let held = Arc::new(Mutex::new(held));
    let started = Arc::new(AtomicU64::new(0));
    let busy: Vec<_> = (0..crate::sqlite::POOL)
      .map(|_| {
        let (lanes, held, started) = (db.lanes().clone(), held.clone(), started.clone());
        tokio::spawn(async move {
          lanes
            .run(move || {
              started.fetch_add(1, Ordering::SeqCst);
              held.lock().unwrap().recv().unwrap()
            })
            .await
        })
      })
      .collect();
    while started.load(Ordering::SeqCst) < crate::sqlite::POOL as u64 {
      tokio::time::sleep(std::time::Duration::from_millis(1)).await;
    }
    let probe = tokio::time::timeout(std::time::Duration::from_millis(300), store.ping()).await;
    assert!(probe.is_err(), "the probe ran without a free lane");
    for _ in &busy {
      release.send(()).unwrap();
    }
    for job in busy {
      job.await.unwrap().unwrap();
    }
    store.ping().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
  }
}
