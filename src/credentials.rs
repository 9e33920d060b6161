//! `Credentials`: how to log in.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;
use serde_json::Value;

use crate::call::{self, refused};
use crate::js_error::throw;

/// Credentials for `App.logIn` and `User.linkCredentials`. Never exposes the
/// secret it holds. Factories throw a `TypeError` for a bad argument.
/// realm v12's `ProviderType`: the authentication providers, by the names the
/// server uses (`user.providerType`, `identities[].providerType`).
#[napi(string_enum)]
pub enum ProviderType {
  /// Anonymous users.
  #[napi(value = "anon-user")]
  AnonUser,
  /// User API keys (and server API keys).
  #[napi(value = "api-key")]
  ApiKey,
  /// Email and password.
  #[napi(value = "local-userpass")]
  LocalUserPass,
  /// A custom function.
  #[napi(value = "custom-function")]
  CustomFunction,
  /// A custom JWT.
  #[napi(value = "custom-token")]
  CustomToken,
  /// Google (not offered here: no OAuth credentials).
  #[napi(value = "oauth2-google")]
  OAuth2Google,
  /// Facebook (not offered here: no OAuth credentials).
  #[napi(value = "oauth2-facebook")]
  OAuth2Facebook,
  /// Apple (not offered here: no OAuth credentials).
  #[napi(value = "oauth2-apple")]
  OAuth2Apple,
}

#[napi]
pub struct Credentials {
  pub(crate) inner: client::Credentials,
}

fn made(env: &Env, inner: client::Result<client::Credentials>) -> Result<Credentials> {
  Ok(Credentials {
    inner: throw(env, inner)?,
  })
}

#[napi]
impl Credentials {
  /// An anonymous user. With `reuse` (the default) a logged-in anonymous user of
  /// the App is returned instead of creating a new one.
  #[napi(catch_unwind, factory, ts_args_type = "reuse?: boolean")]
  pub fn anonymous(env: Env, reuse: Option<Unknown>) -> Result<Credentials> {
    let reuse = match reuse.filter(|r| !call::is_nullish(r)) {
      None => Ok(true),
      Some(r) if matches!(r.get_type(), Ok(ValueType::Boolean)) => {
        Ok(bool::from_unknown(r).unwrap_or(true))
      }
      Some(_) => Err(refused("Expected 'reuse' to be a boolean")),
    };
    made(
      &env,
      reuse.map(|reuse| client::Credentials::Anonymous { reuse }),
    )
  }

  /// Email/password credentials: `emailPassword(email, password)` or `emailPassword({ email, password })`.
  #[napi(
    catch_unwind,
    factory,
    ts_args_type = "emailOrCredentials: string | EmailPasswordCredentials, password?: string"
  )]
  pub fn email_password(
    env: Env,
    email_or_credentials: Unknown,
    password: Option<Unknown>,
  ) -> Result<Credentials> {
    let parsed = (|| {
      if matches!(email_or_credentials.get_type(), Ok(ValueType::Object)) {
        let details = call::object(email_or_credentials, "credentials")?;
        return client::Credentials::email_password(
          &call::field(&details, "email")?,
          &call::field(&details, "password")?,
        );
      }
      let email = call::string(email_or_credentials, "email")?;
      let password = match password {
        Some(p) => call::string(p, "password")?,
        None => return Err(refused("Expected 'password' to be a string, got undefined")),
      };
      client::Credentials::email_password(&email, &password)
    })();
    made(&env, parsed)
  }

  /// A user API key or server API key.
  #[napi(catch_unwind, factory, ts_args_type = "key: string")]
  pub fn api_key(env: Env, key: Unknown) -> Result<Credentials> {
    made(
      &env,
      call::string(key, "key").and_then(|k| client::Credentials::api_key(&k)),
    )
  }

  /// A server API key.
  /// @deprecated Use `Credentials.apiKey`: server and user keys log in the same way.
  #[napi(catch_unwind, factory, ts_args_type = "key: string")]
  pub fn server_api_key(env: Env, key: Unknown) -> Result<Credentials> {
    Credentials::api_key(env, key)
  }

  /// A user API key.
  /// @deprecated Use `Credentials.apiKey`: server and user keys log in the same way.
  #[napi(catch_unwind, factory, ts_args_type = "key: string")]
  pub fn user_api_key(env: Env, key: Unknown) -> Result<Credentials> {
    Credentials::api_key(env, key)
  }

  /// Sign in with Apple: the ID token from Apple's flow (sent as `id_token`).
  #[napi(catch_unwind, factory, ts_args_type = "token: string")]
  pub fn apple(env: Env, token: Unknown) -> Result<Credentials> {
    made(
      &env,
      call::string(token, "token")
        .and_then(|t| client::Credentials::oauth(client::provider::APPLE, "id_token", &t)),
    )
  }

  /// Facebook login: the access token from Facebook's flow (sent as `accessToken`).
  #[napi(catch_unwind, factory, ts_args_type = "token: string")]
  pub fn facebook(env: Env, token: Unknown) -> Result<Credentials> {
    made(
      &env,
      call::string(token, "token")
        .and_then(|t| client::Credentials::oauth(client::provider::FACEBOOK, "accessToken", &t)),
    )
  }

  /// Sign in with Google: `{ authCode }` or `{ idToken }` from Google's flow.
  #[napi(
    catch_unwind,
    factory,
    ts_args_type = "authObject: { authCode: string } | { idToken: string }"
  )]
  pub fn google(env: Env, auth_object: Unknown) -> Result<Credentials> {
    let parsed = call::object(auth_object, "authObject").and_then(|o| {
      let read = |key: &str| -> client::Result<Option<String>> {
        let value: Unknown = o
          .get_named_property(key)
          .map_err(|_| refused(format!("Could not read '{key}'")))?;
        if call::is_nullish(&value) {
          return Ok(None);
        }
        call::string(value, key).map(Some)
      };
      match (read("authCode")?, read("idToken")?) {
        (Some(code), None) => {
          client::Credentials::oauth(client::provider::GOOGLE, "authCode", &code)
        }
        (None, Some(token)) => {
          client::Credentials::oauth(client::provider::GOOGLE, "id_token", &token)
        }
        _ => Err(refused(
          "Expected 'authObject' to have either 'authCode' or 'idToken'",
        )),
      }
    });
    made(&env, parsed)
  }

  /// A JWT for custom JWT authentication.
  #[napi(catch_unwind, factory, ts_args_type = "token: string")]
  pub fn jwt(env: Env, token: Unknown) -> Result<Credentials> {
    made(
      &env,
      call::string(token, "token").and_then(|t| client::Credentials::jwt(&t)),
    )
  }

  /// A payload for custom function authentication, sent as given (it must be
  /// JSON-serialisable).
  #[napi(
    catch_unwind,
    factory,
    js_name = "function",
    ts_args_type = "payload: object"
  )]
  pub fn function_payload(env: Env, payload: Unknown) -> Result<Credentials> {
    let parsed =
      call::object(payload, "payload").and_then(|_| match Value::from_unknown(payload) {
        Ok(Value::Object(map)) => Ok(client::Credentials::Function(map)),
        _ => Err(refused(
          "Expected 'payload' to be a JSON-serialisable object",
        )),
      });
    made(&env, parsed)
  }

  /// The provider these credentials log in through, e.g. `"api-key"`.
  #[napi(catch_unwind, getter, ts_return_type = "ProviderType")]
  pub fn provider_type(&self) -> &'static str {
    self.inner.provider()
  }
}
