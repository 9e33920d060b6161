-- A disabled user cannot log in, refresh or use its access tokens (admin `users disable`).
ALTER TABLE users ADD COLUMN disabled BOOLEAN NOT NULL DEFAULT false;
