//! Backoff between retries: capped exponential with full jitter, or the
//! server's `Retry-After` when it sent one.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// The first retry waits up to this long; each next one up to twice as long.
const BASE: Duration = Duration::from_millis(100);

/// No computed wait exceeds this (a `Retry-After` may, within the deadline).
const CAP: Duration = Duration::from_secs(5);

/// A random fraction in [0, 1): std's hasher keys are random per process and
/// per `RandomState`, which is all the unpredictability jitter needs.
fn random_fraction() -> f64 {
  let mut hasher = RandomState::new().build_hasher();
  hasher.write_u64(0);
  (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// How long to wait before retry number `attempt` (0-based).
pub(crate) fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
  if let Some(hint) = retry_after {
    return hint;
  }
  let ceiling = BASE.saturating_mul(1 << attempt.min(16)).min(CAP);
  ceiling.mul_f64(random_fraction())
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn waits_grow_within_the_cap_and_honour_retry_after() {
    for attempt in 0..40 {
      let wait = backoff(attempt, None);
      assert!(
        wait <= CAP && wait <= BASE.saturating_mul(1 << attempt.min(16)),
        "{attempt}: {wait:?}"
      );
    }
    assert_eq!(
      backoff(3, Some(Duration::from_secs(2))),
      Duration::from_secs(2)
    );
    let distinct: std::collections::HashSet<_> = (0..20).map(|_| backoff(5, None)).collect();
    assert!(distinct.len() > 1, "jitter must vary");
  }
}
