//! realm-auth-server: a local App Services-compatible auth server.
//!
//! It serves the client API under `/api/client/v2.0` (location, login through `anon-user`,
//! `local-userpass`, `api-key`, `custom-token` and `custom-function`, profile, sessions, user
//! deletion, email/password flows and user API keys), plus a control API under `/_emulator/`
//! for tests: create users and server API keys, inject faults, expire tokens, read the request
//! log. `GET /_emulator/` lists the control routes ([`CONTROL_ROUTES`]); the guide,
//! `docs/EMULATOR.md` at the repository root, has every rule and its status code.
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use realm_auth_server::{Config, Emulator};
//! let emulator = Emulator::start(Config::default()).await?;
//! let user = emulator.control().create_user("ada@example.com", "password1")?;
//! println!("{} serves app {} (user {})", emulator.base_url(), emulator.app_id(), user.id);
//! emulator.stop().await;
//! # Ok(()) }
//! ```

#![warn(missing_docs)]

mod access;
pub mod admin;
pub mod cli;
mod client_ip;
mod control;
mod custom_token;
mod delivery;
mod faults;
mod ids;
mod lanes;
mod log;
mod memory;
mod ops;
mod passwords;
mod persist;
mod postgres;
mod routes;
mod server;
mod sqlite;
mod state;
mod store;
mod throttle;
mod tls;
mod tokens;

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

pub use control::{
  CONTROL_ROUTES, Control, ControlError, ControlRoute, CreatedUser, EmulatorErrorCode,
  ServerApiKey, TokenPair,
};
pub use delivery::{DeliveryStats, SmtpDelivery, SmtpTls, TokenDelivery, WebhookDelivery};
pub use faults::{ActiveFault, FaultAction, FaultSpec};
pub use log::{LoggedRequest, RequestOutcome, TokenType};
pub use passwords::PasswordHashConfig;
pub use store::StoreConfig;
pub use throttle::LoginThrottleConfig;
pub use tokens::sign_hs256;

/// The path prefix of the client API.
pub const API_BASE_PATH: &str = routes::BASE;

/// Emulator settings. JSON (camelCase) with every field optional.
#[derive(Serialize, Deserialize, Clone)]
#[serde(rename_all = "camelCase", default)]
pub struct Config {
  /// Interface to bind (default `127.0.0.1`).
  pub host: String,
  /// Port to bind; 0 picks a free one (default 0).
  pub port: u16,
  /// The app id served (default `emulator-app`): the control API's app, and the one whose
  /// signing secret signs every token.
  pub app_id: String,
  /// More app ids served besides `app_id`, each with its own users, keys and sessions (the
  /// control API works on `app_id`'s only). Other ids get 404 `AppNotFound`.
  pub app_ids: Vec<String>,
  /// Access token lifetime (default 1800 s).
  pub access_token_ttl_secs: u64,
  /// Refresh token (session) lifetime (default 60 days).
  pub refresh_token_ttl_secs: u64,
  /// New email/password accounts start unconfirmed (default false: auto-confirmed).
  pub require_email_confirmation: bool,
  /// HS256 secret of the `custom-token` provider; `None` (and no
  /// [`Config::custom_token_jwks_file`]) disables the provider.
  pub custom_token_secret: Option<String>,
  /// JWT claims the `custom-token` provider copies into the user's profile `data` (the
  /// provider's `metadata_fields`), on every login.
  pub custom_token_metadata_fields: Vec<MetadataField>,
  /// Payload field that holds the identity id for `custom-function` logins (default `id`).
  pub function_identity_field: String,
  /// User API keys per user (default 20).
  pub max_api_keys_per_user: usize,
  /// Memory mode only: load state from this file at start and rewrite it after every change.
  pub data_file: Option<PathBuf>,
  /// Where users, keys and sessions live (default: memory).
  pub store: StoreConfig,
  /// Request log entries kept; the oldest are dropped (default 10 000).
  pub log_capacity: usize,
  /// PBKDF2 iterations for new passwords (default 1000: emulator-grade, cheap logins).
  pub password_iterations: u32,
  /// The URL clients reach this server at, which the location route answers with (they send
  /// every later request there): `https://auth.example.com` behind a TLS proxy. Default: `http://`
  /// and the request's `Host`.
  pub public_url: Option<String>,
  /// The login providers accepted (`anon-user`, `local-userpass`, `api-key`, `custom-token`,
  /// `custom-function`); others get 401 `AuthProviderNotFound`. `None` (the emulator's default):
  /// all of them. `serve` defaults to every one but `custom-function`, which logs in whoever
  /// names an id and must be listed to be on.
  pub providers: Option<Vec<String>>,
  /// Mount the control API under `/_emulator/` and keep the request log (default true: the
  /// emulator). `serve` turns it off: production has no control API, its paths are 404 like
  /// any unknown path, error bodies carry no `link` to it, and nothing is logged in memory.
  pub control_api: bool,
  /// The secret every `/_emulator/` request but the route index must send as
  /// `Authorization: Bearer <token>`; `None` (the default) draws a random one at start
  /// ([`Emulator::control_token`]). A given token must be 16 to 256 visible ASCII characters.
  pub control_token: Option<String>,
  /// More `Host` names the control API answers to, besides `127.0.0.1`, `localhost`, `[::1]`
  /// and `host`: `name` (on the bound port) or `name:port` (for a port mapped elsewhere, as a
  /// container's is). Other `Host` values get 403.
  pub allowed_hosts: Vec<String>,
  /// How long a client may take to send a request's headers, from its first byte (from the
  /// connection's opening for the first request), and then again its body (else 408 and the
  /// connection closes); 0 disables (refused by `serve`; default 10 000 ms).
  pub header_read_timeout_ms: u64,
  /// How long a keep-alive connection may sit between requests; 0 disables (refused by `serve`;
  /// default 90 000 ms, longer than clients' own pool timeouts, so that a client never reuses a
  /// connection this server is closing).
  pub idle_timeout_ms: u64,
  /// Open connections at most; further ones get 503 and are closed, the open ones keep being
  /// served; 0 disables (refused by `serve`; default 4096: the SDK opens a connection per call in
  /// flight, and a test may well have a thousand in flight).
  pub max_connections: usize,
  /// Requests served on one connection; the last response says `Connection: close`; 0 disables
  /// (default 1000).
  pub max_requests_per_connection: u64,
  /// A JSON file of HS256 keys that sign this server's tokens instead of the store's secret:
  /// `{"keys": [{"kid": "2026-12", "secret": "<32 bytes or more>"}, ...]}`. The LAST key signs
  /// (its `kid` goes in every new token's header); every listed key verifies, so a key is
  /// rotated by appending a new one and removing the old one after the refresh-token lifetime.
  /// Tokens without `kid` (minted with the store's secret before the file was set) are still
  /// accepted unless the file says `"acceptLegacyTokens": false`. Read once, at start.
  pub signing_keys_file: Option<PathBuf>,
  /// A JWKS file (`{"keys": [{"kty": "RSA", "kid", "n", "e", "alg": "RS256"}, ...]}`) whose
  /// RSA keys verify RS256 `custom-token` credentials (by `kid`, or the only key when a token
  /// has none). Enables the provider, alone or with [`Config::custom_token_secret`] (which keeps
  /// verifying HS256 tokens). Read once, at start.
  pub custom_token_jwks_file: Option<PathBuf>,
  /// The `aud` values a `custom-token` credential may carry (App Services' Custom JWT
  /// `audience`): when not empty, a token's `aud` (a string or an array) must name one of them.
  /// Needed whenever the keys also sign tokens for other apps, as a shared identity provider's
  /// JWKS does. Default: empty, `aud` unchecked.
  pub custom_token_audience: Vec<String>,
  /// The `iss` a `custom-token` credential must carry; `None` (the default): unchecked.
  pub custom_token_issuer: Option<String>,
  /// Serve the Prometheus text page at `/metrics` (default true; `/healthz` and `/readyz` are
  /// always served).
  pub metrics: bool,
  /// Print one JSON line per request on standard output: time, method, route template, status,
  /// milliseconds and request id; never a path, query, header or body (default false).
  pub access_log: bool,
  /// How long stopping (SIGTERM for the binary) lets requests in flight finish before their
  /// connections are cut (default `None`: 10 000 ms for `serve`, 500 ms for the emulator, whose
  /// tests stop it with requests stalled by faults).
  pub shutdown_grace_ms: Option<u64>,
  /// Serve HTTPS with the certificate chain (PEM, leaf first) in this file; needs
  /// `tls_key_file`. Both are reread by [`Emulator::reload_tls`] (SIGHUP for the binary).
  pub tls_cert_file: Option<PathBuf>,
  /// The private key (PEM: PKCS#8, PKCS#1 or SEC1) of `tls_cert_file`.
  pub tls_key_file: Option<PathBuf>,
  /// How new passwords are hashed; a login whose password was stored under other settings
  /// stores it anew. Default: PBKDF2 with `password_iterations` for the emulator, argon2id
  /// with OWASP's minimum (19 MiB, 2 passes, 1 lane) when `control_api` is off (`serve`).
  pub password_hash: Option<PasswordHashConfig>,
  /// Failed-login throttling (429 with `Retry-After`), counted in the store. Default: off for
  /// the emulator, [`LoginThrottleConfig::default`] when `control_api` is off (`serve`).
  pub login_throttle: Option<LoginThrottleConfig>,
  /// Where confirmation and reset tokens go: a signed JSON webhook or an email through SMTP
  /// ([`TokenDelivery`]). `None` (the default): nowhere but the control API's pending tokens,
  /// and `serve` refuses [`Config::require_email_confirmation`] without it. Files it names are
  /// read once, at start.
  pub token_delivery: Option<TokenDelivery>,
  /// The reverse proxies (addresses or CIDR ranges: `10.0.0.0/8`, `::1`) whose
  /// `X-Forwarded-For` says who the client is, for the per-address login throttle. Default:
  /// none, and every request's client is its TCP peer.
  pub trusted_proxies: Vec<String>,
}

impl Default for Config {
  fn default() -> Config {
    Config {
      host: "127.0.0.1".into(),
      port: 0,
      app_id: "emulator-app".into(),
      app_ids: Vec::new(),
      access_token_ttl_secs: 1800,
      refresh_token_ttl_secs: 60 * 24 * 3600,
      require_email_confirmation: false,
      custom_token_secret: None,
      custom_token_metadata_fields: Vec::new(),
      function_identity_field: "id".into(),
      max_api_keys_per_user: 20,
      data_file: None,
      store: StoreConfig::Memory,
      log_capacity: 10_000,
      password_iterations: 1000,
      public_url: None,
      providers: None,
      control_api: true,
      control_token: None,
      allowed_hosts: Vec::new(),
      header_read_timeout_ms: 10_000,
      idle_timeout_ms: 90_000,
      max_connections: 4096,
      max_requests_per_connection: 1000,
      signing_keys_file: None,
      custom_token_jwks_file: None,
      custom_token_audience: Vec::new(),
      custom_token_issuer: None,
      metrics: true,
      access_log: false,
      shutdown_grace_ms: None,
      tls_cert_file: None,
      tls_key_file: None,
      password_hash: None,
      login_throttle: None,
      token_delivery: None,
      trusted_proxies: Vec::new(),
    }
  }
}

impl fmt::Debug for Config {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("Config")
      .field("host", &self.host)
      .field("port", &self.port)
      .field("app_id", &self.app_id)
      .field("app_ids", &self.app_ids)
      .field("access_token_ttl_secs", &self.access_token_ttl_secs)
      .field("refresh_token_ttl_secs", &self.refresh_token_ttl_secs)
      .field(
        "require_email_confirmation",
        &self.require_email_confirmation,
      )
      .field(
        "custom_token_secret",
        &self.custom_token_secret.as_ref().map(|_| "<redacted>"),
      )
      .field(
        "custom_token_metadata_fields",
        &self.custom_token_metadata_fields,
      )
      .field("function_identity_field", &self.function_identity_field)
      .field("max_api_keys_per_user", &self.max_api_keys_per_user)
      .field("data_file", &self.data_file)
      .field("store", &self.store)
      .field("log_capacity", &self.log_capacity)
      .field("password_iterations", &self.password_iterations)
      .field("public_url", &self.public_url)
      .field("providers", &self.providers)
      .field("control_api", &self.control_api)
      .field(
        "control_token",
        &self.control_token.as_ref().map(|_| "<redacted>"),
      )
      .field("allowed_hosts", &self.allowed_hosts)
      .field("header_read_timeout_ms", &self.header_read_timeout_ms)
      .field("idle_timeout_ms", &self.idle_timeout_ms)
      .field("max_connections", &self.max_connections)
      .field(
        "max_requests_per_connection",
        &self.max_requests_per_connection,
      )
      .field("signing_keys_file", &self.signing_keys_file)
      .field("custom_token_jwks_file", &self.custom_token_jwks_file)
      .field("custom_token_audience", &self.custom_token_audience)
      .field("custom_token_issuer", &self.custom_token_issuer)
      .field("metrics", &self.metrics)
      .field("access_log", &self.access_log)
      .field("shutdown_grace_ms", &self.shutdown_grace_ms)
      .field("tls_cert_file", &self.tls_cert_file)
      .field("tls_key_file", &self.tls_key_file)
      .field("password_hash", &self.password_hash)
      .field("login_throttle", &self.login_throttle)
      .field("token_delivery", &self.token_delivery)
      .field("trusted_proxies", &self.trusted_proxies)
      .finish()
  }
}

/// One claim of a custom token that the provider copies into the user's profile data, as the
/// real server's `metadata_fields` entries say it: `{"name", "field_name", "required"}`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct MetadataField {
  /// The claim's path in the token (dots separate nested objects: `user.license`).
  pub name: String,
  /// The key in the profile data (default: the claim path's last segment).
  #[serde(default, alias = "fieldName")]
  pub field_name: Option<String>,
  /// Refuse the login when the claim is missing (default false).
  #[serde(default)]
  pub required: bool,
}

impl MetadataField {
  /// The profile key this claim fills.
  pub fn target(&self) -> &str {
    self
      .field_name
      .as_deref()
      .filter(|f| !f.is_empty())
      .unwrap_or_else(|| self.name.rsplit('.').next().unwrap_or(&self.name))
  }
}

/// Why the emulator could not start.
#[derive(Debug)]
pub enum EmulatorError {
  /// The configuration is unusable.
  Config(String),
  /// Binding the listening socket failed.
  Bind(std::io::Error),
  /// The data file could not be read or written.
  Data(String),
  /// The database could not be opened or migrated.
  Store(String),
}

impl EmulatorError {
  /// The numeric code (the Node binding's `err.code`).
  pub fn code(&self) -> EmulatorErrorCode {
    match self {
      EmulatorError::Config(_) => EmulatorErrorCode::BadRequest,
      EmulatorError::Bind(_) => EmulatorErrorCode::BindFailed,
      EmulatorError::Data(_) | EmulatorError::Store(_) => EmulatorErrorCode::DataFile,
    }
  }
}

impl fmt::Display for EmulatorError {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    match self {
      EmulatorError::Config(m) => write!(f, "invalid emulator configuration: {m}"),
      EmulatorError::Bind(e) => write!(f, "cannot bind the emulator's port: {e}"),
      EmulatorError::Data(m) => write!(f, "emulator data file: {m}"),
      EmulatorError::Store(m) => write!(f, "database: {m}"),
    }
  }
}

impl std::error::Error for EmulatorError {
  fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
    match self {
      EmulatorError::Bind(e) => Some(e),
      _ => None,
    }
  }
}

/// A running emulator. Dropping it without [`Emulator::stop`] stops accepting connections too.
pub struct Emulator {
  shared: Arc<server::Shared>,
  addr: SocketAddr,
  shutdown: watch::Sender<bool>,
  task: tokio::sync::Mutex<Option<JoinHandle<()>>>,
}

impl fmt::Debug for Emulator {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    f.debug_struct("Emulator")
      .field("base_url", &self.shared.base_url)
      .field("app_id", &self.shared.config.app_id)
      .finish()
  }
}

fn base_url_for(addr: SocketAddr) -> String {
  let ip = addr.ip();
  // A wildcard bind is reachable on loopback; say so rather than "0.0.0.0".
  let host = if ip.is_unspecified() {
    if ip.is_ipv4() {
      "127.0.0.1".to_string()
    } else {
      "[::1]".to_string()
    }
  } else if ip.is_ipv6() {
    format!("[{ip}]")
  } else {
    ip.to_string()
  };
  format!("http://{host}:{}", addr.port())
}

impl Emulator {
  /// Binds and starts serving on the current tokio runtime.
  pub async fn start(config: Config) -> Result<Emulator, EmulatorError> {
    let apps: Vec<String> = std::iter::once(&config.app_id)
      .chain(&config.app_ids)
      .cloned()
      .collect();
    if apps.iter().any(|a| a.is_empty() || a.contains('/')) {
      return Err(EmulatorError::Config(
        "app id must be non-empty and contain no '/'".into(),
      ));
    }
    if config.data_file.is_some() && !config.app_ids.is_empty() {
      return Err(EmulatorError::Config(
        "a data file holds one app: serve several app ids from a SQL store".into(),
      ));
    }
    if let Some(url) = &config.public_url {
      let ok = ["http://", "https://"].iter().any(|scheme| {
        url
          .strip_prefix(scheme)
          .is_some_and(|rest| !rest.is_empty())
      }) && !url.ends_with('/')
        && !url.contains(|c: char| c.is_whitespace() || c.is_control());
      if !ok {
        return Err(EmulatorError::Config(format!(
          "public URL '{url}' must be http:// or https:// and a host, without a trailing '/'"
        )));
      }
    }
    if let Some(unknown) = config.providers.iter().flatten().find(|p| {
      ![
        state::ANON,
        state::USERPASS,
        state::API_KEY,
        state::CUSTOM_TOKEN,
        state::CUSTOM_FUNCTION,
      ]
      .contains(&p.as_str())
    }) {
      return Err(EmulatorError::Config(format!(
        "unknown login provider '{unknown}' (anon-user, local-userpass, api-key, custom-token, \
         custom-function)"
      )));
    }
    passwords::validate(&config).map_err(EmulatorError::Config)?;
    if config.function_identity_field.is_empty() {
      return Err(EmulatorError::Config(
        "function identity field must not be empty".into(),
      ));
    }
    let token = match &config.control_token {
      Some(token) => {
        access::validate_token(token).map_err(EmulatorError::Config)?;
        token.clone()
      }
      None => access::new_token(),
    };
    let extra_hosts =
      access::parse_allowed_hosts(&config.allowed_hosts).map_err(EmulatorError::Config)?;
    // Key files before the store: a bad file fails the start without touching the database.
    let signing_keys = match &config.signing_keys_file {
      Some(path) => Some(
        tokens::SigningKeys::load(path)
          .await
          .map_err(EmulatorError::Config)?,
      ),
      None => None,
    };
    let custom_keys = custom_token::CustomKeys::load(
      config.custom_token_secret.as_deref(),
      config.custom_token_jwks_file.as_deref(),
    )
    .await
    .and_then(|keys| {
      keys.with_claims(
        &config.custom_token_audience,
        config.custom_token_issuer.as_deref(),
      )
    })
    .map_err(EmulatorError::Config)?;
    // A published JWKS usually signs tokens for every client of the provider.
    if !config.control_api
      && config.custom_token_jwks_file.is_some()
      && config.custom_token_audience.is_empty()
    {
      eprintln!(
        "realm-auth-server: customTokenJwksFile without customTokenAudience: any token its keys \
         sign logs in, including tokens issued to other apps of the same identity provider"
      );
    }
    let delivery = match &config.token_delivery {
      Some(settings) => Some(Arc::new(
        delivery::Delivery::new(settings)
          .await
          .map_err(EmulatorError::Config)?,
      )),
      None => None,
    };
    // Production only: the emulator hands pending tokens to tests through its control API.
    if !config.control_api && delivery.is_none() {
      if config.require_email_confirmation {
        return Err(EmulatorError::Config(
          "requireEmailConfirmation is on but no tokenDelivery is configured: new accounts \
           could never be confirmed. Add a tokenDelivery (webhook or smtp) to the config file, \
           or turn requireEmailConfirmation off"
            .into(),
        ));
      }
      eprintln!(
        "realm-auth-server: no tokenDelivery configured: password reset requests are answered \
         but no reset token is sent anywhere"
      );
    }
    if config.data_file.is_some() && config.store != StoreConfig::Memory {
      return Err(EmulatorError::Config(
        "a data file is for the memory store only; a SQL store is its own file".into(),
      ));
    }
    let (store, jwt_secret, persister) = match &config.store {
      StoreConfig::Memory => {
        let (state, persister) = match &config.data_file {
          None => (memory::State::new(), None),
          Some(path) => {
            let loaded = persist::load(path).map_err(EmulatorError::Data)?;
            let state = loaded.unwrap_or_else(memory::State::new);
            // Write at once: a fresh file gets its signing secret, a loaded one is re-validated.
            let bytes = persist::encode(&state);
            let target = path.clone();
            tokio::task::spawn_blocking(move || persist::write_atomic(&target, &bytes))
              .await
              .map_err(|e| EmulatorError::Data(e.to_string()))?
              .map_err(|e| EmulatorError::Data(format!("cannot write {}: {e}", path.display())))?;
            let version = state.version;
            (state, Some(persist::Persister::new(path.clone(), version)))
          }
        };
        let secret = state.jwt_secret.clone().into_bytes();
        let others = config
          .app_ids
          .iter()
          .map(|app| (app.clone(), store::MemStore::new(memory::State::new())))
          .collect();
        let apps = store::MemApps::new(config.app_id.clone(), store::MemStore::new(state), others);
        (store::Store::Memory(apps), secret, persister)
      }
      StoreConfig::Sqlite { path } => {
        let (path, apps) = (path.clone(), apps.clone());
        let (db, secret) = tokio::task::spawn_blocking(move || {
          let db = sqlite::Sqlite::open(&path)?;
          let mut secrets = apps
            .iter()
            .map(|app| db.ensure_app(app))
            .collect::<Result<Vec<_>, String>>()?;
          Ok::<_, String>((db, secrets.swap_remove(0)))
        })
        .await
        .map_err(|e| EmulatorError::Store(e.to_string()))?
        .map_err(EmulatorError::Store)?;
        (store::Store::Sqlite(Arc::new(db)), secret, None)
      }
      StoreConfig::Postgres { url, schema } => {
        let (url, schema, apps) = (url.clone(), schema.clone(), apps.clone());
        let (db, secret) = tokio::task::spawn_blocking(move || {
          let db = postgres::Postgres::open(&url, schema.as_deref())?;
          let mut secrets = apps
            .iter()
            .map(|app| db.ensure_app(app))
            .collect::<Result<Vec<_>, String>>()?;
          Ok::<_, String>((db, secrets.swap_remove(0)))
        })
        .await
        .map_err(|e| EmulatorError::Store(e.to_string()))?
        .map_err(EmulatorError::Store)?;
        (store::Store::Postgres(Arc::new(db)), secret, None)
      }
    };
    let trusted_proxies =
      client_ip::TrustedProxies::parse(&config.trusted_proxies).map_err(EmulatorError::Config)?;
    let tls = match (&config.tls_cert_file, &config.tls_key_file) {
      (None, None) => None,
      (Some(cert), Some(key)) => Some(tls::Tls::load(cert, key).map_err(EmulatorError::Config)?),
      _ => {
        return Err(EmulatorError::Config(
          "TLS needs both a certificate file and a key file".into(),
        ));
      }
    };
    let listener = TcpListener::bind((config.host.as_str(), config.port))
      .await
      .map_err(EmulatorError::Bind)?;
    let addr = listener.local_addr().map_err(EmulatorError::Bind)?;
    let access = access::Access::new(token, &config.host, extra_hosts, addr.port());
    let mut base_url = base_url_for(addr);
    if tls.is_some() {
      base_url = base_url.replacen("http://", "https://", 1);
    }
    let mut shared = server::Shared::new(
      config,
      base_url,
      store,
      tokens::Tokens::with_keys(&jwt_secret, signing_keys, custom_keys),
      persister,
      access,
    );
    shared.tls = tls;
    shared.trusted_proxies = trusted_proxies;
    shared.delivery = delivery;
    let shared = Arc::new(shared);
    let (shutdown, shutdown_rx) = watch::channel(false);
    let task = tokio::spawn(server::accept_loop(shared.clone(), listener, shutdown_rx));
    Ok(Emulator {
      shared,
      addr,
      shutdown,
      task: tokio::sync::Mutex::new(Some(task)),
    })
  }

  /// `http://127.0.0.1:PORT` (the base URL to give an App).
  pub fn base_url(&self) -> String {
    self.shared.base_url.clone()
  }

  /// The app id served.
  pub fn app_id(&self) -> &str {
    &self.shared.config.app_id
  }

  /// Every app id served: [`Config::app_id`], then [`Config::app_ids`].
  pub fn app_ids(&self) -> Vec<&str> {
    let config = &self.shared.config;
    std::iter::once(&config.app_id)
      .chain(&config.app_ids)
      .map(String::as_str)
      .collect()
  }

  /// The bound port.
  pub fn port(&self) -> u16 {
    self.addr.port()
  }

  /// The control token: what `/_emulator/` requests send as `Authorization: Bearer <token>`
  /// (the configured one, or one drawn at random at start).
  pub fn control_token(&self) -> &str {
    self.shared.access.token()
  }

  /// A warning to show when the emulator listens on an address other machines can reach
  /// (`0.0.0.0`, a LAN address); `None` on loopback.
  /// (`serve`, without a control API, is meant to be reachable: `None`.)
  pub fn exposure_warning(&self) -> Option<String> {
    (self.shared.config.control_api && !self.addr.ip().is_loopback()).then(|| {
      format!(
        "the emulator listens on {}, which other machines may reach: anyone who can connect can \
         register and log in users, and the control token travels in clear text (plain HTTP). \
         Bind 127.0.0.1 unless this is a private network.",
        self.addr
      )
    })
  }

  /// What became of the confirmation and reset tokens handed to [`Config::token_delivery`]
  /// (all zero without one).
  pub fn delivery_stats(&self) -> DeliveryStats {
    self
      .shared
      .delivery
      .as_ref()
      .map(|d| d.stats())
      .unwrap_or_default()
  }

  /// The control API.
  pub fn control(&self) -> Control {
    Control {
      shared: self.shared.clone(),
    }
  }

  /// Stops accepting (new connections are refused from here on), closes idle keep-alive
  /// connections at once, lets requests in flight finish for up to
  /// [`Config::shutdown_grace_ms`] and then cuts their connections, waits for the connection
  /// tasks, writes the data file and lets the access log catch up. Idempotent.
  pub async fn stop(&self) {
    self.mark_stopping();
    let _ = self.shutdown.send(true);
    let mut task = self.task.lock().await;
    if let Some(handle) = task.take() {
      let _ = handle.await;
    }
    if let Err(e) = self.shared.persist().await {
      eprintln!("realm-auth-server: could not write the data file: {e}");
    }
    self.shared.ops.flush_access_log().await;
  }

  /// Rereads [`Config::tls_cert_file`] and [`Config::tls_key_file`]: connections from here on
  /// use them, open ones keep theirs. `Ok(false)` without TLS; on error the files in use stay.
  pub fn reload_tls(&self) -> Result<bool, EmulatorError> {
    match &self.shared.tls {
      None => Ok(false),
      Some(tls) => tls.reload().map(|()| true).map_err(EmulatorError::Config),
    }
  }

  /// Whether this server serves HTTPS.
  pub fn tls(&self) -> bool {
    self.shared.tls.is_some()
  }

  /// Requests cut off from here on are logged as `stopped`, not as client aborts.
  fn mark_stopping(&self) {
    self
      .shared
      .stopping
      .store(true, std::sync::atomic::Ordering::Release);
  }
}

impl Drop for Emulator {
  fn drop(&mut self) {
    self.mark_stopping();
    let _ = self.shutdown.send(true);
  }
}
