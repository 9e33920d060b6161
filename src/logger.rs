//! `setLogLevel` and `setLogger`, as realm v12 has them: levels and categories
//! by realm's names, a logger taking `({ category, level, message })` or the
//! older `(level, message)`, and realm v12's default (the console, at `warn`).
//! No line carries a secret.

// napi registers these functions only outside `cfg(test)`; a test build of
// the crate sees no caller.
#![cfg_attr(test, allow(dead_code))]

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use napi::bindgen_prelude::*;
use napi::threadsafe_function::{ThreadsafeFunction, ThreadsafeFunctionCallMode};
use napi_derive::napi;
use realm_auth_client::log::{self, Category, Level};

use crate::call::{self, refused};
use crate::js_error::throw;

/// One log line, as realm v12's `LogEntry`.
#[napi(object)]
pub struct LogEntry {
  /// Where it comes from: `"Realm.App"` (requests, sessions, logins) or
  /// `"Realm.SDK"` (the user store, the app cache).
  #[napi(ts_type = "LogCategory")]
  pub category: String,
  /// How severe it is.
  #[napi(ts_type = "LogLevel")]
  pub level: String,
  /// The line itself.
  pub message: String,
}

/// realm v12's `NumericLogLevel`: the log levels as numbers, least to most severe.
#[napi]
pub enum NumericLogLevel {
  /// Everything.
  All = 0,
  /// Each step of each request.
  Trace = 1,
  /// Requests, locations and sessions.
  Debug = 2,
  /// As `Debug` here.
  Detail = 3,
  /// Refreshes, logins and logouts.
  Info = 4,
  /// Retries, refused sessions, a corrupt user store (the default).
  Warn = 5,
  /// Failures only.
  Error = 6,
  /// As `Error` here.
  Fatal = 7,
  /// Nothing.
  Off = 8,
}

/// realm v12's default logger: `[category - level] message` on the console.
const DEFAULT_LOGGER: &str = "(function defaultLogger({ category, level, message }) {
  const line = `[${category} - ${level}] ${message}`;
  if (level === 'error' || level === 'fatal') console.error(line);
  else if (level === 'warn') console.warn(line);
  else console.log(line);
})";

/// Sets the least severe level that is logged: `"all"`, `"trace"`, `"debug"`,
/// `"detail"`, `"info"`, `"warn"` (the default, as in realm v12), `"error"`,
/// `"fatal"` or `"off"`, in `category` and the categories below it (default
/// `"Realm"`: all). Process-wide.
#[napi(catch_unwind, ts_args_type = "level: LogLevel, category?: LogCategory")]
pub fn set_log_level(env: Env, level: Unknown, category: Option<Unknown>) -> Result<()> {
  let category = match category.filter(|c| !call::is_nullish(c)) {
    Some(c) => throw(&env, call::string(c, "category"))?,
    None => "Realm".to_owned(),
  };
  let level = call::string(level, "level").and_then(|name| {
    Level::from_name(&name).ok_or_else(|| refused(format!("Unknown log level '{name}'")))
  });
  let level = throw(&env, level)?;
  if !log::set_level_of(level, &category) {
    // realm v12's words.
    return throw(
      &env,
      Err(refused(format!("Unexpected log category: '{category}'"))),
    );
  }
  Ok(())
}

type PairFn =
  ThreadsafeFunction<FnArgs<(String, String)>, (), FnArgs<(String, String)>, Status, false, true>;
type EntryFn = ThreadsafeFunction<LogEntry, (), LogEntry, Status, false, true>;

/// Installs `logger` for the client's log lines, or with `null` removes every
/// logger (nothing is logged then). Like realm v12, a function of two
/// parameters is called `(level, message)`, any other `({ category, level,
/// message })`. Calls arrive on the thread that set the logger, without
/// keeping the process alive. Process-wide.
#[napi(catch_unwind, ts_args_type = "logger: LoggerCallback | null")]
pub fn set_logger(env: Env, logger: Unknown) -> Result<()> {
  DECIDED.store(true, Ordering::Relaxed);
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
  install(logger)
}

/// Set once a logger was installed or removed in this process: the default
/// is installed by the first load of the addon only, so that a Worker loading
/// it later neither replaces the application's logger nor brings back the
/// one it removed.
static DECIDED: AtomicBool = AtomicBool::new(false);

/// Installs realm v12's default logger, the first time the addon loads in
/// this process (the logger is process-wide).
pub fn install_default(env: &Env) -> Result<()> {
  if DECIDED.swap(true, Ordering::Relaxed) {
    return Ok(());
  }
  install(env.run_script::<_, Unknown>(DEFAULT_LOGGER)?)
}

/// Installs a JS function, told apart by its arity as realm v12 does.
fn install(logger: Unknown) -> Result<()> {
  let arity: u32 = Object::from_unknown(logger)?.get_named_property("length")?;
  if arity == 2 {
    // Safety: the callers checked that `logger` is a function.
    let function = unsafe { logger.cast::<Function<FnArgs<(String, String)>, ()>>() }?;
    let tsfn: PairFn = function
      .build_threadsafe_function::<FnArgs<(String, String)>>()
      .callee_handled::<false>()
      .weak::<true>()
      .build()?;
    log::set_sink(Some(Arc::new(
      move |level: Level, _: Category, message: &str| {
        let _ = tsfn.call(
          FnArgs::from((level.name().to_owned(), message.to_owned())),
          ThreadsafeFunctionCallMode::NonBlocking,
        );
      },
    )));
  } else {
    // Safety: as above.
    let function = unsafe { logger.cast::<Function<LogEntry, ()>>() }?;
    let tsfn: EntryFn = function
      .build_threadsafe_function::<LogEntry>()
      .callee_handled::<false>()
      .weak::<true>()
      .build()?;
    log::set_sink(Some(Arc::new(
      move |level: Level, category: Category, message: &str| {
        let entry = LogEntry {
          category: category.name().to_owned(),
          level: level.name().to_owned(),
          message: message.to_owned(),
        };
        let _ = tsfn.call(entry, ThreadsafeFunctionCallMode::NonBlocking);
      },
    )));
  }
  Ok(())
}
