//! realm-auth-client: a pure-Rust client for the App Services auth API, with
//! realm v12's semantics: location, logins, sessions and the 401 rules, the
//! email/password account routes, and user API keys.
//!
//! It knows nothing of Node; the napi binding wraps it.

mod api_keys;
mod app;
mod config;
mod credentials;
mod deadline;
mod email_password;
mod error;
#[doc(hidden)]
pub mod fuzzing;
mod jwt;
pub mod log;
mod retry;
mod secret;
mod shared;
mod store;
mod transport;
mod user;

pub use api_keys::{ApiKey, ApiKeyAuth, KeyId, SecretApiKey};
pub use app::App;
pub use config::{AppConfig, DEFAULT_BASE_URL, DEFAULT_RETRIES, DEFAULT_TIMEOUT, DeviceInfo};
pub use credentials::{Credentials, provider};
pub use deadline::within;
pub use email_password::EmailPasswordAuth;
pub use error::{Error, ErrorCode, HttpMethod, Result};
pub use jwt::{Claims, decode as decode_jwt};
pub use secret::Secret;
pub use shared::{Event, Subscriber, clear_cache};
pub use store::Persistence;
pub use transport::{
  CustomFetch, Fetch, FetchFailure, FetchRequest, FetchResponse, MAX_RESPONSE_BYTES,
};
pub use user::{Identity, Profile, State, User};
