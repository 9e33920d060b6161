//! Per-call deadlines: one budget for every request, retry and wait of a call.

use std::future::Future;
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorCode, Result};

#[derive(Clone, Copy)]
struct Budget {
  deadline: Instant,
  total: Duration,
}

tokio::task_local! {
  static BUDGET: Budget;
}

/// Runs `call` with a deadline `timeout` from now. Requests and retry waits
/// inside it get only what remains, and the call fails with `Timeout` when the
/// deadline passes, whatever it was doing. Without it, each request gets the
/// App's timeout on its own (realm v12's per-request semantics).
pub async fn within<T>(timeout: Duration, call: impl Future<Output = Result<T>>) -> Result<T> {
  let budget = Budget {
    deadline: Instant::now() + timeout,
    total: timeout,
  };
  match tokio::time::timeout(timeout, BUDGET.scope(budget, call)).await {
    Ok(result) => result,
    Err(_) => {
      let mut err = Error::new(
        ErrorCode::Timeout,
        format!(
          "the call did not complete within {} ms",
          timeout.as_millis()
        ),
      );
      // A request may have been in flight: what it did is unknown.
      err.sent = true;
      Err(err)
    }
  }
}

/// What remains of the current call's budget, and its total; `None` outside [`within`].
pub(crate) fn remaining() -> Option<(Duration, Duration)> {
  BUDGET
    .try_with(|b| {
      (
        b.deadline.saturating_duration_since(Instant::now()),
        b.total,
      )
    })
    .ok()
}
