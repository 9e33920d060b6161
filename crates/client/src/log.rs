//! Logging: nothing is written unless the embedding installs a sink (the Node
//! binding's `setLogger`). Messages name requests by method, URL and status;
//! they never contain a token, key value or password.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, RwLock};

/// How much to log.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
  /// Everything, including each request.
  Trace = 1,
  /// Requests, locations and sessions.
  Debug = 2,
  /// Refreshes, logins and logouts.
  Info = 3,
  /// Retries and sessions the server refused.
  Warn = 4,
  /// Failures only.
  Error = 5,
  /// Nothing.
  Off = 6,
}

impl Level {
  /// realm v12's name for the level.
  pub fn name(self) -> &'static str {
    match self {
      Level::Trace => "trace",
      Level::Debug => "debug",
      Level::Info => "info",
      Level::Warn => "warn",
      Level::Error => "error",
      Level::Off => "off",
    }
  }

  /// Reads realm v12's level names (`all`, `trace`, `debug`, `detail`, `info`,
  /// `warn`, `error`, `fatal`, `off`).
  pub fn from_name(name: &str) -> Option<Level> {
    Some(match name {
      "all" | "trace" => Level::Trace,
      "debug" | "detail" => Level::Debug,
      "info" => Level::Info,
      "warn" => Level::Warn,
      "error" | "fatal" => Level::Error,
      "off" => Level::Off,
      _ => return None,
    })
  }
}

/// Where log lines go.
pub type Sink = Arc<dyn Fn(Level, &str) + Send + Sync>;

static LEVEL: AtomicU8 = AtomicU8::new(Level::Info as u8);
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sets the least severe level that is logged (default `Info`; nothing is
/// logged anyway until a sink is set).
pub fn set_level(level: Level) {
  LEVEL.store(level as u8, Ordering::Relaxed);
}

/// Installs (or with `None`, removes) the process-wide sink.
pub fn set_sink(sink: Option<Sink>) {
  *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Logs the message `make` builds, if `level` is enabled and a sink is set.
pub(crate) fn log(level: Level, make: impl FnOnce() -> String) {
  if (level as u8) < LEVEL.load(Ordering::Relaxed) {
    return;
  }
  let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
  if let Some(sink) = sink {
    sink(level, &make());
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::Mutex;

  #[test]
  fn filters_by_level_and_only_with_a_sink() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    log(Level::Error, || "nobody listens".into());
    let sink = seen.clone();
    // Other tests of this crate may log meanwhile (the sink is process-wide):
    // keep only this test's lines.
    set_sink(Some(Arc::new(move |level, message: &str| {
      if ["nobody listens", "too low", "shown", "off"].contains(&message) {
        sink.lock().unwrap().push((level, message.to_owned()))
      }
    })));
    set_level(Level::Warn);
    log(Level::Info, || "too low".into());
    log(Level::Warn, || "shown".into());
    set_level(Level::Off);
    log(Level::Error, || "off".into());
    set_sink(None);
    set_level(Level::Info);
    assert_eq!(
      *seen.lock().unwrap(),
      vec![(Level::Warn, "shown".to_owned())]
    );
    assert_eq!(Level::from_name("detail"), Some(Level::Debug));
    assert_eq!(Level::from_name("loud"), None);
  }
}
