//! realm-auth-native: the napi-rs binding layer. One file per JS class; no HTTP
//! here (that is the client crate's job); JS errors are built in `js_error`.
#![deny(clippy::all)]

mod api_key_auth;
mod app;
mod call;
mod credentials;
mod email_password_auth;
mod fetch;
mod js_error;
mod listeners;
mod logger;
mod settle;
// Test hooks of debug builds, exported to JS only (so unused in `cargo test`).
#[cfg(all(debug_assertions, not(test)))]
mod testing;
mod user;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// mimalloc for the Rust side: every call allocates on a runtime worker and
/// frees on the JS thread (or the reverse), the case glibc's malloc handles
/// worst. `no_thp`: no transparent huge pages, which cost ~6 MB of RSS here.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Adds the `Auth` namespace object (`Realm.Auth.ApiKeyAuth`,
/// `Realm.Auth.EmailPasswordAuth`), as realm v12 exports it, and installs
/// realm v12's default logger.
#[napi(module_exports)]
pub fn module_exports(mut exports: Object) -> Result<()> {
  let api_key_auth: Unknown = exports.get_named_property("ApiKeyAuth")?;
  let email_password_auth: Unknown = exports.get_named_property("EmailPasswordAuth")?;
  let mut auth = Object::new(&Env::from_raw(exports.env()))?;
  auth.set_named_property("ApiKeyAuth", api_key_auth)?;
  auth.set_named_property("EmailPasswordAuth", email_password_auth)?;
  exports.set_named_property("Auth", auth)?;
  let env = Env::from_raw(exports.env());
  // Node-API methods see a fixed number of arguments: a JS wrapper hands the
  // variadic `callResetPasswordFunction(details, ...args)` its rest as an array.
  let wrap: Function<Unknown, ()> = env.run_script(
    "(function (C) { const call = C.prototype.callResetPasswordFunction; \
     Object.defineProperty(C.prototype, 'callResetPasswordFunction', { configurable: true, writable: true, \
     value: function callResetPasswordFunction(details, ...args) { return call.call(this, details, args); } }); })",
  )?;
  wrap.call(email_password_auth)?;
  // TypeScript's numeric enums map values back to names (`ErrorCode[4334] ===
  // "APIKeyNotFound"`); the objects napi makes do not, so add those entries.
  let reverse: Function<Unknown, ()> = env.run_script(
    "(function (E) { for (const [k, v] of Object.entries(E)) if (typeof v === 'number') E[v] = k; })",
  )?;
  for name in ["ErrorCode", "NumericLogLevel"] {
    reverse.call(exports.get_named_property::<Unknown>(name)?)?;
  }
  // `RealmAuthError`: every error this SDK makes is branded, so that
  // `instanceof RealmAuthError` and `isRealmAuthError` recognise it while it
  // stays an `Error` (a `TypeError` for refused arguments).
  let errors: Object = env.run_script(
    "(function () { const brand = Symbol.for('realm-auth-native.error'); \
       const branded = (value) => value !== null && typeof value === 'object' && value[brand] === true; \
       class RealmAuthError extends Error { \
         constructor() { throw new TypeError('RealmAuthError is not constructible: the SDK makes its errors'); } \
         static [Symbol.hasInstance](value) { return branded(value); } } \
       return { RealmAuthError, isRealmAuthError: function isRealmAuthError(value) { return branded(value); }, \
         mark: (error) => { Object.defineProperty(error, brand, { value: true }); } }; })()",
  )?;
  exports.set_named_property(
    "RealmAuthError",
    errors.get_named_property::<Unknown>("RealmAuthError")?,
  )?;
  exports.set_named_property(
    "isRealmAuthError",
    errors.get_named_property::<Unknown>("isRealmAuthError")?,
  )?;
  js_error::set_marker(&env, errors.get_named_property::<Unknown>("mark")?)?;
  // A rejection's stack names the code that made the call: the native
  // promise settles with no JS on the stack, so each async method is wrapped
  // in an async function that, on a rejection of this SDK's own, takes a
  // stack there, where V8 adds the caller's `async` frames (about 0.1 µs per
  // call; an Error made at every call would cost 1.4 µs or more). A signal's
  // reason, and any value that is not this SDK's error, passes as it is.
  let stacks: Function<Unknown, ()> = env.run_script(
    "(function (exports) { \
       const methods = { App: ['logIn', 'removeUser', 'deleteUser', 'updateBaseUrl'], \
         User: ['logOut', 'refreshCustomData', 'refreshProfile', 'linkCredentials'], \
         ApiKeyAuth: ['create', 'fetch', 'fetchAll', 'enable', 'disable', 'delete'], \
         EmailPasswordAuth: ['registerUser', 'confirmUser', 'resendConfirmationEmail', 'retryCustomConfirmation', \
           'sendResetPasswordEmail', 'resetPassword', 'callResetPasswordFunction'] }; \
       const ours = (e) => e !== null && typeof e === 'object' && e[Symbol.for('realm-auth-native.error')] === true; \
       for (const [name, list] of Object.entries(methods)) { const proto = exports[name].prototype; \
         for (const method of list) { const call = proto[method]; \
           const wrapped = { async [method](...args) { \
             try { return await call.apply(this, args); } \
             catch (e) { if (ours(e)) { const here = {}; Error.captureStackTrace(here, wrapped); \
               const frames = here.stack.indexOf('\\n'); \
               if (frames >= 0) e.stack = `${e.name}: ${e.message}${here.stack.slice(frames)}`; } \
               throw e; } } }[method]; \
           Object.defineProperty(proto, method, { configurable: true, writable: true, value: wrapped }); } } })",
  )?;
  stacks.call(exports.to_unknown())?;
  // `util.inspect` / `console.log` of the classes show their ids and state
  // (never a token) instead of `User {}`.
  let readable: Function<Unknown, ()> = env.run_script(
    "(function (exports) { const custom = Symbol.for('nodejs.util.inspect.custom'); \
     for (const name of ['App', 'User', 'ApiKeyAuth', 'EmailPasswordAuth']) { \
       const C = exports[name]; const fields = C.prototype.inspectFields; delete C.prototype.inspectFields; \
       Object.defineProperty(C.prototype, custom, { configurable: true, writable: true, \
         value: function (depth, options, inspect) { return `${name} ${inspect(Object.fromEntries(fields.call(this)), options)}`; } }); } })",
  )?;
  readable.call(exports.to_unknown())?;
  logger::install_default(&env)
}

/// Forgets the Apps this process made (realm v12's app cache): the next `App`
/// of an id reads its user store again. Apps and users already held keep
/// working. As realm v12's `Realm.shutdown()`; the process exits by itself
/// without it (nothing here keeps it alive).
#[napi(catch_unwind)]
pub fn shutdown() {
  realm_auth_client::clear_cache();
}
