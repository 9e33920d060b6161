//! `Credentials`: how to log in.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;
use serde_json::Value;

use crate::js_error::throw;

/// Email and password, as an object.
#[napi(object)]
pub struct EmailPasswordCredentials {
  /// The user's email.
  pub email: String,
  /// The user's password.
  pub password: String,
}

/// Credentials for `App.logIn` and `User.linkCredentials`. Never exposes the
/// secret it holds.
#[napi]
pub struct Credentials {
  pub(crate) inner: client::Credentials,
}

#[napi]
impl Credentials {
  /// An anonymous user. With `reuse` (the default) a logged-in anonymous user of
  /// the App is returned instead of creating a new one.
  #[napi(factory)]
  pub fn anonymous(reuse: Option<bool>) -> Credentials {
    Credentials {
      inner: client::Credentials::Anonymous {
        reuse: reuse.unwrap_or(true),
      },
    }
  }

  /// Email/password credentials: `emailPassword(email, password)` or `emailPassword({ email, password })`.
  #[napi(factory)]
  pub fn email_password(
    env: Env,
    email_or_credentials: Either<String, EmailPasswordCredentials>,
    password: Option<String>,
  ) -> Result<Credentials> {
    let (email, password) = match email_or_credentials {
      Either::A(email) => (email, password),
      Either::B(c) => (c.email, Some(c.password)),
    };
    let Some(password) = password else {
      return throw(
        &env,
        Err(client::Error::invalid_argument(
          "Expected 'password' to be a string, got undefined",
        )),
      );
    };
    let inner = throw(&env, client::Credentials::email_password(&email, &password))?;
    Ok(Credentials { inner })
  }

  /// A user API key or server API key.
  #[napi(factory)]
  pub fn api_key(env: Env, key: String) -> Result<Credentials> {
    Ok(Credentials {
      inner: throw(&env, client::Credentials::api_key(&key))?,
    })
  }

  /// A server API key.
  /// @deprecated Use `Credentials.apiKey`: server and user keys log in the same way.
  #[napi(factory)]
  pub fn server_api_key(env: Env, key: String) -> Result<Credentials> {
    Credentials::api_key(env, key)
  }

  /// A user API key.
  /// @deprecated Use `Credentials.apiKey`: server and user keys log in the same way.
  #[napi(factory)]
  pub fn user_api_key(env: Env, key: String) -> Result<Credentials> {
    Credentials::api_key(env, key)
  }

  /// A JWT for custom JWT authentication.
  #[napi(factory)]
  pub fn jwt(env: Env, token: String) -> Result<Credentials> {
    Ok(Credentials {
      inner: throw(&env, client::Credentials::jwt(&token))?,
    })
  }

  /// A payload for custom function authentication, sent as given.
  #[napi(factory, js_name = "function")]
  pub fn function_payload(env: Env, payload: Value) -> Result<Credentials> {
    match payload {
      Value::Object(map) => Ok(Credentials {
        inner: client::Credentials::Function(map),
      }),
      _ => throw(
        &env,
        Err(client::Error::invalid_argument(
          "Expected 'payload' to be an object",
        )),
      ),
    }
  }

  /// The provider these credentials log in through, e.g. `"api-key"`.
  #[napi(getter)]
  pub fn provider_type(&self) -> &'static str {
    self.inner.provider()
  }
}
