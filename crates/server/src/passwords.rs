//! Password hashing: argon2id (PHC strings, the production default) or the emulator's cheap
//! PBKDF2, and the rule that tells a login to rehash a password stored under other settings.
//!
//! Storage stays the `email_accounts` row it always was (`salt`, `hash`, `iterations`), so old
//! rows keep working: a PBKDF2 row holds a hex salt, a hex hash and its iteration count; an
//! argon2id row holds the PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`, which carries its
//! own salt and parameters) in `hash`, an empty `salt` and `iterations` 0. The leading `$` tells
//! them apart: a hex hash never starts with one.

use std::sync::{Mutex, OnceLock};

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};
use serde::{Deserialize, Serialize};

use crate::Config;
use crate::ids::{hex, random_bytes};
use crate::state::{ct_eq, hash_password, new_password_hash};

/// How new passwords are hashed. JSON: `{"algorithm":"argon2id","memoryKib":19456,
/// "iterations":2,"parallelism":1}` or `{"algorithm":"pbkdf2","iterations":1000}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(tag = "algorithm", rename_all = "lowercase", deny_unknown_fields)]
pub enum PasswordHashConfig {
  /// Argon2id (RFC 9106), stored as a PHC string. Defaults are OWASP's minimum.
  #[serde(rename_all = "camelCase")]
  Argon2id {
    /// Memory per hash in KiB (default 19456 = 19 MiB; at least 8 × `parallelism`).
    #[serde(default = "default_memory_kib")]
    memory_kib: u32,
    /// Passes over the memory (default 2; at least 1).
    #[serde(default = "default_argon2_iterations")]
    iterations: u32,
    /// Lanes (default 1; 1 to 16 777 215).
    #[serde(default = "default_parallelism")]
    parallelism: u32,
  },
  /// PBKDF2-HMAC-SHA256 (emulator-grade: cheap logins for tests and benchmarks).
  Pbkdf2 {
    /// Iterations; absent: [`Config::password_iterations`].
    #[serde(default)]
    iterations: Option<u32>,
  },
}

fn default_memory_kib() -> u32 {
  Params::DEFAULT_M_COST
}
fn default_argon2_iterations() -> u32 {
  Params::DEFAULT_T_COST
}
fn default_parallelism() -> u32 {
  Params::DEFAULT_P_COST
}

impl PasswordHashConfig {
  /// OWASP's minimum argon2id settings: 19 MiB, 2 passes, 1 lane (`serve`'s default).
  pub fn owasp_argon2id() -> PasswordHashConfig {
    PasswordHashConfig::Argon2id {
      memory_kib: default_memory_kib(),
      iterations: default_argon2_iterations(),
      parallelism: default_parallelism(),
    }
  }
}

/// The settings in force: `Config::password_hash`, else PBKDF2 with
/// `Config::password_iterations` for the emulator (`control_api`) and argon2id for `serve`.
pub(crate) fn effective(config: &Config) -> PasswordHashConfig {
  match &config.password_hash {
    Some(PasswordHashConfig::Pbkdf2 { iterations: None }) => PasswordHashConfig::Pbkdf2 {
      iterations: Some(config.password_iterations),
    },
    Some(other) => other.clone(),
    None if config.control_api => PasswordHashConfig::Pbkdf2 {
      iterations: Some(config.password_iterations),
    },
    None => PasswordHashConfig::owasp_argon2id(),
  }
}

/// Checks the settings at start (argon2's parameter rules), so a bad file fails there and not
/// at the first registration.
pub(crate) fn validate(config: &Config) -> Result<(), String> {
  match effective(config) {
    PasswordHashConfig::Argon2id {
      memory_kib,
      iterations,
      parallelism,
    } => Params::new(memory_kib, iterations, parallelism, None)
      .map(drop)
      .map_err(|e| format!("passwordHash: invalid argon2id parameters: {e}")),
    PasswordHashConfig::Pbkdf2 { iterations } => match iterations {
      Some(0) => Err("passwordHash: pbkdf2 iterations must be at least 1".into()),
      _ => Ok(()),
    },
  }
}

/// A password as an email account row stores it. Its `Debug` leaves the salt and hash out.
#[derive(Clone)]
pub(crate) struct Stored {
  /// Hex salt (PBKDF2), or empty (argon2id: the PHC string has it).
  pub salt: String,
  /// Hex hash (PBKDF2) or PHC string (argon2id).
  pub hash: String,
  /// PBKDF2 iterations, or 0 (argon2id).
  pub iterations: u32,
}

impl std::fmt::Debug for Stored {
  fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
    // A hash in a log is an offline guessing target.
    f.debug_struct("Stored")
      .field("iterations", &self.iterations)
      .finish_non_exhaustive()
  }
}

/// PBKDF2's iteration count for a setting: `effective` always fills it in (from
/// `Config::password_iterations`); a bare setting falls back to that field's default.
fn pbkdf2_iterations(iterations: Option<u32>) -> u32 {
  iterations
    .unwrap_or_else(|| Config::default().password_iterations)
    .max(1)
}

fn argon2(memory_kib: u32, iterations: u32, parallelism: u32) -> Option<Argon2<'static>> {
  let params = Params::new(memory_kib, iterations, parallelism, None).ok()?;
  Some(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes a new password under `settings` (validated at start). Slow for argon2id: call it
/// through `routes::hash_off_thread` with [`cost`].
pub(crate) fn hash_new(password: &str, settings: &PasswordHashConfig) -> Stored {
  match *settings {
    PasswordHashConfig::Argon2id {
      memory_kib,
      iterations,
      parallelism,
    } => {
      let hasher = argon2(memory_kib, iterations, parallelism)
        .expect("argon2id parameters are validated before use (serve's start, users add)");
      let salt = random_bytes::<16>();
      let phc = hasher
        .hash_password_with_salt(password.as_bytes(), &salt)
        .expect("argon2id hashing with validated parameters");
      Stored {
        salt: String::new(),
        hash: phc.to_string(),
        iterations: 0,
      }
    }
    PasswordHashConfig::Pbkdf2 { iterations } => {
      let iterations = pbkdf2_iterations(iterations);
      let (salt, hash) = new_password_hash(password, iterations);
      Stored {
        salt,
        hash,
        iterations,
      }
    }
  }
}

/// A hash of no one's password under `settings`, for an unknown email's login to verify
/// against, so that it takes as long as a wrong password (the timing would otherwise tell which
/// emails have accounts). Made once per settings; slow the first time, so call it off the async
/// threads.
pub(crate) fn dummy(settings: &PasswordHashConfig) -> Stored {
  static DUMMIES: Mutex<Vec<(PasswordHashConfig, Stored)>> = Mutex::new(Vec::new());
  let cached = |d: &Vec<(PasswordHashConfig, Stored)>| {
    d.iter()
      .find(|(s, _)| s == settings)
      .map(|(_, h)| h.clone())
  };
  if let Some(hit) = cached(&DUMMIES.lock().unwrap_or_else(|e| e.into_inner())) {
    return hit;
  }
  // Hashed without the lock held; a race makes two, which is harmless.
  let made = hash_new(&hex(&random_bytes::<16>()), settings);
  let mut dummies = DUMMIES.lock().unwrap_or_else(|e| e.into_inner());
  // Settings change only on restart, but tests run many servers in one process: keep a few.
  if dummies.len() >= 8 {
    dummies.remove(0);
  }
  dummies.push((settings.clone(), made.clone()));
  made
}

/// Whether `password` matches the stored hash (constant-time for PBKDF2; argon2's own
/// comparison for PHC strings). A PHC string we cannot parse matches nothing.
pub(crate) fn verify(password: &str, stored: &Stored) -> bool {
  if stored.hash.starts_with('$') {
    let Ok(phc) = PasswordHash::new(&stored.hash) else {
      return false;
    };
    // The verifier takes algorithm, version and parameters from the PHC string itself.
    Argon2::default()
      .verify_password(password.as_bytes(), &phc)
      .is_ok()
  } else {
    ct_eq(
      &hash_password(password, &stored.salt, stored.iterations),
      &stored.hash,
    )
  }
}

/// Whether a stored hash was made under other settings than `settings` (another algorithm, or
/// other parameters): a login that verified it stores a fresh one.
pub(crate) fn needs_rehash(stored: &Stored, settings: &PasswordHashConfig) -> bool {
  match *settings {
    PasswordHashConfig::Argon2id {
      memory_kib,
      iterations,
      parallelism,
    } => {
      let Ok(phc) = PasswordHash::new(&stored.hash) else {
        return true;
      };
      let current = Params::try_from(&phc).ok();
      phc.algorithm.as_str() != Algorithm::Argon2id.ident().as_str()
        || phc.version != Some(Version::V0x13.into())
        || current.is_none_or(|p| {
          (p.m_cost(), p.t_cost(), p.p_cost()) != (memory_kib, iterations, parallelism)
        })
    }
    PasswordHashConfig::Pbkdf2 { iterations } => {
      stored.hash.starts_with('$') || stored.iterations != pbkdf2_iterations(iterations)
    }
  }
}

/// The cost of checking or making a hash, for `routes::hash_off_thread`: PBKDF2's iteration
/// count, and "always off the async threads" for argon2id.
pub(crate) fn cost_of(settings: &PasswordHashConfig) -> u32 {
  match settings {
    PasswordHashConfig::Argon2id { .. } => u32::MAX,
    PasswordHashConfig::Pbkdf2 { iterations } => pbkdf2_iterations(*iterations),
  }
}

/// [`cost_of`] for verifying a stored hash.
pub(crate) fn stored_cost(stored: &Stored) -> u32 {
  if stored.hash.starts_with('$') {
    u32::MAX
  } else {
    stored.iterations
  }
}

/// Hashes running on the blocking pool at most at once. Each argon2id hash holds its memory
/// (19 MiB by default) for its duration: a burst of logins must queue, not exhaust the host.
pub(crate) fn hash_slots() -> &'static tokio::sync::Semaphore {
  static SLOTS: OnceLock<tokio::sync::Semaphore> = OnceLock::new();
  SLOTS.get_or_init(|| {
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    tokio::sync::Semaphore::new(cores * 2)
  })
}

#[cfg(test)]
mod tests {
  use super::*;

  fn small() -> PasswordHashConfig {
    PasswordHashConfig::Argon2id {
      memory_kib: 64,
      iterations: 1,
      parallelism: 1,
    }
  }

  #[test]
  fn argon2id_round_trip_and_rehash_rule() {
    let stored = hash_new("password1", &small());
    assert!(stored.hash.starts_with("$argon2id$v=19$m=64,t=1,p=1$"));
    assert!(verify("password1", &stored));
    assert!(!verify("password2", &stored));
    assert!(!needs_rehash(&stored, &small()));
    let bigger = PasswordHashConfig::Argon2id {
      memory_kib: 128,
      iterations: 1,
      parallelism: 1,
    };
    assert!(needs_rehash(&stored, &bigger));
    let pbkdf2 = PasswordHashConfig::Pbkdf2 {
      iterations: Some(10),
    };
    assert!(needs_rehash(&stored, &pbkdf2));
    let old = hash_new("password1", &pbkdf2);
    assert!(verify("password1", &old));
    assert!(!needs_rehash(&old, &pbkdf2));
    assert!(needs_rehash(&old, &small()));
    assert!(!verify(
      "password1",
      &Stored {
        salt: String::new(),
        hash: "$garbage".into(),
        iterations: 0
      }
    ));
  }

  #[test]
  fn dummy_hashes_follow_the_settings() {
    for settings in [
      small(),
      PasswordHashConfig::Pbkdf2 {
        iterations: Some(3),
      },
    ] {
      let d = dummy(&settings);
      // Made under these settings (so it costs what a real account's check costs), made once.
      assert!(!needs_rehash(&d, &settings));
      assert_eq!(d.hash, dummy(&settings).hash);
      assert!(!verify("", &d));
      let debug = format!("{d:?}");
      assert!(
        !debug.contains(&d.hash) && !debug.contains("argon2"),
        "{debug}"
      );
    }
  }

  #[test]
  fn defaults_per_mode() {
    let emulator = Config::default();
    assert_eq!(
      effective(&emulator),
      PasswordHashConfig::Pbkdf2 {
        iterations: Some(1000)
      }
    );
    let serve = Config {
      control_api: false,
      ..Config::default()
    };
    assert_eq!(effective(&serve), PasswordHashConfig::owasp_argon2id());
    let parsed: PasswordHashConfig =
      serde_json::from_str(r#"{"algorithm":"argon2id","memoryKib":4096}"#).unwrap();
    assert_eq!(
      parsed,
      PasswordHashConfig::Argon2id {
        memory_kib: 4096,
        iterations: 2,
        parallelism: 1
      }
    );
    let bad = Config {
      password_hash: Some(PasswordHashConfig::Argon2id {
        memory_kib: 1,
        iterations: 1,
        parallelism: 1,
      }),
      ..Config::default()
    };
    assert!(validate(&bad).is_err());
  }
}
