//! Debug builds only: ways to make each boundary of the addon panic, so that
//! the tests can check that a panic (a bug of ours) becomes an error in JS
//! and never aborts Node. Release builds have none of this.

use std::time::Duration;

use napi::bindgen_prelude::*;
use napi_derive::napi;

use crate::call::{Call, run};
use crate::settle::JsThread;

/// Panics where `place` says: `"sync"` in this synchronous call (it throws),
/// `"call"` in the call's future and `"settle"` while its result becomes a JS
/// value (the promise rejects with `ErrorCode.Internal`), `"event"` in a job
/// run on the JS thread later (an uncaught exception). Resolves with 1 when
/// nothing panicked.
#[napi(catch_unwind, js_name = "__panicAt", skip_typescript)]
pub fn panic_at<'env>(env: &'env Env, place: String) -> Result<PromiseRaw<'env, u32>> {
  let call = Call::new(env, Duration::from_secs(5), None);
  match place.as_str() {
    "sync" => panic!("a test panic in a synchronous method"),
    "event" => JsThread::of(env)?.run(Box::new(|_| panic!("a test panic in an event"))),
    _ => {}
  }
  run(
    env,
    call,
    Ok(place),
    |place| async move {
      tokio::task::yield_now().await;
      if place == "call" {
        panic!("a test panic in a call");
      }
      Ok(place)
    },
    |_, place| {
      if place == "settle" {
        panic!("a test panic while settling");
      }
      Ok(1)
    },
  )
}
