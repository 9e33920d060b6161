//! realm-auth-server-node: the napi-rs binding of the `realm-auth-server` npm
//! package: the App Services server in the Node process (the `Emulator` class,
//! which also runs `serve`) and the admin commands. One file per JS class
//! (`emulator`) or function (`admin`); no HTTP here (the server crate serves);
//! JS errors are built in `js_error`.
#![deny(clippy::all)]

mod admin;
mod emulator;
mod js_error;

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// Brands this package's errors the way `realm-auth-native` brands its own,
/// so that its `isRealmAuthError` and `instanceof RealmAuthError` recognise
/// them as before the split, and makes `util.inspect` of an `Emulator` show
/// where it serves which app.
#[napi(module_exports)]
pub fn module_exports(exports: Object) -> Result<()> {
  let env = Env::from_raw(exports.env());
  // The client's brand is a registered symbol: the same one reaches both addons.
  let mark: Unknown = env.run_script(
    "(function () { const brand = Symbol.for('realm-auth-native.error'); \
       return (error) => { Object.defineProperty(error, brand, { value: true }); }; })()",
  )?;
  js_error::set_marker(&env, mark)?;
  let readable: Function<Unknown, ()> = env.run_script(
    "(function (C) { const custom = Symbol.for('nodejs.util.inspect.custom'); \
       const fields = C.prototype.inspectFields; delete C.prototype.inspectFields; \
       Object.defineProperty(C.prototype, custom, { configurable: true, writable: true, \
         value: function (depth, options, inspect) { return `Emulator ${inspect(Object.fromEntries(fields.call(this)), options)}`; } }); })",
  )?;
  readable.call(exports.get_named_property::<Unknown>("Emulator")?)?;
  Ok(())
}
