//! Login throttling: after `maxFailures` consecutive failed logins of one account (or
//! `addressMaxFailures` from one client address), each less than `windowSecs` after the one
//! before, further attempts get 429 with `Retry-After` until a lock ends. The lock doubles with
//! every failure past the limit (1 s, 2 s, 4 s …, at most `maxLockSecs`); a successful login
//! clears the account's count. The same machinery limits the requests that send mail
//! (`reset/send`, `confirm/send`, `confirm/call`) per email and per client address
//! ([`mail_subjects`]): each one counts, success or not.
//!
//! An email/password attempt counts as a failure before its password is hashed, in the
//! transaction that checks the lock ([`reserve`]); a right password takes the count back. So a
//! burst of simultaneous guesses cannot all pass the check before the first failure is recorded.
//! The window runs from the later of the last failure and the lock's end: attempts refused while
//! locked are not counted, so a lock as long as the window must not start the count over.
//!
//! The counts live in the store (`login_failures`), bumped by one atomic upsert per failure, so
//! that every server on one database sees the same count and concurrent failures are all
//! counted. A row whose window has passed is stale: the subject's next failure starts
//! it over, its next success deletes it, and every recorded failure also deletes up to
//! [`SWEEP`] stale rows of other subjects, so stale rows shrink while failures come in and stay
//! put (one short row per subject that failed and never came back) while none do.

use std::net::{IpAddr, Ipv6Addr};

use hyper::http::request::Parts;
use serde::{Deserialize, Serialize};

use crate::Config;
use crate::state::ApiError;
use crate::store::Tx;

/// Stale rows one recorded failure deletes besides its own.
pub(crate) const SWEEP: u32 = 2;

/// The first lock, in milliseconds; each further failure doubles it.
const FIRST_LOCK_MS: u64 = 1000;

/// Login throttling settings. JSON: `{"maxFailures":5,"windowSecs":900,"maxLockSecs":900,
/// "addressMaxFailures":50}`; a field left out takes that default.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(rename_all = "camelCase", default, deny_unknown_fields)]
pub struct LoginThrottleConfig {
  /// Consecutive failed logins of one account before it is locked (default 5; 0 turns all
  /// throttling off).
  pub max_failures: u32,
  /// Failures further apart than this do not add up: the count starts over (default 900 s;
  /// 0 turns throttling off).
  pub window_secs: u64,
  /// The longest lock (default 900 s; 0 turns throttling off).
  pub max_lock_secs: u64,
  /// Failed logins (email/password or API key, any account) from one client address, each
  /// within `windowSecs` of the one before (a success does not start it over), before it is
  /// locked (default 50; 0 turns the per-address limit off). Higher than
  /// the account's: many users may share one address behind a NAT.
  pub address_max_failures: u32,
  /// Emails (password reset, confirmation) one email address may be sent, each within
  /// `windowSecs` of the one before, before `reset/send`, `confirm/send` and `confirm/call` for
  /// it get 429 until a lock ends (default 3; 0 turns this limit off).
  pub mail_max_per_email: u32,
  /// Those requests from one client address, for any email, before it is locked the same way
  /// (default 20; 0 turns this limit off).
  pub mail_max_per_client: u32,
}

impl Default for LoginThrottleConfig {
  fn default() -> LoginThrottleConfig {
    LoginThrottleConfig {
      max_failures: 5,
      window_secs: 900,
      max_lock_secs: 900,
      address_max_failures: 50,
      mail_max_per_email: 3,
      mail_max_per_client: 20,
    }
  }
}

/// The settings in force, `None` when throttling is off: `Config::login_throttle`, else off for
/// the emulator (`control_api`) and [`LoginThrottleConfig::default`] for `serve`.
pub(crate) fn effective(config: &Config) -> Option<LoginThrottleConfig> {
  let settings = match &config.login_throttle {
    Some(s) => s.clone(),
    None if config.control_api => return None,
    None => LoginThrottleConfig::default(),
  };
  (settings.max_failures > 0 && settings.window_secs > 0 && settings.max_lock_secs > 0)
    .then_some(settings)
}

/// What a count is kept for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Scope {
  /// An email/password account, by email.
  Account,
  /// A client address (see [`client_address`]).
  Address,
  /// An email address mail is sent to (reset and confirmation requests).
  MailTo,
  /// A client address that asks for mail to be sent.
  MailFrom,
}

impl Scope {
  /// Its name in the `scope` column.
  pub fn as_str(self) -> &'static str {
    match self {
      Scope::Account => "account",
      Scope::Address => "address",
      Scope::MailTo => "mail-to",
      Scope::MailFrom => "mail-from",
    }
  }

  fn is_mail(self) -> bool {
    matches!(self, Scope::MailTo | Scope::MailFrom)
  }
}

/// One throttled subject of a login attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Subject {
  /// Account or address.
  pub scope: Scope,
  /// The email, or the address as [`client_address`] writes it.
  pub id: String,
  /// Failures before a lock.
  pub limit: u32,
}

/// A subject's row in `login_failures`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub(crate) struct Failures {
  /// Consecutive failures counted.
  pub failures: u32,
  /// When the latest one was counted (ms since the epoch).
  pub last_failure_ms: u64,
  /// No login before this (ms since the epoch; 0: none).
  pub locked_until_ms: u64,
}

/// The request's client address, put in its extensions by the connection loop: the TCP peer,
/// or the `X-Forwarded-For` client when the peer is a trusted proxy (`client_ip.rs`).
#[derive(Clone, Copy, Debug)]
pub(crate) struct PeerAddr(pub IpAddr);

/// The client address a request is throttled under ([`PeerAddr`]). IPv6 clients count by /64
/// (one host usually holds a whole /64, so single addresses would be free to rotate); an
/// IPv4-mapped IPv6 peer counts as its IPv4 address.
///
/// Behind reverse proxies listed in `trustedProxies` the address comes from `X-Forwarded-For`
/// (`client_ip.rs`); behind others every request comes from the proxy's address.
pub(crate) fn client_address(parts: &Parts) -> Option<String> {
  let PeerAddr(ip) = *parts.extensions.get::<PeerAddr>()?;
  Some(match ip {
    IpAddr::V4(v4) => v4.to_string(),
    IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
      Some(v4) => v4.to_string(),
      None => {
        let s = v6.segments();
        format!("{}/64", Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
      }
    },
  })
}

/// The subjects of a login attempt under `settings`: the account (if any) and the address.
pub(crate) fn subjects(
  settings: &LoginThrottleConfig,
  account: Option<&str>,
  address: Option<String>,
) -> Vec<Subject> {
  let mut out = Vec::with_capacity(2);
  if let Some(email) = account {
    out.push(Subject {
      scope: Scope::Account,
      id: email.to_string(),
      limit: settings.max_failures,
    });
  }
  if let Some(address) = address
    && settings.address_max_failures > 0
  {
    out.push(Subject {
      scope: Scope::Address,
      id: address,
      limit: settings.address_max_failures,
    });
  }
  out
}

/// The subjects of a request that sends mail to `email` under `settings`: the email and the
/// client address, each unless its limit is 0.
pub(crate) fn mail_subjects(
  settings: &LoginThrottleConfig,
  email: &str,
  address: Option<String>,
) -> Vec<Subject> {
  let mut out = Vec::with_capacity(2);
  if settings.mail_max_per_email > 0 {
    out.push(Subject {
      scope: Scope::MailTo,
      id: email.to_string(),
      limit: settings.mail_max_per_email,
    });
  }
  if let Some(address) = address
    && settings.mail_max_per_client > 0
  {
    out.push(Subject {
      scope: Scope::MailFrom,
      id: address,
      limit: settings.mail_max_per_client,
    });
  }
  out
}

/// 429 TooManyRequests with `Retry-After` (whole seconds, rounded up), for a lock of `scope`.
pub(crate) fn too_many(scope: Scope, wait_ms: u64) -> ApiError {
  let message = if scope.is_mail() {
    "too many emails requested; retry later"
  } else {
    "too many failed login attempts; retry later"
  };
  let mut e = ApiError::new(429, "TooManyRequests", message);
  e.retry_after = Some(wait_ms.div_ceil(1000).max(1));
  e
}

/// Refuses the attempt (429) while any of its subjects is locked.
pub(crate) fn check(tx: &dyn Tx, subjects: &[Subject], now_ms: u64) -> Result<(), ApiError> {
  let mut until = (0, Scope::Account);
  for s in subjects {
    if let Some(f) = tx.login_failures(s.scope.as_str(), &s.id)?
      && f.locked_until_ms > until.0
    {
      until = (f.locked_until_ms, s.scope);
    }
  }
  if until.0 > now_ms {
    return Err(too_many(until.1, until.0 - now_ms));
  }
  Ok(())
}

/// The lock after `failures` consecutive failures against `limit`: none below it, then
/// 1 s, 2 s, 4 s … capped at `max_lock_secs`.
pub(crate) fn lock_ms(failures: u32, limit: u32, max_lock_secs: u64) -> Option<u64> {
  let past = failures.checked_sub(limit)?;
  let ms = FIRST_LOCK_MS.saturating_mul(1u64 << past.min(40));
  Some(ms.min(max_lock_secs.saturating_mul(1000)))
}

/// Counts one failed attempt against each subject (one atomic upsert each, so concurrent
/// failures on any server all count), locks those at their limit, and sweeps a few stale rows.
/// Runs in its own write transaction: the attempt's own error must not roll it back.
pub(crate) fn record_failure(
  tx: &mut dyn Tx,
  settings: &LoginThrottleConfig,
  subjects: &[Subject],
  now_ms: u64,
) -> Result<(), ApiError> {
  count(tx, settings, subjects, now_ms, false).map(drop)
}

/// An attempt counted as a failure before its password was checked ([`reserve`]), and what
/// taking it back must undo.
#[derive(Clone, Debug)]
pub(crate) struct Reserved {
  /// The subject it was counted against.
  pub subject: Subject,
  /// The lock end the count set and the one it replaced, when it set one.
  lock: Option<(u64, u64)>,
}

/// Refuses the attempt (429) while any of its subjects is locked, else counts it as a failure
/// right away, in the same write transaction. A burst of simultaneous guesses thus meets the
/// lock the first `limit` of them set, instead of all passing the check before any failure is
/// recorded (so no more than `limit` passwords are checked per lock). A right password takes
/// its count back ([`take_back`], [`reset`]).
pub(crate) fn reserve(
  tx: &mut dyn Tx,
  settings: &LoginThrottleConfig,
  subjects: &[Subject],
  now_ms: u64,
) -> Result<Vec<Reserved>, ApiError> {
  // Refused before anything is written: the memory store cannot roll back.
  check(tx, subjects, now_ms)?;
  count(tx, settings, subjects, now_ms, true)
}

/// Counts one failure against each subject; with `refuse_locked`, answers 429 instead when an
/// upsert finds its row locked, for the caller's transaction to roll back. That second look is
/// what makes [`reserve`] atomic on PostgreSQL, where under READ COMMITTED many transactions
/// can pass [`check`] before the first commits its count; the upsert waits for the row, so it
/// sees every earlier count and lock. (SQLite's write transactions and the memory store's mutex
/// already run one at a time.)
fn count(
  tx: &mut dyn Tx,
  settings: &LoginThrottleConfig,
  subjects: &[Subject],
  now_ms: u64,
  refuse_locked: bool,
) -> Result<Vec<Reserved>, ApiError> {
  let window_ms = settings.window_secs.saturating_mul(1000);
  let mut out = Vec::with_capacity(subjects.len());
  for s in subjects {
    let f = tx.add_login_failure(s.scope.as_str(), &s.id, now_ms, window_ms)?;
    // The upsert keeps a lock that has not ended (its window has not passed either).
    if refuse_locked && f.locked_until_ms > now_ms {
      return Err(too_many(s.scope, f.locked_until_ms - now_ms));
    }
    let mut lock = None;
    if let Some(ms) = lock_ms(f.failures, s.limit, settings.max_lock_secs) {
      // The upsert above holds the row (PostgreSQL row lock, SQLite write lock, memory mutex)
      // until commit: no other failure can slip in between the count and this lock.
      let until = now_ms.saturating_add(ms).max(f.locked_until_ms);
      tx.set_login_lock(s.scope.as_str(), &s.id, until)?;
      lock = Some((until, f.locked_until_ms));
    }
    out.push(Reserved {
      subject: s.clone(),
      lock,
    });
  }
  tx.sweep_login_failures(now_ms, window_ms, SWEEP)?;
  Ok(out)
}

/// Takes back a [`reserve`]d failure whose password was right: one failure off the count, and
/// the lock it set lifted unless a later failure has moved it since. (The row's last-failure
/// time stays: at worst the window of the earlier failures lasts a little longer.)
pub(crate) fn take_back(tx: &mut dyn Tx, reserved: &Reserved) -> Result<(), ApiError> {
  let s = &reserved.subject;
  // The decrement holds the row until commit, so the lock is compared and set atomically.
  if let Some(f) = tx.take_back_login_failure(s.scope.as_str(), &s.id)?
    && let Some((set, before)) = reserved.lock
    && f.locked_until_ms == set
  {
    tx.set_login_lock(s.scope.as_str(), &s.id, before)?;
  }
  Ok(())
}

/// Forgets a subject's failures (a successful login of the account).
pub(crate) fn reset(tx: &mut dyn Tx, subject: &Subject) -> Result<(), ApiError> {
  tx.clear_login_failures(subject.scope.as_str(), &subject.id)?;
  Ok(())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn locks_double_up_to_the_cap() {
    assert_eq!(lock_ms(4, 5, 900), None);
    assert_eq!(lock_ms(5, 5, 900), Some(1000));
    assert_eq!(lock_ms(6, 5, 900), Some(2000));
    assert_eq!(lock_ms(8, 5, 900), Some(8000));
    assert_eq!(lock_ms(30, 5, 900), Some(900_000));
    assert_eq!(lock_ms(u32::MAX, 5, 900), Some(900_000));
    assert_eq!(lock_ms(5, 5, 1), Some(1000));
    assert_eq!(too_many(Scope::Account, 1).retry_after, Some(1));
    assert_eq!(too_many(Scope::MailTo, 1001).retry_after, Some(2));
  }

  #[test]
  fn client_addresses() {
    let of = |ip: &str| {
      let (parts, ()) = hyper::Request::builder()
        .extension(PeerAddr(ip.parse().unwrap()))
        .body(())
        .unwrap()
        .into_parts();
      client_address(&parts).unwrap()
    };
    assert_eq!(of("203.0.113.7"), "203.0.113.7");
    assert_eq!(of("::ffff:203.0.113.7"), "203.0.113.7");
    // One /64, whichever host in it.
    assert_eq!(of("2001:db8:1:2:aaaa::1"), "2001:db8:1:2::/64");
    assert_eq!(of("2001:db8:1:2:bbbb::9"), "2001:db8:1:2::/64");
    let (parts, ()) = hyper::Request::new(()).into_parts();
    assert_eq!(client_address(&parts), None);
  }

  #[test]
  fn defaults_per_mode() {
    assert_eq!(effective(&Config::default()), None);
    let serve = Config {
      control_api: false,
      ..Config::default()
    };
    assert_eq!(effective(&serve), Some(LoginThrottleConfig::default()));
    let off = Config {
      control_api: false,
      login_throttle: Some(LoginThrottleConfig {
        max_failures: 0,
        ..LoginThrottleConfig::default()
      }),
      ..Config::default()
    };
    assert_eq!(effective(&off), None);
  }
}
