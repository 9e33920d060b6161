//! `ApiKeyAuth` (`user.apiKeys`): create, fetch, list, enable, disable, delete.

use napi::bindgen_prelude::*;
use napi_derive::napi;
use realm_auth_client as client;

use crate::call::{self, Call, refused, run, run_void};

/// A user API key, as fetched or listed: never its value.
#[napi(object)]
pub struct ApiKey {
  /// The key's id: 24 lower-case hex characters.
  #[napi(js_name = "_id")]
  pub id: String,
  /// The key's name.
  pub name: String,
  /// Whether the key is disabled (a disabled key cannot log in).
  pub disabled: bool,
}

/// A newly created user API key, with its value. The value is only ever
/// returned here: store it, there is no way to read it again.
#[napi(object)]
pub struct SecretApiKey {
  /// The key's id: 24 lower-case hex characters.
  #[napi(js_name = "_id")]
  pub id: String,
  /// The key's value, for `Credentials.apiKey`.
  pub key: String,
  /// The key's name.
  pub name: String,
  /// Whether the key is disabled.
  pub disabled: bool,
}

impl From<client::ApiKey> for ApiKey {
  fn from(k: client::ApiKey) -> ApiKey {
    ApiKey {
      id: k.id,
      name: k.name,
      disabled: k.disabled,
    }
  }
}

/// Reads a key id: a 24-hex string or an object with `toHexString()` (a bson
/// ObjectId). Anything else is refused before a request is made.
fn key_id(value: Unknown) -> client::Result<client::KeyId> {
  let wrong =
    || refused("Expected the API key id to be a string of 24 hex characters or an ObjectId");
  let text = match value.get_type() {
    Ok(ValueType::String) => call::string(value, "keyId")?,
    Ok(ValueType::Object) => {
      let object = Object::from_unknown(value).map_err(|_| wrong())?;
      let to_hex = object
        .get_named_property::<Unknown>("toHexString")
        .map_err(|_| wrong())?;
      if !matches!(to_hex.get_type(), Ok(ValueType::Function)) {
        return Err(wrong());
      }
      // Safety: checked to be a function just above.
      let to_hex = unsafe { to_hex.cast::<Function<(), Unknown>>() }.map_err(|_| wrong())?;
      let hex = to_hex.apply(object, ()).map_err(|_| wrong())?;
      call::string(hex, "keyId.toHexString()").map_err(|_| wrong())?
    }
    _ => return Err(wrong()),
  };
  client::KeyId::parse(&text)
}

/// Manages a user's API keys. Every call authenticates with the user's refresh
/// token; a 401 logs the user out. Exported as `Auth.ApiKeyAuth` too.
#[napi(custom_finalize)]
pub struct ApiKeyAuth {
  inner: client::ApiKeyAuth,
}

crate::guarded_finalize!(ApiKeyAuth);

impl ApiKeyAuth {
  pub(crate) fn new(inner: client::ApiKeyAuth) -> ApiKeyAuth {
    ApiKeyAuth { inner }
  }

  fn call(&self, env: &Env, options: Option<Unknown>) -> Call {
    Call::new(env, self.inner.user().app().config().timeout, options)
  }
}

#[napi]
impl ApiKeyAuth {
  /// The `[name, value]` pairs `util.inspect` shows: the user and App the keys belong to.
  #[napi(catch_unwind, js_name = "inspectFields", skip_typescript)]
  pub fn inspect_fields(&self) -> serde_json::Value {
    let user = self.inner.user();
    serde_json::json!([["userId", user.id()], ["appId", user.app().config().id]])
  }

  /// Creates a key. `name` must be unique among the user's keys; the server
  /// allows ASCII letters, digits, `_` and `-`. A create whose answer is lost
  /// is not retried (it could make a second key): the error says so.
  #[napi(
    catch_unwind,
    ts_args_type = "name: string, options?: CallOptions",
    ts_return_type = "Promise<SecretApiKey>"
  )]
  pub fn create<'env>(
    &self,
    env: &'env Env,
    name: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, SecretApiKey>> {
    let auth = self.inner.clone();
    let call = self.call(env, options);
    run(
      env,
      call,
      call::string(name, "name"),
      move |name| async move { auth.create(&name).await },
      |_, k| {
        Ok(SecretApiKey {
          id: k.id,
          key: k.key.expose().to_owned(),
          name: k.name,
          disabled: k.disabled,
        })
      },
    )
  }

  /// Fetches one key by id.
  #[napi(
    catch_unwind,
    ts_args_type = "keyId: string | { toHexString(): string }, options?: CallOptions",
    ts_return_type = "Promise<ApiKey>"
  )]
  pub fn fetch<'env>(
    &self,
    env: &'env Env,
    key_id: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ApiKey>> {
    let auth = self.inner.clone();
    let call = self.call(env, options);
    run(
      env,
      call,
      self::key_id(key_id),
      move |id| async move { auth.fetch(&id).await },
      |_, k| Ok(k.into()),
    )
  }

  /// Fetches all of the user's keys.
  #[napi(
    catch_unwind,
    ts_args_type = "options?: CallOptions",
    ts_return_type = "Promise<ApiKey[]>"
  )]
  pub fn fetch_all<'env>(
    &self,
    env: &'env Env,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, Vec<ApiKey>>> {
    let auth = self.inner.clone();
    let call = self.call(env, options);
    run(
      env,
      call,
      Ok(()),
      move |()| async move { auth.fetch_all().await },
      |_, keys| Ok(keys.into_iter().map(ApiKey::from).collect()),
    )
  }

  /// Enables a key.
  #[napi(
    catch_unwind,
    ts_args_type = "keyId: string | { toHexString(): string }, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn enable<'env>(
    &self,
    env: &'env Env,
    key_id: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    let call = self.call(env, options);
    run_void(env, call, self::key_id(key_id), move |id| async move {
      auth.enable(&id).await
    })
  }

  /// Disables a key: it can no longer log in until enabled again.
  #[napi(
    catch_unwind,
    ts_args_type = "keyId: string | { toHexString(): string }, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn disable<'env>(
    &self,
    env: &'env Env,
    key_id: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    let call = self.call(env, options);
    run_void(env, call, self::key_id(key_id), move |id| async move {
      auth.disable(&id).await
    })
  }

  /// Deletes a key for good. The server refuses to delete the key the
  /// current session logged in with.
  #[napi(
    catch_unwind,
    ts_args_type = "keyId: string | { toHexString(): string }, options?: CallOptions",
    ts_return_type = "Promise<void>"
  )]
  pub fn delete<'env>(
    &self,
    env: &'env Env,
    key_id: Unknown,
    options: Option<Unknown>,
  ) -> Result<PromiseRaw<'env, ()>> {
    let auth = self.inner.clone();
    let call = self.call(env, options);
    run_void(env, call, self::key_id(key_id), move |id| async move {
      auth.delete(&id).await
    })
  }
}
