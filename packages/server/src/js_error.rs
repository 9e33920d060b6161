//! The one place where the emulator's failures become JS errors.

use napi::bindgen_prelude::*;

/// `ErrorCode.Internal` of `realm-auth-native`: a bug (plain data that would
/// not serialize), numbered as the client numbers its own bugs.
pub const INTERNAL: u32 = 4905;

thread_local! {
  /// This JS thread's function that brands an error (installed at load).
  static MARK: std::cell::Cell<napi::sys::napi_ref> = const { std::cell::Cell::new(std::ptr::null_mut()) };
}

/// Keeps `mark`, the function that brands this package's errors (`lib.rs`).
pub fn set_marker(env: &Env, mark: Unknown) -> Result<()> {
  let mut reference = std::ptr::null_mut();
  napi::check_status!(unsafe {
    napi::sys::napi_create_reference(env.raw(), mark.raw(), 1, &mut reference)
  })?;
  MARK.with(|m| m.set(reference));
  Ok(())
}

/// Brands `obj` so that `realm-auth-native`'s `isRealmAuthError` and
/// `instanceof RealmAuthError` recognise it.
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

/// The JS error of an emulator failure: a `TypeError` for bad input, else an
/// `Error`, with `message`, the numeric `code` (`EmulatorErrorCode`, or
/// [`INTERNAL`]) and the brand. Must run on the JS thread.
pub fn emulator_error(env: &Env, code: u32, message: &str, bad_input: bool) -> Error {
  let build = || -> Result<Error> {
    let base = Error::new(Status::GenericFailure, message.to_owned());
    let obj = if bad_input {
      let raw = unsafe { JsTypeError::from(base).into_value(env.raw()) };
      if raw.is_null() {
        return Err(Error::new(Status::GenericFailure, message.to_owned()));
      }
      Object::from_raw(env.raw(), raw)
    } else {
      env.create_error(base)?
    };
    mark(env, &obj);
    let mut obj = obj;
    obj.set_named_property("code", code)?;
    Ok(Error::from(obj.to_unknown()))
  };
  // Building the object failed (the env is going away): a plain error still reports it.
  build().unwrap_or_else(|e| e)
}
