-- Every table is keyed by app id: one database serves several apps.
CREATE TABLE apps (
  app_id TEXT PRIMARY KEY,
  jwt_secret TEXT NOT NULL,
  access_generation BIGINT NOT NULL DEFAULT 0,
  created BIGINT NOT NULL
);

CREATE TABLE users (
  app_id TEXT NOT NULL,
  id TEXT NOT NULL,
  kind TEXT NOT NULL,
  identities TEXT NOT NULL,
  data TEXT NOT NULL,
  custom_data TEXT NOT NULL,
  created BIGINT NOT NULL,
  PRIMARY KEY (app_id, id)
);

-- Custom-token and custom-function identities: one owner each.
CREATE TABLE identities (
  app_id TEXT NOT NULL,
  provider TEXT NOT NULL,
  ext_id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  PRIMARY KEY (app_id, provider, ext_id)
);
CREATE INDEX identities_user ON identities (app_id, user_id);

CREATE TABLE email_accounts (
  app_id TEXT NOT NULL,
  email TEXT NOT NULL,
  identity_id TEXT NOT NULL,
  salt TEXT NOT NULL,
  hash TEXT NOT NULL,
  iterations INTEGER NOT NULL,
  confirmed BOOLEAN NOT NULL,
  user_id TEXT,
  PRIMARY KEY (app_id, email)
);
CREATE INDEX email_accounts_user ON email_accounts (app_id, user_id);

-- Confirmation and reset tokens, as SHA-256 hashes: any instance can check them.
CREATE TABLE pending_tokens (
  app_id TEXT NOT NULL,
  kind TEXT NOT NULL,
  email TEXT NOT NULL,
  token_id TEXT NOT NULL,
  token_hash TEXT NOT NULL,
  PRIMARY KEY (app_id, kind, email),
  UNIQUE (app_id, kind, token_id)
);

CREATE TABLE api_keys (
  seq BIGSERIAL PRIMARY KEY,
  app_id TEXT NOT NULL,
  id TEXT NOT NULL,
  owner TEXT NOT NULL,
  name TEXT NOT NULL,
  disabled BOOLEAN NOT NULL,
  hash TEXT NOT NULL,
  server BOOLEAN NOT NULL,
  created BIGINT NOT NULL,
  UNIQUE (app_id, id),
  UNIQUE (app_id, owner, name),
  UNIQUE (app_id, hash)
);
CREATE UNIQUE INDEX api_keys_server_name ON api_keys (app_id, name) WHERE server;

CREATE TABLE sessions (
  app_id TEXT NOT NULL,
  id TEXT NOT NULL,
  user_id TEXT NOT NULL,
  device_id TEXT NOT NULL,
  via_key TEXT,
  expires BIGINT NOT NULL,
  PRIMARY KEY (app_id, id)
);
CREATE INDEX sessions_user ON sessions (app_id, user_id);
CREATE INDEX sessions_key ON sessions (app_id, via_key);
