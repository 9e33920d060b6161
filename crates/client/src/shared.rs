//! What Apps with the same id and base URL share (realm-core's app cache): the
//! located host, the users, the user store, the listeners and the retry
//! budget. Every change to the users goes through here, so that memory, the
//! store and the events agree: the change is made in memory, written to the
//! store, then announced.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, mpsc};

use crate::app::lock;
use crate::config::AppConfig;
use crate::error::Result;
use crate::jwt;
use crate::log::{self, Category, Level};
use crate::retry::RetryBudget;
use crate::secret::Secret;
use crate::store::{Change, Persistence, Snapshot, Store, UserRecord};
use crate::transport::Host;
use crate::user::{Profile, State, UserInner};

/// What changed, as realm v12's listeners see it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
  /// The App's users changed: a login (or a reused anonymous user), a switch,
  /// a logout, a removal or a deletion.
  App,
  /// This user's data changed: a login, a refreshed access token, a new
  /// profile, a logout, or its removal.
  User(String),
}

/// A listener of an App's events. Called on the thread that made the change,
/// with no lock held.
pub type Subscriber = Arc<dyn Fn(&Event) + Send + Sync>;

/// The users of an App, in realm-core's order: the order in which they were
/// first stored. Removed users are not listed.
#[derive(Default)]
pub(crate) struct Users {
  pub list: Vec<Arc<UserInner>>,
  /// The id of the current user, as last set (it may have logged out since).
  pub current: Option<String>,
}

/// Where requests go: the base URL (which `update_base_url` may change) and
/// the host its location request named.
pub(crate) struct Route {
  pub base_url: String,
  pub hostname: Option<Arc<Host>>,
}

/// The state Apps of one id and base URL share.
pub(crate) struct Shared {
  pub id: String,
  pub route: RwLock<Route>,
  /// Makes concurrent first requests share one location request.
  pub location_lock: tokio::sync::Mutex<()>,
  /// The retries every App of this id and base URL may still make.
  pub retry_budget: RetryBudget,
  pub users: Mutex<Users>,
  persistence: Persistence,
  store: Option<Arc<Store>>,
  /// Orders changes in memory with their place in the writer's queue.
  writes: Mutex<()>,
  /// The store's writer thread (started by the first write).
  writer: Mutex<Option<mpsc::Sender<Job>>>,
  subscribers: Mutex<Vec<(u64, Subscriber)>>,
  next_subscriber: AtomicU64,
}

type Key = (String, String);

/// realm-core's app cache: one shared state per (app id, base URL). It holds
/// them strongly, as core does, until [`clear_cache`].
static CACHE: Mutex<Option<HashMap<Key, Arc<Shared>>>> = Mutex::new(None);

/// The shared state of `config`'s id and base URL, opening its store if it is
/// the first App of that pair in this process.
pub(crate) fn shared_for(config: &AppConfig) -> Result<Arc<Shared>> {
  let mut cache = lock(&CACHE);
  let cache = cache.get_or_insert_with(HashMap::new);
  let key = (config.id.clone(), config.base_url.clone());
  if let Some(shared) = cache.get(&key) {
    if shared.persistence != config.persistence {
      log::log(Category::Sdk, Level::Warn, || {
        format!(
          "App {} at {} already exists in this process with other metadata settings: its users and \
           their store stay as the first App configured them",
          config.id, config.base_url
        )
      });
    }
    return Ok(shared.clone());
  }
  let shared = Arc::new(Shared::open(config)?);
  cache.insert(key, shared.clone());
  Ok(shared)
}

/// Forgets every cached App: the next App of an id opens its store again.
/// Handles that exist keep working on the state they have.
pub fn clear_cache() {
  lock(&CACHE).take();
}

impl Shared {
  fn open(config: &AppConfig) -> Result<Shared> {
    let (store, snapshot) = Store::open(&config.persistence, &config.id)?;
    let users = Users {
      list: snapshot.users.into_iter().map(UserInner::restore).collect(),
      current: snapshot.current,
    };
    Ok(Shared {
      id: config.id.clone(),
      route: RwLock::new(Route {
        base_url: config.base_url.clone(),
        hostname: None,
      }),
      location_lock: tokio::sync::Mutex::new(()),
      retry_budget: RetryBudget::new(),
      users: Mutex::new(users),
      persistence: config.persistence.clone(),
      store: store.map(Arc::new),
      writes: Mutex::new(()),
      writer: Mutex::new(None),
      subscribers: Mutex::new(Vec::new()),
      next_subscriber: AtomicU64::new(1),
    })
  }

  /// Registers a listener; returns its id for [`Shared::unsubscribe`].
  pub fn subscribe(&self, subscriber: Subscriber) -> u64 {
    let id = self.next_subscriber.fetch_add(1, Ordering::Relaxed);
    lock(&self.subscribers).push((id, subscriber));
    id
  }

  /// Stops calling the listener with this id.
  pub fn unsubscribe(&self, id: u64) {
    lock(&self.subscribers).retain(|(i, _)| *i != id);
  }

  fn emit(&self, events: &[Event]) {
    if events.is_empty() {
      return;
    }
    let subscribers: Vec<Subscriber> = lock(&self.subscribers)
      .iter()
      .map(|(_, s)| s.clone())
      .collect();
    for event in events {
      for subscriber in &subscribers {
        subscriber(event);
      }
    }
  }

  /// Queues `changes` for the store's writer (if there is a store), which
  /// answers on `reply` with what the store holds after them. Call it with
  /// `writes` held, so that the queue's order is the order of the changes in
  /// memory; wait for the answer after releasing it.
  fn submit(&self, changes: Vec<Change>, reply: Reply) {
    let Some(store) = &self.store else {
      return reply.send(None);
    };
    let mut writer = lock(&self.writer);
    let mut job = Job { changes, reply };
    if let Some(tx) = writer.as_ref() {
      match tx.send(job) {
        Ok(()) => return,
        // The thread is gone (it cannot be, while we hold the sender): start another.
        Err(mpsc::SendError(back)) => job = back,
      }
    }
    let (tx, rx) = mpsc::channel();
    let thread = std::thread::Builder::new()
      .name("realm-auth-store".into())
      .spawn({
        let store = store.clone();
        move || write_loop(&store, rx)
      });
    match thread {
      Ok(_) => {
        // The thread holds the receiver: this send cannot fail.
        let _ = tx.send(job);
        *writer = Some(tx);
      }
      // No thread to be had: write here, one change at a time.
      Err(_) => write_jobs(store, vec![job]),
    }
  }

  /// Queues `changes`; the receiver answers once they are written.
  fn persist(&self, changes: Vec<Change>) -> mpsc::Receiver<Merged> {
    let (tx, rx) = mpsc::sync_channel(1);
    self.submit(changes, Reply::Blocking(tx));
    rx
  }

  /// The users in the order `allUsers` lists them: realm-core's table order,
  /// or by id for an in-memory App (core keeps those in an ordered map).
  pub fn ordered(&self) -> Vec<Arc<UserInner>> {
    let mut list = lock(&self.users).list.clone();
    if self.store.is_none() {
      list.sort_by(|a, b| a.id.cmp(&b.id));
    }
    list
  }

  /// realm-core's current user: the one last switched to while it is logged
  /// in, else the first logged-in user in order (which becomes current).
  pub fn current_user(&self) -> Option<Arc<UserInner>> {
    let ordered = self.ordered();
    let mut users = lock(&self.users);
    let logged_in = |u: &&Arc<UserInner>| u.state() == State::LoggedIn;
    let chosen = users
      .current
      .as_deref()
      .and_then(|id| ordered.iter().find(|u| u.id == id))
      .filter(logged_in)
      .or_else(|| ordered.iter().find(logged_in))
      .cloned();
    if let Some(user) = &chosen {
      users.current = Some(user.id.clone());
    }
    chosen
  }

  /// True while `user` is one of this App's (not removed) users.
  pub fn has(&self, user: &Arc<UserInner>) -> bool {
    lock(&self.users).list.iter().any(|u| Arc::ptr_eq(u, user))
  }

  /// The first logged-in anonymous user, if any.
  pub fn anonymous_user(&self) -> Option<Arc<UserInner>> {
    self
      .ordered()
      .into_iter()
      .find(|u| u.state() == State::LoggedIn && u.is_anonymous())
  }

  /// A login's session: kept on the user with that id (created if new). It
  /// is stored by [`Shared::finish_login`], once, with the profile; until
  /// then the user is not made current.
  pub fn adopt(
    &self,
    user_id: &str,
    access: Secret,
    refresh: Secret,
    device_id: String,
    provider: &str,
  ) -> Arc<UserInner> {
    let writes = lock(&self.writes);
    let user = {
      let mut users = lock(&self.users);
      match users.list.iter().find(|u| u.id == user_id) {
        Some(user) => user.clone(),
        None => {
          let user = Arc::new(UserInner::new(user_id.to_owned()));
          users.list.push(user.clone());
          user
        }
      }
    };
    user.log_in(access, refresh, device_id, provider);
    drop(writes);
    self.emit(&[Event::User(user.id.clone())]);
    user
  }

  /// Stores a login (session and profile in one write) and, with
  /// `make_current`, makes the user current. Concurrent logins share one
  /// write of the store (and its fsyncs); the caller's task waits for it
  /// without holding a thread. False when the user was logged out or
  /// removed meanwhile: nothing is stored then.
  pub async fn finish_login(&self, user: &Arc<UserInner>, make_current: bool) -> bool {
    let (tx, rx) = tokio::sync::oneshot::channel();
    {
      let _writes = lock(&self.writes);
      if !self.has(user) || user.state() != State::LoggedIn {
        return false;
      }
      let mut changes = vec![Change::LogIn(user.record())];
      if make_current {
        lock(&self.users).current = Some(user.id.clone());
        changes.push(Change::SetCurrent {
          id: user.id.clone(),
        });
      }
      self.submit(changes, Reply::Async(tx));
    }
    let _ = rx.await;
    if make_current {
      self.emit(&[Event::App]);
    }
    true
  }

  /// A profile read from the server; `store` writes it (a login's is stored
  /// by `finish_login`).
  pub fn set_profile(&self, user: &Arc<UserInner>, profile: Profile, store: bool) {
    let writes = lock(&self.writes);
    if !user.set_profile(profile.clone()) {
      return;
    }
    let written = store.then(|| {
      self.persist(vec![Change::Profile {
        id: user.id.clone(),
        profile,
      }])
    });
    drop(writes);
    if let Some(rx) = written {
      let _ = rx.recv();
    }
    self.emit(&[Event::User(user.id.clone())]);
  }

  /// A new access token for a user whose session is `refresh`. If another
  /// process logged the user out meanwhile, the store says so: the user is
  /// logged out here too rather than brought back.
  pub fn set_access_token(&self, user: &Arc<UserInner>, refresh: &Secret, access: Secret) {
    let writes = lock(&self.writes);
    if !user.set_access_token(refresh, access.clone()) {
      return;
    }
    let written = self.persist(vec![Change::Access {
      id: user.id.clone(),
      refresh: refresh.clone(),
      access,
    }]);
    drop(writes);
    // Logged out in the store means another process ended the session. A
    // user the store does not hold (a login in progress), or holds with
    // another session (a newer login elsewhere), is left alone.
    let ended_elsewhere = written.recv().ok().flatten().is_some_and(|snapshot| {
      (snapshot.users.iter().find(|r| r.id == user.id)).is_some_and(|r| r.tokens.is_none())
    });
    if !ended_elsewhere {
      self.emit(&[Event::User(user.id.clone())]);
    } else {
      log::log(Category::Sdk, Level::Info, || {
        format!("user {} was logged out by another process", user.id)
      });
      self.log_out(user);
    }
  }

  /// Makes `user` the current user (a login, a switch).
  pub fn promote(&self, user: &Arc<UserInner>) {
    let writes = lock(&self.writes);
    lock(&self.users).current = Some(user.id.clone());
    let written = self.persist(vec![Change::SetCurrent {
      id: user.id.clone(),
    }]);
    drop(writes);
    let _ = written.recv();
    self.emit(&[Event::App]);
  }

  /// Logs the user out here (an anonymous user is removed, as in realm v12);
  /// returns the refresh token its session had, if it was logged in.
  pub fn log_out(&self, user: &Arc<UserInner>) -> Option<Secret> {
    let writes = lock(&self.writes);
    let (refresh, removed) = user.mark_logged_out();
    let ended = refresh.clone()?;
    let change = if removed {
      self.forget(user);
      Change::Remove {
        id: user.id.clone(),
      }
    } else {
      self.current_left(user);
      Change::LogOut {
        id: user.id.clone(),
        refresh: ended,
      }
    };
    let written = self.persist(vec![change]);
    drop(writes);
    let _ = written.recv();
    self.emit(&[Event::User(user.id.clone()), Event::App]);
    refresh
  }

  /// Removes the user (removed, deleted); returns the refresh token its
  /// session had, if it was logged in.
  pub fn remove(&self, user: &Arc<UserInner>) -> Option<Secret> {
    let writes = lock(&self.writes);
    let refresh = user.mark_removed();
    self.forget(user);
    let written = self.persist(vec![Change::Remove {
      id: user.id.clone(),
    }]);
    drop(writes);
    let _ = written.recv();
    self.emit(&[Event::User(user.id.clone()), Event::App]);
    refresh
  }

  /// Drops the user from the list (and from being current).
  fn forget(&self, user: &Arc<UserInner>) {
    let mut users = lock(&self.users);
    users.list.retain(|u| !Arc::ptr_eq(u, user));
    if users.current.as_deref() == Some(user.id.as_str()) {
      users.current = None;
    }
  }

  /// The current user logged out: as realm-core's store does, the first
  /// logged-in user in `allUsers` order becomes current (or none).
  fn current_left(&self, user: &Arc<UserInner>) {
    let ordered = self.ordered();
    let mut users = lock(&self.users);
    if users.current.as_deref() == Some(user.id.as_str()) {
      users.current = (ordered.iter())
        .find(|u| u.state() == State::LoggedIn)
        .map(|u| u.id.clone());
    }
  }
}

impl UserInner {
  /// A user read back from the store. Tokens that are not JWTs make it
  /// logged out, as realm-core does.
  fn restore(record: UserRecord) -> Arc<UserInner> {
    let user = UserInner::new(record.id);
    let tokens = record
      .tokens
      .filter(|(a, r)| jwt::decode(a.expose()).is_ok() && jwt::decode(r.expose()).is_ok());
    match tokens {
      Some((access, refresh)) => {
        user.log_in(access, refresh, record.device_id, &record.login_provider)
      }
      None => user.set_logged_out(record.device_id, &record.login_provider),
    }
    if let Some(profile) = record.profile {
      user.set_profile(profile);
    }
    Arc::new(user)
  }
}

/// What the store holds after a write, or `None` (no store, or the write failed).
type Merged = Option<Arc<Snapshot>>;

/// Where the writer says a job is done.
enum Reply {
  /// A thread waiting (the JS thread, or a synchronous step of a call).
  Blocking(mpsc::SyncSender<Merged>),
  /// A task waiting (a login).
  Async(tokio::sync::oneshot::Sender<Merged>),
}

impl Reply {
  fn send(self, merged: Merged) {
    // A waiter that went away (a cancelled call) needs no answer.
    match self {
      Reply::Blocking(tx) => drop(tx.send(merged)),
      Reply::Async(tx) => drop(tx.send(merged)),
    }
  }
}

/// Changes for the store's writer.
struct Job {
  changes: Vec<Change>,
  reply: Reply,
}

/// The writer thread: every job queued while it writes goes into its next
/// write (group commit), so concurrent changes share one lock and one fsync.
/// It ends with the App state that owns the sending side.
fn write_loop(store: &Store, jobs: mpsc::Receiver<Job>) {
  while let Ok(first) = jobs.recv() {
    let mut batch = vec![first];
    batch.extend(jobs.try_iter());
    write_jobs(store, batch);
  }
}

/// Writes the changes of `jobs` in one write and answers each. A failed write
/// is logged: the changes stand in memory, as a cache would keep them.
fn write_jobs(store: &Store, jobs: Vec<Job>) {
  let changes: Vec<Change> = jobs
    .iter()
    .flat_map(|j| j.changes.iter().cloned())
    .collect();
  let merged = match store.apply(&changes) {
    Ok(snapshot) => Some(Arc::new(snapshot)),
    Err(err) => {
      log::log(Category::Sdk, Level::Error, || {
        format!(
          "could not write the user store {}: {}",
          store.path().display(),
          err.message
        )
      });
      None
    }
  };
  for job in jobs {
    job.reply.send(merged.clone());
  }
}
