//! What every method does with its arguments before Rust sees them: checked
//! conversions (wrong types become `TypeError`s, and async methods reject
//! rather than throw), and the optional last argument of async methods,
//! `{ signal?: AbortSignal, timeout?: number }`, with the promise that runs a
//! call under it.

use std::future::Future;
use std::time::Duration;

use napi::bindgen_prelude::*;
use napi::sys;
use realm_auth_client as client;
use tokio::sync::watch;

use crate::js_error::to_js_error;
use crate::settle;

/// A refused argument: a `TypeError` once it reaches JS, and no request is sent.
pub fn refused(message: impl Into<String>) -> client::Error {
  client::Error::invalid_argument(message)
}

fn type_name(value: &Unknown) -> &'static str {
  match value.get_type() {
    Ok(ValueType::Undefined) => "undefined",
    Ok(ValueType::Null) => "null",
    Ok(ValueType::Boolean) => "a boolean",
    Ok(ValueType::Number) => "a number",
    Ok(ValueType::String) => "a string",
    Ok(ValueType::Symbol) => "a symbol",
    Ok(ValueType::Object) => "an object",
    Ok(ValueType::Function) => "a function",
    Ok(ValueType::BigInt) => "a bigint",
    _ => "an unknown value",
  }
}

fn is(value: &Unknown, wanted: ValueType) -> bool {
  value.get_type().is_ok_and(|t| t == wanted)
}

/// True for `undefined` and `null` (an omitted optional argument).
pub fn is_nullish(value: &Unknown) -> bool {
  matches!(value.get_type(), Ok(ValueType::Undefined | ValueType::Null))
}

/// A string argument.
pub fn string(value: Unknown, what: &str) -> client::Result<String> {
  if !is(&value, ValueType::String) {
    return Err(refused(format!(
      "Expected '{what}' to be a string, got {}",
      type_name(&value)
    )));
  }
  String::from_unknown(value).map_err(|_| refused(format!("Expected '{what}' to be a string")))
}

/// A plain object argument (not null, not a function).
pub fn object<'env>(value: Unknown<'env>, what: &str) -> client::Result<Object<'env>> {
  if !is(&value, ValueType::Object) {
    return Err(refused(format!(
      "Expected '{what}' to be an object, got {}",
      type_name(&value)
    )));
  }
  Object::from_unknown(value).map_err(|_| refused(format!("Expected '{what}' to be an object")))
}

/// A string property of an object argument.
pub fn field(object: &Object, key: &str) -> client::Result<String> {
  let value: Unknown = object
    .get_named_property(key)
    .map_err(|_| refused(format!("Could not read '{key}'")))?;
  string(value, key)
}

/// An optional number argument or property, finite, within `min..=max`.
pub fn number(value: Unknown, what: &str, min: f64, max: f64) -> client::Result<Option<f64>> {
  if is_nullish(&value) {
    return Ok(None);
  }
  let n = if is(&value, ValueType::Number) {
    f64::from_unknown(value).ok()
  } else {
    None
  };
  match n {
    Some(n) if n.is_finite() && n >= min && n <= max => Ok(Some(n)),
    _ => Err(refused(format!(
      "Expected '{what}' to be a number from {min} to {max}"
    ))),
  }
}

/// The bytes of an `ArrayBuffer` or of a view on one (a `Uint8Array`, a
/// `Buffer`, any typed array or a `DataView`).
pub fn bytes(value: Unknown, what: &str) -> client::Result<Vec<u8>> {
  let wrong = || {
    refused(format!(
      "Expected '{what}' to be an ArrayBuffer or a typed array"
    ))
  };
  let (env, raw) = (value.env(), value.raw());
  let mut data = std::ptr::null_mut();
  let mut length = 0usize;
  let mut is = false;
  // Safety: plain Node-API queries on a value of this call's scope; the
  // bytes are copied out before returning.
  unsafe {
    if sys::napi_is_arraybuffer(env, raw, &mut is) == sys::Status::napi_ok && is {
      if sys::napi_get_arraybuffer_info(env, raw, &mut data, &mut length) != sys::Status::napi_ok {
        return Err(wrong());
      }
    } else if sys::napi_is_typedarray(env, raw, &mut is) == sys::Status::napi_ok && is {
      let mut kind = 0;
      let mut count = 0usize;
      let mut buffer = std::ptr::null_mut();
      let mut offset = 0usize;
      if sys::napi_get_typedarray_info(
        env,
        raw,
        &mut kind,
        &mut count,
        &mut data,
        &mut buffer,
        &mut offset,
      ) != sys::Status::napi_ok
      {
        return Err(wrong());
      }
      // `data` already points at the view's first element.
      length = count * element_size(kind);
    } else if sys::napi_is_dataview(env, raw, &mut is) == sys::Status::napi_ok && is {
      let mut buffer = std::ptr::null_mut();
      let mut offset = 0usize;
      if sys::napi_get_dataview_info(env, raw, &mut length, &mut data, &mut buffer, &mut offset)
        != sys::Status::napi_ok
      {
        return Err(wrong());
      }
    } else {
      return Err(wrong());
    }
    if length == 0 || data.is_null() {
      return Ok(Vec::new());
    }
    Ok(std::slice::from_raw_parts(data as *const u8, length).to_vec())
  }
}

/// Bytes per element of a typed array kind (`napi_typedarray_type`).
fn element_size(kind: sys::napi_typedarray_type) -> usize {
  match kind {
    sys::TypedarrayType::int8_array
    | sys::TypedarrayType::uint8_array
    | sys::TypedarrayType::uint8_clamped_array => 1,
    sys::TypedarrayType::int16_array | sys::TypedarrayType::uint16_array => 2,
    sys::TypedarrayType::int32_array
    | sys::TypedarrayType::uint32_array
    | sys::TypedarrayType::float32_array => 4,
    _ => 8,
  }
}

/// An instance of the `#[napi]` class `T` (e.g. a `User` or `Credentials`).
pub fn instance<'env, T>(
  env: &Env,
  value: Unknown<'env>,
  what: &str,
  class: &str,
) -> client::Result<ClassInstance<'env, T>>
where
  T: JavaScriptClassExt + 'env,
  ClassInstance<'env, T>: FromNapiValue,
{
  let wrong = || {
    refused(format!(
      "Expected '{what}' to be a {class}, got {}",
      type_name(&value)
    ))
  };
  if !T::instance_of(env, &value).unwrap_or(false) {
    return Err(wrong());
  }
  // Safety: an instance of `T` by its prototype chain, on this thread; the
  // conversion also checks that it wraps a native value with `T`'s type tag.
  unsafe { ClassInstance::<T>::from_napi_value(env.raw(), value.raw()) }.map_err(|_| wrong())
}

/// The caller's AbortSignal, hooked for one call.
struct AbortHook {
  fired: watch::Receiver<bool>,
  signal: ObjectRef<false>,
  listener: ObjectRef<false>,
}

/// The options of one async call.
pub struct Call {
  timeout: Duration,
  hook: Option<AbortHook>,
  /// Set when the call must fail before starting (a refused option, an
  /// already-aborted signal).
  refused: Option<client::Error>,
  /// An already-aborted signal's `reason`, as `{ reason }` (any JS value).
  reason: Option<ObjectRef<false>>,
}

fn aborted() -> client::Error {
  client::Error::new(client::ErrorCode::Aborted, "The operation was aborted")
}

type ListenerFn<'env> = Function<'env, FnArgs<(&'static str, Unknown<'env>)>, Unknown<'env>>;

fn listener_method<'env>(signal: &Object<'env>, name: &str) -> Result<ListenerFn<'env>> {
  let method: Unknown = signal.get_named_property(name)?;
  if !matches!(method.get_type(), Ok(ValueType::Function)) {
    return Err(Error::new(
      Status::InvalidArg,
      format!("signal has no {name}"),
    ));
  }
  // Safety: checked to be a function just above.
  unsafe { method.cast() }
}

impl Call {
  /// Reads the optional last argument of a method of an App whose timeout is
  /// `default_timeout`.
  pub fn new(env: &Env, default_timeout: Duration, options: Option<Unknown>) -> Call {
    let mut call = Call {
      timeout: default_timeout,
      hook: None,
      refused: None,
      reason: None,
    };
    if let Err(err) = call.read(env, options) {
      call.refused = Some(err);
    }
    call
  }

  fn read(&mut self, env: &Env, options: Option<Unknown>) -> client::Result<()> {
    let Some(options) = options.filter(|o| !is_nullish(o)) else {
      return Ok(());
    };
    let options = object(options, "options")?;
    let timeout: Unknown = options
      .get_named_property("timeout")
      .map_err(|_| refused("Could not read 'timeout'"))?;
    if let Some(ms) = number(timeout, "timeout", 1.0, u32::MAX as f64)? {
      self.timeout = Duration::from_millis(ms as u64);
    }
    let signal: Unknown = options
      .get_named_property("signal")
      .map_err(|_| refused("Could not read 'signal'"))?;
    if is_nullish(&signal) {
      return Ok(());
    }
    let not_a_signal = || refused("Expected 'signal' to be an AbortSignal");
    let signal = object(signal, "signal").map_err(|_| not_a_signal())?;
    let is_aborted: Unknown = signal
      .get_named_property("aborted")
      .map_err(|_| not_a_signal())?;
    if !is(&is_aborted, ValueType::Boolean) {
      return Err(not_a_signal());
    }
    if bool::from_unknown(is_aborted).unwrap_or(false) {
      // fetch rejects with the signal's reason: keep it for the rejection.
      if let Ok(reason) = signal.get_named_property::<Unknown>("reason")
        && !matches!(reason.get_type(), Ok(ValueType::Undefined))
      {
        self.reason = hold(env, reason);
      }
      return Err(aborted());
    }
    let (tx, fired) = watch::channel(false);
    let hook = (|| -> Result<AbortHook> {
      let listener = env.create_function_from_closure::<(), (), _>("onabort", move |_| {
        let _ = tx.send(true);
        Ok(())
      })?;
      let listener = Object::from_unknown(listener.to_unknown())?;
      listener_method(&signal, "addEventListener")?
        .apply(signal, FnArgs::from(("abort", listener.to_unknown())))?;
      Ok(AbortHook {
        fired,
        signal: signal.create_ref()?,
        listener: listener.create_ref()?,
      })
    })()
    .map_err(|_| not_a_signal())?;
    self.hook = Some(hook);
    Ok(())
  }
}

impl Call {
  /// False when the call will reject without running: code with an effect
  /// before the call starts (a local logout) checks this first.
  pub fn is_accepted(&self) -> bool {
    self.refused.is_none()
  }
}

/// A reference that keeps any JS value (objects and primitives alike) alive
/// until the call settles: the value is held as `{ value }`.
fn hold(env: &Env, value: Unknown) -> Option<ObjectRef<false>> {
  let mut holder = Object::new(env).ok()?;
  holder.set_named_property("value", value).ok()?;
  holder.create_ref().ok()
}

fn held<'env>(env: &'env Env, holder: &ObjectRef<false>) -> Option<Unknown<'env>> {
  (holder.get_value(env).ok()).and_then(|h| h.get_named_property::<Unknown>("value").ok())
}

/// Clears the exception a getter or method of an argument threw while the
/// arguments were read, and holds it for the rejection.
fn take_exception(env: &Env) -> Option<ObjectRef<false>> {
  let mut pending = false;
  unsafe { sys::napi_is_exception_pending(env.raw(), &mut pending) };
  if !pending {
    return None;
  }
  let mut error = std::ptr::null_mut();
  if unsafe { sys::napi_get_and_clear_last_exception(env.raw(), &mut error) }
    != sys::Status::napi_ok
  {
    return None;
  }
  // Safety: a value Node-API just handed out, in this call's scope.
  hold(env, unsafe {
    Unknown::from_raw_unchecked(env.raw(), error)
  })
}

impl AbortHook {
  /// The signal's `reason`, unless it has none.
  fn reason<'env>(&self, env: &'env Env) -> Option<Unknown<'env>> {
    let signal = self.signal.get_value(env).ok()?;
    let reason: Unknown = signal.get_named_property("reason").ok()?;
    (!matches!(reason.get_type(), Ok(ValueType::Undefined))).then_some(reason)
  }

  /// Removes the listener and releases the references (on the JS thread).
  fn release(self, env: &Env) {
    if let (Ok(signal), Ok(listener)) = (self.signal.get_value(env), self.listener.get_value(env))
      && let Ok(remove) = listener_method(&signal, "removeEventListener")
    {
      let _ = remove.apply(signal, FnArgs::from(("abort", listener.to_unknown())));
    }
    // A signal-like object's getter or listener method may have thrown.
    settle::set_aside_exception(env);
    let _ = self.signal.unref(env);
    let _ = self.listener.unref(env);
  }
}

/// Runs `fut` under `call`: within its deadline, raced against its signal
/// (dropping the future cancels the HTTP request), and settles the promise on
/// the JS thread. `args` carries the argument checks: if they failed, the
/// promise rejects and nothing runs. If reading the arguments ran JS that
/// threw (a getter, a signal's `addEventListener`, an ObjectId's
/// `toHexString`), the promise rejects with what it threw, as an `async`
/// function would; it never throws, and whatever was hooked is released.
pub fn run<'env, A, T, V, F, Fut, C>(
  env: &'env Env,
  call: Call,
  args: client::Result<A>,
  fut: F,
  to_js: C,
) -> Result<PromiseRaw<'env, V>>
where
  A: Send + 'static,
  T: Send + 'static,
  V: ToNapiValue,
  F: FnOnce(A) -> Fut + Send + 'static,
  Fut: Future<Output = client::Result<T>> + Send + 'static,
  C: FnOnce(&Env, T) -> Result<V> + Send + 'static,
{
  // First: with an exception pending, every Node-API call below would fail.
  let thrown = take_exception(env);
  let Call {
    timeout,
    hook,
    refused,
    reason,
  } = call;
  let fired = hook.as_ref().map(|h| h.fired.clone());
  let checked = match (refused, &thrown) {
    (_, Some(_)) => Err(self::refused("An argument's getter or method threw")),
    (Some(err), None) => Err(err),
    (None, None) => args,
  };
  let work = async move {
    let args = checked?;
    let cancelled = async move {
      match fired {
        Some(mut rx) => {
          let _ = rx.wait_for(|fired| *fired).await;
        }
        None => std::future::pending().await,
      }
    };
    // Boxed where it starts, on the runtime: the request's state machine is
    // kilobytes, and without the box every move of `work` on its way there
    // (into the task, on the JS thread) copies all of it.
    Box::pin(async move {
      let started = std::time::Instant::now();
      let result = tokio::select! {
        result = client::within(timeout, fut(args)) => result,
        () = cancelled => Err(aborted()),
      };
      if let Err(err) = &result
        && matches!(
          err.code,
          client::ErrorCode::Aborted | client::ErrorCode::Timeout
        )
      {
        client::log::debug(|| {
          let how = if err.code == client::ErrorCode::Aborted {
            "was aborted"
          } else {
            "timed out"
          };
          format!(
            "a call {how} after {:.2} ms: {}",
            started.elapsed().as_secs_f64() * 1e3,
            err.message
          )
        });
      }
      result
    })
    .await
  };
  settle::promise(env, work, move |env, result| {
    let result = result.unwrap_or_else(|settle::Panicked(message)| {
      Err(client::Error::new(
        client::ErrorCode::Internal,
        format!("realm-auth-native panicked: {message}"),
      ))
    });
    // As fetch does, an aborted call rejects with its signal's reason when
    // the signal has one (`AbortSignal.timeout()` gives a `TimeoutError`).
    let rejection = match &result {
      _ if thrown.is_some() => thrown.as_ref().and_then(|h| held(env, h)),
      Err(err) if err.code == client::ErrorCode::Aborted => (reason.as_ref())
        .and_then(|holder| held(env, holder))
        .or_else(|| hook.as_ref().and_then(|h| h.reason(env))),
      _ => None,
    };
    if let Some(hook) = hook {
      hook.release(env);
    }
    for holder in [reason, thrown].into_iter().flatten() {
      let _ = holder.unref(env);
    }
    if let Some(value) = rejection {
      return Err(settle::reject_with(value));
    }
    match result {
      Ok(value) => to_js(env, value),
      Err(err) => Err(to_js_error(env, err)),
    }
  })
}

/// [`run`] for calls that resolve with nothing.
pub fn run_void<'env, A, F, Fut>(
  env: &'env Env,
  call: Call,
  args: client::Result<A>,
  fut: F,
) -> Result<PromiseRaw<'env, ()>>
where
  A: Send + 'static,
  F: FnOnce(A) -> Fut + Send + 'static,
  Fut: Future<Output = client::Result<()>> + Send + 'static,
{
  run(env, call, args, fut, |_, ()| Ok(()))
}
