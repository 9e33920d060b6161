//! `setLogLevel` and `setLogger`: the client's log lines, handed to a JS
//! callback. Nothing is logged until a logger is set; no line carries a secret.

// napi registers these functions only outside `cfg(test)`; a test build of
// the crate sees no caller.
#![cfg_attr(test, allow(dead_code))]

use std::sync::Arc;

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use realm_auth_client::log::{self, Level};

use crate::call::{self, refused};
use crate::js_error::throw;

/// Sets the least severe level that is logged: `"all"`, `"trace"`, `"debug"`,
/// `"detail"`, `"info"` (the default), `"warn"`, `"error"`, `"fatal"` or `"off"`,
/// as in realm v12. Process-wide.
#[napi(ts_args_type = "level: LogLevel")]
pub fn set_log_level(env: Env, level: Unknown) -> Result<()> {
  let level = call::string(level, "level").and_then(|name| {
    Level::from_name(&name).ok_or_else(|| refused(format!("Unknown log level '{name}'")))
  });
  log::set_level(throw(&env, level)?);
  Ok(())
}

type LoggerFn =
  ThreadsafeFunction<FnArgs<(String, String)>, (), FnArgs<(String, String)>, Status, false, true>;

/// Installs `logger(level, message)` for the client's log lines (requests,
/// retries, refreshes, logouts), or removes it with `null`. Calls arrive on the
/// thread that set the logger, without keeping the process alive. Process-wide.
#[napi(ts_args_type = "logger: ((level: LogLevel, message: string) => void) | null")]
pub fn set_logger(env: Env, logger: Unknown) -> Result<()> {
  if call::is_nullish(&logger) {
    log::set_sink(None);
    return Ok(());
  }
  if !matches!(logger.get_type(), Ok(ValueType::Function)) {
    return throw(
      &env,
      Err(refused("Expected 'logger' to be a function or null")),
    );
  }
  // Safety: checked to be a function just above.
  let function = unsafe { logger.cast::<Function<FnArgs<(String, String)>, ()>>() }?;
  let tsfn: LoggerFn = function
    .build_threadsafe_function::<FnArgs<(String, String)>>()
    .callee_handled::<false>()
    .weak::<true>()
    .build()?;
  log::set_sink(Some(Arc::new(move |level: Level, message: &str| {
    let _ = tsfn.call(
      FnArgs::from((level.name().to_owned(), message.to_owned())),
      ThreadsafeFunctionCallMode::NonBlocking,
    );
  })));
  Ok(())
}
