//! The memory backend: every record in hash maps under one mutex (see `store::MemStore`),
//! saved as JSON to the optional data file (`persist.rs`).

use std::borrow::Cow;
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use crate::ids::{hex, random_bytes};
use crate::state::{ApiKey, EmailAccount, Session, User};
use crate::store::{Pending, R, StoreError, Tx};
use crate::throttle::Failures;

/// A user and the ids of its keys in creation order (the list route reads them without a scan).
#[derive(Serialize, Deserialize, Clone, Debug)]
pub(crate) struct MemUser {
  #[serde(flatten)]
  pub user: User,
  pub key_ids: Vec<String>,
}

/// Everything the memory backend holds. Persisted as JSON (minus the `serde(skip)` fields).
#[derive(Serialize, Deserialize)]
pub(crate) struct State {
  /// File format version.
  pub format: u32,
  /// HS256 key of our tokens (hex). Persisted so tokens survive a restart with `--data`.
  pub jwt_secret: String,
  /// Bumped by `expire_access_tokens`: older access tokens are refused.
  pub access_generation: u64,
  pub users: HashMap<String, MemUser>,
  /// By email.
  pub emails: HashMap<String, EmailAccount>,
  /// `"<provider>/<id>"` -> user id, for custom-token and custom-function identities.
  pub identities: HashMap<String, String>,
  pub keys: HashMap<String, ApiKey>,
  pub sessions: HashMap<String, Session>,
  /// SHA-256 hex -> key id (derived, rebuilt on load).
  #[serde(skip)]
  key_by_hash: HashMap<String, String>,
  /// Pending tokens (id and secret hash) live in memory only, as they always did here.
  #[serde(skip)]
  pending: HashMap<(Pending, String), (String, String)>,
  /// Failed-login counts by (scope, subject): in memory only, like pending tokens (a memory
  /// store has one server, and a restart forgiving a lock harms nobody).
  #[serde(skip)]
  login_failures: HashMap<(String, String), Failures>,
  /// Bumped by every transaction that wrote: tells the persister what is new.
  #[serde(skip)]
  pub version: u64,
}

impl State {
  /// Empty state with a fresh signing secret.
  pub fn new() -> State {
    State {
      format: 1,
      jwt_secret: hex(&random_bytes::<32>()),
      access_generation: 0,
      users: HashMap::new(),
      emails: HashMap::new(),
      identities: HashMap::new(),
      keys: HashMap::new(),
      sessions: HashMap::new(),
      key_by_hash: HashMap::new(),
      pending: HashMap::new(),
      login_failures: HashMap::new(),
      version: 0,
    }
  }

  /// Finishes a state loaded from disk: rebuilds derived indexes.
  pub fn after_load(&mut self) {
    self.key_by_hash = self
      .keys
      .values()
      .map(|k| (k.hash.clone(), k.id.clone()))
      .collect();
  }
}

/// A transaction over the memory state: the caller holds the lock; writes apply at once (rules
/// check before they write, so a refused request changes nothing).
pub(crate) struct MemTx<'a> {
  st: &'a mut State,
  wrote: bool,
}

impl<'a> MemTx<'a> {
  /// A transaction over a locked state.
  pub fn new(st: &'a mut State) -> MemTx<'a> {
    MemTx { st, wrote: false }
  }

  /// Whether anything was written.
  pub fn wrote(&self) -> bool {
    self.wrote
  }

  fn w(&mut self) -> &mut State {
    self.wrote = true;
    self.st
  }
}

fn external(provider: &str, id: &str) -> String {
  format!("{provider}/{id}")
}

impl Tx for MemTx<'_> {
  fn access_generation(&self) -> R<u64> {
    Ok(self.st.access_generation)
  }

  fn bump_access_generation(&mut self) -> R<()> {
    self.w().access_generation += 1;
    Ok(())
  }

  fn clear(&mut self) -> R<()> {
    let st = self.w();
    st.users.clear();
    st.emails.clear();
    st.identities.clear();
    st.keys.clear();
    st.sessions.clear();
    st.key_by_hash.clear();
    st.pending.clear();
    st.login_failures.clear();
    st.access_generation += 1;
    Ok(())
  }

  fn user(&self, id: &str) -> R<Option<Cow<'_, User>>> {
    Ok(self.st.users.get(id).map(|u| Cow::Borrowed(&u.user)))
  }

  fn lock_user(&mut self, id: &str) -> R<bool> {
    // The caller already holds the one lock.
    Ok(self.st.users.contains_key(id))
  }

  fn users(&self) -> R<Vec<User>> {
    let mut users: Vec<User> = self.st.users.values().map(|u| u.user.clone()).collect();
    users.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(users)
  }

  fn insert_user(&mut self, user: &User) -> R<()> {
    self.w().users.insert(
      user.id.clone(),
      MemUser {
        user: user.clone(),
        key_ids: Vec::new(),
      },
    );
    Ok(())
  }

  fn update_user(&mut self, user: &User) -> R<()> {
    if let Some(u) = self.w().users.get_mut(&user.id) {
      // `disabled` has its own writer (`set_user_disabled`), as in the SQL backends.
      let disabled = u.user.disabled;
      u.user = user.clone();
      u.user.disabled = disabled;
    }
    Ok(())
  }

  fn set_user_disabled(&mut self, id: &str, disabled: bool) -> R<bool> {
    if !self.st.users.contains_key(id) {
      return Ok(false);
    }
    if let Some(u) = self.w().users.get_mut(id) {
      u.user.disabled = disabled;
    }
    Ok(true)
  }

  fn delete_user(&mut self, id: &str) -> R<bool> {
    let st = self.w();
    let Some(user) = st.users.remove(id) else {
      return Ok(false);
    };
    let emails: Vec<String> = st
      .emails
      .values()
      .filter(|a| a.user_id.as_deref() == Some(id))
      .map(|a| a.email.clone())
      .collect();
    for email in emails {
      st.emails.remove(&email);
      st.pending.remove(&(Pending::Confirm, email.clone()));
      st.pending.remove(&(Pending::Reset, email));
    }
    st.identities.retain(|_, owner| owner != id);
    for key_id in &user.key_ids {
      if let Some(key) = st.keys.remove(key_id) {
        st.key_by_hash.remove(&key.hash);
      }
    }
    st.sessions.retain(|_, s| s.user_id != id);
    Ok(true)
  }

  fn identity_owner(&self, provider: &str, id: &str) -> R<Option<String>> {
    Ok(self.st.identities.get(&external(provider, id)).cloned())
  }

  fn insert_identity_owner(&mut self, provider: &str, id: &str, user_id: &str) -> R<()> {
    let index = external(provider, id);
    if self.st.identities.contains_key(&index) {
      return Err(StoreError::Conflict);
    }
    self.w().identities.insert(index, user_id.to_string());
    Ok(())
  }

  fn email_account(&self, email: &str) -> R<Option<Cow<'_, EmailAccount>>> {
    Ok(self.st.emails.get(email).map(Cow::Borrowed))
  }

  fn lock_email_account(&mut self, _email: &str) -> R<()> {
    // The caller already holds the one lock.
    Ok(())
  }

  fn insert_email_account(&mut self, account: &EmailAccount) -> R<()> {
    if self.st.emails.contains_key(&account.email) {
      return Err(StoreError::Conflict);
    }
    self
      .w()
      .emails
      .insert(account.email.clone(), account.clone());
    Ok(())
  }

  fn update_email_account(&mut self, account: &EmailAccount) -> R<()> {
    if let Some(a) = self.w().emails.get_mut(&account.email) {
      *a = account.clone();
    }
    Ok(())
  }

  fn put_pending(&mut self, kind: Pending, email: &str, token_id: &str, hash: &str) -> R<()> {
    self.w().pending.insert(
      (kind, email.to_string()),
      (token_id.to_string(), hash.to_string()),
    );
    Ok(())
  }

  fn pending_by_id(&self, kind: Pending, token_id: &str) -> R<Option<(String, String)>> {
    Ok(
      self
        .st
        .pending
        .iter()
        .find(|((k, _), (id, _))| *k == kind && id == token_id)
        .map(|((_, email), (_, hash))| (email.clone(), hash.clone())),
    )
  }

  fn pending_for(&self, kind: Pending, email: &str) -> R<Option<String>> {
    Ok(
      self
        .st
        .pending
        .get(&(kind, email.to_string()))
        .map(|(id, _)| id.clone()),
    )
  }

  fn drop_pending(&mut self, kind: Pending, email: &str) -> R<()> {
    self.w().pending.remove(&(kind, email.to_string()));
    Ok(())
  }

  fn key(&self, id: &str) -> R<Option<Cow<'_, ApiKey>>> {
    Ok(self.st.keys.get(id).map(Cow::Borrowed))
  }

  fn key_by_hash(&self, hash: &str) -> R<Option<Cow<'_, ApiKey>>> {
    Ok(
      self
        .st
        .key_by_hash
        .get(hash)
        .and_then(|id| self.st.keys.get(id))
        .map(Cow::Borrowed),
    )
  }

  fn keys_of(&self, owner: &str) -> R<Vec<Cow<'_, ApiKey>>> {
    Ok(match self.st.users.get(owner) {
      Some(u) => u
        .key_ids
        .iter()
        .filter_map(|id| self.st.keys.get(id))
        .map(Cow::Borrowed)
        .collect(),
      None => Vec::new(),
    })
  }

  fn server_keys(&self) -> R<Vec<ApiKey>> {
    let mut keys: Vec<ApiKey> = self
      .st
      .keys
      .values()
      .filter(|k| k.server)
      .cloned()
      .collect();
    keys.sort_by(|a, b| (a.created, &a.id).cmp(&(b.created, &b.id)));
    Ok(keys)
  }

  fn server_key_named(&self, name: &str) -> R<bool> {
    Ok(self.st.keys.values().any(|k| k.server && k.name == name))
  }

  fn insert_key(&mut self, key: &ApiKey) -> R<()> {
    if self.st.key_by_hash.contains_key(&key.hash) {
      return Err(StoreError::Conflict);
    }
    let st = self.w();
    st.key_by_hash.insert(key.hash.clone(), key.id.clone());
    st.keys.insert(key.id.clone(), key.clone());
    if let Some(user) = st.users.get_mut(&key.owner) {
      user.key_ids.push(key.id.clone());
    }
    Ok(())
  }

  fn set_key_disabled(&mut self, id: &str, disabled: bool) -> R<()> {
    if let Some(k) = self.w().keys.get_mut(id) {
      k.disabled = disabled;
    }
    Ok(())
  }

  fn delete_key(&mut self, id: &str) -> R<()> {
    let st = self.w();
    if let Some(key) = st.keys.remove(id) {
      st.key_by_hash.remove(&key.hash);
      if let Some(user) = st.users.get_mut(&key.owner) {
        user.key_ids.retain(|k| k != id);
      }
    }
    st.sessions.retain(|_, s| s.via_key.as_deref() != Some(id));
    Ok(())
  }

  fn session(&self, id: &str) -> R<Option<Cow<'_, Session>>> {
    Ok(self.st.sessions.get(id).map(Cow::Borrowed))
  }

  fn insert_session(&mut self, session: &Session, now: u64) -> R<()> {
    let st = self.w();
    // Amortised cleanup so a long benchmark of logins does not grow without bound.
    if st.sessions.len() >= 1024 && st.sessions.len().is_power_of_two() {
      st.sessions.retain(|_, s| s.expires > now);
    }
    st.sessions.insert(session.id.clone(), session.clone());
    Ok(())
  }

  fn delete_session(&mut self, id: &str) -> R<()> {
    self.w().sessions.remove(id);
    Ok(())
  }

  fn delete_sessions_of(&mut self, user_id: &str) -> R<()> {
    self.w().sessions.retain(|_, s| s.user_id != user_id);
    Ok(())
  }

  // Throttle counts go through `self.st`, not `w()`: they are not persisted, so they must not
  // bump the version that makes the data file be rewritten.
  fn login_failures(&self, scope: &str, subject: &str) -> R<Option<Failures>> {
    Ok(
      self
        .st
        .login_failures
        .get(&(scope.to_string(), subject.to_string()))
        .copied(),
    )
  }

  fn add_login_failure(
    &mut self,
    scope: &str,
    subject: &str,
    now_ms: u64,
    window_ms: u64,
  ) -> R<Failures> {
    let f = self
      .st
      .login_failures
      .entry((scope.to_string(), subject.to_string()))
      .or_default();
    // The window runs from the later of the last failure and the lock's end: attempts refused
    // while locked are not counted, so a lock as long as the window must not wipe the count.
    if f.failures > 0
      && f
        .last_failure_ms
        .max(f.locked_until_ms)
        .saturating_add(window_ms)
        > now_ms
    {
      f.failures = f.failures.saturating_add(1);
    } else {
      *f = Failures::default();
      f.failures = 1;
    }
    f.last_failure_ms = now_ms;
    Ok(*f)
  }

  fn take_back_login_failure(&mut self, scope: &str, subject: &str) -> R<Option<Failures>> {
    let f = self
      .st
      .login_failures
      .get_mut(&(scope.to_string(), subject.to_string()));
    Ok(f.map(|f| {
      f.failures = f.failures.saturating_sub(1);
      *f
    }))
  }

  fn set_login_lock(&mut self, scope: &str, subject: &str, until_ms: u64) -> R<()> {
    if let Some(f) = self
      .st
      .login_failures
      .get_mut(&(scope.to_string(), subject.to_string()))
    {
      f.locked_until_ms = until_ms;
    }
    Ok(())
  }

  fn clear_login_failures(&mut self, scope: &str, subject: &str) -> R<()> {
    self
      .st
      .login_failures
      .remove(&(scope.to_string(), subject.to_string()));
    Ok(())
  }

  fn sweep_login_failures(&mut self, now_ms: u64, window_ms: u64, limit: u32) -> R<()> {
    let stale: Vec<(String, String)> = self
      .st
      .login_failures
      .iter()
      .filter(|(_, f)| {
        f.last_failure_ms
          .max(f.locked_until_ms)
          .saturating_add(window_ms)
          <= now_ms
      })
      .take(limit as usize)
      .map(|(k, _)| k.clone())
      .collect();
    for k in stale {
      self.st.login_failures.remove(&k);
    }
    Ok(())
  }
}
