//! `runAdmin`: the admin commands (`realm-auth-server apps|users|server-keys|sessions …`) for
//! the package's command line, run by the server crate on a blocking thread.
// napi registers the function for Node only: a test build sees it unused.
#![cfg_attr(test, allow(dead_code))]

use napi::bindgen_prelude::*;
use napi_derive::napi;

/// What an admin command printed, and its exit code.
#[napi(object)]
pub struct AdminResult {
  /// 0 ok, 1 failure, 2 bad usage, 3 not found.
  pub exit_code: u8,
  /// Its standard output.
  pub stdout: String,
  /// Its standard error.
  pub stderr: String,
}

/// Runs an admin command on the store it names (`--sqlite`, `--postgres`, `--config`):
/// `args` from the command word on (`["users", "list", "--sqlite", "auth.db"]`), `stdin` what
/// `--password-stdin` reads. The database work runs off the JS thread; the promise resolves
/// with the output and exit code, and rejects only if the command panicked.
#[napi(catch_unwind, ts_return_type = "Promise<AdminResult>")]
pub fn run_admin<'env>(
  env: &'env Env,
  args: Vec<String>,
  stdin: Option<Buffer>,
) -> Result<PromiseRaw<'env, AdminResult>> {
  let input = stdin.map(|b| b.to_vec()).unwrap_or_default();
  env.spawn_future(async move {
    let run = tokio::task::spawn_blocking(move || {
      let (mut out, mut err) = (Vec::new(), Vec::new());
      let code = realm_auth_server::admin::run(args, &mut input.as_slice(), &mut out, &mut err);
      (code, out, err)
    });
    let (exit_code, out, err) = run
      .await
      .map_err(|e| Error::from_reason(format!("the admin command failed: {e}")))?;
    Ok(AdminResult {
      exit_code,
      stdout: String::from_utf8_lossy(&out).into_owned(),
      stderr: String::from_utf8_lossy(&err).into_owned(),
    })
  })
}
