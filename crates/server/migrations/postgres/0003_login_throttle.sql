-- Failed-login counts (throttle.rs): one row per throttled subject, an email account
-- (scope 'account') or a client address (scope 'address'). Times are milliseconds since the
-- epoch. Passwords need no change: argon2id PHC strings live in email_accounts.hash.
CREATE TABLE login_failures (
  app_id TEXT NOT NULL,
  scope TEXT NOT NULL,
  subject TEXT NOT NULL,
  failures INTEGER NOT NULL,
  last_failure BIGINT NOT NULL,
  locked_until BIGINT NOT NULL,
  PRIMARY KEY (app_id, scope, subject)
);
-- The sweep of stale rows finds the oldest first.
CREATE INDEX login_failures_last ON login_failures (app_id, last_failure);
