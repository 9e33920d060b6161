//! Identifiers and randomness: ObjectId-shaped ids, secrets, hex.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Fills `N` bytes from the OS generator.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
  let mut buf = [0u8; N];
  // The OS generator failing is not recoverable for a server that mints secrets.
  getrandom::fill(&mut buf).expect("OS random number generator failed");
  buf
}

/// Lower-case hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
  const DIGITS: &[u8; 16] = b"0123456789abcdef";
  let mut s = String::with_capacity(bytes.len() * 2);
  for b in bytes {
    s.push(DIGITS[(b >> 4) as usize] as char);
    s.push(DIGITS[(b & 0xf) as usize] as char);
  }
  s
}

/// A new ObjectId as 24 lower-case hex characters: 4-byte timestamp, 5-byte per-process random
/// value, 3-byte counter (the BSON layout, so ids sort by creation time like real ones).
pub(crate) fn object_id() -> String {
  static PROCESS: OnceLock<[u8; 5]> = OnceLock::new();
  static COUNTER: OnceLock<AtomicU32> = OnceLock::new();
  let process = PROCESS.get_or_init(random_bytes::<5>);
  let counter = COUNTER
    .get_or_init(|| AtomicU32::new(u32::from_be_bytes(random_bytes::<4>())))
    .fetch_add(1, Ordering::Relaxed);
  let secs = now_secs() as u32;
  let mut raw = [0u8; 12];
  raw[..4].copy_from_slice(&secs.to_be_bytes());
  raw[4..9].copy_from_slice(process);
  raw[9..].copy_from_slice(&counter.to_be_bytes()[1..]);
  hex(&raw)
}

/// Parses a client-supplied ObjectId string: 24 hex digits, any case. Returns the canonical
/// lower-case form (core always sends lower case; realm-web sends whatever the caller gave).
pub(crate) fn parse_object_id(s: &str) -> Option<String> {
  if s.len() == 24 && s.bytes().all(|b| b.is_ascii_hexdigit()) {
    Some(s.to_ascii_lowercase())
  } else {
    None
  }
}

/// Seconds since the Unix epoch.
/// The UTC calendar date (year, month, day) of a count of days since the Unix epoch (Howard
/// Hinnant's `civil_from_days`), for the timestamps the server prints.
pub(crate) fn civil_date(days: i64) -> (i64, i64, i64) {
  let z = days + 719_468;
  let era = z.div_euclid(146_097);
  let doe = z.rem_euclid(146_097);
  let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
  let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  let mp = (5 * doy + 2) / 153;
  let day = doy - (153 * mp + 2) / 5 + 1;
  let month = if mp < 10 { mp + 3 } else { mp - 9 };
  (yoe + era * 400 + i64::from(month <= 2), month, day)
}

pub(crate) fn now_secs() -> u64 {
  SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .map(|d| d.as_secs())
    .unwrap_or(0)
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_millis() -> u64 {
  SystemTime::now()
    .duration_since(UNIX_EPOCH)
    .map(|d| d.as_millis() as u64)
    .unwrap_or(0)
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn object_ids_are_24_hex_and_unique() {
    let a = object_id();
    let b = object_id();
    assert_eq!(a.len(), 24);
    assert!(parse_object_id(&a).is_some());
    assert_ne!(a, b);
  }

  #[test]
  fn parse_object_id_normalises_case() {
    assert_eq!(
      parse_object_id("DEADBEEFdeadbeefDEADBEEF").as_deref(),
      Some("deadbeefdeadbeefdeadbeef")
    );
    assert!(parse_object_id("deadbeef").is_none());
    assert!(parse_object_id("zzzzzzzzzzzzzzzzzzzzzzzz").is_none());
  }
}
