//! Logging, with realm v12's levels and categories: nothing is written unless
//! the embedding installs a sink (the Node binding installs realm v12's
//! console logger at load). Messages name requests by method, URL and status;
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

/// realm v12's log categories (`LogCategory`): the tree `setLogLevel` takes.
pub const CATEGORIES: &[&str] = &[
  "Realm",
  "Realm.Storage",
  "Realm.Storage.Transaction",
  "Realm.Storage.Query",
  "Realm.Storage.Object",
  "Realm.Storage.Notification",
  "Realm.Sync",
  "Realm.Sync.Client",
  "Realm.Sync.Client.Session",
  "Realm.Sync.Client.Changeset",
  "Realm.Sync.Client.Network",
  "Realm.Sync.Client.Reset",
  "Realm.Sync.Server",
  "Realm.App",
  "Realm.SDK",
];

/// The categories this client writes to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Category {
  /// Requests, locations, sessions and logins (`Realm.App`, as realm-core's app logs).
  App = 0,
  /// The SDK around them: the user store and the app cache (`Realm.SDK`).
  Sdk = 1,
}

impl Category {
  /// realm v12's name.
  pub fn name(self) -> &'static str {
    match self {
      Category::App => "Realm.App",
      Category::Sdk => "Realm.SDK",
    }
  }
}

/// Where log lines go: level, category, message.
pub type Sink = Arc<dyn Fn(Level, Category, &str) + Send + Sync>;

/// The threshold of each category (realm v12's default: `warn`).
static LEVELS: [AtomicU8; 2] = [
  AtomicU8::new(Level::Warn as u8),
  AtomicU8::new(Level::Warn as u8),
];
static SINK: RwLock<Option<Sink>> = RwLock::new(None);

/// Sets the least severe level that is logged in `category` and every
/// category below it (`"Realm"`: all), as realm v12's `setLogLevel`.
/// Returns false for a name that is not one of [`CATEGORIES`].
pub fn set_level_of(level: Level, category: &str) -> bool {
  if !CATEGORIES.contains(&category) {
    return false;
  }
  for c in [Category::App, Category::Sdk] {
    let name = c.name();
    if name == category || name.starts_with(&format!("{category}.")) {
      LEVELS[c as usize].store(level as u8, Ordering::Relaxed);
    }
  }
  true
}

/// Sets the least severe level that is logged in every category.
pub fn set_level(level: Level) {
  set_level_of(level, "Realm");
}

/// Installs (or with `None`, removes) the process-wide sink.
pub fn set_sink(sink: Option<Sink>) {
  *SINK.write().unwrap_or_else(|e| e.into_inner()) = sink;
}

/// Logs a warning of the embedding's (the Node binding's) in `Realm.SDK`.
pub fn warn(message: &str) {
  log(Category::Sdk, Level::Warn, || message.to_owned());
}

/// Logs a debug line of the embedding's in `Realm.App` (a call's end).
pub fn debug(make: impl FnOnce() -> String) {
  log(Category::App, Level::Debug, make);
}

/// Logs the message `make` builds in `category`, if `level` is enabled there
/// and a sink is set.
pub(crate) fn log(category: Category, level: Level, make: impl FnOnce() -> String) {
  if (level as u8) < LEVELS[category as usize].load(Ordering::Relaxed) {
    return;
  }
  let sink = SINK.read().unwrap_or_else(|e| e.into_inner()).clone();
  if let Some(sink) = sink {
    sink(level, category, &make());
  }
}

#[cfg(test)]
mod tests {
  use super::*;
  use std::sync::Mutex;

  #[test]
  fn filters_by_level_and_only_with_a_sink() {
    let seen = Arc::new(Mutex::new(Vec::new()));
    log(Category::App, Level::Error, || "nobody listens".into());
    let sink = seen.clone();
    // Other tests of this crate may log meanwhile (the sink is process-wide):
    // keep only this test's lines.
    set_sink(Some(Arc::new(move |level, _, message: &str| {
      if ["nobody listens", "too low", "shown", "off"].contains(&message) {
        sink.lock().unwrap().push((level, message.to_owned()))
      }
    })));
    set_level(Level::Warn);
    log(Category::App, Level::Info, || "too low".into());
    log(Category::App, Level::Warn, || "shown".into());
    set_level(Level::Off);
    log(Category::App, Level::Error, || "off".into());
    set_sink(None);
    set_level(Level::Warn);
    assert_eq!(
      *seen.lock().unwrap(),
      vec![(Level::Warn, "shown".to_owned())]
    );
    assert_eq!(Level::from_name("detail"), Some(Level::Debug));
    // A category's level applies to it and below, not to its siblings.
    assert!(set_level_of(Level::Error, "Realm.App"));
    assert_eq!(
      LEVELS[Category::App as usize].load(Ordering::Relaxed),
      Level::Error as u8
    );
    assert_eq!(
      LEVELS[Category::Sdk as usize].load(Ordering::Relaxed),
      Level::Warn as u8
    );
    assert!(set_level_of(Level::Warn, "Realm"));
    assert!(set_level_of(Level::Warn, "Realm.Sync"));
    assert!(!set_level_of(Level::Warn, "Realm.Nope"));
    assert_eq!(Level::from_name("loud"), None);
  }
}
