//! `REALM_AUTH_EMULATOR_HOST` in a process of its own: the variable is
//! process-wide, and every App without a base URL in this binary sees it.

use std::sync::{Arc, Mutex};

use realm_auth_client::AppConfig;
use realm_auth_client::log::{self, Level};

#[test]
fn an_app_sent_to_the_emulator_by_the_variable_is_warned_about_once_per_address() {
  let warnings = Arc::new(Mutex::new(Vec::new()));
  log::set_level(Level::Warn);
  log::set_sink(Some({
    let warnings = warnings.clone();
    Arc::new(move |level, _, message: &str| {
      if level == Level::Warn {
        warnings.lock().unwrap().push(message.to_owned());
      }
    })
  }));
  // SAFETY: the only test of this binary; no other thread reads the environment.
  unsafe { std::env::set_var("REALM_AUTH_EMULATOR_HOST", "127.0.0.1:9191") };
  for _ in 0..3 {
    let config = AppConfig::new("app", None, None).unwrap();
    assert_eq!(config.base_url, "http://127.0.0.1:9191");
  }
  AppConfig::new("app", Some("https://example.com"), None).unwrap();
  assert_eq!(
    *warnings.lock().unwrap(),
    [
      "REALM_AUTH_EMULATOR_HOST is set: Apps without a baseUrl talk to the emulator at \
      http://127.0.0.1:9191, not to https://services.cloud.mongodb.com"
    ]
  );
  // SAFETY: as above.
  unsafe { std::env::set_var("REALM_AUTH_EMULATOR_HOST", "http://localhost:9292") };
  AppConfig::new("app", None, None).unwrap();
  AppConfig::new("other", None, None).unwrap();
  let warnings = warnings.lock().unwrap();
  assert_eq!(warnings.len(), 2, "{warnings:?}");
  assert!(warnings[1].contains("http://localhost:9292"));
  log::set_sink(None);
}
