//! Login credentials and the bodies realm v12 sends for them.

use std::fmt;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::secret::Secret;

/// Authentication provider names, as the server spells them.
pub mod provider {
  /// Anonymous users.
  pub const ANONYMOUS: &str = "anon-user";
  /// User and server API keys.
  pub const API_KEY: &str = "api-key";
  /// Email/password users.
  pub const EMAIL_PASSWORD: &str = "local-userpass";
  /// Custom function authentication.
  pub const FUNCTION: &str = "custom-function";
  /// Custom JWT authentication.
  pub const JWT: &str = "custom-token";
  /// Sign in with Google.
  pub const GOOGLE: &str = "oauth2-google";
  /// Facebook login.
  pub const FACEBOOK: &str = "oauth2-facebook";
  /// Sign in with Apple.
  pub const APPLE: &str = "oauth2-apple";
}

/// How to log in.
#[derive(Clone, PartialEq)]
pub enum Credentials {
  /// An anonymous user; `reuse` returns the logged-in anonymous user if there is one.
  Anonymous {
    /// Reuse a logged-in anonymous user instead of creating one.
    reuse: bool,
  },
  /// Email and password.
  EmailPassword {
    /// The email (username).
    email: String,
    /// The password.
    password: Secret,
  },
  /// A user or server API key.
  ApiKey(Secret),
  /// A JWT for custom JWT authentication.
  Jwt(Secret),
  /// A payload for custom function authentication, sent as is.
  Function(Map<String, Value>),
  /// A token from an OAuth provider's own sign-in flow (Google, Facebook,
  /// Apple), sent under the field realm-core uses for it.
  OAuth {
    /// The provider (`provider::GOOGLE`, `FACEBOOK` or `APPLE`).
    provider: &'static str,
    /// The body field: `authCode`, `id_token` or `accessToken`.
    field: &'static str,
    /// The token.
    token: Secret,
  },
}

impl fmt::Debug for Credentials {
  fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    // Function payloads can hold anything, secrets included: print only keys.
    match self {
      Credentials::Function(payload) => f
        .debug_tuple("Function")
        .field(&payload.keys().collect::<Vec<_>>())
        .finish(),
      Credentials::Anonymous { reuse } => {
        f.debug_struct("Anonymous").field("reuse", reuse).finish()
      }
      Credentials::EmailPassword { email, password } => f
        .debug_struct("EmailPassword")
        .field("email", email)
        .field("password", password)
        .finish(),
      Credentials::ApiKey(k) => f.debug_tuple("ApiKey").field(k).finish(),
      Credentials::Jwt(t) => f.debug_tuple("Jwt").field(t).finish(),
      Credentials::OAuth {
        provider, token, ..
      } => f
        .debug_struct("OAuth")
        .field("provider", provider)
        .field("token", token)
        .finish(),
    }
  }
}

fn non_empty(what: &str, value: &str) -> Result<()> {
  if value.is_empty() {
    return Err(Error::invalid_argument(format!(
      "Expected '{what}' to be a non-empty string"
    )));
  }
  Ok(())
}

impl Credentials {
  /// Email/password credentials; both must be non-empty.
  pub fn email_password(email: &str, password: &str) -> Result<Credentials> {
    non_empty("email", email)?;
    non_empty("password", password)?;
    Ok(Credentials::EmailPassword {
      email: email.to_owned(),
      password: Secret::new(password),
    })
  }

  /// API key credentials; the key must be non-empty.
  pub fn api_key(key: &str) -> Result<Credentials> {
    non_empty("key", key)?;
    Ok(Credentials::ApiKey(Secret::new(key)))
  }

  /// Custom JWT credentials; the token must be non-empty.
  pub fn jwt(token: &str) -> Result<Credentials> {
    non_empty("token", token)?;
    Ok(Credentials::Jwt(Secret::new(token)))
  }

  /// OAuth credentials (see [`Credentials::OAuth`]); the token must be non-empty.
  pub fn oauth(provider: &'static str, field: &'static str, token: &str) -> Result<Credentials> {
    non_empty(field, token)?;
    Ok(Credentials::OAuth {
      provider,
      field,
      token: Secret::new(token),
    })
  }

  /// The provider these credentials log in through.
  pub fn provider(&self) -> &'static str {
    match self {
      Credentials::Anonymous { .. } => provider::ANONYMOUS,
      Credentials::EmailPassword { .. } => provider::EMAIL_PASSWORD,
      Credentials::ApiKey(_) => provider::API_KEY,
      Credentials::Jwt(_) => provider::JWT,
      Credentials::Function(_) => provider::FUNCTION,
      Credentials::OAuth { provider, .. } => provider,
    }
  }

  /// The login body without `options`, as realm-core serialises it:
  /// `provider` first, except for function credentials, which are sent as given.
  pub(crate) fn body(&self) -> Map<String, Value> {
    let mut body = Map::new();
    if let Credentials::Function(payload) = self {
      return payload.clone();
    }
    body.insert("provider".into(), self.provider().into());
    match self {
      Credentials::EmailPassword { email, password } => {
        body.insert("username".into(), email.clone().into());
        body.insert("password".into(), password.expose().into());
      }
      Credentials::ApiKey(key) => {
        body.insert("key".into(), key.expose().into());
      }
      Credentials::Jwt(token) => {
        body.insert("token".into(), token.expose().into());
      }
      Credentials::OAuth { field, token, .. } => {
        body.insert((*field).into(), token.expose().into());
      }
      Credentials::Anonymous { .. } | Credentials::Function(_) => {}
    }
    body
  }
}

#[cfg(test)]
mod tests {
  use super::*;

  #[test]
  fn bodies_match_realm_core() {
    let api = Credentials::api_key("a key").unwrap();
    assert_eq!(
      Value::Object(api.body()),
      serde_json::json!({"provider":"api-key","key":"a key"})
    );
    let ep = Credentials::email_password("e@x", "pw1234").unwrap();
    assert_eq!(
      Value::Object(ep.body()),
      serde_json::json!({"provider":"local-userpass","username":"e@x","password":"pw1234"})
    );
    let mut payload = Map::new();
    payload.insert("id".into(), "u1".into());
    assert_eq!(
      Value::Object(Credentials::Function(payload).body()),
      serde_json::json!({"id":"u1"})
    );
    assert_eq!(
      Value::Object(Credentials::Anonymous { reuse: true }.body()),
      serde_json::json!({"provider":"anon-user"})
    );
  }

  #[test]
  fn debug_hides_secrets() {
    let ep = Credentials::email_password("e@x", "sentinel-pw").unwrap();
    let key = Credentials::api_key("sentinel-key").unwrap();
    let text = format!(
      "{ep:?} {key:?} {:?}",
      Credentials::jwt("sentinel-jwt").unwrap()
    );
    assert!(!text.contains("sentinel"), "{text}");
  }

  #[test]
  fn empty_values_are_refused() {
    assert!(Credentials::email_password("", "x").is_err());
    assert!(Credentials::api_key("").is_err());
    assert!(Credentials::jwt("").is_err());
  }
}
