//! The one place where client errors become JS errors.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;

macro_rules! js_error_codes {
  ($($name:ident = $value:literal, $doc:literal;)*) => {
    /// Numeric error codes carried in `err.code`: realm v12's values (e.g.
    /// `ErrorCode.APIKeyNotFound === 4334`), plus this SDK's own from 4900.
    #[napi]
    #[allow(clippy::upper_case_acronyms)]
    pub enum ErrorCode {
      $(#[doc = $doc] $name = $value,)*
    }
  };
}
client::for_each_error_code!(js_error_codes);

/// Builds the JS error for `err`: an `Error` (a `TypeError` for refused
/// arguments) whose `message` is the server's text, with `code` (number),
/// `statusCode`, `errorCode`, `link`, `method` and `url` where known.
/// Must run on the JS thread.
pub fn to_js_error(env: &Env, err: client::Error) -> Error {
  match build(env, &err) {
    Ok(value) => value,
    // Building the object failed (the env is going away): a plain error still settles the call.
    Err(e) => e,
  }
}

fn build(env: &Env, err: &client::Error) -> Result<Error> {
  let base = Error::new(Status::GenericFailure, err.message.clone());
  let mut obj = if err.code == client::ErrorCode::InvalidArgument {
    let raw = unsafe { JsTypeError::from(base).into_value(env.raw()) };
    if raw.is_null() {
      return Err(Error::new(Status::GenericFailure, err.message.clone()));
    }
    Object::from_raw(env.raw(), raw)
  } else {
    env.create_error(base)?
  };
  if err.code == client::ErrorCode::Aborted {
    obj.set_named_property("name", "AbortError")?;
  }
  if let Some(cause) = err.cause.and_then(|id| crate::fetch::take_cause(env, id)) {
    obj.set_named_property("cause", cause)?;
  }
  mark(env, &obj);
  obj.set_named_property("code", err.code.value())?;
  if let Some(status) = err.status_code {
    obj.set_named_property("statusCode", status as u32)?;
  }
  if let Some(code) = &err.server_error_code {
    obj.set_named_property("errorCode", code.as_str())?;
  }
  if let Some(link) = &err.link {
    obj.set_named_property("link", link.as_str())?;
  }
  if let Some(method) = err.method {
    obj.set_named_property("method", method.as_str())?;
  }
  if let Some(url) = &err.url {
    obj.set_named_property("url", url.as_str())?;
  }
  Ok(Error::from(obj.to_unknown()))
}

/// Throws (from a sync method) the JS error for a client error.
pub fn throw<T>(env: &Env, result: client::Result<T>) -> Result<T> {
  result.map_err(|e| to_js_error(env, e))
}

/// A plain `Error` with `message` and no `code`, for misuse that realm v12
/// reports that way (a listener added twice).
pub fn plain_error(env: &Env, message: &str) -> Error {
  let build = || -> Result<Error> {
    let text = env.create_string(message)?;
    let mut raw = std::ptr::null_mut();
    napi::check_status!(unsafe {
      napi::sys::napi_create_error(env.raw(), std::ptr::null_mut(), text.raw(), &mut raw)
    })?;
    Ok(Error::from(unsafe {
      Unknown::from_raw_unchecked(env.raw(), raw)
    }))
  };
  build().unwrap_or_else(|e| e)
}

thread_local! {
  /// This JS thread's function that brands an error as this SDK's (installed
  /// at load, with `RealmAuthError`).
  static MARK: std::cell::Cell<napi::sys::napi_ref> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Keeps `mark`, the function that brands this SDK's errors (`lib.rs`).
pub fn set_marker(env: &Env, mark: Unknown) -> Result<()> {
  let mut reference = std::ptr::null_mut();
  napi::check_status!(unsafe {
    napi::sys::napi_create_reference(env.raw(), mark.raw(), 1, &mut reference)
  })?;
  MARK.with(|m| m.set(reference));
  Ok(())
}

/// Brands `obj` so that `instanceof RealmAuthError` and `isRealmAuthError`
/// recognise it.
fn mark(env: &Env, obj: &Object) {
  let reference = MARK.with(|m| m.get());
  if reference.is_null() {
    return;
  }
  let raw = env.raw();
  let mut function = std::ptr::null_mut();
  let mut undefined = std::ptr::null_mut();
  let mut result = std::ptr::null_mut();
  // Safety: Node-API calls on the JS thread; the function only defines a property.
  unsafe {
    napi::sys::napi_get_reference_value(raw, reference, &mut function);
    napi::sys::napi_get_undefined(raw, &mut undefined);
    if !function.is_null() {
      let args = [obj.raw()];
      napi::sys::napi_call_function(raw, undefined, function, 1, args.as_ptr(), &mut result);
    }
  }
}
