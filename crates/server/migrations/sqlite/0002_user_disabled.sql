-- A disabled user cannot log in, refresh or use its access tokens (admin `users disable`).
ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;
