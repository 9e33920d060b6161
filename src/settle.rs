//! Promise settlement in batches. napi-rs's `spawn_future_with_callback`
//! creates (and tears down) one threadsafe function per promise, spawns two
//! tasks per call and wakes the JS thread once per settled promise. Here every
//! JS thread has one threadsafe function; finished calls are queued and the JS
//! thread is woken once per batch (see `bench/README.md` for the figures).

use std::cell::RefCell;
use std::collections::HashMap;
use std::ffi::c_void;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicPtr, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Poll;
use std::thread::ThreadId;

use napi::bindgen_prelude::*;
use napi::{JsError, check_status, sys};
use realm_auth_client as client;
use tokio::task::AbortHandle;

/// A settlement or an event, run on the JS thread.
pub type Job = Box<dyn FnOnce(&Env) + Send>;

/// A queued job; `settles` names the call it settles, if it settles one.
struct Entry {
  job: Job,
  settles: Option<u64>,
}

/// A promise's deferred; only ever used on its own JS thread.
struct Deferred(sys::napi_deferred);
// SAFETY: moved through the runtime untouched and used on its JS thread only.
unsafe impl Send for Deferred {}

/// A call's future panicked (a bug); carries the panic's message.
pub struct Panicked(pub String);

/// The message of a caught panic.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
  (panic.downcast_ref::<&str>().map(|s| s.to_string()))
    .or_else(|| panic.downcast_ref::<String>().cloned())
    .unwrap_or_else(|| "unknown panic".to_string())
}

/// The JS error a panic of ours becomes: `ErrorCode.Internal` (4905).
pub fn panic_error(env: &Env, message: &str) -> Error {
  crate::js_error::to_js_error(
    env,
    client::Error::new(
      client::ErrorCode::Internal,
      format!("realm-auth-native panicked: {message}"),
    ),
  )
}

/// Runs `f`, turning a panic into the error [`panic_error`] makes: for code
/// called from JS through an `extern "C"` function, where an unwinding panic
/// would abort the process.
pub fn guard<T>(env: &Env, f: impl FnOnce() -> Result<T>) -> Result<T> {
  std::panic::catch_unwind(AssertUnwindSafe(f))
    .unwrap_or_else(|panic| Err(panic_error(env, &panic_message(&*panic))))
}

/// Runs `work` on the runtime and settles the returned promise on the JS
/// thread with `settle(env, output)`: resolved with its value, or rejected
/// with its error. A panic in `work` reaches `settle` as [`Panicked`], so the
/// promise still settles (and the process is not kept alive by it).
pub fn promise<'env, T, V, W, S>(env: &'env Env, work: W, settle: S) -> Result<PromiseRaw<'env, V>>
where
  T: Send + 'static,
  V: ToNapiValue,
  W: Future<Output = T> + Send + 'static,
  S: FnOnce(&Env, std::result::Result<T, Panicked>) -> Result<V> + Send + 'static,
{
  let settler = Settler::of(env)?;
  let mut deferred = std::ptr::null_mut();
  let mut promise = std::ptr::null_mut();
  check_status!(unsafe { sys::napi_create_promise(env.raw(), &mut deferred, &mut promise) })?;
  let deferred = Deferred(deferred);
  settler.started(env);
  let id = settler.next_task.fetch_add(1, Ordering::Relaxed);
  let queue = settler.clone();
  let task = napi::bindgen_prelude::spawn(async move {
    let output = caught(work).await;
    let job = Box::new(move |env: &Env| {
      let deferred = deferred;
      let settled = guard(env, || settle(env, output));
      // JS that `settle` ran may have thrown: the promise settles regardless.
      set_aside_exception(env);
      let settled = settled.and_then(|v| unsafe { V::to_napi_value(env.raw(), v) });
      // Safety: on the deferred's own JS thread, exactly once.
      unsafe {
        match settled {
          Ok(value) => sys::napi_resolve_deferred(env.raw(), deferred.0, value),
          Err(err) => {
            let value = REJECT_WITH
              .with(|r| r.take())
              .unwrap_or_else(|| JsError::from(err).into_value(env.raw()));
            sys::napi_reject_deferred(env.raw(), deferred.0, value)
          }
        };
      }
    });
    queue.push(job, id);
  });
  // Removed on the JS thread when the call settles, which is always later.
  lock_tasks(&settler.running).insert(id, task.abort_handle());
  Ok(PromiseRaw::new(env.raw(), promise))
}

thread_local! {
  /// A JS value the settlement being run rejects with as it is.
  static REJECT_WITH: std::cell::Cell<Option<sys::napi_value>> = const { std::cell::Cell::new(None) };
}

/// For a settlement: rejects its promise with `value` itself, whatever it is
/// (napi-rs would turn a value that is not an `Error` into a new `Error`).
/// Return the result of this from the settle closure.
pub fn reject_with(value: Unknown) -> Error {
  REJECT_WITH.with(|r| r.set(Some(value.raw())));
  Error::new(Status::GenericFailure, "rejected with a JS value")
}

/// Drops `value`, catching a panic: for finalizers, which Node calls from its
/// garbage collector through an `extern "C"` function.
pub fn drop_guarded<T>(value: T) {
  let _ = std::panic::catch_unwind(AssertUnwindSafe(move || drop(value)));
}

/// A finalizer that drops the object under [`drop_guarded`], for classes whose
/// objects may hold the last handle on an App's shared state (its store, its
/// writer thread).
#[macro_export]
macro_rules! guarded_finalize {
  ($($class:ty),*) => {
    $(impl napi::bindgen_prelude::ObjectFinalize for $class {
      fn finalize(self, _env: napi::bindgen_prelude::Env) -> napi::bindgen_prelude::Result<()> {
        $crate::settle::drop_guarded(self);
        Ok(())
      }
    })*
  };
}

/// `work`'s output, or its panic: a future that panicked is not polled again.
async fn caught<T>(work: impl Future<Output = T>) -> std::result::Result<T, Panicked> {
  let mut work = std::pin::pin!(work);
  std::future::poll_fn(|cx| {
    match std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx))) {
      Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
      Ok(Poll::Pending) => Poll::Pending,
      Err(panic) => Poll::Ready(Err(Panicked(panic_message(&*panic)))),
    }
  })
  .await
}

struct Queue {
  jobs: Vec<Entry>,
  /// A flush (or a JS-thread drain) is already on its way.
  scheduled: bool,
  /// The JS thread has been asked to drain and has not started yet.
  woken: bool,
  /// The environment is gone: drop settlements.
  closed: bool,
}

/// One environment's queue and threadsafe function (a module loaded twice on
/// one thread has two environments, each with its own).
struct Settler {
  /// The environment's `napi_env`, as its key.
  env: usize,
  /// The environment's JS thread.
  thread: ThreadId,
  queue: Mutex<Queue>,
  /// Called only with `queue` locked and not closed: the finalizer closes the
  /// queue under the same lock, so the function is never called once freed.
  tsfn: AtomicPtr<sys::napi_threadsafe_function__>,
  /// Calls started and not settled yet (read and written on the JS thread).
  pending: AtomicUsize,
  /// The tasks of the calls in flight, aborted when the environment goes away
  /// (a terminated Worker's requests must not run on to their deadlines).
  running: Mutex<HashMap<u64, AbortHandle>>,
  next_task: AtomicU64,
}

/// Settlements queued beyond this many wake the JS thread at once.
const WAKE_AT: usize = 64;

thread_local! {
  /// This thread's settlers, one per environment (almost always one).
  static SETTLERS: RefCell<Vec<Arc<Settler>>> = const { RefCell::new(Vec::new()) };
}

fn lock(q: &Mutex<Queue>) -> MutexGuard<'_, Queue> {
  q.lock().unwrap_or_else(|e| e.into_inner())
}

fn lock_tasks(t: &Mutex<HashMap<u64, AbortHandle>>) -> MutexGuard<'_, HashMap<u64, AbortHandle>> {
  t.lock().unwrap_or_else(|e| e.into_inner())
}

impl Settler {
  /// The settler of `env`, created on first use.
  fn of(env: &Env) -> Result<Arc<Settler>> {
    let key = env.raw() as usize;
    let found = SETTLERS.with(|s| s.borrow().iter().find(|s| s.env == key).cloned());
    if let Some(s) = found {
      return Ok(s);
    }
    let mut name = std::ptr::null_mut();
    let text = "realm-auth-native";
    check_status!(unsafe {
      sys::napi_create_string_utf8(
        env.raw(),
        text.as_ptr().cast(),
        text.len() as isize,
        &mut name,
      )
    })?;
    let settler = Arc::new(Settler {
      env: key,
      thread: std::thread::current().id(),
      queue: Mutex::new(Queue {
        jobs: Vec::new(),
        scheduled: false,
        woken: false,
        closed: false,
      }),
      tsfn: AtomicPtr::new(std::ptr::null_mut()),
      pending: AtomicUsize::new(0),
      running: Mutex::new(HashMap::new()),
      next_task: AtomicU64::new(0),
    });
    // The threadsafe function owns one count, released by `finalize`.
    let context = Arc::into_raw(settler.clone()) as *mut c_void;
    let mut tsfn = std::ptr::null_mut();
    let status = unsafe {
      sys::napi_create_threadsafe_function(
        env.raw(),
        std::ptr::null_mut(),
        std::ptr::null_mut(),
        name,
        0,
        1,
        context,
        Some(finalize),
        context,
        Some(drain),
        &mut tsfn,
      )
    };
    if status != sys::Status::napi_ok {
      drop(unsafe { Arc::from_raw(context as *const Settler) });
      check_status!(status)?;
    }
    // Set before any other thread can see `settler`.
    settler.tsfn.store(tsfn, Ordering::Relaxed);
    SETTLERS.with(|s| s.borrow_mut().push(settler.clone()));
    // Idle settlers do not keep the process alive (see `started`); this only
    // fails while the environment is going away.
    unsafe { sys::napi_unref_threadsafe_function(env.raw(), tsfn) };
    Ok(settler)
  }

  fn tsfn(&self) -> sys::napi_threadsafe_function {
    self.tsfn.load(Ordering::Relaxed)
  }

  /// A call started (JS thread): the process stays alive while any is in flight.
  fn started(&self, env: &Env) {
    if self.pending.fetch_add(1, Ordering::Relaxed) == 0 {
      unsafe { sys::napi_ref_threadsafe_function(env.raw(), self.tsfn()) };
    }
  }

  /// Queues a settlement (on a runtime worker). The JS thread is woken by a
  /// flush task that runs after the worker's next poll of the I/O driver, so
  /// every call that finishes meanwhile shares one wake-up.
  fn push(self: &Arc<Self>, job: Job, call: u64) {
    let mut q = lock(&self.queue);
    if q.closed {
      return;
    }
    q.jobs.push(Entry {
      job,
      settles: Some(call),
    });
    if q.jobs.len() >= WAKE_AT {
      if !q.woken {
        self.wake(&mut q);
      }
    } else if !q.scheduled {
      q.scheduled = true;
      drop(q);
      let this = self.clone();
      // `push` runs on a runtime worker: spawn on that runtime directly.
      tokio::spawn(async move {
        // Deferred until the worker has polled the driver once more.
        tokio::task::yield_now().await;
        let mut q = lock(&this.queue);
        if q.jobs.is_empty() {
          q.scheduled = false;
        } else if !q.woken {
          this.wake(&mut q);
        }
      });
    }
  }

  /// Asks the JS thread to drain the queue. Called with the queue locked, so
  /// that the finalizer cannot free the function meanwhile.
  fn wake(&self, q: &mut Queue) {
    q.scheduled = true;
    q.woken = true;
    if !q.closed {
      unsafe {
        sys::napi_call_threadsafe_function(
          self.tsfn(),
          std::ptr::null_mut(),
          sys::ThreadsafeFunctionCallMode::nonblocking,
        )
      };
    }
  }
}

/// A JS thread, to run jobs on from any thread (listener events). Unlike a
/// settlement, a job sent here does not keep the process alive.
#[derive(Clone)]
pub struct JsThread(Arc<Settler>);

impl JsThread {
  /// The JS thread of `env` (the current one).
  pub fn of(env: &Env) -> Result<JsThread> {
    Settler::of(env).map(JsThread)
  }

  /// True when called on this JS thread.
  pub fn is_current(&self) -> bool {
    std::thread::current().id() == self.0.thread
  }

  /// The environment's key (its `napi_env`).
  pub fn env_key(&self) -> usize {
    self.0.env
  }

  /// Queues `job` after the settlements queued so far and wakes the thread.
  /// Dropped if the environment is gone.
  pub fn run(&self, job: Job) {
    let mut q = lock(&self.0.queue);
    if q.closed {
      return;
    }
    q.jobs.push(Entry { job, settles: None });
    if !q.woken {
      self.0.wake(&mut q);
    }
  }
}

/// The threadsafe function's callback (JS thread): settles every queued call.
unsafe extern "C" fn drain(
  env: sys::napi_env,
  _js_callback: sys::napi_value,
  context: *mut c_void,
  _data: *mut c_void,
) {
  if env.is_null() {
    return;
  }
  let settler = unsafe { &*(context as *const Settler) };
  let env = Env::from_raw(env);
  let jobs = {
    let mut q = lock(&settler.queue);
    q.scheduled = false;
    q.woken = false;
    std::mem::take(&mut q.jobs)
  };
  let mut settled = 0;
  {
    let mut running = lock_tasks(&settler.running);
    for id in jobs.iter().filter_map(|e| e.settles) {
      running.remove(&id);
      settled += 1;
    }
  }
  for entry in jobs {
    settle_one(&env, entry.job);
  }
  let left = settler
    .pending
    .load(Ordering::Relaxed)
    .saturating_sub(settled);
  settler.pending.store(left, Ordering::Relaxed);
  if left == 0 {
    unsafe { sys::napi_unref_threadsafe_function(env.raw(), settler.tsfn()) };
  }
}

thread_local! {
  /// JS exceptions set aside during the current settlement.
  static THROWN: RefCell<Vec<sys::napi_value>> = const { RefCell::new(Vec::new()) };
}

/// Clears the JS exception pending on `env`, if any, to be reported as
/// uncaught once the current settlement is done. Call it after running user
/// JS during a settlement (a signal's `removeEventListener` may throw): a
/// pending exception would make every later Node-API call fail, and the
/// promise would never settle.
pub fn set_aside_exception(env: &Env) {
  let raw = env.raw();
  let mut pending = false;
  unsafe { sys::napi_is_exception_pending(raw, &mut pending) };
  let mut error = std::ptr::null_mut();
  if pending
    && unsafe { sys::napi_get_and_clear_last_exception(raw, &mut error) } == sys::Status::napi_ok
  {
    THROWN.with(|t| t.borrow_mut().push(error));
  }
}

/// Reports the exceptions [`set_aside_exception`] set aside (and one still
/// pending) as uncaught, the way an EventEmitter's listener's would be.
pub fn report_set_aside(env: &Env) {
  set_aside_exception(env);
  for error in THROWN.with(|t| std::mem::take(&mut *t.borrow_mut())) {
    unsafe { sys::napi_fatal_exception(env.raw(), error) };
  }
}

/// Runs one settlement in a handle scope of its own, then reports what it
/// threw as uncaught exceptions (as if each came from a callback of its own),
/// so that one cannot stop the rest of the batch from settling.
fn settle_one(env: &Env, job: Job) {
  let raw = env.raw();
  let mut scope = std::ptr::null_mut();
  let opened = unsafe { sys::napi_open_handle_scope(raw, &mut scope) } == sys::Status::napi_ok;
  // A settlement turns its own panics into rejections; a panic here (an event
  // delivery) is reported as an uncaught exception rather than abort Node.
  if let Err(err) = guard(env, || {
    job(env);
    Ok(())
  }) {
    let value = unsafe { JsError::from(err).into_value(raw) };
    unsafe { sys::napi_fatal_exception(raw, value) };
  }
  report_set_aside(env);
  if opened {
    unsafe { sys::napi_close_handle_scope(raw, scope) };
  }
}

/// Environment teardown: the calls in flight are cancelled (dropping a call's
/// future drops its request and closes the connection) and later
/// settlements are dropped.
unsafe extern "C" fn finalize(_env: sys::napi_env, data: *mut c_void, _hint: *mut c_void) {
  let settler = unsafe { Arc::from_raw(data as *const Settler) };
  // Dropping user state must not unwind into Node.
  let _ = std::panic::catch_unwind(AssertUnwindSafe(|| {
    let jobs = {
      let mut q = lock(&settler.queue);
      q.closed = true;
      std::mem::take(&mut q.jobs)
    };
    drop(jobs);
    for task in std::mem::take(&mut *lock_tasks(&settler.running)).into_values() {
      task.abort();
    }
    let _ = SETTLERS.try_with(|s| s.borrow_mut().retain(|s| !Arc::ptr_eq(s, &settler)));
  }));
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn a_panicking_call_still_has_an_outcome() {
    let rt = tokio::runtime::Builder::new_current_thread()
      .build()
      .unwrap();
    let ok = rt.block_on(caught(async { 7 }));
    assert_eq!(ok.ok(), Some(7));
    let panicked = rt.block_on(caught(async {
      tokio::task::yield_now().await;
      panic!("boom {}", 1);
    }));
    assert_eq!(
      panicked.err().map(|Panicked(m)| m).as_deref(),
      Some("boom 1")
    );
  }
}
