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
/// `body`, and an `AbortSignal.timeout` for the attempt's deadline) and
/// answers with JSON: the status, the headers and the text of the body (read
/// only when there is a `content-type`, as in realm v12), or why it failed.
const BRIDGE: &str = r#"(function (fetch) {
  return async function realmAuthFetch(url, method, headers, body, timeoutMs) {
    try {
      const response = await fetch(url, {
        method,
        headers: JSON.parse(headers),
        body: body === null ? undefined : body,
        signal: timeoutMs > 0 ? AbortSignal.timeout(timeoutMs) : undefined,
      });
      const out = {};
      response.headers.forEach((value, key) => { out[key.toLowerCase()] = value; });
      const text = out["content-type"] ? await response.text() : "";
      return JSON.stringify({ status: response.status, headers: out, body: text });
    } catch (err) {
      return JSON.stringify({ error: String((err && err.message) || err || "Unknown") });
    }
  };
})"#;

type Args = FnArgs<(String, String, String, Option<String>, f64)>;
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
}

/// A JS `fetch` as the client's transport.
struct JsFetch {
  bridge: Arc<BridgeFn>,
}

impl client::Fetch for JsFetch {
  fn fetch(
    &self,
    request: client::FetchRequest,
  ) -> Pin<Box<dyn Future<Output = std::result::Result<client::FetchResponse, String>> + Send>> {
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
      let gone = |e: Error| format!("the fetch function could not be called: {}", e.reason);
      let promise = bridge.call_async(args).await.map_err(gone)?;
      let json = promise.await.map_err(gone)?;
      let answer: Answer = serde_json::from_str(&json).map_err(|e| e.to_string())?;
      match (answer.error, answer.status) {
        (Some(error), _) => Err(error),
        (None, Some(status)) => Ok(client::FetchResponse {
          status,
          headers: answer.headers.into_iter().collect(),
          body: answer.body,
        }),
        (None, None) => Err("the fetch function answered without a status".to_owned()),
      }
    })
  }
}

/// Wraps the `fetch` option of `new App(...)` (checked to be a function).
pub fn custom_fetch(env: &Env, fetch: Unknown) -> Result<client::CustomFetch> {
  let factory: Function<Unknown, Function<Args, Promise<String>>> = env.run_script(BRIDGE)?;
  let bridge = factory.call(fetch)?;
  let bridge: BridgeFn = bridge
    .build_threadsafe_function::<Args>()
    .callee_handled::<false>()
    .weak::<true>()
    .build()?;
  Ok(client::CustomFetch(Arc::new(JsFetch {
    bridge: Arc::new(bridge),
  })))
}
