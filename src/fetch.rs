//! realm v12's `AppConfiguration.fetch`: an App's requests go through a JS
//! function (for interception in tests with msw or nock, custom agents or
//! headers) while tokens, retries, deadlines and parsing stay in Rust. Each
//! request crosses to the JS thread and back once; without the option, the
//! Rust transport sends it.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::ThreadsafeFunction;
use realm_auth_client as client;
use serde::Deserialize;

/// Calls the user's `fetch(url, init)` as realm v12 does (`method`, `headers`,
/// `body`, and an `AbortSignal.timeout` for the attempt's deadline), plus
/// `redirect: "manual"`: the SDK applies its own redirect rule to a 3xx answer
/// (the location request's 301/308 only, never down to http), which a fetch
/// that follows redirects would bypass; and
/// answers with JSON: the status, the headers and the text of the body (read
/// only when there is a `content-type`, as in realm v12), or why it failed.
const BRIDGE: &str = r#"(function (fetch, causes) {
  return async function realmAuthFetch(url, method, headers, body, timeoutMs) {
    try {
      const response = await fetch(url, {
        method,
        headers: JSON.parse(headers),
        body: body === null ? undefined : body,
        signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined,
        redirect: "manual",
      });
      const out = {};
      response.headers.forEach((value, key) => { out[key.toLowerCase()] = value; });
      const text = out["content-type"] ? await response.text() : "";
      return JSON.stringify({ status: response.status, headers: out, body: text });
    } catch (err) {
      return JSON.stringify({ error: String((err && err.message) || err || "Unknown"), cause: causes.keep(err) });
    }
  };
})"#;

/// The failures of this thread's fetch functions, kept by id until the error
/// they cause is built (it takes its `cause` from here), the last 64 at most:
/// a failure that a retry made good is never asked for.
const CAUSES: &str = r#"(function () {
  const kept = new Map();
  let next = 0;
  return {
    keep(err) { next = (next % 0xffffffff) + 1; kept.set(next, err); if (kept.size > 64) kept.delete(kept.keys().next().value); return next; },
    take(id) { const err = kept.get(id); kept.delete(id); return err; },
  };
})()"#;

thread_local! {
  /// This JS thread's cause stash (see [`CAUSES`]).
  static STASH: std::cell::Cell<napi::sys::napi_ref> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// This thread's cause stash, made on first use.
fn stash(env: &Env) -> Result<Object<'_>> {
  let reference = STASH.with(|s| s.get());
  if !reference.is_null() {
    let mut value = std::ptr::null_mut();
    // Safety: on the JS thread; the reference lives as long as the thread.
    unsafe { napi::sys::napi_get_reference_value(env.raw(), reference, &mut value) };
    if !value.is_null() {
      return Ok(Object::from_raw(env.raw(), value));
    }
  }
  let stash: Object = env.run_script(CAUSES)?;
  let mut reference = std::ptr::null_mut();
  napi::check_status!(unsafe {
    napi::sys::napi_create_reference(env.raw(), stash.raw(), 1, &mut reference)
  })?;
  STASH.with(|s| s.set(reference));
  Ok(stash)
}

/// The JS failure behind a custom fetch's error, for its `cause` (JS thread).
pub fn take_cause(env: &Env, id: std::num::NonZeroU32) -> Option<Unknown<'_>> {
  let stash = stash(env).ok()?;
  let take: Function<f64, Unknown> = stash.get_named_property("take").ok()?;
  let cause = take.apply(stash, f64::from(id.get())).ok()?;
  (!matches!(cause.get_type(), Ok(ValueType::Undefined))).then_some(cause)
}

type Args = FnArgs<(String, String, String, Option<String>, f64)>;
/// `BRIDGE` itself: given the user's fetch and the cause stash, the bridge.
type Factory<'env> =
  Function<'env, FnArgs<(Unknown<'env>, Object<'env>)>, Function<'env, Args, Promise<String>>>;
type BridgeFn = ThreadsafeFunction<Args, Promise<String>, Args, Status, false, true>;

/// What the bridge answers.
#[derive(Deserialize)]
struct Answer {
  status: Option<u16>,
  #[serde(default)]
  headers: std::collections::HashMap<String, String>,
  #[serde(default)]
  body: String,
  error: Option<String>,
  cause: Option<u32>,
}

/// A JS `fetch` as the client's transport.
struct JsFetch {
  bridge: Arc<BridgeFn>,
}

impl client::Fetch for JsFetch {
  fn fetch(
    &self,
    request: client::FetchRequest,
  ) -> Pin<
    Box<
      dyn Future<Output = std::result::Result<client::FetchResponse, client::FetchFailure>> + Send,
    >,
  > {
    let bridge = self.bridge.clone();
    Box::pin(async move {
      let headers: serde_json::Map<String, serde_json::Value> = (request.headers.into_iter())
        .map(|(k, v)| (k.to_owned(), v.into()))
        .collect();
      let args = FnArgs::from((
        request.url,
        request.method.to_owned(),
        serde_json::Value::Object(headers).to_string(),
        request.body,
        request.timeout.as_millis() as f64,
      ));
      // Fails when the JS environment is gone (a terminated Worker).
      let failure = |reason: String| client::FetchFailure {
        reason,
        cause: None,
      };
      let gone = |e: Error| {
        failure(format!(
          "the fetch function could not be called: {}",
          e.reason
        ))
      };
      let promise = bridge.call_async(args).await.map_err(gone)?;
      let json = promise.await.map_err(gone)?;
      let answer: Answer = serde_json::from_str(&json).map_err(|e| failure(e.to_string()))?;
      match (answer.error, answer.status) {
        (Some(reason), _) => Err(client::FetchFailure {
          reason,
          cause: answer.cause.and_then(std::num::NonZeroU32::new),
        }),
        (None, Some(status)) => Ok(client::FetchResponse {
          status,
          headers: answer.headers.into_iter().collect(),
          body: answer.body,
        }),
        (None, None) => Err(failure(
          "the fetch function answered without a status".to_owned(),
        )),
      }
    })
  }
}

/// Wraps the `fetch` option of `new App(...)` (checked to be a function).
pub fn custom_fetch(env: &Env, fetch: Unknown) -> Result<client::CustomFetch> {
  let factory: Factory = env.run_script(BRIDGE)?;
  let bridge = factory.call(FnArgs::from((fetch, stash(env)?)))?;
  let bridge: BridgeFn = bridge
    .build_threadsafe_function::<Args>()
    .callee_handled::<false>()
    .weak::<true>()
    .build()?;
  Ok(client::CustomFetch(Arc::new(JsFetch {
    bridge: Arc::new(bridge),
  })))
}
