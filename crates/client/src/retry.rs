//! Backoff between retries (capped exponential with full jitter, or the
//! server's `Retry-After`, clamped), and the retry budget an App's calls share.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::Mutex;
use std::time::Duration;

use crate::app::lock;

/// The first retry waits up to this long; each next one up to twice as long.
const BASE: Duration = Duration::from_millis(100);

/// No computed wait exceeds this.
const CAP: Duration = Duration::from_secs(5);

/// No `Retry-After` is honoured beyond this: realm v12's default timeout of a
/// whole request. A server asking for longer (`Retry-After: 86400`) would hold
/// a call without a deadline for that long; it is retried after this instead.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(60);

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
    return hint.min(MAX_RETRY_AFTER);
  }
  let ceiling = BASE.saturating_mul(1 << attempt.min(16)).min(CAP);
  ceiling.mul_f64(random_fraction())
}

/// Tokens in a full budget (smithy-rs's standard retry strategy, as AWS SDKs).
const BUDGET_CAPACITY: u32 = 500;

/// What a retry after an error answer (429, 502, 503, 504) costs.
pub(crate) const RETRY_COST: u32 = 5;

/// What a retry after a failure in transit (timeout, connection lost) costs:
/// twice as much, since it says more about an unhealthy server.
pub(crate) const RETRY_TIMEOUT_COST: u32 = 10;

/// What a call answered without a retry gives back.
const SUCCESS_REFUND: u32 = 1;

/// The retry budget of an App's calls (a token bucket): every retry takes
/// tokens and none is made when they run out, so many concurrent calls
/// against a failing server add at most `BUDGET_CAPACITY / RETRY_COST`
/// requests to it rather than multiplying its load. Healthy answers refill it.
pub(crate) struct RetryBudget {
  tokens: Mutex<u32>,
}

impl RetryBudget {
  /// A full budget.
  pub fn new() -> RetryBudget {
    RetryBudget {
      tokens: Mutex::new(BUDGET_CAPACITY),
    }
  }

  /// Takes `cost` tokens for a retry; false (and nothing taken) when fewer remain.
  pub fn try_take(&self, cost: u32) -> bool {
    let mut tokens = lock(&self.tokens);
    if *tokens < cost {
      return false;
    }
    *tokens -= cost;
    true
  }

  /// A call got a healthy answer: the cost of its last retry comes back
  /// (`last_cost`, 0 when it made none), or one token if it made none.
  pub fn succeeded(&self, last_cost: u32) {
    let refund = if last_cost == 0 {
      SUCCESS_REFUND
    } else {
      last_cost
    };
    let mut tokens = lock(&self.tokens);
    *tokens = (*tokens + refund).min(BUDGET_CAPACITY);
  }

  #[cfg(test)]
  fn tokens(&self) -> u32 {
    *lock(&self.tokens)
  }
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

  #[test]
  fn a_long_retry_after_is_clamped() {
    assert_eq!(
      backoff(0, Some(Duration::from_secs(86_400))),
      MAX_RETRY_AFTER
    );
    assert_eq!(backoff(0, Some(MAX_RETRY_AFTER)), MAX_RETRY_AFTER);
  }

  #[test]
  fn the_budget_runs_out_and_healthy_answers_refill_it() {
    let budget = RetryBudget::new();
    let mut retries = 0;
    while budget.try_take(RETRY_COST) {
      retries += 1;
    }
    assert_eq!(retries, BUDGET_CAPACITY / RETRY_COST);
    assert!(!budget.try_take(1));
    // A call answered after its retry returns that retry's cost.
    budget.succeeded(RETRY_TIMEOUT_COST);
    assert_eq!(budget.tokens(), RETRY_TIMEOUT_COST);
    assert!(budget.try_take(RETRY_TIMEOUT_COST));
    assert!(!budget.try_take(RETRY_COST));
    // A call answered at once returns one token.
    for _ in 0..RETRY_COST {
      budget.succeeded(0);
    }
    assert!(budget.try_take(RETRY_COST));
    // Never beyond a full budget.
    for _ in 0..2 * BUDGET_CAPACITY {
      budget.succeeded(RETRY_COST);
    }
    assert_eq!(budget.tokens(), BUDGET_CAPACITY);
  }
}
