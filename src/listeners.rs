//! realm v12's change listeners: `app.addListener(cb)` and `user.addListener(cb)`.
//! The client announces each change (`client::Event`) on the thread that made
//! it. Here the announcement becomes calls of the JS callbacks, on the JS
//! thread that added them: queued behind the settlements already queued (so
//! a call's listeners run before its promise settles), or, for a change made
//! by a synchronous method on this thread, at the end of that method.
//!
//! App listeners belong to one JS `App` object, as in realm v12. User listeners
//! belong to the user (its id in its App), not to one `User` object: realm v12
//! keys them by object, so `app.currentUser.removeListener(cb)` could not
//! remove what another `app.currentUser` object added (see docs/MIGRATING.md).

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use napi::bindgen_prelude::*;
use napi::sys;
use realm_auth_client as client;

use crate::settle::{self, JsThread};

/// A strong reference to a listener function (JS thread only).
struct Callback(sys::napi_ref);

impl Callback {
  fn new(env: &Env, function: &Unknown) -> Result<Callback> {
    let mut reference = std::ptr::null_mut();
    napi::check_status!(unsafe {
      sys::napi_create_reference(env.raw(), function.raw(), 1, &mut reference)
    })?;
    Ok(Callback(reference))
  }

  fn value(&self, env: &Env) -> Option<sys::napi_value> {
    let mut value = std::ptr::null_mut();
    let status = unsafe { sys::napi_get_reference_value(env.raw(), self.0, &mut value) };
    (status == sys::Status::napi_ok && !value.is_null()).then_some(value)
  }

  fn is(&self, env: &Env, function: &Unknown) -> bool {
    let Some(value) = self.value(env) else {
      return false;
    };
    let mut equal = false;
    unsafe { sys::napi_strict_equals(env.raw(), value, function.raw(), &mut equal) };
    equal
  }

  fn release(self, env: &Env) {
    unsafe { sys::napi_delete_reference(env.raw(), self.0) };
  }
}

/// One environment's listeners.
#[derive(Default)]
struct Registry {
  /// One client subscription per shared App that this thread listens to.
  subscriptions: HashMap<usize, (client::App, u64)>,
  /// App listeners by JS `App` object, in the order the objects were made.
  apps: BTreeMap<u64, (usize, Vec<Callback>)>,
  /// User listeners by shared App and user id.
  users: HashMap<(usize, String), Vec<Callback>>,
  /// Changes made on this thread by the synchronous method now running.
  pending: Vec<(usize, client::Event)>,
  /// The environment cleanup hook that unsubscribes is installed.
  hooked: bool,
}

thread_local! {
  /// This thread's registries by environment (`napi_env`): almost always one,
  /// two if the module is loaded twice on this thread.
  static REGISTRIES: RefCell<HashMap<usize, Registry>> = RefCell::new(HashMap::new());
}

/// Runs `f` on the registry of the environment `env` (a `napi_env`), made if
/// it has none.
fn with<T>(env: usize, f: impl FnOnce(&mut Registry) -> T) -> T {
  REGISTRIES.with(|r| f(r.borrow_mut().entry(env).or_default()))
}

/// Runs `f` on the registry of `env` if it has one: removals never make one
/// (an App finalized after its environment's cleanup hook must not bring a
/// registry back), and the thread's storage may already be gone.
fn with_existing<T: Default>(env: &Env, f: impl FnOnce(&mut Registry) -> T) -> T {
  (REGISTRIES.try_with(|r| r.borrow_mut().get_mut(&key_of(env)).map(f)))
    .ok()
    .flatten()
    .unwrap_or_default()
}

fn key_of(env: &Env) -> usize {
  env.raw() as usize
}

/// A unique id for a JS `App` object's listener list.
pub fn next_owner() -> u64 {
  use std::sync::atomic::{AtomicU64, Ordering};
  static NEXT: AtomicU64 = AtomicU64::new(1);
  NEXT.fetch_add(1, Ordering::Relaxed)
}

fn function<'env>(env: &Env, callback: Unknown<'env>) -> Result<Unknown<'env>> {
  if !matches!(callback.get_type(), Ok(ValueType::Function)) {
    let err = client::Error::invalid_argument("Expected 'callback' to be a function");
    return Err(crate::js_error::to_js_error(env, err));
  }
  Ok(callback)
}

/// Subscribes this environment to `app`'s changes, once per shared App.
fn subscribe(env: &Env, app: &client::App) -> Result<()> {
  let key = app.shared_id();
  let here = key_of(env);
  if with(here, |r| r.subscriptions.contains_key(&key)) {
    return Ok(());
  }
  let thread = JsThread::of(env)?;
  let id = app.subscribe(std::sync::Arc::new(move |event: &client::Event| {
    if thread.is_current() {
      with(thread.env_key(), |r| r.pending.push((key, event.clone())));
    } else {
      let event = event.clone();
      thread.run(Box::new(move |env| deliver(env, key, &event)));
    }
  }));
  let hook = with(here, |r| {
    r.subscriptions.insert(key, (app.clone(), id));
    !std::mem::replace(&mut r.hooked, true)
  });
  if hook {
    // A terminated Worker's subscriptions must not outlive it.
    env.add_env_cleanup_hook(here, |here| {
      let gone = REGISTRIES.try_with(|r| r.borrow_mut().remove(&here));
      for (app, id) in gone
        .ok()
        .flatten()
        .into_iter()
        .flat_map(|r| r.subscriptions.into_values())
      {
        app.unsubscribe(id);
      }
    })?;
  }
  Ok(())
}

fn add(env: &Env, list: &mut Vec<Callback>, callback: &Unknown) -> Result<()> {
  if list.iter().any(|c| c.is(env, callback)) {
    // realm v12's words.
    return Err(crate::js_error::plain_error(
      env,
      "Remove callback before adding it again",
    ));
  }
  list.push(Callback::new(env, callback)?);
  Ok(())
}

fn remove(env: &Env, list: &mut Vec<Callback>, callback: &Unknown) {
  if let Some(i) = list.iter().position(|c| c.is(env, callback)) {
    list.remove(i).release(env);
  }
}

fn release_all(env: &Env, list: Vec<Callback>) {
  for callback in list {
    callback.release(env);
  }
}

/// `app.addListener(callback)` of the JS `App` object `owner`.
pub fn add_app_listener(env: &Env, app: &client::App, owner: u64, callback: Unknown) -> Result<()> {
  let callback = function(env, callback)?;
  subscribe(env, app)?;
  with(key_of(env), |r| {
    let (_, list) = r
      .apps
      .entry(owner)
      .or_insert_with(|| (app.shared_id(), Vec::new()));
    add(env, list, &callback)
  })
}

/// `app.removeListener(callback)`.
pub fn remove_app_listener(env: &Env, owner: u64, callback: Unknown) {
  let key = with_existing(env, |r| {
    let (key, list) = r.apps.get_mut(&owner)?;
    remove(env, list, &callback);
    Some(*key)
  });
  if let Some(key) = key {
    release_if_idle(env, key);
  }
}

/// `app.removeAllListeners()`, and the end of a JS `App` object.
pub fn remove_app_listeners(env: &Env, owner: u64) {
  let removed = with_existing(env, |r| r.apps.remove(&owner));
  if let Some((key, list)) = removed {
    release_all(env, list);
    release_if_idle(env, key);
  }
}

/// Ends this environment's subscription to a shared App once none of its App
/// or user listeners is left, so that it does not keep the App alive.
fn release_if_idle(env: &Env, key: usize) {
  let ended = with_existing(env, |r| {
    r.apps.retain(|_, (_, list)| !list.is_empty());
    r.users.retain(|_, list| !list.is_empty());
    let busy = r.apps.values().any(|(k, _)| *k == key) || r.users.keys().any(|(k, _)| *k == key);
    if busy {
      None
    } else {
      r.subscriptions.remove(&key)
    }
  });
  if let Some((app, id)) = ended {
    app.unsubscribe(id);
  }
}

/// `user.addListener(callback)`.
pub fn add_user_listener(env: &Env, user: &client::User, callback: Unknown) -> Result<()> {
  let callback = function(env, callback)?;
  subscribe(env, user.app())?;
  let key = (user.app().shared_id(), user.id().to_owned());
  with(key_of(env), |r| {
    add(env, r.users.entry(key).or_default(), &callback)
  })
}

/// `user.removeListener(callback)`.
pub fn remove_user_listener(env: &Env, user: &client::User, callback: Unknown) {
  let key = (user.app().shared_id(), user.id().to_owned());
  with_existing(env, |r| {
    if let Some(list) = r.users.get_mut(&key) {
      remove(env, list, &callback);
    }
  });
  release_if_idle(env, key.0);
}

/// `user.removeAllListeners()`.
pub fn remove_user_listeners(env: &Env, user: &client::User) {
  let key = (user.app().shared_id(), user.id().to_owned());
  let removed = with_existing(env, |r| r.users.remove(&key));
  if let Some(list) = removed {
    release_all(env, list);
  }
  release_if_idle(env, key.0);
}

/// Runs the listeners of the changes a synchronous method made on this
/// thread. Call it at the end of every synchronous method that changes users.
/// A listener that throws is reported as an uncaught exception; the method
/// itself does not throw.
pub fn flush(env: &Env) {
  // Every environment of this thread: a change made here may concern another
  // copy of the module loaded on this thread, which shares this JS thread.
  let pending: Vec<_> = REGISTRIES.with(|r| {
    (r.borrow_mut().iter_mut())
      .filter(|(_, r)| !r.pending.is_empty())
      .map(|(&key, r)| (key, std::mem::take(&mut r.pending)))
      .collect()
  });
  if pending.is_empty() {
    // Nothing ran: an exception pending now is the method's own.
    return;
  }
  for (key, events) in pending {
    let target = Env::from_raw(key as sys::napi_env);
    for (app, event) in events {
      deliver(&target, app, &event);
    }
  }
  settle::report_set_aside(env);
}

/// Calls the listeners of one change (JS thread). The list is read first, so
/// that a listener may add or remove listeners.
fn deliver(env: &Env, key: usize, event: &client::Event) {
  let (functions, ended) = with_existing(env, |r| {
    let values = |list: &Vec<Callback>| -> Vec<sys::napi_value> {
      list.iter().filter_map(|c| c.value(env)).collect()
    };
    match event {
      client::Event::App => {
        let functions = (r.apps.values())
          .filter(|(k, _)| *k == key)
          .flat_map(|(_, list)| values(list))
          .collect();
        (functions, None)
      }
      client::Event::User(id) => {
        let listed = r.users.get(&(key, id.clone()));
        let functions = listed.map(values).unwrap_or_default();
        // A removed user is gone for good (a later login makes a new one):
        // its listeners end with the event that reports the removal.
        let removed = r.subscriptions.get(&key).is_some_and(|(app, _)| {
          listed.is_some() && !app.all_users().iter().any(|u| u.id() == id)
        });
        (functions, removed.then(|| (key, id.clone())))
      }
    }
  });
  let mut undefined = std::ptr::null_mut();
  unsafe { sys::napi_get_undefined(env.raw(), &mut undefined) };
  for function in functions {
    let mut result = std::ptr::null_mut();
    unsafe {
      sys::napi_call_function(
        env.raw(),
        undefined,
        function,
        0,
        std::ptr::null(),
        &mut result,
      )
    };
    settle::set_aside_exception(env);
  }
  if let Some(key) = ended {
    let removed = with_existing(env, |r| r.users.remove(&key));
    if let Some(list) = removed {
      release_all(env, list);
    }
    release_if_idle(env, key.0);
  }
}
